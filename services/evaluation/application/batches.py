"""A submission checked as it arrives, batch by batch (pure): rows in columns, each row accepted or refused
with the reasons and messages of rows.py, and the accepted rows as the records to store.

Every way in (the bulk upload's column batches, the stream of single rows, a CSV file, the demo) comes here
as batches. A column is checked with the check its field name was given once (rows.ValueChecks): a column
whose cells are all plain values (or empty) passes in one regular-expression match, any other is checked
cell by cell with the full check, which words every refusal. A row's errors come in the order the
row-by-row check always gave them: identity, values (in column order), the registry (unknown,
deregistered, an adjustment its size class may not carry), duplicates within the submission, no value,
then a numerator without any denominator.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from services.common.errors import FieldViolation, require
from services.evaluation.application.commands import IndicatorBatch, RowInput
from services.evaluation.application.rows import MAX_YEAR, MIN_YEAR, Plain, ValueChecks, check_identity
from services.evaluation.application.views import RowError, RowOutcome

_CELLS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The shape of a 统一社会信用代码 as fields.is_credit_code states it, for a whole column at once.
_CREDIT_CODES = Plain.of("[0-9A-Z]{18}", empty=False)


def batch_of_rows(rows: Sequence[RowInput]) -> IndicatorBatch:
    """Rows submitted one by one (stream, CSV, demo) as one batch: a field a row does not name is an empty
    cell, which supplies nothing, exactly as an absent field."""
    columns: dict[str, list[str]] = {}
    for index, row in enumerate(rows):
        for field, text in row.values.items():
            cells = columns.get(field)
            if cells is None:
                cells = columns[field] = [""] * len(rows)
            cells[index] = text or ""
    return IndicatorBatch([r.credit_code for r in rows], [r.year for r in rows], columns,
                          [r.source_department for r in rows], [r.row_number for r in rows])


def check_shape(batch: IndicatorBatch, index: int) -> int:
    """The number of rows of a well-formed batch; a batch whose columns do not line up is refused whole."""
    rows = len(batch.credit_codes)
    where = f"batches[{index}]"
    problems = []

    def one_per_row(path: str, given: int) -> None:
        if given != rows:
            problems.append(FieldViolation(path, f"one per row: {rows} expected, {given} given"))

    one_per_row(f"{where}.years", len(batch.years))
    for position, cells in enumerate(batch.columns.values()):
        one_per_row(f"{where}.columns[{position}].values", len(cells))
    if batch.source_departments:
        one_per_row(f"{where}.source_departments", len(batch.source_departments))
    if batch.row_numbers:
        one_per_row(f"{where}.row_numbers", len(batch.row_numbers))
    require(problems)
    return rows


class ContentDigest:
    """sha256 of a submission's rows as sent, whatever batches they were cut into and in whatever order the
    columns came: resending the same rows is the same request. Each column (and the codes, years, sources
    and row numbers) is hashed as one JSON list of its cells; an absent column counts as empty cells."""

    def __init__(self) -> None:
        self.rows = 0
        self.streams: dict[str, Any] = {}

    def _stream(self, name: str) -> Any:
        stream = self.streams.get(name)
        if stream is None:
            stream = self.streams[name] = hashlib.sha256()
            if self.rows:
                stream.update(b'"",' * self.rows)  # a column first seen now was empty in earlier rows
        return stream

    def add(self, batch: IndicatorBatch, sources: Sequence[str], numbers: Sequence[int]) -> None:
        rows = len(batch.credit_codes)
        if not rows:
            return
        for name, cells in (("#credit_code", batch.credit_codes), ("#year", batch.years),
                            ("#source_department", sources), ("#row_number", numbers),
                            *((f"field:{field}", cells) for field, cells in batch.columns.items())):
            self._stream(name).update(_CELLS(list(cells))[1:-1].encode() + b",")
        for name, stream in self.streams.items():
            if name.startswith("field:") and name[6:] not in batch.columns:
                stream.update(b'"",' * rows)
        self.rows += rows

    def hexdigest(self) -> str:
        whole = hashlib.sha256(f"rows:{self.rows}\n".encode())
        for name in sorted(self.streams):
            whole.update(f"{json.dumps(name, ensure_ascii=False)}:{self.streams[name].hexdigest()}\n".encode())
        return whole.hexdigest()


class SubmissionCheck:
    """The rows of one submission so far: numbers, identities, sources, clean values and errors."""

    def __init__(self, checks: ValueChecks, denominators: Mapping[str, set[str]]) -> None:
        self.checks = checks
        # A numerator one of whose denominators is land always has one: a row that reaches that check matched
        # an enterprise, whose land held the registry knows.
        self.denominators = {num: dens for num, dens in denominators.items() if "land_mu" not in dens}
        self.numbers: list[int] = []
        self.codes: list[str] = []
        self.years: list[int] = []
        self.sources: list[str] = []
        self.clean: list[dict[str, str]] = []
        self.errors: dict[int, list[RowError]] = {}  # refused rows only, by position
        # (code, year, source) → its row so far, or its rows when there are several
        self._rows_of: dict[tuple[str, int, str], int | list[int]] = {}
        self._fields: set[str] = set()  # every field with a column so far
        self._keys: dict[str, str] = {}  # field → its JSON key, as it opens a value in a stored document
        self._numerators: dict[str, list[int]] = {}  # numerator checked above → rows where it is clean
        self._repeated = False  # some enterprise-year and source in more than one row

    @property
    def rows(self) -> int:
        return len(self.codes)

    def add(self, batch: IndicatorBatch, sources: Sequence[str], numbers: Sequence[int],
            enterprises: Mapping[str, Any]) -> None:
        base, codes, years = self.rows, batch.credit_codes, batch.years
        rows = len(codes)
        if not rows:
            return
        self.numbers.extend(numbers)
        self.codes.extend(codes)
        self.years.extend(years)
        self.sources.extend(sources)
        errors = self.errors
        if not (_CREDIT_CODES.column(codes) and MIN_YEAR <= min(years) and max(years) <= MAX_YEAR):
            for i in [i for i, (code, year) in enumerate(zip(codes, years, strict=True))
                      if not (MIN_YEAR <= year <= MAX_YEAR and _CREDIT_CODES.cell(code))]:
                if found := check_identity(codes[i], years[i]):
                    errors[base + i] = found
        clean: list[dict[str, str]] = [{} for _ in range(rows)]
        for field, cells in batch.columns.items():
            self._fields.add(field)
            check, plain = self.checks.of(field), self.checks.plain(field)
            if plain is not None and plain.column(cells):  # the common case: a clean column
                for row, text in zip(clean, cells, strict=True):
                    if text:
                        row[field] = text
                continue
            for i, text in enumerate(cells):
                if not text:
                    continue  # an empty cell supplies nothing
                if plain is not None and plain.cell(text):
                    clean[i][field] = text
                    continue
                value, error = check(text)
                if error is not None:
                    errors.setdefault(base + i, []).append(error)
                elif value is not None:
                    clean[i][field] = value
        self.clean.extend(clean)
        self._check_registry(base, enterprises, [field for field in batch.columns if field.startswith("adjustment.")])
        self._check_duplicates(base)
        for field in batch.columns.keys() & self.denominators.keys():
            self._numerators.setdefault(field, []).extend(
                [base + i for i, row in enumerate(clean) if field in row])

    def _check_registry(self, base: int, enterprises: Mapping[str, Any], adjustments: list[str]) -> None:
        errors = self.errors
        standing = [enterprises.get(code) for code in self.codes[base:]]
        # Most rows name an active, matched enterprise and have no error yet: only the others are looked at.
        for i in [i for i, enterprise in enumerate(standing)
                  if enterprise is None or enterprise.status == "deregistered" or base + i in errors]:
            position, enterprise = base + i, standing[i]
            if position not in errors:
                code = self.codes[position]
                if enterprise is None:
                    errors[position] = [RowError("credit_code", "unknown_credit_code",
                                                 f"{code} is not registered in the registry")]
                else:
                    errors[position] = [RowError("credit_code", "deregistered", f"{code} is deregistered")]
        for field in adjustments:
            if not self.checks.by_size_class(field):
                continue
            for i, enterprise in enumerate(standing):
                row = self.clean[base + i]
                value = row.get(field)
                if value is None or enterprise is None or enterprise.status == "deregistered":
                    continue
                problem = self.checks.size_class_problem(field, value, enterprise.size_class)
                if problem is not None:
                    del row[field]  # refused as a value is: not recorded, not counted as seen
                    errors.setdefault(base + i, []).append(problem)

    def _check_duplicates(self, base: int) -> None:
        """A field of an enterprise-year from one source once per submission: a later row naming it again is
        refused (the first stays); then a row with no value at all is refused."""
        errors, rows_of, clean = self.errors, self._rows_of, self.clean
        keys = list(zip(self.codes[base:], self.years[base:], self.sources[base:], strict=True))
        if rows_of.keys().isdisjoint(keys) and len(set(keys)) == len(keys):  # the common case: none repeats
            rows_of.update(zip(keys, range(base, self.rows), strict=True))
            for position in [base + i for i, row in enumerate(clean[base:]) if not row]:
                if position not in errors:
                    errors[position] = [RowError("values", "no_values", "the row supplies no value")]
            return
        for position in range(base, self.rows):
            row = clean[position]
            key = (self.codes[position], self.years[position], self.sources[position])
            earlier = rows_of.get(key)
            if earlier is None:
                rows_of[key] = position
                continue
            self._repeated = True
            if isinstance(earlier, int):
                earlier = rows_of[key] = [earlier]
            for field in row:
                first = next((e for e in earlier if field in clean[e]), None)
                if first is not None:
                    errors.setdefault(position, []).append(RowError(
                        field, "duplicate_row", f"{field} for {key[0]} in {key[1]} from {key[2]} already in row "
                                                f"{self.numbers[first]} of this submission"))
            earlier.append(position)
            if not row and position not in errors:
                errors[position] = [RowError("values", "no_values", "the row supplies no value")]

    def pending_denominators(self) -> list[tuple[int, str, set[str]]]:
        """(row, numerator, its denominators) of accepted rows with a numerator none of whose denominators is
        in the row, in row order and, within a row, in its field order: the record decides."""
        errors, clean = self.errors, self.clean
        pending = [(position, num, self.denominators[num]) for num, positions in self._numerators.items()
                   for position in positions
                   if position not in errors and not self.denominators[num] & clean[position].keys()]
        pending.sort(key=lambda p: (p[0], list(clean[p[0]]).index(p[1])))
        return pending

    def refuse_missing_denominators(self, pending: list[tuple[int, str, set[str]]],
                                    stored: set[tuple[str, int, str]]) -> None:
        """One refusal per row, for its first numerator with no denominator in the row nor on record."""
        for position, field, dens in pending:
            if any(e.reason == "missing_denominator" for e in self.errors.get(position, ())):
                continue
            code, year = self.codes[position], self.years[position]
            if not any((code, year, den) in stored for den in dens):
                self.errors.setdefault(position, []).append(RowError(
                    sorted(dens)[0], "missing_denominator",
                    f"{field} needs {' or '.join(sorted(dens))}: not in this row and not on record for {code} in "
                    f"{year}"))

    # ------------------------------------------------------------ the outcome
    def refused_reasons(self) -> Counter:
        return Counter(found[0].reason for found in self.errors.values())

    def accepted(self) -> tuple[list[tuple[int, str, str, str]], int, str]:
        """The records to store as (year, credit code, source department, document), rows of one
        enterprise-year and source merged (their fields are distinct); the number of values; the digest of
        the records as stored, in submission order.

        A document is the JSON object field → value. Every accepted value is plain text that needs no
        escaping (a decimal, an integer, "1" or "0"), so the documents are joined from pieces rather than
        encoded one by one."""
        errors = self.errors
        accepted = [p for p in range(self.rows) if p not in errors] if errors else range(self.rows)
        if self._repeated:
            merged: dict[tuple[str, int, str], dict[str, str]] = {}
            for position in accepted:
                key = (self.codes[position], self.years[position], self.sources[position])
                earlier = merged.get(key)
                merged[key] = self.clean[position] if earlier is None else {**earlier, **self.clean[position]}
            codes, years, sources = (list(part) for part in zip(*merged, strict=True)) if merged else ([], [], [])
            rows = list(merged.values())
        else:
            codes, years, sources = ([column[p] for p in accepted] for column in (self.codes, self.years, self.sources))
            rows = [self.clean[p] for p in accepted]
        keys = self._keys
        for field in self._fields - keys.keys():
            keys[field] = json.dumps(field, ensure_ascii=False) + ':"'
        documents = ["{" + ",".join([keys[field] + value + '"' for field, value in row.items()]) + "}" for row in rows]
        values = sum(map(len, rows))
        # Codes, years, departments and documents hold no control characters: the separators are unambiguous.
        digest = hashlib.sha256("\x1e".join(["\x1f".join(codes), "\x1f".join(map(str, years)), "\x1f".join(sources),
                                             "\x1f".join(documents)]).encode()).hexdigest()
        return list(zip(years, codes, sources, documents, strict=True)), values, digest

    def outcomes(self, *, refused_only: bool) -> tuple[RowOutcome, ...]:
        errors = self.errors
        if refused_only:
            return tuple(RowOutcome(self.numbers[p], self.codes[p], self.years[p], False, tuple(errors[p]))
                         for p in sorted(errors))
        return tuple(RowOutcome(number, code, year, False, tuple(errors[p])) if p in errors else
                     RowOutcome(number, code, year, True, (), len(self.clean[p]))
                     for p, (number, code, year) in enumerate(zip(self.numbers, self.codes, self.years, strict=True)))
