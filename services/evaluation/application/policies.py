"""Methodology documents as versioned data: publish (validated by the domain), read, list.

A published version is immutable: the same ref with another document is refused, and runs keep the
ref they were computed under, so publishing a new version never changes a past run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

from services.common.authz import Access
from services.common.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from services.common.uow import UnitOfWork
from services.evaluation.application import fields
from services.evaluation.application.commands import PublishPolicy
from services.evaluation.application.views import PolicyView
from services.evaluation.domain import Policy, PolicyError, load_policy, sha256_of
from services.evaluation.policies import available_policies

log = logging.getLogger(__name__)


@lru_cache(maxsize=64)
def _parsed(document: str) -> Policy:
    # Documents are immutable per ref, so the parsed policy can be cached by its text.
    return load_policy(document)


def parse(document: str) -> Policy:
    try:
        return _parsed(document)
    except PolicyError as exc:
        raise InvalidArgument("invalid policy document", [FieldViolation(v.path, v.message)
                                                          for v in exc.violations]) from None


def _view(row) -> PolicyView:
    return PolicyView(row.policy_ref, row.policy_id, row.version, row.jurisdiction_code, row.evaluation_year,
                      row.digest, row.published_at, row.published_by)


class Policies:
    def __init__(self, uow: UnitOfWork, repositories: Callable, access: Access) -> None:
        self.uow = uow
        self.repositories = repositories
        self.access = access

    async def publish(self, cmd: PublishPolicy) -> PolicyView:
        subject = self.access.require("PublishPolicy")
        fields.idempotency_key(cmd.idempotency_key)
        if not cmd.document.strip():
            raise InvalidArgument.field("document", "required")
        policy = parse(cmd.document)
        digest = sha256_of(policy)
        async with self.uow() as tx:
            if (first := await tx.replay(cmd, "publish_policy", PolicyView)) is not None:
                return first
            repo = self.repositories(tx.session)
            if (existing := await repo.policy(policy.ref)) is not None:
                if existing.digest == digest:
                    return _view(existing)  # the same document again: nothing changes
                raise AlreadyExists(f"policy {policy.ref} is already published with another document; "
                                    "publish a new version")
            view = PolicyView(policy.ref, policy.policy_id, policy.version, policy.jurisdiction.code,
                              policy.evaluation_year, digest, tx.now, subject.actor)
            await repo.add_policy(dict(policy_ref=view.policy_ref, policy_id=view.policy_id, version=view.version,
                                       jurisdiction_code=view.jurisdiction_code,
                                       evaluation_year=view.evaluation_year, digest=digest, document=cmd.document,
                                       published_at=view.published_at, published_by=view.published_by))
            await tx.audit("policy.publish", view.policy_ref, {"policy_ref": view.policy_ref, "digest": digest})
            await tx.remember(cmd, "publish_policy", view, PolicyView)
            await tx.commit()
            return view

    async def ensure_bundled(self) -> None:
        """Publish the shipped default documents once (first start)."""
        for ref in available_policies():
            text = resources.files("services.evaluation.policies").joinpath(f"{ref}.yaml").read_text("utf-8")
            try:
                await self.publish(PublishPolicy("", text))  # the same document again is a no-op
            except AlreadyExists:
                log.warning("bundled policy %s differs from the published one; keeping the published", ref)

    async def get(self, ref: str) -> tuple[PolicyView, str]:
        self.access.require("GetPolicy")
        return await self._load(ref)

    async def _load(self, ref: str) -> tuple[PolicyView, str]:
        if not ref.strip():
            raise InvalidArgument.field("policy_ref", "required")
        fields.identifier(ref, "policy_ref", max_length=fields.MAX_POLICY_REF)
        async with self.uow.read() as tx:
            repo = self.repositories(tx.session)
            row = await repo.policy(ref) if "@" in ref else await repo.latest_policy(ref)
        if row is None:
            raise NotFound(f"policy {ref} not found")
        return _view(row), row.document

    async def resolve(self, ref: str) -> tuple[PolicyView, Policy]:
        """The policy a use case works under (its caller's access was checked by that use case)."""
        view, document = await self._load(ref)
        return view, parse(document)

    async def resolve_in(self, repo, ref: str) -> Policy:
        """The policy of a ref inside the caller's transaction (a second one would wait on SQLite's lock)."""
        row = await repo.policy(ref)
        if row is None:
            raise NotFound(f"policy {ref} not found")
        return parse(row.document)

    async def list(self, policy_id: str = "") -> list[PolicyView]:
        self.access.require("ListPolicies")
        fields.identifier(policy_id, "policy_id", required=False, max_length=fields.MAX_POLICY_REF)
        async with self.uow.read() as tx:
            return [_view(row) for row in await self.repositories(tx.session).policies(policy_id)]
