"""RegistryService over gRPC: requests → commands → use cases → responses. No business rules here."""

from __future__ import annotations

import grpc
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb
from yaosu.registry.v1 import registry_pb2_grpc

from services.common.errors import InvalidArgument
from services.common.proto_convert import from_timestamp, page_after, page_size, page_token, quantity, timestamp
from services.registry.application import commands as c
from services.registry.application.audit import AuditTrail
from services.registry.application.cash import CashMovements
from services.registry.application.catalogue import Catalogue
from services.registry.application.ledger import Ledger
from services.registry.application.subjects import Subjects
from services.registry.application.views import (
    AccountView,
    AgencyView,
    CashMovementView,
    EnterpriseView,
    HoldView,
    InstrumentView,
    OperationView,
    Page,
    ResourceView,
)

SIZE = {pb.SIZE_CLASS_ABOVE: "above", pb.SIZE_CLASS_BELOW: "below"}
SIZE_PB = {v: k for k, v in SIZE.items()}
STATUS = {pb.SUBJECT_STATUS_ACTIVE: "active", pb.SUBJECT_STATUS_SUSPENDED: "suspended",
          pb.SUBJECT_STATUS_DEREGISTERED: "deregistered"}
STATUS_PB = {v: k for k, v in STATUS.items()}
ROLE = {pb.AGENCY_ROLE_GRANTOR: "grantor", pb.AGENCY_ROLE_TRADING_CENTRE: "trading_centre",
        pb.AGENCY_ROLE_REGULATOR: "regulator", pb.AGENCY_ROLE_ISSUER: "issuer",
        pb.AGENCY_ROLE_DATA_PROVIDER: "data_provider", pb.AGENCY_ROLE_EVALUATOR: "evaluator",
        pb.AGENCY_ROLE_SETTLEMENT: "settlement"}
ROLE_PB = {v: k for k, v in ROLE.items()}
MODE = {pb.ALLOCATION_MODE_MARKET: "market", pb.ALLOCATION_MODE_GUIDED: "guided",
        pb.ALLOCATION_MODE_ADMINISTRATIVE: "administrative"}
MODE_PB = {v: k for k, v in MODE.items()}
RSTATUS = {pb.RESOURCE_STATUS_REGISTERED: "registered", pb.RESOURCE_STATUS_AVAILABLE: "available",
           pb.RESOURCE_STATUS_LISTED: "listed", pb.RESOURCE_STATUS_ALLOCATED: "allocated",
           pb.RESOURCE_STATUS_RETIRED: "retired"}
RSTATUS_PB = {v: k for k, v in RSTATUS.items()}
HSTATUS_PB = {"pending": pb.HOLD_STATUS_PENDING, "posted": pb.HOLD_STATUS_POSTED, "voided": pb.HOLD_STATUS_VOIDED,
              "expired": pb.HOLD_STATUS_EXPIRED}
CASH_KIND = {pb.CASH_MOVEMENT_KIND_DEPOSIT: "deposit", pb.CASH_MOVEMENT_KIND_WITHDRAWAL: "withdrawal"}
CASH_KIND_PB = {v: k for k, v in CASH_KIND.items()}
CASH_STATE = {pb.CASH_MOVEMENT_STATE_PENDING: "pending", pb.CASH_MOVEMENT_STATE_EXECUTED: "executed",
              pb.CASH_MOVEMENT_STATE_REJECTED: "rejected"}
CASH_STATE_PB = {v: k for k, v in CASH_STATE.items()}


def _page(request_page) -> Page:
    return Page(page_size(request_page), page_after(request_page))


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, subjects: Subjects, catalogue: Catalogue, ledger: Ledger, cash: CashMovements,
                 audit: AuditTrail) -> None:
        self.subjects, self.catalogue, self.ledger, self.cash, self.audit = subjects, catalogue, ledger, cash, audit

    # ------------------------------------------------------------ subjects
    async def RegisterEnterprise(self, request, context):
        e = request.enterprise
        view = await self.subjects.register_enterprise(c.RegisterEnterprise(
            request.idempotency_key, e.credit_code, e.name, e.industry_code, e.region_code, e.park,
            SIZE.get(e.size_class, ""), e.land_held.value or "0"))
        return pb.RegisterEnterpriseResponse(enterprise=enterprise_pb(view))

    async def GetEnterprise(self, request, context):
        return pb.GetEnterpriseResponse(enterprise=enterprise_pb(await self.subjects.enterprise(request.credit_code)))

    async def ListEnterprises(self, request, context):
        found = await self.subjects.enterprises(c.EnterpriseFilter(
            request.region_code, request.industry_code, request.park, SIZE.get(request.size_class, ""),
            STATUS.get(request.status, ""), request.name_contains), _page(request.page))
        return pb.ListEnterprisesResponse(enterprises=[enterprise_pb(v) for v in found.items],
                                          page=_page_pb(found))

    async def SetEnterpriseStatus(self, request, context):
        view = await self.subjects.set_enterprise_status(c.SetEnterpriseStatus(
            request.idempotency_key, request.credit_code, STATUS.get(request.status, ""), request.reason))
        return pb.SetEnterpriseStatusResponse(enterprise=enterprise_pb(view))

    async def RegisterAgency(self, request, context):
        a = request.agency
        view = await self.subjects.register_agency(c.RegisterAgency(
            request.idempotency_key, a.agency_id, a.name, a.region_code,
            tuple(ROLE.get(r, "unknown") for r in a.roles)))
        return pb.RegisterAgencyResponse(agency=agency_pb(view))

    async def GetAgency(self, request, context):
        return pb.GetAgencyResponse(agency=agency_pb(await self.subjects.agency(request.agency_id)))

    async def ListAgencies(self, request, context):
        found = await self.subjects.agencies(ROLE.get(request.role, ""), _page(request.page))
        return pb.ListAgenciesResponse(agencies=[agency_pb(v) for v in found.items], page=_page_pb(found))

    # ------------------------------------------------------------ catalogue
    async def DefineResourceKind(self, request, context):
        k = request.kind
        view = await self.catalogue.define_kind(c.DefineResourceKind(
            request.idempotency_key, k.code, k.name, k.unit, k.fungible, tuple(k.attribute_names)))
        return pb.DefineResourceKindResponse(kind=pb.ResourceKind(
            code=view.code, name=view.name, unit=view.unit, fungible=view.fungible,
            attribute_names=list(view.attribute_names)))

    async def ListResourceKinds(self, request, context):
        return pb.ListResourceKindsResponse(kinds=[
            pb.ResourceKind(code=k.code, name=k.name, unit=k.unit, fungible=k.fungible,
                            attribute_names=list(k.attribute_names)) for k in await self.catalogue.kinds()])

    async def RegisterResource(self, request, context):
        r = request.resource
        view = await self.catalogue.register(c.RegisterResource(
            request.idempotency_key, r.resource_id, r.kind, r.name, r.region_code, r.park, r.quantity.value,
            r.quantity.unit, MODE.get(r.allocation_mode, ""), r.controller_agency_id, dict(r.attributes),
            r.standard_land))
        return pb.RegisterResourceResponse(resource=resource_pb(view))

    async def GetResource(self, request, context):
        return pb.GetResourceResponse(resource=resource_pb(await self.catalogue.resource(request.resource_id)))

    async def ListResources(self, request, context):
        found = await self.catalogue.resources(c.ResourceFilter(
            request.kind, request.region_code, MODE.get(request.allocation_mode, ""),
            RSTATUS.get(request.status, ""), request.standard_land_only, request.park), _page(request.page))
        return pb.ListResourcesResponse(resources=[resource_pb(v) for v in found.items], page=_page_pb(found))

    async def TransitionResource(self, request, context):
        view = await self.catalogue.transition(c.TransitionResource(
            request.idempotency_key, request.resource_id, RSTATUS.get(request.to_status, ""), request.reason,
            request.holder))
        return pb.TransitionResourceResponse(resource=resource_pb(view))

    async def GetCatalogueTotals(self, request, context):
        totals = await self.catalogue.totals(request.region_code)
        return pb.GetCatalogueTotalsResponse(totals=[
            pb.CatalogueTotal(kind=t.kind, region_code=t.region_code, allocation_mode=MODE_PB[t.allocation_mode],
                              status=RSTATUS_PB[t.status], items=t.items, quantity=quantity(t.quantity, t.unit))
            for t in totals])

    # ------------------------------------------------------------ ledger
    async def DefineInstrument(self, request, context):
        i = request.instrument
        view = await self.ledger.define_instrument(c.DefineInstrument(
            request.idempotency_key, i.code, i.kind, i.unit, i.scale, i.pollutant, i.vintage, i.region_code,
            i.issuer_agency_id))
        return pb.DefineInstrumentResponse(instrument=instrument_pb(view))

    async def GetInstrument(self, request, context):
        return pb.GetInstrumentResponse(instrument=instrument_pb(await self.ledger.instrument(request.code)))

    async def ListInstruments(self, request, context):
        return pb.ListInstrumentsResponse(instruments=[instrument_pb(v)
                                                       for v in await self.ledger.instruments(request.kind)])

    async def OpenAccount(self, request, context):
        view = await self.ledger.open_account(c.OpenAccount(request.idempotency_key, request.holder,
                                                            request.instrument))
        return pb.OpenAccountResponse(account=account_pb(view))

    async def GetAccount(self, request, context):
        return pb.GetAccountResponse(account=account_pb(await self.ledger.account(request.account_id)))

    async def ListAccounts(self, request, context):
        found = await self.ledger.accounts(request.holder, request.instrument, _page(request.page))
        return pb.ListAccountsResponse(accounts=[account_pb(v) for v in found.items], page=_page_pb(found))

    async def Issue(self, request, context):
        operation = await self.ledger.issue(c.Issue(
            request.idempotency_key, request.issuer_agency_id, request.to_account_id, request.quantity.value,
            request.memo, request.quantity.unit))
        return pb.IssueResponse(operation=operation_pb(operation))

    async def Transfer(self, request, context):
        operation = await self.ledger.transfer(c.Transfer(
            request.idempotency_key,
            tuple(c.TransferLegCommand(leg.from_account_id, leg.to_account_id, leg.quantity.value, leg.from_hold_id,
                                       leg.quantity.unit) for leg in request.legs),
            request.memo, request.reference))
        return pb.TransferResponse(operation=operation_pb(operation))

    async def CreateHold(self, request, context):
        try:
            deadline = from_timestamp(request.deadline)
        except (ValueError, OverflowError):
            raise InvalidArgument.field("deadline", "is not a representable time") from None
        if deadline is None:
            raise InvalidArgument.field("deadline", "required")
        result = await self.ledger.create_hold(c.CreateHold(
            request.idempotency_key, request.account_id, request.quantity.value, deadline, request.purpose,
            request.quantity.unit, request.partial))
        return pb.CreateHoldResponse(hold=hold_pb(result.hold), operation=operation_pb(result.operation))

    async def PostHold(self, request, context):
        result = await self.ledger.post_hold(c.PostHold(request.idempotency_key, request.hold_id,
                                                        request.to_account_id, request.quantity.value,
                                                        request.quantity.unit))
        return pb.PostHoldResponse(hold=hold_pb(result.hold), operation=operation_pb(result.operation))

    async def VoidHold(self, request, context):
        result = await self.ledger.void_hold(c.VoidHold(request.idempotency_key, request.hold_id, request.reason,
                                                        request.quantity.value, request.quantity.unit))
        return pb.VoidHoldResponse(hold=hold_pb(result.hold), operation=operation_pb(result.operation))

    async def IncreaseHold(self, request, context):
        result = await self.ledger.increase_hold(c.IncreaseHold(request.idempotency_key, request.hold_id,
                                                                request.quantity.value, request.quantity.unit))
        return pb.IncreaseHoldResponse(hold=hold_pb(result.hold), operation=operation_pb(result.operation))

    async def GetHold(self, request, context):
        return pb.GetHoldResponse(hold=hold_pb(await self.ledger.hold(request.hold_id)))

    async def ListHolds(self, request, context):
        found = await self.ledger.holds(request.purpose_prefix, request.pending_only, _page(request.page))
        return pb.ListHoldsResponse(holds=[hold_pb(h) for h in found.items], page=_page_pb(found))

    async def Retire(self, request, context):
        operation = await self.ledger.retire(c.Retire(request.idempotency_key, request.account_id,
                                                      request.quantity.value, request.reason, request.quantity.unit))
        return pb.RetireResponse(operation=operation_pb(operation))

    async def GetAccountHistory(self, request, context):
        found = await self.ledger.history(request.account_id, _page(request.page))
        return pb.GetAccountHistoryResponse(operations=[operation_pb(o) for o in found.items], page=_page_pb(found))

    # ------------------------------------------------------------ settlement money
    async def RequestCashMovement(self, request, context):
        view = await self.cash.request(c.RequestCashMovement(
            request.idempotency_key, CASH_KIND.get(request.kind, ""), request.account_id, request.amount.fen,
            request.bank_reference, request.amount.currency))
        return pb.RequestCashMovementResponse(movement=cash_movement_pb(view))

    async def ApproveCashMovement(self, request, context):
        view = await self.cash.approve(c.ApproveCashMovement(request.idempotency_key, request.movement_id))
        return pb.ApproveCashMovementResponse(movement=cash_movement_pb(view))

    async def RejectCashMovement(self, request, context):
        view = await self.cash.reject(c.RejectCashMovement(request.idempotency_key, request.movement_id,
                                                           request.reason))
        return pb.RejectCashMovementResponse(movement=cash_movement_pb(view))

    async def GetCashMovement(self, request, context):
        return pb.GetCashMovementResponse(movement=cash_movement_pb(await self.cash.movement(request.movement_id)))

    async def ListCashMovements(self, request, context):
        found = await self.cash.movements(CASH_STATE.get(request.state, ""), request.account_id,
                                          _page(request.page))
        return pb.ListCashMovementsResponse(movements=[cash_movement_pb(v) for v in found.items],
                                            page=_page_pb(found))

    # ------------------------------------------------------------ audit
    async def VerifyAuditJournal(self, request, context):
        result = await self.audit.verify()
        return pb.VerifyAuditJournalResponse(intact=result.intact, entries_checked=result.entries_checked,
                                             first_broken_sequence=result.first_broken_sequence,
                                             problem=result.problem)

    async def ListAuditEntries(self, request, context):
        found = await self.audit.entries(request.subject, _page(request.page))
        entries = [pb.AuditEntry(sequence=e.sequence, previous_hash=e.previous_hash, entry_hash=e.entry_hash,
                                 actor=e.actor, action=e.action, subject=e.subject, payload_digest=e.payload_digest,
                                 at=timestamp(e.at)) for e in found.items]
        return pb.ListAuditEntriesResponse(entries=entries, page=common_pb2.PageResponse(
            next_page_token=page_token(found.next_after)))


def _page_pb(found):
    return common_pb2.PageResponse(next_page_token=page_token(found.next_after), total_size=found.total)


def enterprise_pb(v: EnterpriseView) -> pb.Enterprise:
    return pb.Enterprise(credit_code=v.credit_code, name=v.name, industry_code=v.industry_code,
                         region_code=v.region_code, park=v.park, size_class=SIZE_PB[v.size_class],
                         land_held=quantity(v.land_held_mu, "亩"), status=STATUS_PB[v.status],
                         registered_at=timestamp(v.registered_at))


def agency_pb(v: AgencyView) -> pb.Agency:
    return pb.Agency(agency_id=v.agency_id, name=v.name, region_code=v.region_code,
                     roles=[ROLE_PB[r] for r in v.roles], status=STATUS_PB[v.status])


def resource_pb(v: ResourceView) -> pb.Resource:
    return pb.Resource(resource_id=v.resource_id, kind=v.kind, name=v.name, region_code=v.region_code, park=v.park,
                       quantity=quantity(v.quantity, v.unit), allocation_mode=MODE_PB[v.allocation_mode],
                       status=RSTATUS_PB[v.status], controller_agency_id=v.controller_agency_id,
                       attributes=v.attributes, standard_land=v.standard_land,
                       registered_at=timestamp(v.registered_at), updated_at=timestamp(v.updated_at), holder=v.holder)


def instrument_pb(v: InstrumentView) -> pb.Instrument:
    return pb.Instrument(code=v.code, kind=v.kind, pollutant=v.pollutant, vintage=v.vintage,
                         region_code=v.region_code, unit=v.unit, scale=v.scale, issued=quantity(v.issued, v.unit),
                         retired=quantity(v.retired, v.unit), outstanding=quantity(v.outstanding, v.unit),
                         issuer_agency_id=v.issuer_agency_id)


def cash_movement_pb(v: CashMovementView) -> pb.CashMovement:
    return pb.CashMovement(movement_id=v.movement_id, kind=CASH_KIND_PB[v.kind], account_id=v.account_id,
                           amount=common_pb2.Money(fen=v.amount_fen, currency="CNY"),
                           bank_reference=v.bank_reference, state=CASH_STATE_PB[v.state],
                           requested_by=v.requested_by, decided_by=v.decided_by, operation_id=v.operation_id,
                           requested_at=timestamp(v.requested_at), decided_at=timestamp(v.decided_at),
                           reason=v.reason)


def account_pb(v: AccountView) -> pb.Account:
    return pb.Account(account_id=v.account_id, holder=v.holder, instrument=v.instrument,
                      balance=quantity(v.balance, v.unit), held=quantity(v.held, v.unit),
                      available=quantity(v.available, v.unit), opened_at=timestamp(v.opened_at))


def hold_pb(v: HoldView) -> pb.Hold:
    return pb.Hold(hold_id=v.hold_id, account_id=v.account_id, quantity=quantity(v.quantity, v.unit),
                   posted=quantity(v.posted, v.unit), status=HSTATUS_PB[v.status], deadline=timestamp(v.deadline),
                   purpose=v.purpose, created_at=timestamp(v.created_at), resolved_at=timestamp(v.resolved_at),
                   partial=v.partial, released=quantity(v.released, v.unit))


def operation_pb(v: OperationView) -> pb.LedgerOperation:
    return pb.LedgerOperation(
        operation_id=v.operation_id, type=v.type, memo=v.memo, actor=v.actor, at=timestamp(v.at),
        reference=v.reference,
        postings=[pb.Posting(account_id=p.account_id, instrument=p.instrument,
                             balance_delta=quantity(p.balance_delta, p.unit), held_delta=quantity(p.held_delta, p.unit),
                             balance_after=quantity(p.balance_after, p.unit),
                             counterparty_account_id=p.counterparty_account_id, hold_id=p.hold_id)
                  for p in v.postings])


def register(server: grpc.aio.Server, servicer: RegistryServicer) -> None:
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)
