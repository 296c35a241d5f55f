"""Slack's Block Kit limits (SLACK-LIMITS.md) as a validator: a list of every violation."""

from __future__ import annotations

import json
from typing import Any

MESSAGE_BLOCKS, VIEW_BLOCKS = 50, 100
VIEW_BYTES = 250_000
SECTION_TEXT, SECTION_FIELDS, FIELD_TEXT = 3000, 10, 2000
HEADER_TEXT, PLACEHOLDER = 150, 150
ID_LEN = 255
BUTTON_TEXT, BUTTON_VALUE, BUTTON_URL = 75, 2000, 3000
ACTIONS_ELEMENTS, CONTEXT_ELEMENTS = 25, 10
OPTIONS, OPTION_TEXT = 100, 75
LABEL, HINT = 2000, 2000
VIEW_TITLE = 24
PRIVATE_METADATA = 3000
MESSAGE_TEXT = 40_000
INPUT_MAX = 3000


def _text(obj: dict[str, Any] | None) -> str:
    return (obj or {}).get("text", "") if isinstance(obj, dict) else ""


def check_message(payload: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    blocks = payload.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if len(blocks) > MESSAGE_BLOCKS:
        problems.append(f"message has {len(blocks)} blocks > {MESSAGE_BLOCKS}")
    if len(payload.get("text") or "") > MESSAGE_TEXT:
        problems.append("message text too long")
    if not blocks and not payload.get("text"):
        problems.append("message has neither text nor blocks")
    for i, block in enumerate(blocks):
        problems += [f"block {i}: {p}" for p in check_block(block, in_view=False)]
    return problems


def check_view(view: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    blocks = view.get("blocks") or []
    if len(blocks) > VIEW_BLOCKS:
        problems.append(f"view has {len(blocks)} blocks > {VIEW_BLOCKS}")
    if len(json.dumps(view).encode()) > VIEW_BYTES:
        problems.append("view payload larger than 250 kB")
    for key in ("title", "submit", "close"):
        if key in view and len(_text(view[key])) > VIEW_TITLE:
            problems.append(f"view {key} {_text(view[key])!r} longer than {VIEW_TITLE}")
    if view.get("type") == "modal" and "title" not in view:
        problems.append("modal without a title")
    if len(view.get("private_metadata", "")) > PRIVATE_METADATA:
        problems.append("private_metadata longer than 3000")
    if len(view.get("callback_id", "")) > ID_LEN:
        problems.append("callback_id too long")
    has_input = any(b.get("type") == "input" for b in blocks)
    if has_input and view.get("type") == "modal" and "submit" not in view:
        problems.append("modal with inputs but no submit button")
    for i, block in enumerate(blocks):
        problems += [f"block {i}: {p}" for p in check_block(block, in_view=True)]
    return problems


def check_block(block: dict[str, Any], *, in_view: bool) -> list[str]:
    p: list[str] = []
    kind = block.get("type")
    if len(block.get("block_id", "")) > ID_LEN:
        p.append("block_id too long")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            p.append("section without text or fields")
        if len(_text(block.get("text"))) > SECTION_TEXT:
            p.append(f"section text {len(_text(block.get('text')))} > {SECTION_TEXT}")
        if not _text(block.get("text")) and "text" in block:
            p.append("empty section text")
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS:
            p.append("more than 10 fields")
        p += [f"field text > {FIELD_TEXT}" for f in fields if len(_text(f)) > FIELD_TEXT]
        if "accessory" in block:
            p += check_element(block["accessory"])
    elif kind == "header":
        if block["text"].get("type") != "plain_text":
            p.append("header text must be plain_text")
        if len(_text(block["text"])) > HEADER_TEXT:
            p.append(f"header {len(_text(block['text']))} > {HEADER_TEXT}")
    elif kind == "actions":
        elements = block.get("elements") or []
        if not elements or len(elements) > ACTIONS_ELEMENTS:
            p.append(f"actions block with {len(elements)} elements")
        for el in elements:
            p += check_element(el)
    elif kind == "context":
        elements = block.get("elements") or []
        if not elements or len(elements) > CONTEXT_ELEMENTS:
            p.append(f"context block with {len(elements)} elements")
        p += [f"context text > {SECTION_TEXT}" for e in elements if len(_text(e)) > SECTION_TEXT]
    elif kind == "input":
        if not in_view:
            p.append("input block in a message")
        if len(_text(block.get("label"))) > LABEL:
            p.append("label too long")
        if len(_text(block.get("hint"))) > HINT:
            p.append("hint too long")
        p += check_element(block["element"])
    elif kind != "divider":
        p.append(f"unexpected block type {kind}")
    return p


def check_element(el: dict[str, Any]) -> list[str]:
    p: list[str] = []
    if len(el.get("action_id", "")) > ID_LEN:
        p.append("action_id too long")
    if len(_text(el.get("placeholder"))) > PLACEHOLDER:
        p.append("placeholder too long")
    kind = el.get("type")
    if kind == "button":
        if len(_text(el.get("text"))) > BUTTON_TEXT:
            p.append(f"button text {_text(el.get('text'))!r} > {BUTTON_TEXT}")
        if len(el.get("value", "")) > BUTTON_VALUE:
            p.append("button value too long")
        if len(el.get("url", "")) > BUTTON_URL:
            p.append("button url too long")
    if kind in ("static_select", "radio_buttons", "checkboxes"):
        options = el.get("options") or []
        if not options or len(options) > OPTIONS:
            p.append(f"{kind} with {len(options)} options")
        p += [
            f"option text > {OPTION_TEXT}"
            for o in options
            if len(_text(o.get("text"))) > OPTION_TEXT
        ]
    if kind == "plain_text_input" and el.get("max_length", 0) > INPUT_MAX:
        p.append("plain_text_input max_length beyond 3000")
    return p


def check_payload(kind: str, payload: dict[str, Any]) -> list[str]:
    return check_view(payload) if kind == "view" else check_message(payload)
