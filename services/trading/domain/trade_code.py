"""统一交易标识码 (evaluation-and-land.md §6): region code (6 digits, GB/T 2260) + trade type code +
year (4 digits) + zero-padded serial. The layout is configuration because the V2.0 text is not
verified [M, low]; every part is fixed width, so distinct parts always give distinct codes."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import DomainError

DEFAULT_TRADE_TYPE_CODES: Mapping[str, str] = {
    "land_use_right": "TD",  # 土地使用权出让
    "energy_use_right": "YN",  # 用能权
    "emission_right": "PW",  # 排污权
    "carbon_quota": "TP",  # 碳排放配额
}


@dataclass(frozen=True, slots=True)
class TradeCodeFormat:
    trade_type_codes: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TRADE_TYPE_CODES))
    serial_width: int = 6

    def __post_init__(self) -> None:
        widths = {len(code) for code in self.trade_type_codes.values()}
        if len(widths) != 1:
            raise ValueError("trade type codes must share one width so codes parse unambiguously")
        if len(set(self.trade_type_codes.values())) != len(self.trade_type_codes):
            raise ValueError("trade type codes must be distinct")

    @property
    def type_width(self) -> int:
        return len(next(iter(self.trade_type_codes.values())))


def make_trade_code(
    fmt: TradeCodeFormat, region_code: str, trade_type: str, year: int, serial: int
) -> str:
    if not re.fullmatch(r"\d{6}", region_code):
        raise DomainError("INVALID_REGION_CODE", "region code must be 6 digits")
    if trade_type not in fmt.trade_type_codes:
        raise DomainError("INVALID_TRADE_TYPE", f"unknown trade type {trade_type!r}")
    if not 1000 <= year <= 9999:
        raise DomainError("INVALID_YEAR", "year must have 4 digits")
    if not 1 <= serial < 10**fmt.serial_width:
        raise DomainError("SERIAL_OUT_OF_RANGE", f"serial must be 1..{10**fmt.serial_width - 1}")
    return f"{region_code}{fmt.trade_type_codes[trade_type]}{year:04d}{serial:0{fmt.serial_width}d}"


@dataclass(frozen=True, slots=True)
class ParsedTradeCode:
    region_code: str
    trade_type: str
    year: int
    serial: int


def parse_trade_code(fmt: TradeCodeFormat, code: str) -> ParsedTradeCode:
    tw, sw = fmt.type_width, fmt.serial_width
    if len(code) != 6 + tw + 4 + sw:
        raise DomainError("INVALID_TRADE_CODE", "wrong length")
    region, type_code, year, serial = code[:6], code[6 : 6 + tw], code[6 + tw : 10 + tw], code[10 + tw :]
    by_code = {v: k for k, v in fmt.trade_type_codes.items()}
    if not (region.isdigit() and year.isdigit() and serial.isdigit()) or type_code not in by_code:
        raise DomainError("INVALID_TRADE_CODE", code)
    return ParsedTradeCode(region, by_code[type_code], int(year), int(serial))


def next_serial(last_issued_serial: int) -> int:
    """Serials are issued strictly increasing per (region, type, year); the store persists the last."""
    return last_issued_serial + 1


def check_unique(code: str, issued_codes: frozenset[str] | set[str]) -> None:
    """Refuse a code that was already issued (a serial reused after a restore, for example)."""
    if code in issued_codes:
        raise DomainError("TRADE_CODE_NOT_UNIQUE", code)
