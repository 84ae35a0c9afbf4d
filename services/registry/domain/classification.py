"""Checks of the national classification codes the registry keys data by.

GB/T 4754-2017 industries: a section letter and a 2–4 digit code whose first two digits (the division)
lie in the section's range, e.g. "C3670". GB/T 2260 divisions: six digits whose first two are a province.
"""

from __future__ import annotations

import re

SECTION_DIVISIONS: dict[str, range] = {
    "A": range(1, 6), "B": range(6, 13), "C": range(13, 44), "D": range(44, 47), "E": range(47, 51),
    "F": range(51, 53), "G": range(53, 61), "H": range(61, 63), "I": range(63, 66), "J": range(66, 70),
    "K": range(70, 71), "L": range(71, 73), "M": range(73, 76), "N": range(76, 80), "O": range(80, 83),
    "P": range(83, 84), "Q": range(84, 86), "R": range(86, 91), "S": range(91, 97), "T": range(97, 98),
}

PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43",
    "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
})

_INDUSTRY = re.compile(r"^([A-T])(\d{2})(\d{0,2})$")


def industry_problem(code: str) -> str | None:
    match = _INDUSTRY.match(code)
    if not match:
        return "must be a GB/T 4754 code: a section letter A–T and 2–4 digits, e.g. C3670"
    section, division = match.group(1), int(match.group(2))
    if division not in SECTION_DIVISIONS[section]:
        return f"division {match.group(2)} is not in section {section} (GB/T 4754-2017)"
    return None


def region_problem(code: str) -> str | None:
    if len(code) != 6 or not code.isdigit():
        return "must be a six-digit GB/T 2260 division code"
    if code[:2] not in PROVINCES:
        return f"{code[:2]} is not a GB/T 2260 province code"
    return None


def is_industrial(code: str) -> bool:
    """Sections B–D (mining, manufacturing, utilities): the scope of 亩均 evaluation of industry."""
    return code[:1] in {"B", "C", "D"}
