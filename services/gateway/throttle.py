"""Login throttling per account and per client address: growing delays, then a temporary lock.

The server never sleeps: an attempt that comes too early is refused with 429 and Retry-After. Each attempt
is counted as a failure before the password is checked (so parallel guesses cannot slip past the count) and
given back when it succeeds. An attempt made before its delay ran out counts as a failure as well: a client
that ignores Retry-After reaches the lock sooner. The rows live in the gateway database, so every replica
sees the same counts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from services.gateway.db import sessions as store
from services.gateway.db.tables import LoginThrottleRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThrottleRule:
    free_failures: int
    lock_failures: int
    window: timedelta
    lock: timedelta
    max_delay: timedelta

    def delay(self, failures: int) -> timedelta:
        """No wait for the first free failures, then 1 s, 2 s, 4 s, … up to max_delay."""
        if failures <= self.free_failures:
            return timedelta(0)
        return min(self.max_delay, timedelta(seconds=2 ** min(failures - self.free_failures - 1, 30)))


@dataclass(frozen=True)
class Lockout:
    scope: str          # account | address
    username: str
    address: str
    until: datetime


class LoginRefused(Exception):
    def __init__(self, retry_after: float, locked: bool) -> None:
        super().__init__("too many failed logins")
        self.retry_after, self.locked = retry_after, locked


@dataclass(frozen=True)
class Attempt:
    """An admitted attempt: the keys it was counted under."""
    keys: tuple[str, ...]


class LoginThrottle:
    def __init__(self, sessions, *, account: ThrottleRule, address: ThrottleRule,
                 on_lock: Callable[[Lockout], Awaitable[None]]) -> None:
        self._sessions, self._rules = sessions, {"account": account, "address": address}
        self._on_lock = on_lock

    @staticmethod
    def keys(username: str | None, address: str) -> dict[str, str]:
        keys = {"address": f"address:{address[:64]}"}
        if username:
            keys["account"] = f"account:{username[:128]}"
        return keys

    async def admit(self, *, username: str | None, address: str) -> Attempt:
        """Counts the attempt, or raises LoginRefused (429) while a delay or lock holds."""
        for retry in range(2):  # two first attempts of a new key may race to insert its row
            try:
                return await self._admit(username, address)
            except IntegrityError:
                if retry:
                    raise
        raise AssertionError("unreachable")

    async def _admit(self, username: str | None, address: str) -> Attempt:
        now = datetime.now(UTC)
        keys = self.keys(username, address)
        refusal: LoginRefused | None = None
        locks: list[Lockout] = []
        async with self._sessions() as session:
            rows = {}
            for scope, key in keys.items():
                row = await store.throttle_row(session=session, key=key)
                if row is None:
                    row = LoginThrottleRow(key=key, failures=0, window_started_at=now)
                    session.add(row)
                rows[scope] = row
                self._roll_window(row, self._rules[scope], now)
                if (locked := store.utc(row.locked_until)) is not None:
                    refusal = _later(refusal, LoginRefused((locked - now).total_seconds(), True))
            if refusal is None:
                early = [scope for scope, row in rows.items()
                         if row.next_attempt_at is not None and now < store.utc(row.next_attempt_at)]
                for scope, row in rows.items():
                    row.failures += 1
                    rule = self._rules[scope]
                    if row.failures >= rule.lock_failures and (early or row.failures > rule.lock_failures):
                        row.locked_until, row.next_attempt_at = now + rule.lock, None
                        locks.append(Lockout(scope, username or "", address, row.locked_until))
                        refusal = _later(refusal, LoginRefused(rule.lock.total_seconds(), True))
                    else:
                        row.next_attempt_at = now + rule.delay(row.failures) if rule.delay(row.failures) else None
                        if scope in early:
                            refusal = _later(refusal, LoginRefused((row.next_attempt_at - now).total_seconds(),
                                                                   False))
            for lock in locks:
                await store.record_event(session=session, event="login_locked", username=lock.username,
                                         address=lock.address, detail=f"{lock.scope} locked until "
                                                                      f"{lock.until.isoformat()}", now=now)
            await session.commit()
        for lock in locks:
            await self._on_lock(lock)
        if refusal is not None:
            raise refusal
        return Attempt(tuple(keys.values()))

    @staticmethod
    def _roll_window(row: LoginThrottleRow, rule: ThrottleRule, now: datetime) -> None:
        """A lock that ran out or a window that passed starts a fresh count."""
        locked = store.utc(row.locked_until)
        if (locked is not None and locked <= now) or store.utc(row.window_started_at) + rule.window <= now:
            row.failures, row.window_started_at, row.next_attempt_at, row.locked_until = 0, now, None, None

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: the account starts afresh, the address gets its counted attempt back."""
        async with self._sessions() as session:
            for key in attempt.keys:
                if key.startswith("account:"):
                    await store.forget_throttle(session=session, key=key)
                    continue
                row = await store.throttle_row(session=session, key=key)
                if row is not None and row.locked_until is None:
                    row.failures = max(0, row.failures - 1)
                    rule = self._rules["address"]
                    if not rule.delay(row.failures):
                        row.next_attempt_at = None
            await session.commit()


def _later(current: LoginRefused | None, other: LoginRefused) -> LoginRefused:
    """Of two refusals, the one that lasts longer (a lock over a delay)."""
    if current is None or (other.locked, other.retry_after) > (current.locked, current.retry_after):
        return other
    return current
