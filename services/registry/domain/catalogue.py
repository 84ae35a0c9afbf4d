"""The public-resource catalogue (公共资源目录清单): kinds as data, and the enforced item lifecycle."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from services.common.errors import FieldViolation, InvalidArgument, RuleViolation
from services.registry.domain.numbers import parse_decimal


class AllocationMode(StrEnum):
    MARKET = "market"
    GUIDED = "guided"
    ADMINISTRATIVE = "administrative"


class ResourceStatus(StrEnum):
    REGISTERED = "registered"
    AVAILABLE = "available"
    LISTED = "listed"
    ALLOCATED = "allocated"
    RETIRED = "retired"


# registered → available → listed → allocated → retired; a failed sale returns listed → available.
TRANSITIONS: dict[ResourceStatus, frozenset[ResourceStatus]] = {
    ResourceStatus.REGISTERED: frozenset({ResourceStatus.AVAILABLE, ResourceStatus.RETIRED}),
    ResourceStatus.AVAILABLE: frozenset({ResourceStatus.LISTED, ResourceStatus.RETIRED}),
    ResourceStatus.LISTED: frozenset({ResourceStatus.ALLOCATED, ResourceStatus.AVAILABLE}),
    ResourceStatus.ALLOCATED: frozenset({ResourceStatus.RETIRED}),
    ResourceStatus.RETIRED: frozenset(),
}

_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class ResourceKind:
    code: str
    name: str
    unit: str
    fungible: bool
    attribute_names: tuple[str, ...] = ()

    def violations(self) -> list[FieldViolation]:
        found = []
        if not _CODE.match(self.code):
            found.append(FieldViolation("kind.code", "lower-case letters, digits and _; 2–64 characters"))
        if not self.name.strip():
            found.append(FieldViolation("kind.name", "required"))
        if not self.unit.strip():
            found.append(FieldViolation("kind.unit", "required"))
        return found


# The kinds every jurisdiction starts with; more are data added through DefineResourceKind.
STANDARD_KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("land_use_right", "国有建设用地使用权", "亩", False,
                 ("land_use", "plot_ratio_min", "plot_ratio_max", "term_years")),
    ResourceKind("energy_use_right", "用能权", "tce", True, ("vintage",)),
    ResourceKind("pollutant_discharge_right", "排污权", "t", True, ("pollutant", "vintage")),
    ResourceKind("water_right", "水权", "m3", True, ()),
)

POLLUTANTS = frozenset({"COD", "NH3-N", "SO2", "NOx"})
STANDARD_LAND_CONDITIONS = ("min_investment_per_mu", "min_output_per_mu", "min_tax_per_mu",
                            "max_energy_per_output", "max_emission_per_output")


@dataclass(frozen=True)
class ResourceDraft:
    kind: ResourceKind
    name: str
    region_code: str
    park: str
    quantity: Decimal
    allocation_mode: AllocationMode
    controller_agency_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    standard_land: bool = False

    def violations(self) -> list[FieldViolation]:
        found: list[FieldViolation] = []
        if not self.name.strip():
            found.append(FieldViolation("resource.name", "required"))
        if self.quantity <= 0:
            found.append(FieldViolation("resource.quantity.value", "must be greater than zero"))
        missing = [name for name in self.kind.attribute_names if not self.attributes.get(name, "").strip()]
        for name in missing:
            found.append(FieldViolation(f"resource.attributes[{name}]", f"required for kind {self.kind.code}"))
        if self.kind.code == "pollutant_discharge_right" and self.attributes.get("pollutant") not in POLLUTANTS \
                and "pollutant" not in missing:
            found.append(FieldViolation("resource.attributes[pollutant]", f"one of {sorted(POLLUTANTS)}"))
        for bound in ("plot_ratio_min", "plot_ratio_max", "term_years", *STANDARD_LAND_CONDITIONS):
            value = self.attributes.get(bound)
            if value is not None and not _is_non_negative_number(value):
                found.append(FieldViolation(f"resource.attributes[{bound}]", "must be a non-negative number"))
        low, high = self.attributes.get("plot_ratio_min"), self.attributes.get("plot_ratio_max")
        if low and high and _is_non_negative_number(low) and _is_non_negative_number(high) \
                and Decimal(low) > Decimal(high):
            found.append(FieldViolation("resource.attributes[plot_ratio_min]", "must not exceed plot_ratio_max"))
        if self.standard_land:
            if self.kind.code != "land_use_right":
                found.append(FieldViolation("resource.standard_land", "only land-use rights can be 标准地"))
            elif not any(self.attributes.get(c) for c in STANDARD_LAND_CONDITIONS):
                found.append(FieldViolation("resource.attributes",
                                            "标准地 needs at least one condition: " + ", ".join(STANDARD_LAND_CONDITIONS)))
        return found


def _is_non_negative_number(text: str) -> bool:
    try:
        value = parse_decimal(text, "attribute")
    except InvalidArgument:
        return False
    return value >= 0


def check_transition(current: ResourceStatus, target: ResourceStatus, holder: str) -> None:
    if target not in TRANSITIONS[current]:
        raise RuleViolation(f"a resource cannot move from {current.value} to {target.value}",
                            reason="INVALID_TRANSITION")
    if target is ResourceStatus.ALLOCATED and not holder:
        raise RuleViolation("allocating a resource needs the holder", reason="HOLDER_REQUIRED")
