"""The committed OpenAPI document is the app's, and every route documents its errors."""

import json

from app.config import PROJECT_ROOT, Settings
from app.main import ROUTERS, create_app
from app.scores.router import router as scores_router

OPENAPI_FILE = PROJECT_ROOT / "openapi" / "openapi.json"


def _current() -> dict[str, object]:
    return create_app(Settings(load_builtin_frameworks=False)).openapi()


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(OPENAPI_FILE.read_text())
    assert committed == _current(), "openapi/openapi.json drifted: run `make openapi` and commit it"


def test_every_operation_documents_problem_responses() -> None:
    doc = _current()
    for path, item in doc["paths"].items():  # type: ignore[attr-defined]
        for method, op in item.items():
            codes = set(op["responses"])
            if path == "/healthz":  # liveness never fails while the process can answer
                continue
            assert codes & {"400", "401", "404", "422", "503"}, (
                f"{method.upper()} {path} documents no errors"
            )
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in response.get("content", {}), (
                        method,
                        path,
                        code,
                    )
            assert op.get("summary"), f"{method.upper()} {path} has no summary"


def _operations(doc: dict[str, object]) -> list[tuple[str, str, dict[str, object]]]:
    paths: dict[str, dict[str, dict[str, object]]] = doc["paths"]  # type: ignore[assignment]
    return [(method, path, op) for path, item in paths.items() for method, op in item.items()]


def test_problem_responses_are_typed_under_the_media_type_sent() -> None:
    # A generated client types an error by the schema under the media type it receives.
    doc = _current()
    problem = doc["components"]["schemas"]["Problem"]  # type: ignore[index]
    assert "errors" in problem["properties"]
    for method, path, op in _operations(doc):
        for code, response in op["responses"].items():  # type: ignore[attr-defined]
            if code.startswith(("4", "5")):
                assert set(response["content"]) == {"application/problem+json"}, (method, path)
                schema = response["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, code)


def test_operation_ids_are_names_a_person_would_write() -> None:
    ids = [str(op["operationId"]) for _, _, op in _operations(_current())]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for operation_id in ids:
        assert operation_id.isidentifier() and operation_id == operation_id.lower(), operation_id
        # FastAPI's default appends the path and method (score_v1_subjects__ref__score_get).
        assert "_v1" not in operation_id and not operation_id.endswith(
            ("_get", "_post", "_put", "_patch", "_delete")
        ), operation_id
    assert {"get_score", "get_gaps", "get_recommendations", "create_subject"} <= set(ids)


def test_tags_servers_and_security_are_declared() -> None:
    doc = _current()
    declared = [tag["name"] for tag in doc["tags"]]  # type: ignore[attr-defined]
    assert len(declared) == len(set(declared))
    used = {tag for _, _, op in _operations(doc) for tag in op["tags"]}  # type: ignore[attr-defined]
    assert used <= set(declared), used - set(declared)
    assert doc["servers"], "generated clients take their default base URL from servers"
    for method, path, op in _operations(doc):
        assert "security" in op, (method, path)
        assert (op["security"] == []) == (path in ("/healthz", "/readyz")), (method, path)


def test_maps_are_described_so_generated_clients_keep_them() -> None:
    # openapi-python-client turns patternProperties into an empty class: `attributes` vanished.
    doc = _current()
    text = json.dumps(doc)
    assert "patternProperties" not in text
    attributes = doc["components"]["schemas"]["SubjectCreate"]["properties"]["attributes"]  # type: ignore[index]
    assert attributes["additionalProperties"]["type"] == "string"
    assert attributes["propertyNames"]["pattern"].startswith("^[A-Za-z0-9]")
    expectations = doc["components"]["schemas"]["Competency"]["properties"]["expectations"]  # type: ignore[index]
    assert expectations["additionalProperties"] == {"$ref": "#/components/schemas/Expectation"}


def test_every_array_schema_says_what_its_items_are() -> None:
    # Spectral (spectral:oas) errs on an array without `items`, e.g. a prefixItems tuple.
    arrays: list[dict[str, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array":
                arrays.append(node)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(_current())
    assert arrays
    for schema in arrays:
        assert "items" in schema, schema


def test_each_enumeration_is_one_component() -> None:
    # The rater role was written out four times, so generators made four classes of it.
    doc = _current()
    text = json.dumps(doc)
    for name, values in (
        ("RaterRole", ["self", "manager", "peer", "direct_report", "external", "calibrated"]),
        ("WeightedRole", ["self", "manager", "peer", "direct_report", "external"]),
    ):
        assert doc["components"]["schemas"][name]["enum"] == values  # type: ignore[index]
        assert text.count(json.dumps(values)) == 1, name
        assert f'"#/components/schemas/{name}"' in text
    names = set(doc["components"]["schemas"])  # type: ignore[index]
    assert {"AssessmentRating", "EvaluateRating", "SubjectPage"} <= names
    assert not {n for n in names if "_" in n}, names  # e.g. Page_SubjectRead_


def test_person_reads_are_matched_first_and_documented_in_reference_order() -> None:
    # Routing tries the included routers in turn; the score, gaps, plan and history reads that
    # dashboards poll are tried first, while the document lists the operations in ROUTERS order.
    app = create_app(Settings(environment="test"))
    included = [getattr(route, "original_router", None) for route in app.routes]
    routers = [router for router in included if router is not None]
    assert routers[0] is scores_router
    assert sorted(routers, key=ROUTERS.index) == list(ROUTERS)
    documented = list(app.openapi()["paths"])
    score = documented.index("/v1/subjects/{ref}/score")
    assert documented.index("/v1/assessments") < score < documented.index("/v1/cohorts/evaluate")
    assert documented[0] == "/healthz"
    assert documented[-1] == "/xapi/statements"
