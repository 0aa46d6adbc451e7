"""What generated clients read from the OpenAPI document, beyond what FastAPI writes by itself.

Clients generated from the document (openapi-python-client, openapi-typescript) name methods
after operationIds, group them by the top-level tags, take their base URL from `servers`, and
type an error by the schema declared under the media type the service actually sends. FastAPI
puts a response `model` under `application/json` only, so problem responses are moved to
`application/problem+json` here, with the `Problem` schema (and its `errors` list).

Maps with a key rule (attributes, expectations, develops, emphasis, changes) come out of pydantic
as `patternProperties`, which generators turn into empty classes: a client could not set a
subject's team. They are written as `additionalProperties` (the value schema) with the key rule
under `propertyNames`, which every generator reads as a map; the server validates keys as before.
"""

import copy
import json
from typing import Any, get_args

from fastapi.routing import APIRoute

from app.assessments.schemas import RaterRole
from app.errors import PROBLEM_JSON, error_responses
from app.frameworks.document import ActivityKind, RoleWeightKey

PROBLEM_REF = "#/components/schemas/Problem"

# In the order a reader meets them; every tag an operation uses must be declared here.
TAGS: list[dict[str, str]] = [
    {"name": "health", "description": "Liveness and readiness probes for load balancers."},
    {
        "name": "frameworks",
        "description": "Competency frameworks (career ladders) and their immutable versions.",
    },
    {"name": "CASE", "description": "1EdTech CASE 1.1 read endpoints over your frameworks."},
    {"name": "subjects", "description": "People, by your own id (`external_ref`); erasure."},
    {"name": "assessments", "description": "Ratings of a person by one rater, singly or in bulk."},
    {
        "name": "scores",
        "description": "Score, gaps, development plan, what-if and history of one person.",
    },
    {"name": "cohorts", "description": "Many people at once: levels, heatmap, biggest gaps."},
    {
        "name": "calibration",
        "description": "Rater effects (lenient, severe, central, halo, misfit), agreement per "
        "competency, and fair averages with the rater effects removed.",
    },
    {"name": "api keys", "description": "Issue and revoke API keys (admin)."},
    {"name": "audit", "description": "Who changed what (admin)."},
    {"name": "webhooks", "description": "Outbound, signed event deliveries (admin)."},
    {
        "name": "learning records",
        "description": "xAPI statements in (HTTP Basic: the API key as password), and how "
        "their actors map to people.",
    },
]

# Response headers a client acts on, by operationId (the success response carries them).
_ETAG_AND_LOCATION = ("ETag", "Location")
RESPONSE_HEADERS: dict[str, tuple[str, ...]] = {
    "create_subject": _ETAG_AND_LOCATION,
    "get_subject": ("ETag",),
    "update_subject": ("ETag",),
    "create_framework": _ETAG_AND_LOCATION,
    "import_framework": _ETAG_AND_LOCATION,
    "import_case_package": _ETAG_AND_LOCATION,
    "create_framework_draft": _ETAG_AND_LOCATION,
    "clone_framework": _ETAG_AND_LOCATION,
    "get_framework": ("ETag",),
    "get_framework_version": ("ETag",),
    "update_draft": ("ETag",),
    "publish_framework_version": ("ETag",),
    "create_assessment": ("Location",),
}
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "Strong ETag of this state; send it as If-Match to update.",
        "schema": {"type": "string"},
    },
    "Location": {"description": "Path of the created resource.", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Idempotency-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key (nothing was created again).",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

# Enumerations pydantic writes out wherever a Literal is used (the rater role four times, so a
# generator made four classes of it): one component each, referenced everywhere.
NAMED_ENUMS: dict[str, tuple[tuple[str, ...], str]] = {
    "RaterRole": (get_args(RaterRole), "Who gave a rating; `calibrated` overrides the others."),
    "WeightedRole": (get_args(RoleWeightKey), "A rater role that carries a weight."),
    "ActivityKind": (get_args(ActivityKind), "What kind of development step an activity is."),
}

# Relative, so "Try it out" in /docs calls the service that served the page, wherever it runs;
# a generated client is given its base URL.
FASTAPI_422 = "Validation Error"  # the description FastAPI gives the 422 it adds itself

SERVERS: list[dict[str, str]] = [{"url": "/", "description": "The service serving this document"}]


def operation_id(route: APIRoute) -> str:
    """The route function's name (`get_score`, `create_subject`): what a person would call it."""
    return route.name


def _schemas_generators_read(node: Any) -> None:
    """Rewrite, in place, what generators misread: one-pattern `patternProperties` maps, and
    tuples of one type (`prefixItems` without `items`, e.g. a step's [before, after])."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1:
            ((pattern, values),) = patterns.items()
            del node["patternProperties"]
            node["additionalProperties"] = values
            node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and prefix and "items" not in node:
            first = prefix[0]
            if all(item == first for item in prefix):
                node["items"] = copy.deepcopy(first)
        for child in node.values():
            _schemas_generators_read(child)
    elif isinstance(node, list):
        for child in node:
            _schemas_generators_read(child)


def _declare_headers(op: dict[str, Any]) -> None:
    """Declare the response headers clients act on, and If-Match as required where it is."""
    responses: dict[str, Any] = op.get("responses", {})
    names = {p["name"].lower() for p in op.get("parameters", []) if p.get("in") == "header"}
    success = min((code for code in responses if code.startswith("2")), default=None)
    wanted: dict[str, tuple[str, ...]] = {}
    if success is not None:
        replayed = ("Idempotency-Replayed",) if "idempotency-key" in names else ()
        wanted[success] = (*RESPONSE_HEADERS.get(op.get("operationId", ""), ()), *replayed)
    for code in ("429", "503"):
        wanted[code] = ("Retry-After",)
    if "idempotency-key" in names:
        wanted["409"] = ("Retry-After",)  # a request with the same key still in flight
    for code, headers in wanted.items():
        if code in responses and headers:
            declared = responses[code].setdefault("headers", {})
            for name in headers:
                declared[name] = copy.deepcopy(HEADERS[name])
    if "428" in responses:
        for param in op.get("parameters", []):
            if param.get("in") == "header" and param["name"].lower() == "if-match":
                param["required"] = True
                if "schema" in param and "anyOf" in param["schema"]:
                    # Optional in Python only so that a missing one answers 428, not 422.
                    param["schema"] = next(
                        s for s in param["schema"]["anyOf"] if s.get("type") != "null"
                    )


def _name_enums(node: Any) -> Any:
    """The node with every inline copy of a named enumeration replaced by a reference to it."""
    if isinstance(node, dict):
        values = node.get("enum")
        for name, (members, _) in NAMED_ENUMS.items():
            if node.get("type", "string") == "string" and values == list(members):
                kept = {k: v for k, v in node.items() if k == "description"}
                return {"$ref": f"#/components/schemas/{name}", **kept}
        return {key: _name_enums(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_name_enums(item) for item in node]
    return node


def tidy_contract(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with problems, maps, tags, servers and probe security fixed."""
    doc = copy.deepcopy(schema)
    _schemas_generators_read(doc.get("components", {}))
    doc = dict(_name_enums(doc))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, (members, description) in NAMED_ENUMS.items():
        schemas[name] = {"type": "string", "enum": list(members), "description": description}
    doc["components"]["schemas"] = dict(sorted(schemas.items()))
    doc["tags"] = copy.deepcopy(TAGS)
    doc["servers"] = copy.deepcopy(SERVERS)
    for item in doc.get("paths", {}).values():
        for op in item.values():
            if "security" not in op:
                op["security"] = []  # the probes: reachable without a key, on purpose
            _declare_headers(op)
            if "requestBody" in op:  # app/content_types.py refuses other media types
                unsupported = error_responses(415)[415]
                op["responses"].setdefault("415", {"description": unsupported["description"]})
            for status, response in op.get("responses", {}).items():
                if status[:1] in ("4", "5"):
                    content = response.setdefault("content", {})
                    problem = content.get(PROBLEM_JSON, {})
                    problem["schema"] = {"$ref": PROBLEM_REF}
                    response["content"] = {PROBLEM_JSON: problem}
                if status == "422" and response.get("description") == FASTAPI_422:
                    response["description"] = error_responses(422)[422]["description"]
    # FastAPI's own 422 body, added for a route that left its 422 undeclared: every 422 of this
    # service is a problem (rewritten above), so nothing refers to these schemas any more.
    text = json.dumps(doc["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if f'/{name}"' not in text:
            doc["components"]["schemas"].pop(name, None)
    return doc
