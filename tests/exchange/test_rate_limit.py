"""Per-consumer rate limits (exchange.api.rate_limit) without limits' expiry threads."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from exchange.access import RateLimitedError
from exchange.api.rate_limit import ConsumerRateLimiter
from exchange.model import Consumer


def consumer(cid: int, rate_limit: str | None = None) -> Consumer:
    return cast(Consumer, SimpleNamespace(id=cid, rate_limit=rate_limit))


def test_a_consumer_is_refused_past_its_limit_and_others_are_not() -> None:
    limiter = ConsumerRateLimiter("1000/second")
    slow = consumer(1, "5/minute")
    for _ in range(5):
        limiter.hit(slow)
    with pytest.raises(RateLimitedError) as refused:
        limiter.hit(slow)
    assert 1 <= refused.value.retry_after <= 60
    for _ in range(50):
        limiter.hit(consumer(2))  # the default limit, its own counter


def test_the_limit_is_shared_out_between_worker_processes() -> None:
    limiter = ConsumerRateLimiter("10/minute", processes=4)  # ceil(10 / 4) = 3 each
    for _ in range(3):
        limiter.hit(consumer(3))
    with pytest.raises(RateLimitedError):
        limiter.hit(consumer(3))


def test_hits_start_no_threads_and_expired_counters_are_swept() -> None:
    limiter = ConsumerRateLimiter("1/second")
    storage: Any = limiter._limiter.storage
    storage.timer.join()  # the one MemoryStorage starts, cancelled at once
    timers = []
    for cid in range(200):
        limiter.hit(consumer(cid))
        time.sleep(0.0002)
        timers += [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert timers == []  # limits' MemoryStorage starts one every 10 ms under steady hits
    assert len(storage.storage) >= 200
    time.sleep(2.1)  # every counter expires (a 1 s window, kept for two)
    storage._next_sweep = 0.0
    limiter.hit(consumer(10_000))
    assert set(storage.storage) <= {k for k in storage.storage if "10000" in k}
    limiter.hit(consumer(5))  # an expired consumer counts from zero again
