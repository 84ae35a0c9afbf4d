"""A firm's full result in a run, built when it is read.

A run stores what it decided for every firm (class, total, rank …) and its frozen inputs, not every firm's
full result: at 50,000 firms that would cost more than the evaluation itself. The 一企一单 detail (indicators,
benchmarks, rules fired, measures) is rebuilt from the run's inputs by the domain's `RunDetail`, which gives
exactly what the reference engine gives. The last few runs' details stay in memory; a firm costs its pool's
context once, then well under a millisecond."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from services.common.gc_pause import CollectorPause
from services.common.uow import UnitOfWork
from services.evaluation.application import documents
from services.evaluation.application.policies import Policies
from services.evaluation.domain import Policy
from services.evaluation.domain.detail import RunDetail
from services.evaluation.domain.snapshot import load_inputs

KEPT_RUNS = 2  # a county's detail is ~100 MB in memory; the runs people read are the latest ones


def _rebuild(policy: Policy, inputs: bytes) -> RunDetail:
    records, prior = load_inputs(inputs)
    return RunDetail.of(policy, records, prior)


def _firm_document(detail: RunDetail, credit_code: str, year: int) -> dict[str, Any] | None:
    row = detail.row_of(credit_code, year)
    return None if row is None else documents.to_document(detail.result(row))


class RunDetails:
    def __init__(self, uow: UnitOfWork, repositories: Callable, policies: Policies, gc_pause: CollectorPause,
                 kept: int = KEPT_RUNS) -> None:
        self.gc_pause = gc_pause
        self.uow = uow
        self.repositories = repositories
        self.policies = policies
        self.kept = kept
        self._details: OrderedDict[str, RunDetail] = OrderedDict()
        self._building: dict[str, asyncio.Future] = {}

    def keep(self, run_id: str, detail: RunDetail) -> None:
        """A run just computed: its detail is at hand, so the first reads need no rebuild."""
        self._details[run_id] = detail
        self._details.move_to_end(run_id)
        while len(self._details) > self.kept:
            self._details.popitem(last=False)

    async def document(self, run_id: str, policy_ref: str, credit_code: str, year: int) -> dict[str, Any] | None:
        """The firm's full result document in the run; None when the run holds no such enterprise-year.
        Call outside a transaction: a rebuild reads the run's inputs in its own."""
        detail = await self._detail(run_id, policy_ref)
        return await asyncio.to_thread(_firm_document, detail, credit_code, year)

    async def _detail(self, run_id: str, policy_ref: str) -> RunDetail:
        if (detail := self._details.get(run_id)) is not None:
            self._details.move_to_end(run_id)
            return detail
        if (pending := self._building.get(run_id)) is not None:  # one rebuild, however many readers wait
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._building[run_id] = future
        try:
            async with self.uow.read() as tx:
                inputs = await self.repositories(tx.session).run_inputs(run_id)
            if inputs is None:
                raise LookupError(f"run {run_id} has no frozen inputs")
            policy = (await self.policies.resolve(policy_ref))[1]
            detail = await asyncio.to_thread(self.gc_pause.run, _rebuild, policy, inputs)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a rebuild nobody else awaited must not warn
            raise
        finally:
            del self._building[run_id]
        future.set_result(detail)
        self.keep(run_id, detail)
        return detail
