"""Score a ratings file without a server or database: the CLI's `ladder score`."""

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app import csv_output
from app.frameworks.compile import compile_framework
from app.frameworks.document import parse_document
from app.frameworks.files import load_file
from app.frameworks.service import BUILTIN_DIR
from app.scoring import Framework, Rating, analyze_gaps, evaluate
from app.scoring.engine import as_utc

RATING_FIELDS = (
    "subject_ref",
    "competency",
    "proficiency",
    "rater_ref",
    "rater_role",
    "assessed_at",
)


class RatingsFileError(ValueError):
    """A ratings file that cannot be read, with the line or item at fault."""


@dataclass(frozen=True, slots=True)
class Row:
    subject_ref: str
    attained_level: str | None
    next_level: str | None
    level_index: float
    readiness_next: float | None
    confidence: float
    top_gap: str | None


def load_framework(source: str | None) -> Framework:
    """A framework file, or the built-in ladder by key (default: product-management)."""
    key = source or "product-management"
    path = Path(key)
    if not path.exists():
        path = BUILTIN_DIR / f"{key}.yaml"
        if not path.exists():
            raise RatingsFileError(f"no framework file or built-in framework {key!r}")
    return compile_framework(parse_document(load_file(path.read_bytes(), path.name)), 1)


def read_ratings(path: Path) -> dict[str, list[Rating]]:
    """Ratings grouped by subject from CSV (header row) or JSON (a list of objects)."""
    text = path.read_text(encoding="utf-8")
    records: Iterable[dict[str, Any]]
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise RatingsFileError("a JSON ratings file holds a list of rating objects")
        records = data
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = set(RATING_FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise RatingsFileError(f"missing CSV column(s): {', '.join(sorted(missing))}")
        records = reader
    grouped: dict[str, list[Rating]] = defaultdict(list)
    for number, record in enumerate(records, start=1):
        try:
            moment = as_utc(datetime.fromisoformat(str(record["assessed_at"])))
            grouped[str(record["subject_ref"])].append(
                Rating(
                    competency=str(record["competency"]),
                    proficiency=float(record["proficiency"]),
                    rater_ref=str(record["rater_ref"]),
                    role=str(record["rater_role"]),
                    assessed_at=moment,
                    sequence=number,
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RatingsFileError(f"rating {number}: {exc}") from None
    return grouped


def score_all(
    fw: Framework,
    ratings: dict[str, list[Rating]],
    *,
    as_of: datetime,
    track: str | None,
    progress: Iterator[str] | None = None,
) -> list[Row]:
    """One row per subject, in subject order."""
    rows = []
    for ref in progress if progress is not None else iter(sorted(ratings)):
        ev = evaluate(fw, ratings[ref], as_of=as_of, track=track)
        gaps = analyze_gaps(fw, ev)
        top = max(gaps.items, key=lambda i: i.readiness_points_lost, default=None)
        rows.append(
            Row(
                subject_ref=ref,
                attained_level=ev.attained_level,
                next_level=ev.next_level,
                level_index=ev.level_index,
                readiness_next=ev.level(ev.next_level).readiness if ev.next_level else None,
                confidence=ev.confidence,
                top_gap=top.competency
                if top is not None and top.readiness_points_lost > 0
                else None,
            )
        )
    return rows


def render(rows: list[Row], fmt: str) -> str:
    """Rows as an aligned table, CSV or JSON."""
    header = (
        "subject_ref",
        "attained_level",
        "next_level",
        "level_index",
        "readiness_next",
        "confidence",
        "top_gap",
    )

    def cells(row: Row, missing: str = "-") -> list[str]:
        def num(v: float | None) -> str:
            return "" if v is None else f"{v:.2f}"

        return [
            row.subject_ref,
            row.attained_level or missing,
            row.next_level or missing,
            num(row.level_index),
            num(row.readiness_next),
            num(row.confidence),
            row.top_gap or missing,
        ]

    if fmt == "json":
        return json.dumps(
            [dict(zip(header, (getattr(r, h) for h in header), strict=True)) for r in rows],
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv_output.Writer(out)
        writer.writerow(header)
        writer.writerows(cells(r, missing="") for r in rows)  # empty, as in the API's CSV
        return out.getvalue()
    table = [list(header), *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    )
