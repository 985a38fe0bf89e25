"""A blue-green switch back, end to end over real HTTP: signed Slack requests → the bot → the
simulated cluster (the demo's shop/web Service routing to web-green, web-blue scaled to 0), and
what the real kubectl sees after it.

The demo cluster here makes pods ready a whole second after they start (40 simulated seconds at
40×), so a second switch asked while the first waits for blue is refused deterministically."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config.catalog import Catalog, ServiceEntry
from bot.observability.logs import FIELDS
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from rollback_sandbox.slack.web_api import StoredMessage
from tests.bot_fixtures import DEMO_SPEED, BotUnderTest, StartBot, demo_catalog
from tests.cluster_fixtures import Kubectl, find_kubectl

pytestmark = pytest.mark.kubectl

CHANNEL = DEFAULT_CHANNEL_ID
READY_AFTER = 40.0  # simulated seconds: one real second at the demo's speed
SERVICE_NAME = "kubernetes.io/service-name"
SWITCHED = re.compile(r"Switched \*web\* to \*blue\* in \*(under 0\.1s|\d+(?:\.\d)?s)\*")


@pytest.fixture
def demo_cluster() -> Iterator[SandboxThread]:
    """The demo, with pods ready a second after they start (overrides bot_fixtures')."""
    with SandboxThread(seed="demo", speed=DEMO_SPEED, ready_after=READY_AFTER) as sandbox:
        yield sandbox


@pytest.fixture
def kubectl(demo_kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(find_kubectl(), demo_kubeconfig, tmp_path / "kubectl-cache")


def web_entry(**extra: Any) -> ServiceEntry:
    return ServiceEntry.model_validate(
        {
            "kind": "BlueGreen",
            "namespace": "shop",
            "service": "web",
            "selector_key": "color",
            "blue": "web-blue",
            "green": "web-green",
            **extra,
        }
    )


def blue_green_catalog(**extra: Any) -> Catalog:
    return demo_catalog(web=web_entry(**extra))


def thread_text(t: BotUnderTest, message: StoredMessage) -> str:
    return "\n".join(m.all_text() for m in t.slack.thread(CHANNEL, message.ts))


def get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def slice_pods(kubectl: Kubectl) -> dict[str, bool]:
    """The web Service's endpoints, as kubectl lists its EndpointSlices: pod → ready."""
    listed = get(kubectl, "endpointslices", "-n", "shop", "-l", f"{SERVICE_NAME}=web")
    return {
        ep["targetRef"]["name"]: ep["conditions"]["ready"]
        for s in listed["items"]
        for ep in s.get("endpoints") or []
    }


async def switch_message(t: BotUnderTest) -> StoredMessage:
    reply = await t.sender.slash_command("/rollback", "web")
    assert reply.status == 200

    def posted() -> StoredMessage | None:
        return next((m for m in t.slack.messages(CHANNEL) if m.buttons()), None)

    message = await t.slack.wait_for(posted)
    assert isinstance(message, StoredMessage)
    return message


async def open_modal(t: BotUnderTest, message: StoredMessage, user: str) -> dict[str, Any]:
    views_before = len(t.slack.views())
    reply = await t.sender.click(CHANNEL, message.ts, "switch:to:blue", user_id=user)
    assert reply.status == 200
    view: Any = await t.slack.wait_for(
        lambda: t.slack.views()[-1] if len(t.slack.views()) > views_before else None
    )
    assert isinstance(view, dict)
    return view


def audit_steps(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, FIELDS)["step"] for r in caplog.records if r.name == "rollback_bot.audit"]


async def test_switch_back_to_blue_scaled_down_first_over_signed_slack_requests(
    start_bot: StartBot,
    kubectl: Kubectl,
    caplog: pytest.LogCaptureFixture,
    record_property: Any,
) -> None:
    caplog.set_level(logging.INFO)
    t = await start_bot(blue_green_catalog())
    green_pods = set(slice_pods(kubectl))
    assert green_pods and all(p.startswith("web-green-") for p in green_pods)

    # `/rollback web`: green is live, blue is scaled down; one button, scale up then switch.
    message = await switch_message(t)
    shown = message.all_text()
    assert "*Live: green*" in shown and "`color=green`" in shown
    assert "*blue* (idle) · `web-blue` · 4.1.0" in shown
    assert "scaled down (0 replicas)" in shown
    assert "*green* (live) · `web-green` · 4.2.0" in shown
    assert "3/3 endpoints ready in the Service" in shown
    [button] = message.buttons()
    assert button["action_id"] == "switch:to:blue"
    assert button["text"]["text"] == "Scale up blue and switch"

    # Two people open the confirmation; the modal says what will happen.
    other = t.slack.add_user("second-oncall")
    first = await open_modal(t, message, DEFAULT_USER_ID)
    second = await open_modal(t, message, other)
    modal = json.dumps(first["blocks"])
    assert "Scale `web-blue` up from 0 to 3 replicas" in modal
    assert "selector at `color=blue`" in modal
    assert "EndpointSlices show only blue's pods" in modal
    assert first["submit"]["text"] == "Scale up and switch"

    # The first confirms; the second, while blue is still coming up, is refused.
    reply = await t.sender.submit_view(first["id"], {"reason": "5xx after green"})
    assert reply.status == 200
    await t.slack.wait_for(lambda: "Scaling up *blue*" in thread_text(t, message))
    reply = await t.sender.submit_view(second["id"], {"reason": "me too"}, user_id=other)
    assert reply.status == 200
    busy = await t.slack.wait_for(
        lambda: [
            m for m in t.slack.ephemerals(CHANNEL, other) if "already switching" in m.all_text()
        ]
    )
    assert (
        f"<@{DEFAULT_USER_ID}> is already switching *web* to *blue (4.1.0)*" in busy[0].all_text()
    )
    # While it runs, the message offers no second switch.
    locked = t.slack.message(CHANNEL, message.ts)
    assert locked is not None and not locked.buttons()
    assert "is switching to *blue (4.1.0)*" in locked.all_text()

    await t.slack.wait_for(lambda: SWITCHED.search(thread_text(t, message)), timeout=20)
    story = thread_text(t, message)
    assert f"<@{DEFAULT_USER_ID}> started switching *web*" in story
    assert "from *green (4.2.0)* back to *blue (4.1.0)*" in story
    assert "5xx after green" in story
    assert "Scaling up *blue* (`web-blue`) from 0 to 3 replicas first" in story
    assert "*blue* is ready: 3/3 ready · 3/3 available" in story
    assert "EndpointSlices show only blue's pods (3 of 3 endpoints are blue's pods)" in story
    assert "in all, scaling up included" in story
    took = SWITCHED.search(story)
    assert took is not None
    assert took.group(1) == "under 0.1s" or float(took.group(1).rstrip("s")) < 1.0
    [timing] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("switched ")]
    seconds = re.search(r"in ([\d.]+)s \(([\d.]+)s in all\)", timing)
    assert seconds is not None and float(seconds.group(1)) < 1.0, timing
    record_property("switch", timing)  # "switched shop/web to blue in 0.030s (1.983s in all)"

    # The cluster, as kubectl sees it: the selector names blue, the slices hold blue's pods only.
    service = get(kubectl, "service", "web", "-n", "shop")
    assert service["spec"]["selector"] == {"app": "web", "color": "blue"}
    blue_pods = slice_pods(kubectl)
    assert len(blue_pods) == 3 and all(blue_pods.values())
    assert all(p.startswith("web-blue-") for p in blue_pods) and not set(blue_pods) & green_pods
    table = kubectl(
        "get", "endpointslices", "-n", "shop", "-l", f"{SERVICE_NAME}=web"
    ).stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    blue_ips = {
        p["status"]["podIP"]
        for p in get(kubectl, "pods", "-n", "shop", "-l", "app=web,color=blue")["items"]
    }
    assert set(table[1].split()[3].split(",")) == blue_ips
    assert get(kubectl, "deployment", "web-blue", "-n", "shop")["spec"]["replicas"] == 3
    # green keeps running: switching back is one more click
    assert get(kubectl, "deployment", "web-green", "-n", "shop")["spec"]["replicas"] == 3

    # The message shows the new state, blue live, with the way back to green.
    def refreshed() -> StoredMessage | None:
        now = t.slack.message(CHANNEL, message.ts)
        return now if now is not None and "*Live: blue*" in now.all_text() else None

    final = await t.slack.wait_for(refreshed)
    assert final is not None
    assert [b["text"]["text"] for b in final.buttons()] == ["Switch back to green"]
    steps = audit_steps(caplog)
    assert steps[0] == "asked"
    for step in ("confirmed", "started", "progress", "busy", "succeeded"):
        assert step in steps
    assert steps[-1] == "succeeded"


async def test_a_required_reason_is_asked_for_and_status_shows_the_colours(
    start_bot: StartBot,
) -> None:
    t = await start_bot(blue_green_catalog(reason_required=True))
    await t.sender.slash_command("/rollback", "status web")
    status = await t.slack.wait_for(
        lambda: next((m for m in t.slack.messages(CHANNEL) if "Live: green" in m.all_text()), None)
    )
    assert status is not None and not status.buttons()
    message = await switch_message(t)
    view = await open_modal(t, message, DEFAULT_USER_ID)
    reply = await t.sender.submit_view(view["id"], {})
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"switch:reason": "A reason is required to switch web."},
    }
    assert not thread_text(t, message)
