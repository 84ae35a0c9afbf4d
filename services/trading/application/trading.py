"""Use cases of the trading service: listings (draft → publish), dual-controlled reserve, registration with
eligibility and deposit hold, bids (through the sale's group-commit writer), timers, award, default and
reads. Registry calls carry keys derived from our ids, so retries never double a hold or a transfer."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from services.common.authz import Access, Kind, Owner
from services.common.context import current_principal
from services.common.errors import (
    DependencyUnavailable,
    FieldViolation,
    IdempotencyConflict,
    InvalidArgument,
    PermissionDenied,
    RuleViolation,
    require,
)
from services.common.events.envelope import Event
from services.common.uow import Transaction, UnitOfWork
from services.common.write_engine import Command, Work
from services.trading.adapters.db import repository as r
from services.trading.adapters.db.repository import TradingRepository, dumps
from services.trading.application import idempotency as idem
from services.trading.application import limits
from services.trading.application.disclosure import Disclosure
from services.trading.application.errors import not_found, refusal, require_owned
from services.trading.application.ports import EligibilityPort, RegistryPort, RegistryRefused, RegistryUnavailable
from services.trading.application.rules import execute_trade, ledger_task, release_deposits, trade_id_for
from services.trading.application.sale import listing_terms, load_sale, rules_of
from services.trading.application.views import DECIDED, bid_view, listing_view, registration_view
from services.trading.application.writer import LISTINGS, Batch, Op, Writers, new_id, partition
from services.trading.domain.calendar import WorkingDayCalendar
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.periods import SalePolicy, check_periods
from services.trading.domain.trade_code import TradeCodeFormat, make_trade_code
from services.trading.metrics import TradingMetrics

log = logging.getLogger(__name__)

SUPPORTED = ("listing",)  # mechanisms wired to the service so far


def actor() -> str:
    """Who acts, for the record: the key's principal and the end user it names."""
    return current_principal().actor


class Trading:
    """Every use case checks the caller against the policy (services/trading/authorization.yaml) with the
    objects it loaded: only an enterprise acts for itself, an agency only on its own listings."""

    def __init__(self, uow: UnitOfWork, writers: Writers, registry: RegistryPort, eligibility: EligibilityPort,
                 metrics: TradingMetrics, clock: Callable[[], datetime], *, access: Access, policy: SalePolicy,
                 region_code: str, deposit_hold_days: int, on_tasks: Callable[[], None]) -> None:
        self.uow, self.writers, self.registry, self.eligibility = uow, writers, registry, eligibility
        self.metrics, self.clock, self.region_code = metrics, clock, region_code
        self.access, self.policy, self.disclosure = access, policy, Disclosure(access)
        self.deposit_hold_days = deposit_hold_days
        self.on_tasks = on_tasks
        self.trade_codes = TradeCodeFormat()
        self.calendar = WorkingDayCalendar()

    # ------------------------------------------------------------ listings
    async def create_listing(self, key: str, spec: dict[str, Any]) -> dict:
        # The listing agency lists only for itself: the draft's agency is the subject's own.
        self.access.require("CreateListing", Owner.agency(spec["agency_id"]))
        self._validate_listing(spec)
        await self.check_controller("CreateListing", spec["resource_id"], spec["agency_id"])
        await self.check_quantity_scale(spec)
        digest = idem.digest("create_listing", spec)
        if (first := await self._first_answer(key, "create_listing", digest)) is not None:
            return await self.get_listing(first["listing_id"])

        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            now = self.clock()
            trade_type = "land_use_right" if spec["resource_id"] else _trade_type(spec["instrument"])
            scope = f"{self.region_code}:{trade_type}:{now.year}"
            serial = await repo.next_serial(scope)
            trade_code = make_trade_code(self.trade_codes, self.region_code, trade_type, now.year, serial)
            listing_id = f"L{trade_code}"
            row = dict(listing_id=listing_id, trade_code=trade_code, mechanism=spec["mechanism"], state="draft",
                       agency_id=spec["agency_id"], resource_id=spec["resource_id"], instrument=spec["instrument"],
                       quantity=spec["quantity"] or "0", unit=spec["unit"], title=spec["title"],
                       description=spec["description"], rules=dumps(spec["rules"]),
                       eligibility=dumps(spec["eligibility"]), performance=dumps(spec["performance"]),
                       documents=dumps(spec["documents"]), announce_at=spec["announce_at"],
                       bidding_opens_at=spec["bidding_opens_at"], bidding_closes_at=spec["bidding_closes_at"],
                       opening_at=spec["opening_at"], version=1, current_price_fen=0, leader="", accepted_bids=0,
                       outcome="", next_timer_at=None, reserve_entered_by="",
                       reserve_approved_by="", created_at=now, published_at=None, created_by=actor())
            await repo.insert_listing(row)
            await tx.audit("listing.created", f"listing:{listing_id}", {"trade_code": trade_code, **_public(spec)})
            return {"listing_id": listing_id}
        created = await self.write(LISTINGS, "create_listing", key, digest, work)
        return await self.get_listing(created["listing_id"])

    async def write(self, partition: str, operation: str, key: str, digest: str, work: Work) -> Any:
        """A change through the write engine, in the order of its partition (a sale's changes in the sale's),
        answered once committed; a retry with the same key gets the first answer."""
        async def forgetting(tx: Transaction) -> Any:
            try:
                return await work(tx)
            finally:  # it changed the sale outside its state machine: rebuilt on next use
                if partition.startswith("sale:"):
                    self.writers.forget(partition.removeprefix("sale:"))
        return await self.writers.engine.submit(Command(partition, operation, forgetting, key=key, digest=digest))

    async def _first_answer(self, key: str, operation: str, digest: str) -> Any | None:
        """A retry's first answer, before anything is asked of another service for it."""
        return await self.writers.engine.stored_answer(key, operation, digest)

    def _validate_listing(self, spec: dict[str, Any]) -> None:
        limits.listing_numbers(spec)
        v: list[FieldViolation] = []
        rules = spec["rules"]
        if spec["mechanism"] not in SUPPORTED:
            v.append(FieldViolation("listing.mechanism", f"supported mechanisms: {', '.join(SUPPORTED)}"))
        if not spec["agency_id"]:
            v.append(FieldViolation("listing.agency_id", "required"))
        if not spec["title"]:
            v.append(FieldViolation("listing.title", "required"))
        if not spec["quantity"]:
            v.append(FieldViolation("listing.quantity", "required"))
        if not spec["resource_id"] and not spec["instrument"]:
            v.append(FieldViolation("listing.resource_id", "a catalogue item or an instrument is required"))
        if rules.get("increment", 0) <= 0:
            v.append(FieldViolation("listing.rules.increment", "must be positive fen"))
        opens, closes = spec["bidding_opens_at"], spec["bidding_closes_at"]
        if opens is None or closes is None:
            v.append(FieldViolation("listing.bidding_closes_at", "bidding_opens_at and bidding_closes_at required"))
        elif closes <= opens:
            v.append(FieldViolation("listing.bidding_closes_at", "must be after bidding_opens_at"))
        require(v)

    async def check_controller(self, operation: str, resource_id: str, agency_id: str) -> None:
        """A catalogue item (a parcel) is sold only by the agency that controls it in the registry: another
        agency's parcel is not its own to list — the trading service itself would list it there and pay
        the price to the listing agency."""
        if not resource_id:
            return
        try:
            controller = await self.registry.resource_controller(resource_id)
        except RegistryUnavailable:
            raise DependencyUnavailable("the registry is unavailable; retry", reason="REGISTRY_UNAVAILABLE") from None
        except RegistryRefused as exc:
            if exc.code == "NOT_FOUND":
                raise InvalidArgument.field("listing.resource_id", "not a catalogue item of the registry") from None
            raise RuleViolation(f"registry refused: {exc.message}", reason=f"REGISTRY_{exc.code}") from None
        self.access.require(operation, Owner.agency(controller))
        if controller != agency_id:  # the service's own work (demo data) lists for no other agency either
            raise InvalidArgument.field("listing.agency_id", "the agency controlling the catalogue item")

    async def check_quantity_scale(self, spec: dict[str, Any]) -> None:
        """A listing of a ledger instrument lists no finer quantity than the instrument keeps."""
        if spec["resource_id"] or not spec["instrument"] or not spec["quantity"]:
            return
        try:
            scale = await self.registry.instrument_scale(spec["instrument"])
        except RegistryUnavailable:
            raise DependencyUnavailable("the registry is unavailable; retry", reason="REGISTRY_UNAVAILABLE") from None
        except RegistryRefused:
            raise InvalidArgument.field("listing.instrument", "not an instrument of the registry") from None
        checks = limits.Checks()
        checks.quantity(spec["quantity"], "listing.quantity", scale)
        checks.done()

    def _manage(self, row: dict | None, operation: str, listing_id: str) -> dict:
        """The listing agency's acts on its own listing; another agency's draft does not exist for anyone."""
        if row is None or not self.disclosure.listing_visible(row):
            raise not_found("listing", listing_id)
        self.access.require(operation, Owner.agency(row["agency_id"]))
        return row

    def check_periods(self, row: dict, now: datetime) -> None:
        """39号令 periods (policy data), counted from this publication, and the minimum bidders of an auction."""
        rules = rules_of(row)
        min_bidders = int(rules.get("min_bidders") or self.policy.rules_for(land=bool(row["resource_id"]))
                          .min_bidders(row["mechanism"]))
        try:
            check_periods(self.policy, self.calendar, land=bool(row["resource_id"]), mechanism=row["mechanism"],
                          published_at=now, opens_at=row["bidding_opens_at"], closes_at=row["bidding_closes_at"],
                          min_bidders=min_bidders)
        except TradingRuleError as exc:
            raise refusal(exc) from None

    async def publish_listing(self, key: str, listing_id: str) -> dict:
        digest = idem.digest("publish_listing", {"listing_id": listing_id})
        async with self.uow.read() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        self._manage(row, "PublishListing", listing_id)
        if await self._first_answer(key, "publish_listing", digest) is not None:
            return await self.get_listing(listing_id)
        async with self.uow.read() as tx:
            sale = await load_sale(TradingRepository(tx.session), listing_id, self.writers.codec, self.policy.timers)
        if sale.row["state"] != "draft":
            return await self.get_listing(listing_id)  # publishing twice is harmless
        if not sale.domain.reserve.approved:
            raise RuleViolation("the 底价 must be entered and approved before publication",
                                reason="RESERVE_NOT_APPROVED")
        now = self.clock()
        row = sale.row
        self.check_periods(row, now)
        await self.check_controller("PublishListing", row["resource_id"], row["agency_id"])
        if row["resource_id"]:
            # The catalogue item must be available; the registry refuses otherwise. Keyed: a retry is harmless.
            await self._registry(self.registry.transition_resource(
                f"trading:{listing_id}:list", row["resource_id"], "listed", f"listed as {row['trade_code']}"))
        async def work(tx: Transaction) -> dict:
            nonlocal row
            repo = TradingRepository(tx.session)
            current = await repo.listing(listing_id, lock=True)
            if current["state"] == "draft":
                # The announcement is this publication: an earlier announce_at would claim days that never were.
                # The timers the announcement states are the sale policy's now, unless the listing set its own.
                rules = {**self.policy.timers.rules(row["mechanism"]),
                         **{k: v for k, v in rules_of(row).items() if v}}
                await repo.update_listing(listing_id, state="published", published_at=now, announce_at=now,
                                          next_timer_at=row["bidding_closes_at"], rules=dumps(rules))
                row = {**row, "rules": dumps(rules)}
                await tx.emit(Event("trading.listing.published", "yaosu.trading.listing.published",
                                    f"listing:{listing_id}", {"listing_id": listing_id,
                                                              "trade_code": row["trade_code"],
                                                              "title": row["title"], **_public_row(row)}))
                await tx.audit("listing.published", f"listing:{listing_id}", {"trade_code": row["trade_code"],
                                                                              "sale_policy": self.policy.version})
            self.writers.forget(listing_id)
            return {"listing_id": listing_id}
        await self.write(partition(listing_id), "publish_listing", key, digest, work)
        return await self.get_listing(listing_id)

    async def cancel_listing(self, key: str, listing_id: str, reason: str) -> dict:
        digest = idem.digest("cancel_listing", {"listing_id": listing_id, "reason": reason})
        async with self.uow.read() as tx:
            self._manage(await TradingRepository(tx.session).listing(listing_id), "CancelListing", listing_id)
        if not reason:
            raise InvalidArgument.field("reason", "required")
        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id, lock=True)
            if row["state"] not in ("draft", "published"):
                raise RuleViolation(f"a {row['state']} listing cannot be cancelled", reason="WRONG_STATE")
            batch = Batch(self.clock())
            release_deposits(batch, listing_id, await repo.registrations(listing_id), "cancelled")
            if row["resource_id"] and row["state"] == "published":
                ledger_task(batch, f"trading:{listing_id}:unlist", "transition",
                            {"resource_id": row["resource_id"], "status": "available", "reason": reason})
            await repo.insert_many(r.tasks, batch.tasks)
            for codes, values in batch.registration_updates:
                await repo.update_registrations(listing_id, codes, **values)
            await repo.update_listing(listing_id, state="cancelled", next_timer_at=None)
            if row["state"] != "draft":
                await tx.emit(Event("trading.listing.cancelled", "yaosu.trading.listing.cancelled",
                                    f"listing:{listing_id}", {"listing_id": listing_id, "reason": reason}))
                tx.after_commit(self.metrics.sales_closed.labels("listing", "cancelled", "none").inc)
            await tx.audit("listing.cancelled", f"listing:{listing_id}", {"reason": reason})
            self.writers.forget(listing_id)
            tx.after_commit(self.on_tasks)
            return {"listing_id": listing_id}
        await self.write(partition(listing_id), "cancel_listing", key, digest, work)
        return await self.get_listing(listing_id)

    async def update_listing(self, key: str, listing_id: str, changes: dict[str, Any],
                             reason: str) -> tuple[dict, dict | None]:
        """A draft is edited freely; a published listing gets a versioned, published change notice.
        Once published only what does not alter the bidding already done may change (texts, documents,
        performance terms); price rules and periods are fixed by the announcement."""
        digest = idem.digest("update_listing", {"listing_id": listing_id, "changes": changes, "reason": reason})
        async with self.uow.read() as tx:
            row = self._manage(await TradingRepository(tx.session).listing(listing_id), "UpdateListing",
                               listing_id)
        if row["mechanism"] != "listing" and "rules" in changes:
            # An auction's rules are checked as a whole when it is created (the seed commitment of a quota
            # auction, the lots it carries in, its undersubscription policy …): a new draft changes them.
            raise InvalidArgument.field("listing.rules", f"the rules of a {row['mechanism']} sale are fixed when "
                                                         "its draft is created; create a new draft to change them")
        if row["mechanism"] != "listing" and row["state"] != "draft" and set(changes) & CONDITION_FIELDS:
            # Conditions of a published auction or tender would void the bids made under them (and, sealed,
            # nobody could be asked to confirm again without learning who bid): cancel and re-list instead.
            raise RuleViolation(f"the conditions of a published {row['mechanism']} sale are fixed; cancel and "
                                "re-list to change them", reason="FIXED_BY_ANNOUNCEMENT")
        invalidated, first = await self._invalidate_bids(key, digest, listing_id, changes, reason)
        if first is not None:  # a retry, answered outside any transaction (SQLite has one writer at a time)
            return await self.get_listing(listing_id), first.get("notice")
        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id, lock=True)
            notice = None
            if row["state"] == "draft":
                merged = {**row, **changes}
                spec = {**merged, "rules": changes.get("rules", rules_of(row))}
                validate = self._validate_listing if row["mechanism"] == "listing" else limits.listing_numbers
                validate({**spec, "eligibility": changes.get("eligibility", {}), "performance": {},
                          "documents": []})
                await repo.update_listing(listing_id, **_encode(changes))
            elif row["state"] == "published":
                if not reason:
                    raise InvalidArgument.field("change_reason", "required once the listing is published")
                fixed = set(changes) - {"title", "description", "documents", "performance", "eligibility"}
                if fixed:
                    raise RuleViolation(f"cannot change {', '.join(sorted(fixed))} after publication",
                                        reason="FIXED_BY_ANNOUNCEMENT")
                version = row["version"] + 1
                notice = dict(listing_id=listing_id, version=version, reason=reason,
                              changed_fields=",".join(sorted(changes)), bids_invalidated=invalidated,
                              published_at=self.clock())
                await repo.update_listing(listing_id, version=version, **_encode(changes))
                await repo.insert_notice(notice)
                await tx.emit(Event("trading.listing.changed", "yaosu.trading.listing.changed",
                                    f"listing:{listing_id}", {**notice, "published_at": notice["published_at"]}))
            else:
                raise RuleViolation(f"a {row['state']} listing cannot be changed", reason="WRONG_STATE")
            await tx.audit("listing.updated", f"listing:{listing_id}", {"changes": _public(changes),
                                                                        "reason": reason})
            self.writers.forget(listing_id)
            return {"notice": notice}
        answer = await self.write(partition(listing_id), "update_listing", key, digest, work)
        return await self.get_listing(listing_id), answer["notice"]

    async def _invalidate_bids(self, key: str, digest: str, listing_id: str, changes: dict,
                               reason: str) -> tuple[bool, dict | None]:
        """Before a change notice that alters the conditions (not just texts) of a listing with quotes is
        committed, the sale's writer voids the quotes and asks the bidders to confirm again. Done first and
        keyed by the request, so a retry after a crash in between completes the notice, never voids twice."""
        first = await self._first_answer(key, "update_listing", digest)
        async with self.uow.read() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        if first is not None:
            return False, first
        if not reason or not set(changes) & CONDITION_FIELDS or set(changes) - CHANGEABLE_FIELDS:
            return False, None
        if row is None or row["mechanism"] != "listing" or row["state"] != "published" or not row["accepted_bids"]:
            return False, None
        version = row["version"] + 1
        result = await self.writers.submit(listing_id, Op(
            "invalidate", self.clock(), "system/change-notice", f"{key}:invalidate" if key else "",
            idem.digest("invalidate", {"l": listing_id, "v": version}), {"version": version}))
        return bool(result["invalidated"]), None

    async def _reconfirmed(self, key: str, listing_id: str, credit_code: str) -> bool:
        """Was this key's request a reconfirmation (then its retry is one too)?"""
        try:
            return await self._first_answer(key, "reconfirm", _reconfirm_digest(listing_id, credit_code)) is not None
        except IdempotencyConflict:
            return False

    async def _reconfirm(self, key: str, listing_id: str, credit_code: str) -> dict:
        """After a change notice voided the quotes: the bidder accepts the new conditions and may quote again."""
        digest = _reconfirm_digest(listing_id, credit_code)
        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            reg = await repo.registration(listing_id, credit_code)
            if reg["state"] == "needs_confirmation":
                version = (await repo.listing(listing_id))["version"]
                await repo.update_registrations(listing_id, [credit_code], state="qualified")
                subject = f"listing:{listing_id}"
                await tx.audit("registration.reconfirmed", subject, {"credit_code": credit_code,
                                                                     "listing_version": version})
                await tx.emit(Event("trading.registration.reconfirmed", "yaosu.trading.registration.reconfirmed",
                                    subject, {"listing_id": listing_id, "bidder_number": reg["bidder_number"],
                                              "listing_version": version}))
                self.writers.forget(listing_id)  # the sale's bidders change
            return {"listing_id": listing_id}
        await self.write(partition(listing_id), "reconfirm", key, digest, work)
        return await self.registration(listing_id, credit_code)

    async def enter_reserve(self, key: str, listing_id: str, amount_fen: int) -> dict:
        await self._manageable(listing_id, "EnterReservePrice")
        checks = limits.Checks()
        checks.fen(amount_fen, "reserve_price.fen")
        checks.done()
        await self.writers.submit(listing_id, Op("reserve_enter", self.clock(), actor(), key,
                                                 idem.digest("reserve_enter", {"l": listing_id, "a": amount_fen}),
                                                 {"amount_fen": amount_fen}))
        return await self.get_listing(listing_id)

    async def approve_reserve(self, key: str, listing_id: str) -> dict:
        await self._manageable(listing_id, "ApproveReservePrice")
        await self.writers.submit(listing_id, Op("reserve_approve", self.clock(), actor(), key,
                                                 idem.digest("reserve_approve", {"l": listing_id})))
        return await self.get_listing(listing_id)

    async def change_increment(self, key: str, listing_id: str, increment_fen: int, reason: str
                               ) -> tuple[dict, dict]:
        """增价幅度 of a 挂牌 listing, changed by its agency while it is open or in its live round (§5.3):
        the sale's writer records it, announces it as a change notice and tells every viewer live."""
        row = await self._manageable(listing_id, "ChangeIncrement")
        limits.increment_change(increment_fen, reason)
        if row["state"] == "draft":
            raise RuleViolation("a draft's increment is edited in the draft (UpdateListing)", reason="WRONG_STATE")
        result = await self.writers.submit(listing_id, Op(
            "increment", self.clock(), actor(), key,
            idem.digest("increment", {"l": listing_id, "i": increment_fen, "r": reason}),
            {"increment_fen": increment_fen, "reason": reason}))
        return await self.sale_state(listing_id), result["notice"]

    async def _manageable(self, listing_id: str, operation: str) -> dict:
        async with self.uow.read() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        return self._manage(row, operation, listing_id)

    async def get_listing(self, listing_id: str) -> dict:
        self.access.require("GetListing")
        row = await self._listing_row(listing_id)
        return listing_view(row, self.clock(), reserve_fen=await self._disclosed_reserve(row))

    async def _disclosed_reserve(self, row: dict) -> int | None:
        if row["state"] not in DECIDED:
            return None
        sale = await self._sale(row["listing_id"])
        return sale.domain.reserve_price  # the domain refuses (SealedError) unless decided

    async def list_listings(self, filters: dict, after: str, limit: int) -> tuple[list[dict], int]:
        self.access.require("ListListings")
        state = filters.pop("state", "")
        states = {"announced": ("published",), "bidding": ("published",), "live_round": ("live_round",),
                  "closed": ("closed",), "awarded": ("awarded",), "unsold": ("unsold",),
                  "cancelled": ("cancelled",), "settled": ("settled",), "draft": ("draft",)}.get(state, ())
        drafts_of = self.disclosure.drafts_of()  # a draft is listed to its own agency only
        async with self.uow.read() as tx:
            rows, total = await TradingRepository(tx.session).list_listings(
                state=states, after=after, limit=limit, include_drafts_of=drafts_of, **filters)
        now = self.clock()
        views = [listing_view(r, now) for r in rows]
        if state in ("announced", "bidding"):
            views = [v for v in views if v["state"] == state]
        return views, total

    async def change_notices(self, listing_id: str) -> list[dict]:
        self.access.require("ListChangeNotices")
        await self._listing_row(listing_id)
        async with self.uow.read() as tx:
            return await TradingRepository(tx.session).notices(listing_id)

    # ------------------------------------------------------------ registration
    async def register(self, key: str, listing_id: str, credit_code: str) -> dict:
        self.act_for(credit_code, "RegisterBidder")
        digest = idem.digest("register", {"l": listing_id, "c": credit_code})
        if await self._first_answer(key, "register", digest) is not None:
            return await self.registration(listing_id, credit_code)
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id)
            existing = await repo.registration(listing_id, credit_code)
        if row is None or row["state"] == "draft":
            raise not_found("listing", listing_id)
        if existing is not None:
            return registration_view(existing, identity=True)
        now = self.clock()
        if row["state"] != "published" or now >= row["bidding_closes_at"]:
            raise RuleViolation("registration is closed", reason="REGISTRATION_CLOSED")
        eligibility = rules_eligibility = _json(row["eligibility"])
        answer = await self.eligibility.check(credit_code, rules_eligibility.get("sale_kind", ""))
        allowed = answer.allowed
        detail = answer.condition
        gates = eligibility.get("allowed_classes") or []
        if gates and answer.evaluation_class not in gates:
            allowed, detail = False, f"class gate {gates} not met: {answer.condition or answer.rule}"
        rules = rules_of(row)
        deposit = int(rules.get("deposit") or 0)
        hold_id = ""
        if allowed and deposit:
            account = await self._registry(self.registry.account(credit_code, "CNY", open_if_missing=False))
            deadline = row["bidding_closes_at"] + timedelta(days=self.deposit_hold_days)
            # The hold's purpose names no sale: regulators read holds, and who registers is the sale's secret
            # until its opening. The registration records the hold id.
            hold_id = await self._registry(self.registry.create_hold(
                f"trading:{listing_id}:deposit:{credit_code}", account, str(deposit), deadline, "deposit"))
        reg = dict(registration_id=new_id("R"), listing_id=listing_id, credit_code=credit_code,
                   bidder_number="", state="qualified" if allowed else "refused",
                   eligibility_rule=answer.rule, eligibility_detail=detail, evaluation_score=answer.score,
                   deposit_hold_id=hold_id, deposit_fen=deposit if hold_id else 0,
                   deposit_state="held" if hold_id else "", confirmed_continue=False, registered_at=now)
        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            existing = await repo.registration(listing_id, credit_code)
            if existing is not None:  # a concurrent registration of the same bidder won
                return registration_view(existing, identity=True)
            taken = {r["bidder_number"] for r in await repo.registrations(listing_id)}
            reg["bidder_number"] = _bidder_number(taken)
            await repo.insert_registration(reg)
            subject = f"listing:{listing_id}"
            await tx.audit(f"registration.{reg['state']}", subject,
                           {"credit_code": credit_code, "bidder_number": reg["bidder_number"],
                            "eligibility_rule": answer.rule, "run_id": answer.run_id, "detail": detail,
                            "deposit_hold_id": hold_id, "deposit_fen": reg["deposit_fen"]})
            if allowed:
                # Other bidders learn that someone registered, never who: the event carries no identity.
                await tx.emit(Event("trading.registration.qualified", "yaosu.trading.registration.qualified",
                                    subject, {"listing_id": listing_id, "bidder_number": reg["bidder_number"]}))
            return registration_view(reg, identity=True)
        return await self.write(partition(listing_id), "register", key, digest, work)

    def act_for(self, credit_code: str, operation: str) -> None:
        """Only the enterprise itself registers, bids, orders and confirms: the subject must be the
        enterprise the request names (checked before anything is asked of another service)."""
        if not credit_code:
            raise InvalidArgument.field("credit_code", "required")
        self.access.require(operation, Owner.enterprise(credit_code))

    async def registration(self, listing_id: str, credit_code: str) -> dict:
        """Somebody's registration — or, to anyone who may not learn it, exactly what a non-registration
        answers: before a sealed sale is opened the listing agency and regulators learn nothing either."""
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id)
            reg = await repo.registration(listing_id, credit_code) if row is not None else None
        what, ident = "registration", f"{listing_id}/{credit_code}"
        owners = [Owner.enterprise(credit_code)] + ([Owner.agency(row["agency_id"])] if row else [])
        require_owned(self.access, "GetRegistration", what, ident, owners if reg is not None else None)
        if not self.disclosure.is_self(credit_code) and not self.disclosure.identities(row):
            raise not_found(what, ident)
        return registration_view(reg, identity=True)

    async def registrations(self, listing_id: str, after: str, limit: int) -> list[dict]:
        scope = self.access.scope("ListRegistrations")
        row = await self._listing_row(listing_id)
        if scope.owner is not None and scope.owner.kind is Kind.AGENCY and \
                not scope.includes(Owner.agency(row["agency_id"])):
            raise PermissionDenied("an agency lists the registrations of its own listings only",
                                   reason="NOT_OWNER")
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            if scope.owner is not None and scope.owner.kind is Kind.ENTERPRISE:  # its own, if any
                own = await repo.registration(listing_id, scope.owner.id)
                return [registration_view(own, identity=True)] if own and not after else []
            regs = await repo.registrations(listing_id, after=after, limit=limit)
        if not self.disclosure.participants(row):
            return []  # a sealed sale before its opening: not even how many
        identity = self.disclosure.identities(row)
        return [registration_view(r, identity=identity) for r in regs]

    async def confirm_continue(self, key: str, listing_id: str, credit_code: str) -> dict:
        self.act_for(credit_code, "ConfirmContinue")
        row = await self._listing_row(listing_id)
        if row["mechanism"] != "listing":
            raise RuleViolation(f"ConfirmContinue joins the live round (限时竞价) of a 挂牌 listing; a "
                                f"{row['mechanism']} sale has none", reason="NO_LIVE_ROUND")
        async with self.uow.read() as tx:
            reg = await TradingRepository(tx.session).registration(listing_id, credit_code)
        if reg is not None and (reg["state"] == "needs_confirmation" or await self._reconfirmed(key, listing_id,
                                                                                                credit_code)):
            return await self._reconfirm(key, listing_id, credit_code)
        await self.writers.submit(listing_id, Op("confirm", self.clock(), actor(), key,
                                                 idem.digest("confirm", {"l": listing_id, "c": credit_code}),
                                                 {"credit_code": credit_code}))
        return await self.registration(listing_id, credit_code)

    # ------------------------------------------------------------ bids
    async def place_bid(self, key: str, listing_id: str, credit_code: str, price_fen: int, *,
                        confirm_high_price: bool = False, bid_id: str = "",
                        created_at: datetime | None = None) -> dict:
        self.act_for(credit_code, "SubmitBid" if bid_id else "PlaceBid")
        limits.bid_numbers(price_fen)
        args = {"credit_code": credit_code, "price_fen": price_fen}
        # The confirmation is no part of the bid: a retry with the same key answers the first result.
        digest = idem.digest("bid", {"l": listing_id, "b": bid_id, **args})
        args["confirm_high_price"] = confirm_high_price
        if bid_id:
            args |= {"bid_id": bid_id, "created_at": created_at}
        if listing_id not in self.writers.cache:
            await self._listing_row(listing_id)
        return await self.writers.submit(listing_id, Op("bid", self.clock(), actor(), key, digest, args))

    async def create_bid(self, key: str, listing_id: str, credit_code: str, price_fen: int) -> dict:
        """A draft: stored, invisible to others and to the timers, until SubmitBid publishes it."""
        self.act_for(credit_code, "CreateBid")
        limits.bid_numbers(price_fen)
        digest = idem.digest("create_bid", {"l": listing_id, "c": credit_code, "p": price_fen})
        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id)
            if row is None or row["state"] == "draft":
                raise not_found("listing", listing_id)
            reg = await repo.registration(listing_id, credit_code)
            if reg is None or reg["state"] != "qualified":
                raise RuleViolation("register (and be qualified) before bidding", reason="NOT_REGISTERED")
            now = self.clock()
            bid = dict(bid_id=new_id("B"), listing_id=listing_id, credit_code=credit_code,
                       bidder_number=reg["bidder_number"], state="draft", price_fen=price_fen, quantity_lots=0,
                       sealed=False, receipt="", nonce="", tender_document="", accepted_at=None, sequence=0,
                       listing_version=row["version"], refusal_reason="", created_at=now)
            await repo.insert_many(r.bids, [bid])
            return bid_view(bid, owner=True)
        return await self.write(partition(listing_id), "create_bid", key, digest, work)

    async def submit_bid(self, key: str, bid_id: str, credit_code: str, *, confirm_high_price: bool = False) -> dict:
        async with self.uow.read() as tx:
            bid = await TradingRepository(tx.session).bid(bid_id)
        # An unknown bid and somebody else's answer alike.
        owned = bid is not None and bid["credit_code"] == credit_code
        require_owned(self.access, "SubmitBid", "bid", bid_id, [Owner.enterprise(credit_code)] if owned else None)
        if bid["state"] != "draft":
            return bid_view(bid, owner=True)  # submitting twice returns the submitted bid
        return await self.place_bid(key, bid["listing_id"], credit_code, bid["price_fen"],
                                    confirm_high_price=confirm_high_price, bid_id=bid_id,
                                    created_at=bid["created_at"])

    async def list_bids(self, listing_id: str, credit_code: str, after: int, limit: int) -> list:
        self.access.require("ListBids")
        row = await self._listing_row(listing_id)
        own = self.disclosure.is_self(credit_code)
        identities = self.disclosure.identities(row)
        if credit_code and not own and not identities:
            return []  # asking for somebody's bids must not tell whether it took part
        async with self.uow.read() as tx:
            found = await TradingRepository(tx.session).bids(listing_id, credit_code=credit_code, after=after,
                                                             limit=limit, include_drafts=own)
        # 挂牌 quotes are public (each accepted quote is published), but identities are not.
        return [bid_view(b, owner=own or identities) for b in found]

    async def _listing_row(self, listing_id: str) -> dict:
        async with self.uow.read() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        if row is None or not self.disclosure.listing_visible(row):
            raise not_found("listing", listing_id)
        return row

    async def _sale(self, listing_id: str):
        sale = self.writers.cache.get(listing_id)
        if sale is None:
            async with self.uow.read() as tx:
                sale = await load_sale(TradingRepository(tx.session), listing_id, self.writers.codec,
                                       self.policy.timers)
        if sale is None:
            raise not_found("listing", listing_id)
        return sale

    async def sale_state(self, listing_id: str) -> dict:
        self.access.require("GetSaleState")
        row = await self._listing_row(listing_id)
        sale = await self._sale(listing_id)
        d = sale.domain
        async with self.uow.read() as tx:
            registered = len([r for r in await TradingRepository(tx.session).registrations(listing_id)
                              if r["state"] == "qualified"])
        now = self.clock()
        closes = sale.next_timer() or d.terms.closes_at
        live = row["state"] in ("published", "live_round")
        return {"listing_id": listing_id, "state": listing_view(row, now)["state"],
                "current_price_fen": d.current_price or 0, "leading_bidder_number": d.leader or "",
                "accepted_bids": len(d.quotes), "registered_bidders": registered, "closes_at": closes,
                "server_time": now, "version": row["version"],
                "next_minimum_bid_fen": d.minimum_next_quote() if live else 0, "increment_fen": d.increment}

    async def sale_result(self, listing_id: str) -> dict:
        self.access.require("GetSaleResult")
        row = await self._listing_row(listing_id)
        if row["state"] not in DECIDED and row["state"] != "cancelled":
            raise RuleViolation("the sale is not decided yet", reason="NOT_DECIDED")
        outcome = _json(row["outcome"]) if row["outcome"] else {}
        sale = await self._sale(listing_id)
        d = sale.domain
        amounts = sorted(q.amount for q in d.quotes)
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            trades, _ = await repo.trades(listing_id=listing_id, limit=10)
        live_trade = next((t for t in reversed(trades) if t["settlement_state"] != "failed"), None)
        result = {"listing_id": listing_id, "decided_at": outcome.get("at"),
                  "outcome": {"awarded": "sold", "settled": "sold", "unsold": "unsold",
                              "cancelled": "cancelled"}[row["state"]],
                  "reason": outcome.get("reason", ""), "bid_count": len(amounts),
                  "bidder_count": len({q.bidder for q in d.quotes}), "statistics_published": True,
                  "min_bid_fen": amounts[0] if amounts else 0, "max_bid_fen": amounts[-1] if amounts else 0,
                  "mean_bid_fen": sum(amounts) // len(amounts) if amounts else 0,
                  "median_bid_fen": amounts[len(amounts) // 2] if amounts else 0,
                  "reserve_fen": d.reserve_price if row["state"] in DECIDED else 0}
        if live_trade:
            async with self.uow.read() as tx:
                reg = await TradingRepository(tx.session).registration(listing_id, live_trade["buyer"])
            result |= {"clearing_price_fen": live_trade["price_fen"], "trade_id": live_trade["trade_id"],
                       "winner_bidder_number": reg["bidder_number"], "winner_credit_code": live_trade["buyer"]}
        elif row["state"] in ("awarded", "settled") or (trades and row["state"] == "unsold"):
            result |= {"outcome": "unsold", "reason": "winner_defaulted"}
        return result

    # ------------------------------------------------------------ award, default
    async def confirm_award(self, key: str, listing_id: str, credit_code: str) -> dict:
        """成交确认书: the winner signs; the trade moves to settling and the worker settles it."""
        self.act_for(credit_code, "ConfirmAward")
        digest = idem.digest("confirm_award", {"l": listing_id, "c": credit_code})
        if (first := await self._first_answer(key, "confirm_award", digest)) is not None:
            return await self.trade(first["trade_id"])
        async def work(tx: Transaction) -> dict:
            repo = TradingRepository(tx.session)
            trades, _ = await repo.trades(listing_id=listing_id, state="executed")
            trade = next((t for t in trades if t["buyer"] == credit_code), None)
            if trade is None:
                raise RuleViolation("no award waiting for this bidder's confirmation", reason="NO_AWARD")
            await repo.update_trade(trade["trade_id"], confirmed=True, settlement_state="settling")
            batch = Batch(self.clock())
            ledger_task(batch, f"trading:settle:{trade['trade_id']}", "settle", {}, trade["trade_id"])
            await repo.insert_many(r.tasks, batch.tasks)
            await tx.emit(Event("trading.trade.confirmed", "yaosu.trading.trade.confirmed",
                                f"trade:{trade['trade_id']}", {"trade_id": trade["trade_id"],
                                                               "listing_id": listing_id}))
            await tx.audit("award.confirmed", f"listing:{listing_id}", {"trade_id": trade["trade_id"],
                                                                        "credit_code": credit_code})
            tx.after_commit(self.on_tasks)
            return {"trade_id": trade["trade_id"]}
        confirmed = await self.write(partition(listing_id), "confirm_award", key, digest, work)
        return await self.trade(confirmed["trade_id"])

    async def declare_default(self, key: str, listing_id: str, reason: str) -> dict:
        """The winner defaults: its deposit is forfeited to the grantor and the next bidder (the best quote
        of another bidder that meets the reserve) is offered the award; otherwise the sale is unsold."""
        await self._manageable(listing_id, "DeclareDefault")
        if not reason:
            raise InvalidArgument.field("reason", "required")
        digest = idem.digest("declare_default", {"l": listing_id, "r": reason})

        async def work(tx: Transaction) -> dict:
            sale = await self.writers.sale(TradingRepository(tx.session), listing_id)
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id, lock=True)
            trades, _ = await repo.trades(listing_id=listing_id, state="executed")
            if row["state"] != "awarded" or not trades:
                raise RuleViolation("only an unconfirmed award can be declared in default", reason="NO_AWARD")
            trade = trades[-1]
            batch = Batch(self.clock())
            regs = await repo.registrations(listing_id)
            defaulter = next(r for r in regs if r["credit_code"] == trade["buyer"])
            await repo.update_trade(trade["trade_id"], settlement_state="failed",
                                    settlement_error=f"winner defaulted: {reason}")
            if defaulter["deposit_state"] == "held":
                ledger_task(batch, f"trading:{listing_id}:forfeit:{defaulter['credit_code']}", "forfeit",
                            {"hold_id": defaulter["deposit_hold_id"], "to": row["agency_id"]})
                batch.registration_updates.append(([defaulter["credit_code"]], {"deposit_state": "forfeited"}))
            all_trades, _ = await repo.trades(listing_id=listing_id, limit=100)
            excluded = {t["buyer"] for t in all_trades}
            by_number = {r["bidder_number"]: r for r in regs}
            reserve = sale.domain.reserve_price
            best = sorted((q for q in sale.domain.quotes
                           if by_number[q.bidder]["credit_code"] not in excluded and q.amount >= reserve),
                          key=lambda q: (-q.amount, q.seq))
            if best:
                nxt = by_number[best[0].bidder]
                execute_trade(batch, row, nxt, best[0].amount, trade_id_for(listing_id, len(all_trades) + 1),
                              self.metrics)
                await tx.emit(Event("trading.sale.awarded", "yaosu.trading.sale.awarded",
                                    f"listing:{listing_id}",
                                    {"listing_id": listing_id, "winner_bidder_number": nxt["bidder_number"],
                                     "price_fen": best[0].amount, "via": "next_bidder"}))
            else:
                await repo.update_listing(listing_id, state="unsold")
                release_deposits(batch, listing_id, regs, "winner defaulted",
                                 keep=defaulter["credit_code"])
                if row["resource_id"]:
                    ledger_task(batch, f"trading:{listing_id}:unlist", "transition",
                                {"resource_id": row["resource_id"], "status": "available",
                                 "reason": "winner defaulted"})
                await tx.emit(Event("trading.sale.unsold", "yaosu.trading.sale.unsold", f"listing:{listing_id}",
                                    {"listing_id": listing_id, "reason": "winner_defaulted"}))
            await repo.insert_many(r.tasks, batch.tasks)
            await repo.insert_many(r.trades, batch.trades)
            for codes, values in batch.registration_updates:
                await repo.update_registrations(listing_id, codes, **values)
            await tx.emit_many(batch.outbox)
            await tx.audit("award.defaulted", f"listing:{listing_id}",
                           {"trade_id": trade["trade_id"], "credit_code": trade["buyer"], "reason": reason})
            self.writers.forget(listing_id)
            tx.after_commit(self.on_tasks)
            return {"listing_id": listing_id}
        await self.write(partition(listing_id), "declare_default", key, digest, work)
        return await self.sale_result(listing_id)

    # ------------------------------------------------------------ trades
    async def trade(self, trade_id: str) -> dict:
        """A trade to its parties (the buyer, the selling enterprise or agency) and regulators; to anyone
        else it does not exist."""
        async with self.uow.read() as tx:
            trade = await TradingRepository(tx.session).trade(trade_id)
        owners = None if trade is None else [Owner.enterprise(trade["buyer"]), Owner.enterprise(trade["seller"]),
                                             Owner.agency(trade["seller"])]
        require_owned(self.access, "GetTrade", "trade", trade_id, owners)
        return self.disclosure.trade(trade)

    async def trades(self, filters: dict, after: str, limit: int) -> tuple[list[dict], int]:
        scope = self.access.scope("ListTrades")
        if scope.owner is not None:  # a party lists its own trades (as buyer or as seller)
            if filters.get("credit_code") not in ("", scope.owner.id):
                raise PermissionDenied("a party lists its own trades only", reason="NOT_OWNER")
            filters = filters | {"credit_code": scope.owner.id}
        async with self.uow.read() as tx:
            trades, total = await TradingRepository(tx.session).trades(after=after, limit=limit, **filters)
        return [self.disclosure.trade(t) for t in trades], total

    # ------------------------------------------------------------ timers
    async def fire_due_timers(self) -> int:
        """Timer loop body: every sale whose next_timer_at has passed gets a tick through its writer."""
        now = self.clock()
        async with self.uow.read() as tx:
            due = await TradingRepository(tx.session).due_listings(now, mechanism="listing")
        for listing_id in due:
            try:
                await self.writers.submit(listing_id, Op("tick", self.clock()))
            except Exception:  # noqa: BLE001 - one sale's failure must not stop the others' timers
                log.exception("timer failed", extra={"listing_id": listing_id})
        return len(due)

    async def refresh_gauges(self) -> None:
        async with self.uow.read() as tx:
            repo = TradingRepository(tx.session)
            counts: dict[tuple[str, str], int] = {}
            for mechanism, state in await repo.open_sales():
                counts[(mechanism, state)] = counts.get((mechanism, state), 0) + 1
            backlog = await repo.backlog()
        self.metrics.set_open_sales(counts)
        self.metrics.settlement_backlog.set(backlog)

    async def _registry(self, call):
        try:
            return await call
        except RegistryUnavailable:
            raise DependencyUnavailable("the registry is unavailable; retry", reason="REGISTRY_UNAVAILABLE") from None
        except RegistryRefused as exc:
            raise RuleViolation(f"registry refused: {exc.message}", reason=f"REGISTRY_{exc.code}") from None


# What a published listing may still change; the conditions among them void quotes made before the change.
CHANGEABLE_FIELDS = frozenset({"title", "description", "documents", "performance", "eligibility"})
CONDITION_FIELDS = frozenset({"documents", "performance", "eligibility"})


def _trade_type(instrument: str) -> str:
    kind = instrument.split(":", 1)[0]
    return {"energy_use_right": "energy_use_right", "pollutant_discharge_right": "emission_right",
            "carbon_quota": "carbon_quota"}.get(kind, "energy_use_right")


def _bidder_number(taken: set[str]) -> str:
    # Random, not sequential: a number must not reveal who registered when (other bidders see only numbers).
    while True:
        number = f"{secrets.randbelow(900_000) + 100_000}"
        if number not in taken:
            return number


def _json(text: str) -> dict:
    import json
    return json.loads(text) if text else {}


def _public(spec: dict) -> dict:
    """A listing spec for the journal/events: never the reserve (rules carry none; enforced here too)."""
    data = {k: v for k, v in spec.items() if k != "rules"}
    data["rules"] = {k: v for k, v in spec.get("rules", {}).items() if "reserve" not in k}
    return data


def _public_row(row: dict) -> dict:
    return {"mechanism": row["mechanism"], "resource_id": row["resource_id"], "instrument": row["instrument"],
            "bidding_opens_at": row["bidding_opens_at"], "bidding_closes_at": row["bidding_closes_at"],
            "rules": {k: v for k, v in rules_of(row).items() if "reserve" not in k}}


def _encode(changes: dict) -> dict:
    out = {}
    for key, value in changes.items():
        out[key] = dumps(value) if key in ("rules", "eligibility", "performance", "documents") else value
    return out


__all__ = ["Trading", "actor", "listing_terms"]


def _reconfirm_digest(listing_id: str, credit_code: str) -> str:
    return idem.digest("reconfirm", {"l": listing_id, "c": credit_code})
