"""The official Python client against the sandbox: selectors, watches (resume, bookmarks,
410 Gone), optimistic concurrency, the three patch types, errors and injected faults."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from rollback_sandbox.cluster.threaded import SandboxThread

JsonDict = dict[str, Any]


@pytest.fixture
def api(sandbox: SandboxThread, tmp_path: Path) -> Iterator[client.ApiClient]:
    path = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="default")
    loader: Any = config  # the loader has no type hints
    api_client = loader.new_client_from_config(config_file=str(path))
    yield api_client
    api_client.close()


def deployment(name: str, image: str = "web:1.0", **labels: str) -> JsonDict:
    labels = {"app": name, **labels}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def raw(
    sandbox: SandboxThread,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One plain HTTP call, decoded: what a raw-JSON client such as the bot sees."""
    request = urllib.request.Request(  # noqa: S310 - a loopback URL we built
        f"{sandbox.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": content_type, "Accept": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - a loopback URL we built
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def stream(list_fn: Any, *args: Any, **kwargs: Any) -> Iterator[JsonDict]:
    """`watch.Watch().stream`, which has no type hints."""
    watcher: Any = watch.Watch
    yield from watcher().stream(list_fn, *args, **kwargs)


def apps_api(api: client.ApiClient) -> Any:
    """The typed API, used untyped: tests pass plain dicts as bodies, as the bot does."""
    return client.AppsV1Api(api)


def core_api(api: client.ApiClient) -> Any:
    return client.CoreV1Api(api)


def status_of(exc: ApiException) -> JsonDict:
    loaded: JsonDict = json.loads(exc.body or "{}")
    return loaded


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_list_with_label_and_field_selectors(api: client.ApiClient) -> None:
    apps = apps_api(api)
    core_api(api).create_namespace({"metadata": {"name": "other"}})
    apps.create_namespaced_deployment("default", deployment("a", tier="web"))
    apps.create_namespaced_deployment("default", deployment("b", tier="db"))
    apps.create_namespaced_deployment("other", deployment("c", tier="web", canary="yes"))

    def names(**kwargs: str) -> list[str]:
        items = apps.list_deployment_for_all_namespaces(**kwargs).items
        return [d.metadata.name for d in items]

    assert names() == ["a", "b", "c"]
    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier!=web") == ["b"]
    assert names(label_selector="tier in (db, cache)") == ["b"]
    assert names(label_selector="tier notin (db),app") == ["a", "c"]
    assert names(label_selector="canary") == ["c"]
    assert names(label_selector="!canary,tier=web") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.namespace=other") == ["c"]
    assert names(field_selector="metadata.namespace!=other,metadata.name!=a") == ["b"]
    namespaced = apps.list_namespaced_deployment("default", label_selector="tier=web").items
    assert [d.metadata.name for d in namespaced] == ["a"]
    with pytest.raises(ApiException) as bad:
        apps.list_deployment_for_all_namespaces(field_selector="spec.replicas=2")
    assert bad.value.status == 400
    page = apps.list_deployment_for_all_namespaces(limit=2)
    assert [d.metadata.name for d in page.items] == ["a", "b"]
    rest = apps.list_deployment_for_all_namespaces(limit=2, _continue=page.metadata._continue)
    assert [d.metadata.name for d in rest.items] == ["c"]
    assert rest.metadata._continue is None


def test_controller_builds_replicasets_and_pods_like_the_real_one(
    api: client.ApiClient, sandbox: SandboxThread
) -> None:
    apps = apps_api(api)
    created = apps.create_namespaced_deployment("default", deployment("web"))
    uid = created.metadata.uid

    def complete() -> bool:
        d = apps.read_namespaced_deployment("web", "default")
        return bool(d.status.available_replicas == 2 and d.status.observed_generation == 1)

    wait_for(complete)
    d = raw(sandbox, "GET", "/apis/apps/v1/namespaces/default/deployments/web")[1]
    assert d["status"]["replicas"] == d["status"]["updatedReplicas"] == 2
    assert "unavailableReplicas" not in d["status"]  # zero fields are omitted
    conditions = {c["type"]: c for c in d["status"]["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    [rs] = raw(sandbox, "GET", "/apis/apps/v1/namespaces/default/replicasets")[1]["items"]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "pod-template-hash": pod_hash,
    }
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "2",
        "deployment.kubernetes.io/max-replicas": "3",
    }
    assert rs["status"] == {
        "replicas": 2,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "observedGeneration": 1,
    }
    pods = core_api(api).list_namespaced_pod("default", label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.metadata.name.startswith(f"web-{pod_hash}-") for p in pods)
    assert all(p.status.phase == "Running" for p in pods)


def test_watch_resumes_from_a_resource_version(api: client.ApiClient) -> None:
    core = core_api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "one"}, "data": {"a": "1"}})
    core.patch_namespaced_config_map("one", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("one", "default")
    seen = [
        (e["type"], e["object"].metadata.name, (e["object"].data or {}).get("a"))
        for e in stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=start,
            timeout_seconds=1,
            _request_timeout=10,
        )
    ]
    assert seen == [("ADDED", "one", "1"), ("MODIFIED", "one", "2"), ("DELETED", "one", "2")]


def test_watch_without_resource_version_starts_with_the_current_state(
    api: client.ApiClient,
) -> None:
    core = core_api(api)
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "here", "labels": {"k": "v"}}}
    )
    core.create_namespaced_config_map("default", {"metadata": {"name": "not-me"}})
    events = list(
        stream(core.list_namespaced_config_map, "default", label_selector="k=v", timeout_seconds=1)
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "here")]


def test_watch_of_a_compacted_resource_version_is_410_gone(
    api: client.ApiClient, sandbox: SandboxThread
) -> None:
    core = core_api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    sandbox.faults.compact_history()
    with pytest.raises(ApiException) as gone:
        list(
            stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=start,
                timeout_seconds=1,
            )
        )
    assert gone.value.status == 410
    assert "Expired" in str(gone.value.reason)
    # from the current resourceVersion on, watching works again
    now = core.list_namespaced_config_map("default").metadata.resource_version
    assert (
        list(
            stream(
                core.list_namespaced_config_map, "default", resource_version=now, timeout_seconds=1
            )
        )
        == []
    )


def test_watch_sends_bookmarks_and_ends_when_dropped(
    api: client.ApiClient, sandbox: SandboxThread
) -> None:
    sandbox.sandbox.bookmark_interval = 0.05
    core = core_api(api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    events: list[JsonDict] = []
    done = threading.Event()

    def consume() -> None:
        for event in stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=30,
            _request_timeout=30,
        ):
            events.append(event)
        done.set()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    wait_for(lambda: any(e["type"] == "BOOKMARK" for e in events))
    core.create_namespaced_config_map("default", {"metadata": {"name": "late"}})
    wait_for(lambda: any(e["type"] == "ADDED" for e in events))
    assert sandbox.faults.drop_watches() == 1
    assert done.wait(10), "the watch did not end when dropped"
    bookmark = next(e for e in events if e["type"] == "BOOKMARK")
    assert int(bookmark["raw_object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_raw_watch_stream_is_newline_delimited_json(sandbox: SandboxThread) -> None:
    url = f"{sandbox.url}/api/v1/namespaces?watch=true&timeoutSeconds=1"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a loopback URL we built
        lines = response.read().decode().splitlines()
    first = json.loads(lines[0])
    assert first["type"] == "ADDED"
    assert first["object"]["kind"] == "Namespace"
    assert first["object"]["metadata"]["name"] == "default"


def test_stale_update_is_409_conflict(api: client.ApiClient, sandbox: SandboxThread) -> None:
    apps = apps_api(api)
    apps.create_namespaced_deployment("default", deployment("web"))
    path = "/apis/apps/v1/namespaces/default/deployments/web"

    def settled() -> bool:
        obj = raw(sandbox, "GET", path)[1]
        status, spec = obj.get("status") or {}, obj.get("spec") or {}
        observed = status.get("observedGeneration") == obj["metadata"].get("generation")
        return bool(observed and status.get("availableReplicas") == spec.get("replicas"))

    # The controller writes the status while the rollout runs: only our own writes may race.
    wait_for(settled)
    first = raw(sandbox, "GET", path)[1]
    second = json.loads(json.dumps(first))
    first["spec"]["replicas"] = 4
    apps.replace_namespaced_deployment("web", "default", first)
    second["spec"]["replicas"] = 5
    with pytest.raises(ApiException) as stale:
        apps.replace_namespaced_deployment("web", "default", second)
    assert stale.value.status == 409
    body = status_of(stale.value)
    assert body["kind"] == "Status"
    assert body["reason"] == "Conflict"
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    assert "the object has been modified" in body["message"]


def test_json_patch_with_a_stale_resource_version_is_409(api: client.ApiClient) -> None:
    apps = apps_api(api)
    apps.create_namespaced_deployment("default", deployment("web"))
    read = apps.read_namespaced_deployment("web", "default")
    untyped: Any = api
    template = untyped.sanitize_for_serialization(read.spec.template)
    template["spec"]["containers"][0]["image"] = "web:2.0"
    ops = [
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": read.metadata.resource_version,
        },
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": {"note": "rollback"}},
    ]
    apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"touched": "yes"}}})
    with pytest.raises(ApiException) as stale:
        apps.patch_namespaced_deployment("web", "default", ops)
    assert stale.value.status == 409
    # the controller's status writes move the resourceVersion too: read once it is quiet
    wait_for(
        lambda: apps.read_namespaced_deployment("web", "default").status.available_replicas == 2
    )
    fresh = apps.read_namespaced_deployment("web", "default")
    ops[0]["value"] = fresh.metadata.resource_version
    patched = apps.patch_namespaced_deployment("web", "default", ops)
    assert patched.spec.template.spec.containers[0].image == "web:2.0"
    assert patched.metadata.annotations == {"note": "rollback"}
    assert patched.metadata.generation == 2  # the label patch did not bump it; this one did


def test_json_patch_test_op_failure_is_422(api: client.ApiClient) -> None:
    apps = apps_api(api)
    apps.create_namespaced_deployment("default", deployment("web"))
    ops = [{"op": "test", "path": "/spec/replicas", "value": 7}]
    with pytest.raises(ApiException) as failed:
        apps.patch_namespaced_deployment("web", "default", ops)
    assert failed.value.status == 422
    assert status_of(failed.value)["reason"] == "Invalid"


def test_merge_and_strategic_merge_patches(api: client.ApiClient, sandbox: SandboxThread) -> None:
    apps = apps_api(api)
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append(
        {"name": "side", "image": "side:1", "env": [{"name": "A", "value": "1"}]}
    )
    apps.create_namespaced_deployment("default", body)
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    # strategic: containers merge by name, env by name
    smp = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "side", "env": [{"name": "B", "value": "2"}]}]}
            }
        }
    }
    code, d = raw(sandbox, "PATCH", path, smp, "application/strategic-merge-patch+json")
    assert code == 200, d
    containers = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "side"]
    assert containers[1]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    # merge patch (RFC 7386): lists are replaced whole, null deletes
    merge = {"metadata": {"labels": {"app": None, "new": "x"}}, "spec": {"replicas": 3}}
    code, d = raw(sandbox, "PATCH", path, merge, "application/merge-patch+json")
    assert code == 200, d
    assert d["metadata"]["labels"] == {"new": "x"}
    assert d["spec"]["replicas"] == 3
    code, status = raw(sandbox, "PATCH", path, {}, "application/apply-patch+yaml")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    code, status = raw(sandbox, "PATCH", path, {}, "application/vnd.kubernetes.protobuf")
    assert code == 415


def test_errors_are_status_objects(api: client.ApiClient, sandbox: SandboxThread) -> None:
    apps = apps_api(api)
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("nope", "default")
    assert missing.value.status == 404
    assert status_of(missing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'deployments.apps "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "apps", "kind": "deployments"},
        "code": 404,
    }
    apps.create_namespaced_deployment("default", deployment("web"))
    with pytest.raises(ApiException) as twice:
        apps.create_namespaced_deployment("default", deployment("web"))
    assert (twice.value.status, status_of(twice.value)["reason"]) == (409, "AlreadyExists")
    broken = deployment("bad")
    broken["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as invalid:
        apps.create_namespaced_deployment("default", broken)
    body = status_of(invalid.value)
    assert (invalid.value.status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    with pytest.raises(ApiException) as nowhere:
        apps.create_namespaced_deployment("ghost", deployment("web"))
    assert status_of(nowhere.value)["message"] == 'namespaces "ghost" not found'
    code, status = raw(sandbox, "POST", "/apis/apps/v1/namespaces/default/deployments/web", {})
    assert (code, status["reason"]) == (405, "MethodNotAllowed")


def test_dry_run_and_generate_name(api: client.ApiClient) -> None:
    apps = apps_api(api)
    dry = apps.create_namespaced_deployment("default", deployment("web"), dry_run="All")
    assert dry.metadata.name == "web"
    assert apps.list_namespaced_deployment("default").items == []
    generated = deployment("x")
    del generated["metadata"]["name"]
    generated["metadata"]["generateName"] = "web-"
    made = apps.create_namespaced_deployment("default", generated)
    assert made.metadata.name.startswith("web-")
    assert len(made.metadata.name) == len("web-") + 5


def test_delete_propagation_and_orphaning(api: client.ApiClient) -> None:
    apps = apps_api(api)
    apps.create_namespaced_deployment("default", deployment("keep"))
    apps.create_namespaced_deployment("default", deployment("drop"))
    wait_for(lambda: len(apps.list_namespaced_replica_set("default").items) == 2)
    apps.delete_namespaced_deployment("keep", "default", propagation_policy="Orphan")
    apps.delete_namespaced_deployment("drop", "default")
    [orphan] = apps.list_namespaced_replica_set("default").items
    assert orphan.metadata.name.startswith("keep-")
    assert orphan.metadata.owner_references is None
    pods = core_api(api).list_namespaced_pod("default").items
    assert pods and all(p.metadata.name.startswith("keep-") for p in pods)


def test_scale_subresource(api: client.ApiClient) -> None:
    apps = apps_api(api)
    apps.create_namespaced_deployment("default", deployment("web"))
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 4


def test_injected_failures_latency_and_recovery(
    api: client.ApiClient, sandbox: SandboxThread
) -> None:
    apps = apps_api(api)
    sandbox.faults.fail_next(2, 503, method="GET", path_contains="/deployments")
    for _ in range(2):
        with pytest.raises(ApiException) as unavailable:
            apps.list_namespaced_deployment("default")
        assert unavailable.value.status == 503
        assert status_of(unavailable.value)["reason"] == "ServiceUnavailable"
    assert apps.list_namespaced_deployment("default").items == []
    sandbox.faults.fail_next(1, 500, method="PATCH")
    apps.create_namespaced_deployment("default", deployment("web"))  # POST is not affected
    with pytest.raises(ApiException) as internal:
        apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 1}})
    assert internal.value.status == 500
    assert sandbox.faults.injected == 3
    sandbox.faults.set_latency(0.2)
    started = time.monotonic()
    apps.read_namespaced_deployment("web", "default")
    assert time.monotonic() - started >= 0.2
    sandbox.faults.clear()


def test_discovery_documents(sandbox: SandboxThread) -> None:
    def fetch(path: str) -> JsonDict:
        with urllib.request.urlopen(f"{sandbox.url}{path}", timeout=10) as r:  # noqa: S310
            loaded: JsonDict = json.loads(r.read())
            return loaded

    assert fetch("/api")["versions"] == ["v1"]
    groups = {g["name"] for g in fetch("/apis")["groups"]}
    assert {"apps", "coordination.k8s.io"} <= groups
    apps = fetch("/apis/apps/v1/")
    scale = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert fetch("/version")["minor"] == "33"
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch("/openapi/v2")
    with missing.value as error:
        assert error.code == 404  # kubectl then falls back to its built-in schemas
