"""A kubeconfig the official client cannot use, explained in one line: file, line, what."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.kube.client import load_api_client
from bot.adapters.kube.kubeconfig import explain
from bot.domain.errors import ConfigError

TOKEN = "s3cr3t-token-value"
GOOD = f"""\
apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://k8s.example.com:6443
contexts:
- name: prod
  context: {{cluster: prod, user: admin}}
current-context: prod
users:
- name: admin
  user: {{token: {TOKEN}}}
"""


def write(tmp_path: Path, text: str, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_usable_kubeconfig_has_nothing_to_explain(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert explain(str(path), None) is None
    assert load_api_client(str(path), None).configuration.host == "https://k8s.example.com:6443"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ": the file is empty"),
        ("# nothing but a comment\n", ": the file is empty"),
        ("just-a-word\n", ", line 1: a kubeconfig is a mapping"),
        (
            GOOD.replace("- name: prod\n  cluster:", "- name: prod\n cluster:"),
            ", line 5: invalid YAML: expected <block end>, but found '<block mapping start>'",
        ),
        (
            GOOD.replace(
                "contexts:\n- name: prod\n  context: {cluster: prod, user: admin}", "contexts: 7"
            ),
            ", line 7: 'contexts' must be a list, not a single value",
        ),
        (
            GOOD.replace(
                f"- name: admin\n  user: {{token: {TOKEN}}}", f"- [admin, {{token: {TOKEN}}}]"
            ),
            ", line 12: each entry of 'users' must be a mapping with 'name' and 'user', not a list",
        ),
        (GOOD.replace("- name: prod\n  cluster", "- nom: prod\n  cluster"), ", line 4: an entry "),
        (GOOD.replace("current-context: prod", "current-context: dev"), ", line 10: current-"),
        (GOOD.replace("current-context: prod", "current-context: ''"), ", line 10: current-"),
        (GOOD.replace("current-context: prod\n", ""), ": no current-context is set"),
        (GOOD.replace("{cluster: prod,", "{cluster: staging,"), ", line 9: context 'prod' names"),
        (GOOD.replace("{cluster: prod,", "{"), ", line 9: context 'prod' names no cluster"),
        (
            GOOD.replace("server: https", "serverx: https"),
            ", line 6: cluster 'prod' has no 'server'",
        ),
        (
            GOOD.replace("  cluster:\n    server: https://k8s.example.com:6443", "  cluster: 5"),
            ", line 5: cluster 'prod': 'cluster' must be a mapping, not a single value",
        ),
    ],
)
def test_the_problem_is_named_with_the_file_and_line_and_the_client_refuses_the_same(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    explained = explain(str(path), None)
    assert explained is not None
    assert explained.startswith(f"kubeconfig {path}{expected}")
    assert "\n" not in explained and TOKEN not in explained
    with pytest.raises(ConfigError) as refused:
        load_api_client(str(path), None)
    assert str(refused.value) == explained


def test_a_context_asked_for_that_is_not_there(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert explain(str(path), "staging") == f"kubeconfig {path}: there is no context 'staging'"
    with pytest.raises(ConfigError, match="there is no context 'staging'"):
        load_api_client(str(path), "staging")


def test_files_merged_like_kubeconfig_name_the_file_at_fault(tmp_path: Path) -> None:
    first = write(tmp_path, GOOD, "first")
    broken = write(tmp_path, "clusters:\n- name: other\n  cluster: {}\nusers: {admin: 1}\n", "2nd")
    joined = f"{first}:{tmp_path / 'missing'}:{broken}"
    expected = f"kubeconfig {broken}, line 4: 'users' must be a list, not a mapping"
    assert explain(joined, None) == expected
    with pytest.raises(ConfigError) as refused:
        load_api_client(joined, None)
    assert str(refused.value) == expected
    # The first file's entry of a name wins, as in the client: the second's broken one is unused.
    fine = write(tmp_path, "clusters:\n- name: prod\n  cluster: 5\n", "third")
    assert explain(f"{first}:{fine}", None) is None
    assert load_api_client(f"{first}:{fine}", None).configuration.host.endswith(":6443")


def test_no_file_at_all(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert explain(str(missing), None) == f"kubeconfig {missing}: no such file"
    with pytest.raises(ConfigError, match="no such file"):
        load_api_client(str(missing), None)
