"""The outermost Falcon middleware: a request id for every request, and its metrics."""

from __future__ import annotations

import time

import falcon

from engine.observe import metrics
from engine.observe.logs import accept_or_new, request_id

HEADER = "X-Request-ID"


class ObserveMiddleware:
    """Sets the request id (the caller's, if sane) for the log lines and the response
    header, and counts and times the request by its route template (never the raw path:
    no ids in labels)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        rid = accept_or_new(req.get_header(HEADER))
        req.env["portico.request_id"] = rid
        req.env["portico.started"] = time.perf_counter()
        request_id.set(rid)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header(HEADER, req.env.get("portico.request_id", ""))
        route = req.uri_template or "unmatched"
        req.env["portico.route"] = route  # the access log can print it: %({portico.route}e)s
        started = req.env.get("portico.started")
        if started is not None:
            metrics.observe_request(
                req.method,
                route,
                falcon.http_status_to_code(resp.status),
                time.perf_counter() - started,
            )
        request_id.set(None)
