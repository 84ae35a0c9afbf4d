"""Settlement of uniform-price allocations: delivery versus payment in ONE registry transfer — the units
from the issuing agency's reserve account to the winner, the CNY from the winner to the agency paid out of
the winner's guarantee hold (the registry posts the hold once and releases the remainder). The task id is
the registry idempotency key, so retries never deliver or pay twice. Other task kinds are phase 1's."""

from __future__ import annotations

import json

from services.common.events.envelope import Event
from services.trading.adapters.db.repository import TradingRepository
from services.trading.application.ports import LedgerLeg
from services.trading.application.settlement import Settlement


class AuctionSettlement(Settlement):
    async def _settle_dvp(self, task: dict, payload: dict) -> str:
        async with self.uow.read() as tx:
            trade = await TradingRepository(tx.session).trade(task["trade_id"])
        plan = json.loads(trade["legs"])
        instrument = plan["instrument"]
        reserve = await self.registry.account(trade["seller"], instrument, open_if_missing=False)
        delivery = await self.registry.account(trade["buyer"], instrument, open_if_missing=True)
        payer = await self.registry.account(trade["buyer"], "CNY", open_if_missing=False)
        payee = await self.registry.account(trade["seller"], "CNY", open_if_missing=True)
        legs = [LedgerLeg(reserve, delivery, plan["units"]),
                LedgerLeg(payer, payee, str(trade["amount_fen"]), plan.get("deposit_hold_id", ""))]
        return await self.registry.transfer(task["task_id"], legs, f"allocation {trade['trade_code']}",
                                            trade["trade_id"])

    async def _done(self, task: dict, operation_id: str) -> None:
        if task["kind"] != "settle_dvp":
            return await super()._done(task, operation_id)
        now = self.clock()
        async with self.uow() as tx:
            repo = TradingRepository(tx.session)
            await repo.update_task(task["task_id"], state="done", done_at=now, attempts=task["attempts"] + 1,
                                   error="")
            trade = await repo.trade(task["trade_id"])
            await repo.update_trade(trade["trade_id"], settlement_state="settled", settled_at=now,
                                    settlement_operation_id=operation_id, settlement_attempts=task["attempts"] + 1,
                                    settlement_error="")
            await repo.update_registrations(trade["listing_id"], [trade["buyer"]], deposit_state="applied")
            others, _ = await repo.trades(listing_id=trade["listing_id"], limit=10_000)
            if all(t["settlement_state"] == "settled" for t in others if t["trade_id"] != trade["trade_id"]):
                await repo.update_listing(trade["listing_id"], state="settled")
            await tx.emit(Event("trading.trade.settled", "yaosu.trading.trade.settled", f"trade:{trade['trade_id']}",
                                {"trade_id": trade["trade_id"], "listing_id": trade["listing_id"],
                                 "operation_id": operation_id, "settled_at": now.isoformat()}))
            await tx.audit("trade.settled", f"trade:{trade['trade_id']}", {"operation_id": operation_id,
                                                                           "kind": "dvp"})
            self.metrics.settlement_seconds.observe(max(0.0, (now - trade["executed_at"]).total_seconds()))
            await tx.commit()
        return None
