"""Per-principal rate limits, so hit/no-hit lookups cannot be used to enumerate the registry."""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from registry.domain.errors import RateLimited

LOOKUPS_PER_MINUTE = 30


class RateLimiter:
    """At most `limit` calls per principal in any sliding `window` seconds (per process).

    Every attempt counts, valid or not, so guessing numbers costs the same as asking.
    """

    def __init__(
        self, limit: int = LOOKUPS_PER_MINUTE, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}

    def take(self, key: str) -> None:
        """Count one call by `key`, or raise RateLimited when its budget is spent."""
        now = self._clock()
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        if len(calls) >= self.limit:
            retry = max(1, int(calls[0] + self.window - now) + 1)
            raise RateLimited(f"at most {self.limit} lookups a minute; retry in {retry} s", retryAfter=retry)
        calls.append(now)
        if len(self._calls) > 10_000:  # forget idle callers so the table stays small
            for idle in [k for k, v in self._calls.items() if not v or v[-1] <= now - self.window]:
                del self._calls[idle]
