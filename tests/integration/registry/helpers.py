"""Builders of valid registry requests for tests, each made with the key whose subject may make it."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from services.registry.domain.credit_code import compose
from tests.support.registry import deposit_cny
from tests.support.services import ADMIN_KEY, ISSUER_KEY, REGULATOR_KEY, TRADING_KEY, bearer

ADMIN = bearer(ADMIN_KEY)
ISSUER = bearer(ISSUER_KEY)          # agency AG-T-ISSUER, role issuer
TRADING = bearer(TRADING_KEY)        # the trading service: transfers and holds
REGULATOR = bearer(REGULATOR_KEY)    # reads every account, hold and history
ISSUER_AGENCY = "AG-T-ISSUER"

_serial = itertools.count(1)


def key() -> str:
    return uuid.uuid4().hex


def new_credit_code(division: str = "330106") -> str:
    n = next(_serial) + int(uuid.uuid4().int % 10_000_000)
    return compose("9", "1", division, f"{n:08d}")


def enterprise(code: str | None = None, **fields) -> pb.Enterprise:
    values = dict(credit_code=code or new_credit_code(), name="测试精密机械有限公司", industry_code="C3484",
                  region_code="330106", park="紫金港科技园", size_class=pb.SIZE_CLASS_ABOVE,
                  land_held=common_pb2.Quantity(value="35.5", unit="亩"))
    values.update(fields)
    return pb.Enterprise(**values)


def q(value: str, unit: str = "") -> common_pb2.Quantity:
    return common_pb2.Quantity(value=value, unit=unit)


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def in_seconds(seconds: float) -> Timestamp:
    return ts(datetime.now(UTC) + timedelta(seconds=seconds))


async def setup_agency(stub, auth=ADMIN, agency_id: str = ISSUER_AGENCY,
                       roles=(pb.AGENCY_ROLE_ISSUER,)) -> pb.Agency:
    """Register an agency (an administrator's act)."""
    response = await stub.RegisterAgency(pb.RegisterAgencyRequest(
        idempotency_key=key(), agency=pb.Agency(agency_id=agency_id, name="测试发改委", region_code="330100",
                                                roles=list(roles))), metadata=auth)
    return response.agency


async def ensure_issuer(stub, agency_id: str = ISSUER_AGENCY) -> None:
    """The test issuer (ISSUER_KEY speaks for AG-T-ISSUER) as the registry records it, once per database."""
    try:
        await setup_agency(stub, ADMIN, agency_id)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


async def define_instrument(stub, instrument: str, unit: str, scale: int, kind: str = "energy_use_right",
                            auth=ISSUER) -> pb.Instrument:
    """An instrument defined by its issuer (by default the test issuer agency)."""
    if auth is ISSUER:
        await ensure_issuer(stub)
    return (await stub.DefineInstrument(pb.DefineInstrumentRequest(idempotency_key=key(), instrument=pb.Instrument(
        code=instrument, kind=kind, unit=unit, scale=scale, vintage=2025, region_code="330100")),
        metadata=auth)).instrument


async def register_enterprise(stub, code: str | None = None) -> str:
    code = code or new_credit_code()
    await stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=key(), enterprise=enterprise(code)),
                                  metadata=ADMIN)
    return code


async def open_account(stub, holder: str, instrument: str) -> pb.Account:
    """Opened as the trading service does for its bidders."""
    return (await stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=key(), holder=holder, instrument=instrument),
                                   metadata=TRADING)).account


async def funded_accounts(stub, instrument: str, amounts: list[str], unit: str, scale: int,
                          kind: str = "energy_use_right") -> list[pb.Account]:
    """An instrument of the test issuer, and one enterprise account per amount, funded by its issuance."""
    await define_instrument(stub, instrument, unit, scale, kind)
    accounts = []
    for amount in amounts:
        account = await open_account(stub, await register_enterprise(stub), instrument)
        if amount != "0":
            await stub.Issue(pb.IssueRequest(idempotency_key=key(), issuer_agency_id=ISSUER_AGENCY,
                                             to_account_id=account.account_id, quantity=q(amount)), metadata=ISSUER)
        accounts.append(account)
    return accounts


async def money_account(stub, holder: str, fen: int = 0) -> pb.Account:
    """The holder's CNY account, funded the only way money enters: a two-person bank deposit."""
    account = await open_account(stub, holder, "CNY")
    if fen:
        await deposit_cny(stub, account.account_id, fen)
    return account
