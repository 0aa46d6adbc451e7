"""OpenAPI links: how the answer of one operation feeds the next (create, then read or change).

Clients and tools that follow links (Swagger UI shows them; schemathesis chains requests along
them in its stateful tests) learn from them that, for example, the `external_ref` of a created
subject is the `{ref}` of its score. FastAPI cannot declare links, so they are added to the
generated document here.
"""

from typing import Any

# (method, path, status) of the producing response -> link name -> (method, path) of the target
# operation and the runtime expressions that fill the target's parameters.
Target = tuple[str, str, dict[str, str]]

_SUBJECT = {"ref": "$response.body#/external_ref"}
_SUBJECT_WITH_ETAG = {**_SUBJECT, "header.If-Match": "$response.header.ETag"}
_VERSION = {"key": "$response.body#/key", "version": "$response.body#/version"}
_VERSION_WITH_ETAG = {**_VERSION, "header.If-Match": "$response.header.ETag"}
_FRAMEWORK = {"key": "$response.body#/key"}

_SUBJECT_TARGETS: dict[str, Target] = {
    "GetSubject": ("get", "/v1/subjects/{ref}", _SUBJECT),
    "UpdateSubject": ("patch", "/v1/subjects/{ref}", _SUBJECT_WITH_ETAG),
    "EraseSubject": ("delete", "/v1/subjects/{ref}", _SUBJECT),
    "ScoreSubject": ("get", "/v1/subjects/{ref}/score", _SUBJECT),
    "SubjectGaps": ("get", "/v1/subjects/{ref}/gaps", _SUBJECT),
    "SubjectRecommendations": ("get", "/v1/subjects/{ref}/recommendations", _SUBJECT),
    "SubjectHistory": ("get", "/v1/subjects/{ref}/history", _SUBJECT),
    "WhatIf": ("post", "/v1/subjects/{ref}/what-if", _SUBJECT),
    "RecordCompletedActivity": ("post", "/v1/subjects/{ref}/completed-activities", _SUBJECT),
    "ListCompletedActivities": ("get", "/v1/subjects/{ref}/completed-activities", _SUBJECT),
}

# A created version is a draft (or published with ?publish=true): it can be read, updated,
# published, exported, copied into a new draft, listed among its siblings and cloned.
_VERSION_TARGETS: dict[str, Target] = {
    "GetVersion": ("get", "/v1/frameworks/{key}/versions/{version}", _VERSION),
    "UpdateDraft": ("put", "/v1/frameworks/{key}/versions/{version}", _VERSION_WITH_ETAG),
    "PublishVersion": ("post", "/v1/frameworks/{key}/versions/{version}/publish", _VERSION),
    "ExportVersion": ("get", "/v1/frameworks/{key}/versions/{version}/export", _VERSION),
    "ListVersions": ("get", "/v1/frameworks/{key}/versions", _FRAMEWORK),
    "StartDraft": ("post", "/v1/frameworks/{key}/versions", _FRAMEWORK),
    "CloneFramework": ("post", "/v1/frameworks/{key}/clone", _FRAMEWORK),
}

LINKS: dict[tuple[str, str, str], dict[str, Target]] = {
    ("post", "/v1/subjects", "201"): _SUBJECT_TARGETS,
    ("get", "/v1/subjects/{ref}", "200"): {
        "UpdateSubject": ("patch", "/v1/subjects/{ref}", _SUBJECT_WITH_ETAG),
    },
    ("post", "/v1/assessments", "201"): {
        "GetAssessment": ("get", "/v1/assessments/{assessment_id}", {"assessment_id": "$response.body#/id"}),
        "ScoreAssessedSubject": (
            "get",
            "/v1/subjects/{ref}/score",
            {"ref": "$response.body#/subject_ref", "framework": "$response.body#/framework/key"},
        ),
    },
    ("post", "/v1/frameworks", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/import", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/{key}/versions", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/{key}/clone", "201"): _VERSION_TARGETS,
    ("post", "/v1/frameworks/{key}/versions/{version}/publish", "200"): {
        # Only a published version is the framework's "latest published" one.
        "GetFramework": ("get", "/v1/frameworks/{key}", _FRAMEWORK),
        "GetVersion": _VERSION_TARGETS["GetVersion"],
        "ExportVersion": _VERSION_TARGETS["ExportVersion"],
    },
    ("post", "/v1/api-keys", "201"): {
        "RevokeKey": ("delete", "/v1/api-keys/{key_id}", {"key_id": "$response.body#/id"}),
    },
}


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the OpenAPI links above to a generated document, in place; returns it.

    Links name their target by operationId, looked up from the document, so renaming a route
    function cannot leave a dangling link; a link to a route that no longer exists is an error.
    """
    paths: dict[str, Any] = schema.get("paths", {})
    for (method, path, status), targets in LINKS.items():
        response = paths[path][method]["responses"][status]
        links = response.setdefault("links", {})
        for name, (target_method, target_path, parameters) in targets.items():
            links[name] = {
                "operationId": paths[target_path][target_method]["operationId"],
                "parameters": dict(parameters),
            }
    return schema
