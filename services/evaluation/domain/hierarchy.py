"""The administrative hierarchy of roll-up units (domain §3.2): GB/T 2260 regions, and the parks in them.

A six-digit GB/T 2260 code says its own level: `xx0000` is a province, `xxxx00` a city (地级), any other a
county-level division (区/县/县级市). A county's city is its first four digits + "00", its province the first
two + "0000". The municipalities (北京 11, 天津 12, 上海 31, 重庆 50) have no city level: their districts roll
up straight into the province-level unit, which is the city. A code of any other shape is not GB/T 2260: it
is a unit of its own (level `other`) without a parent.

A run's tree climbs only as high as its firms need: the top is the lowest unit holding every firm of the
year (the city for a city run, the county for a county run, the province for a run across cities). When no
unit holds them all (codes of several provinces) there is no total and each chain ends at its province.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PROVINCE, CITY, COUNTY, OTHER = "province", "city", "county", "other"
REGION_LEVELS = (PROVINCE, CITY, COUNTY, OTHER)  # top down
MUNICIPALITIES = frozenset({"11", "12", "31", "50"})


def region_level(code: str) -> str:
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return OTHER
    if code.endswith("0000"):
        return PROVINCE
    if code.endswith("00"):
        return CITY
    return COUNTY


def region_chain(code: str) -> tuple[str, ...]:
    """The code and every unit above it, bottom up: 330106 → (330106, 330100, 330000)."""
    level = region_level(code)
    if level in (OTHER, PROVINCE):
        return (code,)
    province, city = code[:2] + "0000", code[:4] + "00"
    if level == CITY or code[:2] in MUNICIPALITIES or city == province:
        return (code, province)
    return (code, city, province)


@dataclass(frozen=True)
class RegionTree:
    """The region units of one run-year: for each firm's region code, the units it counts in."""

    chains: Mapping[str, tuple[str, ...]]  # firm region code → units bottom up, ending at the top
    top: str | None  # the unit holding every firm (the run's total); None when no unit holds them all

    def parent(self, unit: str) -> str:
        """The unit one level up, "" at the top."""
        if unit == self.top:
            return ""
        chain = region_chain(unit)
        return chain[1] if len(chain) > 1 else ""

    def common(self, codes: Iterable[str]) -> str:
        """The lowest unit holding firms of all these region codes ("" when none does).

        This is a park's parent: the district of its firms, or the city when they lie in several districts."""
        chains = [self.chains[code] for code in sorted(set(codes))]
        if not chains:
            return ""
        others = [set(chain) for chain in chains[1:]]
        return next((unit for unit in chains[0] if all(unit in other for other in others)), "")


def region_tree(codes: Iterable[str]) -> RegionTree:
    full = {code: region_chain(code) for code in sorted(set(codes))}
    top = None
    if full:
        first, *rest = full.values()
        top = next((unit for unit in first if all(unit in chain for chain in rest)), None)
    chains = {code: chain[:chain.index(top) + 1] if top is not None else chain for code, chain in full.items()}
    return RegionTree(chains, top)
