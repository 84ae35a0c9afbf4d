"""Use cases of the three auction mechanisms: 拍卖 (English, ascending with anti-sniping countdown),
招标 (sealed tender) and the sealed-bid uniform-price quota auction.

Each command of a sale is a command of the sale's partition of the write engine (one order per sale):
it rebuilds the state machine from `sale_events`, applies the command and writes everything it caused
(domain events, bid rows, trades, ledger tasks, outbox events, audit entries) in its own savepoint of the
batch's transaction, with the idempotency record; it is acknowledged only after the batch commits.

Guarantees (uniform-price): the bidder declares its guarantee at registration (default: the listing's
deposit) and the registry holds that amount once, keyed by (listing, bidder) — California–Québec style
"guarantee ≥ the maximum value of all bids it will place". Bids whose total value would exceed it are
refused; no hold is ever resized, so the ledger side stays exactly-once by construction. At settlement the
winner pays out of that hold (the registry posts it once and releases the remainder); losers' holds are
voided.

Evaluation score (tender, comprehensive award): the eligibility answer recorded at registration may
carry a score 0..100; it counts as basis points ×100. Without one the bidder's evaluation score is 0.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from services.common.authz import Kind, Owner
from services.common.context import current_subject
from services.common.errors import DependencyUnavailable, FieldViolation, InvalidArgument, RuleViolation, require
from services.common.events.envelope import Event
from services.common.uow import Transaction
from services.common.write_engine import Command
from services.trading.adapters.db import repository as r
from services.trading.adapters.db.auction_codec import AuctionCodec
from services.trading.adapters.db.repository import TradingRepository, dumps
from services.trading.application import idempotency as idem
from services.trading.application import limits
from services.trading.application.disclosure import SEALED
from services.trading.application.errors import not_found, refusal, require_owned
from services.trading.application.rules import (
    increment_announcement,
    ledger_task,
    release_deposits,
    trade_id_for,
)
from services.trading.application.sale import rules_of
from services.trading.application.trading import Trading, _bidder_number, _json, _trade_type, actor
from services.trading.application.views import DECIDED, bid_view, listing_view, registration_view, unsold_lots
from services.trading.application.writer import LISTINGS, Batch, new_id, partition
from services.trading.domain import english_auction as E
from services.trading.domain import tender as T
from services.trading.domain import uniform_auction as U
from services.trading.domain.clearing import ClearingRule, ClearingStatus, seed_commitment
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.money import BASIS_POINTS
from services.trading.domain.periods import check_collar, collar_exceeded
from services.trading.domain.trade_code import make_trade_code

log = logging.getLogger(__name__)

AUCTIONS = ("english", "tender", "uniform_price")


@dataclass
class Ctx:
    """One command on one sale, inside its transaction."""

    tx: Any
    repo: TradingRepository
    row: dict
    domain: Any
    regs: list[dict]
    seq: int
    batch: Batch
    actor: str
    listing_changes: dict = field(default_factory=dict)

    @property
    def lid(self) -> str:
        return self.row["listing_id"]


def _bp(value: str, name: str) -> int:
    try:
        amount = Decimal(value or "0")
    except InvalidOperation:
        raise InvalidArgument.field(f"listing.rules.{name}", "a decimal between 0 and 1") from None
    if not 0 <= amount <= 1:
        raise InvalidArgument.field(f"listing.rules.{name}", "a decimal between 0 and 1")
    return int(amount * BASIS_POINTS)


class Auctions:
    def __init__(self, trading: Trading, codec: AuctionCodec) -> None:
        self.t = trading
        self.uow, self.registry, self.metrics, self.clock = trading.uow, trading.registry, trading.metrics, trading.clock
        self.access, self.disclosure, self.policy = trading.access, trading.disclosure, trading.policy
        self.codec = codec
        self._mechanisms: dict[str, str] = {}

    # ------------------------------------------------------------ dispatch helpers
    async def mechanism(self, listing_id: str) -> str:
        """The listing's mechanism ("" if unknown); it never changes, so it is cached."""
        if listing_id not in self._mechanisms:
            async with self.uow.read() as tx:
                row = await TradingRepository(tx.session).listing(listing_id)
            if row is None:
                return ""
            self._mechanisms[listing_id] = row["mechanism"]
        return self._mechanisms[listing_id]

    async def owns(self, listing_id: str) -> bool:
        return await self.mechanism(listing_id) in AUCTIONS

    async def listing_of_bid(self, bid_id: str) -> str:
        """The listing a bid belongs to ("" for an unknown bid: the caller answers NOT_FOUND as for any)."""
        async with self.uow.read() as tx:
            bid = await TradingRepository(tx.session).bid(bid_id)
        return bid["listing_id"] if bid else ""

    async def own_bid(self, operation: str, bid_id: str, credit_code: str) -> dict:
        """The caller's own bid; an unknown bid id and somebody else's answer alike (NOT_FOUND)."""
        async with self.uow.read() as tx:
            bid = await TradingRepository(tx.session).bid(bid_id)
        owned = bid is not None and bool(credit_code) and bid["credit_code"] == credit_code
        require_owned(self.access, operation, "bid", bid_id, [Owner.enterprise(credit_code)] if owned else None)
        return bid

    # ------------------------------------------------------------ listings
    async def create_listing(self, key: str, spec: dict) -> dict:
        self.access.require("CreateListing", Owner.agency(spec["agency_id"]))
        rules = dict(spec["rules"])
        self._validate(spec, rules)
        await self.t.check_controller("CreateListing", spec["resource_id"], spec["agency_id"])
        digest = idem.digest("create_listing", spec)
        now = self.clock()
        quantity = spec["quantity"] or "1"
        if spec["mechanism"] == "uniform_price":
            # The tie-break seed is drawn now and sealed at rest; only its sha256 is published.
            seed = secrets.token_bytes(32)
            rules["seed_digest"] = seed_commitment(seed)
            rules["seed_sealed"] = self.codec.sealer.seal(int.from_bytes(seed, "big"))
            rules.pop("holding_limit_unit", None)  # checked: the listing's unit
            quantity = str(rules["supply_lots"] * int(rules["lot_size"]))
        if (first := await self.t._first_answer(key, "create_listing", digest)) is not None:
            return await self.get_listing(first["listing_id"])

        async def work(tx: Transaction) -> dict:
            nonlocal quantity
            repo = TradingRepository(tx.session)
            trade_type = "land_use_right" if spec["resource_id"] else _trade_type(spec["instrument"])
            serial = await repo.next_serial(f"{self.t.region_code}:{trade_type}:{now.year}")
            trade_code = make_trade_code(self.t.trade_codes, self.t.region_code, trade_type, now.year, serial)
            if spec["mechanism"] == "uniform_price" and rules.get("rollover_from"):
                quantity = await self._carry_in(repo, spec, rules, f"L{trade_code}")
            row = dict(listing_id=f"L{trade_code}", trade_code=trade_code, mechanism=spec["mechanism"], state="draft",
                       agency_id=spec["agency_id"], resource_id=spec["resource_id"], instrument=spec["instrument"],
                       quantity=quantity, unit=spec["unit"], title=spec["title"], description=spec["description"],
                       rules=dumps(rules), eligibility=dumps(spec["eligibility"]),
                       performance=dumps(spec["performance"]), documents=dumps(spec["documents"]),
                       announce_at=spec["announce_at"], bidding_opens_at=spec["bidding_opens_at"],
                       bidding_closes_at=spec["bidding_closes_at"], opening_at=spec["opening_at"], version=1,
                       current_price_fen=0, leader="", accepted_bids=0, outcome="", next_timer_at=None,
                       reserve_entered_by="", reserve_approved_by="", created_at=now, published_at=None,
                       created_by=actor())
            await repo.insert_listing(row)
            await tx.audit("listing.created", f"listing:{row['listing_id']}",
                           {"trade_code": trade_code, "mechanism": spec["mechanism"], "rules": _public_rules(rules)})
            return {"listing_id": row["listing_id"]}
        created = await self.t.write(LISTINGS, "create_listing", key, digest, work)
        return await self.get_listing(created["listing_id"])

    async def _carry_in(self, repo: TradingRepository, spec: dict, rules: dict, listing_id: str) -> str:
        """Unsold lots of earlier quota auctions carried into this one (EU Art. 7(5)–(6): cancelled volume goes
        to later auctions; RGGI: unsold allowances offered again; trading-anchors.md §3): each source an auction
        of the same agency and instrument, decided (cleared, or cancelled: its unsold lots are then known), and
        each source's unsold lots carried once, whole — into one later auction, which offers them on top of its
        own supply_lots. The claim is written on the source in the creating transaction (its row locked), so a
        second listing naming it is refused; a refusal changes nothing. Returns the listing's quantity."""
        lot_size = int(rules["lot_size"])
        checks = limits.Checks()
        carried: list[tuple[dict, dict, int]] = []
        for n, source in enumerate(rules["rollover_from"]):
            field = f"listing.rules.rollover_from[{n}]"
            row = await repo.listing(source, lock=True)
            if row is None or row["agency_id"] != spec["agency_id"] or row["mechanism"] != "uniform_price":
                checks.fail(field, f"{source} is not a quota auction of agency {spec['agency_id']}")
                continue
            source_rules, unsold = rules_of(row), unsold_lots(row)
            if row["instrument"] != spec["instrument"]:
                checks.fail(field, f"{source} sold {row['instrument']}, not {spec['instrument']}")
            elif source_rules.get("rolled_into"):
                checks.fail(field, f"the unsold lots of {source} were already carried into "
                                   f"{source_rules['rolled_into']}: each auction's unsold lots are carried once")
            elif unsold is None:
                checks.fail(field, f"{source} is not decided yet: its unsold lots are known once it is cleared "
                                   "or cancelled")
            elif unsold == 0:
                checks.fail(field, f"{source} sold all its lots: nothing to carry")
            else:
                try:
                    carried.append((row, source_rules, U.carried_lots(unsold, int(source_rules["lot_size"]),
                                                                       lot_size)))
                except TradingRuleError as exc:
                    checks.fail(field, f"{source}: {exc.message}")
        rolled = sum(lots for _, _, lots in carried)
        total, cap = rules["supply_lots"] + rolled, rules.get("bidder_cap_lots", 0)
        if total > limits.MAX_LOTS:
            checks.fail("listing.rules.supply_lots", f"with the lots carried in at most {limits.MAX_LOTS}")
        elif not checks.violations and cap * BASIS_POINTS % total:
            checks.fail("listing.rules.bidder_cap_lots",
                        f"must be a whole number of basis points of the supply with the lots carried in ({total})")
        checks.done()
        for row, source_rules, _ in carried:
            source_rules["rolled_into"] = listing_id
            await repo.update_listing(row["listing_id"], rules=dumps(source_rules))
        rules.update(supply_lots=total, rollover_lots=rolled,
                     rollover=[{"listing_id": row["listing_id"], "lots": lots} for row, _, lots in carried])
        return str(total * lot_size)

    def _validate(self, spec: dict, rules: dict) -> None:
        limits.listing_numbers(spec)
        v: list[FieldViolation] = []
        mech = spec["mechanism"]
        for name in ("agency_id", "title") + (("quantity",) if mech != "uniform_price" else ()):
            if not spec[name]:
                v.append(FieldViolation(f"listing.{name}", "required"))
        opens, closes = spec["bidding_opens_at"], spec["bidding_closes_at"]
        if opens is None or closes is None or closes <= opens:
            v.append(FieldViolation("listing.bidding_closes_at", "bidding_opens_at < bidding_closes_at required"))
        if mech == "uniform_price":
            if not spec["instrument"]:
                v.append(FieldViolation("listing.instrument", "the ledger instrument issued is required"))
            supply, cap = rules.get("supply_lots", 0), rules.get("bidder_cap_lots", 0)
            sources = rules.get("rollover_from") or []
            if supply < 0 or (supply == 0 and not sources):
                v.append(FieldViolation("listing.rules.supply_lots",
                                        "must be positive (or 0 when the lots are all carried in by rollover_from)"))
            if not str(rules.get("lot_size", "")).isdigit() or int(rules["lot_size"]) <= 0:
                v.append(FieldViolation("listing.rules.lot_size", "a positive whole number of units"))
            if cap < 0 or (supply > 0 and not sources and cap * BASIS_POINTS % supply):
                # The clearing function caps in basis points of the supply: the cap must be exact in them (with
                # lots carried in, of the whole supply: checked once they are counted, _carry_in).
                v.append(FieldViolation("listing.rules.bidder_cap_lots",
                                        "must be a whole number of basis points of supply_lots"))
            v += _uniform_rules_violations(rules, spec["unit"])
            if rules.get("clearing_rule", "marginal_accepted") not in [c.value for c in ClearingRule]:
                v.append(FieldViolation("listing.rules.clearing_rule", "marginal_accepted or highest_rejected"))
            if bool(rules.get("reference_price")) != bool(rules.get("min_price_to_reference_bp")):
                v.append(FieldViolation("listing.rules.min_price_to_reference_bp",
                                        "the reference-price rule needs both reference_price and "
                                        "min_price_to_reference_bp (or neither)"))
        elif mech == "tender":
            if rules.get("award_rule", "price") not in ("price", "comprehensive"):
                v.append(FieldViolation("listing.rules.award_rule", "price or comprehensive"))
            if rules.get("award_rule") == "comprehensive":
                pw, ew = _bp(rules.get("price_weight", ""), "price_weight"), _bp(rules.get("evaluation_weight", ""),
                                                                                  "evaluation_weight")
                if pw + ew != BASIS_POINTS:
                    v.append(FieldViolation("listing.rules.price_weight", "price and evaluation weights sum to 1"))
            if spec["opening_at"] is not None and closes is not None and spec["opening_at"] < closes:
                v.append(FieldViolation("listing.opening_at", "bids are opened after the submission deadline"))
        elif mech == "english":
            if rules.get("increment", 0) <= 0:
                v.append(FieldViolation("listing.rules.increment", "must be positive fen"))
            hard = rules.get("hard_stop")
            if hard and opens and datetime.fromisoformat(hard) <= opens:
                v.append(FieldViolation("listing.rules.hard_stop", "must be after the start"))
        require(v)

    async def publish_listing(self, key: str, listing_id: str) -> dict:
        await self.t._manageable(listing_id, "PublishListing")

        async def publish(ctx: Ctx) -> dict:
            if ctx.row["state"] != "draft":
                return {"listing_id": listing_id}
            if ctx.row["mechanism"] == "english" and not ctx.domain.reserve.approved:
                raise RuleViolation("the 底价 must be entered and approved before publication",
                                    reason="RESERVE_NOT_APPROVED")
            if ctx.row["mechanism"] == "tender" and ctx.domain.reserve.pending is not None \
                    and not ctx.domain.reserve.approved:
                raise RuleViolation("the 标底 was entered: a second person approves it before publication",
                                    reason="RESERVE_NOT_APPROVED")
            now = ctx.batch.now
            self.t.check_periods(ctx.row, now)
            await self.t.check_controller("PublishListing", ctx.row["resource_id"], ctx.row["agency_id"])
            rules = rules_of(ctx.row)
            if ctx.row["mechanism"] in ("english", "tender") and not rules.get("min_bidders"):
                # The policy's minimum of this moment is the sale's: a later policy does not change it.
                rules["min_bidders"] = self.policy.rules_for(land=bool(ctx.row["resource_id"])).min_bidders(
                    ctx.row["mechanism"])
            # So are its timers, unless the listing set its own.
            rules = {**self.policy.timers.rules(ctx.row["mechanism"]), **{k: v for k, v in rules.items() if v}}
            if rules != rules_of(ctx.row):
                ctx.listing_changes["rules"] = dumps(rules)
            if ctx.row["resource_id"]:
                await self.t._registry(self.registry.transition_resource(
                    f"trading:{listing_id}:list", ctx.row["resource_id"], "listed", f"listed by {listing_id}"))
            # The announcement is this publication: an earlier announce_at would claim days that never were.
            ctx.listing_changes.update(state="published", published_at=now, announce_at=now)
            ctx.row.update(ctx.listing_changes)
            ctx.batch.outbox.append(self._event(ctx, "listing.published", {
                "title": ctx.row["title"], "mechanism": ctx.row["mechanism"], "instrument": ctx.row["instrument"],
                "bidding_opens_at": ctx.row["bidding_opens_at"].isoformat(),
                "bidding_closes_at": ctx.row["bidding_closes_at"].isoformat(), "rules": _public_rules(rules)}))
            ctx.batch.audit.append((ctx.actor, "listing.published", f"listing:{listing_id}",
                                    {"trade_code": ctx.row["trade_code"], "seed_digest": rules.get("seed_digest", ""),
                                     "sale_policy": self.policy.version}))
            return {"listing_id": listing_id}

        await self._run(listing_id, key, "publish_listing", {"l": listing_id}, actor(), publish)
        return await self.get_listing(listing_id)

    async def enter_reserve(self, key: str, listing_id: str, amount_fen: int) -> dict:
        await self.t._manageable(listing_id, "EnterReservePrice")
        checks = limits.Checks()
        checks.fen(amount_fen, "reserve_price.fen")
        checks.done()
        who = actor()

        async def enter(ctx: Ctx) -> dict:
            self._secret_reserve_only(ctx)
            self._record(ctx, ctx.domain.enter_reserve(amount_fen, who, ctx.batch.now))
            ctx.listing_changes["reserve_entered_by"] = who
            # The journal names who entered it — never the amount (sealed until the decision).
            ctx.batch.audit.append((who, "reserve.entered", f"listing:{listing_id}", {"entered_by": who}))
            return {"listing_id": listing_id}

        await self._run(listing_id, key, "reserve_enter", {"l": listing_id, "a": amount_fen}, who, enter)
        return await self.get_listing(listing_id)

    async def approve_reserve(self, key: str, listing_id: str) -> dict:
        await self.t._manageable(listing_id, "ApproveReservePrice")
        who = actor()

        async def approve(ctx: Ctx) -> dict:
            self._secret_reserve_only(ctx)
            self._record(ctx, ctx.domain.approve_reserve(who, ctx.batch.now))
            ctx.listing_changes["reserve_approved_by"] = who
            ctx.batch.audit.append((who, "reserve.approved", f"listing:{listing_id}",
                                    {"entered_by": ctx.domain.reserve.entered_by, "approved_by": who}))
            return {"listing_id": listing_id}

        await self._run(listing_id, key, "reserve_approve", {"l": listing_id}, who, approve)
        return await self.get_listing(listing_id)

    async def change_increment(self, key: str, listing_id: str, increment_fen: int, reason: str
                               ) -> tuple[dict, dict]:
        """拍卖 (§5.1): the increment may be changed during the auction; logged, announced as a change notice and
        shown live. A sealed sale has no increment to change."""
        await self.t._manageable(listing_id, "ChangeIncrement")
        limits.increment_change(increment_fen, reason)
        who = actor()

        async def change(ctx: Ctx) -> dict:
            if ctx.row["mechanism"] != "english":
                raise RuleViolation(f"a {ctx.row['mechanism']} sale has sealed bids and no increment to change",
                                    reason="NO_INCREMENT")
            events = ctx.domain.change_increment(increment_fen, who, ctx.batch.now)
            self._record(ctx, events)
            version = ctx.row["version"] + 1
            notice, facts = increment_announcement(listing_id, version, events[0], reason,
                                                   ctx.domain.minimum_next_bid())
            await ctx.repo.insert_notice(notice)
            ctx.listing_changes["version"] = version
            ctx.batch.outbox.append(self._event(ctx, "sale.increment_changed", facts))
            ctx.batch.audit.append((who, "increment.changed", f"listing:{listing_id}", {"changed_by": who, **facts}))
            return {"notice": {**notice, "published_at": ctx.batch.now.isoformat()}}

        result = await self._run(listing_id, key, "increment", {"l": listing_id, "i": increment_fen, "r": reason},
                                 who, change)
        return await self.sale_state(listing_id), result["notice"]

    @staticmethod
    def _secret_reserve_only(ctx: Ctx) -> None:
        """拍卖 has a secret 底价, 招标 a secret 标底; a quota auction's reserve is public."""
        if ctx.row["mechanism"] not in ("english", "tender"):
            raise RuleViolation("this mechanism has no secret reserve (its reserve/minimum price is public)",
                                reason="NO_SECRET_RESERVE")
        if ctx.row["state"] != "draft" and ctx.row["mechanism"] == "tender":
            raise RuleViolation("the 标底 is fixed before publication", reason="RESERVE_LOCKED")

    async def get_listing(self, listing_id: str) -> dict:
        self.access.require("GetListing")
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id)
            if row is None or not self.disclosure.listing_visible(row):
                raise not_found("listing", listing_id)
            reserve = None
            if row["mechanism"] in ("english", "tender") and row["state"] in DECIDED:
                domain = self._domain(row, await repo.sale_events(listing_id), [])
                if domain.reserve.pending is not None:  # a tender's 标底 is optional
                    reserve = domain.reserve_price
        return self._view(row, self.clock(), reserve)

    def _view(self, row: dict, now: datetime, reserve: int | None = None) -> dict:
        view = listing_view(row, now, reserve_fen=reserve)
        view["rules"].pop("seed_sealed", None)
        if row["mechanism"] != "english":
            view["reserve_set"] = True  # a public reserve/minimum price (start_price); a tender may add a 标底
        return view

    # ------------------------------------------------------------ registration
    async def register(self, key: str, listing_id: str, credit_code: str, guarantee_fen: int) -> dict:
        self.t.act_for(credit_code, "RegisterBidder")
        checks = limits.Checks()
        checks.fen(guarantee_fen, "guarantee.fen", positive=False)
        checks.done()
        who = actor()
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id)
            existing = await repo.registration(listing_id, credit_code)
        if row is None or row["state"] == "draft":
            raise not_found("listing", listing_id)
        if existing is not None:
            return registration_view(existing, identity=True)
        now = self.clock()
        # An English auction closes registration when it starts; sealed sales when the window closes.
        ends = row["bidding_opens_at"] if row["mechanism"] == "english" else row["bidding_closes_at"]
        if row["state"] != "published" or now >= ends:
            raise RuleViolation("registration is closed", reason="REGISTRATION_CLOSED")
        rules, gates = rules_of(row), _json(row["eligibility"])
        amount = int(rules.get("deposit") or 0)
        if row["mechanism"] == "uniform_price":
            amount = guarantee_fen or amount
            if amount <= 0:
                raise InvalidArgument.field("guarantee.fen", "a bid guarantee is required for this auction")
        answer = await self.t.eligibility.check(credit_code, gates.get("sale_kind", ""))
        allowed, detail = answer.allowed, answer.condition
        if gates.get("allowed_classes") and answer.evaluation_class not in gates["allowed_classes"]:
            allowed, detail = False, f"class gate {gates['allowed_classes']} not met: {answer.condition or answer.rule}"
        hold_id = ""
        if allowed and amount:
            account = await self.t._registry(self.registry.account(credit_code, "CNY", open_if_missing=False))
            deadline = row["bidding_closes_at"] + timedelta(days=self.t.deposit_hold_days)
            # The purpose names no sale (see Trading.register): the registration records the hold id.
            hold_id = await self.t._registry(self.registry.create_hold(
                f"trading:{listing_id}:deposit:{credit_code}", account, str(amount), deadline,
                "guarantee" if row["mechanism"] == "uniform_price" else "deposit"))
        reg = dict(registration_id=new_id("R"), listing_id=listing_id, credit_code=credit_code, bidder_number="",
                   state="qualified" if allowed else "refused", eligibility_rule=answer.rule,
                   eligibility_detail=detail, evaluation_score=answer.score, deposit_hold_id=hold_id,
                   deposit_fen=amount if hold_id else 0, deposit_state="held" if hold_id else "",
                   confirmed_continue=False, registered_at=now)

        async def insert(ctx: Ctx) -> dict:
            found = await ctx.repo.registration(listing_id, credit_code)
            if found is not None:  # a concurrent registration of the same bidder won
                return registration_view(found, identity=True)
            reg["bidder_number"] = _bidder_number({x["bidder_number"] for x in ctx.regs})
            await ctx.repo.insert_registration(reg)
            if allowed and ctx.row["mechanism"] == "english":
                self._record(ctx, ctx.domain.register(reg["bidder_number"], ctx.batch.now))
            ctx.batch.audit.append((who, f"registration.{reg['state']}", f"listing:{listing_id}",
                                    {"credit_code": credit_code, "bidder_number": reg["bidder_number"],
                                     "eligibility_rule": answer.rule, "run_id": answer.run_id, "detail": detail,
                                     "deposit_hold_id": hold_id, "deposit_fen": reg["deposit_fen"]}))
            if allowed and ctx.row["mechanism"] not in SEALED:
                # Others learn that someone registered, never who; of a sealed sale not even that (until the
                # opening, which publishes the count).
                ctx.batch.outbox.append(self._event(ctx, "registration.qualified",
                                                    {"bidder_number": reg["bidder_number"]}))
            return registration_view(reg, identity=True)

        return await self._run(listing_id, key, "register", {"l": listing_id, "c": credit_code, "g": guarantee_fen},
                               who, insert)

    # ------------------------------------------------------------ bids
    async def place_bid(self, key: str, listing_id: str, credit_code: str, price_fen: int, lots: int, *,
                        confirm_high_price: bool = False, bid_id: str = "", draft: dict | None = None) -> dict:
        """A bid now, a modification of a sealed uniform-price bid (`bid_id`), or the submission of a draft
        (`draft`: the bid keeps the draft's id)."""
        self.t.act_for(credit_code, "ModifyBid" if bid_id else "SubmitBid" if draft else "PlaceBid")
        limits.bid_numbers(price_fen, lots)
        who = actor()
        collared = False
        holding = await self._holding(listing_id, credit_code)

        async def place(ctx: Ctx) -> dict:
            nonlocal collared
            reg = self._qualified(ctx, credit_code)
            mech, now = ctx.row["mechanism"], ctx.batch.now
            if ctx.row["state"] != "published":
                raise RuleViolation(f"the listing is {ctx.row['state']}", reason="WRONG_STATE")
            # The reference: an English auction's current price; a sealed sale's public start/minimum price.
            reference = (ctx.row["current_price_fen"] if mech == "english" else 0) or rules_of(ctx.row)["start_price"]
            collared = check_collar(self.policy, price_fen, reference, confirm_high_price)
            fresh_id = draft["bid_id"] if draft else new_id("B")
            if mech == "uniform_price":
                return self._submitted(ctx, draft, self._uniform_bid(ctx, reg, bid_id, price_fen, lots, holding,
                                                                     fresh_id=fresh_id))
            if bid_id:
                raise RuleViolation("only uniform-price bids are modified in place", reason="NOT_MODIFIABLE")
            if mech == "tender":
                return self._submitted(ctx, draft, await self._tender_bid(ctx, reg, price_fen, fresh_id))
            events = ctx.domain.bid(reg["bidder_number"], price_fen, now)
            accepted = events[0]
            bid = self._bid_row(ctx, reg, fresh_id, price_fen, 0, accepted.seq, sealed=False)
            ctx.batch.bids.append(bid)
            self._record(ctx, events)
            ctx.listing_changes.update(current_price_fen=price_fen, leader=reg["bidder_number"],
                                       accepted_bids=len(ctx.domain.bids), next_timer_at=accepted.deadline)
            ctx.batch.outbox.append(self._event(ctx, "bid.accepted", {
                "bidder_number": reg["bidder_number"], "price_fen": price_fen, "sequence": accepted.seq,
                "deadline": accepted.deadline.isoformat(), "at": now.isoformat()}))
            ctx.batch.audit.append((who, "bid.accepted", f"listing:{ctx.lid}",
                                    {"bid_id": bid["bid_id"], "credit_code": credit_code, "price_fen": price_fen,
                                     "sequence": accepted.seq, "deadline": accepted.deadline.isoformat()}))
            return self._submitted(ctx, draft, bid_view(bid, owner=True))

        op = "modify_bid" if bid_id else "submit_bid" if draft else "bid"
        mechanism = await self.mechanism(listing_id)
        try:
            result = await self._run(listing_id, key, op, {"l": listing_id, "b": bid_id or (draft or {}).get("bid_id"),
                                                           "c": credit_code, "p": price_fen, "q": lots}, who, place)
        except RuleViolation as exc:
            self.metrics.bid(mechanism, False, exc.reason or "")  # sealed mechanisms: not counted (metrics.py)
            raise
        self.metrics.bid(mechanism, True)
        if collared and mechanism not in SEALED:  # sealed ones are counted at the opening
            self.metrics.collar_confirmed(mechanism)
        return result

    async def modify_bid(self, key: str, bid_id: str, credit_code: str, price_fen: int, lots: int, *,
                         confirm_high_price: bool = False) -> dict:
        bid = await self.own_bid("ModifyBid", bid_id, credit_code)
        if await self.mechanism(bid["listing_id"]) != "uniform_price":
            raise RuleViolation("only sealed uniform-price bids are modified", reason="NOT_MODIFIABLE")
        return await self.place_bid(key, bid["listing_id"], credit_code, price_fen, lots,
                                    confirm_high_price=confirm_high_price, bid_id=bid_id)

    async def _holding(self, listing_id: str, credit_code: str) -> Decimal | None:
        """The bidder's units of a quota auction's instrument, from the registry, when the auction has a holding
        limit (None otherwise): the domain is given the holding, it never asks for it."""
        if await self.mechanism(listing_id) != "uniform_price":
            return None
        async with self.uow.read() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        if row is None or not rules_of(row).get("holding_limit"):
            return None
        return Decimal(await self.t._registry(self.registry.holding(credit_code, row["instrument"])))

    async def _holdings_at_close(self, listing_id: str) -> dict[str, Decimal] | None:
        """Before a quota auction with a holding limit is cleared: every qualified bidder's holding now, at the
        window's close — read before the sale's transaction, which a registry call never keeps open — for the
        clearing to cut bids back to (§3.2), and recorded with it. None when nothing is to be read."""
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id)
            regs = await repo.registrations(listing_id) if row is not None else []
        if row is None or row["mechanism"] != "uniform_price" or row["outcome"] or row["state"] != "published" \
                or not rules_of(row).get("holding_limit"):
            return None
        codes = [x["credit_code"] for x in regs if x["state"] == "qualified"]
        holdings: dict[str, Decimal] = {}
        for start in range(0, len(codes), 32):  # a few calls at a time
            chunk = codes[start:start + 32]
            found = await asyncio.gather(*(self.t._registry(self.registry.holding(c, row["instrument"]))
                                           for c in chunk))
            holdings |= {c: Decimal(units) for c, units in zip(chunk, found, strict=True)}
        return holdings

    def _uniform_bid(self, ctx: Ctx, reg: dict, bid_id: str, price: int, lots: int,
                     holding: Decimal | None = None, *, fresh_id: str = "") -> dict:
        rules = rules_of(ctx.row)
        if lots <= 0:
            raise InvalidArgument.field("quantity_lots", "must be positive")
        increment = int(rules.get("increment") or 0)
        if increment and price % increment:
            raise InvalidArgument.field("price.fen", f"must be a multiple of the price tick {increment}")
        modifying = bool(bid_id)
        if modifying:
            mine = {b.bid_id for b in ctx.domain.bids_of(reg["credit_code"])}
            if bid_id not in mine:
                raise not_found("bid", bid_id)
        bid_id = bid_id or fresh_id or new_id("B")
        # Refused (HOLDING_LIMIT) when the holding plus all the bidder's bid lots would pass the holding limit.
        events = ctx.domain.place_bid(bid_id, reg["credit_code"], price, lots * int(rules["lot_size"]), ctx.batch.now,
                                      holding)
        nonce = secrets.token_hex(16)
        receipt = T.commitment_digest(ctx.lid, bid_id, price, f"{lots}:{nonce}")
        self._record(ctx, events)
        bid = self._bid_row(ctx, reg, bid_id, 0, 0, ctx.seq, sealed=True, receipt=receipt, nonce=nonce)
        if modifying:
            ctx.batch.bid_updates.append((bid_id, {k: bid[k] for k in ("receipt", "nonce", "accepted_at", "sequence")}))
        else:
            ctx.batch.bids.append(bid)
        # Before the window closes nothing of a bid leaves the service but the receipt, to its bidder: no
        # event (who bid, how many, when); the receipts are published when the bids are opened.
        ctx.batch.audit.append((ctx.actor, "bid.modified" if modifying else "bid.sealed", f"listing:{ctx.lid}",
                                {"bid_id": bid_id, "credit_code": reg["credit_code"], "receipt": receipt}))
        return bid_view(bid | {"price_fen": price, "quantity_lots": lots}, owner=True) | {"nonce": nonce}

    async def _tender_bid(self, ctx: Ctx, reg: dict, price: int, bid_id: str) -> dict:
        nonce = secrets.token_hex(16)
        previous = [b for b in await ctx.repo.bids(ctx.lid, credit_code=reg["credit_code"], limit=10_000)
                    if b["state"] == "accepted"]
        events = ctx.domain.submit(reg["bidder_number"], price, nonce, ctx.batch.now)
        sealed = events[0]
        self._record(ctx, events)
        for old in previous:  # a later submission replaces the earlier one
            ctx.batch.bid_updates.append((old["bid_id"], {"state": "superseded"}))
        bid = self._bid_row(ctx, reg, bid_id, 0, 0, sealed.seq, sealed=True, receipt=sealed.receipt, nonce=nonce)
        ctx.batch.bids.append(bid)
        # Sealed: no event before the opening (see _uniform_bid).
        ctx.batch.audit.append((ctx.actor, "bid.sealed", f"listing:{ctx.lid}",
                                {"bid_id": bid["bid_id"], "credit_code": reg["credit_code"],
                                 "receipt": sealed.receipt}))
        return bid_view(bid | {"price_fen": price}, owner=True) | {"nonce": nonce}

    @staticmethod
    def _submitted(ctx: Ctx, draft: dict | None, view: dict) -> dict:
        """A submitted draft becomes the bid: its row is updated in place (same id), its sealed draft dropped."""
        if draft is None:
            return view
        row = next(b for b in ctx.batch.bids if b["bid_id"] == draft["bid_id"])
        ctx.batch.bids.remove(row)
        ctx.batch.bid_updates.append((draft["bid_id"], {k: v for k, v in row.items()
                                                        if k not in ("bid_id", "listing_id", "created_at")}))
        return view

    async def create_bid(self, key: str, listing_id: str, credit_code: str, price_fen: int, lots: int) -> dict:
        """A draft, as for 挂牌: stored, seen by its bidder only, no part of the sale (no event, no count, no
        timer) until SubmitBid places it. A sealed sale's draft keeps its amount sealed at rest."""
        self.t.act_for(credit_code, "CreateBid")
        limits.bid_numbers(price_fen, lots)
        who = actor()

        async def create(ctx: Ctx) -> dict:
            reg = self._qualified(ctx, credit_code)
            if ctx.row["state"] != "published":
                raise RuleViolation(f"the listing is {ctx.row['state']}", reason="WRONG_STATE")
            mech = ctx.row["mechanism"]
            if mech == "uniform_price" and lots <= 0:
                raise InvalidArgument.field("quantity_lots", "must be positive")
            sealed = mech in SEALED
            bid = self._bid_row(ctx, reg, new_id("B"), 0 if sealed else price_fen, 0 if sealed else lots, 0,
                                sealed=sealed)
            bid |= {"state": "draft", "accepted_at": None,
                    "tender_document": self._seal_draft(price_fen, lots) if sealed else ""}
            ctx.batch.bids.append(bid)
            ctx.batch.audit.append((who, "bid.drafted", f"listing:{ctx.lid}",
                                    {"bid_id": bid["bid_id"], "credit_code": credit_code}))
            return bid_view(bid | {"price_fen": price_fen, "quantity_lots": lots}, owner=True)

        return await self._run(listing_id, key, "create_bid", {"l": listing_id, "c": credit_code, "p": price_fen,
                                                               "q": lots}, who, create)

    async def submit_bid(self, key: str, bid_id: str, credit_code: str, *, confirm_high_price: bool = False
                         ) -> dict:
        draft = await self.own_bid("SubmitBid", bid_id, credit_code)
        if draft["state"] != "draft":  # submitting twice answers the submitted bid
            mine = await self.list_bids(draft["listing_id"], credit_code, 0, 100_000)
            return next(b for b in mine if b["bid_id"] == bid_id)
        price, lots = self._draft_amounts(draft)
        return await self.place_bid(key, draft["listing_id"], credit_code, price, lots,
                                    confirm_high_price=confirm_high_price, draft=draft)

    def _seal_draft(self, price_fen: int, lots: int) -> str:
        return f"{self.codec.sealer.seal(price_fen)} {self.codec.sealer.seal(lots)}"

    def _draft_amounts(self, draft: dict) -> tuple[int, int]:
        if not draft["tender_document"]:
            return draft["price_fen"], draft["quantity_lots"]
        price, lots = draft["tender_document"].split(" ")
        return self.codec.sealer.open(price), self.codec.sealer.open(lots)

    async def withdraw_bid(self, key: str, bid_id: str, credit_code: str) -> dict:
        listing_id = (await self.own_bid("WithdrawBid", bid_id, credit_code))["listing_id"]

        async def withdraw(ctx: Ctx) -> dict:
            reg = self._qualified(ctx, credit_code)
            if ctx.row["mechanism"] != "uniform_price":
                raise RuleViolation("only uniform-price bids are withdrawn", reason="NOT_WITHDRAWABLE")
            self._record(ctx, ctx.domain.withdraw_bid(bid_id, reg["credit_code"], ctx.batch.now))
            ctx.batch.bid_updates.append((bid_id, {"state": "withdrawn"}))
            ctx.batch.audit.append((ctx.actor, "bid.withdrawn", f"listing:{ctx.lid}",
                                    {"bid_id": bid_id, "credit_code": credit_code}))
            bid = await ctx.repo.bid(bid_id)
            return bid_view(bid | {"state": "withdrawn"}, owner=True)

        return await self._run(listing_id, key, "withdraw_bid", {"b": bid_id, "c": credit_code}, actor(), withdraw)

    async def list_bids(self, listing_id: str, credit_code: str, after: int, limit: int) -> list:
        self.access.require("ListBids")
        row = await self.t._listing_row(listing_id)
        own = self.disclosure.is_self(credit_code)
        identities = self.disclosure.identities(row)
        if (credit_code and not own and not identities) or (not own and not self.disclosure.participants(row)):
            return []  # whether, when and how many took part in a sealed sale is not told before its opening
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            found = await repo.bids(listing_id, credit_code=credit_code, after=after, limit=limit,
                                    include_drafts=own)
            amounts_open = row["mechanism"] == "english" or row["state"] not in ("draft", "published")
            amounts: dict[str, tuple[int, int]] = {}
            if own and not amounts_open:  # a bidder always sees its own sealed bids
                domain = self._domain(row, await repo.sale_events(listing_id), await repo.registrations(listing_id))
                amounts = _own_amounts(row, domain, found)
            outcomes: dict[str, U.BidOutcome] = {}
            if own and row["mechanism"] == "uniform_price" and row["outcome"]:
                # Cleared: each of its own bids' outcome (filled in full, partially, or not, and its place in the
                # tie draw) — to the bidder only; others see the opened bids, not how each one fared.
                domain = self._domain(row, await repo.sale_events(listing_id), [])
                if domain.cleared is not None:
                    outcomes = domain.bid_outcomes(credit_code)
        views = []
        for b in found:
            if b["state"] == "draft":  # its bidder's own draft: the amounts it entered, sealed at rest
                price, lots = self._draft_amounts(b)
                b = b | {"price_fen": price, "quantity_lots": lots}
            if b["bid_id"] in amounts:
                b = b | {"price_fen": amounts[b["bid_id"]][0], "quantity_lots": amounts[b["bid_id"]][1]}
            view = bid_view(b, owner=own or identities)
            if not amounts_open and not own:
                view.update(price_fen=0, quantity_lots=0)  # sealed: amounts to no one but the bidder
            view["nonce"] = b["nonce"] if own else ""
            if b["bid_id"] in outcomes:
                view["outcome"] = _outcome_view(outcomes[b["bid_id"]])
            views.append(view)
        return views

    async def declare_default(self, key: str, listing_id: str, reason: str) -> dict:
        """The winner of an award still waiting for its 成交确认书 defaults; its deposit is forfeited to the
        grantor. 拍卖: the sale ends unsold and the parcel is available to be offered again — an ascending
        auction has no standing runner-up (each lower bid was outbid, and the other deposits were released at
        the award). 招标: the next bid of the opening's ranking that met the 标底 is offered the award
        (招标投标法实施条例 第五十五条), to be confirmed like the first; its own deposit was released at the award,
        so it pays the whole price at settlement. A quota auction settles each allocation at the clearing out
        of the guarantee: no award waits that could be defaulted."""
        await self.t._manageable(listing_id, "DeclareDefault")
        checks = limits.Checks()
        if not reason.strip():
            checks.fail("reason", "required: the default is recorded with its reason")
        elif len(reason) > limits.MAX_REASON:
            checks.fail("reason", f"at most {limits.MAX_REASON} characters")
        checks.done()
        who = actor()

        async def default(ctx: Ctx) -> dict:
            mechanism = ctx.row["mechanism"]
            if mechanism == "uniform_price":
                raise RuleViolation("a quota auction settles each allocation at the clearing, out of the bidder's "
                                    "guarantee: there is no award to default", reason="SETTLED_AT_CLEARING")
            trades, _ = await ctx.repo.trades(listing_id=ctx.lid, limit=1000)
            waiting = [t for t in trades if t["settlement_state"] == "executed" and not t["confirmed"]]
            if ctx.row["state"] != "awarded" or not waiting:
                raise RuleViolation("only an award waiting for its confirmation can be declared in default",
                                    reason="NO_AWARD")
            trade = waiting[-1]
            defaulter = next(x for x in ctx.regs if x["credit_code"] == trade["buyer"])
            await ctx.repo.update_trade(trade["trade_id"], settlement_state="failed",
                                        settlement_error=f"winner defaulted: {reason}")
            if defaulter["deposit_state"] == "held":
                ledger_task(ctx.batch, f"trading:{ctx.lid}:forfeit:{defaulter['credit_code']}", "forfeit",
                            {"hold_id": defaulter["deposit_hold_id"], "to": ctx.row["agency_id"]})
                ctx.batch.registration_updates.append(([defaulter["credit_code"]], {"deposit_state": "forfeited"}))
            by_number = {x["bidder_number"]: x for x in ctx.regs}
            excluded = {by_number_of(ctx.regs, t["buyer"]) for t in trades}
            offer = ctx.domain.next_awardable(excluded) if mechanism == "tender" else None
            entry = {"trade_id": trade["trade_id"], "credit_code": trade["buyer"], "reason": reason}
            if offer is not None:
                nxt = by_number[offer.bidder]
                # Its deposit went back at the award: this award carries none, the price is paid in full.
                payer = nxt if nxt["deposit_state"] == "held" else {**nxt, "deposit_hold_id": "", "deposit_fen": 0}
                awarded = self._trade(ctx, payer, offer.amount, ctx.row["quantity"],
                                      trade_id_for(ctx.lid, len(trades) + 1), dvp=False)
                facts = {"winner_bidder_number": offer.bidder, "price_fen": offer.amount, "via": "next_ranked",
                         "at": ctx.batch.now.isoformat()}
                ctx.listing_changes["outcome"] = dumps({**_json(ctx.row["outcome"]), **facts})
                ctx.batch.outbox.append(self._event(ctx, "sale.awarded", facts))
                entry |= {"next_trade_id": awarded["trade_id"], "next_credit_code": nxt["credit_code"]}
            else:
                release_deposits(ctx.batch, ctx.lid, ctx.regs, "winner defaulted", keep=defaulter["credit_code"])
                ctx.listing_changes.update(state="unsold", outcome=dumps(
                    {**_json(ctx.row["outcome"]), "reason": "winner_defaulted", "at": ctx.batch.now.isoformat()}))
                self._unlist(ctx, "winner defaulted")
                ctx.batch.outbox.append(self._event(ctx, "sale.unsold", {"reason": "winner_defaulted",
                                                                         "at": ctx.batch.now.isoformat()}))
            ctx.batch.audit.append((who, "award.defaulted", f"listing:{ctx.lid}", entry))
            return {"listing_id": ctx.lid}

        await self._run(listing_id, key, "declare_default", {"l": listing_id, "r": reason}, who, default)
        return await self.sale_result(listing_id)

    # ------------------------------------------------------------ state and result
    async def sale_state(self, listing_id: str) -> dict:
        self.access.require("GetSaleState")
        row = await self.t._listing_row(listing_id)
        disclosed = self.disclosure.participants(row)
        english = row["mechanism"] == "english"
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            regs = [x for x in await repo.registrations(listing_id) if x["state"] == "qualified"]
            # The sealed bids that stand (a later submission supersedes, a withdrawal removes).
            sealed_bids = await repo.count_bids(listing_id, "accepted") if disclosed and not english else 0
        # A sealed sale tells nobody but the trading centre how many registered or bid until it is opened.
        registered = len(regs) if disclosed else 0
        now = self.clock()
        # An English auction shows its effective (extended) end, never the original one.
        closes = (row["next_timer_at"] or row["bidding_closes_at"]) if english else row["bidding_closes_at"]
        minimum = increment = 0
        if english:
            kept = self.t.writers.auctions.get(listing_id)
            if kept is not None:
                domain = kept[0]
            else:
                async with self.uow.read() as tx:
                    domain = self._domain(row, await TradingRepository(tx.session).sale_events(listing_id), [])
            increment = domain.increment
            if row["state"] == "published":
                minimum = domain.minimum_next_bid()
        return {"listing_id": listing_id, "state": listing_view(row, now)["state"],
                "current_price_fen": row["current_price_fen"] if english else 0,
                "leading_bidder_number": row["leader"] if english else "",
                "accepted_bids": row["accepted_bids"] if english else sealed_bids, "registered_bidders": registered,
                "closes_at": closes, "server_time": now, "version": row["version"], "next_minimum_bid_fen": minimum,
                "increment_fen": increment}

    async def sale_result(self, listing_id: str) -> dict:
        self.access.require("GetSaleResult")
        row = await self.t._listing_row(listing_id)
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            if row["state"] in ("draft", "published"):
                raise RuleViolation("the sale is not decided yet", reason="NOT_DECIDED")
            regs = await repo.registrations(listing_id)
            domain = self._domain(row, await repo.sale_events(listing_id), regs)
            trades, _ = await repo.trades(listing_id=listing_id, limit=1000)
        outcome = _json(row["outcome"])
        numbers = {x["credit_code"]: x["bidder_number"] for x in regs}
        identity = self.disclosure.identities(row)
        result = {"listing_id": listing_id, "decided_at": outcome.get("at"), "reason": outcome.get("reason", ""),
                  "outcome": {"awarded": "sold", "settled": "sold", "unsold": "unsold",
                              "cancelled": "cancelled"}[row["state"]],
                  "statistics_published": True, "bid_count": 0, "bidder_count": 0, "min_bid_fen": 0,
                  "max_bid_fen": 0, "mean_bid_fen": 0, "median_bid_fen": 0, "reserve_fen": 0, "allocations": []}
        live = [t for t in trades if t["settlement_state"] != "failed"]
        if row["mechanism"] == "uniform_price":
            cleared, stats = domain.cleared, domain.statistics
            result |= {"clearing_price_fen": cleared.clearing_price if cleared else None,
                       "volume_lots": cleared.sold_lots if cleared else 0,
                       "reserve_fen": domain.terms.reserve_price, "statistics_published": stats is not None,
                       "seed": cleared.seed_hex if cleared else ""}
            lot = domain.terms.lot_size
            result["allocations"] = [
                {"bidder_number": numbers[t["buyer"]], "credit_code": t["buyer"] if identity else "",
                 "lots": int(Decimal(t["quantity"])) // lot, "amount_fen": t["amount_fen"]} for t in live]
            rules = rules_of(row)
            result |= {"supply_lots": domain.terms.supply_lots, "unsold_lots": unsold_lots(row) or 0,
                       "rollover_lots": int(rules.get("rollover_lots") or 0), "rollover": rules.get("rollover") or [],
                       "rolled_into": rules.get("rolled_into", ""), "tie_draw": None, "own_bids": []}
            if cleared is not None:
                draw = domain.tie_draw()  # public: the price, the lots drawn for and the ranks in draw order
                if draw is not None:
                    result["tie_draw"] = {"price_fen": draw.price, "lots": draw.lots, "ranks": list(draw.ranks)}
                subject = current_subject()
                if subject.kind is Kind.ENTERPRISE and subject.id:  # a bidder: its own bids, how each fared
                    result["own_bids"] = [_outcome_view(o) for o in domain.bid_outcomes(subject.id).values()]
            if stats is not None:
                result |= {"bid_count": stats.bid_count, "bidder_count": stats.bidder_count,
                           "min_bid_fen": stats.min_bid, "max_bid_fen": stats.max_bid, "mean_bid_fen": stats.mean_bid,
                           "median_bid_fen": stats.median_bid,
                           "cover_ratio": str(Decimal(stats.cover_ratio_bp) / BASIS_POINTS)}
            return result
        if row["mechanism"] == "tender":
            opened = domain.status is not T.TenderStatus.ACCEPTING
            amounts = sorted(x.amount for x in domain.result.ranking) if opened else []
            if opened and domain.reserve.pending is not None:  # the 标底, published with the result
                result["reserve_fen"] = domain.reserve_price
        else:
            amounts = sorted(b.amount for b in domain.bids)
            result["reserve_fen"] = domain.reserve_price if row["state"] in DECIDED else 0
        if row["mechanism"] == "tender":
            bidders = {x.bidder for x in domain.result.ranking} if opened else set()
        else:
            bidders = {b.bidder for b in domain.bids}
        result |= {"bid_count": len(amounts), "bidder_count": len(bidders),
                   "min_bid_fen": amounts[0] if amounts else 0, "max_bid_fen": amounts[-1] if amounts else 0,
                   "mean_bid_fen": sum(amounts) // len(amounts) if amounts else 0,
                   "median_bid_fen": amounts[len(amounts) // 2] if amounts else 0}
        if live:
            trade = live[-1]
            result |= {"clearing_price_fen": trade["price_fen"], "trade_id": trade["trade_id"],
                       "winner_bidder_number": numbers[trade["buyer"]], "winner_credit_code": trade["buyer"],
                       "volume_lots": 1}
        return result

    # ------------------------------------------------------------ timers
    async def fire_due_timers(self) -> int:
        now = self.clock()
        listings = r.listings
        async with self.uow.read() as tx:
            query = (select(listings.c.listing_id).where(listings.c.mechanism.in_(AUCTIONS))
                     .where(listings.c.next_timer_at <= now)
                     .where(listings.c.state.not_in(("draft", "cancelled"))).limit(200))
            due = [x.listing_id for x in (await tx.session.execute(query)).all()]
        for listing_id in due:
            try:
                holdings = await self._holdings_at_close(listing_id)
            except (DependencyUnavailable, RuleViolation):  # the registry: the next round tries again
                log.warning("holdings not read; the clearing waits", extra={"listing_id": listing_id})
                continue
            await self._run(listing_id, "", "tick", {}, "system/timer", functools.partial(self._tick, holdings=holdings))
        return len(due)

    async def _tick(self, ctx: Ctx, holdings: dict[str, Decimal] | None = None) -> None:
        now, mech, d = ctx.batch.now, ctx.row["mechanism"], ctx.domain
        if mech == "uniform_price":
            if d.cleared is None and now >= d.terms.window_closes_at:
                await self._clear_uniform(ctx, holdings)
            elif d.cleared is not None and d.statistics is None:
                self._record(ctx, d.publish_statistics(now))
                s = d.statistics
                ctx.batch.outbox.append(self._event(ctx, "auction.statistics", {
                    "bid_count": s.bid_count, "bidder_count": s.bidder_count, "demand_lots": s.demand_lots,
                    "cover_ratio_bp": s.cover_ratio_bp, "min_bid_fen": s.min_bid, "max_bid_fen": s.max_bid,
                    "mean_bid_fen": s.mean_bid, "median_bid_fen": s.median_bid, "at": now.isoformat()}))
                ctx.batch.audit.append((ctx.actor, "auction.statistics_published", f"listing:{ctx.lid}",
                                        {"bid_count": s.bid_count, "bidder_count": s.bidder_count}))
        elif mech == "tender":
            if d.status is T.TenderStatus.ACCEPTING and now >= d.terms.opening_at:
                await self._open_tender(ctx)
        elif mech == "english":
            if d.status is E.AuctionStatus.REGISTRATION and now >= d.terms.starts_at:
                events = d.start(now)
                self._record(ctx, events)
                if isinstance(events[0], E.AuctionCancelled):
                    await self._english_decided(ctx, events[0])
                else:
                    ctx.batch.outbox.append(self._event(ctx, "auction.started", {
                        "registered": len(d.registered), "deadline": d.deadline.isoformat(),
                        "minimum_bid_fen": d.minimum_next_bid()}))
                    ctx.batch.audit.append((ctx.actor, "auction.started", f"listing:{ctx.lid}",
                                            {"registered": len(d.registered), "deadline": d.deadline.isoformat()}))
            elif d.status is E.AuctionStatus.RUNNING and now >= d.deadline:
                events = d.finish(now)
                self._record(ctx, events)
                await self._english_decided(ctx, events[0])

    async def _clear_uniform(self, ctx: Ctx, holdings: dict[str, Decimal] | None) -> None:
        d, now, rules = ctx.domain, ctx.batch.now, rules_of(ctx.row)
        seed = self.codec.sealer.open(rules["seed_sealed"]).to_bytes(32, "big")
        self._record(ctx, d.clear(seed, now, holdings))
        cleared = d.cleared
        rules["seed"] = seed.hex()  # revealed: anyone can now recompute the tie ranks
        ctx.listing_changes["rules"] = dumps(rules)
        ctx.row["rules"] = ctx.listing_changes["rules"]
        by_bid = {b.bid_id: b for b in d.bids}
        for bid_id, b in by_bid.items():  # the bids are opened: their rows show price and quantity
            ctx.batch.bid_updates.append((bid_id, {"price_fen": b.price, "quantity_lots": b.lots, "sealed": False}))
        submitted = await ctx.repo.bids(ctx.lid, limit=1_000_000)
        self._count_opened(ctx, len(submitted), [b.price for b in d.bids])
        won: dict[str, int] = defaultdict(int)
        for bid_id, lots in cleared.allocations:
            won[by_bid[bid_id].bidder] += lots
        result = {"status": cleared.status.value, "reason": cleared.reason or "",
                  "clearing_price_fen": cleared.clearing_price, "sold_lots": cleared.sold_lots,
                  "supply_lots": d.terms.supply_lots, "unsold_lots": d.unsold_lots, "seed": seed.hex(),
                  "at": now.isoformat(),
                  # Every bidder can find its receipt among those opened (nothing was left out or added).
                  "receipts": sorted(b["receipt"] for b in submitted if b["state"] == "accepted"),
                  "registered_bidders": len([x for x in ctx.regs if x["state"] == "qualified"])}
        regs = {x["credit_code"]: x for x in ctx.regs}
        lot = d.terms.lot_size
        if cleared.status is ClearingStatus.CLEARED and cleared.sold_lots:
            for n, (code, lots) in enumerate(sorted(won.items()), start=1):
                trade = self._trade(ctx, regs[code], cleared.clearing_price, lots * lot, trade_id_for(ctx.lid, n))
                ledger_task(ctx.batch, f"trading:settle:{trade['trade_id']}", "settle_dvp", {}, trade["trade_id"])
            # Winners pay out of their guarantee hold at settlement; everyone else's is voided now.
            release_deposits(ctx.batch, ctx.lid, [x for x in ctx.regs if x["credit_code"] not in won],
                             "not allocated")
            ctx.listing_changes.update(state="awarded", outcome=dumps(result))
            self.metrics.sales_closed.labels("uniform_price", "sold", _bidders(len(won))).inc()
        else:
            release_deposits(ctx.batch, ctx.lid, ctx.regs, f"auction cancelled: {cleared.reason}")
            ctx.listing_changes.update(state="cancelled", outcome=dumps(result))
            self.metrics.sales_closed.labels("uniform_price", "cancelled", _bidders(len(won))).inc()
        ctx.batch.outbox.append(self._event(ctx, "auction.cleared", result))
        ctx.batch.audit.append((ctx.actor, "auction.cleared", f"listing:{ctx.lid}",
                                {**result, "allocations": dict(won), "holdings": dict(cleared.holdings),
                                 "cut_back": {b: {"purchase_cap": cap, "holding_limit": held}
                                              for b, cap, held in cleared.cuts}}))

    async def _open_tender(self, ctx: Ctx) -> None:
        d, now = ctx.domain, ctx.batch.now
        by_number = {x["bidder_number"]: x for x in ctx.regs}
        scores = {b: _score_bp(by_number[b]["evaluation_score"]) for b in d._bids}
        self._record(ctx, d.open(now, scores))
        opened = d.result
        submitted = await ctx.repo.bids(ctx.lid, limit=100_000)
        for b in submitted:
            if b["state"] == "accepted":
                ctx.batch.bid_updates.append((b["bid_id"], {"price_fen": d.bid_amount(b["bidder_number"]),
                                                            "sealed": False}))
        result = {"winner_bidder_number": opened.winner or "", "price_fen": opened.price, "at": now.isoformat(),
                  "award_rule": d.terms.award_rule.value, "reason": opened.reason or "",
                  "ranking": [{"bidder_number": x.bidder, "amount_fen": x.amount, "total_score_bp": x.total_score_bp}
                              for x in opened.ranking],
                  # Every bidder can find its receipt among those opened (nothing was left out or added).
                  "receipts": sorted(b["receipt"] for b in submitted if b["state"] == "accepted"),
                  "registered_bidders": len([x for x in ctx.regs if x["state"] == "qualified"])}
        self._count_opened(ctx, len(submitted), [x.amount for x in opened.ranking])
        if opened.winner:
            winner = by_number[opened.winner]
            self._trade(ctx, winner, opened.price, ctx.row["quantity"], trade_id_for(ctx.lid, 1), dvp=False)
            release_deposits(ctx.batch, ctx.lid, ctx.regs, "not awarded", keep=winner["credit_code"])
            ctx.listing_changes.update(state="awarded", outcome=dumps(result))
            self.metrics.sales_closed.labels("tender", "sold", _bidders(len(opened.ranking))).inc()
        else:
            self._unsold(ctx, opened.reason or T.NO_BIDS)
            ctx.listing_changes["outcome"] = dumps(result)
        ctx.batch.outbox.append(self._event(ctx, "tender.opened", result))
        ctx.batch.audit.append((ctx.actor, "tender.opened", f"listing:{ctx.lid}", result))

    def _count_opened(self, ctx: Ctx, submitted: int, amounts: list[int]) -> None:
        """The metrics of a sealed sale's bids, at its opening (metrics.py): how many were placed and how many
        of those that count were above the price collar (each was confirmed, or it would not be there)."""
        reference = rules_of(ctx.row)["start_price"]
        collared = sum(collar_exceeded(self.policy, amount, reference) for amount in amounts)
        mechanism = ctx.row["mechanism"]
        ctx.batch.after_commit.append(lambda: self.metrics.opened(mechanism, submitted, collared))

    async def _english_decided(self, ctx: Ctx, event: Any) -> None:
        result = {"at": event.at.isoformat(), "reason": getattr(event, "reason", "")}
        if isinstance(event, E.AuctionSold):
            winner = next(x for x in ctx.regs if x["bidder_number"] == event.bidder)
            self._trade(ctx, winner, event.price, ctx.row["quantity"], trade_id_for(ctx.lid, 1), dvp=False)
            release_deposits(ctx.batch, ctx.lid, ctx.regs, "not awarded", keep=winner["credit_code"])
            ctx.listing_changes["state"] = "awarded"
            result |= {"winner_bidder_number": event.bidder, "price_fen": event.price}
            self.metrics.sales_closed.labels("english", "sold", _bidders(len(ctx.domain.registered))).inc()
        elif isinstance(event, E.AuctionCancelled):
            release_deposits(ctx.batch, ctx.lid, ctx.regs, "auction cancelled")
            ctx.listing_changes["state"] = "cancelled"
            self._unlist(ctx, "auction cancelled")
            self.metrics.sales_closed.labels("english", "cancelled", _bidders(len(ctx.domain.registered))).inc()
        else:
            self._unsold(ctx, event.reason)
        ctx.listing_changes["outcome"] = dumps(result)
        ctx.batch.outbox.append(self._event(ctx, f"sale.{ctx.listing_changes['state']}", result))
        ctx.batch.audit.append((ctx.actor, f"sale.{ctx.listing_changes['state']}", f"listing:{ctx.lid}", result))

    def _unsold(self, ctx: Ctx, reason: str) -> None:
        release_deposits(ctx.batch, ctx.lid, ctx.regs, "unsold")
        ctx.listing_changes["state"] = "unsold"
        self._unlist(ctx, f"unsold ({reason})")
        self.metrics.sales_closed.labels(ctx.row["mechanism"], "unsold", "none").inc()

    def _unlist(self, ctx: Ctx, reason: str) -> None:
        if ctx.row["resource_id"]:
            ledger_task(ctx.batch, f"trading:{ctx.lid}:unlist", "transition",
                        {"resource_id": ctx.row["resource_id"], "status": "available", "reason": reason})

    def _trade(self, ctx: Ctx, winner: dict, price: int, quantity, trade_id: str, *, dvp: bool = True) -> dict:
        """A uniform-price allocation settles at once (delivery versus payment out of the guarantee hold);
        a parcel's award waits for the 成交确认书 like 挂牌 (ConfirmAward), then settles the same way."""
        row = ctx.row
        units = Decimal(str(quantity))
        amount = int(price * units) if dvp else price
        legs = {"resource_id": row["resource_id"], "deposit_hold_id": winner["deposit_hold_id"],
                "deposit_fen": winner["deposit_fen"]}
        if dvp:
            legs |= {"instrument": row["instrument"], "units": str(units)}
        trade = dict(trade_id=trade_id, trade_code=row["trade_code"], listing_id=row["listing_id"],
                     instrument=row["instrument"] or "land_use_right", buyer=winner["credit_code"],
                     seller=row["agency_id"], quantity=str(units), unit=row["unit"], price_fen=price,
                     amount_fen=amount, legs=dumps(legs), settlement_state="settling" if dvp else "executed",
                     settlement_operation_id="", settlement_attempts=0, settlement_error="", next_attempt_at=None,
                     executed_at=ctx.batch.now, settled_at=None, confirmed=dvp)
        ctx.batch.trades.append(trade)
        ctx.batch.outbox.append(Event("trading.trade.executed", "yaosu.trading.trade.executed", f"trade:{trade_id}",
                                      {"trade_id": trade_id, "listing_id": row["listing_id"],
                                       "trade_code": row["trade_code"], "price_fen": price, "amount_fen": amount,
                                       "quantity": str(units), "instrument": trade["instrument"]}))
        self.metrics.trade("land_use_right" if row["resource_id"] else row["instrument"].split(":")[0],
                           float(units), amount, price)
        return trade

    # ------------------------------------------------------------ the one writer of a sale
    async def _run(self, listing_id: str, key: str, operation: str, args: dict, who: str,
                   command: Callable[[Ctx], Awaitable[Any]]) -> Any:
        sales = self.t.writers.auctions  # English auctions' state machines, kept between their commands

        async def work(tx: Transaction) -> Any:
            repo = TradingRepository(tx.session)
            # Taken out while the command runs: a command that fails leaves it out (rebuilt next time).
            kept = sales.pop(listing_id, None)
            if kept is None:
                row = await repo.listing(listing_id)
                if row is None or row["mechanism"] not in AUCTIONS:
                    raise not_found("listing", listing_id)
                regs = await repo.registrations(listing_id)
                events = await repo.sale_events(listing_id)
                kept = self._domain(row, events, regs), events[-1]["seq"] if events else 0, row, regs
            domain, seq, row, regs = kept
            ctx = Ctx(tx, repo, row, domain, regs, seq, Batch(self.clock()), who)
            try:
                result = await command(ctx)
            except TradingRuleError as exc:
                raise refusal(exc) from None
            await self._flush(ctx)
            # An English auction's bids change neither its listing row (beyond what the flush keeps in
            # `row`) nor its registrations: kept for the next bid. A sealed sale's terms follow its
            # registrations, and other commands change what they like: read again.
            if row["mechanism"] == "english" and operation == "bid" and not ctx.batch.registration_updates:
                sales[listing_id] = ctx.domain, ctx.seq, ctx.row, ctx.regs
            for hook in ctx.batch.after_commit:
                tx.after_commit(hook)
            if ctx.batch.tasks:
                tx.after_commit(self.t.on_tasks)
            return result
        return await self.t.writers.engine.submit(Command(
            partition(listing_id), operation, work, key=key, digest=idem.digest(operation, args),
            abandon=lambda: sales.pop(listing_id, None)))

    async def _flush(self, ctx: Ctx) -> None:
        b, repo = ctx.batch, ctx.repo
        await repo.insert_many(r.sale_events, b.events)
        await repo.insert_many(r.bids, b.bids)
        for bid_id, values in b.bid_updates:
            await repo.update_bid(bid_id, **values)
        await repo.insert_many(r.trades, b.trades)
        await repo.insert_many(r.tasks, b.tasks)
        for codes, values in b.registration_updates:
            await repo.update_registrations(ctx.lid, codes, **values)
        if "state" in ctx.listing_changes or b.events:
            ctx.row.update(ctx.listing_changes)
            ctx.listing_changes.setdefault("next_timer_at", self._next_timer(ctx))
        if ctx.listing_changes:
            await repo.update_listing(ctx.lid, **ctx.listing_changes)
            ctx.row.update(ctx.listing_changes)  # the row as written (a state machine kept with it stays true)
        if b.outbox:
            await ctx.tx.emit_many(b.outbox)
        if b.audit:
            await ctx.tx.audit_many(b.audit)

    def _next_timer(self, ctx: Ctx) -> datetime | None:
        row, d = ctx.row, ctx.domain
        if row["state"] == "draft" or row["state"] == "cancelled":
            return None
        if row["mechanism"] == "uniform_price":
            if d.cleared is None:
                return d.terms.window_closes_at
            if d.statistics is None and d.cleared.status is ClearingStatus.CLEARED:
                delay = int(rules_of(row).get("statistics_delay_seconds")
                            or self.policy.timers.statistics_delay_seconds)
                return d.cleared.at + timedelta(seconds=delay)
            return None
        if row["mechanism"] == "tender":
            return d.terms.opening_at if d.status is T.TenderStatus.ACCEPTING else None
        if d.status is E.AuctionStatus.REGISTRATION:
            return d.terms.starts_at
        return d.deadline if d.status is E.AuctionStatus.RUNNING else None

    def _record(self, ctx: Ctx, events: list) -> None:
        for event in events:
            ctx.seq += 1
            type_name, payload = self.codec.encode(event)
            ctx.batch.events.append(dict(listing_id=ctx.lid, seq=ctx.seq, type=type_name, payload=payload,
                                         at=event.at))

    def _event(self, ctx: Ctx, subject: str, data: dict) -> Event:
        return Event(f"trading.{subject}", f"yaosu.trading.{subject}", f"listing:{ctx.lid}",
                     {"listing_id": ctx.lid, "trade_code": ctx.row["trade_code"], **data})

    def _qualified(self, ctx: Ctx, credit_code: str) -> dict:
        reg = next((x for x in ctx.regs if x["credit_code"] == credit_code), None)
        if reg is None or reg["state"] != "qualified":
            raise RuleViolation("register (and be qualified) before bidding", reason="NOT_REGISTERED")
        return reg

    def _bid_row(self, ctx: Ctx, reg: dict, bid_id: str, price: int, lots: int, seq: int, *, sealed: bool,
                 receipt: str = "", nonce: str = "") -> dict:
        return dict(bid_id=bid_id, listing_id=ctx.lid, credit_code=reg["credit_code"],
                    bidder_number=reg["bidder_number"], state="accepted", price_fen=price, quantity_lots=lots,
                    sealed=sealed, receipt=receipt, nonce=nonce, tender_document="", accepted_at=ctx.batch.now,
                    sequence=seq, listing_version=ctx.row["version"], refusal_reason="", created_at=ctx.batch.now)

    # ------------------------------------------------------------ state machines from rows
    def _domain(self, row: dict, events: list[dict], regs: list[dict]):
        rules = rules_of(row)
        decoded = [self.codec.decode(e["type"], e["payload"]) for e in events]
        if row["mechanism"] == "uniform_price":
            supply = int(rules["supply_lots"])
            cap = int(rules.get("bidder_cap_lots") or 0)
            terms = U.UniformAuctionTerms(
                auction_id=row["listing_id"], supply_lots=supply, lot_size=int(rules["lot_size"]),
                reserve_price=int(rules["start_price"]), window_opens_at=row["bidding_opens_at"],
                window_closes_at=row["bidding_closes_at"], seed_commitment=rules["seed_digest"],
                clearing_rule=ClearingRule(rules.get("clearing_rule") or "marginal_accepted"),
                purchase_cap_bp=cap * BASIS_POINTS // supply if cap else None,
                min_cover_bp=int(rules.get("min_cover_bp") or 0),
                reference_price=int(rules["reference_price"]) if rules.get("reference_price") else None,
                min_price_to_reference_bp=int(rules.get("min_price_to_reference_bp") or 0) or None,
                affiliation=dict(rules.get("affiliations") or {}),
                guarantees={x["credit_code"]: x["deposit_fen"] for x in regs
                            if x["state"] == "qualified" and x["deposit_state"] == "held"},
                holding_limit=Decimal(rules["holding_limit"]) if rules.get("holding_limit") else None,
                unit=row["unit"] or "units")
            return U.UniformPriceAuction.replay(terms, decoded)
        if row["mechanism"] == "tender":
            comprehensive = rules.get("award_rule") == "comprehensive"
            terms = T.TenderTerms(
                listing_id=row["listing_id"], submission_deadline=row["bidding_closes_at"],
                opening_at=row["opening_at"] or row["bidding_closes_at"], minimum_price=int(rules["start_price"]),
                award_rule=T.AwardRule.SCORE if comprehensive else T.AwardRule.PRICE,
                price_weight_bp=_bp(rules.get("price_weight", ""), "price_weight") if comprehensive else BASIS_POINTS,
                evaluation_weight_bp=_bp(rules.get("evaluation_weight", ""), "evaluation_weight")
                if comprehensive else 0,
                # fixed at publication from the sale policy; a tender published before it had none
                min_bidders=int(rules.get("min_bidders") or 1), reserve_floor=int(rules.get("reserve_floor") or 0))
            return T.Tender.replay(terms, decoded)
        hard = rules.get("hard_stop")
        terms = E.EnglishAuctionTerms(
            auction_id=row["listing_id"], start_price=int(rules["start_price"]), increment=int(rules["increment"]),
            starts_at=row["bidding_opens_at"],
            hard_stop_at=datetime.fromisoformat(hard) if hard else row["bidding_closes_at"],
            # fixed at publication from the sale policy; a draft's from the policy in force
            countdown_seconds=int(rules.get("countdown_seconds") or self.policy.timers.auction_countdown_seconds),
            min_registered_bidders=int(rules.get("min_bidders")
                                       or self.policy.rules_for(land=bool(row["resource_id"])).auction_min_bidders),
            reserve_floor=int(rules.get("reserve_floor") or 0))
        return E.EnglishAuction.replay(terms, decoded)


def by_number_of(regs: list[dict], credit_code: str) -> str:
    return next(x["bidder_number"] for x in regs if x["credit_code"] == credit_code)


def _own_amounts(row: dict, domain, bids: list[dict]) -> dict[str, tuple[int, int]]:
    if row["mechanism"] == "uniform_price":
        codes = {b["credit_code"] for b in bids}
        mine = {q.bid_id: (q.price, q.lots) for c in codes for q in domain.bids_of(c)}
        return {b["bid_id"]: mine[b["bid_id"]] for b in bids if b["bid_id"] in mine}
    # Tender: the bidder's latest bid is the one in the state machine; its amount is revealed to it only.
    latest = {sealed.bidder: sealed for sealed in domain._bids.values()}
    out = {}
    for b in bids:
        sealed = latest.get(b["bidder_number"])
        if sealed is not None and sealed.receipt == b["receipt"]:
            out[b["bid_id"]] = (sealed.amount.for_persistence(), 0)
    return out


def _outcome_view(o: U.BidOutcome) -> dict:
    return {"bid_id": o.bid_id, "price_fen": o.price, "lots": o.lots, "lots_won": o.lots_won, "fill": o.fill,
            "reason": o.reason, "cut_by_purchase_cap_lots": o.cut_by_purchase_cap,
            "cut_by_holding_limit_lots": o.cut_by_holding_limit, "tied": o.tied, "draw_position": o.draw_position,
            "tied_bids": o.tied_bids, "tie_rank": o.tie_rank}


def _score_bp(score: str) -> int:
    """Evaluation score 0..100 (the evaluation service's scale) → basis points; missing → 0."""
    try:
        value = Decimal(score)
    except (InvalidOperation, TypeError):
        return 0
    return max(0, min(BASIS_POINTS, int(value * 100)))


def _bidders(count: int) -> str:
    from services.trading.metrics import bidders_label
    return bidders_label(count)


def _uniform_rules_violations(rules: dict, unit: str) -> list[FieldViolation]:
    """A quota auction's holding limit (units of the instrument, optional) and rollover sources (listing ids)."""
    checks = limits.Checks()
    limit = str(rules.get("holding_limit") or "")
    if limit:
        checks.quantity(limit, "listing.rules.holding_limit.value", limits.CATALOGUE_SCALE)
        given = rules.get("holding_limit_unit") or unit
        if given != unit:
            checks.fail("listing.rules.holding_limit.unit", f"the listing's unit ({unit}) or empty")
    sources = rules.get("rollover_from") or []
    if len(sources) > limits.MAX_ROLLOVER_SOURCES:
        checks.fail("listing.rules.rollover_from", f"at most {limits.MAX_ROLLOVER_SOURCES} earlier auctions")
    for n, source in enumerate(sources):
        if not isinstance(source, str) or not source.strip():
            checks.fail(f"listing.rules.rollover_from[{n}]", "a listing id")
        elif source in sources[:n]:
            checks.fail(f"listing.rules.rollover_from[{n}]", f"{source} is named twice")
    return checks.violations


def _public_rules(rules: dict) -> dict:
    return {k: v for k, v in rules.items() if "reserve" not in k and k != "seed_sealed"}


def seed_hex_digest(seed_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


__all__ = ["AUCTIONS", "Auctions", "json"]
