"""Block Kit as Slack checks and stores it: the documented limits, and what Slack adds.

- `validate_blocks`/`validate_view`: the errors Slack answers `invalid_blocks` (messages) or
  `invalid_arguments` (modals) with, each with its json-pointer; empty when valid.
- `normalise_blocks`: what Slack stores: a generated `block_id` where none was given, `emoji`
  on every plain_text object.
- `texts_in`: the text of every text object in some blocks (what a reader sees).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MAX_MESSAGE_BLOCKS",
    "MAX_VIEW_BLOCKS",
    "normalise_blocks",
    "texts_in",
    "validate_blocks",
    "validate_view",
]

JsonDict = dict[str, Any]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100


_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def max_len(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def text(
        self, obj: Any, pointer: str, *, limit: int, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.fail("missing required field: text", pointer)
            return
        if not isinstance(obj, Mapping):
            self.fail("must provide an object", pointer)
            return
        kind = obj.get("type")
        allowed = {"plain_text"} if plain_only else {"plain_text", "mrkdwn"}
        if kind not in allowed:
            self.fail(f"must be one of {sorted(allowed)}", f"{pointer}/type")
        text = obj.get("text")
        if not isinstance(text, str):
            self.fail("must provide a string", f"{pointer}/text")
        elif not text:
            self.fail("must be more than 0 characters", f"{pointer}/text")
        else:
            self.max_len(text, limit, f"{pointer}/text")

    def confirm(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, Mapping):
            self.fail("must provide an object", pointer)
            return
        self.text(obj.get("title"), f"{pointer}/title", limit=100, plain_only=True)
        self.text(obj.get("text"), f"{pointer}/text", limit=300)
        self.text(obj.get("confirm"), f"{pointer}/confirm", limit=30, plain_only=True)
        self.text(obj.get("deny"), f"{pointer}/deny", limit=30, plain_only=True)

    def options(self, options: Any, pointer: str, *, max_items: int = 100) -> None:
        if not isinstance(options, list):
            self.fail("must provide an array", pointer)
            return
        if len(options) > max_items:
            self.fail(f"no more than {max_items} items allowed", pointer)
        for i, option in enumerate(options):
            p = f"{pointer}/{i}"
            if not isinstance(option, Mapping):
                self.fail("must provide an object", p)
                continue
            self.text(option.get("text"), f"{p}/text", limit=75)
            self.max_len(option.get("value"), 150, f"{p}/value")

    def element(self, el: Any, pointer: str) -> None:
        if not isinstance(el, Mapping):
            self.fail("must provide an object", pointer)
            return
        kind = el.get("type")
        if "action_id" in el:
            self.max_len(el.get("action_id"), 255, f"{pointer}/action_id")
        if "confirm" in el:
            self.confirm(el["confirm"], f"{pointer}/confirm")
        if "placeholder" in el:
            self.text(el["placeholder"], f"{pointer}/placeholder", limit=150, plain_only=True)
        if kind == "button":
            self.text(el.get("text"), f"{pointer}/text", limit=75, plain_only=True)
            self.max_len(el.get("value"), 2000, f"{pointer}/value")
            self.max_len(el.get("url"), 3000, f"{pointer}/url")
            if "style" in el and el["style"] not in {"primary", "danger"}:
                self.fail("must be one of ['danger', 'primary']", f"{pointer}/style")
        elif kind in {"static_select", "multi_static_select", "radio_buttons", "checkboxes"}:
            if "options" in el or "option_groups" not in el:
                self.options(el.get("options"), f"{pointer}/options")
        elif kind == "overflow":
            self.options(el.get("options"), f"{pointer}/options", max_items=5)
        elif kind == "image":
            self.max_len(el.get("image_url"), 3000, f"{pointer}/image_url")
            self.max_len(el.get("alt_text"), 2000, f"{pointer}/alt_text")
        elif kind in {"plain_text", "mrkdwn"}:
            self.text(el, pointer, limit=3000)
        elif kind == "plain_text_input":
            self.max_len(el.get("initial_value"), 3000, f"{pointer}/initial_value")
        elif not isinstance(kind, str):
            self.fail("missing required field: type", pointer)

    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, Mapping):
            self.fail("must provide an object", pointer)
            return
        kind = block.get("type")
        if kind not in _BLOCK_TYPES:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.max_len(block.get("block_id"), 255, f"{pointer}/block_id")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail("must provide text or fields", pointer)
            if "text" in block:
                self.text(block["text"], f"{pointer}/text", limit=3000)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list):
                    self.fail("must provide an array", f"{pointer}/fields")
                else:
                    if len(fields) > 10:
                        self.fail("no more than 10 items allowed", f"{pointer}/fields")
                    for i, f in enumerate(fields):
                        self.text(f, f"{pointer}/fields/{i}", limit=2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
        elif kind in {"actions", "context"}:
            limit = 25 if kind == "actions" else 10
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.fail("must provide a non-empty array", f"{pointer}/elements")
                return
            if len(elements) > limit:
                self.fail(f"no more than {limit} items allowed", f"{pointer}/elements")
            seen: set[str] = set()
            for i, el in enumerate(elements):
                self.element(el, f"{pointer}/elements/{i}")
                action_id = el.get("action_id") if isinstance(el, Mapping) else None
                if isinstance(action_id, str):
                    if action_id in seen:
                        self.fail(
                            f"duplicate action_id: {action_id}",
                            f"{pointer}/elements/{i}/action_id",
                        )
                    seen.add(action_id)
        elif kind == "image":
            self.max_len(block.get("image_url"), 3000, f"{pointer}/image_url")
            self.max_len(block.get("alt_text"), 2000, f"{pointer}/alt_text")
            if "title" in block:
                self.text(block["title"], f"{pointer}/title", limit=2000, plain_only=True)
        elif kind == "input":
            self.text(block.get("label"), f"{pointer}/label", limit=2000, plain_only=True)
            if "hint" in block:
                self.text(block["hint"], f"{pointer}/hint", limit=2000, plain_only=True)
            self.element(block.get("element"), f"{pointer}/element")
        elif kind == "markdown":
            self.max_len(block.get("text"), 12000, f"{pointer}/text")


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Slack's `invalid_blocks` errors for `blocks` (empty when valid)."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.fail("must provide an array", "/blocks")
        return checker.errors
    if len(blocks) > max_blocks:
        checker.fail(f"no more than {max_blocks} items allowed", "/blocks")
    for i, block in enumerate(blocks):
        checker.block(block, f"/blocks/{i}")
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Errors Slack reports (as `invalid_arguments`) for a modal view."""
    checker = _Checker()
    if not isinstance(view, Mapping):
        checker.fail("must provide an object", "/view")
        return checker.errors
    if view.get("type") != "modal":
        checker.fail("must be one of ['modal']", "/view/type")
    checker.text(view.get("title"), "/view/title", limit=24, plain_only=True)
    for name in ("close", "submit"):
        if name in view:
            checker.text(view[name], f"/view/{name}", limit=24, plain_only=True)
    checker.max_len(view.get("private_metadata"), 3000, "/view/private_metadata")
    checker.max_len(view.get("callback_id"), 255, "/view/callback_id")
    checker.max_len(view.get("external_id"), 255, "/view/external_id")
    blocks = view.get("blocks")
    has_inputs = isinstance(blocks, list) and any(
        isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
    )
    if has_inputs and "submit" not in view:
        checker.fail("must provide submit when there are input blocks", "/view/submit")
    checker.errors.extend(
        e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
        for e in validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS)
    )
    return checker.errors


def normalise_blocks(blocks: list[JsonDict]) -> list[JsonDict]:
    """What Slack stores: a generated `block_id` where none was given, `emoji` on plain_text."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if out.get("type") == "plain_text" and "emoji" not in out:
                out["emoji"] = True
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    normalised: list[JsonDict] = []
    for block in blocks:
        b = walk(block)
        if "block_id" not in b:
            alphabet = string.ascii_letters + string.digits + "+=/"
            b["block_id"] = "".join(secrets.choice(alphabet) for _ in range(5))
        normalised.append(b)
    return normalised


def texts_in(blocks: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """Text of text objects anywhere in `blocks` (recursively), in order."""

    def walk(node: Any) -> Iterable[str]:
        if isinstance(node, Mapping):
            if node.get("type") in {"plain_text", "mrkdwn"} and isinstance(node.get("text"), str):
                yield node["text"]
                return
            if node.get("type") == "markdown" and isinstance(node.get("text"), str):
                yield node["text"]
                return
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for block in blocks:
        yield from walk(block)
