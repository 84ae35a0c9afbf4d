"""The holdings ledger through gRPC: issue, atomic DvP transfers, two-phase holds, retirement, history."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from tests.integration.registry.helpers import (
    REGULATOR,
    TRADING,
    define_instrument,
    funded_accounts,
    in_seconds,
    key,
    money_account,
    open_account,
    q,
    register_enterprise,
)
from tests.support.grpc_errors import field_violations, reason
from tests.support.services import BANK_TELLER_KEY, bearer, on_behalf

ENERGY = "energy_use_right:330100:2025"


async def balances(registry, *accounts) -> list[tuple[str, str]]:
    out = []
    for account in accounts:
        got = (await registry.stub.GetAccount(pb.GetAccountRequest(account_id=account.account_id),
                                              metadata=REGULATOR)).account
        out.append((got.balance.value, got.available.value))
    return out


async def supply(registry, code: str) -> pb.Instrument:
    return (await registry.stub.GetInstrument(pb.GetInstrumentRequest(code=code), metadata=TRADING)).instrument


async def test_issue_and_transfer_keep_supply_equal_to_balances(registry) -> None:
    seller, buyer = await funded_accounts(registry.stub, ENERGY, ["1000.5", "0"], "tce", 3)
    moved = await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
        from_account_id=seller.account_id, to_account_id=buyer.account_id, quantity=q("200.125", "tce"))],
        memo="secondary trade"), metadata=TRADING)
    assert [p.balance_delta.value for p in moved.operation.postings] == ["-200.125", "200.125"]
    assert await balances(registry, seller, buyer) == [("800.375", "800.375"), ("200.125", "200.125")]
    instrument = await supply(registry, ENERGY)
    assert (instrument.issued.value, instrument.outstanding.value) == ("1000.500", "1000.500")


async def test_bad_quantities_are_refused(registry) -> None:
    seller, buyer = await funded_accounts(registry.stub, ENERGY, ["10", "0"], "tce", 3)
    for quantity, field in ((q("0.0001"), "legs[0].quantity.value"), (q("-5"), "legs[0].quantity.value"),
                            (q("abc"), "legs[0].quantity.value"), (q("1", "t"), "legs[0].quantity.unit")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
                from_account_id=seller.account_id, to_account_id=buyer.account_id, quantity=quantity)]),
                metadata=TRADING)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in field_violations(caught.value)
    assert await balances(registry, seller, buyer) == [("10.000", "10.000"), ("0.000", "0.000")]


async def test_delivery_versus_payment_commits_all_legs_or_none(registry) -> None:
    auth = TRADING
    seller_right, buyer_right = await funded_accounts(registry.stub, ENERGY, ["500", "0"], "tce", 3)
    seller_cny = await money_account(registry.stub, seller_right.holder)
    buyer_cny = await money_account(registry.stub, buyer_right.holder, 1_000_000)

    def dvp(price_fen: str) -> pb.TransferRequest:
        return pb.TransferRequest(idempotency_key=key(), reference="T-1", legs=[
            pb.TransferLeg(from_account_id=seller_right.account_id, to_account_id=buyer_right.account_id,
                           quantity=q("100")),
            pb.TransferLeg(from_account_id=buyer_cny.account_id, to_account_id=seller_cny.account_id,
                           quantity=q(price_fen))])

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.Transfer(dvp("1000001"), metadata=auth)  # the buyer is 1 fen short
    assert reason(caught.value) == "INSUFFICIENT_FUNDS" and "legs[1]" in caught.value.details()
    assert await balances(registry, seller_right, buyer_right, buyer_cny, seller_cny) == [
        ("500.000", "500.000"), ("0.000", "0.000"), ("1000000", "1000000"), ("0", "0")]
    await registry.stub.Transfer(dvp("1000000"), metadata=auth)
    assert await balances(registry, seller_right, buyer_right, buyer_cny, seller_cny) == [
        ("400.000", "400.000"), ("100.000", "100.000"), ("0", "0"), ("1000000", "1000000")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # mixing instruments in one leg
        await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
            from_account_id=seller_right.account_id, to_account_id=seller_cny.account_id, quantity=q("1"))]),
            metadata=auth)
    assert "legs[0].to_account_id" in field_violations(caught.value)


async def test_holds_reduce_available_and_resolve_exactly_once(registry) -> None:
    auth = TRADING
    bidder, seller = await funded_accounts(registry.stub, ENERGY, ["100", "0"], "tce", 3)
    hold = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=bidder.account_id, quantity=q("60"), deadline=in_seconds(3600),
        purpose="deposit:L-1"), metadata=auth)).hold
    assert hold.status == pb.HOLD_STATUS_PENDING
    assert await balances(registry, bidder) == [("100.000", "40.000")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # the held part cannot be spent elsewhere
        await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
            from_account_id=bidder.account_id, to_account_id=seller.account_id, quantity=q("41"))]), metadata=auth)
    assert reason(caught.value) == "INSUFFICIENT_FUNDS"
    post = pb.PostHoldRequest(idempotency_key=key(), hold_id=hold.hold_id, to_account_id=seller.account_id,
                              quantity=q("45"))
    posted = await registry.stub.PostHold(post, metadata=auth)
    assert (posted.hold.status, posted.hold.posted.value) == (pb.HOLD_STATUS_POSTED, "45.000")
    assert await balances(registry, bidder, seller) == [("55.000", "55.000"), ("45.000", "45.000")]
    assert await registry.stub.PostHold(post, metadata=auth) == posted  # a retry replays
    for again in (pb.PostHoldRequest(idempotency_key=key(), hold_id=hold.hold_id, to_account_id=seller.account_id),
                  pb.VoidHoldRequest(idempotency_key=key(), hold_id=hold.hold_id)):
        call = registry.stub.PostHold if isinstance(again, pb.PostHoldRequest) else registry.stub.VoidHold
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(again, metadata=auth)
        assert reason(caught.value) == "HOLD_RESOLVED"
    assert await balances(registry, bidder, seller) == [("55.000", "55.000"), ("45.000", "45.000")]


async def test_void_releases_and_a_hold_can_pay_a_transfer_leg(registry) -> None:
    auth = TRADING
    bidder, seller = await funded_accounts(registry.stub, ENERGY, ["100", "0"], "tce", 3)
    first = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=bidder.account_id, quantity=q("30"), deadline=in_seconds(3600)),
        metadata=auth)).hold
    voided = await registry.stub.VoidHold(pb.VoidHoldRequest(idempotency_key=key(), hold_id=first.hold_id,
                                                             reason="lost the auction"), metadata=auth)
    assert voided.hold.status == pb.HOLD_STATUS_VOIDED
    assert await balances(registry, bidder) == [("100.000", "100.000")]
    second = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=bidder.account_id, quantity=q("50"), deadline=in_seconds(3600)),
        metadata=auth)).hold
    # The deposit applied to the price: 50 from the hold plus 20 from the free balance.
    await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[
        pb.TransferLeg(from_account_id=bidder.account_id, to_account_id=seller.account_id, quantity=q("50"),
                       from_hold_id=second.hold_id),
        pb.TransferLeg(from_account_id=bidder.account_id, to_account_id=seller.account_id, quantity=q("20"))]),
        metadata=auth)
    got = (await registry.stub.GetHold(pb.GetHoldRequest(hold_id=second.hold_id), metadata=auth)).hold
    assert (got.status, got.posted.value) == (pb.HOLD_STATUS_POSTED, "50.000")
    assert await balances(registry, bidder, seller) == [("30.000", "30.000"), ("70.000", "70.000")]


async def test_a_partial_hold_is_captured_in_keyed_parts_released_and_increased(registry) -> None:
    """An order hold: posted by several transfer legs and posts, each part once by its key, released and
    increased in parts, pending until nothing is left; one-shot holds refuse parts."""
    auth = TRADING
    holder, seller = await funded_accounts(registry.stub, ENERGY, ["100", "0"], "tce", 3)

    async def hold_now(hold_id: str) -> pb.Hold:
        return (await registry.stub.GetHold(pb.GetHoldRequest(hold_id=hold_id), metadata=auth)).hold

    def leg(hold_id: str, quantity: str) -> pb.TransferRequest:
        return pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
            from_account_id=holder.account_id, to_account_id=seller.account_id, quantity=q(quantity),
            from_hold_id=hold_id)])

    hold = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=holder.account_id, quantity=q("60"), deadline=in_seconds(3600),
        purpose="order", partial=True), metadata=auth)).hold
    assert hold.partial and hold.status == pb.HOLD_STATUS_PENDING
    first = leg(hold.hold_id, "10")
    await registry.stub.Transfer(first, metadata=auth)
    await registry.stub.Transfer(first, metadata=auth)  # a retried part is replayed, never posted twice
    got = await hold_now(hold.hold_id)
    assert (got.status, got.quantity.value, got.posted.value) == (pb.HOLD_STATUS_PENDING, "60.000", "10.000")
    assert await balances(registry, holder, seller) == [("90.000", "40.000"), ("10.000", "10.000")]
    posted = await registry.stub.PostHold(pb.PostHoldRequest(
        idempotency_key=key(), hold_id=hold.hold_id, to_account_id=seller.account_id, quantity=q("15")),
        metadata=auth)
    assert (posted.hold.status, posted.hold.posted.value) == (pb.HOLD_STATUS_PENDING, "25.000")
    release = pb.VoidHoldRequest(idempotency_key=key(), hold_id=hold.hold_id, reason="amended down",
                                 quantity=q("5"))
    released = await registry.stub.VoidHold(release, metadata=auth)
    assert await registry.stub.VoidHold(release, metadata=auth) == released
    assert (released.hold.status, released.hold.released.value) == (pb.HOLD_STATUS_PENDING, "5.000")
    increased = await registry.stub.IncreaseHold(pb.IncreaseHoldRequest(
        idempotency_key=key(), hold_id=hold.hold_id, quantity=q("20")), metadata=auth)
    assert increased.hold.quantity.value == "80.000"
    # balance 75, held 80 − 25 posted − 5 released = 50
    assert await balances(registry, holder) == [("75.000", "25.000")]
    for call, request, expected in (
            (registry.stub.IncreaseHold, pb.IncreaseHoldRequest(idempotency_key=key(), hold_id=hold.hold_id,
                                                                quantity=q("25.001")), "INSUFFICIENT_FUNDS"),
            (registry.stub.Transfer, leg(hold.hold_id, "50.001"), "HOLD_EXCEEDED"),
            (registry.stub.VoidHold, pb.VoidHoldRequest(idempotency_key=key(), hold_id=hold.hold_id,
                                                        quantity=q("50.001")), "HOLD_EXCEEDED")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=auth)
        assert reason(caught.value) == expected
    await registry.stub.Transfer(leg(hold.hold_id, "40"), metadata=auth)
    await registry.stub.VoidHold(pb.VoidHoldRequest(idempotency_key=key(), hold_id=hold.hold_id, quantity=q("10")),
                                 metadata=auth)
    done = await hold_now(hold.hold_id)  # nothing left: resolved as posted
    assert (done.status, done.quantity.value, done.posted.value, done.released.value) == (
        pb.HOLD_STATUS_POSTED, "80.000", "65.000", "15.000")
    assert await balances(registry, holder, seller) == [("35.000", "35.000"), ("65.000", "65.000")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.Transfer(leg(hold.hold_id, "1"), metadata=auth)
    assert reason(caught.value) == "HOLD_RESOLVED"

    # A partial hold voided without a quantity gives back the rest at once; a one-shot hold takes no parts.
    rest = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=holder.account_id, quantity=q("20"), deadline=in_seconds(3600),
        partial=True), metadata=auth)).hold
    await registry.stub.Transfer(leg(rest.hold_id, "5"), metadata=auth)
    voided = (await registry.stub.VoidHold(pb.VoidHoldRequest(idempotency_key=key(), hold_id=rest.hold_id),
                                           metadata=auth)).hold
    assert (voided.status, voided.posted.value, voided.released.value) == (pb.HOLD_STATUS_VOIDED, "5.000", "15.000")
    one_shot = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=holder.account_id, quantity=q("10"), deadline=in_seconds(3600)),
        metadata=auth)).hold
    for call, request, field in (
            (registry.stub.VoidHold, pb.VoidHoldRequest(idempotency_key=key(), hold_id=one_shot.hold_id,
                                                        quantity=q("1")), "quantity"),
            (registry.stub.IncreaseHold, pb.IncreaseHoldRequest(idempotency_key=key(), hold_id=one_shot.hold_id,
                                                                quantity=q("1")), "hold_id")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=auth)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in field_violations(caught.value)
    assert await balances(registry, holder) == [("30.000", "20.000")]


async def test_a_hold_past_its_deadline_expires_and_cannot_be_posted(registry) -> None:
    auth = TRADING
    bidder, seller = await funded_accounts(registry.stub, ENERGY, ["10", "0"], "tce", 3)
    hold = (await registry.stub.CreateHold(pb.CreateHoldRequest(
        idempotency_key=key(), account_id=bidder.account_id, quantity=q("4"), deadline=in_seconds(0.5)),
        metadata=auth)).hold
    # The sweeper voids it as EXPIRED; poll with a deadline rather than sleeping a fixed time.
    status = pb.HOLD_STATUS_PENDING
    async with asyncio.timeout(10):
        while status == pb.HOLD_STATUS_PENDING:
            await asyncio.sleep(0.1)
            status = (await registry.stub.GetHold(pb.GetHoldRequest(hold_id=hold.hold_id), metadata=auth)).hold.status
    assert status == pb.HOLD_STATUS_EXPIRED
    assert await balances(registry, bidder) == [("10.000", "10.000")]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.PostHold(pb.PostHoldRequest(idempotency_key=key(), hold_id=hold.hold_id,
                                                        to_account_id=seller.account_id), metadata=auth)
    assert reason(caught.value) == "HOLD_RESOLVED"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.CreateHold(pb.CreateHoldRequest(idempotency_key=key(), account_id=bidder.account_id,
                                                            quantity=q("1")), metadata=auth)
    assert "deadline" in field_violations(caught.value)


async def test_retire_reduces_supply_and_history_traces_every_unit(registry) -> None:
    holder, other = await funded_accounts(registry.stub, ENERGY, ["100", "0"], "tce", 3)
    await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
        from_account_id=holder.account_id, to_account_id=other.account_id, quantity=q("25"))]), metadata=TRADING)
    itself = on_behalf(f"enterprise:{holder.holder}")  # the holder surrenders its own units
    await registry.stub.Retire(pb.RetireRequest(idempotency_key=key(), account_id=holder.account_id,
                                                quantity=q("10"), reason="履约清缴"), metadata=itself)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.Retire(pb.RetireRequest(idempotency_key=key(), account_id=holder.account_id,
                                                    quantity=q("66")), metadata=itself)
    assert reason(caught.value) == "INSUFFICIENT_FUNDS"
    instrument = await supply(registry, ENERGY)
    assert (instrument.issued.value, instrument.retired.value, instrument.outstanding.value) == (
        "100.000", "10.000", "90.000")
    history = (await registry.stub.GetAccountHistory(pb.GetAccountHistoryRequest(account_id=holder.account_id),
                                                     metadata=REGULATOR)).operations
    assert [(o.type, [p.balance_after.value for p in o.postings if p.account_id == holder.account_id])
            for o in history] == [("issue", ["100.000"]), ("transfer", ["75.000"]), ("retire", ["65.000"])]
    transfer = history[1].postings
    assert {p.counterparty_account_id for p in transfer} == {holder.account_id, other.account_id}


async def test_accounts_are_listed_by_holder_and_opened_once(registry) -> None:
    (account,) = await funded_accounts(registry.stub, ENERGY, ["1"], "tce", 3)
    again = await open_account(registry.stub, account.holder, ENERGY)
    assert again.account_id == account.account_id
    listed = await registry.stub.ListAccounts(pb.ListAccountsRequest(holder=account.holder), metadata=TRADING)
    assert [a.account_id for a in listed.accounts] == [account.account_id]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=key(), holder="nobody",
                                                              instrument=ENERGY), metadata=TRADING)
    assert "holder" in field_violations(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # money is defined by the settlement bank, in fen
        await define_instrument(registry.stub, "CNY2", "yuan", 2, "cny", auth=bearer(BANK_TELLER_KEY))
    assert "instrument.unit" in field_violations(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # an enterprise opens accounts only for itself
        await registry.stub.OpenAccount(pb.OpenAccountRequest(
            idempotency_key=key(), holder=account.holder, instrument="CNY"),
            metadata=on_behalf(f"enterprise:{await register_enterprise(registry.stub)}"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_concurrent_transfers_never_overdraw(registry) -> None:
    auth = TRADING
    source, target = await funded_accounts(registry.stub, ENERGY, ["10", "0"], "tce", 3)
    calls = [registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
        from_account_id=source.account_id, to_account_id=target.account_id, quantity=q("1"))]), metadata=auth)
        for _ in range(25)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 15 and all(reason(r) == "INSUFFICIENT_FUNDS" for r in refused)
    assert await balances(registry, source, target) == [("0.000", "0.000"), ("10.000", "10.000")]


async def test_holds_are_listed_by_purpose_and_state_in_pages(registry) -> None:
    """ListHolds: regulators and the trading service read holds by purpose prefix (a prefix, never a
    pattern), pending only or all, page by page; an enterprise may not list them."""
    (holder,) = await funded_accounts(registry.stub, ENERGY, ["100"], "tce", 3)
    run = key()[:8]

    async def hold(purpose: str) -> pb.Hold:
        return (await registry.stub.CreateHold(pb.CreateHoldRequest(
            idempotency_key=key(), account_id=holder.account_id, quantity=q("1"), deadline=in_seconds(3600),
            purpose=purpose), metadata=TRADING)).hold
    made = [await hold(f"order:{run}-{n}:life") for n in range(3)]
    await hold(f"deposit{run}")
    await hold(f"order_{run}")  # "_" is no wildcard
    await registry.stub.VoidHold(pb.VoidHoldRequest(idempotency_key=key(), hold_id=made[0].hold_id,
                                                    reason="test"), metadata=TRADING)

    async def listed(pending_only: bool, size: int) -> list[pb.Hold]:
        found, token = [], ""
        while True:
            page = await registry.stub.ListHolds(pb.ListHoldsRequest(
                purpose_prefix=f"order:{run}-", pending_only=pending_only,
                page=common_pb2.PageRequest(page_size=size, page_token=token)), metadata=REGULATOR)
            found += page.holds
            token = page.page.next_page_token
            if not token:
                return found
    assert sorted(h.hold_id for h in await listed(False, 2)) == sorted(h.hold_id for h in made)
    pending = await listed(True, 1)
    assert sorted(h.hold_id for h in pending) == sorted(h.hold_id for h in made[1:])
    assert {h.status for h in pending} == {pb.HOLD_STATUS_PENDING}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.stub.ListHolds(pb.ListHoldsRequest(), metadata=on_behalf("enterprise:91330106MA2GL0XX1K"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
