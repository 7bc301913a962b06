"""The portal as an installable web app (MOB-3): manifest, service worker, offline page.

- ``GET /manifest.webmanifest``: name, colours, icons and shortcuts from the theme and the
  enabled sections, in the visitor's language.
- ``GET /sw.js``: the service worker, at the site root so its scope is the whole portal.
  Its logic is the theme's static ``js/sw.js``; this route puts the current, fingerprinted
  shell URLs in front of it, so a changed stylesheet or script changes the worker's bytes
  and browsers install the new one.
- ``GET /offline``: the page the worker shows for a page it has no saved copy of.

What the worker keeps and why is described in ``docs/portal.md``.
"""

from __future__ import annotations

import hashlib
import json

import falcon

#: Files every page needs, kept by the service worker when it installs.
SHELL_STATIC = (
    "css/portico.css",
    "css/theme.css",
    "css/dark.css",
    "css/theme-dark.css",
    "js/portal.js",
    "img/icons.svg",
    "img/logo.svg",
    "img/icon-192.png",
)
#: Pages kept for offline viewing, newest copy only (matched by the worker on the path): the
#: dashboard, services, usage and billing overviews. Not a service's own page: it can hold
#: the eSIM activation code, which should not outlive the page on the device.
OFFLINE_PAGES = (
    r"^/$",
    r"^/services$",
    r"^/usage$",
    r"^/services/\d+/usage$",
    r"^/billing$",
    r"^/billing/transactions$",
    r"^/billing/invoices/\d+$",
)


class Manifest:
    """``GET /manifest.webmanifest``: what the browser needs to install the portal."""

    auth = "public"

    def on_get(self, req, resp):
        app = req.context.app
        theme, _ = app.theme, app.translator.gettext
        name = theme.meta.get("brand_name", "Portico")
        color = theme.env.globals["theme_color"]
        icons = [
            {
                "src": theme.static_url(f"img/icon-{size}.png"),
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any",
            }
            for size in (192, 512)
        ]
        icons.append(
            {
                "src": theme.static_url("img/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            }
        )
        icons.append(
            {
                "src": theme.static_url("img/logo.svg"),
                "sizes": "any",
                "type": "image/svg+xml",
                "purpose": "any",
            }
        )
        shortcuts = [
            {"name": _(s.title), "url": s.path} for _p, s in app.sections if s.path != "/"
        ][:4]
        resp.content_type = "application/manifest+json; charset=utf-8"
        resp.cache_control = ["no-cache"]
        resp.text = json.dumps(
            {
                "id": "/",
                "name": name,
                "short_name": name[:12],
                "description": _("Your account, whenever you need it"),
                "lang": "zh-Hans" if req.context.locale == "zh_Hans" else req.context.locale,
                "start_url": "/",
                "scope": "/",
                "display": "standalone",
                "orientation": "any",
                "theme_color": color,
                "background_color": color,
                "icons": icons,
                "shortcuts": shortcuts,
            },
            ensure_ascii=False,
        )


class ServiceWorker:
    """``GET /sw.js``: the service worker, configured with this deployment's shell."""

    auth = "public"

    def on_get(self, req, resp):
        theme = req.context.app.theme
        source = theme.static_bytes("js/sw.js")
        if source is None:
            raise falcon.HTTPNotFound()
        config = {
            "name": theme.meta.get("brand_name", "Portico"),
            "icon": theme.static_url("img/icon-192.png"),
            "shell": [
                "/offline",
                *(theme.static_url(p) for p in SHELL_STATIC if theme.has_static(p)),
            ],
            "offlinePages": list(OFFLINE_PAGES),
        }
        head = f"self.PORTICO = {json.dumps(config)};\n".encode()
        body = head + source[0]
        # The cache name changes with any byte of the worker, so an update starts afresh.
        version = hashlib.sha256(body).hexdigest()[:12]
        resp.content_type = "text/javascript; charset=utf-8"
        resp.cache_control = ["no-cache"]
        resp.data = body.replace(b"__VERSION__", version.encode())


class OfflinePage:
    """``GET /offline``: shown by the worker for a page it has not saved."""

    auth = "public"

    def on_get(self, req, resp):
        # NOTE: the worker keeps this page for everyone who uses the browser, so it is
        # rendered as for a visitor: no customer ID or account links in a long-lived copy.
        req.context.principal = None
        req.context.app.page(req, resp, "pwa/offline.html")
        resp.cache_control = ["no-cache"]
