"""Builders of valid registry requests for tests."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from services.registry.domain.credit_code import compose

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


async def setup_agency(stub, auth, agency_id: str = "AG-T-ISSUER", roles=(pb.AGENCY_ROLE_ISSUER,)) -> pb.Agency:
    response = await stub.RegisterAgency(pb.RegisterAgencyRequest(
        idempotency_key=key(), agency=pb.Agency(agency_id=agency_id, name="测试发改委", region_code="330100",
                                                roles=list(roles))), metadata=auth)
    return response.agency


async def funded_accounts(stub, auth, instrument: str, amounts: list[str], unit: str, scale: int,
                          kind: str = "energy_use_right") -> list[pb.Account]:
    """An instrument, an issuer, and one account per amount funded by issuance."""
    await stub.DefineInstrument(pb.DefineInstrumentRequest(idempotency_key=key(), instrument=pb.Instrument(
        code=instrument, kind=kind, unit=unit, scale=scale, vintage=2025, region_code="330100")), metadata=auth)
    issuer = await setup_agency(stub, auth, f"AG-{uuid.uuid4().hex[:8]}")
    accounts = []
    for amount in amounts:
        code = new_credit_code()
        await stub.RegisterEnterprise(pb.RegisterEnterpriseRequest(idempotency_key=key(),
                                                                   enterprise=enterprise(code)), metadata=auth)
        account = (await stub.OpenAccount(pb.OpenAccountRequest(idempotency_key=key(), holder=code,
                                                                instrument=instrument), metadata=auth)).account
        if amount != "0":
            await stub.Issue(pb.IssueRequest(idempotency_key=key(), issuer_agency_id=issuer.agency_id,
                                             to_account_id=account.account_id, quantity=q(amount)), metadata=auth)
        accounts.append(account)
    return accounts
