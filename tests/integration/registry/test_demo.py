"""`make run` demo jurisdiction under the authorization rules: quotas defined and issued by their issuers,
settlement money deposited by the bank under the two-person rule, and the ledger balanced."""

from __future__ import annotations

import pytest
from yaosu.common.v1 import common_pb2
from yaosu.registry.v1 import registry_pb2 as pb

from services.registry.demo import SETTLEMENT_BANK
from tests.integration.registry.helpers import REGULATOR
from tests.support.registry import registry_running

pytestmark = pytest.mark.slow


async def test_demo_follows_the_rules_it_demonstrates(nats_server, sqlite_url) -> None:
    async with registry_running(sqlite_url, nats_server.url, demo_data=True) as registry:
        stub = registry.stub
        instruments = (await stub.ListInstruments(pb.ListInstrumentsRequest(), metadata=REGULATOR)).instruments
        issuers = {i.code: i.issuer_agency_id for i in instruments}
        assert issuers.pop("CNY") == ""
        assert set(issuers.values()) == {"AG-330100-FGW", "AG-330100-STHJ"}
        banks = (await stub.ListAgencies(pb.ListAgenciesRequest(role=pb.AGENCY_ROLE_SETTLEMENT),
                                         metadata=REGULATOR)).agencies
        assert [a.agency_id for a in banks] == [SETTLEMENT_BANK]

        movements, token = [], ""
        while True:
            page = await stub.ListCashMovements(pb.ListCashMovementsRequest(
                page=common_pb2.PageRequest(page_size=500, page_token=token)), metadata=REGULATOR)
            movements += page.movements
            token = page.page.next_page_token
            if not token:
                break
        assert len(movements) == 300
        assert all(m.state == pb.CASH_MOVEMENT_STATE_EXECUTED and m.requested_by != m.decided_by for m in movements)

        cny = next(i for i in instruments if i.code == "CNY")
        assert int(cny.issued.value) == sum(m.amount.fen for m in movements)
        for instrument in instruments:
            balances, token = 0, ""
            while True:
                page = await stub.ListAccounts(pb.ListAccountsRequest(
                    instrument=instrument.code, page=common_pb2.PageRequest(page_size=500, page_token=token)),
                    metadata=REGULATOR)
                balances += sum(int(a.balance.value.replace(".", "")) for a in page.accounts)
                token = page.page.next_page_token
                if not token:
                    break
            assert balances == int(instrument.outstanding.value.replace(".", "")), instrument.code
        journal = await stub.VerifyAuditJournal(pb.VerifyAuditJournalRequest(), metadata=REGULATOR)
        assert journal.intact
