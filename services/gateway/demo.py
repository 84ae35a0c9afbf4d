"""Demo users for the demo jurisdiction (DEMO_DATA=true and an empty users database).

Enterprise users are bound to demo enterprises that hold CNY and quota accounts in the registry; one API
key per demo agency; a regulator and an administrator. Credentials go to DATA_DIR/demo_users.txt, which
`make run` prints. Passwords are random per installation, never constants in code.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from yaosu.registry.v1 import registry_pb2 as rpb

from services.gateway.clients import ServiceClients
from services.gateway.db import users as crud
from services.gateway.identity import Role, User

log = logging.getLogger(__name__)

DEMO_AGENCIES = ("AG-330100-ZRZY", "AG-330100-GGZY", "AG-330100-JG", "AG-330100-FGW", "AG-330100-STHJ",
                 "AG-330100-SW", "AG-330100-TJ", "AG-330100-DL", "AG-330100-JXJ")
ENTERPRISE_USERS = 4
# Finding the enterprises to bind users to reads the directory and balances: a regulator's reads.
SEEDER = User(Role.REGULATOR, "demo-seed", "demo-seed")


async def quota_holders(clients: ServiceClients, count: int) -> list[rpb.Enterprise]:
    """The first enterprises (registry order) holding a quota account besides CNY."""
    found: list[rpb.Enterprise] = []
    token = ""
    while len(found) < count:
        page = await clients.call(clients.registry.ListEnterprises, rpb.ListEnterprisesRequest(
            page={"page_size": 100, "page_token": token}), user=SEEDER)
        for enterprise in page.enterprises:
            accounts = await clients.call(clients.registry.ListAccounts, rpb.ListAccountsRequest(
                holder=enterprise.credit_code, page={"page_size": 20}), user=SEEDER)
            instruments = {a.instrument for a in accounts.accounts}
            if "CNY" in instruments and len(instruments) > 1:
                found.append(enterprise)
                if len(found) == count:
                    break
        token = page.page.next_page_token
        if not token:
            break
    return found


async def seed_if_empty(sessions, clients: ServiceClients, data_dir: Path) -> bool:
    async with sessions() as session:
        if await crud.count_users(session=session):
            return False
        lines = ["  portal demo users (password login at /login; agencies: X-API-Key header):"]
        for n, enterprise in enumerate(await quota_holders(clients, ENTERPRISE_USERS), start=1):
            password = secrets.token_urlsafe(9)
            await crud.create_user(session=session, username=f"ent{n}", password=password, role=Role.ENTERPRISE,
                                   credit_code=enterprise.credit_code, display_name=enterprise.name)
            lines.append(f"    enterprise  ent{n:<10} {password:<16} {enterprise.credit_code} {enterprise.name}")
        for username, role in (("regulator", Role.REGULATOR), ("admin", Role.ADMIN)):
            password = secrets.token_urlsafe(9)
            await crud.create_user(session=session, username=username, password=password, role=role,
                                   display_name={"regulator": "示范市监管员", "admin": "管理员"}[username])
            lines.append(f"    {role.value:<11} {username:<13} {password}")
        for agency_id in DEMO_AGENCIES:
            key, _ = await crud.create_api_key(session=session, agency_id=agency_id, label="demo")
            lines.append(f"    agency      {agency_id:<17} X-API-Key: {key}")
        await session.commit()
    path = data_dir / "demo_users.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    log.info("demo users written", extra={"path": str(path)})
    return True
