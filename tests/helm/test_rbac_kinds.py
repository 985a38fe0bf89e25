"""RBAC of the kinds beyond Deployments (StatefulSet, DaemonSet, BlueGreen, Rollout): each kind's
rules (test_rbac.KIND_RULES) are granted only when a catalog service has that kind or
rbac.extraKinds lists it, where the workloads are (a Role per watched namespace, or the
ClusterRole), and with Deployments only the rules are exactly what they always were. And the
catalog shapes the schema takes per kind, and the ones it refuses, in helm's words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import (
    CHART,
    FULLNAME,
    MINIMAL,
    NAMESPACED,
    RICH,
    VALUES_FILES,
    Manifest,
    chart_defaults,
    find,
    one,
    refusal,
    render,
    values_file,
)
from tests.helm.test_rbac import KIND_RULES, KINDS, ROLLOUT_RULES, extra_kinds, rules_of
from tests.helm.test_refusals import (
    SCHEMA_REFUSED,
    helm_errors,
    merged,
    schema_errors,
)

# tests/helm/values/kinds.yaml: a service of each kind, in namespaces shop, search, logging and
# payments.
KINDS_FILE = "kinds"
KINDS_NAMESPACES = {"shop", "search", "logging", "payments"}

# The rules where the Deployments are, in the order the chart has always rendered them: what a
# release without other kinds gets, to the letter.
TODAY_RULES = [
    {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "create", "update"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]

# A catalog service of each kind, in namespace `data` (beside minimal.yaml's checkout in shop).
SERVICES: dict[str, tuple[str, dict[str, str]]] = {
    "StatefulSet": ("orders-db", {"kind": "StatefulSet", "namespace": "data", "name": "orders-db"}),
    "DaemonSet": ("log-agent", {"kind": "DaemonSet", "namespace": "data", "name": "fluent-bit"}),
    "BlueGreen": (
        "storefront",
        {
            "kind": "BlueGreen",
            "namespace": "data",
            "service": "storefront",
            "selector_key": "color",
            "blue": "storefront-blue",
            "green": "storefront-green",
        },
    ),
    "Rollout": ("canary", {"kind": "Rollout", "namespace": "data", "name": "checkout-canary"}),
}


def service_sets(kind: str) -> tuple[str, ...]:
    name, keys = SERVICES[kind]
    return tuple(f"catalog.services.{name}.{key}={value}" for key, value in keys.items())


def granted_with(*kinds: str) -> dict[tuple[str, str], set[str]]:
    """The rules a release with these kinds should have where its workloads are."""
    out = {key: set(verbs) for key, verbs in ROLLOUT_RULES.items()}
    for kind in kinds:
        for key, verbs in KIND_RULES[kind].items():
            out.setdefault(key, set()).update(verbs)
    return out


def workload_roles(manifests: list[Manifest]) -> dict[str, Manifest]:
    """The Roles (by namespace) or the ClusterRole (under "*") of the workloads' rights."""
    roles = {r["metadata"]["namespace"]: r for r in find(manifests, "Role", FULLNAME)}
    cluster_roles = find(manifests, "ClusterRole")
    assert len(cluster_roles) <= 1, cluster_roles
    for cluster_role in cluster_roles:
        roles["*"] = cluster_role
    return roles


def assert_today_first(role: Manifest) -> None:
    """Whatever the kinds, the rules start with today's, unchanged and in the same order."""
    assert role["rules"][: len(TODAY_RULES)] == TODAY_RULES, role["rules"]


# ---------------------------------------------------------------------------------------------
# Deployments only: nothing more than ever


def test_extra_kinds_default_to_none() -> None:
    assert chart_defaults()["rbac"]["extraKinds"] == []


@pytest.mark.parametrize("name", VALUES_FILES)
def test_without_other_kinds_the_rules_are_exactly_todays(name: str) -> None:
    roles = workload_roles(render(name))
    assert roles
    for role in roles.values():
        assert role["rules"] == TODAY_RULES


@pytest.mark.parametrize(
    "sets",
    [
        pytest.param(("catalog.services.checkout.kind=Deployment",), id="kind Deployment"),
        pytest.param(
            (
                "catalog.services.web.kind=Deployment",
                "catalog.services.web.namespace=shop",
                "catalog.services.web.name=web",
            ),
            id="a Deployment named by name",
        ),
        pytest.param(("rbac.extraKinds=null",), id="extraKinds null"),
    ],
)
def test_deployments_however_named_add_nothing(sets: tuple[str, ...]) -> None:
    roles = workload_roles(render(MINIMAL, sets=sets))
    assert set(roles) == {"shop"}
    assert roles["shop"]["rules"] == TODAY_RULES


# ---------------------------------------------------------------------------------------------
# a kind's rules, from the catalog or rbac.extraKinds


@pytest.mark.parametrize("kind", KINDS)
def test_a_kind_in_the_catalog_adds_exactly_its_rules_in_every_watched_namespace(kind: str) -> None:
    roles = workload_roles(render(MINIMAL, sets=service_sets(kind)))
    assert set(roles) == {"shop", "data"}  # the same Role where the Deployments are, too
    for role in roles.values():
        assert rules_of(role) == granted_with(kind)
        assert_today_first(role)


@pytest.mark.parametrize("kind", KINDS)
def test_rbac_extra_kinds_add_exactly_the_kinds_rules(kind: str) -> None:
    roles = workload_roles(render(MINIMAL, sets=(extra_kinds(kind),)))
    assert set(roles) == {"shop"}
    assert rules_of(roles["shop"]) == granted_with(kind)
    assert_today_first(roles["shop"])


def test_the_rules_per_kind_as_rendered() -> None:
    """Each kind's rules to the letter, in the order the chart renders them after today's."""
    expected: dict[str, list[dict[str, list[str]]]] = {
        "StatefulSet": [
            {
                "apiGroups": ["apps"],
                "resources": ["statefulsets"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {
                "apiGroups": ["apps"],
                "resources": ["controllerrevisions"],
                "verbs": ["get", "list", "watch"],
            },
        ],
        "DaemonSet": [
            {
                "apiGroups": ["apps"],
                "resources": ["daemonsets"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {
                "apiGroups": ["apps"],
                "resources": ["controllerrevisions"],
                "verbs": ["get", "list", "watch"],
            },
        ],
        "BlueGreen": [
            {
                "apiGroups": [""],
                "resources": ["services"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {
                "apiGroups": ["discovery.k8s.io"],
                "resources": ["endpointslices"],
                "verbs": ["get", "list", "watch"],
            },
        ],
        "Rollout": [
            {
                "apiGroups": ["argoproj.io"],
                "resources": ["rollouts"],
                "verbs": ["get", "list", "watch", "patch"],
            },
            {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["patch"]},
        ],
    }
    assert set(expected) == set(KINDS)
    for kind, rules in expected.items():
        role = workload_roles(render(MINIMAL, sets=(extra_kinds(kind),)))["shop"]
        assert role["rules"] == TODAY_RULES + rules, kind


def test_catalog_kinds_and_extra_kinds_together() -> None:
    """The union, each rule once: ControllerRevisions for a StatefulSet of the catalog and a
    DaemonSet of rbac.extraKinds alike, a kind in both places granted once."""
    manifests = render(
        MINIMAL, sets=(*service_sets("StatefulSet"), extra_kinds("DaemonSet", "StatefulSet"))
    )
    roles = workload_roles(manifests)
    assert set(roles) == {"shop", "data"}
    for role in roles.values():
        assert rules_of(role) == granted_with("StatefulSet", "DaemonSet")  # no rule twice
        resources = [r for rule in role["rules"] for r in rule["resources"]]
        assert resources.count("controllerrevisions") == 1
        assert resources.count("statefulsets") == 1
    both = render(MINIMAL, sets=(*service_sets("BlueGreen"), extra_kinds("Rollout")))
    for role in workload_roles(both).values():
        assert rules_of(role) == granted_with("BlueGreen", "Rollout")


def test_a_catalog_of_every_kind_grants_every_kinds_rules_and_no_more() -> None:
    roles = workload_roles(render(MINIMAL, KINDS_FILE))
    assert set(roles) == KINDS_NAMESPACES
    for role in roles.values():
        assert rules_of(role) == granted_with(*KINDS)
        assert_today_first(role)
    with_extra = workload_roles(render(MINIMAL, KINDS_FILE, sets=(extra_kinds(*KINDS),)))
    assert {ns: r["rules"] for ns, r in with_extra.items()} == {
        ns: r["rules"] for ns, r in roles.items()
    }


def test_every_kind_still_grants_no_wildcard_secrets_or_pods() -> None:
    manifests = render(MINIMAL, KINDS_FILE, sets=(extra_kinds(*KINDS), "gitops.enabled=true"))
    roles = [m for m in manifests if m["kind"] in ("Role", "ClusterRole")]
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert all("*" not in item for item in rule.get(field, [])), rule
            assert not {
                "secrets",
                "pods",
                "pods/exec",
                "pods/attach",
                "pods/portforward",
                "services/proxy",
                "deployments/scale",
            } & set(rule["resources"]), rule
            # Writes other than patch only on the bot's own objects: its state, Leases, Events.
            if {"create", "update", "delete", "deletecollection"} & set(rule["verbs"]):
                assert rule["resources"] in (["configmaps"], ["leases"], ["events"]), rule


def test_cluster_wide_the_cluster_role_carries_the_kinds() -> None:
    manifests = render(RICH, sets=(*service_sets("Rollout"), extra_kinds("BlueGreen")))
    roles = workload_roles(manifests)
    assert set(roles) == {"*"}  # no Role per namespace: the ClusterRole only
    assert rules_of(roles["*"]) == granted_with("Rollout", "BlueGreen")
    assert_today_first(roles["*"])
    assert [r["metadata"]["name"] for r in find(manifests, "Role")] == ["rollback-bot-state"]
    every = workload_roles(render(RICH, sets=(extra_kinds(*KINDS),)))
    assert rules_of(every["*"]) == granted_with(*KINDS)


def test_explicit_namespaces_each_get_the_kinds_rules() -> None:
    """rbac.namespaces: every listed namespace gets the same Role, kinds included, even one
    without a catalog service."""
    sets = (
        "catalog.services.log-agent.kind=DaemonSet",
        "catalog.services.log-agent.namespace=staging",
        "catalog.services.log-agent.name=fluent-bit",
    )
    roles = workload_roles(render(NAMESPACED, sets=sets))
    assert set(roles) == {"shop", "search", "staging"}
    for role in roles.values():
        assert rules_of(role) == granted_with("DaemonSet")


@pytest.mark.parametrize("kind", KINDS)
def test_rbac_namespaces_must_list_the_namespace_of_a_service_of_any_kind(kind: str) -> None:
    name, _ = SERVICES[kind]
    message = refusal(MINIMAL, sets=(*service_sets(kind), "rbac.namespaces={shop}"))
    assert (
        f'catalog service "{name}" is in namespace "data", which rbac.namespaces does not list'
    ) in message
    render(MINIMAL, sets=(*service_sets(kind), "rbac.namespaces={shop,data}"))  # listed: fine


def test_rbac_create_false_grants_no_kind() -> None:
    manifests = render(MINIMAL, KINDS_FILE, sets=("rbac.create=false", extra_kinds(*KINDS)))
    assert not [m for m in manifests if m["kind"].endswith(("Role", "RoleBinding"))]


def test_the_catalog_configmap_carries_the_kinds_verbatim() -> None:
    configmap = one(render(MINIMAL, KINDS_FILE), "ConfigMap", f"{FULLNAME}-catalog")
    (text,) = configmap["data"].values()
    services = yaml.safe_load(text)["services"]
    assert services == values_file(KINDS_FILE)["catalog"]["services"]


def test_the_readme_says_what_each_kind_grants() -> None:
    """The chart README's table of kinds: each kind's row names its resources, each with its
    verbs, as the chart grants them (KIND_RULES)."""
    readme = (CHART / "README.md").read_text()
    assert "`rbac.extraKinds`" in readme
    for kind, rules in KIND_RULES.items():
        row = re.search(rf"^\| {kind} \|(?P<keys>[^|]*)\|(?P<adds>[^|]*)\|$", readme, re.M)
        assert row, f"no row for {kind} in the README's table of kinds"
        for (group, resource), verbs in rules.items():
            said = re.search(rf"`{re.escape(resource)}`: (?P<verbs>[a-z, ]+)", row["adds"])
            assert said, f"{kind}: {resource} missing from {row['adds']!r}"
            assert set(said["verbs"].strip().split(", ")) == verbs, (kind, resource)
            assert f"`{group}` `{resource}`" in row["adds"] or (
                group == "" and f"core `{resource}`" in row["adds"]
            ), (kind, resource)


# ---------------------------------------------------------------------------------------------
# the schema: the shapes of each kind


def _values(*overlays: dict[str, Any]) -> dict[str, Any]:
    """The values helm validates for `-f minimal.yaml -f <overlay>...`."""
    return merged(chart_defaults(), values_file(MINIMAL), *overlays)


def test_the_schema_takes_every_kinds_shape() -> None:
    assert schema_errors(_values(values_file(KINDS_FILE))) == []
    assert render(MINIMAL, KINDS_FILE)  # helm's own schema check passed
    label_keys = ("color", "example.com/color", "app.kubernetes.io/track_v1.2", "a" * 63)
    for key in label_keys:
        overlay = {"catalog": {"services": {"storefront": {**SERVICES["BlueGreen"][1]}}}}
        overlay["catalog"]["services"]["storefront"]["selector_key"] = key
        assert schema_errors(_values(overlay)) == [], key


def _service(service: str, /, **keys: Any) -> dict[str, Any]:
    return {"catalog": {"services": {service: keys}}}


BLUE_GREEN = SERVICES["BlueGreen"][1]

# (case, overlay over minimal.yaml, what helm says: every line must be in its message)
KIND_REFUSALS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    (
        "BlueGreen without service",
        _service("storefront", **{k: v for k, v in BLUE_GREEN.items() if k != "service"}),
        ("at '/catalog/services/storefront': missing property 'service'",),
    ),
    (
        "BlueGreen without its colours",
        _service(
            "storefront", **{k: v for k, v in BLUE_GREEN.items() if k not in ("blue", "green")}
        ),
        ("at '/catalog/services/storefront': missing properties 'blue', 'green'",),
    ),
    (
        "BlueGreen with approvals, which its switch does not ask for",
        _service("storefront", **BLUE_GREEN, approvals=1),
        ("at '/catalog/services/storefront/approvals': 'not' failed",),
    ),
    (
        "BlueGreen naming a single workload",
        _service("storefront", **BLUE_GREEN, name="storefront"),
        ("at '/catalog/services/storefront/name': 'not' failed",),
    ),
    (
        "BlueGreen selector_key not a label key",
        _service("storefront", **{**BLUE_GREEN, "selector_key": "colour!"}),
        ("at '/catalog/services/storefront/selector_key': 'colour!' does not match pattern",),
    ),
    (
        "BlueGreen selector_key name longer than 63",
        _service("storefront", **{**BLUE_GREEN, "selector_key": "example.com/" + "c" * 64}),
        ("at '/catalog/services/storefront/selector_key': '",),
    ),
    (
        "BlueGreen colour not a Deployment name",
        _service("storefront", **{**BLUE_GREEN, "green": "Storefront Green"}),
        ("at '/catalog/services/storefront/green': 'Storefront Green' does not match pattern",),
    ),
    (
        "StatefulSet with deployment instead of name",
        _service("orders-db", kind="StatefulSet", namespace="data", deployment="orders-db"),
        (
            "at '/catalog/services/orders-db': missing property 'name'",
            "at '/catalog/services/orders-db/deployment': 'not' failed",
        ),
    ),
    (
        "DaemonSet with name and deployment",
        _service("agent", kind="DaemonSet", namespace="data", name="agent", deployment="agent"),
        ("at '/catalog/services/agent/deployment': 'not' failed",),
    ),
    (
        "Rollout without name",
        _service("payments", kind="Rollout", namespace="data"),
        ("at '/catalog/services/payments': missing property 'name'",),
    ),
    (
        "Deployment with name and deployment",
        _service("web", namespace="web", name="web", deployment="web"),
        ("at '/catalog/services/web/name': 'not' failed",),
    ),
    (
        "Deployment without a name",
        _service("web", kind="Deployment", namespace="web"),
        (
            "at '/catalog/services/web': missing property 'deployment'",
            "at '/catalog/services/web': missing property 'name'",
        ),
    ),
    (
        "a BlueGreen key on a Deployment",
        _service("web", namespace="web", deployment="web", service="web"),
        ("at '/catalog/services/web/service': 'not' failed",),
    ),
    (
        "BlueGreen keys on a StatefulSet",
        _service(
            "orders-db", kind="StatefulSet", namespace="data", name="orders-db", blue="a", green="b"
        ),
        (
            "at '/catalog/services/orders-db/blue': 'not' failed",
            "at '/catalog/services/orders-db/green': 'not' failed",
        ),
    ),
    (
        "unknown kind",
        _service("cron", kind="CronJob", namespace="batch", name="nightly"),
        (
            "at '/catalog/services/cron/kind': value must be one of 'Deployment', 'StatefulSet', "
            "'DaemonSet', 'BlueGreen', 'Rollout'",
        ),
    ),
    (
        "a kind without namespace",
        _service("orders-db", kind="StatefulSet", name="orders-db"),
        ("at '/catalog/services/orders-db': missing property 'namespace'",),
    ),
    (
        "unknown extraKind",
        {"rbac": {"extraKinds": ["CronJob"]}},
        (
            "at '/rbac/extraKinds/0': value must be one of 'StatefulSet', 'DaemonSet', "
            "'BlueGreen', 'Rollout'",
        ),
    ),
    (
        "Deployment as an extraKind (always granted)",
        {"rbac": {"extraKinds": ["StatefulSet", "Deployment"]}},
        ("at '/rbac/extraKinds/1': value must be one of 'StatefulSet', 'DaemonSet'",),
    ),
    (
        "an extraKind twice",
        {"rbac": {"extraKinds": ["Rollout", "Rollout"]}},
        ("at '/rbac/extraKinds': items at 0 and 1 are equal",),
    ),
]


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [pytest.param(overlay, expected, id=case) for case, overlay, expected in KIND_REFUSALS],
)
def test_the_schema_refuses_a_wrong_shape_in_helms_words(
    overlay: dict[str, Any], expected: tuple[str, ...], tmp_path: Path
) -> None:
    """helm refuses it with these lines, and blames exactly the keys the in-process check
    (test_refusals' jsonschema over the merged values) blames: no other (helm says "missing
    properties 'blue', 'green'" once where jsonschema counts two)."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(overlay))
    message = refusal(MINIMAL, extra=("-f", str(path)))
    assert SCHEMA_REFUSED in message
    for line in expected:
        assert line in message, message
    in_process = schema_errors(_values(overlay))
    assert in_process, "the in-process check accepts what helm refuses"
    assert set(helm_errors(message)) == {at for at, _ in in_process}, message
