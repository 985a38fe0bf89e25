"""The Secret mounted as files, no token in the environment; the bot's own settings loader reading
the rendered environment and Secret; the catalog ConfigMap loaded by the bot's catalog loader;
checksums that roll the pods."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
import yaml

from bot.config.catalog import Catalog
from bot.config.settings import load_settings
from tests.helm.chart import (
    ALL_INTERFACES,
    FULLNAME,
    MINIMAL,
    NAMESPACE,
    NAMESPACED,
    RICH,
    TOKEN_KEYS,
    VALUES_FILES,
    container,
    env_of,
    find,
    one,
    pod_spec,
    render,
    template,
    values_file,
)


@pytest.mark.parametrize("name", VALUES_FILES)
def test_the_secret_is_files_in_the_secrets_dir_and_never_in_the_environment(name: str) -> None:
    manifests = render(name)
    values = values_file(name)
    c = container(manifests)
    env = env_of(c)
    secrets_dir = env["ROLLBACK_BOT_SECRETS_DIR"]["value"]
    assert secrets_dir == "/var/run/secrets/rollback-bot"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == secrets_dir)
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == mount["name"])
    expected_secret = values.get("existingSecret") or FULLNAME
    assert volume["secret"]["secretName"] == expected_secret
    assert volume["secret"]["defaultMode"] == 0o440  # group 10001 (fsGroup) reads, nobody writes

    assert "envFrom" not in c
    tokens = [v for k, v in values.get("secret", {}).items() if k != "create" and v]
    for var in c["env"]:
        assert "secretKeyRef" not in var.get("valueFrom", {}), var
        assert var["name"] not in TOKEN_KEYS
        assert not any(token in str(var.get("value", "")) for token in tokens), var

    secrets = find(manifests, "Secret")
    if values.get("existingSecret"):
        assert secrets == []
    else:
        secret = one(manifests, "Secret", FULLNAME)
        assert set(secret["data"]) <= set(TOKEN_KEYS)
        decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert decoded["SLACK_BOT_TOKEN"] == values["secret"]["slackBotToken"]


def test_socket_mode_needs_no_signing_secret() -> None:
    manifests = render(
        MINIMAL, sets=("secret.slackSigningSecret=", "secret.slackAppToken=xapp-socket")
    )
    assert set(one(manifests, "Secret")["data"]) == {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"}


@pytest.mark.parametrize("name", [MINIMAL, NAMESPACED])
def test_the_bots_settings_read_the_rendered_environment_and_secret(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's variable names and Secret keys are the ones the bot's Settings read."""
    manifests = render(name)
    values = values_file(name)["secret"]
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for key, encoded in one(manifests, "Secret")["data"].items():
        (secrets_dir / key).write_bytes(base64.b64decode(encoded))
    for var in [*TOKEN_KEYS, "KUBECONFIG"] + [k for k in os.environ if k.startswith("ROLLBACK_")]:
        monkeypatch.delenv(var, raising=False)
    for var in container(manifests)["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
        else:
            # Only the downward API: the pod's namespace and name, never a secret's value.
            downward = {"ROLLBACK_BOT_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": downward[var["name"]]}}
            monkeypatch.setenv(var["name"], NAMESPACE)

    settings = load_settings(secrets_dir)

    assert settings.namespace == NAMESPACE
    assert settings.config == Path("/etc/rollback-bot/catalog.yaml")
    assert settings.host == ALL_INTERFACES
    assert settings.port == 3000
    assert settings.kube_request_timeout == 10.0
    assert settings.log_level == "INFO"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.kubeconfig is None  # in-cluster configuration
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == values["slackBotToken"]
    for field, key in (
        ("slack_signing_secret", "slackSigningSecret"),
        ("slack_app_token", "slackAppToken"),
        ("alertmanager_token", "alertmanagerToken"),
    ):
        secret = getattr(settings, field)
        assert (secret.get_secret_value() if secret else None) == values.get(key), field


def test_settings_and_extra_env() -> None:
    env = env_of(container(render(RICH)))
    assert env["ROLLBACK_BOT_LOG_LEVEL"]["value"] == "DEBUG"
    assert env["ROLLBACK_BOT_KUBE_TIMEOUT"]["value"] == "7.5"
    assert env["ROLLBACK_BOT_DEFAULT_CHANNEL"]["value"] == "C0INCIDENTS"
    assert env["ROLLBACK_BOT_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert env["HTTPS_PROXY"]["value"] == "http://proxy.internal:3128"
    assert "ROLLBACK_BOT_DEFAULT_CHANNEL" not in env_of(container(render(MINIMAL)))


@pytest.mark.parametrize("name", VALUES_FILES)
def test_the_configmap_holds_the_catalog_verbatim_where_the_bot_reads_it(
    name: str, tmp_path: Path
) -> None:
    manifests = render(name)
    c = container(manifests)
    config_path = Path(env_of(c)["ROLLBACK_BOT_CONFIG"]["value"])
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec(manifests)["volumes"] if v["name"] == mount["name"])
    configmap = one(manifests, "ConfigMap", volume["configMap"]["name"])
    text = configmap["data"][config_path.name]
    assert yaml.safe_load(text) == values_file(name)["catalog"]
    (tmp_path / config_path.name).write_text(text)
    catalog = Catalog.load(tmp_path / config_path.name)  # the bot's own loader accepts it
    assert set(catalog.services) == set(values_file(name)["catalog"]["services"])


def _show_only(path: str, *values: str, sets: tuple[str, ...] = ()) -> str:
    out = template(*values, sets=sets, extra=("--show-only", path))
    header = f"---\n# Source: rollback-bot/{path}\n"
    assert out.startswith(header)
    return out[len(header) :]


def test_checksums_are_those_of_the_rendered_configmap_and_secret() -> None:
    annotations = one(render(MINIMAL), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    for key, path in (
        ("checksum/catalog", "templates/configmap.yaml"),
        ("checksum/secret", "templates/secret.yaml"),
    ):
        text = _show_only(path, MINIMAL)
        assert annotations[key] == hashlib.sha256(text.encode()).hexdigest()


def test_a_changed_catalog_or_secret_rolls_the_pods() -> None:
    def checksums(*sets: str) -> dict[str, str]:
        template_meta = one(render(MINIMAL, sets=sets), "Deployment")["spec"]["template"]
        return {
            k: v for k, v in template_meta["metadata"]["annotations"].items() if "checksum" in k
        }

    base = checksums()
    catalog = checksums("catalog.services.checkout.deployment=checkout-v2")
    secret = checksums("secret.slackBotToken=xoxb-rotated")
    assert catalog["checksum/catalog"] != base["checksum/catalog"]
    assert catalog["checksum/secret"] == base["checksum/secret"]
    assert secret["checksum/secret"] != base["checksum/secret"]
    assert secret["checksum/catalog"] == base["checksum/catalog"]
    rich = one(render(RICH), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/catalog" in rich and "checksum/secret" not in rich  # existingSecret
    assert rich["example.com/team"] == "platform"  # podAnnotations beside them
