"""The settlement worker: performs the ledger tasks the service owes the registry, exactly once.

Each task's id is the registry idempotency key of its call, so a retry after a timeout, a registry outage
or our own crash returns the first result instead of moving money twice. While the registry is
unavailable the task backs off exponentially and its trade stays `settling`; a refusal (e.g. funds
missing) is retried a few times, then the trade is `failed` with the registry's reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from services.common.events.envelope import Event
from services.common.uow import UnitOfWork
from services.trading.adapters.db import repository as r
from services.trading.adapters.db.repository import TradingRepository
from services.trading.application.ports import LedgerLeg, RegistryPort, RegistryRefused, RegistryUnavailable
from services.trading.application.rules import release_deposits
from services.trading.application.writer import Batch
from services.trading.metrics import TradingMetrics

log = logging.getLogger(__name__)
MAX_REFUSALS = 5


class Settlement:
    def __init__(self, uow: UnitOfWork, registry: RegistryPort, metrics: TradingMetrics,
                 clock: Callable[[], datetime], *, max_backoff_seconds: float = 30.0) -> None:
        self.uow, self.registry, self.metrics, self.clock = uow, registry, metrics, clock
        self.max_backoff = max_backoff_seconds
        self.wakeup = asyncio.Event()

    def notify(self) -> None:
        self.wakeup.set()

    async def run_due(self) -> int:
        async with self.uow.read() as tx:
            due = await TradingRepository(tx.session).due_tasks(self.clock())
        for task in due:
            await self._perform(task)
        return len(due)

    async def _perform(self, task: dict) -> None:
        payload = json.loads(task["payload"])
        try:
            operation = await getattr(self, f"_{task['kind']}")(task, payload)
        except RegistryUnavailable as exc:
            await self._retry(task, str(exc), "registry_unavailable", give_up=False)
            return
        except RegistryRefused as exc:
            await self._retry(task, f"{exc.code}: {exc.message}", exc.code.lower(),
                              give_up=task["attempts"] + 1 >= MAX_REFUSALS)
            return
        await self._done(task, operation or "")

    async def _retry(self, task: dict, error: str, reason: str, *, give_up: bool) -> None:
        self.metrics.settlement_failures.labels(reason).inc()
        attempts = task["attempts"] + 1
        delay = min(self.max_backoff, 0.25 * 2 ** attempts)
        async with self.uow() as tx:
            repo = TradingRepository(tx.session)
            await repo.update_task(task["task_id"], attempts=attempts, error=error[:500],
                                   state="failed" if give_up else "pending",
                                   next_attempt_at=self.clock() + timedelta(seconds=delay))
            if task["trade_id"]:
                await repo.update_trade(task["trade_id"], settlement_attempts=attempts, settlement_error=error[:500],
                                        **({"settlement_state": "failed"} if give_up else {}))
                if give_up:
                    await tx.emit(Event("trading.trade.failed", "yaosu.trading.trade.failed",
                                        f"trade:{task['trade_id']}", {"trade_id": task["trade_id"], "error": error}))
                    await tx.audit("trade.settlement_failed", f"trade:{task['trade_id']}", {"error": error})
            await tx.commit()
        log.warning("ledger task retry", extra={"task_id": task["task_id"], "attempts": attempts, "reason": reason})

    async def _done(self, task: dict, operation_id: str) -> None:
        now = self.clock()
        async with self.uow() as tx:
            repo = TradingRepository(tx.session)
            await repo.update_task(task["task_id"], state="done", done_at=now, attempts=task["attempts"] + 1,
                                   error="")
            await tx.audit(f"ledger.{task['kind']}", f"task:{task['task_id']}", {"operation_id": operation_id})
            if task["kind"] == "settle":
                trade = await repo.trade(task["trade_id"])
                await repo.update_trade(trade["trade_id"], settlement_state="settled", settled_at=now,
                                        settlement_operation_id=operation_id,
                                        settlement_attempts=task["attempts"] + 1, settlement_error="")
                regs = await repo.registrations(trade["listing_id"])
                await repo.update_registrations(trade["listing_id"], [trade["buyer"]], deposit_state="applied")
                batch = Batch(now)
                release_deposits(batch, trade["listing_id"], regs, "sale settled", keep=trade["buyer"])
                await repo.insert_many(r.tasks, batch.tasks)
                for codes, values in batch.registration_updates:
                    await repo.update_registrations(trade["listing_id"], codes, **values)
                await repo.update_listing(trade["listing_id"], state="settled")
                await tx.emit(Event("trading.trade.settled", "yaosu.trading.trade.settled",
                                    f"trade:{trade['trade_id']}",
                                    {"trade_id": trade["trade_id"], "listing_id": trade["listing_id"],
                                     "operation_id": operation_id, "settled_at": now.isoformat()}))
                await tx.audit("trade.settled", f"trade:{trade['trade_id']}", {"operation_id": operation_id})
                self.metrics.settlement_seconds.observe(max(0.0, (now - trade["executed_at"]).total_seconds()))
            elif task["kind"] == "settle_book":
                await self._book_settled(tx, repo, task, operation_id, now)
            await tx.commit()
        if task["kind"] == "settle":
            self.notify()

    # ------------------------------------------------------------ the registry calls
    async def _settle(self, task: dict, payload: dict) -> str:
        async with self.uow.read() as tx:
            trade = await TradingRepository(tx.session).trade(task["trade_id"])
        plan = json.loads(trade["legs"])
        buyer = await self.registry.account(trade["buyer"], "CNY", open_if_missing=False)
        seller = await self.registry.account(trade["seller"], "CNY", open_if_missing=True)
        amount, deposit = trade["amount_fen"], int(plan.get("deposit_fen") or 0)
        legs = []
        if plan.get("deposit_hold_id") and deposit:
            # The deposit is applied to the price: its hold pays this leg (posted once, remainder released).
            legs.append(LedgerLeg(buyer, seller, str(min(deposit, amount)), plan["deposit_hold_id"]))
        if amount > deposit or not legs:
            legs.append(LedgerLeg(buyer, seller, str(amount - (deposit if legs else 0))))
        operation = await self.registry.transfer(task["task_id"], legs, f"settlement {trade['trade_code']}",
                                                 trade["trade_id"])
        if plan.get("resource_id"):
            await self.registry.transition_resource(f"{task['task_id']}:allocate", plan["resource_id"], "allocated",
                                                    f"awarded {trade['trade_code']}", trade["buyer"])
        return operation

    async def _settle_book(self, task: dict, payload: dict) -> str:
        """A book or block trade, delivery versus payment: units seller → buyer and fen buyer → seller in one
        linked registry transfer keyed by the task (the trade id), so it happens once or not at all. Each leg
        is one part of its order's hold (held at entry), so nothing spent elsewhere since can fail it."""
        async with self.uow.read() as tx:
            trade = await TradingRepository(tx.session).trade(task["trade_id"])
        plan = json.loads(trade["legs"])
        instrument = trade["instrument"]
        legs = [LedgerLeg(await self.registry.account(trade["seller"], instrument, open_if_missing=False),
                          await self.registry.account(trade["buyer"], instrument, open_if_missing=True),
                          trade["quantity"], plan.get("sell_hold", "")),
                LedgerLeg(await self.registry.account(trade["buyer"], "CNY", open_if_missing=False),
                          await self.registry.account(trade["seller"], "CNY", open_if_missing=True),
                          str(trade["amount_fen"]), plan.get("buy_hold", ""))]
        return await self.registry.transfer(task["task_id"], legs, f"DvP {trade['trade_code']}", trade["trade_id"])

    async def _release_hold(self, task: dict, payload: dict) -> str:
        """Give back the part of an order's hold the order no longer needs (keyed by the task)."""
        await self.registry.release_hold(task["task_id"], payload["hold_id"], payload["quantity"], payload["reason"])
        return ""

    async def _book_settled(self, tx, repo: TradingRepository, task: dict, operation_id: str, now: datetime) -> None:
        trade = await repo.trade(task["trade_id"])
        await repo.update_trade(trade["trade_id"], settlement_state="settled", settled_at=now,
                                settlement_operation_id=operation_id, settlement_attempts=task["attempts"] + 1,
                                settlement_error="")
        await tx.emit(Event("trading.market.trade_settled", "yaosu.trading.market.trade_settled",
                            f"trade:{trade['trade_id']}", {"trade_id": trade["trade_id"],
                                                           "instrument": trade["instrument"],
                                                           "operation_id": operation_id,
                                                           "settled_at": now.isoformat()}))
        await tx.audit("trade.settled", f"trade:{trade['trade_id']}", {"operation_id": operation_id})
        self.metrics.settlement_seconds.observe(max(0.0, (now - trade["executed_at"]).total_seconds()))

    async def _void_hold(self, task: dict, payload: dict) -> str:
        await self.registry.void_hold(task["task_id"], payload["hold_id"], payload["reason"])
        return ""

    async def _forfeit(self, task: dict, payload: dict) -> str:
        to = await self.registry.account(payload["to"], "CNY", open_if_missing=True)
        return await self.registry.post_hold(task["task_id"], payload["hold_id"], to)

    async def _transition(self, task: dict, payload: dict) -> str:
        await self.registry.transition_resource(task["task_id"], payload["resource_id"], payload["status"],
                                                payload["reason"], payload.get("holder", ""))
        return ""


class SettlementLoop:
    """Runs the worker on every notification (a commit that queued tasks) or at least every interval."""

    def __init__(self, settlement: Settlement, interval: float) -> None:
        self.settlement, self.interval = settlement, interval
        self.task: asyncio.Task | None = None
        self.stopping = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="settlement")

    async def stop(self) -> None:
        self.stopping.set()
        self.settlement.wakeup.set()
        if self.task:
            await self.task

    async def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.settlement.run_due()
            except Exception:  # noqa: BLE001 - the next round retries
                log.exception("settlement round failed")
            try:
                await asyncio.wait_for(self.settlement.wakeup.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self.settlement.wakeup.clear()
