"""Per-consumer rate limits with the ``limits`` library (sliding window counters in memory).

The counters live in each API process. With N uvicorn workers each process allows 1/N of a
consumer's limit (rounded up), so the whole server allows about the limit whichever worker the
connections land on. A deployment of several servers behind a load balancer would move the
counters to a shared store (``limits`` supports Redis and Memcached) with the same code.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from exchange.access import RateLimitedError
from exchange.model import Consumer


class _SweptStorage(MemoryStorage):
    """limits' MemoryStorage without its expiry thread.

    MemoryStorage sweeps expired counters from a ``threading.Timer`` 10 ms after a hit and
    starts a new one on the next hit once that has run: under steady calls, about a hundred
    threads a second per API process, each taking the GIL from the event loop. Here the sweep
    runs inline at most once a second; a counter that expired is dropped when it is read
    anyway (MemoryStorage.get), so limits are enforced the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()
        self._next_sweep = 0.0

    # MemoryStorage calls self.__schedule_expiry() on every hit (name-mangled to this name).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class ConsumerRateLimiter:
    """Refuse a consumer's call beyond its limit (its own ``rate_limit``, else the default)."""

    def __init__(self, default: str, *, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self._processes = processes
        self._default = default
        self._items: dict[str, list[RateLimitItem]] = {}
        self._limiter = SlidingWindowCounterRateLimiter(_SweptStorage())
        self._parsed(default)  # fail at start-up, not on the first call

    def _parsed(self, text: str) -> list[RateLimitItem]:
        items = self._items.get(text)
        if items is None:
            items = [
                type(item)(math.ceil(item.amount / self._processes), item.multiples)
                for item in parse_many(text)
            ]
            self._items[text] = items
        return items

    def hit(self, consumer: Consumer) -> None:
        """Count one call; RateLimitedError (429) when it is over the limit."""
        for item in self._parsed(consumer.rate_limit or self._default):
            if not self._limiter.hit(item, str(consumer.id)):
                reset = self._limiter.get_window_stats(item, str(consumer.id)).reset_time
                raise RateLimitedError(
                    f"rate limit {item} reached for this consumer",
                    retry_after=max(1, math.ceil(reset - time.time())),
                )
