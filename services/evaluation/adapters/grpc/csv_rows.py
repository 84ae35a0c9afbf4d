"""An agency's CSV upload → submitted rows (the file format is an adapter concern)."""

from __future__ import annotations

import csv
import io

from services.common.errors import InvalidArgument
from services.evaluation.application.commands import RowInput

MAX_BYTES = 64 * 1024 * 1024


def parse_csv(content: bytes) -> list[RowInput]:
    """Header `credit_code, year, <fields…>`; row_number is the line in the file (the header is line 1)."""
    if not content:
        raise InvalidArgument.field("content", "an empty file")
    if len(content) > MAX_BYTES:
        raise InvalidArgument.field("content", f"at most {MAX_BYTES} bytes")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument.field("content", "must be UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in ("credit_code", "year") if name not in header]
        if missing:
            raise InvalidArgument.field("content", f"the header needs {', '.join(missing)}")
        if len(set(header)) != len(header):
            raise InvalidArgument.field("content", "the header names a column twice")
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            record = dict(zip(header, cells, strict=False))
            code, year = (record.pop("credit_code", "") or "").strip(), (record.pop("year", "") or "").strip()
            rows.append(RowInput(reader.line_num, code, _year(year), {k: v for k, v in record.items() if k}))
    except csv.Error as exc:  # e.g. a cell beyond the csv module's field limit, or an unclosed quote
        raise InvalidArgument.field("content", f"line {reader.line_num}: not readable as CSV ({exc})") from None
    if not rows:
        raise InvalidArgument.field("content", "no data rows")
    return rows


def _year(text: str) -> int:
    """A year as written; anything that is not one becomes 0, which the row check refuses (bad_year)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else 0
