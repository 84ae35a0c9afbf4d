"""Range checks of every number a request brings (INVALID_ARGUMENT with field violations, nothing
changed). The bounds keep every amount the service computes from them (price × quantity, sums of
bids, guarantees) far inside a signed 64-bit integer, the type of every money column."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from services.common.errors import FieldViolation, require

MAX_FEN = 10**16              # ¥100万亿: above any sale; sums of a sale's bids stay inside int64
MAX_LOTS = 10**12             # lots of a bid, an order or a supply
MAX_LOT_SIZE = 10**6          # units of the instrument in one lot
MAX_SECONDS = 7 * 24 * 3600   # countdowns and delays
MAX_BIDDERS = 10_000
MAX_ROLLOVER_SOURCES = 50     # earlier auctions whose unsold lots one quota auction carries in
BASIS_POINTS = 10_000         # 100 %: the largest cover ratio or price-to-reference ratio a policy can ask
CLASSES = range(1, 6)         # evaluation classes 1=A … 5=T
MAX_QUANTITY = Decimal(10**15)
UNDERSUBSCRIPTION_RULES = ("min_cover_bp", "reference_price", "min_price_to_reference_bp")
# A catalogue item's quantity (亩, m² …) has at most the ledger's finest scale.
CATALOGUE_SCALE = 6


class Checks:
    """Collects the violations of one request; `done()` raises them all at once."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def fail(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def fen(self, value: int, field: str, *, positive: bool = True, required: bool = True) -> None:
        """Money in whole fen: > 0 (or ≥ 0), at most MAX_FEN; 0 passes when the field is optional."""
        if not required and value == 0:
            return
        low = 1 if positive else 0
        if not low <= value <= MAX_FEN:
            self.fail(field, f"whole fen from {low} to {MAX_FEN}")

    def count(self, value: int, field: str, *, high: int, low: int = 0) -> None:
        if not low <= value <= high:
            self.fail(field, f"a whole number from {low} to {high}")

    def quantity(self, text: str, field: str, scale: int) -> Decimal | None:
        """A finite positive decimal with at most `scale` decimal places (the instrument's)."""
        try:
            value = Decimal(text.strip())
        except (InvalidOperation, AttributeError):
            self.fail(field, "a decimal number, e.g. 50 or 12.5")
            return None
        if not value.is_finite() or value <= 0 or value > MAX_QUANTITY:
            self.fail(field, f"a finite positive decimal up to {MAX_QUANTITY}")
            return None
        if -value.as_tuple().exponent > scale:
            self.fail(field, f"at most {scale} decimal places (the scale of the instrument)")
            return None
        return value

    def done(self) -> None:
        require(self.violations)


def listing_numbers(spec: dict) -> None:
    """The numbers of a listing draft, whatever its mechanism (the mechanism's own rules come after)."""
    checks = Checks()
    rules, mechanism = spec["rules"], spec["mechanism"]
    checks.fen(rules.get("start_price", 0), "listing.rules.start_price")
    checks.fen(rules.get("increment", 0), "listing.rules.increment",
               required=mechanism in ("listing", "english"))
    checks.fen(rules.get("deposit", 0), "listing.rules.deposit", positive=False)
    checks.count(rules.get("countdown_seconds", 0), "listing.rules.countdown_seconds", high=MAX_SECONDS)
    checks.count(rules.get("min_bidders", 0), "listing.rules.min_bidders", high=MAX_BIDDERS)
    checks.count(rules.get("statistics_delay_seconds", 0), "listing.rules.statistics_delay_seconds",
                 high=MAX_SECONDS)
    checks.count(rules.get("supply_lots", 0), "listing.rules.supply_lots", high=MAX_LOTS)
    checks.count(rules.get("bidder_cap_lots", 0), "listing.rules.bidder_cap_lots", high=MAX_LOTS)
    checks.count(rules.get("min_cover_bp", 0), "listing.rules.min_cover_bp", high=BASIS_POINTS)
    checks.count(rules.get("min_price_to_reference_bp", 0), "listing.rules.min_price_to_reference_bp",
                 high=BASIS_POINTS)
    checks.fen(rules.get("reference_price", 0), "listing.rules.reference_price", required=False)
    checks.fen(rules.get("reserve_floor", 0), "listing.rules.reserve_floor", required=False)
    if mechanism != "uniform_price":
        for name in UNDERSUBSCRIPTION_RULES:
            if rules.get(name):
                checks.fail(f"listing.rules.{name}", "only a uniform-price auction has undersubscription rules")
        for name in ("holding_limit", "rollover_from"):
            if rules.get(name):
                checks.fail(f"listing.rules.{name}", "only a uniform-price quota auction has it")
    lot_size = str(rules.get("lot_size", "") or "")
    if lot_size and (not lot_size.isdigit() or not 1 <= int(lot_size) <= MAX_LOT_SIZE):
        checks.fail("listing.rules.lot_size", f"a whole number of units from 1 to {MAX_LOT_SIZE}")
    for n, value in enumerate(spec["eligibility"].get("allowed_classes", [])):
        if value not in CLASSES:
            checks.fail(f"listing.eligibility.allowed_classes[{n}]", "a class from 1 (A) to 5 (T)")
    if mechanism != "uniform_price" and spec.get("quantity"):
        checks.quantity(spec["quantity"], "listing.quantity", CATALOGUE_SCALE)
    checks.done()


def bid_numbers(price_fen: int, lots: int = 0) -> None:
    checks = Checks()
    checks.fen(price_fen, "price.fen")
    checks.count(lots, "quantity_lots", high=MAX_LOTS)
    checks.done()


MAX_REASON = 500  # characters of a reason announced with a change


def increment_change(increment_fen: int, reason: str) -> None:
    """A change of the 增价幅度: positive whole fen, and the reason that is announced with it."""
    checks = Checks()
    checks.fen(increment_fen, "increment.fen")
    if not reason.strip():
        checks.fail("reason", "required: the change is announced with its reason")
    elif len(reason) > MAX_REASON:
        checks.fail("reason", f"at most {MAX_REASON} characters")
    checks.done()


def order_numbers(price_fen: int, quantity: int) -> None:
    checks = Checks()
    checks.fen(price_fen, "price.fen", required=False)
    checks.count(quantity, "quantity", low=1, high=MAX_LOTS)
    checks.done()
