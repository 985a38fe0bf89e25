"""Every rendered manifest validated against the Kubernetes JSON schemas (kubernetes-validate,
offline) for the oldest supported, kubectl's, and the newest known Kubernetes."""

from __future__ import annotations

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from tests.helm.chart import FULLNAME, MINIMAL, VALUES_FILES, one, render

K8S_VERSIONS = ("1.25", "1.33", kubernetes_validate.latest_version())
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}  # no schema ships for a CRD


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", VALUES_FILES)
def test_manifests_are_valid_kubernetes_objects(name: str, version: str) -> None:
    validated = 0
    for m in render(name):
        if (m["apiVersion"], m["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(m, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{m['kind']}/{m['metadata']['name']} at {where}: {exc.message}")
        validated += 1
    assert validated >= 9


def test_the_schema_validation_is_not_vacuous() -> None:
    deployment = one(render(MINIMAL), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33", strict=True)
    role = one(render(MINIMAL), "Role", FULLNAME)
    role["rules"][0]["verbs"] = "get"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, "1.33", strict=True)
