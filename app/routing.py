"""The routes a request can end on, whatever wraps them."""

from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """These routes in the order they are matched, each included router's replaced by its own.

    FastAPI (0.165) includes a router as one wrapper route that holds the router as
    ``original_router``; the wrapper matches a request without naming the route it will end on,
    and has no path or methods of its own. The app's routers declare their prefixes themselves
    (none is added when including), so a leaf's path is the path it answers.
    """
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from leaf_routes(included.routes)
        else:
            yield route
