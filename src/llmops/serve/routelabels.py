"""BentoML's HTTP metrics labelled by route, never by the raw request path.

    routelabels.install(app, "/v1")   # service.py, before the server starts

BentoML's metrics middleware labels every request with its path, and /metrics is open:
each made-up path (`/x1`, `/x2`, `/%00`, ...) would add series to every scrape for good,
growing the exposition, the scrape time and the process without bound. `install` makes
that middleware see a label instead: the route template a path matches (`/v1/models/
{model_id:path}`), one of BentoML's own endpoints, or `other`. The routes below it still
see the real path.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

# BentoML's own endpoints; the services' API routes are added from BentoML's server context.
BENTOML_PATHS = ("/", "/livez", "/readyz", "/healthz", "/metrics", "/docs.json", "/schema.json")
OTHER = "other"
REAL_PATH = "llmops.real_path"  # where the real path waits, in the scope the label travels in


class Routes:
    """The label of a path: an exact known path, the template of a mounted route, or OTHER."""

    def __init__(self, app: Any = None, mount: str = "", extra: tuple[str, ...] = ()):
        self.app, self.mount, self.extra = app, mount, extra

    @cached_property
    def _known(self) -> tuple[frozenset[str], list[tuple[str, re.Pattern]]]:
        # Read at the first request: the mounted app's routes are added at start-up.
        from starlette.routing import compile_path

        exact, templates = set(BENTOML_PATHS) | set(self.extra), []
        for route in getattr(self.app, "routes", ()):
            path = self.mount + getattr(route, "path", "")
            regex, _, params = compile_path(path)
            if params:
                templates.append((path, regex))
            else:
                exact.add(path)
        return frozenset(exact), templates

    def __call__(self, path: str) -> str:
        exact, templates = self._known
        if path in exact:
            return path
        return next((t for t, regex in templates if regex.match(path)), OTHER)


def install(app: Any, mount: str) -> None:
    """Make BentoML's metrics middleware label requests by route (`Routes(app, mount)`)."""
    from bentoml._internal.context import server_context
    from bentoml._internal.server.http import instruments

    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "by_route", False):
        return
    routes: list[Routes] = []

    class ByRoute(base):  # type: ignore[misc, valid-type]
        by_route = True

        def __init__(self, app_: Any, **options: Any):
            super().__init__(_RealPath(app_), **options)

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket"):
                if not routes:
                    routes.append(Routes(app, mount, tuple(server_context.service_routes)))
                scope = {**scope, "path": routes[0](scope["path"]), REAL_PATH: scope["path"]}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = ByRoute


class _RealPath:
    """Below the metrics middleware: the real path back in the scope."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if REAL_PATH in scope:
            real = scope[REAL_PATH]
            scope = {k: v for k, v in scope.items() if k != REAL_PATH} | {"path": real}
        await self.app(scope, receive, send)
