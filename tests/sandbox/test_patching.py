"""JSON Patch, JSON Merge Patch and strategic merge patch as the apiserver applies them."""

from __future__ import annotations

from typing import Any

import pytest

from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.patching import (
    apply_json_patch,
    apply_merge_patch,
    apply_patch,
    apply_strategic_merge_patch,
)


def deployment(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "resourceVersion": "7", "labels": {"app": "web"}},
        "spec": {"template": {"spec": {"containers": list(containers)}}},
    }


APP = {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}
SIDE = {"name": "side", "image": "side:1"}


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


class TestJsonPatch:
    def test_add_replace_remove_move_copy(self) -> None:
        doc = {"a": {"b": 1}, "list": [1, 2]}
        ops = [
            {"op": "add", "path": "/a/c", "value": 2},
            {"op": "replace", "path": "/a/b", "value": 10},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "add", "path": "/list/0", "value": 0},
            {"op": "remove", "path": "/list/1"},
            {"op": "copy", "from": "/a/b", "path": "/copied"},
            {"op": "move", "from": "/a/c", "path": "/moved"},
            {"op": "add", "path": "/x~1y", "value": "slash"},
        ]
        assert apply_json_patch(doc, ops) == {
            "a": {"b": 10},
            "list": [0, 2, 3],
            "copied": 10,
            "moved": 2,
            "x/y": "slash",
        }
        assert doc == {"a": {"b": 1}, "list": [1, 2]}  # the input is left alone

    def test_replace_of_a_missing_path_is_422(self) -> None:
        with pytest.raises(ApiError) as err:
            apply_json_patch({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}])
        assert err.value.code == 422

    def test_failed_test_op_is_422_and_nothing_applies(self) -> None:
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "6"},
            {"op": "replace", "path": "/spec", "value": {}},
        ]
        with pytest.raises(ApiError) as err:
            apply_json_patch(deployment(APP), ops)
        assert (err.value.code, err.value.reason) == (422, "Invalid")

    def test_kubectl_rollback_patch_shape(self) -> None:
        template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [SIDE]}}
        ops = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}},
        ]
        doc = deployment(APP)
        doc["metadata"]["annotations"] = {}
        result = apply_json_patch(doc, ops)
        assert result["spec"]["template"] == template
        assert result["metadata"]["annotations"] == {"a": "b"}

    def test_a_patch_that_is_not_a_list_is_400(self) -> None:
        with pytest.raises(ApiError) as err:
            apply_json_patch({}, {"op": "add"})
        assert err.value.code == 400


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    doc = deployment(APP, SIDE)
    patch = {
        "metadata": {"labels": {"app": None, "tier": "web"}},
        "spec": {"template": {"spec": {"containers": [SIDE]}}},
    }
    result = apply_merge_patch(doc, patch)
    assert result["metadata"]["labels"] == {"tier": "web"}
    assert containers(result) == [SIDE]


class TestStrategicMergePatch:
    def test_containers_merge_by_name_and_env_by_name(self) -> None:
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "env": [{"name": "B", "value": "2"}]},
                            {"name": "new", "image": "new:1"},
                        ]
                    }
                }
            }
        }
        result = apply_strategic_merge_patch(deployment(APP, SIDE), patch, "Deployment")
        assert [c["name"] for c in containers(result)] == ["app", "side", "new"]
        assert containers(result)[0]["env"] == [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "2"},
        ]
        assert containers(result)[0]["image"] == "app:1"

    def test_kubectl_set_image_with_set_element_order(self) -> None:
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                        "containers": [{"image": "side:2", "name": "side"}],
                    }
                }
            }
        }
        result = apply_strategic_merge_patch(deployment(APP, SIDE), patch, "Deployment")
        assert containers(result) == [APP, {"name": "side", "image": "side:2"}]

    def test_set_element_order_reorders(self) -> None:
        patch = {
            "spec": {
                "template": {
                    "spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}
                }
            }
        }
        result = apply_strategic_merge_patch(deployment(APP, SIDE), patch, "Deployment")
        assert [c["name"] for c in containers(result)] == ["side", "app"]

    def test_patch_delete_and_replace_directives(self) -> None:
        delete = {
            "spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}
        }
        result = apply_strategic_merge_patch(deployment(APP, SIDE), delete, "Deployment")
        assert containers(result) == [APP]
        replace = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]
                    }
                }
            }
        }
        result = apply_strategic_merge_patch(deployment(APP, SIDE), replace, "Deployment")
        assert containers(result) == [{"name": "only", "image": "o:1"}]
        map_replace = {"metadata": {"labels": {"$patch": "replace", "fresh": "yes"}}}
        result = apply_strategic_merge_patch(deployment(APP), map_replace, "Deployment")
        assert result["metadata"]["labels"] == {"fresh": "yes"}
        map_delete = {"metadata": {"labels": {"$patch": "delete"}}}
        result = apply_strategic_merge_patch(deployment(APP), map_delete, "Deployment")
        assert "labels" not in result["metadata"]

    def test_retain_keys_and_null_deletes(self) -> None:
        doc = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
        patch = {
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}
            }
        }
        result = apply_strategic_merge_patch(doc, patch, "Deployment")
        assert result == {"spec": {"strategy": {"type": "Recreate"}}}
        resumed = apply_strategic_merge_patch(
            {"spec": {"paused": True}}, {"spec": {"paused": None}}, "Deployment"
        )
        assert resumed == {"spec": {}}

    def test_ports_merge_by_container_port_and_lists_without_key_replace(self) -> None:
        app = {**APP, "ports": [{"containerPort": 80, "name": "http"}], "args": ["a", "b"]}
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "args": ["c"],
                            }
                        ]
                    }
                }
            }
        }
        result = apply_strategic_merge_patch(deployment(app), patch, "Deployment")
        assert containers(result)[0]["ports"] == [
            {"containerPort": 80, "name": "http", "protocol": "TCP"}
        ]
        assert containers(result)[0]["args"] == ["c"]

    def test_primitive_merge_lists_and_delete_from_primitive_list(self) -> None:
        doc = {"metadata": {"finalizers": ["a", "b"]}}
        merged = apply_strategic_merge_patch(doc, {"metadata": {"finalizers": ["c"]}}, "Pod")
        assert merged["metadata"]["finalizers"] == ["a", "b", "c"]
        removed = apply_strategic_merge_patch(
            doc, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "Pod"
        )
        assert removed["metadata"]["finalizers"] == ["b"]

    def test_missing_merge_key_is_400(self) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
        with pytest.raises(ApiError) as err:
            apply_strategic_merge_patch(deployment(APP), patch, "Deployment")
        assert err.value.code == 400


def test_unknown_patch_media_type_is_415() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch({}, "application/apply-patch+yaml", {}, "Deployment")
    assert (err.value.code, err.value.reason) == (415, "UnsupportedMediaType")
