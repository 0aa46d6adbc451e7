"""The framework diff: random edits to the built-in ladder come back from the diff, exactly,
and applying the diff to the old version gives the new one."""

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.frameworks.diff import Change, apply_diff, diff_documents, summary_markdown
from app.frameworks.document import FrameworkDocument, dump_document, parse_document
from app.frameworks.files import load_file

BUILTIN = Path(__file__).parents[2] / "app" / "frameworks" / "builtin" / "product-management.yaml"
LADDER = parse_document(load_file(BUILTIN.read_bytes(), BUILTIN.name))
BASE = dump_document(LADDER)
N_COMP = len(BASE["competencies"])
LEVELS = [lv["key"] for lv in BASE["levels"]]

Where = tuple[str, str, Any, str | None, str | None]


def _where(change: Change) -> Where:
    return (change.section, change.op, change.key, change.level, change.field)


@st.composite
def edited(draw: st.DrawFn) -> tuple[dict[str, Any], set[Where], dict[str, str]]:
    """A copy of the ladder with random edits on distinct items, the edits made, and the
    renames a competency map would name."""
    data = copy.deepcopy(BASE)
    expected: set[Where] = set()
    order = draw(st.permutations(range(N_COMP)))
    n_required, n_critical, n_removed = (draw(st.integers(0, 3)) for _ in range(3))
    picks = iter(order)
    comps = data["competencies"]
    for _ in range(n_required):
        comp = comps[next(picks)]
        level = draw(st.sampled_from(sorted(comp["expectations"])))
        was = comp["expectations"][level]["required"]
        comp["expectations"][level]["required"] = draw(
            st.sampled_from([v for v in range(6) if v != was])
        )
        expected.add(("expectations", "changed", comp["key"], level, "required"))
    for _ in range(n_critical):
        comp = comps[next(picks)]
        level = draw(st.sampled_from(sorted(comp["expectations"])))
        exp = comp["expectations"][level]
        exp["critical"] = not exp["critical"]
        expected.add(("expectations", "changed", comp["key"], level, "critical"))
    renames: dict[str, str] = {}
    if draw(st.booleans()):
        comp = comps[next(picks)]
        renames[comp["key"]] = comp["key"] = f"{comp['key']}-renamed"
        expected.add(("competencies", "changed", comp["key"], None, "key"))
        if draw(st.booleans()):
            level = draw(st.sampled_from(sorted(comp["expectations"])))
            comp["expectations"][level]["critical"] = not comp["expectations"][level]["critical"]
            expected.add(("expectations", "changed", comp["key"], level, "critical"))
    removed = {comps[next(picks)]["key"] for _ in range(n_removed)}
    data["competencies"] = [c for c in comps if c["key"] not in removed]
    expected |= {("competencies", "removed", key, None, None) for key in removed}
    if draw(st.booleans()):
        levels = draw(st.lists(st.sampled_from(LEVELS), min_size=1, max_size=3, unique=True))
        required = {lv: {"required": draw(st.integers(1, 5))} for lv in levels}
        data["competencies"].append(
            {"key": "new-skill", "name": "A new skill", "area": comps[0]["area"]}
            | {"expectations": required}
        )
        expected.add(("competencies", "added", "new-skill", None, None))
        expected |= {("expectations", "added", "new-skill", lv, None) for lv in levels}
    if draw(st.booleans()):
        level = draw(st.sampled_from(data["levels"]))
        level["name"] += " (renamed)"
        expected.add(("levels", "changed", level["key"], None, "name"))
    if draw(st.booleans()):
        data["settings"]["readiness_threshold"] = draw(st.sampled_from([0.7, 0.8, 0.9]))
        expected.add(("settings", "changed", None, None, "readiness_threshold"))
    if draw(st.booleans()):
        data["settings"]["role_weights"]["peer"] = 2.5
        expected.add(("settings", "changed", None, None, "role_weights.peer"))
    emphasised = [a for a in data["areas"] if a["emphasis"]]
    # Not `emphasised and draw(...)`: mypy would type the draw by the list on its left.
    if len(emphasised) > 0 and draw(st.booleans()):
        area = draw(st.sampled_from(emphasised))
        level = draw(st.sampled_from(sorted(area["emphasis"])))
        area["emphasis"][level] = round(area["emphasis"][level] / 2, 4) + 0.001
        expected.add(("area_emphasis", "changed", area["key"], level, None))
    if data["activities"] and draw(st.booleans()):
        gone = draw(st.sampled_from(data["activities"]))["key"]
        data["activities"] = [a for a in data["activities"] if a["key"] != gone]
        expected.add(("activities", "removed", gone, None, None))
    if draw(st.booleans()):
        point = draw(st.sampled_from(data["scale"]))
        point["label"] += " (reworded)"
        expected.add(("scale", "changed", point["value"], None, "label"))
    if draw(st.booleans()):
        data["tracks"].append({"key": "specialist", "name": "Specialist"})
        expected.add(("tracks", "added", "specialist", None, None))
    if draw(st.booleans()):
        data["key"] = "another-ladder"
        expected.add(("framework", "changed", None, None, "key"))
    if draw(st.booleans()):
        indicators = data["competencies"][0]["expectations"]
        level = sorted(indicators)[0]
        indicators[level]["indicators"] = [*indicators[level]["indicators"], "Writes it down."]
        expected.add(
            ("expectations", "changed", data["competencies"][0]["key"], level, "indicators")
        )
    return data, expected, renames


def _canonical(doc: FrameworkDocument) -> dict[str, Any]:
    data = dump_document(doc)
    for section, attr in (("tracks", "key"), ("levels", "key"), ("areas", "key")):
        data[section].sort(key=lambda item, a=attr: item[a])
    for section in ("competencies", "activities"):
        data[section].sort(key=lambda item: item["key"])
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited())
def test_random_edits_come_back_from_the_diff(
    case: tuple[dict[str, Any], set[Where], dict[str, str]],
) -> None:
    data, expected, renames = case
    new = FrameworkDocument.model_validate(data)
    changes = diff_documents(LADDER, new, renames)
    assert {_where(c) for c in changes} == expected
    assert len(changes) == len(expected)
    assert _canonical(apply_diff(LADDER, changes)) == _canonical(new)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited(), edited())
def test_the_diff_between_two_edited_copies_rebuilds_the_second(
    first: tuple[dict[str, Any], set[Where], dict[str, str]],
    second: tuple[dict[str, Any], set[Where], dict[str, str]],
) -> None:
    old = FrameworkDocument.model_validate(first[0])
    new = FrameworkDocument.model_validate(second[0])
    assert _canonical(apply_diff(old, diff_documents(old, new))) == _canonical(new)
    assert diff_documents(new, new) == []
    # Without the renames a renamed competency is a removal and an addition; both rebuild.
    assert _canonical(apply_diff(LADDER, diff_documents(LADDER, old))) == _canonical(old)


def test_the_summary_says_what_a_level_now_requires() -> None:
    data = copy.deepcopy(BASE)
    comp = next(c for c in data["competencies"] if "senior_pm" in c["expectations"])
    exp = comp["expectations"]["senior_pm"]
    was = exp["required"]
    exp["required"], exp["critical"] = was + 1, True
    new = FrameworkDocument.model_validate(data)
    text = summary_markdown(
        LADDER, new, diff_documents(LADDER, new), old_label="v1", new_label="v2"
    )
    assert f"Senior Product Manager now requires {comp['name']} {was + 1} (was {was})" in text
    assert f"Senior Product Manager: {comp['name']} is now critical" in text


@pytest.mark.parametrize("optional", ["competency_map", "release_notes"])
def test_a_document_without_map_or_notes_dumps_as_before(optional: str) -> None:
    assert optional not in BASE
