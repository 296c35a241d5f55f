"""`host:port` addresses of the service's side endpoints (metrics)."""

from __future__ import annotations

DEFAULT_METRICS_PORT = 9464  # Prometheus' registered default port for exporters of this kind


class ListenError(ValueError):
    """A listen address that is not `host:port` or a port number."""


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port`, `:port` or `port` → (host, port); a missing host is loopback, so
    turning an endpoint on never exposes it beyond the machine by accident."""
    text = listen.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ListenError(
            f"{listen!r} is not host:port or a port number (e.g. 127.0.0.1:{DEFAULT_METRICS_PORT})"
        ) from None
    if not 0 <= port <= 65535:
        raise ListenError(f"port {port} is out of range 0-65535")
    return host, port
