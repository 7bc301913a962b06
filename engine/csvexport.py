"""CSV downloads (BILL-4, USE-8): a header and rows, streamed in chunks as they are read.

``stream(header, rows)`` yields the file as UTF-8 bytes, a few hundred rows at a
time, so a long export never sits in memory; ``send(resp, filename, chunks)``
answers with it as a download. Text that came from outside (a description, a
number dialled) goes through ``safe`` first, so a spreadsheet shows it as text
instead of running it as a formula (CSV injection).
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Iterator, Sequence

import falcon

CONTENT_TYPE = "text/csv; charset=utf-8"
CHUNK_ROWS = 500
#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula: a leading ``'`` marks it as text."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def stream(
    header: Sequence[str], rows: Iterable[Sequence[Any]], chunk_rows: int = CHUNK_ROWS
) -> Iterator[bytes]:
    """The CSV file, a header then ``rows``, in chunks of ``chunk_rows`` lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)

    def drain() -> bytes:
        out = buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
        return out

    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % chunk_rows == 0:
            yield drain()
    yield drain()


def send(resp: falcon.Response, filename: str, chunks: Iterator[bytes]) -> None:
    """Answer with ``chunks`` (``stream``'s output) as the download ``filename``."""
    resp.content_type = CONTENT_TYPE
    resp.downloadable_as = filename
    resp.stream = chunks
