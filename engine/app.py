"""``create_app(settings)``: the Falcon app with its middleware and every plugin's routes."""

from __future__ import annotations

import functools
import logging
from typing import Any, Iterable

import falcon

import engine
from engine import bodies, db, errors, storage, tasks
from engine.api import build_openapi
from engine.context import Context, Principal
from engine.i18n import N_, Translator
from engine.middleware import RequestMiddleware
from engine.observe.web import ObserveMiddleware
from engine.plugins import PluginError, Plugins, load_plugins
from engine.registry import ANY_STAFF, PUBLIC, PluginState, Route, Section
from engine.settings import Settings, load_settings
from engine.theming import Theme

log = logging.getLogger("portico")


class PorticoRequest(falcon.Request):
    context_type = Context


class Portico:
    """One configured portal: settings, plugins, database, theme, broker and the WSGI app.

    Hooks receive this object as ``app``, so a plugin never needs globals.
    """

    version = engine.__version__

    def __init__(self, settings: Settings, plugins: Plugins):
        self.settings = settings
        self.plugins = plugins
        #: What plugins build once per app, by class (``engine.registry.PluginState``).
        self.state = PluginState()
        for warning in settings.warnings():
            log.warning(warning)
        self.database = db.open_database(settings.database_url)
        db.bind(self.database)
        self.models = self._collect_models()
        self.translator = Translator(plugins)
        self.theme = Theme(settings, plugins, self.translator)
        self.sections = self._collect_sections()
        self.providers = {
            k: v[1]
            for k, v in plugins.unique(
                plugins.collect("payment_providers", app=self), lambda p: p.id, "payment provider"
            ).items()
        }
        self._check_provider()
        self.channels = {
            k: v[1]
            for k, v in plugins.unique(
                plugins.collect("notification_channels", app=self),
                lambda c: c.id,
                "notification channel",
            ).items()
        }
        self.tasks = tasks.TaskRunner(self)
        #: Shared storage of generated files (invoice PDFs, archives): see engine/storage.py.
        self.storage = storage.open_storage(settings)
        self.routes: list[tuple[str, Route]] = []
        self.staff_routes: dict[str, Route] = {}  # URI template -> route, for the middleware
        self.wsgi = self._build_wsgi()

    # -- assembly ------------------------------------------------------------

    def _check_provider(self) -> None:
        """The operator's default provider (``[billing] provider``) must exist (OPS-2)."""
        if "billing" not in self.plugins.enabled:
            return
        wanted = self.settings.plugin("billing").get("provider")
        if wanted not in self.providers:
            raise PluginError(
                f"billing.provider: no payment provider '{wanted}' (available: "
                f"{', '.join(sorted(self.providers)) or 'none'})"
            )

    def _collect_models(self) -> dict[str, list]:
        out: dict[str, list] = {}
        index = self.plugins.unique(
            self.plugins.collect("register_models"), lambda m: m._meta.table_name, "table"
        )
        for _table, (plugin, model) in index.items():
            out.setdefault(plugin, []).append(model)
        return out

    def _collect_sections(self) -> list[tuple[str, Section]]:
        pairs = self.plugins.collect("register_sections", app=self)
        self.plugins.unique(pairs, lambda s: s.id, "section")
        return sorted(pairs, key=lambda p: (p[1].order, p[1].id))

    def _build_wsgi(self) -> falcon.App:
        app = falcon.App(
            request_type=PorticoRequest,
            response_type=falcon.Response,
            middleware=[ObserveMiddleware(), RequestMiddleware(self)],
        )
        app.req_options.strip_url_path_trailing_slash = True
        app.req_options.auto_parse_form_urlencoded = False
        app.req_options.media_handlers[falcon.MEDIA_JSON] = bodies.JSON
        app.resp_options.secure_cookies_by_default = self.settings.security.cookie_secure
        errors.install(app)
        seen = self.plugins.unique(
            self.plugins.collect("register_routes", app=self),
            lambda r: (r.path, r.suffix or ""),
            "route",
        )
        for (_path, _), (plugin, route) in seen.items():
            problem = route.permission_problem()
            if problem:
                raise PluginError(f"plugin '{plugin}' route '{route.path}': {problem}")
            route.resource.plugin = plugin
            try:
                app.add_route(route.path, route.resource, suffix=route.suffix)
            except (ValueError, TypeError) as exc:  # Falcon names the problem; we name the plugin
                raise PluginError(f"plugin '{plugin}' route '{route.path}': {exc}") from None
            self.routes.append((plugin, route))
            if route.permission is not None:
                self.staff_routes[route.path] = route
        app.add_sink(self._not_found, "/")
        return app

    @staticmethod
    def _not_found(req, resp, **_):
        raise falcon.HTTPNotFound(title=N_("Page not found"))

    # -- what resources use ---------------------------------------------------

    def render(self, req: falcon.Request, template: str, **values: Any) -> str:
        """Render a themed template with the shell's context (navigation, user, CSRF, ...)."""
        return self.theme.render(req, template, **values)

    def page(self, req, resp, template: str, status: int = 200, **values: Any) -> None:
        """Answer an HTML page."""
        resp.status = falcon.code_to_http_status(status)
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.render(req, template, **values)

    def permission_for(self, uri_template: str | None, method: str) -> str | None:
        """What a staff route needs for ``method`` (``engine.registry.Route``); None elsewhere."""
        route = self.staff_routes.get(uri_template or "")
        return route.permission_for(method) if route is not None else None

    def staff_may(self, principal: Principal | None, path: str, method: str = "GET") -> bool:
        """Whether the staff route ``path`` (a URI template) is here and ``principal`` may call
        it with ``method``: the staff console shows only the links its reader may follow."""
        route = self.staff_routes.get(path)
        if route is None or principal is None or not principal.is_staff:
            return False
        needed = route.permission_for(method)
        return needed in (PUBLIC, ANY_STAFF) or principal.can(str(needed))

    def staff_permissions(self) -> dict[str, list[str]]:
        """Each staff route and method (``"POST /api/v1/staff/usage"``) by what it needs: a
        permission name, ``ANY_STAFF`` or ``PUBLIC``; ``admin`` is always there (it holds all)."""
        out: dict[str, list[str]] = {"admin": []}
        for path, route in self.staff_routes.items():
            suffix = f"_{route.suffix}" if route.suffix else ""
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                needed = route.permission_for(method)  # never None: staff routes declare one
                if needed is not None and hasattr(route.resource, f"on_{method.lower()}{suffix}"):
                    out.setdefault(needed, []).append(f"{method} {path}")
        return out

    @functools.cached_property
    def openapi_document(self) -> dict[str, Any]:
        """The API as OpenAPI 3.1 (``/api/v1/openapi.json``), built on first use."""
        return build_openapi(self)

    def url(self, path: str) -> str:
        """An absolute URL on the operator's base URL (for emails and links sent out)."""
        return self.settings.base_url.rstrip("/") + "/" + path.lstrip("/")

    def __call__(self, environ, start_response):
        return self.wsgi(environ, start_response)


def create_app(
    settings: Settings | None = None,
    *,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    plugins: Plugins | None = None,
) -> Portico:
    """Build the configured portal. ``extra_plugins`` adds (name, plugin) pairs (tests)."""
    settings = settings or load_settings()
    plugins = plugins or load_plugins(settings, extra_plugins)
    return Portico(settings, plugins)
