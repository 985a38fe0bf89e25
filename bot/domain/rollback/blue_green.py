"""Blue-green switches: a Service routes to one of two (or more) colours by one key of its
selector, each colour a Deployment; rolling back is pointing the Service at the other colour
again, after scaling it up if it was scaled down.

The decisions, all pure:

- which colour is live: the value at the spec's `selector_key` in the Service's selector
  (`ServiceRouting`, parsed from the Service's JSON);
- how ready each colour is: its Deployment's counts and Available condition plus its pods' place
  in the Service's EndpointSlices (`ColorState`);
- whether and how to switch (`plan_switch`): refused with one sentence, or a `SwitchPlan` with
  the Service's merge patch (the whole new selector, under a resourceVersion precondition, so a
  Service someone changed since it was read is not overwritten) and, when the target colour has
  fewer replicas than the live one wants, the Deployment's scale patch;
- whether the switch took effect (`switch_done`, `switch_progress`): the EndpointSlices, not the
  Service, say where traffic goes; done once every ready endpoint is one of the target's pods.

The Service and the EndpointSlices come from outside and are treated as hostile: anything of the
wrong type is ignored, lists are read up to a bound, and every string that may end up in Slack
is bounded (names 253 characters, label values and versions 63). A selector value is never
shortened: it goes back to the API server in the patch, so one that is too long is not taken.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.domain.rollback.models import Deployment, JsonDict

MAX_NAME = 253  # a DNS subdomain: Deployment and pod names
MAX_VALUE = 63  # a label value (a colour), and what a version is cut to for display
MAX_LABEL_KEY = 317  # an optional 253-character prefix, "/", a 63-character name
MAX_SELECTOR_LABELS = 64  # far beyond any real selector; more is not a Service to trust
MAX_RESOURCE_VERSION = 64  # opaque, but etcd's are decimal numbers well within this
MAX_SLICES = 100  # a Service of 10 000 endpoints at the controller's 100 a slice
MAX_ENDPOINTS_PER_SLICE = 1000  # the API's own validation limit
MAX_ENDPOINTS = 10_000
MAX_SHOWN = 300  # a selector as a sentence shows it

MERGE_PATCH = "application/merge-patch+json"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _clip(text: str, limit: int) -> str:
    """For display only: what is sent back to the API server is never clipped."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: object, limit: int) -> str:
    return _clip(value, limit) if isinstance(value, str) else ""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_label_key(key: object) -> bool:
    if not isinstance(key, str) or not key or len(key) > MAX_LABEL_KEY:
        return False
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= MAX_NAME and _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= MAX_VALUE and bool(_LABEL_NAME.match(name))


def _is_label_value(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_VALUE and bool(_LABEL_VALUE.match(value))


def _labels(value: object) -> tuple[dict[str, str], bool]:
    """A label map from outside: the valid entries, and whether it was read whole (a map of
    valid entries, not too many). Invalid entries are dropped, never shortened."""
    if not isinstance(value, dict):
        return {}, value is None
    whole = len(value) <= MAX_SELECTOR_LABELS
    out: dict[str, str] = {}
    for key, val in list(value.items())[:MAX_SELECTOR_LABELS]:
        if _is_label_key(key) and _is_label_value(val):
            out[key] = val
        else:
            whole = False
    return out, whole


def _show(selector: Mapping[str, str]) -> str:
    return _clip(",".join(f"{k}={v}" for k, v in selector.items()), MAX_SHOWN) or "(empty)"


# ---------------------------------------------------------------- the spec


@dataclass(frozen=True)
class BlueGreenSpec:
    """A blue-green service as the catalog names it: the Service, the key of its selector that
    picks the colour, and each colour's Deployment, e.g. `(("blue", "checkout-blue"), ("green",
    "checkout-green"))`. Raises ValueError for a spec that could never be switched, so a wrong
    catalog is told at load time rather than in an incident."""

    service: str
    selector_key: str
    colors: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if not (len(self.service) <= MAX_VALUE and _DNS_LABEL.match(self.service)):
            raise ValueError(f"{self.service!r} is not a Service name")
        if not _is_label_key(self.selector_key):
            raise ValueError(f"{self.selector_key!r} is not a label key")
        if len(self.colors) < 2:
            raise ValueError("a blue-green service needs at least two colours")
        for color, deployment in self.colors:
            if not color or not _is_label_value(color):
                raise ValueError(f"{color!r} is not a label value, so it cannot be a colour")
            if not (len(deployment) <= MAX_NAME and _DNS_SUBDOMAIN.match(deployment)):
                raise ValueError(f"{deployment!r} is not a Deployment name")
        names = [c for c, _ in self.colors]
        deployments = [d for _, d in self.colors]
        if len(set(names)) != len(names) or len(set(deployments)) != len(deployments):
            raise ValueError("each colour, and each colour's Deployment, must be named once")

    @property
    def color_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.colors)

    def deployment_of(self, color: str) -> str | None:
        return next((d for c, d in self.colors if c == color), None)

    def color_of(self, deployment: str) -> str | None:
        return next((c for c, d in self.colors if d == deployment), None)

    @property
    def listed(self) -> str:
        """The colours as a sentence lists them: "blue, green"."""
        return ", ".join(self.color_names)


# ---------------------------------------------------------------- the Service


@dataclass(frozen=True)
class ServiceRouting:
    """Where a Service sends traffic, by the spec's reading of its selector. `live_color` is None
    when the selector does not name one of the spec's colours at `selector_key`; `reason` then
    says why, in a sentence. `selector` holds the selector's valid labels; `selector_whole` is
    false when some were not (a patch built from it still leaves those alone: a merge patch only
    changes the keys it names). `routes_by_key`: the selector has the spec's key, whatever its
    value."""

    name: str
    namespace: str
    resource_version: str
    selector: Mapping[str, str] = field(compare=False)
    live_color: str | None
    reason: str | None = None
    selector_whole: bool = True
    routes_by_key: bool = False


def parse_service(obj: object, spec: BlueGreenSpec) -> ServiceRouting:
    """The Service's routing from its JSON. Never raises: a Service that cannot be read is one
    with no live colour, and the reason says what was wrong."""
    if not isinstance(obj, dict):
        return ServiceRouting("", "", "", {}, None, "the Service's JSON is not an object")
    metadata = _map(obj.get("metadata"))
    name = _text(metadata.get("name"), MAX_NAME)
    namespace = _text(metadata.get("namespace"), MAX_NAME)
    rv = metadata.get("resourceVersion")
    # opaque, sent back as a precondition: a value that is not a plain one is not kept
    resource_version = rv if isinstance(rv, str) and 0 < len(rv) <= MAX_RESOURCE_VERSION else ""
    service_spec = _map(obj.get("spec"))
    selector, whole = _labels(service_spec.get("selector"))

    def routing(live: str | None, reason: str | None) -> ServiceRouting:
        by_key = spec.selector_key in selector
        return ServiceRouting(
            name, namespace, resource_version, selector, live, reason, whole, by_key
        )

    kind = obj.get("kind")
    if kind is not None and kind != "Service":
        return routing(None, f"the object read is a {_text(kind, MAX_VALUE)}, not a Service")
    shown = name or spec.service
    if service_spec.get("type") == "ExternalName":
        return routing(None, f"the Service {shown} is an ExternalName Service: no pods back it")
    raw_selector = service_spec.get("selector")
    if isinstance(raw_selector, dict) and len(raw_selector) > MAX_SELECTOR_LABELS:
        return routing(
            None, f"the Service {shown}'s selector has more than {MAX_SELECTOR_LABELS} labels"
        )
    if not selector and not whole:
        return routing(None, f"the Service {shown}'s selector is not a map of labels")
    if not selector:
        return routing(
            None,
            f"the Service {shown} has no selector: its endpoints are kept by hand, not chosen "
            f"by `{spec.selector_key}`",
        )
    value = selector.get(spec.selector_key)
    if value is None and isinstance(raw_selector, dict) and spec.selector_key in raw_selector:
        return routing(
            None, f"the Service {shown}'s `{spec.selector_key}` is not a valid label value"
        )
    if value is None:
        return routing(
            None,
            f"the Service {shown}'s selector ({_show(selector)}) does not route by "
            f"`{spec.selector_key}`",
        )
    if value not in spec.color_names:
        return routing(
            None,
            f"the Service {shown} routes to {spec.selector_key}={value}, which is none of the "
            f"colours {spec.listed}",
        )
    return routing(value, None)


# ---------------------------------------------------------------- the EndpointSlices


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a Service: the pod behind it (None when it is not a pod, e.g. an address
    someone listed by hand) and whether it takes traffic."""

    pod: str | None
    ready: bool


@dataclass(frozen=True)
class EndpointList:
    """The endpoints of a Service's slices. `complete` is false when the slices could not all be
    read (not a list, or beyond the bounds): then nothing may be concluded from them."""

    endpoints: tuple[Endpoint, ...]
    complete: bool = True

    def of(self, pod_names: Collection[str]) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.pod is not None and e.pod in pod_names)

    @property
    def ready(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.ready)


def _endpoint(obj: object) -> Endpoint | None:
    if not isinstance(obj, dict):
        return None
    ref = _map(obj.get("targetRef"))
    name = ref.get("name")
    pod = (
        name
        if ref.get("kind") == "Pod"
        and isinstance(name, str)
        and len(name) <= MAX_NAME
        and _DNS_SUBDOMAIN.match(name)
        else None
    )
    # The API: "a nil value should be interpreted as true". Anything but true or nil (a string,
    # a number) is not believed.
    conditions = obj.get("conditions")
    ready = conditions is None or (
        isinstance(conditions, dict)
        and (conditions.get("ready") is True or conditions.get("ready") is None)
    )
    return Endpoint(pod, ready)


def parse_endpoint_slices(slices: object, service: str | None = None) -> EndpointList:
    """The endpoints of EndpointSlices from their JSON: a list of slices, or a list response
    (`items`). With `service`, slices labelled for another Service are skipped. A placeholder
    slice (`endpoints: null`, what the controller keeps for a Service with no pod) adds none."""
    if isinstance(slices, dict):
        slices = slices.get("items")
    if not isinstance(slices, list):
        return EndpointList((), complete=False)
    complete = len(slices) <= MAX_SLICES
    found: list[Endpoint] = []
    # a pod in two slices at once (the controller moving it) is one endpoint, taking traffic if
    # either copy says so
    by_pod: dict[str, int] = {}
    for item in slices[:MAX_SLICES]:
        if not isinstance(item, dict):
            complete = False
            continue
        labels = _map(_map(item.get("metadata")).get("labels"))
        if service is not None and labels.get(SERVICE_NAME_LABEL) != service:
            continue
        endpoints = item.get("endpoints")
        if endpoints is None:
            continue
        if not isinstance(endpoints, list) or len(endpoints) > MAX_ENDPOINTS_PER_SLICE:
            complete = False
            continue
        for raw in endpoints:
            if len(found) >= MAX_ENDPOINTS:
                return EndpointList(tuple(found), complete=False)
            ep = _endpoint(raw)
            if ep is None:
                complete = False
            elif ep.pod is not None and ep.pod in by_pod:
                at = by_pod[ep.pod]
                found[at] = Endpoint(ep.pod, found[at].ready or ep.ready)
            else:
                if ep.pod is not None:
                    by_pod[ep.pod] = len(found)
                found.append(ep)
    return EndpointList(tuple(found), complete)


# ---------------------------------------------------------------- the colours


@dataclass(frozen=True)
class ColorState:
    """One colour: its Deployment's counts (all zero when `found` is false) and its pods' place in
    the Service's slices. `available`: the Deployment says so (Available=True) and has all it
    wants, at least one; `scaled_down`: it wants none."""

    color: str
    deployment: str
    found: bool
    version: str
    desired_replicas: int
    ready_replicas: int
    available_replicas: int
    scaled_down: bool
    available: bool
    pod_labels: Mapping[str, str] = field(compare=False)
    endpoints: int = 0
    ready_endpoints: int = 0


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def color_state(
    spec: BlueGreenSpec,
    color: str,
    deployment: Deployment | None,
    endpoints: EndpointList | None = None,
    pod_names: Collection[str] = (),
) -> ColorState:
    """`color`'s state from its parsed Deployment (None: not found) and, when given, the
    Service's endpoints and the names of this colour's pods. Raises ValueError for a colour the
    spec does not have or a Deployment that is not the colour's: a caller's mistake."""
    name = spec.deployment_of(color)
    if name is None:
        raise ValueError(f"{color!r} is not a colour of {spec.service}")
    if deployment is not None and deployment.name != name:
        raise ValueError(f"{deployment.name!r} is not {color}'s Deployment ({name})")
    mine = endpoints.of(pod_names) if endpoints is not None else ()
    if deployment is None:
        return ColorState(color, name, False, "", 0, 0, 0, True, False, {}, len(mine), 0)
    status = deployment.status
    # the API server defaults spec.replicas to 1: None is a Deployment read from elsewhere
    desired = 1 if deployment.desired_replicas is None else _count(deployment.desired_replicas)
    available_now = _count(status.available_replicas)
    condition = status.condition("Available")
    labels, _ = _labels(_map(_map(deployment.template).get("metadata")).get("labels"))
    return ColorState(
        color=color,
        deployment=name,
        found=True,
        version=_clip(deployment.version, MAX_VALUE),
        desired_replicas=desired,
        ready_replicas=_count(status.ready_replicas),
        available_replicas=available_now,
        scaled_down=desired == 0,
        available=condition is not None
        and condition.status == "True"
        and available_now >= desired > 0,
        pod_labels=labels,
        endpoints=len(mine),
        ready_endpoints=sum(1 for e in mine if e.ready),
    )


# ---------------------------------------------------------------- the switch


@dataclass(frozen=True)
class SwitchRefused:
    """No switch: `reason` says why, as one sentence for the thread."""

    reason: str


@dataclass(frozen=True)
class SwitchPlan:
    """A switch of `service` from `from_color` to `to_color`. When `needs_scale_up`, first send
    `scale_patch` to the target Deployment (or its `scale` subresource: the body is the same),
    wait until the target is available with `scale_to` replicas (`ready_to_route`), then send
    `service_patch` to the Service; both as `application/merge-patch+json`."""

    service: str
    namespace: str
    from_color: str
    to_color: str
    from_deployment: str
    to_deployment: str
    needs_scale_up: bool
    scale_to: int | None
    service_patch: JsonDict = field(compare=False)
    scale_patch: JsonDict | None = field(compare=False)
    content_type: str = MERGE_PATCH
    # replicas the target must have available before the Service is patched
    wait_for_replicas: int = 1


SwitchDecision = SwitchPlan | SwitchRefused


def plan_switch(
    spec: BlueGreenSpec,
    routing: ServiceRouting,
    states: Mapping[str, ColorState],
    to_color: str,
) -> SwitchDecision:
    """Whether and how to point the Service at `to_color`. `states` holds each colour read (a
    colour missing from it counts as a Deployment not found)."""
    shown_to = _clip(to_color, MAX_VALUE) if isinstance(to_color, str) else "?"
    if to_color not in spec.color_names:
        return SwitchRefused(
            f"`{shown_to}` is not a colour of {spec.service}: choose one of {spec.listed}."
        )
    if routing.name and routing.name != spec.service:
        return SwitchRefused(
            f"The Service read is {routing.name}, not {spec.service}: nothing was changed."
        )
    live = routing.live_color
    if live is None:
        why = routing.reason or f"the Service {spec.service} routes to no known colour"
        return SwitchRefused(f"{why[:1].upper()}{why[1:]}: the bot will not switch it.")
    target_name = spec.deployment_of(to_color) or ""
    if live == to_color:
        return SwitchRefused(
            f"{spec.service} already routes to {to_color} ({target_name}): nothing to switch."
        )
    if not routing.resource_version:
        return SwitchRefused(
            f"The Service {spec.service} was read without a resourceVersion, so a change made "
            "since could be overwritten: read it again."
        )
    target = states.get(to_color)
    if target is None or not target.found:
        where = f" in {routing.namespace}" if routing.namespace else ""
        return SwitchRefused(
            f"{to_color}'s Deployment {target_name} was not found{where}: there is nothing to "
            "switch to."
        )
    selector = {**routing.selector, spec.selector_key: to_color}
    if any(target.pod_labels.get(k) != v for k, v in selector.items()):
        missing = {k: v for k, v in selector.items() if target.pod_labels.get(k) != v}
        return SwitchRefused(
            f"The new selector ({_show(selector)}) would not select {target_name}'s pods (their "
            f"template lacks {_show(missing)}): switching would leave {spec.service} with no "
            "endpoints."
        )
    current = states.get(live)
    wanted = max(current.desired_replicas if current is not None and current.found else 0, 1)
    needs_scale_up = target.desired_replicas < wanted
    scale_to = wanted if needs_scale_up else None
    return SwitchPlan(
        service=spec.service,
        namespace=routing.namespace,
        from_color=live,
        to_color=to_color,
        from_deployment=spec.deployment_of(live) or "",
        to_deployment=target_name,
        needs_scale_up=needs_scale_up,
        scale_to=scale_to,
        service_patch={
            "metadata": {"resourceVersion": routing.resource_version},
            "spec": {"selector": selector},
        },
        # no resourceVersion: the controller writes the Deployment's status all the time, and
        # setting the replicas is right whatever else changed (as `kubectl scale` does)
        scale_patch={"spec": {"replicas": scale_to}} if scale_to is not None else None,
        wait_for_replicas=max(target.desired_replicas, wanted),
    )


def ready_to_route(plan: SwitchPlan, target: ColorState) -> bool:
    """Whether the Service may be patched: the target colour is available with the replicas the
    plan waits for, so the switch does not send traffic to pods still starting."""
    return (
        target.color == plan.to_color
        and target.available
        and target.available_replicas >= plan.wait_for_replicas
    )


# ---------------------------------------------------------------- has it switched?


@dataclass(frozen=True)
class SwitchProgress:
    """How far the switch has come, by the Service's endpoints; `message` for the thread."""

    done: bool
    message: str
    target_ready: int
    other_ready: int


def switch_done(endpoints: EndpointList, to_color_pod_names: Collection[str]) -> bool:
    """True only when the slices were read whole, hold at least one ready endpoint, and every
    ready endpoint is one of the target colour's pods: traffic goes nowhere else."""
    ready = endpoints.ready
    return (
        endpoints.complete
        and bool(ready)
        and all(e.pod is not None and e.pod in to_color_pod_names for e in ready)
    )


def switch_progress(
    endpoints: EndpointList,
    to_color: str,
    to_color_pod_names: Collection[str],
    expected: int | None = None,
) -> SwitchProgress:
    """`switch_done` with a sentence: "3 of 3 endpoints are blue's pods" once done, "waiting for
    blue: 1/3 ready" until then. `expected`: how many of the colour's pods to count towards
    (the pods named, when not given)."""
    color = _clip(to_color, MAX_VALUE)
    mine = endpoints.of(to_color_pod_names)
    target_ready = sum(1 for e in mine if e.ready)
    other_ready = len(endpoints.ready) - target_ready
    done = switch_done(endpoints, to_color_pod_names)
    if not endpoints.complete:
        message = (
            f"waiting for {color}: the Service's endpoints could not all be read "
            f"(more than {MAX_ENDPOINTS} or not of the expected shape)"
        )
    elif done:
        total = len(endpoints.endpoints)
        message = f"{len(mine)} of {total} endpoints are {color}'s pods"
        if target_ready < len(mine):
            message += f" ({target_ready} ready)"
    else:
        of = expected if expected is not None else len(to_color_pod_names)
        message = f"waiting for {color}: {target_ready}/{max(of, 0)} ready"
        if other_ready:
            message += (
                f", {other_ready} other endpoint{'s' if other_ready != 1 else ''} still ready"
            )
    return SwitchProgress(done, message, target_ready, other_ready)


def pod_names(pods: Iterable[object]) -> frozenset[str]:
    """The names of pods from their JSON (a colour's pods, listed by its selector), bounded."""
    out: set[str] = set()
    for pod in pods:
        name = _map(_map(pod).get("metadata")).get("name")
        if isinstance(name, str) and len(name) <= MAX_NAME and _DNS_SUBDOMAIN.match(name):
            out.add(name)
        if len(out) >= MAX_ENDPOINTS:
            break
    return frozenset(out)
