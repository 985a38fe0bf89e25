"""A switch as shown and told: a colour's pods among the endpoints by their ReplicaSets' names,
the lock's name, and what a switch's end says is left."""

from __future__ import annotations

from typing import Any

from bot.domain.rollback.blue_green import (
    BlueGreenSpec,
    Endpoint,
    EndpointList,
    SwitchPlan,
    parse_endpoint_slices,
    parse_service,
    plan_switch,
)
from bot.domain.rollback.locks import lease_name
from bot.domain.rollback.switches import (
    SwitchEnding,
    SwitchOutcome,
    pods_of,
    switch_lock_key,
)
from tests.unit.adapters.slack.test_switch_blocks import view_of
from tests.unit.usecases.rollback.switch_fakes import FakeCluster

SPEC = BlueGreenSpec("web", "color", (("blue", "web-blue"), ("green", "web-green")))


def test_a_colours_pods_are_named_after_its_replicasets() -> None:
    endpoints = EndpointList(
        (
            Endpoint("web-blue-6d8f9-abcde", True),
            Endpoint("web-blue-6d8f9-fghij", False),
            Endpoint("web-blue-6d8f9", True),  # the ReplicaSet's own name is no pod of it
            Endpoint("web-blue-6d8f9x-abcde", True),  # another ReplicaSet's
            Endpoint("web-blue-6d8f9-ab-cd", True),  # a suffix with a dash: not one of its pods
            Endpoint("web-green-7c4b2-klmno", True),
            Endpoint(None, True),
        )
    )
    assert pods_of(endpoints, {"web-blue-6d8f9"}) == {
        "web-blue-6d8f9-abcde",
        "web-blue-6d8f9-fghij",
    }
    assert pods_of(endpoints, {"web-green-7c4b2", "web-green-old"}) == {"web-green-7c4b2-klmno"}
    assert pods_of(endpoints, ()) == frozenset()


def test_a_switch_is_locked_apart_from_any_deployment() -> None:
    assert switch_lock_key("web") == "service:web"
    # Its Lease can be no Deployment's, even one literally named "service.web".
    assert lease_name(switch_lock_key("web")) == "rollback-bot-service.web"
    assert lease_name("service.web") == "rollback-bot.service.web"


def test_pods_of_a_long_replicaset_name_cut_by_the_name_generator_are_its_own() -> None:
    # The API server cuts `generateName` to 58 characters before adding 5 random ones.
    replicaset = "checkout-payments-gateway-frontend-canary-blue-6d8f9b7c4d"
    pod = f"{replicaset}-"[:58] + "x7k2q"
    other = "checkout-payments-gateway-frontend-canary-green-7c4b2f9d8e-"[:58] + "b2n4m"
    endpoints = parse_endpoint_slices(
        [
            {
                "metadata": {"labels": {"kubernetes.io/service-name": "web"}},
                "endpoints": [
                    {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": pod}},
                    {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Pod", "name": other}},
                ],
            }
        ],
        "web",
    )
    assert pods_of(endpoints, {replicaset}) == {pod}


def plan() -> SwitchPlan:
    view = view_of(FakeCluster())
    routing = parse_service(FakeCluster().service_json(), SPEC)
    decision = plan_switch(SPEC, routing, {s.color: s for s in view.colors}, "blue")
    assert isinstance(decision, SwitchPlan)
    return decision


def outcome(ending: SwitchEnding, **extra: Any) -> SwitchOutcome:
    fields: dict[str, Any] = {"ending": ending, "service": "web", "plan": plan()}
    return SwitchOutcome(total_seconds=3.0, **(fields | extra))


def test_what_is_left_is_said_for_every_end() -> None:
    done = outcome(SwitchEnding.SWITCHED, switch_seconds=0.26, service_patched=True)
    assert done.succeeded and done.left == ""
    assert done.sentence() == "switched web from green to blue in 0.3s (3.0s in all)"
    assert outcome(SwitchEnding.SWITCHED, switch_seconds=0.01).switch_time == "under 0.1s"
    scaled = outcome(SwitchEnding.NOT_READY, error="blue did not become ready", scaled_up=True)
    assert scaled.timed_out and not scaled.succeeded
    assert scaled.sentence() == (
        "blue did not become ready. The Service web still routes to green (web-green); blue "
        "(web-blue) stays scaled up to 3 replicas: nothing else was changed."
    )
    assert outcome(SwitchEnding.REFUSED).left == (
        "The Service web still routes to green (web-green): nothing was changed."
    )
    assert outcome(SwitchEnding.NOT_CONVERGED, service_patched=True).left == (
        "The Service web routes to blue (web-blue) now."
    )
    assert outcome(SwitchEnding.ERROR, patch_unknown=True).left.startswith(
        "Whether the Service web routes to blue or still to green is not known"
    )
