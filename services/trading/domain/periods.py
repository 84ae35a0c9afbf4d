"""Sale periods, minimum bidders and the price collar as versioned policy data
(services/trading/sale_policy.yaml; 国土资源部令第39号 defaults, evaluation-and-land.md §5.1).

A refusal names the rule (its key in the policy document) and the policy version, so that an agency
knows what to change and an auditor knows which text applied.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendar import WorkingDayCalendar
from .errors import DomainError


@dataclass(frozen=True, slots=True)
class PeriodRules:
    """The periods of one family of sales (land, quotas). `name` prefixes the rule keys in errors."""

    name: str
    announcement_min_days: int = 0      # publication → bidding opens / the auction / tenders open
    listing_min_days: int = 0           # 挂牌: bidding_opens_at → bidding_closes_at
    listing_counts_working_days: bool = True
    auction_min_bidders: int = 1        # 拍卖: fewer registered bidders at the start → cancelled
    tender_min_bidders: int = 1         # 招标: fewer bidders at the opening → unsuccessful

    def min_bidders(self, mechanism: str) -> int:
        return self.tender_min_bidders if mechanism == "tender" else self.auction_min_bidders


@dataclass(frozen=True, slots=True)
class SaleTimers:
    """The clocks of live bidding and of publication, in seconds. Fixed into a listing's rules when it is
    published (the announced terms apply to the whole sale, whatever the policy says later)."""

    listing_countdown_seconds: int      # 挂牌 限时竞价: restarts on each valid bid
    listing_confirmation_seconds: int   # 挂牌: window to confirm joining the live round
    auction_countdown_seconds: int      # 拍卖: restarts on each valid bid, never past the hard stop
    statistics_delay_seconds: int       # quota auction: clearing price first, full statistics after this

    def rules(self, mechanism: str) -> dict[str, int]:
        """The timer rules a listing of `mechanism` carries, by their key in the listing's rules."""
        return {"listing": {"countdown_seconds": self.listing_countdown_seconds,
                            "confirmation_seconds": self.listing_confirmation_seconds},
                "english": {"countdown_seconds": self.auction_countdown_seconds},
                "uniform_price": {"statistics_delay_seconds": self.statistics_delay_seconds}}.get(mechanism, {})

    @classmethod
    def from_data(cls, data: Mapping, where: str) -> SaleTimers:
        names = set(cls.__dataclass_fields__)
        if set(data) != names:
            raise ValueError(f"{where}: timers: needs exactly {sorted(names)}")
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TIMER_SECONDS:
                raise ValueError(f"{where}: timers.{key} must be whole seconds from 1 to {MAX_TIMER_SECONDS}")
        return cls(**data)


MAX_TIMER_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class SalePolicy:
    version: str
    land: PeriodRules       # a catalogue item (国有建设用地使用权): 39号令
    quota: PeriodRules      # an instrument of the ledger (用能权, 排污权 …)
    collar_multiple: Decimal  # a bid above this multiple of the reference price needs a confirmation
    timers: SaleTimers
    timezone: str = "Asia/Shanghai"  # days are counted on the calendar of the place of sale

    def day(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.timezone)).date() if moment.tzinfo else moment.date()

    @classmethod
    def from_data(cls, data: Mapping, where: str = "sale policy") -> SalePolicy:
        version = str(data.get("version") or "")
        if not version:
            raise ValueError(f"{where}: a policy names its version")
        families = {}
        for name in ("land", "quota"):
            section = data.get(name) or {}
            unknown = set(section) - (set(PeriodRules.__dataclass_fields__) - {"name"})
            if unknown:
                raise ValueError(f"{where}: {name}: unknown rules {sorted(unknown)}")
            rules = PeriodRules(name, **section)
            for key in ("announcement_min_days", "listing_min_days", "auction_min_bidders", "tender_min_bidders"):
                value = getattr(rules, key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{where}: {name}.{key} must be a whole number ≥ 0")
            families[name] = rules
        try:
            multiple = Decimal(str((data.get("price_collar") or {}).get("multiple", "")))
        except InvalidOperation:
            raise ValueError(f"{where}: price_collar.multiple must be a decimal > 1") from None
        if not multiple.is_finite() or multiple <= 1:
            raise ValueError(f"{where}: price_collar.multiple must be a decimal > 1")
        timezone = str(data.get("timezone") or "Asia/Shanghai")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{where}: unknown timezone {timezone!r}") from None
        timers = SaleTimers.from_data(data.get("timers") or {}, where)
        return cls(version, families["land"], families["quota"], multiple, timers, timezone)

    def rules_for(self, *, land: bool) -> PeriodRules:
        return self.land if land else self.quota

    def refuse(self, code: str, rule: str, message: str) -> DomainError:
        return DomainError(code, f"{message} (rule {rule}, sale policy {self.version})")


def check_periods(policy: SalePolicy, calendar: WorkingDayCalendar, *, land: bool, mechanism: str,
                  published_at: datetime, opens_at: datetime, closes_at: datetime, min_bidders: int) -> None:
    """Refuse the publication of a sale whose periods break the policy. The announcement counts from
    `published_at` — the moment it is actually published — never from an announce_at in the past."""
    rules = policy.rules_for(land=land)
    opens, closes = policy.day(opens_at), policy.day(closes_at)
    lead = (opens - policy.day(published_at)).days
    if lead < rules.announcement_min_days:
        raise policy.refuse("ANNOUNCEMENT_TOO_SHORT", f"{rules.name}.announcement_min_days",
                            f"published {lead} days before bidding opens; at least "
                            f"{rules.announcement_min_days} days are required")
    if mechanism == "listing" and rules.listing_min_days:
        if rules.listing_counts_working_days:
            days, unit = calendar.working_days_inclusive(opens, closes), "working days"
        else:
            days, unit = (closes - opens).days + 1, "days"
        if days < rules.listing_min_days:
            raise policy.refuse("LISTING_PERIOD_TOO_SHORT", f"{rules.name}.listing_min_days",
                                f"the listing period lasts {days} {unit}; at least {rules.listing_min_days} "
                                "are required")
    if mechanism == "english" and min_bidders < rules.auction_min_bidders:
        raise policy.refuse("MIN_BIDDERS_TOO_LOW", f"{rules.name}.auction_min_bidders",
                            f"an auction needs at least {rules.auction_min_bidders} registered bidders to "
                            f"proceed; the listing asks for {min_bidders}")
    if mechanism == "tender" and min_bidders < rules.tender_min_bidders:
        raise policy.refuse("MIN_BIDDERS_TOO_LOW", f"{rules.name}.tender_min_bidders",
                            f"a tender needs at least {rules.tender_min_bidders} bidders to be awarded; the listing "
                            f"asks for {min_bidders}")


def collar_exceeded(policy: SalePolicy, price_fen: int, reference_fen: int) -> bool:
    """Whether a bid is above the collar: more than `multiple` × the reference (current or start) price."""
    return reference_fen > 0 and Decimal(price_fen) > policy.collar_multiple * reference_fen


def check_collar(policy: SalePolicy, price_fen: int, reference_fen: int, confirmed: bool) -> bool:
    """Refuse an unconfirmed bid above the collar; True when a confirmed one passes it (to be counted)."""
    if not collar_exceeded(policy, price_fen, reference_fen):
        return False
    if not confirmed:
        raise policy.refuse("PRICE_COLLAR", "price_collar.multiple",
                            f"the bid is more than {policy.collar_multiple}× the reference price of "
                            f"{reference_fen} fen; confirm the amount (confirm_high_price) to place it")
    return True
