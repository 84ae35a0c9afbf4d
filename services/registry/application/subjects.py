"""Use cases for market subjects: enterprises (keyed by credit code) and agencies."""

from __future__ import annotations

from decimal import Decimal

from services.common.authz import Access
from services.common.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, require
from services.common.events.envelope import Event
from services.common.uow import UnitOfWork
from services.registry.application import commands as c
from services.registry.application.guards import require_key
from services.registry.application.ports import RepositoryFactory
from services.registry.application.views import AgencyView, EnterpriseView, Page, PageOf
from services.registry.domain import classification, credit_code
from services.registry.domain.numbers import parse_decimal, to_scaled

SIZE_CLASSES = ("above", "below")
STATUSES = ("active", "suspended", "deregistered")
AGENCY_ROLES = ("grantor", "trading_centre", "regulator", "issuer", "data_provider", "evaluator", "settlement")
# 亩 held by one enterprise, kept in millionths in a BIGINT: far above any real holding, far below overflow.
MAX_LAND_MU = 10**9


class Subjects:
    def __init__(self, uow: UnitOfWork, repositories: RepositoryFactory, access: Access) -> None:
        self.uow = uow
        self.repositories = repositories
        self.access = access

    async def register_enterprise(self, cmd: c.RegisterEnterprise) -> EnterpriseView:
        self.access.require("RegisterEnterprise")
        require_key(cmd)
        land = _enterprise_violations(cmd)
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "register_enterprise", EnterpriseView)) is not None:
                return first
            repo = self.repositories(tx.session)
            if await repo.enterprise(cmd.credit_code):
                raise AlreadyExists(f"enterprise {cmd.credit_code} is already registered")
            view = EnterpriseView(cmd.credit_code, cmd.name.strip(), cmd.industry_code, cmd.region_code,
                                  cmd.park.strip(), cmd.size_class, land, "active", tx.now)
            await repo.add_enterprise(view)
            await tx.emit(Event("registry.enterprise.registered", "yaosu.registry.enterprise.registered",
                                view.credit_code, _enterprise_data(view)))
            await tx.audit("enterprise.register", view.credit_code, _enterprise_data(view))
            await tx.remember(cmd, "register_enterprise", view, EnterpriseView)
            await tx.commit()
            return view

    async def set_enterprise_status(self, cmd: c.SetEnterpriseStatus) -> EnterpriseView:
        self.access.require("SetEnterpriseStatus")
        require_key(cmd)
        if cmd.status not in STATUSES:
            require([FieldViolation("status", f"one of {', '.join(STATUSES)}")])
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "set_enterprise_status", EnterpriseView)) is not None:
                return first
            repo = self.repositories(tx.session)
            if not await repo.enterprise(cmd.credit_code):
                raise NotFound(f"enterprise {cmd.credit_code} not found")
            await repo.set_enterprise_status(cmd.credit_code, cmd.status)
            view = await repo.enterprise(cmd.credit_code)
            payload = {"credit_code": cmd.credit_code, "status": cmd.status, "reason": cmd.reason}
            await tx.emit(Event("registry.enterprise.status_changed", "yaosu.registry.enterprise.status_changed",
                                cmd.credit_code, payload))
            await tx.audit("enterprise.status", cmd.credit_code, payload)
            await tx.remember(cmd, "set_enterprise_status", view, EnterpriseView)
            await tx.commit()
            return view

    async def enterprise(self, code: str) -> EnterpriseView:
        self.access.require("GetEnterprise")
        async with self.uow.read() as tx:
            found = await self.repositories(tx.session).enterprise(code)
        if not found:
            raise NotFound(f"enterprise {code} not found")
        return found

    async def enterprises(self, where: c.EnterpriseFilter, page: Page) -> PageOf[EnterpriseView]:
        self.access.require("ListEnterprises")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).enterprises(where, page)

    async def register_agency(self, cmd: c.RegisterAgency) -> AgencyView:
        self.access.require("RegisterAgency")
        require_key(cmd)
        violations = []
        if not cmd.agency_id.strip() or len(cmd.agency_id) > 64:
            violations.append(FieldViolation("agency.agency_id", "required, at most 64 characters"))
        if not cmd.name.strip():
            violations.append(FieldViolation("agency.name", "required"))
        if (problem := classification.region_problem(cmd.region_code)) is not None:
            violations.append(FieldViolation("agency.region_code", problem))
        if not cmd.roles or any(role not in AGENCY_ROLES for role in cmd.roles):
            violations.append(FieldViolation("agency.roles", f"one or more of {', '.join(AGENCY_ROLES)}"))
        require(violations)
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "register_agency", AgencyView)) is not None:
                return first
            repo = self.repositories(tx.session)
            if await repo.agency(cmd.agency_id):
                raise AlreadyExists(f"agency {cmd.agency_id} is already registered")
            view = AgencyView(cmd.agency_id, cmd.name.strip(), cmd.region_code, tuple(sorted(set(cmd.roles))),
                              "active")
            await repo.add_agency(view)
            data = {"agency_id": view.agency_id, "name": view.name, "region_code": view.region_code,
                    "roles": list(view.roles)}
            await tx.emit(Event("registry.agency.registered", "yaosu.registry.agency.registered", view.agency_id,
                                data))
            await tx.audit("agency.register", view.agency_id, data)
            await tx.remember(cmd, "register_agency", view, AgencyView)
            await tx.commit()
            return view

    async def agency(self, agency_id: str) -> AgencyView:
        self.access.require("GetAgency")
        async with self.uow.read() as tx:
            found = await self.repositories(tx.session).agency(agency_id)
        if not found:
            raise NotFound(f"agency {agency_id} not found")
        return found

    async def agencies(self, role: str, page: Page) -> PageOf[AgencyView]:
        self.access.require("ListAgencies")
        async with self.uow.read() as tx:
            return await self.repositories(tx.session).agencies(role, page)


def _enterprise_violations(cmd: c.RegisterEnterprise) -> Decimal:
    violations = []
    if (problem := credit_code.problem(cmd.credit_code)) is not None:
        violations.append(FieldViolation("enterprise.credit_code", problem))
    if not cmd.name.strip():
        violations.append(FieldViolation("enterprise.name", "required"))
    if (problem := classification.industry_problem(cmd.industry_code)) is not None:
        violations.append(FieldViolation("enterprise.industry_code", problem))
    if (problem := classification.region_problem(cmd.region_code)) is not None:
        violations.append(FieldViolation("enterprise.region_code", problem))
    if cmd.size_class not in SIZE_CLASSES:
        violations.append(FieldViolation("enterprise.size_class", "规上 (ABOVE) or 规下 (BELOW)"))
    land = Decimal(0)
    try:
        land = parse_decimal(cmd.land_held_mu or "0", "enterprise.land_held.value")
        to_scaled(land, 6, "enterprise.land_held.value", maximum=MAX_LAND_MU * 10**6, positive=False)
    except InvalidArgument as refused:
        violations += refused.violations
    require(violations)
    return land


def _enterprise_data(view: EnterpriseView) -> dict:
    return {"credit_code": view.credit_code, "name": view.name, "industry_code": view.industry_code,
            "region_code": view.region_code, "park": view.park, "size_class": view.size_class,
            "land_held_mu": str(view.land_held_mu), "status": view.status}
