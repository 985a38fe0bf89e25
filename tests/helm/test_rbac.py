"""RBAC: the exact rules of each Role/ClusterRole, no wildcard, no Secrets, no Pods or pods/exec,
and every call of the bot's Kubernetes adapter granted."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.domain.rollback.argo_rollouts import STATUS_SUBRESOURCE
from bot.domain.rollback.models import WorkloadKind
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
# What each kind beyond Deployments adds where the workloads are (the same Roles, or the
# ClusterRole), only when a catalog service has that kind or rbac.extraKinds lists it. Its
# ControllerRevisions are a StatefulSet's or a DaemonSet's history; a BlueGreen switch patches
# the Service's selector and watches its EndpointSlices (its colours are Deployments, scaled with
# the Deployment rule); an Argo Rollout is undone by a patch and aborted by a status patch.
KIND_RULES: dict[str, dict[tuple[str, str], set[str]]] = {
    "StatefulSet": {
        ("apps", "statefulsets"): {"get", "list", "watch", "patch"},
        ("apps", "controllerrevisions"): {"get", "list", "watch"},
    },
    "DaemonSet": {
        ("apps", "daemonsets"): {"get", "list", "watch", "patch"},
        ("apps", "controllerrevisions"): {"get", "list", "watch"},
    },
    "BlueGreen": {
        ("", "services"): {"get", "list", "watch", "patch"},
        ("discovery.k8s.io", "endpointslices"): {"get", "list", "watch"},
    },
    "Rollout": {
        ("argoproj.io", "rollouts"): {"get", "list", "watch", "patch"},
        ("argoproj.io", "rollouts/status"): {"patch"},
    },
}
KINDS = tuple(KIND_RULES)


def extra_kinds(*kinds: str) -> str:
    """`--set` of rbac.extraKinds."""
    return f"rbac.extraKinds={{{','.join(kinds)}}}"


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
# A namespaced resource's path, its names ({}) left out: /api/v1/… or /apis/<group>/<version>/…,
# then the resource, and maybe a name and a subresource (`rollouts/{}/status`: rollouts/status).
_API_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/{}]+)/[^/{}]+)/namespaces/\{\}/(?P<resource>[a-z]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<subresource>[a-z]+))?)?$"
)

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class _Param:
    """A parameter of the function `function`: its value is its default or what a call passes."""

    function: str
    name: str
    position: int  # among the positional parameters (self included); -1 keyword-only
    default: ast.expr | None
    annotation: str


@dataclass(frozen=True)
class _Unpacked:
    """`a, b = <value>`: element `index` of the tuple `value` is or its function returns."""

    value: ast.expr
    index: int


Scope = dict[str, "ast.expr | _Param | _Unpacked"]


@dataclass
class _Module:
    """One module of the adapter as the scan reads it: the package's and its own names, its
    functions by name, and each call in it (by the called name) with the scopes it is made in."""

    scopes: list[Scope]
    functions: dict[str, list[Function]]
    calls: dict[str, list[tuple[ast.Call, list[Scope]]]]


# Values a parameter of the adapter takes only from callers outside it (the use cases), by
# (function, parameter) and kind: `Deployments.patch(subresource=...)` is the abort of an Argo
# Rollout, on its status (bot/domain/rollback/argo_rollouts.py); no other kind's patch passes
# one (None: the object itself).
_FROM_OUTSIDE: dict[tuple[str, str], dict[WorkloadKind, frozenset[str]]] = {
    ("patch", "subresource"): {WorkloadKind.ROLLOUT: frozenset({STATUS_SUBRESOURCE})},
}
_FROM_OUTSIDE_READ: set[tuple[str, str]] = set()


def _own_nodes(body: ast.AST) -> list[ast.AST]:
    """The nodes of a module or function, not those of the functions nested in it (a class's
    are the module's: its methods are skipped, its assignments kept)."""
    out: list[ast.AST] = []
    todo = list(ast.iter_child_nodes(body))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _assignments(body: ast.AST) -> Scope:
    """`name = <expression>` (and `a, b = <expression>`) in a module or function, not in the
    functions nested in it."""
    out: Scope = {}
    for node in _own_nodes(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            out[node.target.id] = node.value
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if isinstance(target, ast.Name):
            out[target.id] = node.value
        elif isinstance(target, ast.Tuple) and not any(
            isinstance(element, ast.Starred) for element in target.elts
        ):
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Name):
                    out[element.id] = _Unpacked(node.value, index)
    return out


def _returns(function: Function) -> list[ast.expr | None]:
    return [node.value for node in _own_nodes(function) if isinstance(node, ast.Return)]


def _parameters(function: Function) -> Scope:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    out: Scope = {}
    for position, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        out[arg.arg] = _Param(function.name, arg.arg, position, default, _annotation(arg))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out[arg.arg] = _Param(function.name, arg.arg, -1, kw_default, _annotation(arg))
    return out


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation is not None else ""


def _function_scope(function: Function) -> Scope:
    """Its parameters, and its assignments (which win over a parameter of the same name)."""
    return {**_parameters(function), **_assignments(function)}


def _passed(param: _Param, call: ast.Call) -> ast.expr | None:
    """What `call` passes for `param` (by keyword or position), or None (its default)."""
    for keyword in call.keywords:
        if keyword.arg == param.name:
            return keyword.value
    assert not any(keyword.arg is None for keyword in call.keywords), (
        f"{param.function}(**...) at line {call.lineno}: the test cannot follow it"
    )
    assert not any(isinstance(arg, ast.Starred) for arg in call.args), (
        f"{param.function}(*...) at line {call.lineno}: the test cannot follow it"
    )
    if param.position < 0:
        return None
    # self.method(a, b): a is the parameter after self.
    index = param.position - (1 if isinstance(call.func, ast.Attribute) else 0)
    return call.args[index] if 0 <= index < len(call.args) else None


def _given(node: ast.expr | None) -> bool:
    """A value passed or defaulted; `None` (no value: the code takes another way) is not."""
    return node is not None and not (isinstance(node, ast.Constant) and node.value is None)


_UNKNOWN = frozenset({"{}"})


def _texts(
    node: ast.expr, scopes: list[Scope], module: _Module, kind: WorkloadKind, depth: int = 0
) -> frozenset[str]:
    """Every text a string expression may have when the workload is `kind`, as far as the
    source says: names resolved from the enclosing functions, the module and the package's
    constants; a parameter from its default, from what each call of its function in the module
    passes, and from _FROM_OUTSIDE; `a, b = f(...)` from what f returns; both branches of a
    conditional; `kind.<property>` of a `kind: WorkloadKind` parameter as the bot's enum says
    for that kind (so `kind.api_path` and `kind.plural` are of one kind). The rest (values known
    only at run time) as `{}`."""
    if depth >= 12:
        return _UNKNOWN
    deeper = depth + 1

    def texts(expr: ast.expr, where: list[Scope]) -> frozenset[str]:
        return _texts(expr, where, module, kind, deeper)

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return frozenset({node.value})
    if isinstance(node, ast.JoinedStr):
        parts = [texts(part, scopes) for part in node.values]
        return frozenset("".join(combination) for combination in itertools.product(*parts))
    if isinstance(node, ast.FormattedValue):
        return texts(node.value, scopes)
    if isinstance(node, ast.IfExp):
        return texts(node.body, scopes) | texts(node.orelse, scopes)
    if isinstance(node, ast.Attribute):
        owner = _lookup(node.value, scopes)
        if isinstance(owner, _Param) and owner.annotation == "WorkloadKind":
            value = getattr(kind, node.attr, None)
            return frozenset({value}) if isinstance(value, str) else _UNKNOWN
    found = _lookup(node, scopes)
    if isinstance(found, _Param):
        return _param_texts(found, scopes, module, kind, deeper)
    if isinstance(found, _Unpacked):
        return _unpacked_texts(found, scopes, module, kind, deeper)
    if found is not None:
        return texts(found, scopes)
    return _UNKNOWN


def _param_texts(
    param: _Param, scopes: list[Scope], module: _Module, kind: WorkloadKind, depth: int
) -> frozenset[str]:
    sources = [(param.default, scopes)] if _given(param.default) else []
    for call, call_scopes in module.calls.get(param.function, []):
        passed = _passed(param, call)
        if _given(passed):
            sources.append((passed, call_scopes))
    found = [_texts(expr, where, module, kind, depth) for expr, where in sources if expr]
    outside = _FROM_OUTSIDE.get((param.function, param.name))
    if outside is not None:
        _FROM_OUTSIDE_READ.add((param.function, param.name))
        found.append(outside.get(kind, frozenset()))  # none: this kind never passes one
    return frozenset().union(*found) if found else _UNKNOWN


def _unpacked_texts(
    unpacked: _Unpacked, scopes: list[Scope], module: _Module, kind: WorkloadKind, depth: int
) -> frozenset[str]:
    value, index = unpacked.value, unpacked.index
    if isinstance(value, ast.Tuple) and index < len(value.elts):
        return _texts(value.elts[index], scopes, module, kind, depth)
    name = _called(value) if isinstance(value, ast.Call) else None
    found: list[frozenset[str]] = []
    for function in module.functions.get(name or "", []):
        where = [*module.scopes, _function_scope(function)]
        for returned in _returns(function):
            if isinstance(returned, ast.Tuple) and index < len(returned.elts):
                found.append(_texts(returned.elts[index], where, module, kind, depth))
            else:
                found.append(_UNKNOWN)
    return frozenset().union(*found) if found else _UNKNOWN


def _lookup(node: ast.expr, scopes: list[Scope]) -> ast.expr | _Param | _Unpacked | None:
    if isinstance(node, ast.Name):
        for scope in reversed(scopes):
            if node.id in scope:
                return scope[node.id]
    return None


# Discovery, not a resource: every authenticated identity may read it (system:public-info-viewer).
_NON_RESOURCE = frozenset({"/version"})


def _walk(
    node: ast.AST, scopes: list[Scope], on_call: Callable[[ast.Call, list[Scope]], None]
) -> None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        scopes = [*scopes, _function_scope(node)]
    if isinstance(node, ast.Call):
        on_call(node, scopes)
    for child in ast.iter_child_nodes(node):
        _walk(child, scopes, on_call)


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _read_module(tree: ast.Module, package: Scope) -> _Module:
    module = _Module([package, _assignments(tree)], {}, {})
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            module.functions.setdefault(node.name, []).append(node)

    def record(call: ast.Call, scopes: list[Scope]) -> None:
        name = _called(call)
        if name is not None:
            module.calls.setdefault(name, []).append((call, scopes))

    _walk(tree, module.scopes, record)
    return module


def adapter_requests() -> list[tuple[str, str, str, str]]:
    """(module, verb, apiGroup, resource) of each request of the adapter (bot/adapters/kube),
    read from its source: `self._kube.request(what, "VERB", f"{APPS}/namespaces/{ns}/…", …)`
    and the watches, `self._kube.lines(what, path, …)`; each request is read for every kind of
    the bot (`{kind.api_path}/…/{kind.plural}`), and a choice (`a if … else b`) as both. A GET
    of a collection is a list, of a named object a get; a subresource is
    `resource/subresource`. A request the test cannot read fails here."""
    _FROM_OUTSIDE_READ.clear()
    trees = {path.name: ast.parse(path.read_text()) for path in sorted(ADAPTERS.glob("*.py"))}
    package: Scope = {}
    for tree in trees.values():
        package.update(_assignments(tree))
    found: list[tuple[str, str, str, str]] = []

    for name, tree in trees.items():
        module = _read_module(tree, package)
        sites: set[int] = set()

        def request(
            call: ast.Call,
            scopes: list[Scope],
            name: str = name,
            module: _Module = module,
            sites: set[int] = sites,
        ) -> None:
            node = call.func
            if not (
                isinstance(node, ast.Attribute)
                and node.attr in ("request", "lines")
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "_kube"
            ):
                return
            where = f"{name}:{call.lineno}"
            if node.attr == "lines":
                assert len(call.args) >= 2, f"a watch the test cannot read at {where}"
                method, path_node = "WATCH", call.args[1]
            else:
                assert len(call.args) >= 3, f"a request the test cannot read at {where}"
                verb_node, path_node = call.args[1], call.args[2]
                assert isinstance(verb_node, ast.Constant), where
                method = str(verb_node.value)
            paths = frozenset().union(
                *(_texts(path_node, scopes, module, kind) for kind in WorkloadKind)
            )
            for path in sorted(paths):
                if path in _NON_RESOURCE:
                    continue
                match = _API_PATH.match(path)
                assert match, f"a request to {path} the test cannot read at {where}"
                verb = {"GET": "get" if match["name"] else "list", "WATCH": "watch"}.get(method)
                resource = match["resource"]
                if match["subresource"]:
                    resource = f"{resource}/{match['subresource']}"
                found.append((name, verb or _HTTP_VERBS[method], match["group"] or "", resource))
                sites.add(call.lineno)

        _walk(tree, module.scopes, request)
        source = (ADAPTERS / name).read_text()
        calls_in_source = len(re.findall(r"self\._kube\.(?:request|lines)\(", source))
        non_resource = sum(source.count(f'"{p}"') for p in _NON_RESOURCE)
        assert calls_in_source == len(sites) + non_resource, (
            f"{name}: a request the test cannot read"
        )
    assert set(_FROM_OUTSIDE) == _FROM_OUTSIDE_READ, "_FROM_OUTSIDE names a parameter no more"
    return found


def test_each_kind_of_the_bot_is_granted_by_its_own_rules() -> None:
    """The scan reads each request for every kind of the bot's WorkloadKind: the chart grants
    each kind's resource in its API group, Deployments always, the others with KIND_RULES."""
    for kind in WorkloadKind:
        key = (kind.group, kind.plural)
        if kind is WorkloadKind.DEPLOYMENT:
            assert key in ROLLOUT_RULES
        else:
            assert key in KIND_RULES.get(kind.value, {}), kind


def test_the_roles_grant_every_call_of_the_bots_kubernetes_adapter() -> None:
    """Every request of the adapter (bot/adapters/kube), read from its source: a new call the
    chart does not grant fails here. ConfigMaps are the bot's own state, granted by the state
    Role in its namespace; everything else is in the workload's namespace, granted by the
    rollout Role: always, or, for what only a kind needs (KIND_RULES), by the Role of a release
    whose catalog or rbac.extraKinds has that kind (each such kind's, if several need it)."""
    assert ADAPTERS.is_dir(), f"{ADAPTERS} is missing: has the adapter moved?"
    manifests = render(MINIMAL, sets=("gitops.enabled=true",))
    rollout = rules_of(one(manifests, "Role", FULLNAME))
    with_kind = {
        kind: rules_of(one(render(MINIMAL, sets=(extra_kinds(kind),)), "Role", FULLNAME))
        for kind in KINDS
    }
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
        key = (group, resource)
        if key == ("", "configmaps"):
            return state.get(key, set())
        if key in GITOPS_RULES:  # granted in every GitOps namespace alike
            return set.intersection(*(g.get(key, set()) for g in gitops.values()))
        kinds = [kind for kind, rules in KIND_RULES.items() if key in rules]
        if kinds:
            return set.intersection(*(with_kind[kind].get(key, set()) for kind in kinds))
        return rollout.get(key, set())

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
    # StatefulSets and DaemonSets: the same reads, patch and watch as a Deployment, their
    # history in ControllerRevisions (listed by the workload's selector).
    assert needed[("apps", "statefulsets")] == {"get", "list", "patch", "watch"}
    assert needed[("apps", "daemonsets")] == {"get", "list", "patch", "watch"}
    assert needed[("apps", "controllerrevisions")] == {"list"}
    # A blue-green switch: the Service's selector patched, its EndpointSlices followed.
    assert needed[("", "services")] == {"get", "patch"}
    assert needed[("discovery.k8s.io", "endpointslices")] == {"list", "watch"}
    # An Argo Rollout: read, undone, followed, and aborted on its status.
    assert needed[("argoproj.io", "rollouts")] == {"get", "list", "patch", "watch"}
    assert needed[("argoproj.io", "rollouts/status")] == {"patch"}
    # Nothing the chart does not know of: every resource needed is in one of its rule sets.
    known = {*ROLLOUT_RULES, *GITOPS_RULES, ("", "configmaps")}
    known |= {key for rules in KIND_RULES.values() for key in rules}
    assert set(needed) <= known, set(needed) - known


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
