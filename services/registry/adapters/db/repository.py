"""SQL access of the registry: rows in, views and domain states out. Used inside one transaction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, insert, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registry.adapters.db.tables import (
    MICRO,
    AccountRow,
    AgencyRow,
    CashMovementRow,
    EnterpriseRow,
    HoldRow,
    InstrumentRow,
    OperationRow,
    PostingRow,
    ResourceKindRow,
    ResourceRow,
)
from services.registry.application.commands import EnterpriseFilter, ResourceFilter
from services.registry.application.views import (
    AccountView,
    AgencyView,
    CashMovementView,
    CatalogueTotalView,
    EnterpriseView,
    HoldView,
    InstrumentView,
    KindView,
    OperationView,
    Page,
    PageOf,
    PostingView,
    ResourceView,
)
from services.registry.domain.catalogue import ResourceKind, ResourceStatus
from services.registry.domain.ledger import AccountState, HoldState, HoldStatus, InstrumentSpec, Posting, to_decimal


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def micro(value: Decimal) -> int:
    return int(value.scaleb(MICRO))


def from_micro(value: int) -> Decimal:
    return Decimal(value).scaleb(-MICRO).normalize()


class RegistryRepository:
    def __init__(self, session: AsyncSession, *, lock_rows: bool) -> None:
        self.session = session
        self.lock_rows = lock_rows  # SELECT … FOR UPDATE on PostgreSQL; SQLite's write lock covers it

    def _for_update(self, statement):
        return statement.with_for_update() if self.lock_rows else statement

    # ------------------------------------------------------------ enterprises and agencies
    async def enterprise(self, credit_code: str) -> EnterpriseView | None:
        row = await self.session.get(EnterpriseRow, credit_code)
        return _enterprise(row) if row else None

    async def add_enterprise(self, view: EnterpriseView) -> None:
        self.session.add(EnterpriseRow(
            credit_code=view.credit_code, name=view.name, industry_code=view.industry_code,
            region_code=view.region_code, park=view.park, size_class=view.size_class,
            land_held_micro=micro(view.land_held_mu), status=view.status, registered_at=view.registered_at))
        await self.session.flush()

    async def set_enterprise_status(self, credit_code: str, status: str) -> None:
        await self.session.execute(update(EnterpriseRow).where(EnterpriseRow.credit_code == credit_code)
                                   .values(status=status))

    async def enterprises(self, where: EnterpriseFilter, page: Page) -> PageOf[EnterpriseView]:
        conditions = []
        if where.region_prefix:
            conditions.append(EnterpriseRow.region_code.startswith(where.region_prefix))
        if where.industry_prefix:
            conditions.append(EnterpriseRow.industry_code.startswith(where.industry_prefix))
        if where.park:
            conditions.append(EnterpriseRow.park == where.park)
        if where.size_class:
            conditions.append(EnterpriseRow.size_class == where.size_class)
        if where.status:
            conditions.append(EnterpriseRow.status == where.status)
        if where.name_contains:
            conditions.append(EnterpriseRow.name.contains(where.name_contains))
        return await self._page(EnterpriseRow, EnterpriseRow.credit_code, conditions, page, _enterprise)

    async def agency(self, agency_id: str) -> AgencyView | None:
        row = await self.session.get(AgencyRow, agency_id)
        return _agency(row) if row else None

    async def add_agency(self, view: AgencyView) -> None:
        self.session.add(AgencyRow(agency_id=view.agency_id, name=view.name, region_code=view.region_code,
                                   roles=",".join(view.roles), status=view.status))
        await self.session.flush()

    async def agencies(self, role: str, page: Page) -> PageOf[AgencyView]:
        conditions = [or_(AgencyRow.roles == role, AgencyRow.roles.startswith(role + ","),
                          AgencyRow.roles.endswith("," + role), AgencyRow.roles.contains("," + role + ","))] \
            if role else []
        return await self._page(AgencyRow, AgencyRow.agency_id, conditions, page, _agency)

    # ------------------------------------------------------------ catalogue
    async def kind(self, code: str) -> ResourceKind | None:
        row = await self.session.get(ResourceKindRow, code)
        return _kind(row) if row else None

    async def kinds(self) -> list[KindView]:
        rows = (await self.session.execute(select(ResourceKindRow).order_by(ResourceKindRow.code))).scalars().all()
        return [KindView(r.code, r.name, r.unit, r.fungible, _split(r.attribute_names)) for r in rows]

    async def add_kind(self, kind: ResourceKind) -> None:
        self.session.add(ResourceKindRow(code=kind.code, name=kind.name, unit=kind.unit, fungible=kind.fungible,
                                         attribute_names=",".join(kind.attribute_names)))
        await self.session.flush()

    async def resource(self, resource_id: str, *, for_update: bool = False) -> ResourceView | None:
        statement = select(ResourceRow, ResourceKindRow.unit).join(
            ResourceKindRow, ResourceKindRow.code == ResourceRow.kind).where(ResourceRow.resource_id == resource_id)
        found = (await self.session.execute(self._for_update(statement) if for_update else statement)).first()
        return _resource(*found) if found else None

    async def add_resource(self, view: ResourceView) -> None:
        self.session.add(ResourceRow(
            resource_id=view.resource_id, kind=view.kind, name=view.name, region_code=view.region_code,
            park=view.park, quantity_micro=micro(view.quantity), allocation_mode=view.allocation_mode,
            status=view.status, controller_agency_id=view.controller_agency_id,
            attributes=json.dumps(view.attributes, ensure_ascii=False, sort_keys=True),
            standard_land=view.standard_land, holder=view.holder, registered_at=view.registered_at,
            updated_at=view.updated_at))
        await self.session.flush()

    async def set_resource_status(self, resource_id: str, status: ResourceStatus, holder: str,
                                  at: datetime) -> None:
        await self.session.execute(update(ResourceRow).where(ResourceRow.resource_id == resource_id)
                                   .values(status=status.value, holder=holder, updated_at=at))

    async def resources(self, where: ResourceFilter, page: Page) -> PageOf[ResourceView]:
        conditions = []
        if where.kind:
            conditions.append(ResourceRow.kind == where.kind)
        if where.region_prefix:
            conditions.append(ResourceRow.region_code.startswith(where.region_prefix))
        if where.allocation_mode:
            conditions.append(ResourceRow.allocation_mode == where.allocation_mode)
        if where.status:
            conditions.append(ResourceRow.status == where.status)
        if where.standard_land_only:
            conditions.append(ResourceRow.standard_land.is_(True))
        if where.park:
            conditions.append(ResourceRow.park == where.park)
        total = (await self.session.execute(select(func.count()).select_from(ResourceRow).where(*conditions))).one()
        statement = (select(ResourceRow, ResourceKindRow.unit)
                     .join(ResourceKindRow, ResourceKindRow.code == ResourceRow.kind)
                     .where(*conditions, ResourceRow.resource_id > page.after)
                     .order_by(ResourceRow.resource_id).limit(page.size + 1))
        rows = (await self.session.execute(statement)).all()
        items = [_resource(row, unit) for row, unit in rows[:page.size]]
        return PageOf(items, items[-1].resource_id if len(rows) > page.size else "", _scalar(total))

    async def catalogue_totals(self, region_prefix: str) -> list[CatalogueTotalView]:
        statement = (select(ResourceRow.kind, ResourceRow.region_code, ResourceRow.allocation_mode, ResourceRow.status,
                            func.count(), func.sum(ResourceRow.quantity_micro), ResourceKindRow.unit)
                     .join(ResourceKindRow, ResourceKindRow.code == ResourceRow.kind)
                     .group_by(ResourceRow.kind, ResourceRow.region_code, ResourceRow.allocation_mode,
                               ResourceRow.status, ResourceKindRow.unit)
                     .order_by(ResourceRow.kind, ResourceRow.region_code, ResourceRow.allocation_mode,
                               ResourceRow.status))
        if region_prefix:
            statement = statement.where(ResourceRow.region_code.startswith(region_prefix))
        rows = (await self.session.execute(statement)).all()
        return [CatalogueTotalView(k, r, m, s, n, from_micro(int(q or 0)), u) for k, r, m, s, n, q, u in rows]

    async def count_resources_by_kind_status(self) -> list[tuple[str, str, int]]:
        statement = select(ResourceRow.kind, ResourceRow.status, func.count()).group_by(
            ResourceRow.kind, ResourceRow.status)
        return [(k, s, n) for k, s, n in (await self.session.execute(statement)).all()]

    # ------------------------------------------------------------ ledger
    async def instrument(self, code: str) -> InstrumentSpec | None:
        row = await self.session.get(InstrumentRow, code)
        return _spec(row) if row else None

    async def instrument_view(self, code: str) -> InstrumentView | None:
        row = await self.session.get(InstrumentRow, code)
        return _instrument(row) if row else None

    async def instruments(self, kind: str) -> list[InstrumentView]:
        statement = select(InstrumentRow).order_by(InstrumentRow.code)
        if kind:
            statement = statement.where(InstrumentRow.kind == kind)
        return [_instrument(r) for r in (await self.session.execute(statement)).scalars().all()]

    async def add_instrument(self, spec: InstrumentSpec) -> None:
        self.session.add(InstrumentRow(code=spec.code, kind=spec.kind, pollutant=spec.pollutant, vintage=spec.vintage,
                                       region_code=spec.region_code, unit=spec.unit, scale=spec.scale,
                                       issued=0, retired=0, issuer_agency_id=spec.issuer_agency_id))
        await self.session.flush()

    async def issued(self, code: str) -> int:
        """The instrument's issued total (read under the ledger's single writer)."""
        return int((await self.session.execute(select(InstrumentRow.issued).where(InstrumentRow.code == code)))
                   .scalar_one())

    async def change_supply(self, code: str, *, issued: int = 0, retired: int = 0) -> None:
        await self.session.execute(update(InstrumentRow).where(InstrumentRow.code == code).values(
            issued=InstrumentRow.issued + issued, retired=InstrumentRow.retired + retired))

    async def account_states(self, account_ids: list[str]) -> dict[str, AccountState]:
        statement = select(AccountRow).where(AccountRow.account_id.in_(sorted(set(account_ids)))) \
            .order_by(AccountRow.account_id)
        rows = (await self.session.execute(self._for_update(statement))).scalars().all()
        return {r.account_id: AccountState(r.account_id, r.holder, r.instrument, r.balance, r.held, r.holder_kind)
                for r in rows}

    async def account_by_holder(self, holder: str, instrument: str) -> AccountView | None:
        statement = select(AccountRow, InstrumentRow).join(InstrumentRow, InstrumentRow.code == AccountRow.instrument) \
            .where(AccountRow.holder == holder, AccountRow.instrument == instrument)
        found = (await self.session.execute(statement)).first()
        return _account(*found) if found else None

    async def account(self, account_id: str) -> AccountView | None:
        statement = select(AccountRow, InstrumentRow).join(InstrumentRow, InstrumentRow.code == AccountRow.instrument) \
            .where(AccountRow.account_id == account_id)
        found = (await self.session.execute(statement)).first()
        return _account(*found) if found else None

    async def accounts(self, holder: str, instrument: str, page: Page, *, holder_kind: str = "") -> PageOf[AccountView]:
        conditions = []
        if holder:
            conditions.append(AccountRow.holder == holder)
        if holder_kind:
            conditions.append(AccountRow.holder_kind == holder_kind)
        if instrument:
            conditions.append(AccountRow.instrument == instrument)
        total = (await self.session.execute(select(func.count()).select_from(AccountRow).where(*conditions))).one()
        statement = (select(AccountRow, InstrumentRow).join(InstrumentRow, InstrumentRow.code == AccountRow.instrument)
                     .where(*conditions, AccountRow.account_id > page.after)
                     .order_by(AccountRow.account_id).limit(page.size + 1))
        rows = (await self.session.execute(statement)).all()
        items = [_account(a, i) for a, i in rows[:page.size]]
        return PageOf(items, items[-1].account_id if len(rows) > page.size else "", _scalar(total))

    async def add_account(self, account_id: str, holder: str, holder_kind: str, instrument: str,
                          at: datetime) -> None:
        self.session.add(AccountRow(account_id=account_id, holder=holder, holder_kind=holder_kind,
                                    instrument=instrument, balance=0, held=0, opened_at=at))
        await self.session.flush()

    async def holders(self, account_ids: set[str]) -> dict[str, tuple[str, str]]:
        """account id → (holder, holder kind)."""
        if not account_ids:
            return {}
        statement = select(AccountRow.account_id, AccountRow.holder, AccountRow.holder_kind).where(
            AccountRow.account_id.in_(sorted(account_ids)))
        return {a: (h, k) for a, h, k in (await self.session.execute(statement)).all()}

    async def hold_states(self, hold_ids: list[str]) -> dict[str, HoldState]:
        if not hold_ids:
            return {}
        statement = select(HoldRow).where(HoldRow.hold_id.in_(sorted(set(hold_ids))))
        rows = (await self.session.execute(self._for_update(statement))).scalars().all()
        return {r.hold_id: HoldState(r.hold_id, r.account_id, r.amount, r.posted, HoldStatus(r.status),
                                     _utc(r.deadline), r.partial, r.released) for r in rows}

    async def hold_records(self, hold_ids: list[str]) -> list[tuple[HoldState, str, datetime, datetime | None]]:
        """Holds with what a view shows beyond their state: (state, purpose, created_at, resolved_at)."""
        statement = select(HoldRow).where(HoldRow.hold_id.in_(sorted(set(hold_ids))))
        rows = (await self.session.execute(self._for_update(statement))).scalars().all()
        return [(HoldState(r.hold_id, r.account_id, r.amount, r.posted, HoldStatus(r.status), _utc(r.deadline),
                           r.partial, r.released), r.purpose, _utc(r.created_at), _utc(r.resolved_at)) for r in rows]

    async def hold(self, hold_id: str) -> HoldView | None:
        statement = select(HoldRow, InstrumentRow).join(AccountRow, AccountRow.account_id == HoldRow.account_id) \
            .join(InstrumentRow, InstrumentRow.code == AccountRow.instrument).where(HoldRow.hold_id == hold_id)
        found = (await self.session.execute(statement)).first()
        return _hold(*found) if found else None

    async def holds(self, purpose_prefix: str, pending_only: bool, page: Page) -> PageOf[HoldView]:
        conditions = [HoldRow.hold_id > page.after]
        if purpose_prefix:
            conditions.append(HoldRow.purpose.startswith(purpose_prefix, autoescape=True))
        if pending_only:
            conditions.append(HoldRow.status == HoldStatus.PENDING.value)
        base = select(HoldRow, InstrumentRow).join(AccountRow, AccountRow.account_id == HoldRow.account_id) \
            .join(InstrumentRow, InstrumentRow.code == AccountRow.instrument)
        total = (await self.session.execute(select(func.count()).select_from(HoldRow).where(*conditions[1:]))).one()
        rows = (await self.session.execute(base.where(*conditions).order_by(HoldRow.hold_id)
                                           .limit(page.size + 1))).all()
        items = [_hold(*row) for row in rows[:page.size]]
        return PageOf(items, rows[page.size - 1][0].hold_id if len(rows) > page.size else "", _scalar(total))

    async def due_hold_ids(self, now: datetime, limit: int) -> list[str]:
        statement = select(HoldRow.hold_id).where(HoldRow.status == HoldStatus.PENDING.value,
                                                  HoldRow.deadline <= now).order_by(HoldRow.deadline).limit(limit)
        return list((await self.session.execute(statement)).scalars().all())

    async def add_hold(self, hold_id: str, account_id: str, amount: int, deadline: datetime, purpose: str,
                       at: datetime, *, partial: bool = False) -> None:
        self.session.add(HoldRow(hold_id=hold_id, account_id=account_id, amount=amount, posted=0, released=0,
                                 partial=partial, status=HoldStatus.PENDING.value, deadline=deadline, purpose=purpose,
                                 created_at=at))
        await self.session.flush()

    async def save_hold(self, hold: HoldState, at: datetime) -> None:
        """Store a hold's amounts and status after an operation (resolved_at once it is no longer pending)."""
        values = dict(amount=hold.amount, posted=hold.posted, released=hold.released, status=hold.status.value)
        if hold.status is not HoldStatus.PENDING:
            values["resolved_at"] = at
        await self.session.execute(update(HoldRow).where(HoldRow.hold_id == hold.hold_id).values(**values))

    async def record_operation(self, operation_id: str, type_: str, memo: str, actor: str, reference: str,
                               at: datetime, postings: list[Posting], accounts: dict[str, AccountState],
                               specs: dict[str, InstrumentSpec]) -> OperationView:
        """Persist the postings and the accounts' new balances (accounts already hold the applied state).

        Core inserts, not ORM objects: this is the hot path of every ledger operation.
        """
        await self.session.execute(insert(OperationRow).values(
            operation_id=operation_id, type=type_, memo=memo, actor=actor, reference=reference, at=at))
        running = {a: s.balance - sum(p.balance_delta for p in postings if p.account_id == a)
                   for a, s in accounts.items()}
        rows, views = [], []
        for posting in postings:
            running[posting.account_id] += posting.balance_delta
            rows.append(dict(operation_id=operation_id, account_id=posting.account_id,
                             balance_delta=posting.balance_delta, held_delta=posting.held_delta,
                             balance_after=running[posting.account_id],
                             counterparty_account_id=posting.counterparty_account_id, hold_id=posting.hold_id))
            spec = specs[accounts[posting.account_id].instrument]
            views.append(PostingView(posting.account_id, spec.code, spec.unit,
                                     to_decimal(posting.balance_delta, spec.scale),
                                     to_decimal(posting.held_delta, spec.scale),
                                     to_decimal(running[posting.account_id], spec.scale),
                                     posting.counterparty_account_id, posting.hold_id))
        await self.session.execute(insert(PostingRow), rows)
        for account_id in {p.account_id for p in postings}:
            state = accounts[account_id]
            await self.session.execute(update(AccountRow).where(AccountRow.account_id == account_id)
                                       .values(balance=state.balance, held=state.held))
        return OperationView(operation_id, type_, memo, actor, at, reference, tuple(views))

    async def operation(self, operation_id: str) -> OperationView:
        op = await self.session.get(OperationRow, operation_id)
        postings = (await self.session.execute(
            select(PostingRow, InstrumentRow).join(AccountRow, AccountRow.account_id == PostingRow.account_id)
            .join(InstrumentRow, InstrumentRow.code == AccountRow.instrument)
            .where(PostingRow.operation_id == operation_id).order_by(PostingRow.id))).all()
        return _operation(op, [_posting(p, i) for p, i in postings])

    async def history(self, account_id: str, page: Page) -> PageOf[OperationView]:
        after = int(page.after) if page.after.isdigit() else 0
        conditions = [PostingRow.account_id == account_id]
        total = (await self.session.execute(select(func.count(func.distinct(PostingRow.operation_id)))
                                         .where(*conditions))).one()
        statement = (select(PostingRow.operation_id, func.min(PostingRow.id).label("first"))
                     .where(*conditions).group_by(PostingRow.operation_id)
                     .having(func.min(PostingRow.id) > after).order_by("first").limit(page.size + 1))
        found = (await self.session.execute(statement)).all()
        items = [await self.operation(op_id) for op_id, _ in found[:page.size]]
        next_after = str(found[page.size - 1][1]) if len(found) > page.size else ""
        return PageOf(items, next_after, _scalar(total))

    async def supply_check(self) -> list[tuple[str, int, int]]:
        """(instrument, issued − retired, Σ balances) for every instrument: the conservation check."""
        sums = dict((await self.session.execute(select(AccountRow.instrument, func.sum(AccountRow.balance))
                                             .group_by(AccountRow.instrument))).all())
        rows = (await self.session.execute(select(InstrumentRow))).scalars().all()
        return [(r.code, r.issued - r.retired, int(sums.get(r.code) or 0)) for r in rows]

    # ------------------------------------------------------------ settlement money
    async def add_cash_movement(self, view: CashMovementView) -> None:
        self.session.add(CashMovementRow(
            movement_id=view.movement_id, kind=view.kind, account_id=view.account_id, amount=view.amount_fen,
            bank_agency_id=view.bank_agency_id, bank_reference=view.bank_reference, state=view.state,
            requested_by=view.requested_by, requested_at=view.requested_at))
        await self.session.flush()

    async def cash_movement(self, movement_id: str, *, for_update: bool = False) -> CashMovementView | None:
        statement = select(CashMovementRow).where(CashMovementRow.movement_id == movement_id)
        row = (await self.session.execute(self._for_update(statement) if for_update else statement)).scalar()
        return _cash_movement(row) if row else None

    async def live_cash_movement(self, bank_agency_id: str, bank_reference: str) -> str:
        """The pending or executed movement already recorded for this bank transfer, or ""."""
        statement = select(CashMovementRow.movement_id).where(
            CashMovementRow.bank_agency_id == bank_agency_id, CashMovementRow.bank_reference == bank_reference,
            CashMovementRow.state != "rejected").limit(1)
        return (await self.session.execute(statement)).scalar() or ""

    async def decide_cash_movement(self, movement_id: str, state: str, decided_by: str, at: datetime,
                                   operation_id: str = "", reason: str = "") -> None:
        await self.session.execute(update(CashMovementRow).where(CashMovementRow.movement_id == movement_id).values(
            state=state, decided_by=decided_by, decided_at=at, operation_id=operation_id, reason=reason))

    async def cash_movements(self, state: str, account_id: str, bank_agency_id: str,
                             page: Page) -> PageOf[CashMovementView]:
        conditions = []
        if state:
            conditions.append(CashMovementRow.state == state)
        if account_id:
            conditions.append(CashMovementRow.account_id == account_id)
        if bank_agency_id:
            conditions.append(CashMovementRow.bank_agency_id == bank_agency_id)
        return await self._page(CashMovementRow, CashMovementRow.movement_id, conditions, page, _cash_movement)

    # ------------------------------------------------------------ paging helper
    async def _page(self, model, key, conditions, page: Page, convert) -> PageOf:
        total = (await self.session.execute(select(func.count()).select_from(model).where(*conditions))).one()
        rows = (await self.session.execute(select(model).where(*conditions, key > page.after)
                                        .order_by(key).limit(page.size + 1))).scalars().all()
        items = [convert(r) for r in rows[:page.size]]
        return PageOf(items, getattr(rows[page.size - 1], key.key) if len(rows) > page.size else "", _scalar(total))


def _scalar(value) -> int:
    return int(value if isinstance(value, int) else value[0])


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def _enterprise(r: EnterpriseRow) -> EnterpriseView:
    return EnterpriseView(r.credit_code, r.name, r.industry_code, r.region_code, r.park, r.size_class,
                          from_micro(r.land_held_micro), r.status, _utc(r.registered_at))


def _agency(r: AgencyRow) -> AgencyView:
    return AgencyView(r.agency_id, r.name, r.region_code, _split(r.roles), r.status)


def _kind(r: ResourceKindRow) -> ResourceKind:
    return ResourceKind(r.code, r.name, r.unit, r.fungible, _split(r.attribute_names))


def _resource(r: ResourceRow, unit: str) -> ResourceView:
    return ResourceView(r.resource_id, r.kind, r.name, r.region_code, r.park, from_micro(r.quantity_micro), unit,
                        r.allocation_mode, r.status, r.controller_agency_id, json.loads(r.attributes),
                        r.standard_land, r.holder, _utc(r.registered_at), _utc(r.updated_at))


def _spec(r: InstrumentRow) -> InstrumentSpec:
    return InstrumentSpec(r.code, r.kind, r.unit, r.scale, r.pollutant, r.vintage, r.region_code,
                          r.issuer_agency_id)


def _instrument(r: InstrumentRow) -> InstrumentView:
    return InstrumentView(r.code, r.kind, r.pollutant, r.vintage, r.region_code, r.unit, r.scale,
                          to_decimal(r.issued, r.scale), to_decimal(r.retired, r.scale), r.issuer_agency_id)


def _account(a: AccountRow, i: InstrumentRow) -> AccountView:
    return AccountView(a.account_id, a.holder, a.instrument, i.unit, to_decimal(a.balance, i.scale),
                       to_decimal(a.held, i.scale), _utc(a.opened_at), a.holder_kind)


def _cash_movement(r: CashMovementRow) -> CashMovementView:
    return CashMovementView(r.movement_id, r.kind, r.account_id, r.amount, r.bank_agency_id, r.bank_reference,
                            r.state, r.requested_by, _utc(r.requested_at), r.decided_by, _utc(r.decided_at),
                            r.operation_id, r.reason)


def _hold(h: HoldRow, i: InstrumentRow) -> HoldView:
    return HoldView(h.hold_id, h.account_id, i.unit, to_decimal(h.amount, i.scale), to_decimal(h.posted, i.scale),
                    h.status, _utc(h.deadline), h.purpose, _utc(h.created_at), _utc(h.resolved_at), h.partial,
                    to_decimal(h.released, i.scale))


def _posting(p: PostingRow, i: InstrumentRow) -> PostingView:
    return PostingView(p.account_id, i.code, i.unit, to_decimal(p.balance_delta, i.scale),
                       to_decimal(p.held_delta, i.scale), to_decimal(p.balance_after, i.scale),
                       p.counterparty_account_id, p.hold_id)


def _operation(op: OperationRow, postings: list[PostingView]) -> OperationView:
    return OperationView(op.operation_id, op.type, op.memo, op.actor, _utc(op.at), op.reference, tuple(postings))
