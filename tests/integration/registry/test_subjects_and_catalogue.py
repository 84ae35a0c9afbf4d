"""RegistryService over a real gRPC server: market subjects, catalogue, authentication, probes."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from tests.integration.registry.helpers import enterprise, key, new_credit_code, q, setup_agency
from tests.support.grpc_errors import field_violations, reason
from tests.support.services import ISSUER_KEY, READER_KEY, on_behalf

LAND_AGENCY = on_behalf("agency:AG-LAND", "grantor")  # the land bureau's user, through the gateway


async def test_health_and_reflection_list_the_service(registry) -> None:
    health = health_pb2_grpc.HealthStub(registry.channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="yaosu.registry.v1.RegistryService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(registry.channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in reflection.ServerReflectionInfo(requests()):
        names = {s.name for s in response.list_services_response.service}
        assert "yaosu.registry.v1.RegistryService" in names
        break


async def test_calls_without_a_known_key_are_unauthenticated(registry) -> None:
    for metadata in ([], [("authorization", "Bearer wrong")]):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await registry.stub.ListEnterprises(pb.ListEnterprisesRequest(), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_readers_cannot_change_anything(registry) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
            idempotency_key=key(), enterprise=enterprise()), metadata=registry.auth(READER_KEY))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await registry.stub.ListEnterprises(pb.ListEnterprisesRequest(), metadata=registry.auth(READER_KEY))
    assert listed.page.total_size == 0


async def test_register_get_and_list_enterprises(registry) -> None:
    auth = registry.auth()
    codes = []
    for i, (division, industry, size) in enumerate([("330106", "C3484", pb.SIZE_CLASS_ABOVE),
                                                    ("330109", "C2614", pb.SIZE_CLASS_BELOW),
                                                    ("330109", "C3670", pb.SIZE_CLASS_ABOVE)]):
        code = new_credit_code(division)
        codes.append(code)
        made = await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
            idempotency_key=key(), enterprise=enterprise(code, region_code=division, industry_code=industry,
                                                         size_class=size, name=f"企业{i}")), metadata=auth)
        assert made.enterprise.status == pb.SUBJECT_STATUS_ACTIVE
        assert made.enterprise.land_held.value == "35.5" and made.enterprise.land_held.unit == "亩"
    got = await registry.stub.GetEnterprise(pb.GetEnterpriseRequest(credit_code=codes[1]), metadata=auth)
    assert got.enterprise.industry_code == "C2614"
    in_xiaoshan = await registry.stub.ListEnterprises(pb.ListEnterprisesRequest(region_code="330109"),
                                                      metadata=auth)
    assert {e.credit_code for e in in_xiaoshan.enterprises} == set(codes[1:])
    above = await registry.stub.ListEnterprises(pb.ListEnterprisesRequest(size_class=pb.SIZE_CLASS_ABOVE,
                                                                          industry_code="C36"), metadata=auth)
    assert [e.credit_code for e in above.enterprises] == [codes[2]]
    # Pagination walks every item exactly once.
    seen, token = [], ""
    while True:
        page = await registry.stub.ListEnterprises(pb.ListEnterprisesRequest(
            page=common_pb2.PageRequest(page_size=2, page_token=token)), metadata=auth)
        seen += [e.credit_code for e in page.enterprises]
        assert page.page.total_size == 3
        token = page.page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(codes)


async def test_a_wrong_credit_code_is_refused_with_a_field_violation(registry) -> None:
    good = new_credit_code()
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
            idempotency_key=key(), enterprise=enterprise(wrong, industry_code="C99", region_code="990000",
                                                         land_held=q("-1", "亩"))), metadata=registry.auth())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(caught.value)
    assert "check character" in violations["enterprise.credit_code"]
    assert {"enterprise.industry_code", "enterprise.region_code", "enterprise.land_held.value"} <= set(violations)
    listed = await registry.stub.ListEnterprises(pb.ListEnterprisesRequest(), metadata=registry.auth())
    assert listed.page.total_size == 0  # nothing changed


async def test_idempotent_retry_and_key_reuse(registry) -> None:
    auth, idem = registry.auth(), key()
    request = pb.RegisterEnterpriseRequest(idempotency_key=idem, enterprise=enterprise())
    first = await registry.stub.RegisterEnterprise(request, metadata=auth)
    again = await registry.stub.RegisterEnterprise(request, metadata=auth)
    assert again == first
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
            idempotency_key=idem, enterprise=enterprise()), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
            idempotency_key=key(), enterprise=request.enterprise), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_enterprise_status_and_not_found(registry) -> None:
    auth = registry.auth()
    made = await registry.stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(
        idempotency_key=key(), enterprise=enterprise()), metadata=auth)
    changed = await registry.stub.SetEnterpriseStatus(pb.SetEnterpriseStatusRequest(
        idempotency_key=key(), credit_code=made.enterprise.credit_code, status=pb.SUBJECT_STATUS_SUSPENDED,
        reason="违法用地"), metadata=auth)
    assert changed.enterprise.status == pb.SUBJECT_STATUS_SUSPENDED
    for call in (registry.stub.GetEnterprise(pb.GetEnterpriseRequest(credit_code=new_credit_code()), metadata=auth),
                 registry.stub.GetAgency(pb.GetAgencyRequest(agency_id="nobody"), metadata=auth),
                 registry.stub.GetResource(pb.GetResourceRequest(resource_id="R-none"), metadata=auth)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_agencies_by_role(registry) -> None:
    auth = registry.auth()
    await setup_agency(registry.stub, auth, "AG-A", (pb.AGENCY_ROLE_GRANTOR,))
    await setup_agency(registry.stub, auth, "AG-B", (pb.AGENCY_ROLE_ISSUER, pb.AGENCY_ROLE_GRANTOR))
    await setup_agency(registry.stub, auth, "AG-C", (pb.AGENCY_ROLE_REGULATOR,))
    grantors = await registry.stub.ListAgencies(pb.ListAgenciesRequest(role=pb.AGENCY_ROLE_GRANTOR), metadata=auth)
    assert [a.agency_id for a in grantors.agencies] == ["AG-A", "AG-B"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterAgency(pb.RegisterAgencyRequest(idempotency_key=key(), agency=pb.Agency(
            agency_id="AG-X", name="", region_code="33", roles=[])), metadata=auth)
    assert set(field_violations(caught.value)) == {"agency.name", "agency.region_code", "agency.roles"}


def _parcel(**fields) -> pb.Resource:
    values = dict(kind="land_use_right", name="萧山工业地块 2025-01", region_code="330109", park="临江工业园",
                  quantity=q("56.25", "亩"), allocation_mode=pb.ALLOCATION_MODE_MARKET,
                  controller_agency_id="AG-LAND",
                  attributes={"land_use": "工业用地", "plot_ratio_min": "1.2", "plot_ratio_max": "2.5",
                              "term_years": "50", "min_tax_per_mu": "30"}, standard_land=True)
    values.update(fields)
    return pb.Resource(**values)


async def test_catalogue_kinds_are_data(registry) -> None:
    auth = registry.auth()
    kinds = {k.code for k in (await registry.stub.ListResourceKinds(pb.ListResourceKindsRequest(),
                                                                      metadata=auth)).kinds}
    assert {"land_use_right", "energy_use_right", "pollutant_discharge_right", "water_right"} <= kinds
    await registry.stub.DefineResourceKind(pb.DefineResourceKindRequest(idempotency_key=key(), kind=pb.ResourceKind(
        code="mining_right", name="采矿权", unit="t", fungible=False, attribute_names=["mineral"])), metadata=auth)
    await setup_agency(registry.stub, auth, "AG-LAND", (pb.AGENCY_ROLE_GRANTOR,))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterResource(pb.RegisterResourceRequest(idempotency_key=key(), resource=pb.Resource(
            kind="mining_right", name="示范矿", region_code="330109", quantity=q("1000", "t"),
            allocation_mode=pb.ALLOCATION_MODE_MARKET, controller_agency_id="AG-LAND")), metadata=LAND_AGENCY)
    assert "resource.attributes[mineral]" in field_violations(caught.value)
    made = await registry.stub.RegisterResource(pb.RegisterResourceRequest(idempotency_key=key(), resource=pb.Resource(
        kind="mining_right", name="示范矿", region_code="330109", quantity=q("1000", "t"),
        allocation_mode=pb.ALLOCATION_MODE_MARKET, controller_agency_id="AG-LAND",
        attributes={"mineral": "建筑用石料"})), metadata=LAND_AGENCY)
    assert made.resource.status == pb.RESOURCE_STATUS_REGISTERED


async def test_bad_resources_are_refused_precisely(registry) -> None:
    auth = registry.auth()
    await setup_agency(registry.stub, auth, "AG-LAND", (pb.AGENCY_ROLE_GRANTOR,))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterResource(pb.RegisterResourceRequest(idempotency_key=key(), resource=_parcel(
            quantity=q("0", "亩"), attributes={"land_use": "工业用地", "plot_ratio_min": "3",
                                               "plot_ratio_max": "2", "term_years": "x"})), metadata=LAND_AGENCY)
    violations = field_violations(caught.value)
    assert {"resource.quantity.value", "resource.attributes[plot_ratio_min]", "resource.attributes[term_years]",
            "resource.attributes"} <= set(violations)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterResource(pb.RegisterResourceRequest(
            idempotency_key=key(), resource=_parcel(kind="no_such_kind")), metadata=LAND_AGENCY)
    assert "resource.kind" in field_violations(caught.value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.RegisterResource(pb.RegisterResourceRequest(
            idempotency_key=key(), resource=_parcel(quantity=q("5", "tce"))), metadata=LAND_AGENCY)
    assert "resource.quantity.unit" in field_violations(caught.value)
    listed = await registry.stub.ListResources(pb.ListResourcesRequest(), metadata=auth)
    assert listed.page.total_size == 0


async def test_lifecycle_is_enforced_and_totals_add_up(registry) -> None:
    auth = registry.auth()
    await setup_agency(registry.stub, auth, "AG-LAND", (pb.AGENCY_ROLE_GRANTOR,))
    parcel = (await registry.stub.RegisterResource(pb.RegisterResourceRequest(
        idempotency_key=key(), resource=_parcel()), metadata=LAND_AGENCY)).resource
    other = (await registry.stub.RegisterResource(pb.RegisterResourceRequest(
        idempotency_key=key(), resource=_parcel(quantity=q("10.5", "亩"), standard_land=False,
                                                attributes={"land_use": "工业用地", "plot_ratio_min": "1",
                                                            "plot_ratio_max": "2", "term_years": "50"})),
        metadata=LAND_AGENCY)).resource

    async def move(resource_id, status, holder=""):
        return (await registry.stub.TransitionResource(pb.TransitionResourceRequest(
            idempotency_key=key(), resource_id=resource_id, to_status=status, reason="test", holder=holder),
            metadata=LAND_AGENCY)).resource

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await move(parcel.resource_id, pb.RESOURCE_STATUS_LISTED)  # registered → listed skips a step
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "INVALID_TRANSITION"
    await move(parcel.resource_id, pb.RESOURCE_STATUS_AVAILABLE)
    await move(parcel.resource_id, pb.RESOURCE_STATUS_LISTED)
    assert (await move(parcel.resource_id, pb.RESOURCE_STATUS_AVAILABLE)).status == pb.RESOURCE_STATUS_AVAILABLE
    await move(parcel.resource_id, pb.RESOURCE_STATUS_LISTED)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await move(parcel.resource_id, pb.RESOURCE_STATUS_ALLOCATED)
    assert reason(caught.value) == "HOLDER_REQUIRED"
    holder = new_credit_code()
    allocated = await move(parcel.resource_id, pb.RESOURCE_STATUS_ALLOCATED, holder)
    assert (allocated.status, allocated.holder) == (pb.RESOURCE_STATUS_ALLOCATED, holder)
    await move(parcel.resource_id, pb.RESOURCE_STATUS_RETIRED)
    with pytest.raises(grpc.aio.AioRpcError):
        await move(parcel.resource_id, pb.RESOURCE_STATUS_AVAILABLE)

    standard = await registry.stub.ListResources(pb.ListResourcesRequest(standard_land_only=True), metadata=auth)
    assert [r.resource_id for r in standard.resources] == [parcel.resource_id]
    totals = (await registry.stub.GetCatalogueTotals(pb.GetCatalogueTotalsRequest(region_code="3301"),
                                                     metadata=auth)).totals
    by_status = {t.status: (t.items, t.quantity.value) for t in totals}
    assert by_status == {pb.RESOURCE_STATUS_RETIRED: (1, "56.25"), pb.RESOURCE_STATUS_REGISTERED: (1, "10.5")}
    assert other.resource_id


async def test_issuer_role_may_issue_but_not_transfer(registry) -> None:
    from tests.integration.registry.helpers import funded_accounts
    accounts = await funded_accounts(registry.stub, "energy_use_right:330100:2025", ["0", "0"], "tce", 3)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await registry.stub.Transfer(pb.TransferRequest(idempotency_key=key(), legs=[pb.TransferLeg(
            from_account_id=accounts[0].account_id, to_account_id=accounts[1].account_id, quantity=q("1"))]),
            metadata=registry.auth(ISSUER_KEY))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
