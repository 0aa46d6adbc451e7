"""CASE 1.1 interoperability: the pure converter, conformance to the official schema, the routes."""

import copy
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import InvalidInput
from app.frameworks.document import FrameworkDocument, dump_document, parse_document
from app.frameworks.files import load_file
from app.interop import case
from tests.conftest import Tenant
from tests.factories import small_framework
from tests.interop.standards import package_errors, package_schema, response_errors

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
FIXTURES = Path(__file__).parent / "fixtures"
LADDER = Path(case.__file__).parent.parent / "frameworks" / "builtin" / "product-management.yaml"
SYSTEM = uuid.UUID(int=0)
CASE = "/ims/case/v1p1"


def ladder() -> FrameworkDocument:
    return parse_document(load_file(LADDER.read_bytes(), LADDER.name))


def context(
    doc: FrameworkDocument, owner: uuid.UUID = SYSTEM, version: int = 1
) -> case.ExportContext:
    return case.ExportContext(
        ids=case.CaseIds(owner=owner, key=doc.key, version=version),
        status="published",
        changed_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        base_uri="https://ladder.example/ims/case/v1p1",
    )


def export(doc: FrameworkDocument, **kwargs: Any) -> dict[str, Any]:
    return case.document_to_package(doc, context(doc, **kwargs))


def read(package: dict[str, Any], **kwargs: Any) -> case.ImportResult:
    return case.package_to_document(case.CFPackage.model_validate(package), **kwargs)


def foreign() -> dict[str, Any]:
    """A package as another CASE tool writes it: no extensions, an unknown field and type."""
    data: dict[str, Any] = json.loads((FIXTURES / "foreign-data-literacy.json").read_text())
    return data


def with_identifier(package: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The package with one identifier replaced everywhere (the item and links to it)."""
    replaced: dict[str, Any] = json.loads(json.dumps(package).replace(f'"{old}"', f'"{new}"'))
    return replaced


def entry(report: list[Any], what: str) -> dict[str, Any]:
    """The report entry about ``what`` (report entries as dicts or models)."""
    rows = [r if isinstance(r, dict) else r.model_dump() for r in report]
    found = [r for r in rows if r["what"] == what]
    assert found, f"no report entry {what!r} in {[r['what'] for r in rows]}"
    return found[0]


def tricky() -> FrameworkDocument:
    """Names CASE must normalize, a description equal to its name, optional parts left out."""
    doc = small_framework(name="Engineering\nladder  (2026)")
    doc["competencies"][0]["name"] = "Coding\tand review"
    doc["competencies"][0]["description"] = "Coding\tand review"
    doc["competencies"][1]["description"] = "Designs systems.\n\nSecond paragraph."
    doc["areas"][1]["description"] = "Impact"
    doc["scale"][2]["label"] = "Good  enough"
    return parse_document(doc)


def hostile() -> FrameworkDocument:
    """Labels and names with double spaces, tabs, line breaks and non-ASCII text."""
    doc = small_framework(name="Ladder\t\u00e9t\u00e9  2026")
    labels = ["Not  yet", "Basic\tskills", "Good\u00a0enough", " Tr\u00e8s  bien "]
    for point, label in zip(doc["scale"], labels, strict=True):
        point["label"] = label
    doc["levels"][0]["name"] = "Junior\u3000engineer"
    doc["areas"][0]["name"] = (
        "\u05d4\u05e0\u05d3\u05e1\u05d4  \u0627\u0644\u0647\u0646\u062f\u0633\u0629"
    )
    doc["competencies"][0]["name"] = "Cafe\u0301\t\U0001f600 review"
    return parse_document(doc)


FRAMEWORKS = {
    "ladder": ladder,
    "small": lambda: parse_document(small_framework()),
    "tricky": tricky,
    "hostile": hostile,
}


def conformance_errors(doc: FrameworkDocument) -> list[str]:
    """How the package and the CASE responses of a framework break the official definitions."""
    ctx = context(doc)
    errors = package_errors(export(doc))
    document = case.cf_document(doc, ctx)
    errors += response_errors(document, "CFDocument")
    errors += response_errors({"CFDocuments": [document]}, "CFDocumentSet")
    for identifier, kind in case.identifiers(dump_document(doc), ctx.ids).items():
        if kind == "CFItem":
            errors += response_errors(case.cf_item(doc, ctx, identifier), "CFItem")
    return errors


# --- Conformance to the official CASE 1.1 definitions ---------------------------------------------


def test_official_schema_is_read_with_uuid_and_date_time_checks() -> None:
    schema = package_schema()
    assert schema["$id"].startswith("https://purl.imsglobal.org/spec/case/v1p1/")
    jsonschema.validators.validator_for(schema).check_schema(schema)
    package = export(parse_document(small_framework()))
    package["CFItems"][0]["identifier"] = "not-a-uuid"
    package["CFItems"][1]["lastChangeDateTime"] = "2026-05-01"
    assert [e.split(":")[0] for e in package_errors(package)] == [
        "['CFItems', 0, 'identifier']",
        "['CFItems', 1, 'lastChangeDateTime']",
    ]


@pytest.mark.parametrize("make", FRAMEWORKS.values(), ids=FRAMEWORKS.keys())
def test_exports_conform_to_the_official_case_definitions(make: Any) -> None:
    doc = make()
    assert conformance_errors(doc) == []
    package = export(doc)
    assert len(package["CFItems"]) == len(doc.areas) + len(doc.competencies) + len(doc.levels)
    assert len(package["CFRubrics"]) == 1 + len(doc.competencies)


def test_a_label_case_must_normalize_is_kept_in_an_array_of_extensions() -> None:
    doc = hostile()
    levels = export(doc)["CFRubrics"][0]["CFRubricCriteria"][0]["CFRubricCriterionLevels"]
    assert [lv["quality"] for lv in levels] == [
        "Not yet",
        "Basic skills",
        "Good enough",
        "Tr\u00e8s bien",
    ]
    assert levels[0]["extensions"] == [{case.EXT: {"label": "Not  yet"}}]
    assert read(export(doc)).document.scale[1].label == "Basic\tskills"


def test_packages_written_before_the_array_form_still_import() -> None:
    doc = hostile()
    package = export(doc)
    for rubric in package["CFRubrics"]:
        for crit in rubric["CFRubricCriteria"]:
            for level in crit["CFRubricCriterionLevels"]:
                if "extensions" in level:
                    level["extensions"] = level["extensions"][0]
    assert package_errors(package)  # the old shape is what the official schema refuses
    assert dump_document(read(package).document) == dump_document(doc)


LABEL_TEXT = st.text(
    alphabet=st.sampled_from(list("ab Z\t\u00a0\u2003\u3000\u00e9\u0301\u05d0\U0001f600-.")),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(LABEL_TEXT, min_size=4, max_size=4))
def test_any_scale_labels_export_valid_case_and_come_back(labels: list[str]) -> None:
    data = small_framework()
    for point, label in zip(data["scale"], labels, strict=True):
        point["label"] = label
    try:
        doc = parse_document(data)
    except InvalidInput:
        return  # a framework the service refuses is never exported
    assert conformance_errors(doc) == []
    assert dump_document(read(export(doc)).document) == dump_document(doc)


def test_official_schema_refuses_what_case_forbids() -> None:
    package = export(parse_document(small_framework()))
    level = ["CFRubrics", 0, "CFRubricCriteria", 0, "CFRubricCriterionLevels", 0]
    breakages: dict[str, tuple[Any, ...]] = {
        "identifier not a UUID": ("CFItems", 0, "identifier", "coding"),
        "unknown association type": ("CFAssociations", 0, "associationType", "isFriendOf"),
        "date without a time": ("CFItems", 0, "lastChangeDateTime", "2026-05-01"),
        "undefined field": ("CFItems", 0, "colour", "blue"),
        "criterion level extensions as an object": (*level, "extensions", {"x": {"y": 1}}),
        "another CASE version": ("CFDocument", "caseVersion", "1.0"),
    }
    for what, (*path, value) in breakages.items():
        broken = copy.deepcopy(package)
        target = broken
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        assert package_errors(broken), what
    missing = copy.deepcopy(package)
    del missing["CFItems"][0]["fullStatement"]
    assert package_errors(missing)
    assert package_errors({"CFItems": []})  # no CFDocument


# --- Export -------------------------------------------------------------------------------------


def test_export_is_deterministic_and_identifiers_are_scoped() -> None:
    doc = ladder()
    first, again = export(doc), export(doc)
    assert first == again
    ids = {i["identifier"] for i in first["CFItems"]} | {first["CFDocument"]["identifier"]}
    assert all(uuid.UUID(i).version == 5 for i in ids)
    other_tenant = export(doc, owner=uuid.uuid4())
    assert ids.isdisjoint({i["identifier"] for i in other_tenant["CFItems"]})
    next_version = export(doc, version=2)
    assert next_version["CFDocument"]["identifier"] != first["CFDocument"]["identifier"]


def test_export_reads_as_plain_case() -> None:
    doc = parse_document(small_framework())
    package = export(doc)
    items = {i["humanCodingScheme"]: i for i in package["CFItems"]}
    assert items["coding"]["CFItemType"] == "Competency"
    assert items["craft"]["CFItemType"] == "Area"
    assert items["staff"]["CFItemType"] == "Level"
    parents = {
        a["originNodeURI"]["identifier"]: a["destinationNodeURI"]["identifier"]
        for a in package["CFAssociations"]
        if a["associationType"] == "isChildOf"
    }
    assert parents[items["coding"]["identifier"]] == items["craft"]["identifier"]
    assert parents[items["craft"]["identifier"]] == package["CFDocument"]["identifier"]
    coding = next(r for r in package["CFRubrics"] if r["title"] == "Coding")
    junior = coding["CFRubricCriteria"][0]
    assert junior["CFItemURI"]["identifier"] == items["coding"]["identifier"]
    assert junior["category"] == "Junior"
    assert [(lv["score"], lv["quality"]) for lv in junior["CFRubricCriterionLevels"]] == [
        (0, "None"),
        (1, "Basic"),
        (2, "Good"),
        (3, "Strong"),
    ]
    assert "requires Basic (1)" in junior["description"]
    assert "critical" in junior["description"]


# --- Import: round trip -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    FRAMEWORKS.values(),
    ids=FRAMEWORKS.keys(),
)
def test_export_then_import_gives_the_same_framework(make: Any) -> None:
    doc = make()
    package = export(doc)
    result = read(json.loads(json.dumps(package)))
    assert dump_document(result.document) == dump_document(doc)
    assert [e.what for e in result.report] == ["package profile"]


def test_round_trip_does_not_depend_on_association_or_rubric_order() -> None:
    doc = ladder()
    package = export(doc)
    shuffler = random.Random(7)
    shuffler.shuffle(package["CFAssociations"])
    shuffler.shuffle(package["CFRubrics"])
    assert dump_document(read(package).document) == dump_document(doc)


def test_key_override_replaces_the_packaged_key() -> None:
    result = read(export(parse_document(small_framework())), key="eng-copy")
    assert result.document.key == "eng-copy"


# --- Import: packages from other tools ----------------------------------------------------------


def test_foreign_package_becomes_the_documented_framework() -> None:
    result = read(foreign())
    doc = dump_document(result.document)
    assert doc["key"] == "data-literacy-competencies"
    assert doc["name"] == "Data Literacy Competencies"
    assert [(a["key"], a["name"]) for a in doc["areas"]] == [
        ("dl-1", "Working with data"),
        ("dl-2", "Communicating with data"),
    ]
    comps = {c["key"]: c for c in doc["competencies"]}
    assert list(comps) == ["dl-1-1", "dl-1-2", "dl-2-1", "dl-2-2"]
    assert [c["area"] for c in comps.values()] == ["dl-1", "dl-1", "dl-2", "dl-2"]
    assert {c["weight"] for c in comps.values()} == {1.0}
    assert comps["dl-1-1"]["name"] == "Find and evaluate data sources"
    assert comps["dl-1-1"]["description"] == ""
    assert comps["dl-2-1"]["name"] == "Data visualization"  # abbreviatedStatement
    assert comps["dl-2-1"]["description"].startswith("Chooses and builds charts")
    long_name = comps["dl-2-2"]["name"]
    assert long_name.startswith("Tells a clear story with data") and long_name.endswith("…")
    assert len(long_name) <= 100
    assert comps["dl-2-2"]["description"].endswith("for the decision at hand.")
    assert [(p["value"], p["label"]) for p in doc["scale"]] == [
        (1, "Beginning"),
        (2, "Developing"),
        (3, "Proficient"),
        (4, "Exemplary"),
    ]
    assert [(lv["key"], lv["rank"]) for lv in doc["levels"]] == [("proficient", 1)]
    for comp in comps.values():
        assert comp["expectations"] == {
            "proficient": {"required": 3, "critical": False, "indicators": []}
        }


def test_foreign_import_reports_what_it_did_not_keep() -> None:
    report = read(foreign()).report
    unknown_field = entry(report, "CFPackage.exportedBy")
    assert unknown_field["path"] == ["exportedBy"]
    assert unknown_field["ignored_because"] == "not a CASE 1.1 field"
    assert unknown_field["value"] == {"tool": "Acme CASE Editor", "release": "4.2.1"}
    unknown_type = entry(report, "unknown association type 'isPrerequisiteOf'")
    assert unknown_type["path"] == ["CFAssociations", 6, "associationType"]
    assert unknown_type["ignored_because"] == "not a CASE 1.1 association type"
    related = entry(report, "isRelatedTo association")
    assert "no counterpart" in related["ignored_because"]
    levels = entry(report, "CFItem.educationLevel")
    assert (levels["count"], levels["path"]) == (4, ["CFItems", 1, "educationLevel"])
    assert entry(report, "CFItem.notes")["value"].startswith("Merged from")
    assert entry(report, "CFDocument.creator")["value"] == "Acme Skills Council"
    assert "3" in entry(report, "career levels")["kept_as"]
    assert "1 Beginning" in entry(report, "rubric criterion levels")["kept_as"]


def test_foreign_package_without_rubric_gets_the_default_scale() -> None:
    package = foreign()
    del package["CFRubrics"]
    result = read(package)
    assert [p["value"] for p in dump_document(result.document)["scale"]] == [0, 1, 2, 3, 4, 5]
    assert result.document.competencies[0].expectations["proficient"].required == 3
    assert "default 0-5 scale" in entry(result.report, "proficiency scale")["kept_as"]


def test_foreign_scores_that_are_not_whole_are_renumbered() -> None:
    package = foreign()
    levels = package["CFRubrics"][0]["CFRubricCriteria"][0]["CFRubricCriterionLevels"]
    for level, score in zip(levels, (0.5, 1.5, 2.25, 3.75), strict=True):
        level["score"] = score
    result = read(package)
    assert [p.value for p in result.document.scale] == [0, 1, 2, 3]
    assert result.document.competencies[0].expectations["proficient"].required == 2
    assert "0..n-1" in entry(result.report, "rubric criterion levels")["kept_as"]


def _node(ident: str, code: str | None, text: str) -> dict[str, Any]:
    item: dict[str, Any] = {"identifier": ident, "fullStatement": text}
    if code is not None:
        item["humanCodingScheme"] = code
    return item


def _child(ident: str, child: str, parent: str) -> dict[str, Any]:
    return {
        "identifier": ident,
        "associationType": "isChildOf",
        "originNodeURI": {"title": child, "identifier": child, "uri": f"urn:x:{child}"},
        "destinationNodeURI": {"title": parent, "identifier": parent, "uri": f"urn:x:{parent}"},
    }


def test_foreign_trees_of_any_shape_become_areas_and_competencies() -> None:
    package = {
        "CFDocument": {"identifier": "doc", "title": "Shapes"},
        "CFItems": [
            _node("a", "A", "Area A"),
            _node("b", "B", "Grouping B"),
            _node("c", "C", "Deep leaf C"),
            _node("d", "D", "Leaf D"),
            _node("e", "E", "Top-level leaf E"),
            _node("x", "X", "Cycle X"),
            _node("y", "Y", "Cycle Y"),
            _node("z", "Z", "Child of something elsewhere"),
        ],
        "CFAssociations": [
            _child("1", "a", "doc"),
            _child("2", "b", "a"),
            _child("3", "c", "b"),
            _child("4", "d", "a"),
            _child("5", "e", "doc"),
            _child("6", "x", "y"),
            _child("7", "y", "x"),
            _child("8", "z", "elsewhere"),
        ],
    }
    result = read(package)
    doc = result.document
    assert [(c.key, c.area) for c in doc.competencies] == [
        ("c", "a"),
        ("d", "a"),
        ("y", "x"),
        ("e", "general"),
        ("z", "general"),
    ]
    assert [a.key for a in doc.areas] == ["a", "x", "general"]
    assert "flattened" in entry(result.report, "grouping item below the top level")["kept_as"]
    assert entry(result.report, "isChildOf cycle")["path"] == ["CFItems", 5]
    outside = entry(result.report, "isChildOf association")
    assert "outside this package" in outside["ignored_because"]
    assert entry(result.report, "identifier that is not a CASE UUID")["count"] >= 8


def test_a_cycle_is_cut_on_the_cycle_not_below_it() -> None:
    package = {
        "CFDocument": {"identifier": "doc", "title": "Cycle"},
        "CFItems": [_node("z", "Z", "Below"), _node("x", "X", "X"), _node("y", "Y", "Y")],
        "CFAssociations": [_child("1", "z", "x"), _child("2", "x", "y"), _child("3", "y", "x")],
    }
    result = read(package)
    assert [(c.key, c.area) for c in result.document.competencies] == [("z", "x"), ("y", "x")]
    assert entry(result.report, "isChildOf cycle")["path"] == ["CFItems", 1]


def test_a_very_long_report_is_capped() -> None:
    package = foreign()
    template = package["CFAssociations"][6]
    package["CFAssociations"] = [
        {**template, "identifier": str(uuid.uuid4()), "associationType": f"madeUp{n}"}
        for n in range(case.REPORT_MAX + 50)
    ]
    report = read(package).report
    assert len(report) == case.REPORT_MAX + 1
    assert report[-1].what.endswith("more report entries")


def test_foreign_keys_are_slugs_made_unique() -> None:
    package = {
        "CFDocument": {"identifier": "doc", "title": "Keys"},
        "CFItems": [
            _node("Item One", None, "No coding scheme"),
            _node("i2", "Ré.1 (draft)", "Accented code"),
            _node("i3", "re-1-draft", "Same slug"),
        ],
    }
    result = read(package)
    assert [c.key for c in result.document.competencies] == [
        "item-one",
        "re-1-draft",
        "re-1-draft-2",
    ]
    assert entry(result.report, "item whose key another item already has")["kept_as"] == (
        "key 're-1-draft-2'"
    )
    assert "identifier" in entry(result.report, "item without a humanCodingScheme")["kept_as"]


def _numbered_keys(bases: list[str]) -> list[str]:
    """The documented rule, written the slow obvious way: the smallest free "-n" suffix."""
    taken: set[str] = set()
    out = []
    for base in bases:
        key, n = base, 2
        while key in taken:
            key, n = base[: 64 - len(f"-{n}")] + f"-{n}", n + 1
        taken.add(key)
        out.append(key)
    return out


def _flat(codes: list[str]) -> dict[str, Any]:
    items = [_node(f"i{n}", code, f"Item {n}") for n, code in enumerate(codes)]
    return {"CFDocument": {"identifier": "doc", "title": "Keys"}, "CFItems": items}


def test_many_items_sharing_a_code_get_numbered_keys() -> None:
    result = read(_flat(["SAME"] * 250))
    keys = [c.key for c in result.document.competencies]
    assert keys == ["same"] + [f"same-{n}" for n in range(2, 251)]
    assert entry(result.report, "item whose key another item already has")["count"] == 249


CODES = ["a", "a-2", "a-3", "a-2-2", "b", "x" * 64, "x" * 62 + "-2", "x" * 61 + "-10", "x" * 63]


@settings(max_examples=60, deadline=None)
@given(codes=st.lists(st.sampled_from(CODES), min_size=1, max_size=120))
def test_deduplicated_keys_are_unique_and_follow_the_rule(codes: list[str]) -> None:
    keys = [c.key for c in read(_flat(codes)).document.competencies]
    assert keys == _numbered_keys(codes)
    assert len(set(keys)) == len(keys)
    assert all(len(k) <= 64 for k in keys)


# --- Import: identifiers and errors --------------------------------------------------------------


DL_2 = "fe5b7301-a410-4a76-a95d-08cb1d26d7c2"


def test_strict_mode_refuses_non_uuid_identifiers_by_field() -> None:
    package = with_identifier(foreign(), DL_2, "DL-2")
    package["CFRubrics"][0]["identifier"] = "{" + package["CFRubrics"][0]["identifier"] + "}"
    with pytest.raises(InvalidInput) as refused:
        read(package, strict=True)
    locs = [e.loc for e in refused.value.errors or []]
    assert locs == [["body", "CFItems", 3, "identifier"], ["body", "CFRubrics", 0, "identifier"]]
    lenient = read(package)
    assert [a.key for a in lenient.document.areas] == ["dl-1", "dl-2"]  # links still match
    noted = entry(lenient.report, "identifier that is not a CASE UUID")
    assert (noted["path"], noted["count"]) == (["CFItems", 3, "identifier"], 2)


UUID_FORMS = [
    str(uuid.uuid4()),
    str(uuid.uuid5(uuid.NAMESPACE_URL, "x")),
    "0190f0b2-7c1e-7abc-8def-0123456789ab",  # version 7
    "0190f0b2-7c1e-8abc-cdef-0123456789ab",  # version 8, variant of Microsoft
    "00000000-0000-0000-0000-000000000000",  # nil
    "ffffffff-ffff-ffff-ffff-ffffffffffff",  # max
    "FE5B7301-A410-4A76-A95D-08CB1D26D7C2",  # upper case
    "fe5b7301-a410-0a76-a95d-08cb1d26d7c2",  # version 0
    "fe5b7301a4104a76a95d08cb1d26d7c2",  # no hyphens
    "{fe5b7301-a410-4a76-a95d-08cb1d26d7c2}",
    "urn:uuid:fe5b7301-a410-4a76-a95d-08cb1d26d7c2",
    "fe5b7301-a410-4a76-a95d-08cb1d26d7c",
    "fe5b7301-a410-4a76-a95d-08cb1d26d7c2\n",
    " fe5b7301-a410-4a76-a95d-08cb1d26d7c2",
    "ge5b7301-a410-4a76-a95d-08cb1d26d7c2",
    "DL-2",
]


@pytest.mark.parametrize("value", UUID_FORMS)
def test_strict_mode_accepts_what_the_official_uuid_format_accepts(value: str) -> None:
    schema = package_schema()
    checker = jsonschema.validators.validator_for(schema).FORMAT_CHECKER
    official = checker.conforms(value, "uuid")
    package = foreign()
    package["CFRubrics"][0]["identifier"] = value
    if official:
        assert read(package, strict=True).document.competencies
        return
    with pytest.raises(InvalidInput) as refused:
        read(package, strict=True)
    assert [e.loc for e in refused.value.errors or []] == [["body", "CFRubrics", 0, "identifier"]]


def test_upper_case_uuids_match_their_lower_case_links() -> None:
    package = foreign()
    for assoc in package["CFAssociations"]:
        for end in (assoc["originNodeURI"], assoc["destinationNodeURI"]):
            if end["identifier"] == DL_2:
                end["identifier"] = DL_2.upper()
    assert [c.area for c in read(package).document.competencies] == ["dl-1", "dl-1", "dl-2", "dl-2"]


def test_invalid_frameworks_name_the_package_field() -> None:
    doc = parse_document(small_framework())
    package = export(doc)
    index = next(
        i for i, it in enumerate(package["CFItems"]) if it["humanCodingScheme"] == "design"
    )
    package["CFItems"][index]["extensions"]["competencyLadder"]["weight"] = -1
    with pytest.raises(InvalidInput) as refused:
        read(package)
    (error,) = refused.value.errors or []
    assert error.loc == ["body", "CFItems", index, "weight"]
    assert "competencies.1.weight" in error.msg

    package = export(doc)
    package["CFRubrics"][0]["CFRubricCriteria"][0]["CFRubricCriterionLevels"][2]["score"] = 2.5
    with pytest.raises(InvalidInput) as refused:
        read(package)
    locs = [e.loc for e in refused.value.errors or []]
    levels = ["body", "CFRubrics", 0, "CFRubricCriteria", 0, "CFRubricCriterionLevels"]
    assert [*levels, 2, "value"] in locs

    package = export(doc)
    package["CFAssociations"] = [
        a for a in package["CFAssociations"] if a["originNodeURI"]["title"] != "Coding"
    ]
    with pytest.raises(InvalidInput) as refused:
        read(package)
    (error,) = refused.value.errors or []
    coding = next(
        i for i, it in enumerate(package["CFItems"]) if it["humanCodingScheme"] == "coding"
    )
    assert error.loc == ["body", "CFItems", coding]


def test_foreign_scale_too_long_is_refused_at_the_rubric() -> None:
    package = foreign()
    criterion = package["CFRubrics"][0]["CFRubricCriteria"][0]
    criterion["CFRubricCriterionLevels"] = [
        {"identifier": str(uuid.uuid4()), "quality": f"Step {n}", "score": n} for n in range(30)
    ]
    with pytest.raises(InvalidInput) as refused:
        read(package)
    locs = [e.loc for e in refused.value.errors or []]
    assert ["body", "CFRubrics", 0, "CFRubricCriteria", 0, "CFRubricCriterionLevels"] in locs


# --- HTTP ---------------------------------------------------------------------------------------


def _locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return [e["loc"] for e in response.json()["errors"]]


async def _keys(client: httpx.AsyncClient, tenant: Tenant) -> set[str]:
    r = await client.get("/v1/frameworks", headers=tenant.headers)
    return {i["key"] for i in r.json()["items"]}


async def _import(
    client: httpx.AsyncClient, tenant: Tenant, package: Any, **params: Any
) -> httpx.Response:
    return await client.post(
        "/v1/frameworks/import/case", json=package, params=params, headers=tenant.headers
    )


async def test_builtin_ladder_exports_as_a_valid_case_package(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    url = "/v1/frameworks/product-management/versions/1/export/case"
    r = await client.get(url, headers=tenant_a.headers)
    assert r.status_code == 200, r.text
    assert "product-management-v1.case.json" in r.headers["content-disposition"]
    package = r.json()
    assert package_errors(package) == []
    assert package["CFDocument"]["uri"].startswith(f"http://localhost:8000{CASE}/CFDocuments/")
    assert package["CFDocument"]["adoptionStatus"] == "Adopted"
    again = await client.get(url, headers=tenant_a.headers)
    assert again.json() == package
    missing = await client.get(
        "/v1/frameworks/product-management/versions/9/export/case", headers=tenant_a.headers
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM


async def test_export_import_export_gives_the_same_framework(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    package = (
        await client.get("/v1/frameworks/product-management/versions/1/export/case", headers=h)
    ).json()
    r = await _import(client, tenant_a, package, key="pm-from-case", publish="true")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["framework"]["key"], body["framework"]["status"]) == ("pm-from-case", "published")
    assert r.headers["etag"] == body["framework"]["etag"]
    assert [e["what"] for e in body["report"]] == ["package profile"]
    native = "/v1/frameworks/{}/versions/1/export?format=json"
    original = (await client.get(native.format("product-management"), headers=h)).json()
    copied = (await client.get(native.format("pm-from-case"), headers=h)).json()
    assert original.pop("key") == "product-management"
    assert copied.pop("key") == "pm-from-case"
    assert copied == original
    # Without ?key= the package's own key is used, and the built-in one is read-only.
    r = await _import(client, tenant_a, package)
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM


async def test_foreign_package_imports_reports_and_can_be_scored(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    r = await _import(client, tenant_a, foreign(), publish="true")
    assert r.status_code == 201, r.text
    body = r.json()
    framework = body["framework"]
    assert (framework["key"], framework["version"]) == ("data-literacy-competencies", 1)
    document = framework["document"]
    assert [c["key"] for c in document["competencies"]] == ["dl-1-1", "dl-1-2", "dl-2-1", "dl-2-2"]
    assert [p["label"] for p in document["scale"]] == [
        "Beginning",
        "Developing",
        "Proficient",
        "Exemplary",
    ]
    assert entry(body["report"], "CFPackage.exportedBy")["ignored_because"] == (
        "not a CASE 1.1 field"
    )
    assert entry(body["report"], "unknown association type 'isPrerequisiteOf'")["path"] == [
        "CFAssociations",
        6,
        "associationType",
    ]

    r = await client.post(
        "/v1/subjects", json={"external_ref": "analyst-1", "display_name": "Grace"}, headers=h
    )
    assert r.status_code == 201, r.text
    ratings = {"dl-1-1": 3, "dl-1-2": 4, "dl-2-1": 3, "dl-2-2": 2}
    r = await client.post(
        "/v1/assessments",
        json={
            "subject_ref": "analyst-1",
            "framework": {"key": "data-literacy-competencies"},
            "rater_ref": "mgr-1",
            "rater_role": "manager",
            "assessed_at": "2026-10-01T09:00:00Z",
            "ratings": [{"competency": k, "proficiency": v} for k, v in ratings.items()],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.get(
        "/v1/subjects/analyst-1/score",
        params={"framework": "data-literacy-competencies", "as_of": "2026-11-01T00:00:00Z"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    score = r.json()
    # Readiness (1 + 1 + 1 + 2/3) / 4 is above 0.85 and no competency is more than 1 short.
    assert score["attained_level"]["key"] == "proficient"


async def test_strict_import_refuses_a_non_uuid_identifier(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    package = with_identifier(foreign(), DL_2, "DL-2")
    r = await _import(client, tenant_a, package, strict="true")
    assert _locs(r) == [["body", "CFItems", 3, "identifier"]]
    assert "data-literacy-competencies" not in await _keys(client, tenant_a)
    r = await _import(client, tenant_a, package)
    assert r.status_code == 201, r.text
    assert entry(r.json()["report"], "identifier that is not a CASE UUID")["path"] == [
        "CFItems",
        3,
        "identifier",
    ]


async def test_malformed_packages_get_422_naming_the_field_and_store_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    package = foreign()
    del package["CFItems"][0]["fullStatement"]
    assert ["body", "CFItems", 0, "fullStatement"] in _locs(
        await _import(client, tenant_a, package)
    )

    package = foreign()
    package["CFItems"] = {"not": "a list"}
    assert ["body", "CFItems"] in _locs(await _import(client, tenant_a, package))

    package = foreign()
    package["CFAssociations"][0]["originNodeURI"] = "DL.1"
    assert ["body", "CFAssociations", 0, "originNodeURI"] in _locs(
        await _import(client, tenant_a, package)
    )

    text = json.dumps(foreign()).replace('"score": 4', '"score": NaN')
    r = await client.post(
        "/v1/frameworks/import/case",
        content=text,
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    levels = ["body", "CFRubrics", 0, "CFRubricCriteria", 0, "CFRubricCriterionLevels"]
    assert [*levels, 3, "score"] in _locs(r)

    r = await client.post(
        "/v1/frameworks/import/case",
        content=b"{not json",
        headers={**tenant_a.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM

    package = foreign()
    package["CFItems"] = []
    assert ["body", "CFItems"] in _locs(await _import(client, tenant_a, package))

    own = (
        await client.get(
            "/v1/frameworks/product-management/versions/1/export/case", headers=tenant_a.headers
        )
    ).json()
    own["CFItems"][5]["extensions"]["competencyLadder"]["weight"] = "heavy"
    assert ["body", "CFItems", 5, "weight"] in _locs(
        await _import(client, tenant_a, own, key="pm-broken")
    )

    assert (await _keys(client, tenant_a)) == {"product-management"}


async def _publish_small(client: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await client.post(
        "/v1/frameworks", json=small_framework(), params={"publish": "true"}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text


async def _documents(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    r = await client.get(f"{CASE}/CFDocuments", headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert response_errors(r.json(), "CFDocumentSet") == []
    return {d["title"]: d for d in r.json()["CFDocuments"]}


async def test_case_routes_list_and_fetch_documents_packages_and_items(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    h = tenant_a.headers
    await _publish_small(client, tenant_a)
    draft = small_framework(key="draft-ladder", name="Draft ladder")
    assert (await client.post("/v1/frameworks", json=draft, headers=h)).status_code == 201

    documents = await _documents(client, tenant_a)
    assert set(documents) == {"Product Management Career Ladder", "Engineering ladder"}
    document = documents["Engineering ladder"]
    identifier = document["identifier"]
    base = "http://localhost:8000"  # PUBLIC_BASE_URL's default
    assert document["CFPackageURI"]["uri"] == f"{base}{CASE}/CFPackages/{identifier}"

    r = await client.get(document["uri"], headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == document

    r = await client.get(f"{CASE}/CFPackages/{identifier}", headers=h)
    assert r.status_code == 200, r.text
    package = r.json()
    exported = await client.get("/v1/frameworks/eng-ladder/versions/1/export/case", headers=h)
    assert package == exported.json()
    assert package_errors(package) == []

    coding = next(i for i in package["CFItems"] if i["humanCodingScheme"] == "coding")
    r = await client.get(f"{CASE}/CFItems/{coding['identifier'].upper()}", headers=h)
    assert r.status_code == 200, r.text
    item = r.json()
    assert response_errors(item, "CFItem") == []
    assert item.pop("CFDocumentURI")["identifier"] == identifier
    assert item == coding

    builtin = documents["Product Management Career Ladder"]["identifier"]
    r = await client.get(f"{CASE}/CFPackages/{builtin}", headers=h)
    assert r.status_code == 200
    for path in (
        f"{CASE}/CFItems/{identifier}",  # a document is not an item
        f"{CASE}/CFPackages/{coding['identifier']}",  # nor an item a package
        f"{CASE}/CFPackages/{uuid.uuid4()}",
        f"{CASE}/CFDocuments/not-a-uuid",
    ):
        r = await client.get(path, headers=h)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == PROBLEM


async def test_case_routes_never_show_another_tenants_frameworks(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await _publish_small(client, tenant_a)
    a_documents = await _documents(client, tenant_a)
    private = a_documents["Engineering ladder"]["identifier"]
    package = (await client.get(f"{CASE}/CFPackages/{private}", headers=tenant_a.headers)).json()
    item = package["CFItems"][0]["identifier"]

    b_documents = await _documents(client, tenant_b)
    assert set(b_documents) == {"Product Management Career Ladder"}
    # Built-ins belong to no tenant, so every tenant sees them under the same identifiers.
    builtin = "Product Management Career Ladder"
    assert b_documents[builtin]["identifier"] == a_documents[builtin]["identifier"]
    for path in (
        f"{CASE}/CFPackages/{private}",
        f"{CASE}/CFDocuments/{private}",
        f"{CASE}/CFItems/{item}",
        "/v1/frameworks/eng-ladder/versions/1/export/case",
    ):
        r = await client.get(path, headers=tenant_b.headers)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == PROBLEM


async def test_case_routes_need_a_key_and_their_scope(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    r = await client.get(f"{CASE}/CFDocuments")
    assert r.status_code == 401
    r = await client.post("/v1/frameworks/import/case", json=foreign())
    assert r.status_code == 401
    reader = {"Authorization": f"Bearer {await tenant_a.key('frameworks:read')}"}
    assert (await client.get(f"{CASE}/CFDocuments", headers=reader)).status_code == 200
    r = await client.post("/v1/frameworks/import/case", json=foreign(), headers=reader)
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
