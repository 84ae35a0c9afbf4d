"""The /api/v1 router: every resource router, each call rate-limited per principal and authorised by the
policy (api/authz.py) before its handler runs."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.gateway.api.authz import authorize
from services.gateway.api.deps import rate_limit
from services.gateway.api.routes import admin, auth, catalogue, enterprises, listings, markets, regulator, stream


def build_api_router() -> APIRouter:
    api_router = APIRouter(prefix="/api/v1", dependencies=[Depends(rate_limit), Depends(authorize)])
    for module_router in (auth.router, catalogue.router, listings.router, listings.bids_router, enterprises.router,
                          markets.router, regulator.router, admin.router, stream.router):
        api_router.include_router(module_router)
    try:  # the evaluation routes need the generated evaluation contract; without it they are absent
        from services.gateway.api.routes import evaluation
    except ImportError:
        return api_router
    api_router.include_router(evaluation.router)
    api_router.include_router(evaluation.agency_router)
    return api_router
