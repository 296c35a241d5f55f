"""HTTP mode: Bolt's WSGI adapter under waitress checks Slack's signatures; /healthz."""

from __future__ import annotations

import threading
import time

import requests
from bot_support import Bot
from slack_standin import SlackStandIn

from bot.serving import HTTPServer


def test_forged_signature_is_refused(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.command("dave", secret="not-the-secret")
    assert resp.status_code == 401
    time.sleep(0.2)
    assert not slack.of("views.open")


def test_stale_signature_is_refused(bot: Bot, slack: SlackStandIn) -> None:
    resp = bot.command("dave", timestamp=int(time.time()) - 6 * 60)
    assert resp.status_code == 401
    assert bot.command("dave", timestamp=int(time.time()) - 60).status_code == 200


def test_healthz_answers_ok_and_other_paths_are_not_found(bot: Bot) -> None:
    resp = bot.healthz()
    assert resp.status_code == 200 and resp.text.strip() == "ok"
    assert bot.session.get(f"{bot.base_url}/slack/events", timeout=5).status_code == 404
    assert bot.session.post(f"{bot.base_url}/other", data="x", timeout=5).status_code == 404


def test_a_body_too_large_for_slack_is_refused_before_the_app(
    bot: Bot, slack: SlackStandIn
) -> None:
    resp = bot.post("text=" + "x" * (2 * 1024 * 1024), "application/x-www-form-urlencoded")
    assert resp.status_code == 413
    assert not slack.calls


def test_stopping_ends_the_serving_thread_without_an_error_in_it(monkeypatch, caplog) -> None:
    # Sockets closed under the serving thread's select() made it fail with EBADF, now
    # and then, and a worker pulling the closed trigger logged an error; each round stops
    # with a kept-alive connection open.
    errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", errors.append)

    def ok(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    for _ in range(40):
        server = HTTPServer(ok, host="127.0.0.1", port=0).start()
        with requests.Session() as session:
            assert session.get(f"http://127.0.0.1:{server.port}/", timeout=5).text == "ok"
            server.stop()
        assert not server._thread.is_alive()
    assert not errors
    assert not [r for r in caplog.records if r.name.startswith("waitress")]
