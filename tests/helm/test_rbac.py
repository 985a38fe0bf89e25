"""RBAC: the exact rules of each Role/ClusterRole, no wildcard, no Secrets, no Pods or pods/exec,
and every call of the bot's Kubernetes adapter granted."""

from __future__ import annotations

import ast
import re

import pytest

from tests.helm.chart import (
    FULLNAME,
    MINIMAL,
    NAMESPACE,
    NAMESPACED,
    REPO,
    RICH,
    VALUES_FILES,
    Manifest,
    find,
    one,
    pod_spec,
    render,
)

# The bot's Kubernetes adapter: Deployments, ReplicaSets, Leases, Events and its own ConfigMap.
ADAPTERS = REPO / "bot" / "adapters" / "kube"

# What the bot may do where the Deployments are, and in its own namespace:
# (apiGroup, resource) -> verbs. The rollback Lease lives next to its Deployment
# (bot/domain/rollback/locks.py), so it is granted with the Deployments.
ROLLOUT_RULES = {
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("apps", "replicasets"): {"get", "list", "watch"},
    ("coordination.k8s.io", "leases"): {"get", "list", "create", "update"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
# By name where RBAC allows (create cannot be): the one ConfigMap the bot keeps its alert index in.
# The audit trail's ConfigMaps are named by service and day: get, list, update and delete (past
# retention) cannot be limited by name either.
AUDIT_VERBS = {"get", "list", "update", "delete"}
STATE_RULES = {
    ("", "configmaps", ()): {"create", *AUDIT_VERBS},
    ("", "configmaps", ("rollback-bot-alert-messages",)): {"get", "update", "patch"},
}


# With gitops.enabled, in each of gitops.namespaces: the GitOps objects the bot reads by name and
# suspends/resumes (bot/adapters/kube/gitops.py), never listed.
GITOPS_RULES = {
    ("argoproj.io", "applications"): {"get", "patch"},
    ("kustomize.toolkit.fluxcd.io", "kustomizations"): {"get", "patch"},
    ("helm.toolkit.fluxcd.io", "helmreleases"): {"get", "patch"},
}


def named_rules(role: Manifest) -> dict[tuple[str, str, tuple[str, ...]], set[str]]:
    return {
        (r["apiGroups"][0], r["resources"][0], tuple(r.get("resourceNames", ()))): set(r["verbs"])
        for r in role["rules"]
    }


def rules_of(role: Manifest) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, for rules without resourceNames; one rule per pair."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = (group, resource)
                assert key not in out, f"{key} granted twice in {role['metadata']['name']}"
                out[key] = set(rule["verbs"])
    return out


@pytest.mark.parametrize("name", VALUES_FILES)
def test_no_rule_grants_a_wildcard_secrets_or_pods(name: str) -> None:
    roles = [m for m in render(name) if m["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert all("*" not in item for item in rule.get(field, [])), rule
            assert not {"secrets", "pods", "pods/exec", "pods/attach", "pods/portforward"} & set(
                rule["resources"]
            ), rule
            assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(
                rule["verbs"]
            ), rule
            # Delete only the bot's own ConfigMaps (the audit trail past retention), in its
            # own namespace.
            if "delete" in rule["verbs"]:
                assert role["kind"] == "Role" and role["metadata"]["name"].endswith("-state")
                assert rule["resources"] == ["configmaps"] and rule["apiGroups"] == [""], rule


def test_a_role_per_catalog_namespace_with_exactly_the_rollout_rules() -> None:
    manifests = render(
        MINIMAL,
        sets=(
            "catalog.services.search.namespace=search",
            "catalog.services.search.deployment=search",
        ),
    )
    roles = {r["metadata"]["namespace"]: r for r in find(manifests, "Role", FULLNAME)}
    assert set(roles) == {"shop", "search"}
    for role in roles.values():
        assert rules_of(role) == ROLLOUT_RULES
    bindings = {b["metadata"]["namespace"]: b for b in find(manifests, "RoleBinding", FULLNAME)}
    assert set(bindings) == {"shop", "search"}
    for binding in bindings.values():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": FULLNAME,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
        ]
    assert not find(manifests, "ClusterRole") and not find(manifests, "ClusterRoleBinding")


def test_the_state_role_is_in_the_bots_namespace_only() -> None:
    manifests = render(MINIMAL)
    state = one(manifests, "Role", f"{FULLNAME}-state")
    assert state["metadata"]["namespace"] == NAMESPACE
    assert named_rules(state) == STATE_RULES
    binding = one(manifests, "RoleBinding", f"{FULLNAME}-state")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"]["name"] == f"{FULLNAME}-state"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]
    assert pod_spec(manifests)["serviceAccountName"] == FULLNAME


def test_explicit_namespaces_and_named_state_resources() -> None:
    manifests = render(NAMESPACED)
    namespaces = {r["metadata"]["namespace"] for r in find(manifests, "Role", FULLNAME)}
    assert namespaces == {"shop", "search", "staging"}
    state = one(manifests, "Role", f"{FULLNAME}-state")
    assert named_rules(state) == {
        ("", "configmaps", ()): {"create", *AUDIT_VERBS},
        ("", "configmaps", ("rollback-bot-alerts",)): {"get", "update", "patch"},
    }


# The official client's method names, as the bot's Kubernetes adapter calls them.
_CLIENT_VERBS = {
    "read": "get",
    "list": "list",
    "create": "create",
    "replace": "update",
    "patch": "patch",
    "delete": "delete",
}
_CLIENT_GROUPS = {
    "apps": "apps",
    "core": "",
    "coordination": "coordination.k8s.io",
    "events": "events.k8s.io",
}
_HTTP_VERBS = {
    "GET": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# A namespaced resource's path, its names ({}) left out: /api/v1/… or /apis/<group>/<version>/….
_API_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/{}]+)/[^/{}]+)/namespaces/\{\}/(?P<resource>[a-z]+)(?:/|$)"
)

Scope = dict[str, ast.expr]


def _assignments(body: ast.AST) -> Scope:
    """`name = <expression>` in a module or function, not in the functions nested in it."""
    out: Scope = {}
    todo = list(ast.iter_child_nodes(body))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            if isinstance(node, ast.ClassDef):
                todo.extend(ast.iter_child_nodes(node))
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                out[target.id] = node.value
        todo.extend(ast.iter_child_nodes(node))
    return out


def _text(node: ast.expr, scopes: list[Scope], depth: int = 0) -> str:
    """A string expression's text as far as the source says it: names resolved from the
    enclosing functions, the module and the package's constants; the rest (values known only
    at run time) as `{}`."""
    if depth < 10:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(_text(part, scopes, depth + 1) for part in node.values)
        if isinstance(node, ast.FormattedValue):
            return _text(node.value, scopes, depth + 1)
        if isinstance(node, ast.Name):
            for scope in reversed(scopes):
                if node.id in scope:
                    return _text(scope[node.id], scopes, depth + 1)
    return "{}"


# Discovery, not a resource: every authenticated identity may read it (system:public-info-viewer).
_NON_RESOURCE = frozenset({"/version"})


def adapter_requests() -> list[tuple[str, str, str, str]]:
    """(module, verb, apiGroup, resource) of each request of the adapter (bot/adapters/kube),
    read from its source: `self._kube.request(what, "VERB", f"{APPS}/namespaces/{ns}/…", …)`
    and the watches, `self._kube.lines(what, path, …)`. A GET of a collection is a list, of a
    named object a get. A request the test cannot read fails here."""
    trees = {path.name: ast.parse(path.read_text()) for path in sorted(ADAPTERS.glob("*.py"))}
    package: Scope = {}
    for tree in trees.values():
        package.update(_assignments(tree))
    found: list[tuple[str, str, str, str]] = []

    def visit(module: str, node: ast.AST, scopes: list[Scope]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scopes = [*scopes, _assignments(node)]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("request", "lines")
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "_kube"
        ):
            where = f"{module}:{node.lineno}"
            if node.func.attr == "lines":
                assert len(node.args) >= 2, f"a watch the test cannot read at {where}"
                method, path = "WATCH", _text(node.args[1], scopes)
            else:
                assert len(node.args) >= 3, f"a request the test cannot read at {where}"
                verb_node, path = node.args[1], _text(node.args[2], scopes)
                assert isinstance(verb_node, ast.Constant), where
                method = str(verb_node.value)
            if path not in _NON_RESOURCE:
                match = _API_PATH.match(path)
                assert match, f"a request to {path} the test cannot read at {where}"
                named = path[match.end() :].strip("/") != ""
                verb = {"GET": "get" if named else "list", "WATCH": "watch"}.get(method)
                found.append(
                    (module, verb or _HTTP_VERBS[method], match["group"] or "", match["resource"])
                )
        for child in ast.iter_child_nodes(node):
            visit(module, child, scopes)

    for module, tree in trees.items():
        visit(module, tree, [package, _assignments(tree)])
        source = (ADAPTERS / module).read_text()
        calls = len(re.findall(r"self\._kube\.(?:request|lines)\(", source))
        read = sum(1 for m, *_ in found if m == module)
        non_resource = sum(source.count(f'"{p}"') for p in _NON_RESOURCE)
        assert calls == read + non_resource, f"{module}: a request the test cannot read"
    return found


def test_the_roles_grant_every_call_of_the_bots_kubernetes_adapter() -> None:
    """Every request of the adapter (bot/adapters/kube), read from its source: a new call the
    chart does not grant fails here. ConfigMaps are the bot's own state, granted by the state
    Role in its namespace; everything else is in the Deployment's namespace, granted by the
    rollout Role."""
    assert ADAPTERS.is_dir(), f"{ADAPTERS} is missing: has the adapter moved?"
    manifests = render(MINIMAL, sets=("gitops.enabled=true",))
    rollout = rules_of(one(manifests, "Role", FULLNAME))
    gitops = {
        r["metadata"]["namespace"]: rules_of(r)
        for r in find(manifests, "Role", f"{FULLNAME}-gitops")
    }
    assert set(gitops) == {"argocd", "flux-system"}
    state: dict[tuple[str, str], set[str]] = {}
    for (group, resource, _names), verbs in named_rules(
        one(manifests, "Role", f"{FULLNAME}-state")
    ).items():
        state.setdefault((group, resource), set()).update(verbs)

    def granted(group: str, resource: str) -> set[str]:
        role = state if (group, resource) == ("", "configmaps") else rollout
        if (group, resource) in GITOPS_RULES:  # granted in every GitOps namespace alike
            return set.intersection(*(g.get((group, resource), set()) for g in gitops.values()))
        return role.get((group, resource), set())

    requests = adapter_requests()
    for module, verb, group, resource in requests:
        assert verb in granted(group, resource), (
            f"{module} needs {verb} on {resource} ({group or 'core'}): the chart does not grant it"
        )
    needed: dict[tuple[str, str], set[str]] = {}
    for _, verb, group, resource in requests:
        needed.setdefault((group, resource), set()).add(verb)
    # What a rollback does, not only what happens to be read: the test would miss a lost call.
    assert needed[("apps", "deployments")] == {"get", "list", "patch", "watch"}
    assert needed[("apps", "replicasets")] == {"list"}
    assert needed[("coordination.k8s.io", "leases")] == {"get", "list", "create", "update"}
    assert needed[("", "events")] == {"create"}
    assert needed[("", "configmaps")] == {"get", "create", "update", "list", "delete"}
    for key, verbs in GITOPS_RULES.items():
        assert needed[key] == verbs


def test_gitops_roles_only_when_enabled_and_only_in_its_namespaces() -> None:
    assert not find(render(MINIMAL), "Role", f"{FULLNAME}-gitops")
    manifests = render(MINIMAL, sets=("gitops.enabled=true", "gitops.namespaces={argo-cd,flux}"))
    roles = {r["metadata"]["namespace"]: r for r in find(manifests, "Role", f"{FULLNAME}-gitops")}
    assert set(roles) == {"argo-cd", "flux"}
    for role in roles.values():
        assert rules_of(role) == GITOPS_RULES
    bindings = find(manifests, "RoleBinding", f"{FULLNAME}-gitops")
    assert {b["metadata"]["namespace"] for b in bindings} == {"argo-cd", "flux"}
    for binding in bindings:
        assert binding["roleRef"]["name"] == f"{FULLNAME}-gitops"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
        ]
    # Cluster-wide Deployments do not widen the GitOps grant.
    wide = render(RICH, sets=("gitops.enabled=true",))
    assert GITOPS_RULES.keys().isdisjoint(rules_of(one(wide, "ClusterRole")))


def test_cluster_wide_rbac() -> None:
    manifests = render(RICH)
    cluster_role = one(manifests, "ClusterRole")
    assert rules_of(cluster_role) == ROLLOUT_RULES
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rollback-bot", "namespace": NAMESPACE}
    ]
    assert [r["metadata"]["name"] for r in find(manifests, "Role")] == ["rollback-bot-state"]


def test_no_rbac_when_disabled() -> None:
    manifests = render(MINIMAL, sets=("rbac.create=false",))
    assert not [m for m in manifests if m["kind"].endswith(("Role", "RoleBinding"))]
