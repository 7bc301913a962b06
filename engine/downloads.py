"""Answering file downloads: validators, ``304 Not Modified``, streaming a stored file.

``not_modified(req, resp, etag, modified)`` sets ``ETag`` and ``Last-Modified``
and says whether the client's copy is current (the answer is then a bodiless
304). ``send(resp, opened, ...)`` streams a stored file (``engine.storage``):
falcon hands a file object to the server's ``wsgi.file_wrapper``, so gunicorn
sends a local file with ``sendfile``; other backends are read in blocks. No
download reads or hashes a file to answer: the validators come from the
database or the storage's metadata.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import falcon

from engine.storage import Opened

if TYPE_CHECKING:
    from engine.app import Portico

#: Browsers may keep a customer's document but must ask whether it changed (a 304 if not).
PRIVATE = ("private", "no-cache")


def not_modified(
    req: falcon.Request,
    resp: falcon.Response,
    etag: str | None,
    modified: datetime | None,
    cache_control: tuple[str, ...] = PRIVATE,
) -> bool:
    """Set the validators; True (and status 304) when the client's copy is current.

    ``If-None-Match`` decides when it is sent; ``If-Modified-Since`` only without it
    (RFC 9110, 13.2.2). A malformed date is ignored, as the RFC asks.
    """
    if etag:
        resp.etag = etag
    if modified is not None:
        modified = modified.astimezone(timezone.utc).replace(microsecond=0)
        resp.last_modified = modified
    if cache_control:
        resp.cache_control = list(cache_control)
    if req.if_none_match is not None:
        fresh = etag is not None and any(tag == "*" or tag == etag for tag in req.if_none_match)
    else:
        try:
            since = req.if_modified_since
        except falcon.HTTPInvalidHeader:
            since = None
        fresh = since is not None and modified is not None and modified <= since
    if fresh:
        resp.status = falcon.HTTP_304
    return fresh


def send(
    resp: falcon.Response,
    opened: Opened,
    content_type: str | None = None,
    filename: str | None = None,
) -> None:
    """Stream ``opened`` as the response body (the server closes it once sent)."""
    resp.content_type = content_type or opened.info.content_type
    resp.content_length = opened.info.size
    if filename:
        resp.downloadable_as = filename
    resp.stream = opened.file


def redirect(app: Portico, key: str, filename: str) -> None:
    """Send the client to the store itself (``[storage] s3_redirect``), where it can serve."""
    if app.settings.storage.s3_redirect:
        url = app.storage.url(key, filename=filename)
        if url:
            raise falcon.HTTPFound(url)
