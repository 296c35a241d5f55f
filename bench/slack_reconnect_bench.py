"""How fast the bot's Socket Mode connection comes back, and what waiting costs: for each
way a connection ends (Slack's `disconnect` refresh, a reset socket, a socket closed without
a close frame), the time until the new connection is greeted and the CPU the process used
meanwhile; the bot's client (websocket-client) beside slack-sdk's built-in one.

    python bench/slack_reconnect_bench.py [--rounds 3] [--cap 15]

Uses the Socket Mode stand-in of the tests; a client that has not reconnected after `--cap`
seconds is reported as such.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "bot")]

from slack_bolt import App  # noqa: E402
from slack_bolt.adapter.socket_mode import SocketModeHandler as BuiltinHandler  # noqa: E402
from slack_sdk import WebClient  # noqa: E402
from slack_standin import APP_TOKEN, TOKEN, SlackStandIn  # noqa: E402

from bot.serving import SocketMode  # noqa: E402

WAYS = ("refresh_requested", "reset", "no_close_frame")


def end_connection(slack: SlackStandIn, how: str) -> None:
    if how == "refresh_requested":
        slack.socket_mode.refresh()
    else:
        slack.socket_mode.drop(reset=how == "reset")


def measure(client: str, how: str, rounds: int, cap: float) -> tuple[list[float], float, int]:
    """Seconds to each reconnect, CPU seconds per wall second while waiting, misses."""
    slack = SlackStandIn().start()
    app = App(
        client=WebClient(token=TOKEN, base_url=slack.api_url), token_verification_enabled=False
    )
    conn: Any = SocketMode(app, APP_TOKEN) if client == "websocket-client" else None
    builtin = BuiltinHandler(app, APP_TOKEN) if conn is None else None
    (conn or builtin).connect()
    times: list[float] = []
    cpu = wall = 0.0
    missed = 0
    try:
        assert slack.socket_mode.wait_connections(1, timeout=10)
        for _ in range(rounds):
            time.sleep(0.5)
            greeted = len(slack.socket_mode.hellos)
            started, cpu_started = time.monotonic(), time.process_time()
            end_connection(slack, how)
            back = slack.socket_mode.wait_connections(greeted + 1, timeout=cap)
            took = time.monotonic() - started
            cpu += time.process_time() - cpu_started
            wall += took
            if not back:
                missed += 1
                break  # the client is stuck; later rounds would measure the same wait
            times.append(took)
    finally:
        if conn is not None:
            conn.close()
        else:
            with contextlib.suppress(Exception):  # its close() can race its own reader
                builtin.client.close()
        slack.stop()
    return times, cpu / wall if wall else 0.0, missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap", type=float, default=15.0)
    args = parser.parse_args()
    rows = []
    for client in ("websocket-client", "slack-sdk built-in"):
        for how in WAYS:
            rows.append((client, how, *measure(client, how, args.rounds, args.cap)))

    print(f"\nSocket Mode reconnects, {args.rounds} per way, cap {args.cap:.0f} s")
    print(
        f"{'client':<20}{'connection ended by':<20}{'median s':>9}{'max s':>8}{'CPU/s':>7}  result"
    )
    for client, how, times, cpu_share, missed in rows:
        median = f"{statistics.median(times):>9.2f}" if times else f"{'—':>9}"
        worst = f"{max(times):>8.2f}" if times else f"{'—':>8}"
        result = f"not back within {args.cap:.0f} s" if missed else "ok"
        print(f"{client:<20}{how:<20}{median}{worst}{cpu_share:>7.2f}  {result}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
