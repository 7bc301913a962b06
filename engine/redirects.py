"""Where a redirect taken from a request may go: only to a path on this site."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from marshmallow import ValidationError, fields

from engine.i18n import N_

#: Characters a path and query keep as they are; anything else is percent-encoded.
_KEEP = "/?&=#%:@!$'()*+,;~-._"
MAX_LENGTH = 500  # what a session keeps to go on to after the second sign-in step


def local_path(target: object, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default``: never an open redirect.

    APPSEC: refused are a scheme or a host (``https://x``, ``//x``), a backslash (browsers
    read ``/\\x`` as ``//x``), and control characters: browsers drop tabs and newlines from
    URLs (``/\\n/x`` becomes ``//x``), and CR/LF would end the ``Location`` header. Other
    text is percent-encoded, so the header is always plain ASCII.
    """
    if not isinstance(target, str) or not target.startswith("/"):
        return default
    if "\\" in target or any(c < " " or c == "\x7f" for c in target):
        return default
    try:
        target = quote(target, safe=_KEEP)  # a lone surrogate cannot be encoded: refused
    except UnicodeEncodeError:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//") or len(target) > MAX_LENGTH:
        return default
    return target


class LocalPath(fields.String):
    """A form or API field naming where to go next: a path on this site (``local_path``), or
    a field error. For targets a legitimate page always sends well-formed."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        path = local_path(text, "")
        if not path:
            raise ValidationError(N_("Not a path on this site."))
        return path
