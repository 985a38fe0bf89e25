"""Who rolls back from the CLI: the OS user and the kubeconfig user, labelled unverified."""

from __future__ import annotations

import base64
import json
import os
import pwd
from pathlib import Path

import pytest
import yaml

from bot.entry.cli import commands
from bot.entry.cli.commands import (
    ACTOR_LIMIT,
    actor_text,
    cli_actor,
    kubeconfig_user,
    os_user,
    service_account,
)


def _kubeconfig(path: Path, current: str | None, **contexts: str) -> Path:
    document: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": u}} for n, u in contexts.items()
        ],
    }
    if current is not None:
        document["current-context"] = current
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $KUBECONFIG, no ~/.kube/config, not in a cluster."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv(commands.IN_CLUSTER_HOST_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_the_os_user_is_what_the_os_says_not_dollar_user(
    monkeypatch: pytest.MonkeyPatch, nowhere: Path
) -> None:
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    me = pwd.getpwuid(os.getuid()).pw_name
    assert os_user() == me
    assert cli_actor(None, None) == f"os user {me} (unverified)"


def test_an_unknown_uid_is_named_by_number(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", missing)
    assert os_user() == f"uid {os.getuid()}"


def test_the_current_context_names_the_kubeconfig_user(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", "prod", prod="admin@prod", dev="me@dev")
    assert kubeconfig_user(str(path), None) == "admin@prod"
    assert kubeconfig_user(str(path), "dev") == "me@dev"
    assert kubeconfig_user(str(path), "absent") is None


def test_several_kubeconfigs_merge_as_kubectl_does(tmp_path: Path) -> None:
    first = _kubeconfig(tmp_path / "a", None, prod="first@prod")
    second = _kubeconfig(tmp_path / "b", "prod", prod="second@prod", dev="me@dev")
    paths = f"{tmp_path / 'missing'}::{first}:{second}"
    assert kubeconfig_user(paths, None) == "first@prod"  # the first file to name it wins
    assert kubeconfig_user(paths, "dev") == "me@dev"


@pytest.mark.parametrize(
    "text",
    [
        "{not: [valid yaml",
        "just a string",
        "contexts: 42\ncurrent-context: prod\n",
        "contexts: [{name: prod, context: admin}]\ncurrent-context: prod\n",
        "contexts: [{name: prod, context: {user: [1, 2]}}]\ncurrent-context: prod\n",
    ],
)
def test_an_odd_kubeconfig_names_no_user(tmp_path: Path, text: str) -> None:
    (tmp_path / "config").write_text(text)
    assert kubeconfig_user(str(tmp_path / "config"), None) is None


def test_the_actor_uses_the_context_in_use(monkeypatch: pytest.MonkeyPatch, nowhere: Path) -> None:
    path = _kubeconfig(nowhere / "config", "prod", prod="admin@prod", dev="me@dev")
    me = os_user()
    assert cli_actor(str(path), None) == f"os user {me}, kubeconfig user admin@prod (unverified)"
    assert cli_actor(str(path), "dev") == f"os user {me}, kubeconfig user me@dev (unverified)"
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert cli_actor(None, None) == f"os user {me}, kubeconfig user admin@prod (unverified)"
    (nowhere / ".kube").mkdir()
    _kubeconfig(nowhere / ".kube" / "config", "home", home="me@home")
    monkeypatch.delenv("KUBECONFIG")
    assert cli_actor(None, None) == f"os user {me}, kubeconfig user me@home (unverified)"


def _token(path: Path, claims: object) -> Path:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    path.write_text(f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl\n")
    return path


def test_in_a_cluster_the_actor_names_the_service_account(
    monkeypatch: pytest.MonkeyPatch, nowhere: Path
) -> None:
    token = _token(nowhere / "token", {"sub": "system:serviceaccount:ops:rollback-bot"})
    monkeypatch.setattr(commands, "SERVICE_ACCOUNT_TOKEN", token)
    monkeypatch.setenv(commands.IN_CLUSTER_HOST_ENV, "10.0.0.1")
    assert cli_actor(None, None) == (
        f"os user {os_user()}, service account ops/rollback-bot (unverified)"
    )


@pytest.mark.parametrize(
    "content",
    ["", "not-a-jwt", "a.!!!.c", "a.bm90IGpzb24.c", None],
)
def test_an_unreadable_token_names_no_service_account(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    assert service_account(path) is None
    assert service_account(_token(tmp_path / "user", {"sub": "alice"})) is None
    assert service_account(_token(tmp_path / "list", ["x"])) is None


def test_hostile_names_become_one_short_line() -> None:
    actor = actor_text("eve\x1b[2J", "kubeconfig user", "[/bold]\r\nroot" + "z" * 500)
    assert actor.startswith("os user eve^[[2J, kubeconfig user [/bold]^M^Jroot")
    assert actor.endswith("… (unverified)")
    assert len(actor) <= ACTOR_LIMIT
    assert not any(ord(ch) < 0x20 for ch in actor)
