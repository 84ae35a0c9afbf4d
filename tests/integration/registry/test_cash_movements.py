"""Settlement money over gRPC: CNY enters and leaves only by the bank's deposits and withdrawals, each
requested by one principal and decided by another, and the ledger still sums to issued − retired."""

from __future__ import annotations

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from tests.integration.registry.helpers import (
    ADMIN,
    REGULATOR,
    TRADING,
    funded_accounts,
    in_seconds,
    key,
    money_account,
    q,
    register_enterprise,
)
from tests.support.grpc_errors import field_violations, reason
from tests.support.registry import deposit_cny
from tests.support.services import BANK_APPROVER_KEY, BANK_TELLER_KEY, ISSUER_KEY, bearer, on_behalf

TELLER, APPROVER = bearer(BANK_TELLER_KEY), bearer(BANK_APPROVER_KEY)
OTHER_BANK = on_behalf("agency:BANK-OTHER", "settlement")


def request(account_id: str, fen: int, kind=pb.CASH_MOVEMENT_KIND_DEPOSIT, reference: str = "",
            idempotency_key: str = "") -> pb.RequestCashMovementRequest:
    return pb.RequestCashMovementRequest(idempotency_key=idempotency_key or key(), kind=kind, account_id=account_id,
                                         amount=common_pb2.Money(fen=fen, currency="CNY"),
                                         bank_reference=reference or f"BK-{key()[:12]}")


async def balance(registry, account_id: str) -> tuple[str, str]:
    got = (await registry.stub.GetAccount(pb.GetAccountRequest(account_id=account_id), metadata=REGULATOR)).account
    return got.balance.value, got.available.value


async def money_supply(registry) -> tuple[str, str, str]:
    cny = (await registry.stub.GetInstrument(pb.GetInstrumentRequest(code="CNY"), metadata=REGULATOR)).instrument
    return cny.issued.value, cny.retired.value, cny.outstanding.value


async def refused(call, message, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(message, metadata=metadata)
    return caught.value


async def test_a_deposit_needs_a_second_principal(registry) -> None:
    cny = await money_account(registry.stub, await register_enterprise(registry.stub))
    asked = (await registry.stub.RequestCashMovement(request(cny.account_id, 5_000_00), metadata=TELLER)).movement
    assert (asked.state, asked.requested_by, asked.amount.fen) == (pb.CASH_MOVEMENT_STATE_PENDING, "bank:teller",
                                                                   500000)
    assert await balance(registry, cny.account_id) == ("0", "0")  # nothing moves before approval

    # The requester approving its own request, or a principal of another bank: refused, nothing changes.
    error = await refused(registry.stub.ApproveCashMovement, pb.ApproveCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id), TELLER)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "TWO_PERSON_RULE"
    error = await refused(registry.stub.ApproveCashMovement, pb.ApproveCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id), OTHER_BANK)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await balance(registry, cny.account_id) == ("0", "0")
    assert await money_supply(registry) == ("0", "0", "0")
    still = (await registry.stub.GetCashMovement(pb.GetCashMovementRequest(movement_id=asked.movement_id),
                                                 metadata=REGULATOR)).movement
    assert still.state == pb.CASH_MOVEMENT_STATE_PENDING

    approve = pb.ApproveCashMovementRequest(idempotency_key=key(), movement_id=asked.movement_id)
    done = (await registry.stub.ApproveCashMovement(approve, metadata=APPROVER)).movement
    assert (done.state, done.decided_by) == (pb.CASH_MOVEMENT_STATE_EXECUTED, "bank:approver") and done.operation_id
    assert (await registry.stub.ApproveCashMovement(approve, metadata=APPROVER)).movement == done  # a retry replays
    error = await refused(registry.stub.ApproveCashMovement, pb.ApproveCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id), APPROVER)
    assert reason(error) == "MOVEMENT_DECIDED"
    assert await balance(registry, cny.account_id) == ("500000", "500000")
    assert await money_supply(registry) == ("500000", "0", "500000")

    # The holder sees the deposit in its own history; the record names both principals.
    history = (await registry.stub.GetAccountHistory(pb.GetAccountHistoryRequest(account_id=cny.account_id),
                                                     metadata=on_behalf(f"enterprise:{cny.holder}"))).operations
    assert [(o.type, o.reference, o.actor) for o in history] == [("deposit", asked.movement_id, "bank:approver")]
    actors = {e.actor for e in (await registry.stub.ListAuditEntries(pb.ListAuditEntriesRequest(
        subject=asked.movement_id), metadata=REGULATOR)).entries}
    assert actors == {"bank:teller", "bank:approver"}


async def test_a_rejected_movement_changes_nothing(registry) -> None:
    cny = await money_account(registry.stub, await register_enterprise(registry.stub))
    asked = (await registry.stub.RequestCashMovement(request(cny.account_id, 100, reference="BK-R1"),
                                                     metadata=TELLER)).movement
    error = await refused(registry.stub.RejectCashMovement, pb.RejectCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id, reason="not received"), TELLER)
    assert reason(error) == "TWO_PERSON_RULE"
    rejected = (await registry.stub.RejectCashMovement(pb.RejectCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id, reason="not received"), metadata=APPROVER)).movement
    assert (rejected.state, rejected.reason) == (pb.CASH_MOVEMENT_STATE_REJECTED, "not received")
    error = await refused(registry.stub.ApproveCashMovement, pb.ApproveCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id), APPROVER)
    assert reason(error) == "MOVEMENT_DECIDED"
    assert await balance(registry, cny.account_id) == ("0", "0")
    # The same bank transfer may be requested again once rejected, but never twice while live.
    again = (await registry.stub.RequestCashMovement(request(cny.account_id, 100, reference="BK-R1"),
                                                     metadata=TELLER)).movement
    error = await refused(registry.stub.RequestCashMovement, request(cny.account_id, 100, reference="BK-R1"),
                          TELLER)
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS and again.movement_id in error.details()


async def test_a_withdrawal_takes_only_the_available_balance(registry) -> None:
    holder = await register_enterprise(registry.stub)
    cny = await money_account(registry.stub, holder, 10_000)
    await registry.stub.CreateHold(pb.CreateHoldRequest(idempotency_key=key(), account_id=cny.account_id,
                                                        quantity=q("4000"), deadline=in_seconds(3600)),
                                   metadata=TRADING)
    withdraw = pb.CASH_MOVEMENT_KIND_WITHDRAWAL
    error = await refused(registry.stub.RequestCashMovement, request(cny.account_id, 6_001, withdraw), TELLER)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(error) == "INSUFFICIENT_FUNDS"
    # Requested within what is available, but the money was spent before the approval: refused then too.
    asked = (await registry.stub.RequestCashMovement(request(cny.account_id, 6_000, withdraw),
                                                     metadata=TELLER)).movement
    other = await money_account(registry.stub, await register_enterprise(registry.stub))
    await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
        from_account_id=cny.account_id, to_account_id=other.account_id, quantity=q("1"))]), metadata=TRADING)
    error = await refused(registry.stub.ApproveCashMovement, pb.ApproveCashMovementRequest(
        idempotency_key=key(), movement_id=asked.movement_id), APPROVER)
    assert reason(error) == "INSUFFICIENT_FUNDS"
    assert await balance(registry, cny.account_id) == ("9999", "5999")
    smaller = (await registry.stub.RequestCashMovement(request(cny.account_id, 5_999, withdraw),
                                                       metadata=TELLER)).movement
    await registry.stub.ApproveCashMovement(pb.ApproveCashMovementRequest(
        idempotency_key=key(), movement_id=smaller.movement_id), metadata=APPROVER)
    assert await balance(registry, cny.account_id) == ("4000", "0")
    assert await money_supply(registry) == ("10000", "5999", "4001")


async def test_balances_sum_to_issued_minus_retired(registry) -> None:
    accounts = [await money_account(registry.stub, await register_enterprise(registry.stub)) for _ in range(3)]
    for n, account in enumerate(accounts):
        await deposit_cny(registry.stub, account.account_id, 1_000_000 * (n + 1))
    for account, fen in zip(accounts, (250_000, 1, 3_000_000), strict=True):
        asked = (await registry.stub.RequestCashMovement(request(account.account_id, fen,
                                                                 pb.CASH_MOVEMENT_KIND_WITHDRAWAL),
                                                         metadata=TELLER)).movement
        await registry.stub.ApproveCashMovement(pb.ApproveCashMovementRequest(
            idempotency_key=key(), movement_id=asked.movement_id), metadata=APPROVER)
    await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
        from_account_id=accounts[1].account_id, to_account_id=accounts[0].account_id, quantity=q("777"))]),
        metadata=TRADING)
    listed = (await registry.stub.ListAccounts(pb.ListAccountsRequest(instrument="CNY"), metadata=REGULATOR)).accounts
    issued, retired, outstanding = await money_supply(registry)
    assert (issued, retired) == ("6000000", "3250001")
    assert sum(int(a.balance.value) for a in listed) == int(issued) - int(retired) == int(outstanding)
    movements = await registry.stub.ListCashMovements(pb.ListCashMovementsRequest(
        state=pb.CASH_MOVEMENT_STATE_EXECUTED), metadata=TELLER)
    assert movements.page.total_size == 6
    assert (await registry.stub.ListCashMovements(pb.ListCashMovementsRequest(), metadata=OTHER_BANK)).movements \
        == []


async def test_bad_movements_are_refused_precisely(registry) -> None:
    holder = await register_enterprise(registry.stub)
    cny = await money_account(registry.stub, holder)
    (right,) = await funded_accounts(registry.stub, "energy_use_right:330100:2025", ["5"], "tce", 3)
    error = await refused(registry.stub.RequestCashMovement, pb.RequestCashMovementRequest(
        idempotency_key=key(), account_id=cny.account_id, amount=common_pb2.Money(fen=-5, currency="USD")), TELLER)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"kind", "amount.fen", "amount.currency", "bank_reference"} <= set(field_violations(error))
    error = await refused(registry.stub.RequestCashMovement, request(right.account_id, 100), TELLER)
    assert reason(error) == "NOT_A_MONEY_ACCOUNT"
    error = await refused(registry.stub.RequestCashMovement, request("A-NONE", 100), TELLER)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Money leaves only by withdrawal: its holder cannot retire it.
    await deposit_cny(registry.stub, cny.account_id, 100)
    error = await refused(registry.stub.Retire, pb.RetireRequest(idempotency_key=key(), account_id=cny.account_id,
                                                                 quantity=q("1")), on_behalf(f"enterprise:{holder}"))
    assert reason(error) == "MONEY_NOT_RETIRED"
    # Only the settlement bank moves money: not an issuer, an administrator, the trading service or the holder.
    for metadata in (bearer(ISSUER_KEY), ADMIN, TRADING, on_behalf(f"enterprise:{holder}"), REGULATOR):
        error = await refused(registry.stub.RequestCashMovement, request(cny.account_id, 100), metadata)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await balance(registry, cny.account_id) == ("100", "100")


async def test_money_supply_stays_within_a_64_bit_amount(registry) -> None:
    full, more = [await money_account(registry.stub, await register_enterprise(registry.stub)) for _ in range(2)]
    await deposit_cny(registry.stub, full.account_id, 2**63 - 1)
    error = await refused(registry.stub.RequestCashMovement, request(more.account_id, 1), TELLER)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "amount.fen" in field_violations(error)
    assert await money_supply(registry) == (str(2**63 - 1), "0", str(2**63 - 1))
