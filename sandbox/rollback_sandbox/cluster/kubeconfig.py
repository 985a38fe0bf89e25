"""A kubeconfig for the sandbox that kubectl, helm and the official client all accept."""

from __future__ import annotations

from pathlib import Path

import yaml

# the sandbox checks no credentials; a token keeps clients from prompting for any
DUMMY_TOKEN = "sandbox-token"  # noqa: S105 - not a secret


def kubeconfig(
    server_url: str, *, context: str = "sandbox", namespace: str = "shop"
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server_url}}],
        "users": [{"name": context, "user": {"token": DUMMY_TOKEN}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path | str, server_url: str, *, context: str = "sandbox", namespace: str = "shop"
) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        kubeconfig(server_url, context=context, namespace=namespace), sort_keys=False
    )
    target.write_text(text, encoding="utf-8")
    target.chmod(0o600)  # kubectl and helm warn about group/world-readable kubeconfigs
    return target
