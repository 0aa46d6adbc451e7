"""OpenAPI links: how the answer of one operation feeds the next (create, then read or change).

Clients and tools that follow links (Swagger UI shows them; schemathesis chains requests along
them in its stateful tests) learn from them that, for example, the `external_ref` of a created
subject is the `{ref}` of its score. FastAPI cannot declare links, so they are added to the
generated document here.
"""

import copy
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    """The operation a link leads to, and runtime expressions for its parameters and body."""

    method: str
    path: str
    parameters: dict[str, str]
    request_body: dict[str, Any] = field(default_factory=dict)


_SUBJECT = {"ref": "$response.body#/external_ref"}
_SUBJECT_WITH_ETAG = {**_SUBJECT, "header.If-Match": "$response.header.ETag"}
_VERSION = {"key": "$response.body#/key", "version": "$response.body#/version"}
_VERSION_WITH_ETAG = {**_VERSION, "header.If-Match": "$response.header.ETag"}
_FRAMEWORK = {"key": "$response.body#/key"}
_LISTED_FRAMEWORK = {"key": "$response.body#/items/0/key"}

_SUBJECT_TARGETS = {
    "GetSubject": Target("get", "/v1/subjects/{ref}", _SUBJECT),
    "UpdateSubject": Target("patch", "/v1/subjects/{ref}", _SUBJECT_WITH_ETAG),
    "EraseSubject": Target("delete", "/v1/subjects/{ref}", _SUBJECT),
    "ScoreSubject": Target("get", "/v1/subjects/{ref}/score", _SUBJECT),
    "SubjectGaps": Target("get", "/v1/subjects/{ref}/gaps", _SUBJECT),
    "SubjectRecommendations": Target("get", "/v1/subjects/{ref}/recommendations", _SUBJECT),
    "SubjectHistory": Target("get", "/v1/subjects/{ref}/history", _SUBJECT),
    "WhatIf": Target("post", "/v1/subjects/{ref}/what-if", _SUBJECT),
    "RecordCompletedActivity": Target("post", "/v1/subjects/{ref}/completed-activities", _SUBJECT),
    "ListCompletedActivities": Target("get", "/v1/subjects/{ref}/completed-activities", _SUBJECT),
    "AssessSubject": Target(
        "post", "/v1/assessments", {}, {"subject_ref": "$response.body#/external_ref"}
    ),
}

# A created version is a draft (or published with ?publish=true): it can be read, updated,
# published, exported, copied into a new draft, listed among its siblings and cloned.
_VERSION_TARGETS = {
    "GetVersion": Target("get", "/v1/frameworks/{key}/versions/{version}", _VERSION),
    "UpdateDraft": Target("put", "/v1/frameworks/{key}/versions/{version}", _VERSION_WITH_ETAG),
    "PublishVersion": Target("post", "/v1/frameworks/{key}/versions/{version}/publish", _VERSION),
    "ExportVersion": Target("get", "/v1/frameworks/{key}/versions/{version}/export", _VERSION),
    "ListVersions": Target("get", "/v1/frameworks/{key}/versions", _FRAMEWORK),
    "StartDraft": Target("post", "/v1/frameworks/{key}/versions", _FRAMEWORK),
    "CloneFramework": Target("post", "/v1/frameworks/{key}/clone", _FRAMEWORK),
}

# (method, path, status) of the response a link starts from -> link name -> target.
LINKS: dict[tuple[str, str, str], dict[str, Target]] = {
    ("post", "/v1/subjects", "201"): _SUBJECT_TARGETS,
    ("get", "/v1/subjects/{ref}", "200"): {"UpdateSubject": _SUBJECT_TARGETS["UpdateSubject"]},
    ("post", "/v1/assessments", "201"): {
        "GetAssessment": Target(
            "get", "/v1/assessments/{assessment_id}", {"assessment_id": "$response.body#/id"}
        ),
        "ScoreAssessedSubject": Target(
            "get",
            "/v1/subjects/{ref}/score",
            {"ref": "$response.body#/subject_ref", "framework": "$response.body#/framework/key"},
        ),
    },
    # Every tenant sees the built-in templates: read one, or clone it to adapt it.
    ("get", "/v1/frameworks", "200"): {
        "GetListedFramework": Target("get", "/v1/frameworks/{key}", _LISTED_FRAMEWORK),
        "CloneListedFramework": Target("post", "/v1/frameworks/{key}/clone", _LISTED_FRAMEWORK),
    },
    ("post", "/v1/frameworks", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/import", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/{key}/versions", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/{key}/clone", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/{key}/versions/{version}/publish", "200"): {
        # Only a published version is the framework's "latest published" one.
        "GetFramework": Target("get", "/v1/frameworks/{key}", _FRAMEWORK),
        "GetVersion": _VERSION_TARGETS["GetVersion"],
        "ExportVersion": _VERSION_TARGETS["ExportVersion"],
        "AssessAgainstVersion": Target(
            "post",
            "/v1/assessments",
            {},
            {"framework": {"key": "$response.body#/key", "version": "$response.body#/version"}},
        ),
    },
    ("post", "/v1/api-keys", "201"): {
        "RevokeKey": Target("delete", "/v1/api-keys/{key_id}", {"key_id": "$response.body#/id"}),
    },
}


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the OpenAPI links above to a generated document, in place; returns it.

    Links name their target by operationId, looked up from the document, so renaming a route
    function cannot leave a dangling link; a link to a route that no longer exists is an error.
    """
    paths: dict[str, Any] = schema.get("paths", {})
    for (method, path, status), targets in LINKS.items():
        links = paths[path][method]["responses"][status].setdefault("links", {})
        for name, target in targets.items():
            link: dict[str, Any] = {"operationId": paths[target.path][target.method]["operationId"]}
            if target.parameters:
                link["parameters"] = dict(target.parameters)
            if target.request_body:
                link["requestBody"] = copy.deepcopy(target.request_body)
            links[name] = link
    return schema
