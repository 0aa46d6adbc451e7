"""The routes a request can end on, whatever wraps them."""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import fastapi.routing
from starlette.routing import BaseRoute

# FastAPI 0.165 includes a router as one wrapper route, which matches a request without naming
# the route it ends on and has no path or methods of its own; ``iter_route_contexts`` looks
# through the wrappers. Earlier versions copy the included routes into the app's list instead.
_route_contexts: Callable[[list[BaseRoute]], Iterable[Any]] | None = getattr(
    fastapi.routing, "iter_route_contexts", None
)


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """These routes in the order they are matched, each included router's replaced by its own
    routes as declared. The app's routers declare their prefixes themselves (none is added when
    including), so a leaf's path is the path it answers."""
    if _route_contexts is None:
        yield from routes
        return
    for context in _route_contexts(list(routes)):
        yield context.original_route
