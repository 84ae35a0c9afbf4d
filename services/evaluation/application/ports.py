"""What the evaluation use cases need from the outside world (implemented in adapters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class EnterpriseFacts:
    """An enterprise as the registry describes it (the fields evaluation replicates)."""

    credit_code: str
    name: str
    industry_code: str
    region_code: str
    park: str
    size_class: str  # above | below
    land_held_mu: str
    status: str  # active | suspended | deregistered


class EnterpriseDirectory(Protocol):
    def pages(self) -> AsyncIterator[list[EnterpriseFacts]]: ...

    async def lookup(self, credit_code: str) -> EnterpriseFacts | None:
        """The registry's facts, None when it has no such enterprise; DependencyUnavailable when it cannot
        answer."""
        ...
