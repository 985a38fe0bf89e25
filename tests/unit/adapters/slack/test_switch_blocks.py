"""The blue-green switch's Block Kit: the message (live colour, each colour, the button), the
confirmation modal, the thread's messages; each checked by the Slack stand-in's Block Kit
validator (what Slack answers `invalid_blocks` for), with hostile text from the cluster escaped
and long text clipped within Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_deployment
from bot.adapters.slack import switch_blocks
from bot.adapters.slack.render import Message
from bot.adapters.slack.switch_payloads import SwitchButton, SwitchContext
from bot.domain.rollback.blue_green import (
    BlueGreenSpec,
    SwitchPlan,
    SwitchProgress,
    color_state,
    parse_endpoint_slices,
    parse_service,
    plan_switch,
)
from bot.domain.rollback.models import RunInfo
from bot.domain.rollback.switches import (
    SwitchEnding,
    SwitchOutcome,
    SwitchView,
    pods_of,
    version_mark,
)
from rollback_sandbox.slack.blockkit import validate_blocks, validate_view
from tests.unit.usecases.rollback.switch_fakes import REPLICASETS, FakeCluster, deployment_json

TAKEN = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
SPEC = BlueGreenSpec("web", "color", (("blue", "web-blue"), ("green", "web-green")))
RUN = RunInfo("web", "U0ONCALL01", "green (4.2.0)", "blue (4.1.0)", 0, TAKEN)


def view_of(cluster: FakeCluster, *, versions: dict[str, str] | None = None) -> SwitchView:
    """The view the use case builds, from the fake cluster's JSON and the domain's functions."""
    routing = parse_service(cluster.service_json(), SPEC)
    endpoints = parse_endpoint_slices(cluster.slices(), "web")
    states = {}
    for color, name in SPEC.colors:
        version = (versions or {}).get(color, cluster.versions[name])
        obj = deployment_json(
            name, version, replicas=cluster.replicas[name], available=cluster.available[name]
        )
        states[color] = color_state(
            SPEC, color, parse_deployment(obj), endpoints, pods_of(endpoints, {REPLICASETS[name]})
        )
    live = routing.live_color
    offers = tuple(
        (c, plan_switch(SPEC, routing, states, c)) for c in SPEC.color_names if c != live
    )
    return SwitchView(
        service="web",
        namespace="shop",
        cluster="https://k8s.example.com",
        spec=SPEC,
        routing=routing,
        colors=tuple(states[c] for c in SPEC.color_names),
        endpoints=endpoints,
        offers=offers,
        asked_by="U0ONCALL01",
        taken_at=TAKEN,
    )


def valid(message: Message) -> str:
    assert validate_blocks(message.blocks) == []
    return json.dumps(message.blocks, ensure_ascii=False)


def plan_of(view: SwitchView, color: str = "blue") -> SwitchPlan:
    offer = view.offer(color)
    assert isinstance(offer, SwitchPlan)
    return offer


def test_the_message_shows_green_live_and_offers_to_scale_blue_up() -> None:
    view = view_of(FakeCluster())
    message = switch_blocks.switch_message(view)
    shown = valid(message)
    assert message.text == "web: green is live"
    assert "*Live: green* · Service `web` selects `color=green`" in shown
    assert "*blue* (idle) · `web-blue` · 4.1.0" in shown
    assert "scaled down (0 replicas) · no endpoints in the Service" in shown
    assert "*green* (live) · `web-green` · 4.2.0" in shown
    assert "3/3 ready, 3 available · 3/3 endpoints ready in the Service" in shown
    [button] = [b["accessory"] for b in message.blocks if "accessory" in b]
    assert button["text"]["text"] == "Scale up blue and switch"
    assert button["action_id"] == "switch:to:blue"
    assert SwitchButton.decode(button["value"]) == SwitchButton(
        service="web", to_color="blue", live="green", version=version_mark("4.1.0")
    )


def test_an_idle_colour_still_scaled_up_is_said_and_offered_at_once() -> None:
    view = view_of(FakeCluster(blue_replicas=3))
    message = switch_blocks.switch_message(view)
    shown = valid(message)
    assert "still scaled up: traffic can switch to it at once" in shown
    [button] = [b["accessory"] for b in message.blocks if "accessory" in b]
    assert button["text"]["text"] == "Switch back to blue"


def test_while_a_switch_runs_no_button_and_who_is_switching() -> None:
    view = view_of(FakeCluster()).with_run(RUN)
    shown = valid(switch_blocks.switch_message(view))
    assert "<@U0ONCALL01> is switching to *blue (4.1.0)*" in shown
    assert '"accessory"' not in shown


def test_status_and_history_have_no_buttons() -> None:
    view = view_of(FakeCluster())
    assert '"accessory"' not in valid(switch_blocks.status_message(view))
    history = valid(switch_blocks.history_message(view))
    assert "web is a blue-green service" in history and "web-blue, web-green" in history


def test_a_service_routing_to_no_colour_says_why_and_offers_nothing() -> None:
    cluster = FakeCluster()
    cluster.selector["color"] = "purple"
    view = view_of(cluster)
    shown = valid(switch_blocks.switch_message(view))
    assert (
        ":warning: *No live colour*: the Service web routes to color=purple, which is none of "
        "the colours blue, green"
    ) in shown
    assert '"accessory"' not in shown
    # a value that is no label value at all is not shown, nor taken
    cluster.selector["color"] = "<!channel>"
    shown = valid(switch_blocks.switch_message(view_of(cluster)))
    assert "<!channel>" not in shown and "is not a valid label value" in shown


def test_hostile_versions_are_escaped_and_clipped() -> None:
    hostile = "<https://evil.example|click> & " + "x" * 5000
    view = view_of(FakeCluster(), versions={"blue": hostile, "green": "*bold* `code`"})
    shown = valid(switch_blocks.switch_message(view))
    assert "<https://evil" not in shown and "&lt;https://evil.example|click&gt; &amp;" in shown
    assert "x" * 200 not in shown
    plan = plan_of(view)
    modal = switch_blocks.confirm_modal(
        SwitchContext(
            button=SwitchButton(service="web", to_color="blue"), channel="C1", message_ts="1.2"
        ),
        plan,
        view,
        reason_required=False,
        ready_timeout=600,
    )
    assert validate_view(modal) == []
    assert "<https://evil" not in json.dumps(modal)


def test_the_confirmation_says_what_will_happen() -> None:
    view = view_of(FakeCluster())
    plan = plan_of(view)
    context = SwitchContext(
        button=SwitchButton(service="web", to_color="blue", live="green"),
        channel="C0SHOP",
        message_ts="1795752000.000100",
    )
    modal = switch_blocks.confirm_modal(
        context, plan, view, reason_required=True, ready_timeout=600
    )
    assert validate_view(modal) == []
    text = modal["blocks"][0]["text"]["text"]
    assert text.startswith(
        "Switch *web* from *green* (4.2.0, `web-green`) back to *blue* (4.1.0, `web-blue`)?\n"
        "1. Scale `web-blue` up from 0 to 3 replicas, and wait until they are available (up to "
        "10m00s; the Service is not touched before).\n"
        "2. Point Service `web`'s selector at `color=blue`: one patch, refused if the Service "
        "changed since it was read.\n"
        "3. Wait until its EndpointSlices show only blue's pods, and tell the time."
    )
    assert modal["submit"]["text"] == "Scale up and switch"
    assert modal["blocks"][1]["optional"] is False
    assert SwitchContext.decode(modal["private_metadata"]) == context
    ready = plan_of(view_of(FakeCluster(blue_replicas=3)))
    quick = switch_blocks.confirm_modal(
        context, ready, view, reason_required=False, ready_timeout=600
    )
    assert quick["submit"]["text"] == "Switch"
    assert "Check that blue is available with 3 ready replicas." in json.dumps(quick)


def test_the_thread_tells_the_start_the_scale_up_and_readiness() -> None:
    view = view_of(FakeCluster())
    plan = plan_of(view)
    blue = view.colors[0]
    started = valid(switch_blocks.started_message(RUN, plan, "5xx <b>", "shop"))
    assert "<@U0ONCALL01> started switching *web* (`shop`) from *green (4.2.0)* back to " in started
    assert "&gt;" not in started.split("\\n>")[0] and "5xx &lt;b&gt;" in started
    scaling = valid(switch_blocks.scaling_message(plan, blue))
    assert "Scaling up *blue* (`web-blue`) from 0 to 3 replicas first" in scaling
    up = replace(blue, ready_replicas=1, available_replicas=0)
    assert "Waiting for *blue* to be ready: 1/3 ready · 0/3 available · 1.2s" in valid(
        switch_blocks.readiness_message(plan, up, 1.23)
    )
    done = replace(blue, ready_replicas=3, available_replicas=3)
    assert "*blue* is ready: 3/3 ready · 3/3 available · after 2.0s" in valid(
        switch_blocks.readiness_message(plan, done, 2.0, ready=True)
    )
    assert ":x: *blue* did not become ready" in valid(
        switch_blocks.readiness_message(plan, up, 600, ready=False)
    )


def outcome(ending: SwitchEnding, **extra: Any) -> SwitchOutcome:
    plan = plan_of(view_of(FakeCluster()))
    fields: dict[str, Any] = {
        "ending": ending,
        "service": "web",
        "plan": plan,
        "total_seconds": 2.84,
        **extra,
    }
    return SwitchOutcome(**fields)


def test_the_outcome_tells_the_switch_time_and_the_total() -> None:
    done = outcome(
        SwitchEnding.SWITCHED,
        switch_seconds=0.31,
        scaled_up=True,
        service_patched=True,
        endpoints=SwitchProgress(True, "3 of 3 endpoints are blue's pods", 3, 0),
    )
    shown = valid(switch_blocks.outcome_message(done))
    assert (
        ":white_check_mark: Switched *web* to *blue* in *0.3s*: EndpointSlices show only blue's "
        "pods (3 of 3 endpoints are blue's pods). 2.8s in all, scaling up included."
    ) in shown
    quick = replace(done, switch_seconds=0.02)
    assert "in *under 0.1s*" in valid(switch_blocks.outcome_message(quick))


@pytest.mark.parametrize(
    ("ending", "extra", "expected"),
    [
        (
            SwitchEnding.NOT_READY,
            {"error": "blue (web-blue) did not become ready within 10m00s", "scaled_up": True},
            ":x: Not switched after 2.8s: blue (web-blue) did not become ready within 10m00s.\\n"
            "The Service web still routes to green (web-green); blue (web-blue) stays scaled up "
            "to 3 replicas: nothing else was changed.",
        ),
        (
            SwitchEnding.NOT_CONVERGED,
            {"error": "its EndpointSlices did not show only blue's pods", "service_patched": True},
            ":warning: Switched, but not seen taking effect after 2.8s",
        ),
        (
            SwitchEnding.REFUSED,
            {"error": "the Service web changed since the switch was confirmed"},
            ":no_entry_sign: Not switched after 2.8s",
        ),
        (
            SwitchEnding.ERROR,
            {"error": "patching service shop/web: timed out", "patch_unknown": True},
            "Whether the Service web routes to blue or still to green is not known",
        ),
        (SwitchEnding.STOPPED, {"error": "the bot stopped"}, ":grey_question: Not switched"),
    ],
)
def test_every_other_ending_says_what_is_left(
    ending: SwitchEnding, extra: dict[str, Any], expected: str
) -> None:
    shown = valid(switch_blocks.outcome_message(outcome(ending, **extra)))
    assert expected in shown


def test_an_error_from_outside_is_escaped_and_bounded() -> None:
    said = outcome(SwitchEnding.ERROR, error="<!here> " + "y" * 10_000)
    shown = valid(switch_blocks.outcome_message(said))
    assert "<!here>" not in shown and "&lt;!here&gt;" in shown
    assert len(shown) < 4000


def test_already_switching_names_who_and_since_when() -> None:
    shown = valid(switch_blocks.already_switching_message(RUN))
    assert "<@U0ONCALL01> is already switching *web* to *blue (4.1.0)*" in shown
