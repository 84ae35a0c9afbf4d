"""Registration asks the real evaluation service (CheckEligibility): the listing's class gate is enforced
on the grade evaluation published, an unevaluated enterprise is refused (NOT_EVALUATED), the answer is
recorded on the registration, and an unreachable evaluation service refuses to guess (UNAVAILABLE)."""

from __future__ import annotations

import grpc
import pytest
from yaosu.evaluation.v1 import evaluation_pb2 as epb
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.evaluation.support import (
    EVALUATOR,
    evaluation_running,
    firm_values,
    register_enterprises,
    row,
    submit,
)
from tests.integration.trading.support import (
    bidder,
    key,
    land_listing,
    land_world,
    publish,
    sibling_database,
    to_bidding,
    trading_running,
)
from tests.support.grpc_errors import reason

GRADE_CLASS = {"A": 1, "B": 2, "C": 3, "D": 4, "T": 5}


@pytest.fixture
async def evaluation(database_url, nats_server, registry):
    async with sibling_database(database_url, "evaluation") as url, \
            evaluation_running(url, nats_server.url, registry.address) as running:
        yield running


async def test_class_gate_and_not_evaluated_with_the_real_evaluation_service(database_url, nats_server, registry,
                                                                             evaluation):
    codes = await register_enterprises(registry.stub, 3)
    (unevaluated,) = await register_enterprises(registry.stub, 1)
    await submit(evaluation.stub, [row(code, 2024, **firm_values(i)) for i, code in enumerate(codes)])
    run = (await evaluation.stub.StartRun(epb.StartRunRequest(idempotency_key=key(), jurisdiction="330100",
                                                              year=2024), metadata=EVALUATOR)).run
    await evaluation.stub.PublishRun(epb.PublishRunRequest(idempotency_key=key(), run_id=run.run_id),
                                     metadata=EVALUATOR)
    grades = {}
    for code in codes:
        grades[code] = (await evaluation.stub.GetEnterpriseResult(epb.GetEnterpriseResultRequest(
            credit_code=code), metadata=EVALUATOR)).result.final_grade
    best = min(GRADE_CLASS[g] for g in grades.values())
    assert best < max(GRADE_CLASS[g] for g in grades.values()), grades  # the gate must split them

    resource_id, _ = await land_world(registry.stub, bidders=0)
    async with sibling_database(database_url, "trading2") as url, \
            trading_running(url, nats_server.url, registry.address, evaluation_addr=evaluation.address) as trading:
        listing = land_listing(resource_id, trading.clock.now(), deposit=0)
        listing.eligibility.allowed_classes.append(best)
        listing = await publish(trading.stub, listing, reserve_fen=listing.rules.start_price.fen)
        to_bidding(trading.clock, listing)
        for code, grade in grades.items():
            reg = (await trading.stub.RegisterBidder(pb.RegisterBidderRequest(
                idempotency_key=key(), listing_id=listing.listing_id, credit_code=code),
                metadata=bidder(code))).registration
            assert f"grade {grade}" in reg.eligibility_detail and run.run_id in reg.eligibility_detail
            if GRADE_CLASS[grade] == best:
                assert reg.state == pb.REGISTRATION_STATE_QUALIFIED, reg
                assert reg.eligibility_rule.startswith("differentiated_measures"), reg.eligibility_rule
            else:
                assert reg.state == pb.REGISTRATION_STATE_REFUSED, reg
                assert "class gate" in reg.eligibility_detail
        refused = (await trading.stub.RegisterBidder(pb.RegisterBidderRequest(
            idempotency_key=key(), listing_id=listing.listing_id, credit_code=unevaluated),
            metadata=bidder(unevaluated))).registration
        assert refused.state == pb.REGISTRATION_STATE_REFUSED
        assert refused.eligibility_rule == "NOT_EVALUATED"
        with pytest.raises(grpc.aio.AioRpcError) as bidding:
            await trading.stub.PlaceBid(pb.PlaceBidRequest(
                idempotency_key=key(), listing_id=listing.listing_id, credit_code=unevaluated,
                price=listing.rules.start_price), metadata=bidder(unevaluated))
        assert bidding.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_unreachable_evaluation_service_is_not_an_answer(database_url, nats_server, registry):
    resource_id, (code,) = await land_world(registry.stub, bidders=1)
    async with trading_running(database_url, nats_server.url, registry.address,
                               evaluation_addr="127.0.0.1:1") as trading:
        listing = land_listing(resource_id, trading.clock.now(), deposit=0)
        listing.eligibility.allowed_classes.append(1)
        listing = await publish(trading.stub, listing, reserve_fen=listing.rules.start_price.fen)
        to_bidding(trading.clock, listing)
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await trading.stub.RegisterBidder(pb.RegisterBidderRequest(
                idempotency_key=key(), listing_id=listing.listing_id, credit_code=code),
                metadata=bidder(code))
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        assert reason(down.value) == "EVALUATION_UNAVAILABLE"
        with pytest.raises(grpc.aio.AioRpcError) as none:
            await trading.stub.GetRegistration(pb.GetRegistrationRequest(listing_id=listing.listing_id,
                                                                         credit_code=code), metadata=bidder(code))
        assert none.value.code() == grpc.StatusCode.NOT_FOUND
