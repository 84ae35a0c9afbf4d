"""Administrators: user accounts and agency API keys."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError
from yaosu.registry.v1 import registry_pb2 as rpb

from services.gateway.api.authz import GuardDep
from services.gateway.api.deps import ClientsDep, IdempotencyKey, SessionDep
from services.gateway.api.errors import FieldError, ProblemError, problem_responses
from services.gateway.api.schemas import ApiKeyCreate, ApiKeyPublic, UserCreate, UserPublic
from services.gateway.db import users as crud
from services.gateway.identity import Role

router = APIRouter(prefix="/admin", tags=["admin"])
ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 503, 504)


@router.post("/users", response_model=UserPublic, status_code=201, responses=ERRORS)
async def create_user(body: UserCreate, session: SessionDep, clients: ClientsDep, guard: GuardDep,
                      _key: IdempotencyKey) -> UserPublic:
    role = Role(body.role)
    if role is Role.ENTERPRISE:
        if not body.credit_code:
            raise ProblemError(400, "an enterprise user needs a credit code",
                               errors=[FieldError(field="credit_code", message="required for enterprise users")])
        await clients.call(clients.registry.GetEnterprise, rpb.GetEnterpriseRequest(credit_code=body.credit_code),
                           user=guard.user)  # 404 when the registry does not know it
    try:
        row = await crud.create_user(session=session, username=body.username, password=body.password, role=role,
                                     credit_code=body.credit_code if role is Role.ENTERPRISE else "",
                                     display_name=body.display_name)
        await session.commit()
    except IntegrityError:
        raise ProblemError(409, "the username is taken") from None
    created = crud.as_user(row)
    return UserPublic(username=created.username, role=created.role.value, subject=created.subject,
                      display_name=created.display_name)


@router.post("/api-keys", response_model=ApiKeyPublic, status_code=201, responses=ERRORS)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, clients: ClientsDep, guard: GuardDep,
                         _key: IdempotencyKey) -> ApiKeyPublic:
    await clients.call(clients.registry.GetAgency, rpb.GetAgencyRequest(agency_id=body.agency_id), user=guard.user)
    key, _ = await crud.create_api_key(session=session, agency_id=body.agency_id, label=body.label)
    await session.commit()
    return ApiKeyPublic(agency_id=body.agency_id, api_key=key)
