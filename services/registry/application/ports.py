"""What the registry's use cases need from the outside, as types the composition root fills in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.db.repository import RegistryRepository

RepositoryFactory = Callable[[AsyncSession], RegistryRepository]


class LedgerObserver(Protocol):
    def operation(self, operation: str, outcome: str) -> None: ...

    def catalogue_changed(self) -> None: ...
