"""Doing a piece of work once per key, however many times Slack sends the same request.

Slack may deliver the same view submission twice (a double click on Submit, a retry with
`X-Slack-Retry-Num`); Bolt does not deduplicate. The first request does the work; one that
arrives while it runs waits for its outcome; one that arrives later gets the stored outcome.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Slot(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.at = time.monotonic()


class OnceCache(Generic[T]):
    def __init__(self, ttl_s: float = 900.0, max_items: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._slots: OrderedDict[str, _Slot[T]] = OrderedDict()
        self._lock = threading.Lock()

    def run_once(self, key: str, work: Callable[[], T], wait_s: float) -> tuple[T | None, bool]:
        """(outcome, True) for the first caller of `key`; (the first's outcome, False) for
        the others, or (None, False) when the first has not finished within `wait_s`."""
        with self._lock:
            self._expire()
            slot = self._slots.get(key)
            first = slot is None
            if slot is None:
                slot = self._slots[key] = _Slot()
        if not first:
            slot.done.wait(wait_s)
            return slot.value, False
        try:
            slot.value = work()
        except BaseException:
            with self._lock:  # a failure is not remembered: the next attempt tries again
                self._slots.pop(key, None)
            raise
        finally:
            slot.done.set()
        return slot.value, True

    def _expire(self) -> None:
        now = time.monotonic()
        while self._slots:
            slot = next(iter(self._slots.values()))
            if now - slot.at < self.ttl_s and len(self._slots) < self.max_items:
                break
            self._slots.popitem(last=False)
