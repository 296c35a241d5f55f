"""`python -m service`: run the woxqaq service until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from service.config import ConfigError, load_config
from service.logs import setup_logging


def main() -> int:
    setup_logging()
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"woxqaq: {exc}", file=sys.stderr)
        return 2

    from service.server import Service  # heavy imports after the config is known good

    try:
        service = Service(config)
        service.start()
    except ConfigError as exc:  # a setting that cannot work here, or a store that fails its check
        print(f"woxqaq: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        logging.getLogger("service").debug("start-up failed", exc_info=True)
        print(f"woxqaq: cannot start: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("service").info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
