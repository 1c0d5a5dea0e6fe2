"""CSV exports whose cells a spreadsheet shows, never runs.

Venue names, addresses and a kiosk's camera error come from outside (a registry, a kiosk): a cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel and
LibreOffice. :func:`safe_cell` puts an apostrophe before such text (OWASP's advice: the spreadsheet
shows the text as typed). Numbers stay numbers, negative ones included; so does text that is
exactly a number (``-3``, ``2.5``), which no spreadsheet reads as a formula. Use it for any XLSX too.
"""

from __future__ import annotations

import csv
import io
import re

from starlette.responses import Response, StreamingResponse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def safe_cell(value):
    """One cell's value for a spreadsheet (see the module's docstring); None is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def _row(r: dict, columns: list[str]) -> list:
    return [safe_cell(r.get(c)) for c in columns]


def _disposition(filename: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}


def csv_response(rows: list[dict], columns: list[str], filename: str, header: list[str] | None = None) -> Response:
    """Rows as a UTF-8 CSV with a byte-order mark (Excel reads Vietnamese right with it); ``header``: the
    first row's words (default: the column names)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([safe_cell(h) for h in header] if header else columns)
    for r in rows:
        w.writerow(_row(r, columns))
    return Response("\ufeff" + buf.getvalue(), media_type="text/csv; charset=utf-8", headers=_disposition(filename))


def csv_stream(rows, columns: list[str], filename: str, header: list[str] | None = None) -> StreamingResponse:
    """The whole city's rows as CSV, written as they come from the database (never all in memory).

    The first chunk (up to 1000 rows) is made before the answer starts: a query that fails, fails
    with an error status, not as a CSV cut off after its header.
    """
    rows = iter(rows)

    def chunk(first: bool) -> tuple[bytes, bool]:
        buf = io.StringIO()
        w = csv.writer(buf)
        if first:
            buf.write("\ufeff")
            w.writerow([safe_cell(h) for h in header] if header else columns)
        n = 0
        for r in rows:
            w.writerow(_row(r, columns))
            n += 1
            if n == 1000:
                return buf.getvalue().encode("utf-8"), True
        return buf.getvalue().encode("utf-8"), False

    head, more = chunk(True)

    def chunks():
        yield head
        going = more
        while going:
            data, going = chunk(False)
            yield data

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8", headers=_disposition(filename))
