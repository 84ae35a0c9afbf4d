"""Use cases of the trading service: listings (draft → publish), dual-controlled reserve, registration with
eligibility and deposit hold, bids (through the sale's group-commit writer), timers, award, default and
reads. Registry calls carry keys derived from our ids, so retries never double a hold or a transfer."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common.errors import (
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    RuleViolation,
    require,
)
from services.common.events.envelope import Event
from services.common.uow import UnitOfWork
from services.trading.adapters.db import repository as r
from services.trading.adapters.db.repository import TradingRepository, dumps
from services.trading.application import idempotency as idem
from services.trading.application.errors import not_found, refusal
from services.trading.application.ports import EligibilityPort, RegistryPort, RegistryRefused, RegistryUnavailable
from services.trading.application.rules import execute_trade, ledger_task, release_deposits, trade_id_for
from services.trading.application.sale import listing_terms, load_sale, rules_of
from services.trading.application.views import DECIDED, bid_view, listing_view, registration_view
from services.trading.application.writer import Batch, Op, Writers, new_id
from services.trading.domain.calendar import (
    LandSaleTimingRules,
    WorkingDayCalendar,
    check_announcement_lead,
    check_listing_period,
)
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.trade_code import TradeCodeFormat, make_trade_code
from services.trading.metrics import TradingMetrics

log = logging.getLogger(__name__)

SUPPORTED = ("listing",)  # mechanisms wired to the service so far


@dataclass(frozen=True)
class Caller:
    actor: str                  # principal/on-behalf-of, for the record
    privileged: bool            # admin, or the gateway acting for an agency/regulator
    agency_id: str = ""         # an agency principal's own agency


class Trading:
    def __init__(self, uow: UnitOfWork, writers: Writers, registry: RegistryPort, eligibility: EligibilityPort,
                 metrics: TradingMetrics, clock: Callable[[], datetime], *, region_code: str,
                 deposit_hold_days: int, enforce_land_timing: bool, on_tasks: Callable[[], None]) -> None:
        self.uow, self.writers, self.registry, self.eligibility = uow, writers, registry, eligibility
        self.metrics, self.clock, self.region_code = metrics, clock, region_code
        self.deposit_hold_days, self.enforce_land_timing = deposit_hold_days, enforce_land_timing
        self.on_tasks = on_tasks
        self.trade_codes = TradeCodeFormat()
        self.calendar = WorkingDayCalendar()
        self.timing = LandSaleTimingRules()

    # ------------------------------------------------------------ listings
    async def create_listing(self, key: str, spec: dict[str, Any], caller: Caller) -> dict:
        self._validate_listing(spec)
        if caller.agency_id and spec["agency_id"] != caller.agency_id:
            raise PermissionDenied("an agency lists only its own items")
        digest = idem.digest("create_listing", spec)
        if (first := await self._first_answer(key, "create_listing", digest)) is not None:
            return await self.get_listing(first["listing_id"], caller)
        async with self.uow() as tx:
            if (first := await idem.replay(tx, key, "create_listing", digest)) is not None:
                return await self.get_listing(first["listing_id"], caller)
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
                       reserve_approved_by="", created_at=now, published_at=None, created_by=caller.actor)
            await repo.insert_listing(row)
            await tx.audit("listing.created", f"listing:{listing_id}", {"trade_code": trade_code, **_public(spec)})
            await idem.remember(tx, key, "create_listing", digest, {"listing_id": listing_id})
            await tx.commit()
        return listing_view(row, now)

    async def _first_answer(self, key: str, operation: str, digest: str) -> Any | None:
        """A retry's first result, looked up in a transaction of its own: the answer is then read in another
        one (a read inside the lookup's transaction would wait on itself under SQLite's single writer)."""
        async with self.uow() as tx:
            return await idem.replay(tx, key, operation, digest)

    def _validate_listing(self, spec: dict[str, Any]) -> None:
        v: list[FieldViolation] = []
        rules = spec["rules"]
        if spec["mechanism"] not in SUPPORTED:
            v.append(FieldViolation("listing.mechanism", f"supported mechanisms: {', '.join(SUPPORTED)}"))
        if not spec["agency_id"]:
            v.append(FieldViolation("listing.agency_id", "required"))
        if not spec["title"]:
            v.append(FieldViolation("listing.title", "required"))
        if not spec["resource_id"] and not spec["instrument"]:
            v.append(FieldViolation("listing.resource_id", "a catalogue item or an instrument is required"))
        for name in ("start_price", "increment"):
            if rules.get(name, 0) <= 0:
                v.append(FieldViolation(f"listing.rules.{name}", "must be positive fen"))
        if rules.get("deposit", 0) < 0:
            v.append(FieldViolation("listing.rules.deposit", "must not be negative"))
        opens, closes = spec["bidding_opens_at"], spec["bidding_closes_at"]
        if opens is None or closes is None:
            v.append(FieldViolation("listing.bidding_closes_at", "bidding_opens_at and bidding_closes_at required"))
        elif closes <= opens:
            v.append(FieldViolation("listing.bidding_closes_at", "must be after bidding_opens_at"))
        require(v)

    async def publish_listing(self, key: str, listing_id: str, caller: Caller) -> dict:
        digest = idem.digest("publish_listing", {"listing_id": listing_id})
        if await self._first_answer(key, "publish_listing", digest) is not None:
            return await self.get_listing(listing_id, caller)
        async with self.uow() as tx:
            if await idem.replay(tx, key, "publish_listing", digest) is not None:
                return await self.get_listing(listing_id, caller)
            repo = TradingRepository(tx.session)
            sale = await load_sale(repo, listing_id, self.writers.codec)
        if sale is None:
            raise not_found("listing", listing_id)
        self._may_manage(sale.row, caller)
        if sale.row["state"] != "draft":
            return await self.get_listing(listing_id, caller)  # publishing twice is harmless
        if not sale.domain.reserve.approved:
            raise RuleViolation("the 底价 must be entered and approved before publication",
                                reason="RESERVE_NOT_APPROVED")
        now = self.clock()
        row = sale.row
        announce = row["announce_at"] or now
        if row["resource_id"] and self.enforce_land_timing:
            try:
                check_announcement_lead(self.timing, announce.date(), row["bidding_opens_at"])
                check_listing_period(self.timing, self.calendar, row["bidding_opens_at"], row["bidding_closes_at"])
            except TradingRuleError as exc:
                raise refusal(exc) from None
        if row["resource_id"]:
            # The catalogue item must be available; the registry refuses otherwise. Keyed: a retry is harmless.
            await self._registry(self.registry.transition_resource(
                f"trading:{listing_id}:list", row["resource_id"], "listed", f"listed as {row['trade_code']}"))
        async with self.uow() as tx:
            repo = TradingRepository(tx.session)
            current = await repo.listing(listing_id, lock=True)
            if current["state"] == "draft":
                await repo.update_listing(listing_id, state="published", published_at=now, announce_at=announce,
                                          next_timer_at=row["bidding_closes_at"])
                await tx.emit(Event("trading.listing.published", "yaosu.trading.listing.published",
                                    f"listing:{listing_id}", {"listing_id": listing_id,
                                                              "trade_code": row["trade_code"],
                                                              "title": row["title"], **_public_row(row)}))
                await tx.audit("listing.published", f"listing:{listing_id}", {"trade_code": row["trade_code"]})
            await idem.remember(tx, key, "publish_listing", digest, {"listing_id": listing_id})
            await tx.commit()
        self.writers.forget(listing_id)
        return await self.get_listing(listing_id, caller)

    async def cancel_listing(self, key: str, listing_id: str, reason: str, caller: Caller) -> dict:
        digest = idem.digest("cancel_listing", {"listing_id": listing_id, "reason": reason})
        if not reason:
            raise InvalidArgument.field("reason", "required")
        async with self.uow() as tx:
            if await idem.replay(tx, key, "cancel_listing", digest) is None:
                repo = TradingRepository(tx.session)
                row = await repo.listing(listing_id, lock=True)
                if row is None:
                    raise not_found("listing", listing_id)
                self._may_manage(row, caller)
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
                    self.metrics.sales_closed.labels("listing", "cancelled", "none").inc()
                await tx.audit("listing.cancelled", f"listing:{listing_id}", {"reason": reason})
                await idem.remember(tx, key, "cancel_listing", digest, {"listing_id": listing_id})
                await tx.commit()
        self.writers.forget(listing_id)
        self.on_tasks()
        return await self.get_listing(listing_id, caller)

    async def update_listing(self, key: str, listing_id: str, changes: dict[str, Any], reason: str,
                             caller: Caller) -> tuple[dict, dict | None]:
        """A draft is edited freely; a published listing gets a versioned, published change notice.
        Once published only what does not alter the bidding already done may change (texts, documents,
        performance terms); price rules and periods are fixed by the announcement."""
        digest = idem.digest("update_listing", {"listing_id": listing_id, "changes": changes, "reason": reason})
        invalidated, first = await self._invalidate_bids(key, digest, listing_id, changes, reason)
        if first is not None:  # a retry, answered outside any transaction (SQLite has one writer at a time)
            return await self.get_listing(listing_id, caller), first.get("notice")
        async with self.uow() as tx:
            if (first := await idem.replay(tx, key, "update_listing", digest)) is not None:
                return await self.get_listing(listing_id, caller), first.get("notice")
            repo = TradingRepository(tx.session)
            row = await repo.listing(listing_id, lock=True)
            if row is None:
                raise not_found("listing", listing_id)
            self._may_manage(row, caller)
            notice = None
            if row["state"] == "draft":
                merged = {**row, **changes}
                spec = {**merged, "rules": changes.get("rules", rules_of(row))}
                self._validate_listing({**spec, "eligibility": {}, "performance": {}, "documents": []})
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
            await idem.remember(tx, key, "update_listing", digest, {"notice": notice})
            await tx.commit()
        self.writers.forget(listing_id)
        return await self.get_listing(listing_id, caller), notice

    async def _invalidate_bids(self, key: str, digest: str, listing_id: str, changes: dict,
                               reason: str) -> tuple[bool, dict | None]:
        """Before a change notice that alters the conditions (not just texts) of a listing with quotes is
        committed, the sale's writer voids the quotes and asks the bidders to confirm again. Done first and
        keyed by the request, so a retry after a crash in between completes the notice, never voids twice."""
        async with self.uow() as tx:
            first = await idem.replay(tx, key, "update_listing", digest)
            row = await TradingRepository(tx.session).listing(listing_id)
        if first is not None:
            return False, first
        if not reason or not set(changes) & CONDITION_FIELDS or set(changes) - CHANGEABLE_FIELDS:
            return False, None
        if row is None or row["state"] != "published" or not row["accepted_bids"]:
            return False, None
        version = row["version"] + 1
        result = await self.writers.submit(listing_id, Op(
            "invalidate", self.clock(), "system/change-notice", f"{key}:invalidate" if key else "",
            idem.digest("invalidate", {"l": listing_id, "v": version}), {"version": version}))
        return bool(result["invalidated"]), None

    async def _reconfirm(self, key: str, listing_id: str, credit_code: str, caller: Caller) -> dict:
        """After a change notice voided the quotes: the bidder accepts the new conditions and may quote again."""
        digest = idem.digest("reconfirm", {"l": listing_id, "c": credit_code})
        async with self.uow() as tx:
            if await idem.replay(tx, key, "reconfirm", digest) is None:
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
                await idem.remember(tx, key, "reconfirm", digest, {"listing_id": listing_id})
                await tx.commit()
        return await self.registration(listing_id, credit_code, caller)

    async def enter_reserve(self, key: str, listing_id: str, amount_fen: int, caller: Caller) -> dict:
        if amount_fen <= 0:
            raise InvalidArgument.field("reserve_price.fen", "must be positive")
        await self._manageable(listing_id, caller)
        await self.writers.submit(listing_id, Op("reserve_enter", self.clock(), caller.actor, key,
                                                 idem.digest("reserve_enter", {"l": listing_id, "a": amount_fen}),
                                                 {"amount_fen": amount_fen}))
        return await self.get_listing(listing_id, caller)

    async def approve_reserve(self, key: str, listing_id: str, caller: Caller) -> dict:
        await self._manageable(listing_id, caller)
        await self.writers.submit(listing_id, Op("reserve_approve", self.clock(), caller.actor, key,
                                                 idem.digest("reserve_approve", {"l": listing_id})))
        return await self.get_listing(listing_id, caller)

    async def _manageable(self, listing_id: str, caller: Caller) -> dict:
        async with self.uow() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        if row is None:
            raise not_found("listing", listing_id)
        self._may_manage(row, caller)
        return row

    @staticmethod
    def _may_manage(row: dict, caller: Caller) -> None:
        if caller.agency_id and caller.agency_id != row["agency_id"]:
            raise PermissionDenied("only the listing agency manages this listing")

    async def get_listing(self, listing_id: str, caller: Caller) -> dict:
        async with self.uow() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        if row is None or (row["state"] == "draft" and not self._sees_draft(row, caller)):
            raise not_found("listing", listing_id)
        return listing_view(row, self.clock(), reserve_fen=await self._disclosed_reserve(row))

    async def _disclosed_reserve(self, row: dict) -> int | None:
        if row["state"] not in DECIDED:
            return None
        sale = await self._sale(row["listing_id"])
        return sale.domain.reserve_price  # the domain refuses (SealedError) unless decided

    @staticmethod
    def _sees_draft(row: dict, caller: Caller) -> bool:
        return caller.privileged and (not caller.agency_id or caller.agency_id == row["agency_id"])

    async def list_listings(self, filters: dict, after: str, limit: int, caller: Caller) -> tuple[list[dict], int]:
        state = filters.pop("state", "")
        states = {"announced": ("published",), "bidding": ("published",), "live_round": ("live_round",),
                  "closed": ("closed",), "awarded": ("awarded",), "unsold": ("unsold",),
                  "cancelled": ("cancelled",), "settled": ("settled",), "draft": ("draft",)}.get(state, ())
        drafts_of = (caller.agency_id if caller.agency_id else "") if caller.privileged else None
        if caller.privileged and not caller.agency_id:
            drafts_of = ""  # admins see every draft
        async with self.uow() as tx:
            rows, total = await TradingRepository(tx.session).list_listings(
                state=states, after=after, limit=limit, include_drafts_of=drafts_of, **filters)
        now = self.clock()
        views = [listing_view(r, now) for r in rows]
        if state in ("announced", "bidding"):
            views = [v for v in views if v["state"] == state]
        return views, total

    async def change_notices(self, listing_id: str, caller: Caller) -> list[dict]:
        await self.get_listing(listing_id, caller)
        async with self.uow() as tx:
            return await TradingRepository(tx.session).notices(listing_id)

    # ------------------------------------------------------------ registration
    async def register(self, key: str, listing_id: str, credit_code: str, caller: Caller) -> dict:
        if not credit_code:
            raise InvalidArgument.field("credit_code", "required")
        digest = idem.digest("register", {"l": listing_id, "c": credit_code})
        if await self._first_answer(key, "register", digest) is not None:
            return await self.registration(listing_id, credit_code, caller)
        async with self.uow() as tx:
            repo = TradingRepository(tx.session)
            if await idem.replay(tx, key, "register", digest) is not None:
                return await self.registration(listing_id, credit_code, caller)
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
            hold_id = await self._registry(self.registry.create_hold(
                f"trading:{listing_id}:deposit:{credit_code}", account, str(deposit), deadline,
                f"deposit:{listing_id}"))
        reg = dict(registration_id=new_id("R"), listing_id=listing_id, credit_code=credit_code,
                   bidder_number="", state="qualified" if allowed else "refused",
                   eligibility_rule=answer.rule, eligibility_detail=detail, evaluation_score=answer.score,
                   deposit_hold_id=hold_id, deposit_fen=deposit if hold_id else 0,
                   deposit_state="held" if hold_id else "", confirmed_continue=False, registered_at=now)
        async with self.uow() as tx:
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
            await idem.remember(tx, key, "register", digest, {"registration_id": reg["registration_id"]})
            await tx.commit()
        return registration_view(reg, identity=True)

    async def registration(self, listing_id: str, credit_code: str, caller: Caller) -> dict:
        async with self.uow() as tx:
            reg = await TradingRepository(tx.session).registration(listing_id, credit_code)
        if reg is None:
            raise not_found("registration", f"{listing_id}/{credit_code}")
        return registration_view(reg, identity=True)

    async def registrations(self, listing_id: str, after: str, limit: int, caller: Caller) -> list[dict]:
        row = await self._listing_row(listing_id, caller)
        async with self.uow() as tx:
            regs = await TradingRepository(tx.session).registrations(listing_id, after=after, limit=limit)
        # Identities: regulators/admin always, the agency after the sale is decided; others see numbers.
        identity = caller.privileged and (not caller.agency_id or row["state"] in DECIDED)
        return [registration_view(r, identity=identity) for r in regs]

    async def confirm_continue(self, key: str, listing_id: str, credit_code: str, caller: Caller) -> dict:
        await self._listing_row(listing_id, caller)
        async with self.uow() as tx:
            repo = TradingRepository(tx.session)
            reg = await repo.registration(listing_id, credit_code)
            first = (await repo.idempotency_records(tx.uow.tables.idempotency, [key])).get(key)
        if reg is not None and (reg["state"] == "needs_confirmation" or (first and first.operation == "reconfirm")):
            return await self._reconfirm(key, listing_id, credit_code, caller)
        await self.writers.submit(listing_id, Op("confirm", self.clock(), caller.actor, key,
                                                 idem.digest("confirm", {"l": listing_id, "c": credit_code}),
                                                 {"credit_code": credit_code}))
        return await self.registration(listing_id, credit_code, caller)

    # ------------------------------------------------------------ bids
    async def place_bid(self, key: str, listing_id: str, credit_code: str, price_fen: int, caller: Caller,
                        bid_id: str = "", created_at: datetime | None = None) -> dict:
        if not credit_code:
            raise InvalidArgument.field("credit_code", "required")
        args = {"credit_code": credit_code, "price_fen": price_fen}
        digest = idem.digest("bid", {"l": listing_id, "b": bid_id, **args})
        if bid_id:
            args |= {"bid_id": bid_id, "created_at": created_at}
        if listing_id not in self.writers.cache:
            await self._listing_row(listing_id, caller)
        return await self.writers.submit(listing_id, Op("bid", self.clock(), caller.actor, key, digest, args))

    async def create_bid(self, key: str, listing_id: str, credit_code: str, price_fen: int, caller: Caller) -> dict:
        """A draft: stored, invisible to others and to the timers, until SubmitBid publishes it."""
        if not credit_code:
            raise InvalidArgument.field("credit_code", "required")
        digest = idem.digest("create_bid", {"l": listing_id, "c": credit_code, "p": price_fen})
        async with self.uow() as tx:
            if (first := await idem.replay(tx, key, "create_bid", digest)) is not None:
                return first
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
            view = bid_view(bid, owner=True)
            await idem.remember(tx, key, "create_bid", digest, view)
            await tx.commit()
        return view

    async def submit_bid(self, key: str, bid_id: str, credit_code: str, caller: Caller) -> dict:
        async with self.uow() as tx:
            bid = await TradingRepository(tx.session).bid(bid_id)
        if bid is None or bid["credit_code"] != credit_code:
            raise not_found("bid", bid_id)
        if bid["state"] != "draft":
            return bid_view(bid, owner=True)  # submitting twice returns the submitted bid
        return await self.place_bid(key, bid["listing_id"], credit_code, bid["price_fen"], caller,
                                    bid_id=bid_id, created_at=bid["created_at"])

    async def list_bids(self, listing_id: str, credit_code: str, after: int, limit: int, caller: Caller) -> list:
        await self._listing_row(listing_id, caller)
        async with self.uow() as tx:
            found = await TradingRepository(tx.session).bids(listing_id, credit_code=credit_code, after=after,
                                                             limit=limit, include_drafts=bool(credit_code))
        # 挂牌 quotes are public (each accepted quote is published), but identities are not.
        return [bid_view(b, owner=bool(credit_code) or (caller.privileged and not caller.agency_id))
                for b in found]

    async def _listing_row(self, listing_id: str, caller: Caller) -> dict:
        async with self.uow() as tx:
            row = await TradingRepository(tx.session).listing(listing_id)
        if row is None or (row["state"] == "draft" and not self._sees_draft(row, caller)):
            raise not_found("listing", listing_id)
        return row

    async def _sale(self, listing_id: str):
        sale = self.writers.cache.get(listing_id)
        if sale is None:
            async with self.uow() as tx:
                sale = await load_sale(TradingRepository(tx.session), listing_id, self.writers.codec)
        if sale is None:
            raise not_found("listing", listing_id)
        return sale

    async def sale_state(self, listing_id: str, caller: Caller) -> dict:
        row = await self._listing_row(listing_id, caller)
        sale = await self._sale(listing_id)
        d = sale.domain
        async with self.uow() as tx:
            registered = len([r for r in await TradingRepository(tx.session).registrations(listing_id)
                              if r["state"] == "qualified"])
        now = self.clock()
        closes = sale.next_timer() or d.terms.closes_at
        live = row["state"] in ("published", "live_round")
        return {"listing_id": listing_id, "state": listing_view(row, now)["state"],
                "current_price_fen": d.current_price or 0, "leading_bidder_number": d.leader or "",
                "accepted_bids": len(d.quotes), "registered_bidders": registered, "closes_at": closes,
                "server_time": now, "version": row["version"],
                "next_minimum_bid_fen": d.minimum_next_quote() if live else 0}

    async def sale_result(self, listing_id: str, caller: Caller) -> dict:
        row = await self._listing_row(listing_id, caller)
        if row["state"] not in DECIDED and row["state"] != "cancelled":
            raise RuleViolation("the sale is not decided yet", reason="NOT_DECIDED")
        outcome = _json(row["outcome"]) if row["outcome"] else {}
        sale = await self._sale(listing_id)
        d = sale.domain
        amounts = sorted(q.amount for q in d.quotes)
        async with self.uow() as tx:
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
            async with self.uow() as tx:
                reg = await TradingRepository(tx.session).registration(listing_id, live_trade["buyer"])
            result |= {"clearing_price_fen": live_trade["price_fen"], "trade_id": live_trade["trade_id"],
                       "winner_bidder_number": reg["bidder_number"], "winner_credit_code": live_trade["buyer"]}
        elif row["state"] in ("awarded", "settled") or (trades and row["state"] == "unsold"):
            result |= {"outcome": "unsold", "reason": "winner_defaulted"}
        return result

    # ------------------------------------------------------------ award, default
    async def confirm_award(self, key: str, listing_id: str, credit_code: str, caller: Caller) -> dict:
        """成交确认书: the winner signs; the trade moves to settling and the worker settles it."""
        digest = idem.digest("confirm_award", {"l": listing_id, "c": credit_code})
        if (first := await self._first_answer(key, "confirm_award", digest)) is not None:
            return await self.trade(first["trade_id"], caller)
        async with self.uow() as tx:
            if (first := await idem.replay(tx, key, "confirm_award", digest)) is not None:
                return await self.trade(first["trade_id"], caller)
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
            await idem.remember(tx, key, "confirm_award", digest, {"trade_id": trade["trade_id"]})
            await tx.commit()
        self.on_tasks()
        return await self.trade(trade["trade_id"], caller)

    async def declare_default(self, key: str, listing_id: str, reason: str, caller: Caller) -> dict:
        """The winner defaults: its deposit is forfeited to the grantor and the next bidder (the best quote
        of another bidder that meets the reserve) is offered the award; otherwise the sale is unsold."""
        if not reason:
            raise InvalidArgument.field("reason", "required")
        digest = idem.digest("declare_default", {"l": listing_id, "r": reason})
        sale = await self._sale(listing_id)
        async with self.uow() as tx:
            if await idem.replay(tx, key, "declare_default", digest) is None:
                repo = TradingRepository(tx.session)
                row = await repo.listing(listing_id, lock=True)
                self._may_manage(row, caller)
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
                await idem.remember(tx, key, "declare_default", digest, {"listing_id": listing_id})
                await tx.commit()
        self.writers.forget(listing_id)
        self.on_tasks()
        return await self.sale_result(listing_id, caller)

    # ------------------------------------------------------------ trades
    async def trade(self, trade_id: str, caller: Caller) -> dict:
        async with self.uow() as tx:
            trade = await TradingRepository(tx.session).trade(trade_id)
        if trade is None:
            raise not_found("trade", trade_id)
        return trade

    async def trades(self, filters: dict, after: str, limit: int) -> tuple[list[dict], int]:
        async with self.uow() as tx:
            return await TradingRepository(tx.session).trades(after=after, limit=limit, **filters)

    # ------------------------------------------------------------ timers
    async def fire_due_timers(self) -> int:
        """Timer loop body: every sale whose next_timer_at has passed gets a tick through its writer."""
        now = self.clock()
        async with self.uow() as tx:
            due = await TradingRepository(tx.session).due_listings(now, mechanism="listing")
        for listing_id in due:
            try:
                await self.writers.submit(listing_id, Op("tick", self.clock()))
            except Exception:  # noqa: BLE001 - one sale's failure must not stop the others' timers
                log.exception("timer failed", extra={"listing_id": listing_id})
        return len(due)

    async def refresh_gauges(self) -> None:
        async with self.uow() as tx:
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
            from services.common.errors import DependencyUnavailable
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


__all__ = ["Caller", "Trading", "listing_terms"]
