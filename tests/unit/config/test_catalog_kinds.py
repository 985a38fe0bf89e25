"""The catalog's workload kinds: `kind:` and `name:`, the alerts' label for each kind, what only
Deployments may have, and SERVICE arguments naming a kind as kubectl's TYPE does."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import ConfigError, UnknownService
from bot.domain.rollback.models import Target, WorkloadKind

STS = WorkloadKind.STATEFULSET
DS = WorkloadKind.DAEMONSET
DEPLOY = WorkloadKind.DEPLOYMENT

CATALOG = """
services:
  checkout: {namespace: shop, deployment: checkout, context: prod-eu}
  orders-db:
    kind: StatefulSet
    namespace: shop
    name: orders-db
    context: prod-eu
    allowed_users: [U0ALICE1]
  log-shipper: {kind: DaemonSet, namespace: logging, name: log-shipper}
  cart: {kind: Deployment, namespace: shop, name: cart}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str = CATALOG) -> Catalog:
    return Catalog.load(write(tmp_path, text))


def refused(tmp_path: Path, text: str) -> str:
    """The loader's sentence for `text`, without the file's name (checked to lead it)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Catalog.load(path)
    message = str(info.value)
    prefix = f"service catalog {path}: "
    assert message.startswith(prefix)
    return message.removeprefix(prefix)


# --- loading -------------------------------------------------------------------------------


def test_each_entry_has_its_kind_and_name(tmp_path: Path) -> None:
    services = load(tmp_path).services
    assert {name: (e.workload_kind, e.namespace, e.deployment) for name, e in services.items()} == {
        "checkout": (DEPLOY, "shop", "checkout"),
        "orders-db": (STS, "shop", "orders-db"),
        "log-shipper": (DS, "logging", "log-shipper"),
        "cart": (DEPLOY, "shop", "cart"),
    }
    assert services["orders-db"].kind == "StatefulSet"
    assert services["checkout"].kind == "Deployment"  # the default


@pytest.mark.parametrize(
    ("kind", "label"),
    [("StatefulSet", "statefulset"), ("DaemonSet", "daemonset"), ("Deployment", "deployment")],
)
def test_the_alerts_label_defaults_to_the_kinds_kube_state_metrics_label(
    tmp_path: Path, kind: str, label: str
) -> None:
    catalog = load(tmp_path, f"services:\n  db: {{kind: {kind}, namespace: shop, name: db}}\n")
    alerts = catalog.services["db"].alerts
    assert alerts.deployment_label == label
    assert (alerts.service_label, alerts.namespace_label) == ("service", "namespace")


def test_the_alerts_label_defaults_beside_other_alert_settings(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        "services:\n  db:\n    kind: StatefulSet\n    namespace: shop\n    name: db\n"
        "    alerts: {service_label: app}\n",
    )
    alerts = catalog.services["db"].alerts
    assert (alerts.service_label, alerts.deployment_label) == ("app", "statefulset")


def test_an_alerts_label_given_is_kept(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        "services:\n  agent:\n    kind: DaemonSet\n    namespace: logging\n    name: agent\n"
        "    alerts: {deployment_label: workload}\n",
    )
    assert catalog.services["agent"].alerts.deployment_label == "workload"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{kind: StatefulSet, namespace: shop, deployment: orders-db}",
            "key 'services.db': a StatefulSet is named by 'name', not 'deployment'",
        ),
        (
            "{kind: DaemonSet, namespace: shop, deployment: agent}",
            "key 'services.db': a DaemonSet is named by 'name', not 'deployment'",
        ),
        (
            "{namespace: shop, name: checkout, deployment: checkout}",
            "key 'services.db': give the workload's name once: 'name' or 'deployment', not both",
        ),
        (
            "{kind: StatefulSet, namespace: shop}",
            "key 'services.db': key 'name' is missing: the workload's name",
        ),
        (
            "{kind: StatefulSet, namespace: shop, name: Orders_DB}",
            "key 'services.db.deployment': 'Orders_DB' is not a valid Kubernetes name",
        ),
        (
            "{kind: StatefulSet, namespace: shop, name: db, auto_rollback: {}}",
            "key 'services.db': auto_rollback watches Deployments only (it compares their "
            "ReplicaSets' pods); this service is a StatefulSet",
        ),
        (
            "{kind: DaemonSet, namespace: shop, name: db, auto_rollback: {}}",
            "key 'services.db': auto_rollback watches Deployments only (it compares their "
            "ReplicaSets' pods); this service is a DaemonSet",
        ),
    ],
)
def test_a_bad_entry_is_refused_in_one_sentence(tmp_path: Path, entry: str, message: str) -> None:
    assert refused(tmp_path, f"services:\n  db: {entry}\n") == message


@pytest.mark.parametrize("kind", ["CronJob", "statefulset", "sts", "ReplicaSet"])
def test_a_kind_the_bot_does_not_roll_back_is_refused(tmp_path: Path, kind: str) -> None:
    # The kinds are the API's, spelt as the API spells them: kubectl's short words are for
    # SERVICE arguments only.
    said = refused(tmp_path, f"services:\n  db: {{kind: {kind}, namespace: shop, name: db}}\n")
    assert said.startswith(
        "key 'services.db.kind': Input should be 'Deployment', 'StatefulSet', 'DaemonSet'"
    )


def test_auto_rollback_is_still_taken_for_a_deployment_named_by_name(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        "services:\n  checkout: {namespace: shop, name: checkout, auto_rollback: {}}\n",
    )
    assert catalog.services["checkout"].auto_rollback is not None


def test_two_names_for_one_statefulset_must_agree_on_who_may_roll_back(tmp_path: Path) -> None:
    said = refused(
        tmp_path,
        "services:\n"
        "  a: {kind: StatefulSet, namespace: shop, name: db, allowed_users: [U0ALICE1]}\n"
        "  b: {kind: StatefulSet, namespace: shop, name: db}\n",
    )
    assert said == "services 'a', 'b' are all shop/db but allow different users or groups"


def test_a_statefulset_and_a_deployment_of_one_name_are_two_workloads(tmp_path: Path) -> None:
    catalog = load(
        tmp_path,
        "services:\n"
        "  a: {kind: StatefulSet, namespace: shop, name: db, allowed_users: [U0ALICE1]}\n"
        "  b: {namespace: shop, name: db}\n",
    )
    assert catalog.resolve("sts/shop/db").name == "a"
    assert catalog.resolve("shop/db").name == "b"


# --- resolving SERVICE ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("deployment", DEPLOY),
        ("deployments", DEPLOY),
        ("deploy", DEPLOY),
        ("Deployment", DEPLOY),
        ("statefulset", STS),
        ("statefulsets", STS),
        ("sts", STS),
        ("StatefulSet", STS),
        ("STS", STS),
        ("daemonset", DS),
        ("daemonsets", DS),
        ("ds", DS),
        ("DaemonSet", DS),
    ],
)
def test_a_kind_is_named_as_kubectl_takes_it(word: str, kind: WorkloadKind) -> None:
    ref = Catalog.empty().resolve(f"{word}/pay/ledger")
    assert (ref.kind, ref.namespace, ref.deployment, ref.entry) == (kind, "pay", "ledger", None)
    assert ref.name == f"{word}/pay/ledger"


def test_two_parts_name_a_deployment() -> None:
    ref = Catalog.empty().resolve("pay/ledger")
    assert (ref.kind, ref.namespace, ref.deployment) == (DEPLOY, "pay", "ledger")


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            "cronjob/shop/nightly",
            "'cronjob/shop/nightly': 'cronjob' is not a kind the bot rolls back "
            "(deployment, statefulset, daemonset or rollout, or deploy, sts, ds, ro)",
        ),
        (
            "/shop/db",
            "'/shop/db': '' is not a kind the bot rolls back "
            "(deployment, statefulset, daemonset or rollout, or deploy, sts, ds, ro)",
        ),
        (
            "sts/Shop/db",
            "'sts/Shop/db' is not [KIND/]NAMESPACE/NAME: both must be lowercase Kubernetes names",
        ),
        (
            "sts/shop/",
            "'sts/shop/' is not [KIND/]NAMESPACE/NAME: both must be lowercase Kubernetes names",
        ),
        (
            "ds//agent",
            "'ds//agent' is not [KIND/]NAMESPACE/NAME: both must be lowercase Kubernetes names",
        ),
        (
            "sts/shop/orders_db",
            "'sts/shop/orders_db' is not [KIND/]NAMESPACE/NAME: both must be lowercase "
            "Kubernetes names",
        ),
    ],
)
def test_a_bad_kind_or_name_is_refused_in_a_sentence(argument: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Catalog.empty().resolve(argument)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "argument",
    [
        f"sts/{'n' * 64}/db",  # a namespace is a DNS label: 63 at most
        f"sts/shop/{'d' * 254}",  # a name is a DNS subdomain: 253 at most
        f"{'s' * 64}/db",
    ],
)
def test_names_too_long_are_refused(argument: str) -> None:
    with pytest.raises(ConfigError, match="is not \\[KIND/\\]NAMESPACE/NAME"):
        Catalog.empty().resolve(argument)


def test_the_longest_names_are_taken() -> None:
    ref = Catalog.empty().resolve(f"ds/{'n' * 63}/{'d' * 253}")
    assert (len(ref.namespace), len(ref.deployment), ref.kind) == (63, 253, DS)


def test_a_hostile_kind_is_quoted_and_bounded() -> None:
    argument = "x" * 500 + "/shop/db"
    with pytest.raises(ConfigError) as info:
        Catalog.empty().resolve(argument)
    said = str(info.value)
    assert said == f"{'x' * 80!r}: {'x' * 40!r} is not a kind the bot rolls back " + (
        "(deployment, statefulset, daemonset or rollout, or deploy, sts, ds, ro)"
    )


@pytest.mark.parametrize("argument", ["sts/shop/db/extra", "a/b/c/d", "sts/shop/db/", "////"])
def test_four_parts_or_more_are_no_service(argument: str) -> None:
    with pytest.raises(UnknownService) as info:
        Catalog.empty().resolve(argument)
    assert info.value.name == argument


def test_four_parts_in_a_catalog_are_an_unknown_service(tmp_path: Path) -> None:
    with pytest.raises(UnknownService, match=r"^unknown service 'sts/shop/orders-db/x'"):
        load(tmp_path).resolve("sts/shop/orders-db/x")


def test_a_kind_namespace_name_finds_its_entry_when_the_kind_matches(tmp_path: Path) -> None:
    catalog = load(tmp_path)
    for argument in (
        "sts/shop/orders-db",
        "statefulset/shop/orders-db",
        "StatefulSets/shop/orders-db",
    ):
        ref = catalog.resolve(argument)
        assert ref.name == "orders-db"
        assert ref.entry is catalog.services["orders-db"]
        assert (ref.context, ref.kind) == ("prod-eu", STS)
    assert catalog.resolve("ds/logging/log-shipper").name == "log-shipper"
    assert catalog.resolve("deploy/shop/checkout").name == "checkout"
    assert catalog.resolve("deployment/shop/cart").name == "cart"


@pytest.mark.parametrize(
    ("argument", "kind"),
    [
        ("shop/orders-db", DEPLOY),  # two parts: a Deployment, which orders-db is not
        ("deploy/shop/orders-db", DEPLOY),
        ("ds/shop/orders-db", DS),
        ("sts/shop/checkout", STS),
        ("sts/logging/log-shipper", STS),
    ],
)
def test_another_kind_of_the_same_place_is_not_the_entry(
    argument: str, kind: WorkloadKind, tmp_path: Path
) -> None:
    # orders-db's restriction (allowed_users) must not be lent to, nor lent by, another kind.
    ref = load(tmp_path).resolve(argument)
    assert ref.entry is None
    assert ref.name == argument
    assert ref.kind is kind
    assert ref.context is None


def test_a_catalog_name_is_resolved_with_its_entrys_kind(tmp_path: Path) -> None:
    catalog = load(tmp_path)
    ref = catalog.resolve("log-shipper")
    assert (ref.kind, ref.namespace, ref.deployment) == (DS, "logging", "log-shipper")
    assert {r.name: r.kind for r in catalog.refs()} == {
        "cart": DEPLOY,
        "checkout": DEPLOY,
        "log-shipper": DS,
        "orders-db": STS,
    }


@pytest.mark.parametrize(
    ("kind", "qualified"),
    [
        (DEPLOY, "shop/orders-db"),
        (STS, "statefulset/shop/orders-db"),
        (DS, "daemonset/shop/orders-db"),
    ],
)
def test_qualified_names_the_kind_unless_a_deployment(kind: WorkloadKind, qualified: str) -> None:
    ref = ServiceRef("orders", "shop", "orders-db", "prod-eu", kind=kind)
    assert ref.qualified == qualified
    # What `qualified` says resolves back to the same workload.
    again = Catalog.empty().resolve(ref.qualified)
    assert (again.kind, again.namespace, again.deployment) == (kind, "shop", "orders-db")


def test_target_carries_the_kind_and_the_context(tmp_path: Path) -> None:
    ref = load(tmp_path).resolve("orders-db")
    assert ref.target == Target("shop", "orders-db", "prod-eu", STS)
    assert ref.target.kubectl == "statefulset/orders-db"
    plain = Catalog.empty().resolve("ds/logging/agent").target
    assert plain == Target("logging", "agent", None, DS)


@pytest.mark.parametrize("extra", ["approvals: 1", "gitops: refuse"])
def test_a_blue_green_entry_refuses_the_guards_its_switch_does_not_apply(
    tmp_path: Path, extra: str
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "services:\n  web: {namespace: shop, kind: BlueGreen, service: web, "
        f"selector_key: color, blue: web-blue, green: web-green, {extra}}}\n"
    )
    with pytest.raises(ConfigError, match="cannot be set on a BlueGreen service"):
        Catalog.load(path)
