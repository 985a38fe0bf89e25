"""The HTTP surface's own decisions: readiness while stopping, the ack metric's labels, the
shape a signed payload needs before Bolt routes it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.entry.serve.routes import Readiness, build_routes, payload_type, shape_problem
from bot.observability.metrics import Metrics


async def webhook(_request: Any) -> Any:
    raise AssertionError("not called")


async def test_a_stopping_replica_is_unready_at_once() -> None:
    async def fine() -> None:
        return None

    readiness = Readiness({"slack": fine})
    app = build_routes(
        bolt=None, signing_secret=None, alertmanager_webhook=webhook, readiness=readiness,
        metrics=Metrics(),
    )  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        ready = await client.get("/readyz")
        assert ready.status == 200
        readiness.stopping = True  # what Bot.stop does first
        stopping = await client.get("/readyz")
        assert stopping.status == 503
        assert (await stopping.json())["status"] == "stopping"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"command": "/rollback"}, "slash_command"),
        ({"type": "block_actions"}, "block_actions"),
        ({"type": "x" * 500}, "other"),
        ({"type": ["list"]}, "other"),
        ({}, "other"),
    ],
)
def test_the_ack_metric_label_is_one_of_a_fixed_few(body: dict[str, Any], kind: str) -> None:
    assert payload_type(body) == kind


@pytest.mark.parametrize(
    "body",
    [
        {"type": "block_actions", "actions": None, "user": {"id": "U1"}},
        {"type": "block_actions", "actions": [{"value": "x"}], "user": {"id": "U1"}},
        {"type": "block_actions", "actions": [{"action_id": "a"}], "user": "U1"},
        {"type": "view_submission", "view": {"id": "V1"}, "user": {"id": "U1"}},
        {"type": "shortcut", "team": ["T1"]},
        {"type": "shortcut", "view": None},
        {"type": "event_callback", "event": {}},
        {"command": "/rollback", "user_id": "U1"},
    ],
)
def test_payloads_bolt_cannot_route_are_named(body: dict[str, Any]) -> None:
    assert shape_problem(body)


def test_slacks_own_shapes_pass() -> None:
    assert shape_problem({"command": "/rollback", "user_id": "U1", "channel_id": "C1"}) is None
    click = {"type": "block_actions", "actions": [{"action_id": "a"}], "user": {"id": "U1"}}
    assert shape_problem(click) is None
    view = {
        "type": "view_submission",
        "view": {"id": "V1", "callback_id": "c"},
        "user": {"id": "U"},
    }
    assert shape_problem(view) is None
