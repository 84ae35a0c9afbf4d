"""Who may do what in the registry, over the real wire: the findings of issue 10 as regression tests.

Each refusal is checked to have changed nothing (balances, supply)."""

from __future__ import annotations

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from services.common.authz import Policy
from services.registry.app import POLICY
from tests.integration.registry.helpers import (
    ADMIN,
    ISSUER,
    ISSUER_AGENCY,
    REGULATOR,
    TRADING,
    define_instrument,
    enterprise,
    funded_accounts,
    in_seconds,
    key,
    money_account,
    open_account,
    q,
    register_enterprise,
    setup_agency,
)
from tests.support.grpc_errors import field_violations, reason
from tests.support.services import BANK_TELLER_KEY, EVALUATION_KEY, SERVICE_KEY, bearer, on_behalf

ENERGY = "energy_use_right:330100:2025"


async def account(registry, account_id: str) -> pb.Account:
    return (await registry.stub.GetAccount(pb.GetAccountRequest(account_id=account_id), metadata=REGULATOR)).account


async def instrument(registry, code: str) -> pb.Instrument:
    return (await registry.stub.GetInstrument(pb.GetInstrumentRequest(code=code), metadata=REGULATOR)).instrument


async def refused(call, request, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request, metadata=metadata)
    return caught.value


def test_every_rpc_of_the_service_is_in_the_policy() -> None:
    rpcs = set(pb.DESCRIPTOR.services_by_name["RegistryService"].methods_by_name)
    declared = {op for op in Policy.load(POLICY).operations if "." not in op}
    assert rpcs == declared


async def test_an_agency_key_cannot_issue_money(registry) -> None:
    holder = await register_enterprise(registry.stub)
    cny = await money_account(registry.stub, holder)
    await define_instrument(registry.stub, ENERGY, "tce", 3)  # the test issuer is a real issuer of something
    before = await instrument(registry, "CNY")
    error = await refused(registry.stub.Issue, pb.IssueRequest(
        idempotency_key=key(), issuer_agency_id=ISSUER_AGENCY, to_account_id=cny.account_id,
        quantity=q("1", "fen")), ISSUER)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "MONEY_NOT_ISSUED" and "never issued" in error.details()
    assert (await account(registry, cny.account_id)).balance.value == "0"
    assert await instrument(registry, "CNY") == before


async def test_only_the_instruments_issuer_issues_it(registry) -> None:
    (target,) = await funded_accounts(registry.stub, ENERGY, ["0"], "tce", 3)
    assert (await instrument(registry, ENERGY)).issuer_agency_id == ISSUER_AGENCY
    await setup_agency(registry.stub, ADMIN, "AG-OTHER")
    other = on_behalf("agency:AG-OTHER", "issuer")
    water = "water_right:330100:2025"
    await define_instrument(registry.stub, water, "m3", 0, "water_right", auth=other)
    water_account = await open_account(registry.stub, target.holder, water)

    def issue(to: str, issuer: str) -> pb.IssueRequest:
        return pb.IssueRequest(idempotency_key=key(), issuer_agency_id=issuer, to_account_id=to, quantity=q("5"))

    # Another issuer's instrument, whichever issuer the request names; an issuer naming somebody else; an
    # administrator, who does no business acts.
    for request, metadata in ((issue(water_account.account_id, ISSUER_AGENCY), ISSUER),
                              (issue(water_account.account_id, "AG-OTHER"), ISSUER),
                              (issue(target.account_id, "AG-OTHER"), other),
                              (issue(target.account_id, "AG-OTHER"), ISSUER),
                              (issue(target.account_id, ISSUER_AGENCY), ADMIN)):
        assert (await refused(registry.stub.Issue, request, metadata)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await account(registry, target.account_id)).balance.value == "0.000"
    assert (await account(registry, water_account.account_id)).balance.value == "0"
    done = await registry.stub.Issue(issue(water_account.account_id, "AG-OTHER"), metadata=other)
    assert done.operation.reference == "issuer:AG-OTHER"
    # An agency defines only instruments it issues itself.
    error = await refused(registry.stub.DefineInstrument, pb.DefineInstrumentRequest(
        idempotency_key=key(), instrument=pb.Instrument(code="water_right:330100:2026", kind="water_right",
                                                        unit="m3", scale=0, issuer_agency_id="AG-OTHER")), ISSUER)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_empty_idempotency_key_is_refused(registry) -> None:
    source, target = await funded_accounts(registry.stub, ENERGY, ["10", "0"], "tce", 3)
    holder = await register_enterprise(registry.stub)
    cny = await money_account(registry.stub, holder)
    land = on_behalf("agency:AG-LAND", "grantor")
    bank = bearer(BANK_TELLER_KEY)
    # Every mutating RPC, each called by a subject that may call it, with everything but the key.
    calls = {
        "RegisterEnterprise": (pb.RegisterEnterpriseRequest(enterprise=enterprise()), ADMIN),
        "SetEnterpriseStatus": (pb.SetEnterpriseStatusRequest(credit_code=holder,
                                                              status=pb.SUBJECT_STATUS_SUSPENDED), ADMIN),
        "RegisterAgency": (pb.RegisterAgencyRequest(agency=pb.Agency(
            agency_id="AG-NEW", name="新局", region_code="330100", roles=[pb.AGENCY_ROLE_GRANTOR])), ADMIN),
        "DefineResourceKind": (pb.DefineResourceKindRequest(kind=pb.ResourceKind(
            code="mining_right", name="采矿权", unit="t")), ADMIN),
        "RegisterResource": (pb.RegisterResourceRequest(resource=pb.Resource(
            kind="water_right", name="水权", region_code="330100", quantity=q("1", "m3"),
            allocation_mode=pb.ALLOCATION_MODE_MARKET, controller_agency_id="AG-LAND")), land),
        "TransitionResource": (pb.TransitionResourceRequest(resource_id="R-1",
                                                            to_status=pb.RESOURCE_STATUS_AVAILABLE), TRADING),
        "DefineInstrument": (pb.DefineInstrumentRequest(instrument=pb.Instrument(
            code="water_right:330100:2025", kind="water_right", unit="m3", scale=0)), ISSUER),
        "OpenAccount": (pb.OpenAccountRequest(holder=holder, instrument=ENERGY), TRADING),
        "Issue": (pb.IssueRequest(issuer_agency_id=ISSUER_AGENCY, to_account_id=target.account_id,
                                  quantity=q("1")), ISSUER),
        "Transfer": (pb.TransferRequest(legs=[pb.TransferLeg(
            from_account_id=source.account_id, to_account_id=target.account_id, quantity=q("1"))]), TRADING),
        "CreateHold": (pb.CreateHoldRequest(account_id=source.account_id, quantity=q("1"),
                                            deadline=in_seconds(60)), TRADING),
        "PostHold": (pb.PostHoldRequest(hold_id="H-1", to_account_id=target.account_id), TRADING),
        "VoidHold": (pb.VoidHoldRequest(hold_id="H-1"), TRADING),
        "IncreaseHold": (pb.IncreaseHoldRequest(hold_id="H-1", quantity=q("1")), TRADING),
        "Retire": (pb.RetireRequest(account_id=source.account_id, quantity=q("1")),
                   on_behalf(f"enterprise:{source.holder}")),
        "RequestCashMovement": (pb.RequestCashMovementRequest(
            kind=pb.CASH_MOVEMENT_KIND_DEPOSIT, account_id=cny.account_id,
            amount=common_pb2.Money(fen=100, currency="CNY"), bank_reference="B-1"), bank),
        "ApproveCashMovement": (pb.ApproveCashMovementRequest(movement_id="CM-1"), bank),
        "RejectCashMovement": (pb.RejectCashMovementRequest(movement_id="CM-1"), bank),
    }
    service = pb.DESCRIPTOR.services_by_name["RegistryService"]
    assert set(calls) == {m.name for m in service.methods if "idempotency_key" in m.input_type.fields_by_name}
    for name, (request, metadata) in calls.items():
        error = await refused(getattr(registry.stub, name), request, metadata)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert "idempotency_key" in field_violations(error), name
    assert [(await account(registry, a.account_id)).balance.value for a in (source, target)] == ["10.000", "0.000"]
    assert (await registry.stub.ListAccounts(pb.ListAccountsRequest(holder=holder), metadata=REGULATOR)).accounts \
        == [await account(registry, cny.account_id)]
    assert (await registry.stub.GetEnterprise(pb.GetEnterpriseRequest(credit_code=holder), metadata=ADMIN)
            ).enterprise.status == pb.SUBJECT_STATUS_ACTIVE


@pytest.mark.parametrize(("value", "problem"), [
    ("1" * 401, "too long"), ("9" * 19, "too large"), ("NaN", "finite"), ("Infinity", "finite"),
    ("-5", "greater than zero"), ("0", "greater than zero"), ("1.0001", "decimal places"), ("1_000", "decimal"),
    ("1e99", "too large")])
async def test_bad_numbers_are_invalid_arguments_naming_the_field(registry, value, problem) -> None:
    (target,) = await funded_accounts(registry.stub, ENERGY, ["0"], "tce", 3)
    error = await refused(registry.stub.Issue, pb.IssueRequest(
        idempotency_key=key(), issuer_agency_id=ISSUER_AGENCY, to_account_id=target.account_id, quantity=q(value)),
        ISSUER)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in field_violations(error)["quantity.value"]
    assert (await instrument(registry, ENERGY)).issued.value == "0.000"


async def test_issued_supply_cannot_outgrow_a_64_bit_amount(registry) -> None:
    (target,) = await funded_accounts(registry.stub, ENERGY, ["9223372036854775.807"], "tce", 3)
    error = await refused(registry.stub.Issue, pb.IssueRequest(
        idempotency_key=key(), issuer_agency_id=ISSUER_AGENCY, to_account_id=target.account_id,
        quantity=q("0.001")), ISSUER)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "quantity.value" in field_violations(error)
    assert (await account(registry, target.account_id)).balance.value == "9223372036854775.807"


async def test_catalogue_and_enterprise_numbers_are_checked(registry) -> None:
    await setup_agency(registry.stub, ADMIN, "AG-LAND", (pb.AGENCY_ROLE_GRANTOR,))
    for value in ("1" * 401, "NaN", "Infinity", "1.0000001", "1e40"):
        error = await refused(registry.stub.RegisterResource, pb.RegisterResourceRequest(
            idempotency_key=key(), resource=pb.Resource(
                kind="water_right", name="水权", region_code="330100", quantity=q(value, "m3"),
                allocation_mode=pb.ALLOCATION_MODE_MARKET, controller_agency_id="AG-LAND")),
            on_behalf("agency:AG-LAND", "grantor"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "resource.quantity.value" in field_violations(error)
        error = await refused(registry.stub.RegisterEnterprise, pb.RegisterEnterpriseRequest(
            idempotency_key=key(), enterprise=enterprise(land_held=q(value, "亩"))), ADMIN)
        assert "enterprise.land_held.value" in field_violations(error)
    listed = await registry.stub.ListResources(pb.ListResourcesRequest(), metadata=ADMIN)
    assert listed.page.total_size == 0


async def test_an_agency_registers_only_resources_it_controls(registry) -> None:
    await setup_agency(registry.stub, ADMIN, "AG-LAND", (pb.AGENCY_ROLE_GRANTOR,))
    request = pb.RegisterResourceRequest(idempotency_key=key(), resource=pb.Resource(
        kind="water_right", name="水权", region_code="330100", quantity=q("10", "m3"),
        allocation_mode=pb.ALLOCATION_MODE_MARKET, controller_agency_id="AG-LAND"))
    for metadata in (on_behalf("agency:AG-ELSE", "grantor"), ADMIN, TRADING):
        assert (await refused(registry.stub.RegisterResource, request, metadata)).code() == \
            grpc.StatusCode.PERMISSION_DENIED
    made = await registry.stub.RegisterResource(request, metadata=on_behalf("agency:AG-LAND", "grantor"))
    move = pb.TransitionResourceRequest(idempotency_key=key(), resource_id=made.resource.resource_id,
                                        to_status=pb.RESOURCE_STATUS_AVAILABLE, reason="ready")
    error = await refused(registry.stub.TransitionResource, move, on_behalf("agency:AG-ELSE", "grantor"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    moved = await registry.stub.TransitionResource(move, metadata=TRADING)
    assert moved.resource.status == pb.RESOURCE_STATUS_AVAILABLE


async def test_an_enterprise_reads_only_its_own_accounts_holds_and_history(registry) -> None:
    mine, theirs = await funded_accounts(registry.stub, ENERGY, ["100", "50"], "tce", 3)
    hold = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=theirs.account_id, quantity=q("5"), deadline=in_seconds(3600),
        purpose="deposit:L-SEALED"), metadata=TRADING)).hold
    await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), memo="trade T-1", legs=[pb.TransferLeg(
        from_account_id=mine.account_id, to_account_id=theirs.account_id, quantity=q("10"))]), metadata=TRADING)
    me = on_behalf(f"enterprise:{mine.holder}")

    # Another's objects answer exactly like missing ones.
    for call, request, absent in (
            (registry.stub.GetAccount, pb.GetAccountRequest(account_id=theirs.account_id),
             pb.GetAccountRequest(account_id="A-NONE")),
            (registry.stub.GetAccountHistory, pb.GetAccountHistoryRequest(account_id=theirs.account_id),
             pb.GetAccountHistoryRequest(account_id="A-NONE")),
            (registry.stub.GetHold, pb.GetHoldRequest(hold_id=hold.hold_id), pb.GetHoldRequest(hold_id="H-NONE"))):
        error, missing = await refused(call, request, me), await refused(call, absent, me)
        assert error.code() == missing.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == missing.details().replace("A-NONE", theirs.account_id).replace(
            "H-NONE", hold.hold_id)
    error = await refused(registry.stub.Retire, pb.RetireRequest(
        idempotency_key=key(), account_id=theirs.account_id, quantity=q("1")), me)
    assert error.code() == grpc.StatusCode.NOT_FOUND

    # Lists show only its own accounts, whatever holder the request names.
    own = await registry.stub.ListAccounts(pb.ListAccountsRequest(), metadata=me)
    assert [a.account_id for a in own.accounts] == [mine.account_id] and own.page.total_size == 1
    other = await registry.stub.ListAccounts(pb.ListAccountsRequest(holder=theirs.holder), metadata=me)
    assert list(other.accounts) == [] and other.page.total_size == 0

    # Its history shows its own side of the trade only: no counterparty account or balance.
    history = (await registry.stub.GetAccountHistory(pb.GetAccountHistoryRequest(account_id=mine.account_id),
                                                     metadata=me)).operations
    assert [o.type for o in history] == ["issue", "transfer"]
    assert [(p.account_id, p.balance_after.value, p.counterparty_account_id) for p in history[1].postings] == [
        (mine.account_id, "90.000", "")]

    # A regulator reads them all; the trading service, which manages holds, too.
    for metadata in (REGULATOR, TRADING):
        got = await registry.stub.GetHold(pb.GetHoldRequest(hold_id=hold.hold_id), metadata=metadata)
        assert got.hold.purpose == "deposit:L-SEALED"
    full = (await registry.stub.GetAccountHistory(pb.GetAccountHistoryRequest(account_id=theirs.account_id),
                                                  metadata=REGULATOR)).operations
    assert {p.account_id for p in full[-1].postings} == {mine.account_id, theirs.account_id}
    assert (await registry.stub.ListAccounts(pb.ListAccountsRequest(), metadata=REGULATOR)).page.total_size == 2
    # Nobody else: an issuing agency or an anonymous visitor reads no enterprise's account.
    for metadata in (ISSUER, on_behalf("agency:AG-T-ISSUER", "issuer")):
        assert (await refused(registry.stub.GetAccount, pb.GetAccountRequest(account_id=mine.account_id),
                              metadata)).code() == grpc.StatusCode.NOT_FOUND
    for metadata in (bearer(SERVICE_KEY), ADMIN):  # the gateway naming nobody is an anonymous visitor
        assert (await refused(registry.stub.GetAccount, pb.GetAccountRequest(account_id=mine.account_id),
                              metadata)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_only_the_trading_service_moves_units(registry) -> None:
    source, target = await funded_accounts(registry.stub, ENERGY, ["10", "0"], "tce", 3)
    transfer = pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
        from_account_id=source.account_id, to_account_id=target.account_id, quantity=q("1"))])
    for metadata in (ADMIN, ISSUER, REGULATOR, on_behalf(f"enterprise:{source.holder}"),
                     bearer(EVALUATION_KEY)):
        assert (await refused(registry.stub.Transfer, transfer, metadata)).code() == \
            grpc.StatusCode.PERMISSION_DENIED
    assert (await account(registry, source.account_id)).balance.value == "10.000"
