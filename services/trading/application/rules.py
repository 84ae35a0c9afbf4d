"""How a queued command changes a 挂牌 sale, and what each domain event leaves behind: the stored event,
the bid row, the outbox event (no secret in it), the audit entry, and — when the sale is decided — the
trade and the ledger tasks (void deposits, move the parcel back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from services.common.errors import InvalidArgument, RuleViolation
from services.common.events.envelope import Event
from services.trading.adapters.db.event_codec import EventCodec
from services.trading.adapters.db.repository import TradingRepository, dumps
from services.trading.application.sale import Sale
from services.trading.application.views import bid_view
from services.trading.application.writer import Batch, Op, new_id
from services.trading.domain import listing as L
from services.trading.domain.errors import DomainError as TradingRuleError
from services.trading.domain.periods import SalePolicy, check_collar
from services.trading.domain.reserve import ReserveApproved, ReserveEntered
from services.trading.metrics import TradingMetrics, bidders_label


def trade_id_for(listing_id: str, attempt: int) -> str:
    # Deterministic: the settlement's registry idempotency key derives from it.
    return f"{listing_id}-T{attempt}"


def ledger_task(batch: Batch, task_id: str, kind: str, payload: dict, trade_id: str = "") -> None:
    batch.tasks.append(dict(task_id=task_id, kind=kind, payload=dumps(payload), trade_id=trade_id, state="pending",
                            attempts=0, error="", next_attempt_at=batch.now, created_at=batch.now, done_at=None))


class SaleRules:
    def __init__(self, metrics: TradingMetrics, codec: EventCodec, on_tasks: Callable[[], None],
                 policy: SalePolicy) -> None:
        self.metrics = metrics
        self.codec = codec
        self.policy = policy  # the price collar
        self.on_tasks = on_tasks  # wakes the settlement worker after a commit that queued ledger tasks

    def refused(self, sale: Sale, op: Op, reason: str) -> None:
        if op.kind == "bid":
            self.metrics.bid("listing", False, reason)

    async def apply(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> Any:
        handler = getattr(self, f"_{op.kind}")
        return await handler(sale, op, batch, repo)

    # ------------------------------------------------------------ commands
    async def _bid(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> dict:
        if sale.row["state"] in ("draft", "cancelled"):
            raise TradingRuleError("WRONG_STATE", f"the listing is {sale.row['state']}")
        number = sale.bidders.get(op.args["credit_code"])
        if number is None:
            raise TradingRuleError("NOT_REGISTERED", "register (and be qualified) before bidding")
        price = op.args["price_fen"]
        if price <= 0:
            raise InvalidArgument.field("price.fen", "must be positive")
        d = sale.domain
        # Against the price of this moment (the last quote, else the start price), as the writer sees it.
        collared = check_collar(self.policy, price, d.current_price or d.terms.start_price,
                                bool(op.args.get("confirm_high_price")))
        if d.status is L.ListingStatus.LIVE_ROUND:
            events = d.live_bid(number, price, op.at)
        elif d.status is L.ListingStatus.OPEN:
            events = d.quote(number, price, op.at)
        else:
            raise TradingRuleError("WRONG_STATE", f"the listing is {d.status.value}")
        quote = events[0]
        bid = dict(bid_id=op.args.get("bid_id") or new_id("B"), listing_id=sale.listing_id,
                   credit_code=op.args["credit_code"], bidder_number=number, state="accepted", price_fen=price,
                   quantity_lots=0, sealed=False, receipt="", nonce="", tender_document="", accepted_at=op.at,
                   sequence=quote.seq, listing_version=sale.row["version"], refusal_reason="",
                   created_at=op.args.get("created_at") or op.at)
        if op.args.get("bid_id"):
            batch.bid_updates.append((bid["bid_id"], {k: bid[k] for k in ("state", "accepted_at", "sequence",
                                                                         "listing_version")}))
        else:
            batch.bids.append(bid)
        batch.audit.append((op.actor, "bid.accepted", f"listing:{sale.listing_id}",
                            {"bid_id": bid["bid_id"], "credit_code": bid["credit_code"], "bidder_number": number,
                             "price_fen": price, "sequence": quote.seq, "live_round": quote.live_round}))
        self._record(sale, events, batch, op.actor)
        self.metrics.bid("listing", True)
        if collared:
            batch.after_commit.append(lambda: self.metrics.collar_confirmed("listing"))
        return bid_view(bid, owner=True)

    async def _tick(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> None:
        d, now = sale.domain, op.at
        if sale.row["state"] in ("draft", "cancelled") or d.is_final:
            return None
        if d.status is L.ListingStatus.OPEN and now >= d.terms.closes_at:
            events = d.close(now)
        elif d.status is L.ListingStatus.AWAITING_CONFIRMATION and now >= d.confirmation_deadline:
            events = d.end_confirmation(now)
        elif d.status is L.ListingStatus.LIVE_ROUND and now >= d.live_deadline:
            events = d.finish_live_round(now)
        else:
            return None
        self._record(sale, events, batch, "system/timer")
        await self._decided(sale, events, batch, repo)
        return None

    async def _confirm(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> dict:
        number = sale.bidders.get(op.args["credit_code"])
        if number is None:
            raise TradingRuleError("NOT_REGISTERED", "not a qualified bidder of this listing")
        events = sale.domain.confirm_continue(number, op.at)
        batch.registration_updates.append(([op.args["credit_code"]], {"confirmed_continue": True}))
        batch.audit.append((op.actor, "registration.confirmed_continue", f"listing:{sale.listing_id}",
                            {"credit_code": op.args["credit_code"], "bidder_number": number}))
        self._record(sale, events, batch, op.actor)
        return {"listing_id": sale.listing_id, "credit_code": op.args["credit_code"]}

    async def _invalidate(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> dict:
        """A change notice altered the conditions after quotes were made: the quotes are voided (kept in the
        record), and every qualified bidder must confirm again (ConfirmContinue) before quoting."""
        d, version = sale.domain, op.args["version"]
        if sale.row["state"] != "published" or d.status is not L.ListingStatus.OPEN or not d.quotes:
            return {"invalidated": 0}
        events = d.invalidate_quotes(version, op.at)
        voided = [b for b in await repo.bids(sale.listing_id, limit=1_000_000) if b["state"] == "accepted"]
        for bid in voided:
            batch.bid_updates.append((bid["bid_id"], {"state": "superseded",
                                                      "refusal_reason": f"invalidated by change notice v{version}"}))
        codes = [reg["credit_code"] for reg in await repo.registrations(sale.listing_id)
                 if reg["state"] == "qualified"]
        batch.registration_updates.append((codes, {"state": "needs_confirmation", "confirmed_continue": False}))
        sale.bidders.clear()  # nobody quotes again before confirming
        batch.audit.append((op.actor, "bids.invalidated", f"listing:{sale.listing_id}",
                            {"notice_version": version, "bids": len(voided), "bidders": len(codes)}))
        self._record(sale, events, batch, op.actor)
        return {"invalidated": len(voided)}

    async def _increment(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> dict:
        """增价幅度 changed by the listing agency (§5.3): the domain event, a change notice announcing the old and
        the new value with the reason, the journal entry and a live fact with the next minimum bid."""
        if sale.row["state"] in ("draft", "cancelled"):
            raise TradingRuleError("WRONG_STATE", f"the listing is {sale.row['state']}")
        events = sale.domain.change_increment(op.args["increment_fen"], op.actor, op.at)
        version = sale.row["version"] + 1
        notice, facts = increment_announcement(sale.listing_id, version, events[0], op.args["reason"],
                                               sale.domain.minimum_next_quote())
        batch.notices.append(notice)
        batch.listing_updates["version"] = version
        batch.outbox.append(Event("trading.sale.increment_changed", "yaosu.trading.sale.increment_changed",
                                  f"listing:{sale.listing_id}",
                                  {"listing_id": sale.listing_id, "trade_code": sale.row["trade_code"], **facts}))
        batch.audit.append((op.actor, "increment.changed", f"listing:{sale.listing_id}",
                            {"changed_by": op.actor, **facts}))
        self._record(sale, events, batch, op.actor)
        return {"notice": {**notice, "published_at": op.at.isoformat()}}

    async def _reserve_enter(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> dict:
        self._reserve_editable(sale)
        events = sale.domain.enter_reserve(op.args["amount_fen"], op.actor, op.at)
        # The journal records who entered it and when — never the amount (it is sealed until the decision).
        batch.audit.append((op.actor, "reserve.entered", f"listing:{sale.listing_id}", {"entered_by": op.actor}))
        self._record(sale, events, batch, op.actor)
        return {"listing_id": sale.listing_id}

    async def _reserve_approve(self, sale: Sale, op: Op, batch: Batch, repo: TradingRepository) -> dict:
        self._reserve_editable(sale)
        events = sale.domain.approve_reserve(op.actor, op.at)
        batch.audit.append((op.actor, "reserve.approved", f"listing:{sale.listing_id}",
                            {"entered_by": sale.domain.reserve.entered_by, "approved_by": op.actor}))
        self._record(sale, events, batch, op.actor)
        return {"listing_id": sale.listing_id}

    @staticmethod
    def _reserve_editable(sale: Sale) -> None:
        if sale.row["state"] == "cancelled":
            raise RuleViolation("the listing is cancelled", reason="WRONG_STATE")

    # ------------------------------------------------------------ effects of domain events
    def _record(self, sale: Sale, events: list, batch: Batch, actor: str) -> None:
        lid = sale.listing_id
        for event in events:
            sale.last_seq += 1
            type_name, payload = self.codec.encode(event)
            batch.events.append(dict(listing_id=lid, seq=sale.last_seq, type=type_name, payload=payload,
                                     at=event.at))
            public = self._public(event)
            if public is not None:
                subject, data = public
                batch.outbox.append(Event(f"trading.{subject}", f"yaosu.trading.{subject}", f"listing:{lid}",
                                          {"listing_id": lid, "trade_code": sale.row["trade_code"], **data}))
            if isinstance(event, (L.ListingClosed, L.LiveRoundStarted)):
                batch.audit.append((actor, f"sale.{type_name}", f"listing:{lid}", _public_json(payload)))

    @staticmethod
    def _public(event) -> tuple[str, dict] | None:
        """The outbox event of a domain event: only what every viewer may see at that moment."""
        if isinstance(event, L.QuoteAccepted):
            return "bid.accepted", {"bidder_number": event.bidder, "price_fen": event.amount, "sequence": event.seq,
                                    "live_round": event.live_round, "at": event.at.isoformat()}
        if isinstance(event, ReserveEntered):
            return "listing.reserve_entered", {"at": event.at.isoformat()}
        if isinstance(event, ReserveApproved):
            return "listing.reserve_approved", {"at": event.at.isoformat()}
        if isinstance(event, L.ListingClosed):
            return "sale.closed", {"bidders": len(event.bidders_with_quotes), "at": event.at.isoformat(),
                                   "confirmation_deadline": event.confirmation_deadline.isoformat()
                                   if event.confirmation_deadline else None}
        if isinstance(event, L.QuotesInvalidated):
            return "sale.bids_invalidated", {"notice_version": event.notice_version, "at": event.at.isoformat()}
        if isinstance(event, L.ContinuationConfirmed):
            return "sale.continuation_confirmed", {"bidder_number": event.bidder, "at": event.at.isoformat()}
        if isinstance(event, L.LiveRoundStarted):
            return "sale.live_round_started", {"participants": list(event.participants),
                                               "minimum_bid_fen": event.minimum_bid,
                                               "deadline": event.deadline.isoformat()}
        return None  # ListingSold / ListingUnsold: published with the result by _decided

    async def _decided(self, sale: Sale, events: list, batch: Batch, repo: TradingRepository) -> None:
        decision = next((e for e in events if isinstance(e, (L.ListingSold, L.ListingUnsold))), None)
        if decision is None:
            return
        lid, row, d = sale.listing_id, sale.row, sale.domain
        regs = await repo.registrations(lid)
        bidders = len({q.bidder for q in d.quotes})
        result = {"reserve_fen": d.reserve_price, "bidders": bidders, "accepted_bids": len(d.quotes),
                  "at": decision.at.isoformat()}
        if isinstance(decision, L.ListingUnsold):
            self.metrics.sales_closed.labels("listing", "unsold", bidders_label(bidders)).inc()
            release_deposits(batch, lid, regs, "unsold")
            if row["resource_id"]:
                ledger_task(batch, f"trading:{lid}:unlist", "transition",
                            {"resource_id": row["resource_id"], "status": "available", "reason": f"unsold {lid}"})
            batch.outbox.append(Event("trading.sale.unsold", "yaosu.trading.sale.unsold", f"listing:{lid}",
                                      {"listing_id": lid, "trade_code": row["trade_code"], "reason": decision.reason,
                                       **result}))
            batch.audit.append(("system/timer", "sale.unsold", f"listing:{lid}", {"reason": decision.reason,
                                                                                  **result}))
        else:
            self.metrics.sales_closed.labels("listing", "sold", bidders_label(bidders)).inc()
            winner = next(reg for reg in regs if reg["bidder_number"] == decision.bidder)
            execute_trade(batch, row, winner, decision.price, trade_id_for(lid, 1), self.metrics)
            batch.outbox.append(Event("trading.sale.awarded", "yaosu.trading.sale.awarded", f"listing:{lid}",
                                      {"listing_id": lid, "trade_code": row["trade_code"],
                                       "winner_bidder_number": decision.bidder, "price_fen": decision.price,
                                       "via": decision.via, **result}))
            batch.audit.append(("system/timer", "sale.awarded", f"listing:{lid}",
                                {"winner_credit_code": winner["credit_code"], "winner_bidder_number": decision.bidder,
                                 "price_fen": decision.price, "via": decision.via, **result}))
        batch.after_commit.append(self.on_tasks)


def increment_announcement(listing_id: str, version: int, change, reason: str, next_minimum_fen: int
                           ) -> tuple[dict, dict]:
    """An increment change (挂牌 or 拍卖) as announced: the change notice row and the public fact."""
    notice = dict(listing_id=listing_id, version=version, reason=reason, changed_fields="increment",
                  bids_invalidated=False, published_at=change.at, increment_fen=change.increment,
                  previous_increment_fen=change.previous)
    facts = {"increment_fen": change.increment, "previous_increment_fen": change.previous,
             "next_minimum_bid_fen": next_minimum_fen, "reason": reason, "version": version,
             "at": change.at.isoformat()}
    return notice, facts


def release_deposits(batch: Batch, listing_id: str, regs: list[dict], why: str, keep: str = "") -> None:
    """Void every held deposit except `keep`'s (the winner's, applied to the price at settlement)."""
    released = [reg["credit_code"] for reg in regs
                if reg["deposit_state"] == "held" and reg["deposit_hold_id"] and reg["credit_code"] != keep]
    for code in released:
        reg = next(x for x in regs if x["credit_code"] == code)
        ledger_task(batch, f"trading:{listing_id}:release:{code}", "void_hold",
                    {"hold_id": reg["deposit_hold_id"], "reason": f"deposit released ({why})"})
    if released:
        batch.registration_updates.append((released, {"deposit_state": "released"}))


def execute_trade(batch: Batch, row: dict, winner: dict, price_fen: int, trade_id: str,
                  metrics: TradingMetrics) -> dict:
    trade = dict(trade_id=trade_id, trade_code=row["trade_code"], listing_id=row["listing_id"],
                 instrument=row["instrument"] or "land_use_right", buyer=winner["credit_code"],
                 seller=row["agency_id"], quantity=row["quantity"], unit=row["unit"], price_fen=price_fen,
                 amount_fen=price_fen,
                 legs=dumps({"resource_id": row["resource_id"], "deposit_hold_id": winner["deposit_hold_id"],
                             "deposit_fen": winner["deposit_fen"]}),
                 settlement_state="executed", settlement_operation_id="", settlement_attempts=0,
                 settlement_error="", next_attempt_at=None, executed_at=batch.now, settled_at=None, confirmed=False)
    batch.trades.append(trade)
    batch.outbox.append(Event("trading.trade.executed", "yaosu.trading.trade.executed", f"trade:{trade_id}",
                              {"trade_id": trade_id, "listing_id": row["listing_id"], "trade_code": row["trade_code"],
                               "price_fen": price_fen, "instrument": trade["instrument"]}))
    metrics.trade("land_use_right" if row["resource_id"] else row["instrument"].split(":")[0],
                  float(row["quantity"] or 0), price_fen, price_fen)
    return trade


def _public_json(payload: str) -> dict:
    return json.loads(payload)


