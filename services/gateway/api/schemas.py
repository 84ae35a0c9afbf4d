"""Request and response models (schema family: `XCreate` in, `XPublic` / `XsPublic` out).

Responses are built from the services' protobuf messages by `from_proto`; enum values are the lower-case
names without their prefix (LISTING_STATE_BIDDING → "bidding"); money is integer fen.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from google.protobuf.json_format import MessageToDict
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _enum(prefix: str):
    def strip(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(prefix):
            return value[len(prefix):].lower()
        return value
    return BeforeValidator(strip)


def from_proto(model: type[M], message, **overrides) -> M:
    data = MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True,
                         unquote_int64_if_possible=True)
    data.update(overrides)
    return model.model_validate(data)


# ---------------------------------------------------------------- what the edge accepts
# Integers exactly as sent (strict: `true` and "5" are not numbers) and within their proto field's type, so
# that nothing out of range reaches a service.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
Fen = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX, description="a positive amount in fen (int64)")]
FenOrZero = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX, description="fen (int64); 0: none")]
Count = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
PositiveCount = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX)]
EvaluationClass = Annotated[int, Field(strict=True, ge=1, le=5, description="1=A 2=B 3=C 4=D 5=T")]

_DECIMAL = re.compile(r"[0-9]{1,24}(\.[0-9]{1,12})?")


def _positive_decimal(value: str) -> str:
    """A decimal quantity as text: digits with an optional fraction, above zero (no NaN, Infinity, sign or
    exponent)."""
    if value == "":
        return value
    try:
        parsed = Decimal(value) if _DECIMAL.fullmatch(value) else None
    except InvalidOperation:
        parsed = None
    if parsed is None or not parsed.is_finite() or parsed <= 0:
        raise ValueError("a positive decimal number such as 12.5")
    return value


# Empty: not given. Otherwise a positive decimal.
DecimalText = Annotated[str, Field(max_length=40), AfterValidator(_positive_decimal)]

# Documents the portal links to: http(s) addresses, or files uploaded to the gateway itself.
UPLOADED_FILE = re.compile(r"/files/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\\\"'<>`]")


def _document_link(value: str) -> str:
    if value == "" or UPLOADED_FILE.fullmatch(value):
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.hostname and not _UNSAFE_IN_URL.search(value):
        return value
    raise ValueError("a document is an http(s) address or a file uploaded to the gateway (/files/…)")


DocumentLink = Annotated[str, Field(max_length=2000), AfterValidator(_document_link)]
ShortText = Annotated[str, Field(max_length=64)]
ConditionValue = Annotated[str, Field(max_length=200)]


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Money(Out):
    fen: int = 0
    currency: str = "CNY"


class Quantity(Out):
    value: str = ""
    unit: str = ""


class PageOf(BaseModel, Generic[T]):
    data: list[T]
    next_page_token: str = Field("", description="pass as page_token for the next page; empty on the last")
    total: int | None = None


# ---------------------------------------------------------------- registry
class EnterprisePublic(Out):
    credit_code: str
    name: str
    industry_code: str = ""
    region_code: str = ""
    park: str = ""
    size_class: Annotated[str, _enum("SIZE_CLASS_")] = ""
    land_held: Quantity | None = None
    status: Annotated[str, _enum("SUBJECT_STATUS_")] = ""
    registered_at: datetime | None = None


class AgencyPublic(Out):
    agency_id: str
    name: str
    region_code: str = ""
    roles: list[Annotated[str, _enum("AGENCY_ROLE_")]] = []


class ResourceKindPublic(Out):
    code: str
    name: str
    unit: str = ""
    fungible: bool = False
    attribute_names: list[str] = []


class ResourcePublic(Out):
    resource_id: str
    kind: str
    name: str
    region_code: str = ""
    park: str = ""
    quantity: Quantity | None = None
    allocation_mode: Annotated[str, _enum("ALLOCATION_MODE_")] = ""
    status: Annotated[str, _enum("RESOURCE_STATUS_")] = ""
    controller_agency_id: str = ""
    attributes: dict[str, str] = {}
    standard_land: bool = False
    holder: str = ""
    registered_at: datetime | None = None


class AccountPublic(Out):
    account_id: str
    holder: str
    instrument: str
    balance: Quantity | None = None
    held: Quantity | None = None
    available: Quantity | None = None
    opened_at: datetime | None = None


class PostingPublic(Out):
    account_id: str = ""
    instrument: str = ""
    balance_delta: Quantity | None = None
    held_delta: Quantity | None = None
    balance_after: Quantity | None = None
    counterparty_account_id: str = ""
    hold_id: str = ""


class LedgerOperationPublic(Out):
    operation_id: str
    type: str
    postings: list[PostingPublic] = []
    memo: str = ""
    actor: str = ""
    at: datetime | None = None
    reference: str = ""


# ---------------------------------------------------------------- trading
Mechanism = Literal["listing", "english", "tender", "uniform_price"]


class EligibilityPublic(Out):
    allowed_classes: list[int] = []
    sale_kind: str = ""
    region_prefixes: list[str] = []
    industry_prefixes: list[str] = []
    standard_land_conditions: dict[str, str] = {}


class RolledOverLotsPublic(Out):
    listing_id: str = ""
    lots: int = 0


class ListingRulesPublic(Out):
    start_price: Money | None = None
    increment: Money | None = None
    deposit: Money | None = None
    countdown_seconds: int = 0
    min_bidders: int = 0
    hard_stop: datetime | None = None
    supply_lots: int = 0
    lot_size: str = ""
    bidder_cap_lots: int = 0
    clearing_rule: str = ""
    seed_digest: str = ""
    seed: str = ""
    award_rule: str = ""
    min_cover_bp: int = 0
    reference_price: Money | None = None
    min_price_to_reference_bp: int = 0
    reserve_floor: Money | None = None
    holding_limit: Quantity | None = Field(None, description="uniform-price: units of the instrument a bidder "
                                                             "may hold after the auction; absent = no limit")
    rollover_from: list[str] = Field([], description="uniform-price: earlier auctions whose unsold lots this "
                                                     "one offers on top of its own")
    rollover_lots: int = Field(0, description="uniform-price: of supply_lots, carried in from rollover_from")
    rolled_over: list[RolledOverLotsPublic] = []
    unsold_lots: int = Field(0, description="uniform-price, once decided: offered and not sold (all if cancelled)")
    rolled_into: str = Field("", description="uniform-price: the later auction that carried the unsold lots")


class ListingPublic(Out):
    listing_id: str
    trade_code: str = ""
    mechanism: Annotated[str, _enum("MECHANISM_")] = ""
    state: Annotated[str, _enum("LISTING_STATE_")] = ""
    agency_id: str = ""
    resource_id: str = ""
    instrument: str = ""
    quantity: Quantity | None = None
    title: str = ""
    description: str = ""
    rules: ListingRulesPublic | None = None
    eligibility: EligibilityPublic | None = None
    announce_at: datetime | None = None
    bidding_opens_at: datetime | None = None
    bidding_closes_at: datetime | None = None
    opening_at: datetime | None = None
    version: int = 0
    reserve_set: bool = False
    reserve_price: Money | None = Field(None, description="only to regulators and the listing agency, "
                                                          "and only after opening")
    documents: list[str] = []
    published_at: datetime | None = None


class ListingCreate(BaseModel):
    mechanism: Mechanism
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    resource_id: str = Field("", max_length=64)
    instrument: str = Field("", max_length=120)
    quantity: DecimalText = Field("", description="decimal quantity of the resource or instrument")
    unit: str = Field("", max_length=10)
    start_price_fen: Fen
    increment_fen: FenOrZero = 0
    deposit_fen: FenOrZero = 0
    countdown_seconds: int = Field(0, strict=True, ge=0, le=3600)
    supply_lots: Count = 0
    lot_size: DecimalText = ""
    bidder_cap_lots: Count = 0
    min_cover_bp: int = Field(0, strict=True, ge=0, le=10_000,
                              description="uniform-price: cancel when valid demand < supply × this / 10,000")
    reference_price_fen: FenOrZero = 0
    min_price_to_reference_bp: int = Field(0, strict=True, ge=0, le=10_000,
                                           description="uniform-price: cancel when the price < reference × this "
                                                       "/ 10,000")
    reserve_floor_fen: FenOrZero = Field(0, description="the national minimum price where one applies: a "
                                                       "secret 底价 / 标底 may not be lower")
    holding_limit: DecimalText = Field("", description="uniform-price: units of the instrument (the listing's "
                                                       "unit) a bidder may hold after the auction; empty = none")
    rollover_from: list[ShortText] = Field([], max_length=50,
                                           description="uniform-price: earlier auctions of the agency and "
                                                       "instrument whose unsold lots this one offers too")
    allowed_classes: list[EvaluationClass] = Field([], max_length=5)
    sale_kind: str = Field("", max_length=64)
    standard_land_conditions: dict[ShortText, ConditionValue] = Field({}, max_length=30)
    announce_at: datetime | None = None
    bidding_opens_at: datetime | None = None
    bidding_closes_at: datetime | None = None
    opening_at: datetime | None = None
    documents: list[DocumentLink] = Field([], max_length=50)


class ListingUpdate(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    bidding_closes_at: datetime | None = None
    documents: list[DocumentLink] | None = Field(None, max_length=50)
    change_reason: str = Field("", max_length=500)


class ReservePriceCreate(BaseModel):
    reserve_price_fen: Fen


class IncrementChange(BaseModel):
    increment_fen: Fen = Field(description="the new 增价幅度 in fen; applies from the next bid on")
    reason: str = Field(min_length=1, max_length=500, description="announced with the change")


class CancelCreate(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ChangeNoticePublic(Out):
    listing_id: str
    version: int = 0
    reason: str = ""
    changed_fields: list[str] = []
    published_at: datetime | None = None
    bids_invalidated: bool = False
    increment: Money | None = Field(None, description="an increment change: the new 增价幅度")
    previous_increment: Money | None = Field(None, description="an increment change: the 增价幅度 it replaced")


class RegistrationCreate(BaseModel):
    credit_code: str = Field(min_length=18, max_length=18, description="the enterprise registering: your own")
    guarantee_fen: FenOrZero = Field(0, description=(
        "uniform-price auctions: the bid guarantee held in the ledger, at least the value of all the bids the "
        "enterprise will place (price × lots × lot size); other sales hold their fixed deposit"))


class RegistrationPublic(Out):
    registration_id: str
    listing_id: str
    credit_code: str = ""
    bidder_number: str = ""
    state: Annotated[str, _enum("REGISTRATION_STATE_")] = ""
    eligibility_rule: str = ""
    eligibility_detail: str = ""
    deposit: Money | None = None
    deposit_state: str = ""
    confirmed_continue: bool = False
    registered_at: datetime | None = None


class BidCreate(BaseModel):
    credit_code: str = Field(min_length=18, max_length=18)
    price_fen: Fen
    quantity_lots: Count = 0
    tender_document: DocumentLink = Field("", max_length=500)
    confirm_high_price: StrictBool = Field(False, description=(
        "true to place a bid above the sale's price collar (a configured multiple of the current price); "
        "without it such a bid is refused with reason PRICE_CONFIRMATION_REQUIRED"))


class BidChange(BaseModel):
    credit_code: str = Field(min_length=18, max_length=18)
    price_fen: FenOrZero = 0
    quantity_lots: Count = 0


class CreditCodeBody(BaseModel):
    credit_code: str = Field(min_length=18, max_length=18)


class QuotaBidOutcomePublic(Out):
    """How one uniform-price bid fared, for its bidder: filled in full, partially or not, why, and its place in
    the tie draw (tie_rank = first 8 bytes of sha256(seed ‖ 0x00 ‖ bid id), drawn in ascending rank)."""

    bid_id: str = ""
    price: Money | None = None
    lots: int = 0
    lots_won: int = 0
    fill: str = Field("", description="full | partial | none")
    reason: str = Field("", description="'' | tie_draw | remaining_volume | outbid | purchase_cap | holding_limit "
                                        "| auction_cancelled")
    cut_by_purchase_cap_lots: int = 0
    cut_by_holding_limit_lots: int = 0
    tied: bool = False
    draw_position: int = 0
    tied_bids: int = 0
    tie_rank: str = ""


class BidPublic(Out):
    bid_id: str
    listing_id: str
    bidder_number: str = ""
    credit_code: str = ""
    state: Annotated[str, _enum("BID_STATE_")] = ""
    price: Money | None = None
    quantity_lots: int = 0
    sealed: bool = False
    receipt: str = ""
    accepted_at: datetime | None = None
    sequence: int = 0
    refusal_reason: str = ""
    outcome: QuotaBidOutcomePublic | None = Field(None, description="uniform-price, once cleared: how this bid "
                                                                    "fared — to its bidder only")


class SaleStatePublic(Out):
    listing_id: str
    state: Annotated[str, _enum("LISTING_STATE_")] = ""
    current_price: Money | None = None
    leading_bidder_number: str = ""
    accepted_bids: int | None = Field(None, description="absent while bids are sealed (before opening)")
    registered_bidders: int | None = Field(None, description="absent while bids are sealed (before opening)")
    closes_at: datetime | None = None
    server_time: datetime | None = None
    version: int = 0
    next_minimum_bid: Money | None = None
    increment: Money | None = Field(None, description="the current 增价幅度 (挂牌, 拍卖); it may change during the sale")


class IncrementChanged(Out):
    state: SaleStatePublic
    notice: ChangeNoticePublic


class BidPlaced(Out):
    bid: BidPublic
    state: SaleStatePublic | None = None


class AllocationPublic(Out):
    bidder_number: str = ""
    credit_code: str = ""
    lots: int = 0
    amount: Money | None = None


class TieDrawPublic(Out):
    price: Money | None = None
    lots: int = 0
    ranks: list[str] = []


class SaleResultPublic(Out):
    listing_id: str
    outcome: str = ""
    reason: str = ""
    clearing_price: Money | None = None
    winner_bidder_number: str = ""
    winner_credit_code: str = ""
    volume_lots: int = 0
    allocations: list[AllocationPublic] = []
    statistics_published: bool = False
    bid_count: int = 0
    bidder_count: int = 0
    cover_ratio: str = ""
    trade_id: str = ""
    decided_at: datetime | None = None
    reserve_price: Money | None = None
    supply_lots: int = 0
    unsold_lots: int = 0
    rollover_lots: int = 0
    rolled_over: list[RolledOverLotsPublic] = []
    rolled_into: str = ""
    tie_draw: TieDrawPublic | None = Field(None, description="uniform-price: the price level, the lots drawn for "
                                                             "and the tied bids' ranks in draw order")
    own_bids: list[QuotaBidOutcomePublic] = Field([], description="uniform-price: the calling bidder's own bids")


class TradePublic(Out):
    trade_id: str
    trade_code: str = ""
    listing_id: str = ""
    instrument: str = ""
    buyer_credit_code: str = ""
    seller: str = ""
    quantity: Quantity | None = None
    price: Money | None = None
    amount: Money | None = None
    settlement_state: Annotated[str, _enum("SETTLEMENT_STATE_")] = ""
    settlement_operation_id: str = ""
    settlement_attempts: int = 0
    executed_at: datetime | None = None
    settled_at: datetime | None = None
    confirmed: bool = False


class OrderCreate(BaseModel):
    """An order. Its cost is held in the registry before it is accepted: a buy price × quantity fen (a market
    buy the top of the day's band), a sell its units (409 INSUFFICIENT_FUNDS / INSUFFICIENT_HOLDINGS)."""

    credit_code: str = Field(min_length=18, max_length=18)
    instrument: str = Field(min_length=1, max_length=120)
    side: Literal["buy", "sell"]
    type: Literal["limit", "market", "level"] = Field(
        "limit", description="limit; market; level: take one of the other side's best price levels (挂牌协议)")
    price_fen: FenOrZero = Field(0, description="limit: the limit; level: the price the book shows at `level`")
    quantity: PositiveCount
    level: int = Field(0, strict=True, ge=0, le=50, description=(
        "type level only: the other side's price level to take, 1 = best, up to the book's taker_levels (5). "
        "It trades at that level only, at price_fen, and the unfilled rest is cancelled; if the level no "
        "longer shows price_fen the order is refused (409 LEVEL_PRICE_CHANGED / LEVEL_EMPTY)"))


class OrderAmend(BaseModel):
    credit_code: str = Field(min_length=18, max_length=18)
    price_fen: FenOrZero = 0
    quantity: Count = 0


class OrderPublic(Out):
    order_id: str
    instrument: str = ""
    credit_code: str = ""
    side: Annotated[str, _enum("SIDE_")] = ""
    type: Annotated[str, _enum("ORDER_TYPE_")] = ""
    price: Money | None = None
    quantity: int = 0
    filled: int = 0
    state: Annotated[str, _enum("ORDER_STATE_")] = ""
    reject_reason: str = ""
    created_at: datetime | None = None
    block: bool = False


class OrderPlaced(Out):
    order: OrderPublic
    trades: list[TradePublic] = []


class PriceLevelPublic(Out):
    price: Money | None = None
    quantity: int = 0
    orders: int = 0
    level: int = 0  # 1 = best: what a level order names


class OrderBookPublic(Out):
    instrument: str = ""
    bids: list[PriceLevelPublic] = []
    asks: list[PriceLevelPublic] = []
    last_price: Money | None = None
    previous_close: Money | None = None
    band_low: Money | None = None
    band_high: Money | None = None
    open: bool = False
    server_time: datetime | None = None
    taker_levels: int = 0  # a level order chooses among this many best levels of the other side


class MarketPublic(Out):
    instrument: str
    name: str = ""
    unit: str = ""
    lot_size: str = ""
    previous_close: Money | None = None
    last_price: Money | None = None
    volume_today: int = 0
    open: bool = False
    trade_code: str = ""


class InstrumentStatisticsPublic(Out):
    instrument: str
    trades: int = 0
    volume: int = 0
    value: Money | None = None
    vwap: Money | None = None
    high: Money | None = None
    low: Money | None = None


class MarketStatisticsPublic(Out):
    instruments: list[InstrumentStatisticsPublic] = []
    open_sales: int = 0
    settlement_backlog: int = 0
    sales_by_state: dict[str, int] = {}
    single_bidder_sales: int = 0


class AuditVerificationPublic(Out):
    service: str = ""
    intact: bool
    entries_checked: int = 0
    first_broken_sequence: int = 0
    problem: str = ""


# ---------------------------------------------------------------- identity
class TokenPublic(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LoginCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshCreate(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class UserPublic(BaseModel):
    username: str
    role: str
    subject: str
    display_name: str = ""


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Literal["enterprise", "regulator", "admin"]
    credit_code: str = Field("", max_length=18)
    display_name: str = Field("", max_length=200)


class ApiKeyCreate(BaseModel):
    agency_id: str = Field(min_length=1, max_length=64)
    label: str = Field("", max_length=200)


class ApiKeyPublic(BaseModel):
    agency_id: str
    api_key: str = Field(description="shown once; only its digest is stored")


class HealthPublic(BaseModel):
    status: str
    services: dict[str, bool] = {}


# ---------------------------------------------------------------- evaluation
class IndicatorScorePublic(Out):
    indicator: str
    unit: str = ""
    direction: str = ""
    weight: str = ""
    value: str = Field("", description="decimal text; empty when it could not be computed")
    benchmark: str = ""
    ratio: str = ""
    score: str = ""
    capped: bool = False
    missing_rule: str = ""
    percentile_in_pool: str = ""


class RuleFiredPublic(Out):
    rule_id: str = ""
    kind: str = ""
    detail: str = ""
    from_grade: str = ""
    to_grade: str = ""


class AdjustmentPublic(Out):
    item_id: str = ""
    count: int = 0
    points: str = ""


class MeasurePublic(Out):
    lever: str = ""
    rule: str = ""
    rate: str = ""
    rate_unit: str = ""
    basis_quantity: str = ""
    basis_unit: str = ""
    estimated_yearly_amount: str = Field("", description="yuan, decimal text; empty when not estimable")
    amount_unit: str = ""
    effect: str = Field("", description="cost | benefit | quota | priority | access")

    def __str__(self) -> str:
        rate = f" {self.rate} {self.rate_unit}".rstrip() if self.rate else ""
        amount = f" ≈ {self.estimated_yearly_amount} {self.amount_unit}/年" if self.estimated_yearly_amount else ""
        return f"{self.lever}{rate}{amount} ({self.effect})" if self.effect else f"{self.lever}{rate}{amount}"


class EvaluationResultPublic(Out):
    """The enterprise's result of one published evaluation run (亩均论英雄)."""

    run_id: str
    policy_ref: str = ""
    credit_code: str
    name: str = ""
    year: int = 0
    region_code: str = ""
    park: str = ""
    industry_code: str = ""
    size_class: str = ""
    status: str = Field("", description="graded | not_graded | tenant_list | out_of_scope")
    pool: str = ""
    raw: dict[str, str] = {}
    indicators: list[IndicatorScorePublic] = []
    raw_total: str = ""
    bonus: str = ""
    deductions: str = ""
    adjustments: list[AdjustmentPublic] = []
    total: str = ""
    initial_grade: str = ""
    final_grade: str = ""
    managed_as: str = ""
    rules_fired: list[RuleFiredPublic] = []
    rank_in_pool: int = 0
    pool_size: int = 0
    percentile_in_pool: str = ""
    rank_in_industry: int = 0
    industry_size: int = 0
    percentile_in_industry: str = ""
    gap_to_next_class: str = ""
    consecutive_d_years: int = 0
    measures: list[MeasurePublic] = []


class EvaluationSummary(BaseModel):
    """What the portal's enterprise home shows: class, score, measures."""

    run_id: str
    year: int
    class_label: str
    score: str
    measures: list[MeasurePublic] = []


class IndicatorValuePublic(Out):
    field: str
    value: str = ""
    source_department: str = ""
    submission_id: str = ""
    recorded_at: datetime | None = None
    effective: bool = False


class RowErrorPublic(Out):
    field: str = ""
    reason: str = Field("", description="machine-readable, e.g. unknown_credit_code, negative_value")
    message: str = ""


class RowResultPublic(Out):
    row_number: int = Field(0, description="where the row is in the upload (the evaluation service's "
                                           "numbering: the line of the CSV file)")
    credit_code: str = ""
    year: int = 0
    outcome: Annotated[str, _enum("ROW_OUTCOME_")] = ""
    errors: list[RowErrorPublic] = []
    values_recorded: int = 0


class SubmissionReportPublic(Out):
    """Row-level report of an indicator upload: every row, accepted or refused with its reasons."""

    submission_id: str = ""
    source_department: str = ""
    rows_accepted: int = 0
    rows_refused: int = 0
    values_recorded: int = 0
    rows: list[RowResultPublic] = []
    recorded_at: datetime | None = None


class ClassCountPublic(Out):
    grade: str = ""
    count: int = 0


class RunProgressPublic(Out):
    """How far a run is: pools classified and the enterprise-years in them."""

    pools_done: int = 0
    pools_total: int = 0
    rows_done: int = 0
    rows_total: int = 0


class EvaluationRunPublic(Out):
    run_id: str
    jurisdiction: str = ""
    year: int = 0
    policy_ref: str = ""
    input_digest: str = ""
    output_digest: str = ""
    status: Annotated[str, _enum("RUN_STATUS_")] = ""
    enterprises: int = 0
    class_counts: list[ClassCountPublic] = []
    prior_run_id: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None
    published_at: datetime | None = None
    started_by: str = ""
    regrades: int = 0
    progress: RunProgressPublic | None = None


class ResultSummaryPublic(Out):
    credit_code: str
    name: str = ""
    region_code: str = ""
    park: str = ""
    industry_code: str = ""
    size_class: str = ""
    status: str = ""
    total: str = ""
    final_grade: str = ""
    rank_in_pool: int = 0


class RollupPublic(Out):
    dimension: str = Field("", description="region | park | industry")
    key: str = Field("", description='unique in the dimension: the unit, or "<unit>/<size_class>" for a split')
    year: int = 0
    level: str = Field("", description="region: province | city | county | other; park: park; industry: division")
    unit: str = Field("", description="GB/T 2260 code, park name or GB/T 4754 division")
    size_class: str = Field("", description="empty: all firms; above_size (规上) | below_size (规下): the split")
    parent: str = Field("", description="key of the unit this one rolls up into; empty for the run's total")
    name: str = Field("", description="display name where known (parks); empty: show the unit's code")
    firms: int = 0
    sums: dict[str, str] = Field({}, description="Σ of each raw field over the unit's firms, decimal text")
    indicators: dict[str, str] = Field({}, description="ratio of sums per indicator, decimal text")
    yoy_change_pct: dict[str, str] = {}
    class_counts: list[ClassCountPublic] = []
    class_shares: dict[str, str] = {}
    land_in_c_d_mu: str = ""
    electricity_surcharge_yuan: str = ""
    land_use_tax_relief_yuan: str = ""
    composite_score: str = ""
    rank: int = Field(0, description="among the units of peer_group, 1 = best")
    peer_group: str = Field("", description='the rankings entry, e.g. "region:county:2025"')
    peers: int = 0


class RollupsPublic(Out):
    rollups: list[RollupPublic] = []
    rankings: dict[str, list[str]] = Field(
        {}, description='peer group ("<dimension>[:<level>][:<size_class>]:<year>") → unit keys, best first')
