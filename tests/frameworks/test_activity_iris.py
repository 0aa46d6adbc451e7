"""Activities carry IRIs (their identity in a learning catalogue); one IRI names one activity."""

from pathlib import Path
from typing import Any

import pytest

from app.errors import InvalidInput
from app.frameworks.document import dump_document, parse_document
from app.frameworks.files import load_file


def ladder(path: Path) -> dict[str, Any]:
    data = load_file(path.read_bytes(), path.name)
    assert isinstance(data, dict)
    return data


def test_builtin_courses_and_certifications_have_iris(ladder_path: Path) -> None:
    doc = parse_document(ladder(ladder_path))
    catalogue = [a for a in doc.activities if a.kind in ("course", "certification")]
    assert catalogue
    for act in catalogue:
        assert act.iri is not None and act.iri.startswith("https://"), act.key
    assert len({a.iri for a in catalogue}) == len(catalogue)


def test_a_document_without_iris_dumps_as_before(ladder_path: Path) -> None:
    data = ladder(ladder_path)
    for act in data["activities"]:
        act.pop("iri", None)
    dumped = dump_document(parse_document(data))
    assert all("iri" not in a and "alternative_iris" not in a for a in dumped["activities"])


def test_iris_round_trip_and_one_iri_names_one_activity(ladder_path: Path) -> None:
    data = ladder(ladder_path)
    first, second = data["activities"][0], data["activities"][1]
    first["iri"] = "https://lms.example.com/courses/1"
    first["alternative_iris"] = ["urn:catalogue:course:1"]
    dumped = dump_document(parse_document(data))
    assert dumped["activities"][0]["alternative_iris"] == ["urn:catalogue:course:1"]
    second["alternative_iris"] = ["urn:catalogue:course:1"]
    with pytest.raises(InvalidInput) as refused:
        parse_document(data)
    assert refused.value.errors is not None
    assert [e.loc for e in refused.value.errors] == [["activities", 1, "alternative_iris", 0]]
    second["alternative_iris"] = []
    first["iri"] = "not an iri"
    with pytest.raises(InvalidInput) as refused:
        parse_document(data)
    assert refused.value.errors is not None
    assert refused.value.errors[0].loc == ["activities", 0, "iri"]
