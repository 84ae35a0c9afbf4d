"""Use cases of the public-resource catalogue: kinds, items, lifecycle and the 资源底数 totals."""

from __future__ import annotations

import uuid
from decimal import Decimal

from services.common.authz import Access, Owner
from services.common.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, require
from services.common.events.envelope import Event
from services.common.uow import UnitOfWork
from services.registry.application import commands as c
from services.registry.application.guards import require_key
from services.registry.application.ports import LedgerObserver, RepositoryFactory
from services.registry.application.views import CatalogueTotalView, KindView, Page, PageOf, ResourceView
from services.registry.domain import classification
from services.registry.domain.catalogue import (
    AllocationMode,
    ResourceDraft,
    ResourceKind,
    ResourceStatus,
    check_transition,
)
from services.registry.domain.numbers import parse_decimal, to_scaled

# Catalogue quantities are kept in millionths of their unit in a BIGINT; an item is at most this much.
MAX_ITEM_QUANTITY = 10**12


class Catalogue:
    def __init__(self, uow: UnitOfWork, repositories: RepositoryFactory, observer: LedgerObserver,
                 access: Access) -> None:
        self.uow = uow
        self.repositories = repositories
        self.observer = observer
        self.access = access

    async def define_kind(self, cmd: c.DefineResourceKind) -> KindView:
        self.access.require("DefineResourceKind")
        require_key(cmd)
        kind = ResourceKind(cmd.code, cmd.name.strip(), cmd.unit.strip(), cmd.fungible, tuple(cmd.attribute_names))
        require(kind.violations())
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "define_kind", KindView)) is not None:
                return first
            repo = self.repositories(tx.session)
            if await repo.kind(kind.code):
                raise AlreadyExists(f"resource kind {kind.code} already exists")
            await repo.add_kind(kind)
            view = KindView(kind.code, kind.name, kind.unit, kind.fungible, kind.attribute_names)
            data = {"code": kind.code, "name": kind.name, "unit": kind.unit, "fungible": kind.fungible}
            await tx.emit(Event("registry.catalogue.kind_defined", "yaosu.registry.catalogue.kind_defined",
                                kind.code, data))
            await tx.audit("catalogue.define_kind", kind.code, data)
            await tx.remember(cmd, "define_kind", view, KindView)
            await tx.commit()
            return view

    async def ensure_standard_kinds(self, kinds: tuple[ResourceKind, ...]) -> None:
        async with self.uow() as tx:
            repo = self.repositories(tx.session)
            missing = [k for k in kinds if await repo.kind(k.code) is None]
            for kind in missing:
                await repo.add_kind(kind)
                await tx.audit("catalogue.define_kind", kind.code, {"code": kind.code, "standard": True})
            await tx.commit()

    async def kinds(self) -> list[KindView]:
        self.access.require("ListResourceKinds")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).kinds()

    async def register(self, cmd: c.RegisterResource) -> ResourceView:
        """An agency registers an item it controls (the controller named is itself)."""
        self.access.require("RegisterResource", Owner.agency(cmd.controller_agency_id))
        require_key(cmd)
        violations: list[FieldViolation] = []
        if (problem := classification.region_problem(cmd.region_code)) is not None:
            violations.append(FieldViolation("resource.region_code", problem))
        try:
            mode = AllocationMode(cmd.allocation_mode)
        except ValueError:
            violations.append(FieldViolation("resource.allocation_mode", "market, guided or administrative"))
            mode = AllocationMode.MARKET
        quantity, refused = _quantity(cmd.quantity)
        violations += refused
        if cmd.resource_id and (len(cmd.resource_id) > 64 or not cmd.resource_id.replace("-", "").isalnum()):
            violations.append(FieldViolation("resource.resource_id", "letters, digits and -, at most 64"))
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "register_resource", ResourceView)) is not None:
                return first
            repo = self.repositories(tx.session)
            kind = await repo.kind(cmd.kind)
            if kind is None:
                violations.append(FieldViolation("resource.kind", f"unknown kind {cmd.kind!r}"))
                require(violations)
            if cmd.unit and cmd.unit != kind.unit:
                violations.append(FieldViolation("resource.quantity.unit", f"kind {kind.code} is measured in {kind.unit}"))
            if not await repo.agency(cmd.controller_agency_id):
                violations.append(FieldViolation("resource.controller_agency_id", "unknown agency"))
            draft = ResourceDraft(kind, cmd.name, cmd.region_code, cmd.park, quantity, mode,
                                  cmd.controller_agency_id, dict(cmd.attributes), cmd.standard_land)
            require(violations + draft.violations())
            resource_id = cmd.resource_id or f"R-{cmd.region_code}-{uuid.uuid4().hex[:12].upper()}"
            if await repo.resource(resource_id):
                raise AlreadyExists(f"resource {resource_id} already exists")
            view = ResourceView(resource_id, kind.code, draft.name.strip(), draft.region_code, draft.park.strip(),
                                quantity, kind.unit, mode.value, ResourceStatus.REGISTERED.value,
                                draft.controller_agency_id, dict(draft.attributes), draft.standard_land, "",
                                tx.now, tx.now)
            await repo.add_resource(view)
            data = _resource_data(view)
            await tx.emit(Event("registry.catalogue.registered", "yaosu.registry.catalogue.registered",
                                resource_id, data))
            await tx.audit("catalogue.register", resource_id, data)
            await tx.remember(cmd, "register_resource", view, ResourceView)
            await tx.commit()
        self.observer.catalogue_changed()
        return view

    async def transition(self, cmd: c.TransitionResource) -> ResourceView:
        self.access.scope("TransitionResource")
        require_key(cmd)
        try:
            target = ResourceStatus(cmd.to_status)
        except ValueError:
            require([FieldViolation("to_status", "one of " + ", ".join(s.value for s in ResourceStatus))])
        async with self.uow() as tx:
            repo = self.repositories(tx.session)
            current = await repo.resource(cmd.resource_id, for_update=True)
            if current is None:
                raise NotFound(f"resource {cmd.resource_id} not found")
            # The controlling agency moves its own items; the trading service moves any it sells.
            self.access.require("TransitionResource", Owner.agency(current.controller_agency_id))
            if (first := await tx.replay(cmd, "transition_resource", ResourceView)) is not None:
                return first
            check_transition(ResourceStatus(current.status), target, cmd.holder)
            holder = cmd.holder if target is ResourceStatus.ALLOCATED else current.holder
            await repo.set_resource_status(cmd.resource_id, target, holder, tx.now)
            view = await repo.resource(cmd.resource_id)
            data = {"resource_id": cmd.resource_id, "from": current.status, "to": target.value,
                    "reason": cmd.reason, "holder": holder, "kind": current.kind}
            await tx.emit(Event(f"registry.catalogue.{target.value}", f"yaosu.registry.catalogue.{target.value}",
                                cmd.resource_id, data))
            await tx.audit("catalogue.transition", cmd.resource_id, data)
            await tx.remember(cmd, "transition_resource", view, ResourceView)
            await tx.commit()
        self.observer.catalogue_changed()
        return view

    async def resource(self, resource_id: str) -> ResourceView:
        self.access.require("GetResource")
        async with self.uow.read() as tx:
            found = await self.repositories(tx.session).resource(resource_id)
        if found is None:
            raise NotFound(f"resource {resource_id} not found")
        return found

    async def resources(self, where: c.ResourceFilter, page: Page) -> PageOf[ResourceView]:
        self.access.require("ListResources")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).resources(where, page)

    async def totals(self, region_prefix: str) -> list[CatalogueTotalView]:
        self.access.require("GetCatalogueTotals")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).catalogue_totals(region_prefix)

    async def counts(self) -> list[tuple[str, str, int]]:
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).count_resources_by_kind_status()


def _quantity(text: str) -> tuple[Decimal, list[FieldViolation]]:
    """The item's quantity, or the violations of its text (with a stand-in the draft will not refuse again:
    zero and below are left to the draft's own check)."""
    field = "resource.quantity.value"
    try:
        quantity = parse_decimal(text, field)
        if quantity > 0:
            to_scaled(quantity, 6, field, maximum=MAX_ITEM_QUANTITY * 10**6)
        return quantity, []
    except InvalidArgument as refused:
        return Decimal(1), refused.violations


def _resource_data(view: ResourceView) -> dict:
    return {"resource_id": view.resource_id, "kind": view.kind, "name": view.name, "region_code": view.region_code,
            "park": view.park, "quantity": str(view.quantity), "unit": view.unit,
            "allocation_mode": view.allocation_mode, "status": view.status, "standard_land": view.standard_land,
            "attributes": view.attributes, "controller_agency_id": view.controller_agency_id}
