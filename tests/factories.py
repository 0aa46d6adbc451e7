"""Small, valid framework documents for tests that must not depend on the built-in ladder."""

import copy
from typing import Any

SMALL_FRAMEWORK: dict[str, Any] = {
    "format": "competency-framework/v1",
    "key": "eng-ladder",
    "name": "Engineering ladder",
    "description": "A small ladder for tests.",
    "scale": [
        {"value": 0, "label": "None"},
        {"value": 1, "label": "Basic"},
        {"value": 2, "label": "Good"},
        {"value": 3, "label": "Strong"},
    ],
    "tracks": [{"key": "ic", "name": "Individual contributor"}],
    "levels": [
        {"key": "junior", "name": "Junior", "rank": 1},
        {"key": "mid", "name": "Mid", "rank": 2},
        {"key": "staff", "name": "Staff", "rank": 3, "track": "ic"},
    ],
    "areas": [
        {"key": "craft", "name": "Craft", "emphasis": {"junior": 0.7, "mid": 0.6, "staff": 0.5}},
        {"key": "impact", "name": "Impact", "emphasis": {"junior": 0.3, "mid": 0.4, "staff": 0.5}},
    ],
    "competencies": [
        {
            "key": "coding",
            "name": "Coding",
            "area": "craft",
            "weight": 2,
            "expectations": {
                "junior": {"required": 1, "critical": True, "indicators": ["Ships small changes"]},
                "mid": {"required": 2, "indicators": ["Ships features"]},
                "staff": {"required": 3, "indicators": ["Sets standards"]},
            },
        },
        {
            "key": "design",
            "name": "Design",
            "area": "craft",
            "expectations": {
                "junior": {"required": 1},
                "mid": {"required": 2},
                "staff": {"required": 3},
            },
        },
        {
            "key": "influence",
            "name": "Influence",
            "area": "impact",
            "expectations": {
                "junior": {"required": 1},
                "mid": {"required": 1},
                "staff": {"required": 3},
            },
        },
    ],
    "activities": [
        {
            "key": "pairing",
            "title": "Pair with a senior",
            "kind": "mentoring",
            "develops": {"coding": 1},
            "effort_hours": 20,
            "level_band": {"from": "junior", "to": "mid"},
        },
        {
            "key": "design-review",
            "title": "Lead a design review",
            "kind": "practice",
            "develops": {"design": 1, "influence": 1},
            "effort_hours": 30,
            "level_band": {"from": "mid", "to": "staff"},
        },
    ],
}


def small_framework(**changes: Any) -> dict[str, Any]:
    """A deep copy of the small framework with top-level fields replaced."""
    doc = copy.deepcopy(SMALL_FRAMEWORK)
    doc.update(changes)
    return doc
