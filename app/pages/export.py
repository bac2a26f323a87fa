"""Lists exported as CSV by the server-rendered front ends.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
return, which some read past) as a formula: a customer's name or link written as
`=HYPERLINK(…)` would run on the operator's computer. Every such cell is written with a
leading apostrophe, which spreadsheets show as text and never evaluate; nothing else is
changed. Money stays a plain decimal (never exponent notation).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from fastapi.responses import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | datetime | bool | None


def cell(value: Cell) -> str:
    """One value as a CSV cell a spreadsheet shows as written."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> Response:
    """An attachment the browser saves as `filename` (UTF-8 with a byte-order mark, so a
    spreadsheet reads Cyrillic right)."""
    body = "\ufeff" + csv_text(header, rows)
    return Response(
        body.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
