"""The bot and the CLI are clients of the service: they ask it (next firings, who you are)
rather than import its domain, whose dates would follow their own tzdata and libraries."""

from __future__ import annotations

import subprocess
import sys


def test_the_bot_and_the_cli_import_nothing_of_the_service_but_the_wire() -> None:
    probe = (
        "import sys, bot.app, bot.__main__, service.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('service.') and m != 'service.cli'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
