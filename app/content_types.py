"""Request bodies in the media types a route documents, and nothing else (415 otherwise).

FastAPI reads JSON only from `application/json`-like requests but hands any other body to the
route as bytes, and routes that read their raw body (bulk, imports) would parse a `text/plain`
body as JSON. One check, from the media types each route declares in the OpenAPI document:
a non-empty body must say which of them it is.
"""

from fastapi import Request
from fastapi.routing import APIRoute

from app.bulk import NDJSON_TYPES
from app.errors import UnsupportedMediaType
from app.frameworks.files import YAML_TYPES

JSON = "application/json"
# The documented media type stands for the names the same format also goes by.
ALIASES = {NDJSON_TYPES[0]: NDJSON_TYPES, YAML_TYPES[0]: YAML_TYPES}


def declared_media_types(route: APIRoute) -> frozenset[str]:
    """The request media types a route documents (JSON for an ordinary body parameter)."""
    extra = (route.openapi_extra or {}).get("requestBody", {}).get("content")
    if extra:
        return frozenset(name for media in extra for name in ALIASES.get(media, (media,)))
    return frozenset({JSON}) if route.body_field is not None else frozenset()


def _accepts(accepted: frozenset[str], media: str) -> bool:
    # application/problem+json and the like are JSON too, as FastAPI itself reads them.
    return media in accepted or (JSON in accepted and media.endswith("+json"))


async def require_declared_media_type(request: Request) -> None:
    """Refuse, with 415, a body whose Content-Type the route does not accept."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = declared_media_types(route)
    if not accepted:
        return
    sent = request.headers.get("content-type")
    if sent is None and not await request.body():
        return  # no body at all: the route's own validation says what is missing
    media = (sent or "").split(";", 1)[0].strip().lower()
    if not _accepts(accepted, media):
        listed = " or ".join(sorted(accepted))
        raise UnsupportedMediaType(
            f"Send the body as {listed} with a matching Content-Type"
            + (f" (got {media!r})." if media else " (none was given).")
        )
