"""The WSGI apps benchmarks serve: each a factory ``fn(settings) -> WSGI callable``."""

from __future__ import annotations


def raw(settings):
    """The floor: a plain WSGI callable, no framework."""
    body = b"hello"
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]

    def app(environ, start_response):
        start_response("200 OK", headers)
        return [body]

    return app


def falcon_hello(settings):
    """A bare Falcon app answering "hello": the baseline DESIGN.md's targets refer to."""
    import falcon

    class Hello:
        def on_get(self, req, resp):
            resp.content_type = falcon.MEDIA_TEXT
            resp.text = "hello"

    app = falcon.App()
    app.add_route("/", Hello())
    return app


def portico(settings):
    """The configured portal, migrated (its database is the bench run's, fresh per server)."""
    from engine import migrations
    from engine.app import create_app

    app = create_app(settings)
    migrations.migrate(app)
    app.database.close_all()  # no pooled connection crosses gunicorn's fork
    return app


APPS = {"raw": raw, "falcon": falcon_hello, "portico": portico}
