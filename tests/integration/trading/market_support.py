"""A continuous market for tests: an instrument its issuing agency defines and issues in the registry,
buyers the settlement bank funded, sellers holding units, and the market configuration (all-day sessions
so that tests run at any hour)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as rpb
from yaosu.trading.v1 import trading_pb2 as pb

from tests.integration.trading.support import agency, bidder, fen, funded_enterprise, key, register_agency, regulator

PREVIOUS_CLOSE = 100_00  # fen per tce


def market_config(instrument: str, **rules) -> dict:
    """A market of the bundled policy (band ±10 %, block ±30 % and ≥ 100 000, best 5 levels) open all day."""
    return {"instrument": instrument, "name": "测试用能权", "unit": "tce", "lot_size": "1",
            "previous_close_fen": PREVIOUS_CLOSE,
            "rules": {"sessions": [["00:00", "24:00"]], "block_sessions": [["00:00", "24:00"]],
                      "trading_days": "every", **rules}}


def markets_json(*instruments: str) -> str:
    return json.dumps([market_config(i) for i in instruments])


def new_instrument() -> str:
    return f"energy_use_right:330100:{uuid.uuid4().hex[:6]}"


async def market_world(registry_stub, instrument: str, sellers: int = 2, buyers: int = 2,
                       units: str = "1000", funds_fen: int = 10_000_000_00) -> tuple[list[str], list[str]]:
    issuer = f"AG-{uuid.uuid4().hex[:8]}"
    await register_agency(registry_stub, issuer, "测试发改委", rpb.AGENCY_ROLE_ISSUER)
    issuing = agency(issuer, "issuer")
    await registry_stub.DefineInstrument(rpb.DefineInstrumentRequest(idempotency_key=key(), instrument=rpb.Instrument(
        code=instrument, kind="energy_use_right", unit="tce", scale=3, vintage=2025, region_code="330100",
        issuer_agency_id=issuer)), metadata=issuing)

    async def holder(units: str, cash: int) -> str:
        code = await funded_enterprise(registry_stub, cash)
        if units:  # the issuer issues the units into the holder's account
            account = (await registry_stub.OpenAccount(rpb.OpenAccountRequest(
                idempotency_key=key(), holder=code, instrument=instrument), metadata=bidder(code))).account
            await registry_stub.Issue(rpb.IssueRequest(
                idempotency_key=key(), issuer_agency_id=issuer, to_account_id=account.account_id,
                quantity=common_pb2.Quantity(value=units)), metadata=issuing)
        return code

    seller_codes = [await holder(units, funds_fen) for _ in range(sellers)]  # sellers may buy too
    buyer_codes = [await holder("", funds_fen) for _ in range(buyers)]
    return seller_codes, buyer_codes


async def balance(registry_stub, holder: str, instrument: str) -> str:
    found = await registry_stub.ListAccounts(rpb.ListAccountsRequest(holder=holder, instrument=instrument),
                                             metadata=regulator())
    return found.accounts[0].balance.value if found.accounts else "0"


async def account_of(registry_stub, holder: str, instrument: str) -> rpb.Account:
    found = await registry_stub.ListAccounts(rpb.ListAccountsRequest(holder=holder, instrument=instrument),
                                             metadata=regulator())
    return found.accounts[0]


async def held(registry_stub, holder: str, instrument: str) -> Decimal:
    """What the registry holds of the holder's balance (its open orders' holds)."""
    return Decimal((await account_of(registry_stub, holder, instrument)).held.value)


async def place(stub, instrument: str, code: str, side: int, price: int, quantity: int, idem: str = ""):
    return await stub.PlaceOrder(pb.PlaceOrderRequest(
        idempotency_key=idem or key(), instrument=instrument, credit_code=code, side=side,
        type=pb.ORDER_TYPE_LIMIT, price=fen(price), quantity=quantity), metadata=bidder(code))
