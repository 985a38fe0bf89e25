"""Blue-green decisions: which colour a Service routes to, how ready each colour is, whether and
how to switch, and when the EndpointSlices say the switch took effect. The JSON is the API
server's (as the sandbox serves it); hostile variants are generated."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.kube.parsing import parse_deployment
from bot.domain.rollback.blue_green import (
    MAX_ENDPOINTS_PER_SLICE,
    MAX_SELECTOR_LABELS,
    MERGE_PATCH,
    BlueGreenSpec,
    ColorState,
    Endpoint,
    EndpointList,
    ServiceRouting,
    SwitchPlan,
    SwitchRefused,
    color_state,
    parse_endpoint_slices,
    parse_service,
    plan_switch,
    pod_names,
    ready_to_route,
    switch_done,
    switch_progress,
)

JsonDict = dict[str, Any]

SPEC = BlueGreenSpec("checkout", "color", (("blue", "checkout-blue"), ("green", "checkout-green")))
BLUE_PODS = frozenset(
    {"checkout-blue-7d9f-aaaaa", "checkout-blue-7d9f-bbbbb", "checkout-blue-7d9f-ccccc"}
)
GREEN_PODS = frozenset(
    {"checkout-green-5c6b-ddddd", "checkout-green-5c6b-eeeee", "checkout-green-5c6b-fffff"}
)


def service(color: Any = "green", **extra_selector: Any) -> JsonDict:
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "checkout", "namespace": "shop", "resourceVersion": "4711"},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": "checkout", "color": color, **extra_selector},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
        },
    }


def deployment(
    color: str,
    version: str,
    *,
    replicas: int = 3,
    available: int | None = None,
    condition: str = "True",
    labels: dict[str, str] | None = None,
) -> JsonDict:
    available = replicas if available is None else available
    pod_labels = labels if labels is not None else {"app": "checkout", "color": color}
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": f"checkout-{color}",
            "namespace": "shop",
            "uid": f"uid-{color}",
            "resourceVersion": "99",
            "generation": 2,
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout", "color": color}},
            "template": {
                "metadata": {
                    "labels": {**pod_labels, "app.kubernetes.io/version": version},
                },
                "spec": {"containers": [{"name": "checkout", "image": f"checkout:{version}"}]},
            },
        },
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "conditions": [{"type": "Available", "status": condition, "reason": "x"}],
        },
    }


def endpoint(pod: str | None, ready: Any = True, **more: Any) -> JsonDict:
    ep: JsonDict = {
        "addresses": ["10.244.0.7"],
        "conditions": {"ready": ready, "serving": ready is True, "terminating": False},
        **more,
    }
    if pod is not None:
        ep["targetRef"] = {"kind": "Pod", "namespace": "shop", "name": pod, "uid": "u"}
    return ep


def eps_slice(*endpoints: object, service_name: str = "checkout") -> JsonDict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-abcde",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": list(endpoints) if endpoints != (None,) else None,
    }


def states(blue: JsonDict | None = None, green: JsonDict | None = None) -> dict[str, ColorState]:
    blue = deployment("blue", "2.13.0", replicas=0) if blue is None else blue
    green = deployment("green", "2.14.0") if green is None else green
    return {
        "blue": color_state(SPEC, "blue", parse_deployment(blue)),
        "green": color_state(SPEC, "green", parse_deployment(green)),
    }


def decide(
    to: str, routing: ServiceRouting | None, colors: dict[str, ColorState] | None
) -> SwitchPlan | SwitchRefused:
    routing = routing if routing is not None else parse_service(service(), SPEC)
    return plan_switch(SPEC, routing, colors if colors is not None else states(), to)


def plan(
    to: str = "blue",
    routing: ServiceRouting | None = None,
    colors: dict[str, ColorState] | None = None,
) -> SwitchPlan:
    decision = decide(to, routing, colors)
    assert isinstance(decision, SwitchPlan), decision
    return decision


def refusal(
    to: str = "blue",
    routing: ServiceRouting | None = None,
    colors: dict[str, ColorState] | None = None,
) -> str:
    decision = decide(to, routing, colors)
    assert isinstance(decision, SwitchRefused), decision
    return decision.reason


# ---------------------------------------------------------------- the spec


def test_the_spec_names_colours_and_their_deployments() -> None:
    assert SPEC.color_names == ("blue", "green")
    assert SPEC.deployment_of("green") == "checkout-green"
    assert SPEC.deployment_of("red") is None
    assert SPEC.color_of("checkout-blue") == "blue"
    assert SPEC.listed == "blue, green"


@pytest.mark.parametrize(
    ("service_name", "key", "colors", "complaint"),
    [
        ("Checkout", "color", (("blue", "a"), ("green", "b")), "not a Service name"),
        ("checkout", "", (("blue", "a"), ("green", "b")), "not a label key"),
        ("checkout", "bad key!", (("blue", "a"), ("green", "b")), "not a label key"),
        ("checkout", "color", (("blue", "a"),), "at least two colours"),
        ("checkout", "color", (("blue", "a"), ("", "b")), "cannot be a colour"),
        ("checkout", "color", (("blue", "a"), ("g" * 64, "b")), "cannot be a colour"),
        ("checkout", "color", (("blue", "a"), ("green", "B_b")), "not a Deployment name"),
        ("checkout", "color", (("blue", "a"), ("blue", "b")), "named once"),
        ("checkout", "color", (("blue", "a"), ("green", "a")), "named once"),
    ],
)
def test_a_spec_that_could_never_be_switched_is_refused_at_once(
    service_name: str, key: str, colors: tuple[tuple[str, str], ...], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        BlueGreenSpec(service_name, key, colors)


def test_a_prefixed_selector_key_is_a_label_key() -> None:
    spec = BlueGreenSpec("web", "example.com/color", (("blue", "web-blue"), ("green", "web-green")))
    routing = parse_service(
        {"metadata": {"name": "web"}, "spec": {"selector": {"example.com/color": "blue"}}}, spec
    )
    assert routing.live_color == "blue"


# ---------------------------------------------------------------- the Service


def test_the_live_colour_is_the_selectors_value_at_the_key() -> None:
    routing = parse_service(service("green", tier="web"), SPEC)
    assert routing == ServiceRouting(
        name="checkout",
        namespace="shop",
        resource_version="4711",
        selector={},  # not compared
        live_color="green",
        reason=None,
        selector_whole=True,
        routes_by_key=True,
    )
    assert dict(routing.selector) == {"app": "checkout", "color": "green", "tier": "web"}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (service("purple"), "routes to color=purple, which is none of the colours blue, green"),
        (
            {**service(), "spec": {"selector": {"app": "checkout"}}},
            "the Service checkout's selector (app=checkout) does not route by `color`",
        ),
        ({**service(), "spec": {}}, "the Service checkout has no selector"),
        ({**service(), "spec": {"selector": None}}, "has no selector"),
        ({**service(), "spec": {"selector": {}}}, "has no selector"),
        ({**service(), "spec": {"selector": ["color", "blue"]}}, "is not a map of labels"),
        ({**service(), "spec": {"selector": {"color": 7}}}, "is not a map of labels"),
        (
            {**service(), "spec": {"type": "ExternalName", "externalName": "x.example.com"}},
            "is an ExternalName Service",
        ),
        ({**service(), "kind": "ConfigMap"}, "the object read is a ConfigMap, not a Service"),
        ("not json", "the Service's JSON is not an object"),
        (None, "the Service's JSON is not an object"),
        (
            {
                **service(),
                "spec": {"selector": {f"k{i}": "v" for i in range(MAX_SELECTOR_LABELS + 1)}},
            },
            f"more than {MAX_SELECTOR_LABELS} labels",
        ),
    ],
)
def test_a_service_that_routes_to_no_colour_says_why(obj: object, reason: str) -> None:
    routing = parse_service(obj, SPEC)
    assert routing.live_color is None
    assert routing.reason is not None and reason in routing.reason


def test_a_colour_value_too_long_for_a_label_is_not_taken_nor_shortened() -> None:
    routing = parse_service(service("b" * 64), SPEC)
    assert routing.live_color is None
    assert routing.reason == "the Service checkout's `color` is not a valid label value"
    assert "color" not in routing.selector  # dropped, never cut to 63
    assert not routing.selector_whole
    assert not routing.routes_by_key


def test_the_resource_version_is_kept_only_when_it_is_a_plain_string() -> None:
    for rv in (4711, None, "", "9" * 65, ["1"]):
        obj = service()
        obj["metadata"]["resourceVersion"] = rv
        assert parse_service(obj, SPEC).resource_version == ""


def test_names_from_outside_are_bounded() -> None:
    obj = service()
    obj["metadata"]["name"] = "n" * 5000
    obj["metadata"]["namespace"] = {"not": "a string"}
    routing = parse_service(obj, SPEC)
    assert len(routing.name) == 253 and routing.name.endswith("…")
    assert routing.namespace == ""


# ---------------------------------------------------------------- the EndpointSlices


def test_endpoints_are_read_with_their_pods_and_readiness() -> None:
    slices = [
        eps_slice(
            endpoint("checkout-green-5c6b-ddddd"), endpoint("checkout-green-5c6b-eeeee", False)
        ),
        eps_slice(endpoint(None), endpoint("checkout-green-5c6b-fffff", None)),
        eps_slice(endpoint("other-pod"), service_name="cart"),  # another Service's
    ]
    listed = parse_endpoint_slices({"kind": "EndpointSliceList", "items": slices}, "checkout")
    assert listed == EndpointList(
        (
            Endpoint("checkout-green-5c6b-ddddd", True),
            Endpoint("checkout-green-5c6b-eeeee", False),
            Endpoint(None, True),  # an address listed by hand
            Endpoint("checkout-green-5c6b-fffff", True),  # nil ready: "interpreted as true"
        ),
        complete=True,
    )


def test_a_placeholder_slice_has_no_endpoints() -> None:
    # what the controller keeps for a Service with no pod: endpoints and ports null
    assert parse_endpoint_slices([eps_slice(None)]) == EndpointList((), complete=True)


def test_readiness_of_the_wrong_type_is_not_believed() -> None:
    listed = parse_endpoint_slices(
        [
            eps_slice(
                endpoint("p-1", "true"),
                endpoint("p-2", 1),
                {"targetRef": {"kind": "Pod", "name": "p-3"}},
            )
        ]
    )
    assert listed.endpoints == (
        Endpoint("p-1", False),
        Endpoint("p-2", False),
        Endpoint("p-3", True),
    )


def test_a_pod_in_two_slices_at_once_is_one_endpoint() -> None:
    listed = parse_endpoint_slices([eps_slice(endpoint("p-1", False)), eps_slice(endpoint("p-1"))])
    assert listed.endpoints == (Endpoint("p-1", True),)


@pytest.mark.parametrize(
    "slices",
    [
        "nope",
        None,
        {"items": "nope"},
        [eps_slice(endpoint("p-1")), "not a slice"],
        [{**eps_slice(), "endpoints": {"not": "a list"}}],
        [{**eps_slice(), "endpoints": [endpoint("p-1")] * (MAX_ENDPOINTS_PER_SLICE + 1)}],
        [eps_slice(endpoint("p-1"), "not an endpoint")],
        [eps_slice(endpoint("p-1"))] * 101,
    ],
)
def test_slices_that_cannot_all_be_read_conclude_nothing(slices: object) -> None:
    listed = parse_endpoint_slices(slices)
    assert not listed.complete
    assert not switch_done(listed, {"p-1"})


def test_target_refs_that_are_not_pods_are_no_pods() -> None:
    weird = [
        {"addresses": ["1.2.3.4"], "targetRef": {"kind": "Node", "name": "n"}},
        {"addresses": ["1.2.3.4"], "targetRef": {"kind": "Pod", "name": "N" * 300}},
        {"addresses": ["1.2.3.4"], "targetRef": {"kind": "Pod", "name": ["x"]}},
        {"addresses": ["1.2.3.4"], "targetRef": "pod/x"},
    ]
    listed = parse_endpoint_slices([eps_slice(*weird)])
    assert [e.pod for e in listed.endpoints] == [None, None, None, None]


def test_pod_names_are_read_bounded() -> None:
    pods = [
        {"metadata": {"name": "a-1"}},
        {"metadata": {"name": 5}},
        "x",
        {"metadata": {"name": "B"}},
    ]
    assert pod_names(pods) == frozenset({"a-1"})


# ---------------------------------------------------------------- the colours


def test_a_colour_state_comes_from_its_deployment_and_the_slices() -> None:
    listed = parse_endpoint_slices(
        [
            eps_slice(
                *(endpoint(p) for p in sorted(GREEN_PODS)),
                endpoint("checkout-blue-7d9f-aaaaa", False),
            )
        ]
    )
    green = color_state(
        SPEC, "green", parse_deployment(deployment("green", "2.14.0")), listed, GREEN_PODS
    )
    assert green == ColorState(
        color="green",
        deployment="checkout-green",
        found=True,
        version="2.14.0",
        desired_replicas=3,
        ready_replicas=3,
        available_replicas=3,
        scaled_down=False,
        available=True,
        pod_labels={},  # not compared
        endpoints=3,
        ready_endpoints=3,
    )
    blue = color_state(
        SPEC, "blue", parse_deployment(deployment("blue", "2.13.0", replicas=0)), listed, BLUE_PODS
    )
    assert blue.scaled_down and not blue.available
    assert (blue.endpoints, blue.ready_endpoints) == (1, 0)


@pytest.mark.parametrize(
    ("replicas", "available", "condition", "expected"),
    [
        (3, 3, "True", True),
        (3, 2, "True", False),  # not all it wants
        (3, 3, "False", False),  # the Deployment says it is not
        (0, 0, "True", False),  # scaled down: nothing to send traffic to
    ],
)
def test_available_means_the_condition_and_all_replicas(
    replicas: int, available: int, condition: str, expected: bool
) -> None:
    d = parse_deployment(
        deployment("blue", "1", replicas=replicas, available=available, condition=condition)
    )
    assert color_state(SPEC, "blue", d).available is expected


def test_a_missing_deployment_is_a_colour_not_found() -> None:
    state = color_state(SPEC, "blue", None)
    assert not state.found and state.deployment == "checkout-blue" and state.scaled_down


def test_a_colour_state_of_the_wrong_deployment_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="not a colour"):
        color_state(SPEC, "red", None)
    with pytest.raises(ValueError, match="is not blue's Deployment"):
        color_state(SPEC, "blue", parse_deployment(deployment("green", "1")))


def test_a_long_version_is_cut_for_display() -> None:
    state = color_state(SPEC, "blue", parse_deployment(deployment("blue", "v" * 100)))
    assert len(state.version) == 63 and state.version.endswith("…")


# ---------------------------------------------------------------- planning the switch


def test_switching_to_a_scaled_down_colour_scales_it_to_the_live_colours_replicas() -> None:
    p = plan("blue")
    assert (p.from_color, p.to_color, p.from_deployment, p.to_deployment) == (
        "green",
        "blue",
        "checkout-green",
        "checkout-blue",
    )
    assert p.needs_scale_up and p.scale_to == 3 and p.wait_for_replicas == 3
    assert p.scale_patch == {"spec": {"replicas": 3}}
    assert p.service_patch == {
        "metadata": {"resourceVersion": "4711"},
        "spec": {"selector": {"app": "checkout", "color": "blue"}},
    }
    assert p.content_type == MERGE_PATCH == "application/merge-patch+json"
    json.dumps(p.service_patch)  # what is sent is plain JSON


def test_the_patch_keeps_the_other_selector_keys() -> None:
    routing = parse_service(service("green", tier="web"), SPEC)
    mine = states(
        blue=deployment("blue", "1", labels={"app": "checkout", "color": "blue", "tier": "web"})
    )
    p = plan("blue", routing, colors=mine)
    assert p.service_patch["spec"]["selector"] == {
        "app": "checkout",
        "color": "blue",
        "tier": "web",
    }
    assert not p.needs_scale_up and p.scale_to is None and p.scale_patch is None


def test_a_target_with_enough_replicas_is_not_scaled() -> None:
    p = plan("blue", colors=states(blue=deployment("blue", "1", replicas=5)))
    assert not p.needs_scale_up and p.scale_patch is None and p.wait_for_replicas == 5


def test_a_target_with_fewer_replicas_is_scaled_to_the_live_ones() -> None:
    p = plan("blue", colors=states(blue=deployment("blue", "1", replicas=1)))
    assert p.needs_scale_up and p.scale_to == 3


def test_at_least_one_replica_even_when_the_live_colour_has_none() -> None:
    mine = states(green=deployment("green", "2", replicas=0))
    p = plan("blue", colors=mine)
    assert p.scale_to == 1 and p.scale_patch == {"spec": {"replicas": 1}}


def test_the_service_is_patched_only_once_the_target_is_available() -> None:
    p = plan("blue")
    starting = color_state(SPEC, "blue", parse_deployment(deployment("blue", "1", available=1)))
    up = color_state(SPEC, "blue", parse_deployment(deployment("blue", "1")))
    assert not ready_to_route(p, starting)
    assert ready_to_route(p, up)
    assert not ready_to_route(p, states()["green"])  # another colour's state proves nothing


def test_refusals_are_one_clear_sentence() -> None:
    assert refusal("red") == "`red` is not a colour of checkout: choose one of blue, green."
    assert refusal("green") == (
        "checkout already routes to green (checkout-green): nothing to switch."
    )
    no_key = parse_service({**service(), "spec": {"selector": {"app": "checkout"}}}, SPEC)
    assert refusal("blue", no_key) == (
        "The Service checkout's selector (app=checkout) does not route by `color`: the bot will "
        "not switch it."
    )
    assert refusal("blue", colors={"green": states()["green"]}) == (
        "blue's Deployment checkout-blue was not found in shop: there is nothing to switch to."
    )
    assert "was not found" in refusal(
        "blue", colors={**states(), "blue": color_state(SPEC, "blue", None)}
    )
    no_rv = service()
    del no_rv["metadata"]["resourceVersion"]
    assert "without a resourceVersion" in refusal("blue", parse_service(no_rv, SPEC))
    other = service()
    other["metadata"]["name"] = "cart"
    assert refusal("blue", parse_service(other, SPEC)) == (
        "The Service read is cart, not checkout: nothing was changed."
    )
    assert "none of the colours" in refusal("blue", parse_service(service("purple"), SPEC))


def test_a_switch_that_would_select_none_of_the_targets_pods_is_refused() -> None:
    mine = states(blue=deployment("blue", "1", labels={"app": "checkout-v2", "color": "blue"}))
    assert refusal("blue", colors=mine) == (
        "The new selector (app=checkout,color=blue) would not select checkout-blue's pods (their "
        "template lacks app=checkout): switching would leave checkout with no endpoints."
    )


def test_an_unknown_colour_from_outside_is_shown_bounded() -> None:
    reason = refusal("x" * 500)
    assert len(reason) < 200
    huge = {f"example.com/k{i}": "v" * 63 for i in range(MAX_SELECTOR_LABELS - 1)}
    routing = parse_service({**service(), "spec": {"selector": huge}}, SPEC)
    assert routing.reason is not None and len(routing.reason) < 500


# ---------------------------------------------------------------- has it switched?


def listed(*endpoints: JsonDict) -> EndpointList:
    return parse_endpoint_slices([eps_slice(*endpoints)])


def test_done_once_every_ready_endpoint_is_the_targets() -> None:
    blue = sorted(BLUE_PODS)
    eps = listed(*(endpoint(p) for p in blue), endpoint(sorted(GREEN_PODS)[0], False))
    assert switch_done(eps, BLUE_PODS)
    progress = switch_progress(eps, "blue", BLUE_PODS)
    assert progress.done and (progress.target_ready, progress.other_ready) == (3, 0)
    assert progress.message == "3 of 4 endpoints are blue's pods"
    exact = listed(*(endpoint(p) for p in blue))
    assert switch_progress(exact, "blue", BLUE_PODS).message == "3 of 3 endpoints are blue's pods"


def test_done_with_some_targets_not_ready_says_so() -> None:
    blue = sorted(BLUE_PODS)
    eps = listed(endpoint(blue[0]), endpoint(blue[1], False), endpoint(blue[2], False))
    progress = switch_progress(eps, "blue", BLUE_PODS)
    assert progress.done
    assert progress.message == "3 of 3 endpoints are blue's pods (1 ready)"


def test_not_done_while_another_pod_is_ready() -> None:
    blue, green = sorted(BLUE_PODS), sorted(GREEN_PODS)
    eps = listed(endpoint(blue[0]), endpoint(blue[1], False), endpoint(green[0]))
    assert not switch_done(eps, BLUE_PODS)
    progress = switch_progress(eps, "blue", BLUE_PODS)
    assert progress.message == "waiting for blue: 1/3 ready, 1 other endpoint still ready"


def test_not_done_with_no_ready_endpoint() -> None:
    eps = listed(endpoint(sorted(BLUE_PODS)[0], False))
    assert not switch_done(eps, BLUE_PODS)
    assert switch_progress(eps, "blue", BLUE_PODS).message == "waiting for blue: 0/3 ready"
    empty = parse_endpoint_slices([eps_slice(None)])
    assert not switch_done(empty, BLUE_PODS)
    assert switch_progress(empty, "blue", BLUE_PODS, expected=2).message == (
        "waiting for blue: 0/2 ready"
    )


def test_an_address_listed_by_hand_is_not_the_targets() -> None:
    eps = listed(*(endpoint(p) for p in sorted(BLUE_PODS)), endpoint(None))
    assert not switch_done(eps, BLUE_PODS)


def test_slices_read_in_part_say_so() -> None:
    eps = EndpointList((Endpoint(sorted(BLUE_PODS)[0], True),), complete=False)
    progress = switch_progress(eps, "blue", BLUE_PODS)
    assert not progress.done
    assert progress.message.startswith("waiting for blue: the Service's endpoints could not all")


# ---------------------------------------------------------------- hostile input, generated

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
services = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["Service", "Pod"]) | json_values,
        "metadata": st.fixed_dictionaries(
            {},
            optional={
                "name": json_values,
                "namespace": json_values,
                "resourceVersion": json_values,
            },
        )
        | json_values,
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "selector": st.dictionaries(
                    st.sampled_from(["app", "color", "tier"]) | st.text(max_size=70),
                    st.sampled_from(["blue", "green", "checkout"]) | json_values,
                    max_size=4,
                )
                | json_values,
                "type": json_values,
            },
        )
        | json_values,
    },
)
endpoints_ = st.fixed_dictionaries(
    {},
    optional={
        "targetRef": st.fixed_dictionaries(
            {}, optional={"kind": st.sampled_from(["Pod"]) | json_values, "name": json_values}
        )
        | json_values,
        "conditions": st.fixed_dictionaries({}, optional={"ready": json_values}) | json_values,
    },
)
slice_lists = (
    st.lists(
        st.fixed_dictionaries(
            {}, optional={"endpoints": st.lists(endpoints_, max_size=4) | json_values}
        )
        | json_values,
        max_size=4,
    )
    | json_values
)


@settings(max_examples=200, deadline=None)
@given(services, st.sampled_from(["blue", "green", "red"]))
def test_any_service_json_parses_and_plans_without_raising(obj: Any, to: str) -> None:
    routing = parse_service(obj, SPEC)
    assert len(routing.name) <= 253 and len(routing.namespace) <= 253
    assert (routing.live_color is None) == (routing.reason is not None)
    decision = plan_switch(SPEC, routing, states(), to)
    if isinstance(decision, SwitchPlan):
        selector = decision.service_patch["spec"]["selector"]
        assert selector["color"] == to
        assert all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= 63 for k, v in selector.items()
        )
        assert decision.service_patch["metadata"]["resourceVersion"]
    else:
        assert decision.reason and len(decision.reason) < 2000


@settings(max_examples=200, deadline=None)
@given(slice_lists)
def test_any_slices_json_parses_without_raising(obj: Any) -> None:
    listed_ = parse_endpoint_slices(obj)
    for e in listed_.endpoints:
        assert e.pod is None or (isinstance(e.pod, str) and len(e.pod) <= 253)
        assert isinstance(e.ready, bool)
    progress = switch_progress(listed_, "blue", BLUE_PODS)
    assert progress.done == switch_done(listed_, BLUE_PODS)
