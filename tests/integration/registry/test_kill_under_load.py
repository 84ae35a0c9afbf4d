"""The registry (a subprocess) is SIGKILLed while 32 clients push transfers and holds at it, each with its
own idempotency key; it restarts on the same database.

- Every acknowledged transfer, hold, post and void is in the ledger exactly once, as it was answered, and a
  retry of its key answers the same operation.
- A request without an answer is either wholly there or not at all: its operation with every posting, its
  idempotency record, its audit entry and its outbox event — or none of them; a retry then replays it or
  applies it afresh, and afterwards it too is there exactly once.
- Each operation's postings balance per instrument; each account's balance and held are the sums of its
  postings, held is what its pending holds keep; Σ balances = issued − retired for every instrument.
- The audit chain verifies, and the outbox drains to NATS after the restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from yaosu.events.v1 import envelope_pb2
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from tests.integration.registry.helpers import (
    ADMIN,
    ISSUER,
    ISSUER_AGENCY,
    REGULATOR,
    TRADING,
    enterprise,
    key,
    new_credit_code,
    q,
    ts,
)
from tests.support.crash import (
    ACKNOWLEDGED,
    REFUSED,
    UNKNOWN,
    Load,
    ServiceProcess,
    crash_under_load,
    database,
    retry,
    rows,
    until,
)
from tests.support.registry import deposit_cny

pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)

CLIENTS = 32
ENTERPRISES = 16
KILL_AFTER = 300          # acknowledged requests seen before the SIGKILL
UNITS = 1_000_000         # issued to every enterprise
CASH_FEN = 100_000_000    # deposited for every enterprise
BALANCED = {"transfer", "hold", "post", "void", "expire"}  # moves within the ledger: Σ Δbalance = 0


@dataclass
class Holder:
    code: str
    rights: str   # account ids
    cash: str


async def _setup(stub, instrument: str) -> list[Holder]:
    await stub.RegisterAgency(pb.RegisterAgencyRequest(idempotency_key=key(), agency=pb.Agency(
        agency_id=ISSUER_AGENCY, name="测试发改委", region_code="330100", roles=[pb.AGENCY_ROLE_ISSUER])),
        metadata=ADMIN)
    await stub.DefineInstrument(pb.DefineInstrumentRequest(idempotency_key=key(), instrument=pb.Instrument(
        code=instrument, kind="energy_use_right", unit="tce", scale=3, vintage=2025, region_code="330100")),
        metadata=ISSUER)

    async def holder() -> Holder:
        code = new_credit_code()
        await stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=key(), enterprise=enterprise(code)),
                                      metadata=ADMIN)
        rights = (await stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=key(), holder=code,
                                                               instrument=instrument), metadata=TRADING)).account
        cash = (await stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=key(), holder=code, instrument="CNY"),
                                       metadata=TRADING)).account
        await stub.Issue(pb.IssueRequest(idempotency_key=key(), issuer_agency_id=ISSUER_AGENCY,
                                         to_account_id=rights.account_id, quantity=q(str(UNITS))), metadata=ISSUER)
        await deposit_cny(stub, cash.account_id, CASH_FEN)
        return Holder(code, rights.account_id, cash.account_id)

    return list(await asyncio.gather(*(holder() for _ in range(ENTERPRISES))))


async def _client(n: int, stub, load: Load, holders: list[Holder]) -> None:
    """Delivery-versus-payment transfers (units one way, fen the other) and, one time in four, a hold that is
    then posted to another holder or voided — every request with a key of its own."""
    rng = random.Random(n)
    deadline = ts(datetime.now(UTC) + timedelta(hours=1))
    while not load.killed:
        seller, buyer = rng.sample(holders, 2)
        idem = key()
        if rng.random() < 0.75:
            request = pb.TransferRequest(idempotency_key=idem, reference=f"load:{idem}", memo="load", legs=[
                pb.TransferLeg(from_account_id=seller.rights, to_account_id=buyer.rights, quantity=q("1.5")),
                pb.TransferLeg(from_account_id=buyer.cash, to_account_id=seller.cash, quantity=q("150"))])
            await load.send("transfer", idem, stub.Transfer, request, TRADING)
            continue
        request = pb.CreateHoldRequest(idempotency_key=idem, account_id=seller.rights, quantity=q("2"),
                                       deadline=deadline, purpose=f"load:{idem}")
        created = await load.send("create_hold", idem, stub.CreateHold, request, TRADING)
        if created.outcome != ACKNOWLEDGED or load.killed:
            continue
        hold_id, idem = created.response.hold.hold_id, key()
        if rng.random() < 0.5:
            request = pb.PostHoldRequest(idempotency_key=idem, hold_id=hold_id, to_account_id=buyer.rights,
                                         quantity=q("1.5"))  # the rest is released
            await load.send("post", idem, stub.PostHold, request, TRADING, hold_id=hold_id)
        else:
            request = pb.VoidHoldRequest(idempotency_key=idem, hold_id=hold_id, reason="load")
            await load.send("void", idem, stub.VoidHold, request, TRADING, hold_id=hold_id)


@dataclass
class Snapshot:
    """The ledger as its database holds it."""

    operations: dict[str, tuple[str, str]]              # id → (type, reference)
    by_reference: dict[tuple[str, str], list[str]]      # (type, reference) → operation ids
    postings: list[tuple]                               # (operation, account, instrument, Δbalance, Δheld)
    audit: Counter                                      # (action, subject) → entries
    outbox: Counter                                     # event subject (the operation) → events
    unpublished: int
    keys: set[str]
    holds: dict[str, tuple]                             # id → (account, amount, posted, released, status, purpose)
    accounts: dict[str, tuple[str, int, int]]           # id → (instrument, balance, held)
    supply: dict[str, int]                              # instrument → issued − retired


async def _snapshot(url: str) -> Snapshot:
    async with database(url) as db:
        operations = {r[0]: (r[1], r[2]) for r in await rows(db, "SELECT operation_id, type, reference "
                                                                  "FROM ledger_operations")}
        postings = [tuple(r) for r in await rows(db, """
            SELECT p.operation_id, p.account_id, a.instrument, p.balance_delta, p.held_delta
            FROM ledger_postings p JOIN accounts a ON a.account_id = p.account_id""")]
        # Entries and events about operations (subject OP-…), not about instruments or accounts.
        audit = Counter((r[0], r[1]) for r in await rows(db, "SELECT action, subject FROM audit_journal "
                                                             "WHERE subject LIKE 'OP-%'"))
        outbox, unpublished = Counter(), 0
        for envelope, published_at in await rows(db, "SELECT envelope, published_at FROM outbox"):
            parsed = envelope_pb2.EventEnvelope.FromString(envelope)
            if parsed.subject.startswith("OP-"):
                outbox[parsed.subject] += 1
            unpublished += published_at is None
        keys = {r[0] for r in await rows(db, "SELECT key FROM idempotency_keys")}
        holds = {r[0]: tuple(r[1:]) for r in await rows(db, "SELECT hold_id, account_id, amount, posted, released, "
                                                            "status, purpose FROM holds")}
        accounts = {r[0]: (r[1], r[2], r[3]) for r in await rows(db, "SELECT account_id, instrument, balance, held "
                                                                     "FROM accounts")}
        supply = {r[0]: r[1] - r[2] for r in await rows(db, "SELECT code, issued, retired FROM instruments")}
    by_reference: dict[tuple[str, str], list[str]] = defaultdict(list)
    for op_id, (type_, reference) in operations.items():
        by_reference[(type_, reference)].append(op_id)
    return Snapshot(operations, by_reference, postings, audit, outbox, unpublished, keys, holds, accounts, supply)


def _ledger_is_whole(s: Snapshot) -> None:
    """No operation without all its parts, no part without its operation, and every total adds up."""
    per_operation: dict[str, list[tuple]] = defaultdict(list)
    for posting in s.postings:
        per_operation[posting[0]].append(posting)
    assert set(per_operation) == set(s.operations), "postings without their operation, or the reverse"
    for op_id, (type_, _) in s.operations.items():
        if type_ in BALANCED:
            moved: Counter = Counter()
            for _, _, instrument, delta, _ in per_operation[op_id]:
                moved[instrument] += delta
            assert not +moved and not -moved, f"{type_} {op_id} does not balance: {dict(moved)}"
        assert s.audit[(f"ledger.{type_}", op_id)] == 1, f"{op_id}: {s.audit[(f'ledger.{type_}', op_id)]} audit entries"
        assert s.outbox[op_id] == 1, f"{op_id}: {s.outbox[op_id]} outbox events"
    assert sum(s.audit.values()) == len(s.operations), "audit entries of ledger operations that are not there"
    assert sum(s.outbox.values()) == len(s.operations), "events of ledger operations that are not there"

    balance, held = Counter(), Counter()
    for _, account, _, delta, held_delta in s.postings:
        balance[account] += delta
        held[account] += held_delta
    kept = Counter()
    for account, amount, posted, released, status, _ in s.holds.values():
        assert 0 <= posted + released <= amount
        if status == "pending":
            kept[account] += amount - posted - released
        else:
            assert posted + released == amount, "a resolved hold still keeps something"
    totals = Counter()
    for account, (instrument, bal, hld) in s.accounts.items():
        assert bal == balance[account], f"{account}: balance {bal} ≠ Σ postings {balance[account]}"
        assert hld == held[account] == kept[account], f"{account}: held {hld}, postings {held[account]}, " \
                                                      f"holds {kept[account]}"
        assert 0 <= hld <= bal
        totals[instrument] += bal
    for instrument, outstanding in s.supply.items():
        assert totals[instrument] == outstanding, f"{instrument}: Σ balances {totals[instrument]} ≠ issued − " \
                                                  f"retired {outstanding}"


def _each_request_whole_or_absent(load: Load, s: Snapshot) -> dict[str, str]:
    """What each request left in the ledger; returns the operation (or hold) id of those that are there."""
    there: dict[str, str] = {}
    holds_by_purpose: dict[str, list[str]] = defaultdict(list)
    for hold_id, (*_, purpose) in s.holds.items():
        holds_by_purpose[purpose].append(hold_id)
    for a in load.attempts:
        if a.kind == "transfer":
            found = s.by_reference.get(("transfer", f"load:{a.key}"), [])
            answered = a.response.operation.operation_id if a.outcome == ACKNOWLEDGED else None
        elif a.kind == "create_hold":
            found = holds_by_purpose.get(f"load:{a.key}", [])
            for hold_id in found:
                assert len(s.by_reference.get(("hold", hold_id), [])) == 1, f"hold {hold_id} without its operation"
            answered = a.response.hold.hold_id if a.outcome == ACKNOWLEDGED else None
        else:
            found = s.by_reference.get((a.kind, a.info["hold_id"]), [])
            status = s.holds[a.info["hold_id"]][4]
            assert (status == "pending") == (not found), f"hold {a.info['hold_id']} is {status}, {a.kind}s: {found}"
            answered = a.response.operation.operation_id if a.outcome == ACKNOWLEDGED else None
        assert len(found) <= 1, f"{a.kind} {a.key} applied {len(found)} times"
        assert (a.key in s.keys) == bool(found), f"{a.kind} {a.key}: operation {found}, idempotency record " \
                                                 f"{a.key in s.keys}"
        if a.outcome == ACKNOWLEDGED:
            assert found == [answered], f"acknowledged {a.kind} {a.key} ({answered}) is not in the ledger: {found}"
        elif a.outcome == REFUSED:
            assert not found, f"refused {a.kind} {a.key} left {found}"
        if found:
            there[a.key] = found[0]
    return there


async def test_sigkill_under_load_keeps_every_acknowledged_operation_exactly_once(database_url, nats_server):
    instrument = f"energy_use_right:330100:k{uuid.uuid4().hex[:6]}"
    registry = ServiceProcess("services.registry", DATABASE_URL=database_url, NATS_URL=nats_server.url,
                              HOLD_SWEEP_SECONDS="0.5")
    channel = grpc.aio.insecure_channel(registry.address)
    stub = registry_pb2_grpc.RegistryServiceStub(channel)

    async def probe():
        return await stub.GetInstrument(pb.GetInstrumentRequest(code="CNY"), metadata=TRADING, timeout=1)
    registry.start()
    try:
        await registry.serving(probe)
        holders = await _setup(stub, instrument)
        load = Load(lambda load: sum(load.acknowledged.values()) >= KILL_AFTER)
        await crash_under_load(registry, load, [_client(n, stub, load, holders) for n in range(CLIENTS)])
        summary = load.summary()
        assert sum(1 for a in load.attempts if a.outcome == UNKNOWN) >= 4, \
            f"the kill came when few requests were in flight: {summary}"
        assert not [a for a in load.attempts if a.outcome == REFUSED], \
            [(a.kind, a.error, a.detail) for a in load.attempts if a.outcome == REFUSED][:5]

        registry.start()  # the same database, the same port
        await registry.serving(probe)
        before = await _snapshot(database_url)
        _ledger_is_whole(before)
        there = _each_request_whole_or_absent(load, before)

        # Every client retries what it sent with the same key: the ones that are there answer as before, the
        # others are applied now.
        answers = await asyncio.gather(*(retry(a) for a in load.attempts))
        for a, again in zip(load.attempts, answers, strict=True):
            got = again.hold.hold_id if a.kind == "create_hold" else again.operation.operation_id
            if a.key in there:
                assert got == there[a.key], f"retry of {a.kind} {a.key} answered {got}, not {there[a.key]}"
        after = await _snapshot(database_url)
        _ledger_is_whole(after)
        final = _each_request_whole_or_absent(load, after)
        assert set(final) == {a.key for a in load.attempts}, "a retried request is still not in the ledger"
        assert final.items() >= there.items()

        verified = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=REGULATOR)
        assert verified.intact, verified.problem
        assert verified.entries_checked >= len(after.operations)
        # The instrument as the registry reports it agrees with the sum of its accounts.
        reported = (await stub.GetInstrument(pb.GetInstrumentRequest(code=instrument), metadata=TRADING)).instrument
        assert Decimal(reported.outstanding.value) * 1000 == after.supply[instrument] == ENTERPRISES * UNITS * 1000
        assert after.supply["CNY"] == ENTERPRISES * CASH_FEN

        async def drained() -> bool:  # what was committed before the kill reaches NATS after the restart
            return (await _snapshot(database_url)).unpublished == 0
        await until(drained, timeout=30)
        log.info("%s", json.dumps({"attempts": summary, "operations": len(after.operations),
                                     "unknown_there_before_retry": sum(1 for a in load.attempts
                                                                       if a.outcome == UNKNOWN and a.key in there)}))
    finally:
        await channel.close()
        registry.stop()
