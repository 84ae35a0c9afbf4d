"""统一社会信用代码 (unified social credit code), GB 32100-2015.

18 characters: registration authority (1), organisation category (1), administrative division (6, GB/T 2260),
organisation code (9, GB 11714 with its own check character), and a check character (1) computed mod 31
over the first 17 with weights 3^i mod 31.
"""

from __future__ import annotations

# The 31 characters of the code set: digits and capital letters without I, O, S, V, Z.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def check_character(first17: str) -> str:
    total = sum(VALUE[ch] * weight for ch, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def problem(code: str) -> str | None:
    """Why the code is not a valid credit code, or None when it is."""
    if len(code) != 18:
        return "must be 18 characters"
    bad = sorted({ch for ch in code if ch not in VALUE})
    if bad:
        return f"contains characters outside the GB 32100 code set: {''.join(bad)}"
    if not code[2:8].isdigit():
        return "characters 3-8 must be a six-digit GB/T 2260 division code"
    if check_character(code[:17]) != code[17]:
        return "check character does not match (GB 32100-2015)"
    return None


def is_valid(code: str) -> bool:
    return problem(code) is None


def organisation_check(first8: str) -> str:
    """GB 11714 check character of the 9-character organisation code (used to build realistic codes)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(VALUE[ch] * w for ch, w in zip(first8, weights, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else ("0" if check == 11 else str(check))


def compose(authority: str, category: str, division: str, organisation8: str) -> str:
    """A valid code from its parts (demo data and tests)."""
    body = authority + category + division + organisation8 + organisation_check(organisation8)
    return body + check_character(body)
