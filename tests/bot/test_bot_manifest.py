"""The Slack app manifest asks for exactly the scopes the code needs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Web API method (as the SDK names it) → the bot scope it needs (None: no scope).
SCOPE_OF = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_delete": "chat:write",
    "views_open": None,
    "views_update": None,
    "views_push": None,
    "views_publish": None,
    "auth_test": None,
    "apps_connections_open": None,  # the app-level token's connections:write, no bot scope
    "conversations_join": "channels:join",
    "users_info": "users:read",
    "files_upload_v2": "files:write",
}
CALL = re.compile(r"\bclient\.([A-Za-z_0-9]+)\(|\.api_call\(\s*[\"']([a-zA-Z.]+)[\"']")


def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def methods_called() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for m in CALL.finditer(path.read_text()):
            found.add(m.group(1) or m.group(2).replace(".", "_"))
    return found


def test_manifest_scopes_are_exactly_what_the_code_calls() -> None:
    called = methods_called()
    assert {"chat_postMessage", "chat_update", "views_open", "views_publish"} <= called
    unknown = called - SCOPE_OF.keys()
    assert not unknown, f"add these methods' scopes to SCOPE_OF: {unknown}"
    needed = {SCOPE_OF[m] for m in called} - {None}
    code = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    if "app.command(" in code:
        needed.add("commands")
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    assert scopes == needed


def test_manifest_declares_what_the_listeners_handle() -> None:
    m = manifest()
    code = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    commands = {c["command"] for c in m["features"]["slash_commands"]}
    assert commands == set(re.findall(r"app\.command\(\"(/[a-z-]+)\"\)", code))
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert events == set(re.findall(r"app\.event\(\"([a-z_]+)\"\)", code))
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["features"]["bot_user"]["display_name"]
