"""A clock tests move by hand, for the scheduler: real time until moved, never backwards."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def set(self, moment: datetime) -> None:
        with self._lock:
            assert moment >= self.now, "the clock never goes back"
            self.now = moment

    def to_next_minute(self, seconds: int = 5) -> datetime:
        """A few seconds past the next whole minute: an every-minute schedule is due.

        Counted from real time when that is later: what the test did meanwhile (an approval,
        say) was stamped in real time, and a firing is due only after it."""
        base = max(self.now, datetime.now(UTC))
        nxt = base.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=seconds)
        self.set(nxt)
        return nxt
