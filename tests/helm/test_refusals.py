"""Values the chart refuses: by its schema (helm's message names the key) and by its templates
(a sentence), rather than rendering a bot that cannot work.

Each bad value of the schema is checked on its own in-process, against `values.schema.json` with
`jsonschema`, over the values as helm merges them (the chart's defaults, `minimal.yaml`, the bad
value): milliseconds, not a helm process per value. The real helm stays the oracle: it refuses
every one of those values too, several in one `helm template` whose failure lists them all, and
there helm and the in-process check must name the same keys, as they must both accept the
values files, so the fast check cannot drift from helm.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.helm.chart import (
    CHART,
    MINIMAL,
    VALUES_FILES,
    chart_defaults,
    helm,
    refusal,
    render,
    values_args,
    values_file,
)

SCHEMA_REFUSED = "values don't meet the specifications of the schema"


@dataclass(frozen=True)
class BadValue:
    """A value the schema refuses, merged over `minimal.yaml` as helm merges a later `-f` file."""

    case: str
    overlay: dict[str, Any]
    message: str  # what helm says, starting with the key it names: "at '<JSON pointer>': ..."
    keyword: str  # the schema keyword that refuses it

    @property
    def at(self) -> str:
        match = re.match(r"at '([^']*)'", self.message)
        assert match, self.message
        return match[1]


SCHEMA_REFUSALS = [
    BadValue(
        "log level",
        {"settings": {"logLevel": "LOUD"}},
        "at '/settings/logLevel': value must be one of",
        "enum",
    ),
    BadValue(
        "namespace not a DNS label",
        {"catalog": {"services": {"web": {"namespace": "Web_NS", "deployment": "web"}}}},
        "at '/catalog/services/web/namespace': 'Web_NS' does not match pattern",
        "pattern",
    ),
    BadValue(
        "deployment not a DNS name",
        {"catalog": {"services": {"web": {"namespace": "web", "deployment": "Web App"}}}},
        "at '/catalog/services/web/deployment': 'Web App' does not match pattern",
        "pattern",
    ),
    BadValue(
        "service without deployment",
        {"catalog": {"services": {"web": {"namespace": "web"}}}},
        "at '/catalog/services/web': missing property 'deployment'",
        "required",
    ),
    BadValue(
        "namespace not a string",
        {"catalog": {"services": {"web": {"namespace": 7, "deployment": "web"}}}},
        "at '/catalog/services/web/namespace': got number, want string",
        "type",
    ),
    BadValue(
        "privileged port",
        {"containerPort": 80},
        "at '/containerPort': minimum: got 80, want 1,024",
        "minimum",
    ),
    BadValue(
        "port out of range",
        {"service": {"port": 70000}},
        "at '/service/port': maximum: got 70,000",
        "maximum",
    ),
    BadValue(
        "negative replicas",
        {"replicaCount": -1},
        "at '/replicaCount': minimum: got -1, want 0",
        "minimum",
    ),
    BadValue(
        "replicas as a string",
        {"replicaCount": "two"},
        "at '/replicaCount': got string, want integer",
        "type",
    ),
    BadValue(
        "unknown top-level key",
        {"replicas": 2},
        "at '': additional properties 'replicas' not allowed",
        "additionalProperties",
    ),
    BadValue(
        "secret.create and existingSecret",
        {"existingSecret": "mine", "secret": {"create": True}},
        "at '/secret/create': value must be false",
        "const",
    ),
    BadValue(
        "neither secret.create nor existingSecret",
        {"existingSecret": "", "secret": {"create": False}},
        "at '/existingSecret': minLength: got 0, want 1",
        "minLength",
    ),
    BadValue(
        "a token in extraEnv",
        {"extraEnv": [{"name": "SLACK_BOT_TOKEN", "value": "xoxb-leak"}]},
        "at '/extraEnv/0/name': 'not' failed",
        "not",
    ),
    BadValue(
        "kube timeout zero",
        {"settings": {"kubeTimeout": 0}},
        "at '/settings/kubeTimeout'",
        "exclusiveMinimum",
    ),
    BadValue(
        "metrics exposed by the Ingress",
        {"ingress": {"paths": ["/metrics"]}},
        "at '/ingress/paths/0': value must be one of '/slack/events', '/alertmanager'",
        "enum",
    ),
    BadValue(
        "pull policy",
        {"image": {"pullPolicy": "Sometimes"}},
        "at '/image/pullPolicy': value must be one",
        "enum",
    ),
    BadValue(
        "bad digest",
        {"image": {"digest": "latest"}},
        "at '/image/digest': 'latest' does not match",
        "pattern",
    ),
    BadValue(
        "RBAC namespace not a DNS label",
        {"rbac": {"namespaces": ["Shop"]}},
        "at '/rbac/namespaces/0': 'Shop' does not match pattern",
        "pattern",
    ),
    BadValue(
        "PDB percentage",
        {"podDisruptionBudget": {"maxUnavailable": "150%"}},
        "at '/podDisruptionBudget/maxUnavailable'",
        "pattern",  # of the string branch of its oneOf (the integer branch refuses the type)
    ),
]

# Also run by the real helm alone, each in its own `helm template`: one per kind of rule (a list
# of allowed values, a required key, a number's range, a rule across two keys, a forbidden value).
HELM_ALONE = (
    "log level",
    "service without deployment",
    "privileged port",
    "secret.create and existingSecret",
    "a token in extraEnv",
)


# ---------------------------------------------------------------------------------------------
# the values as helm merges them, checked in-process


def merged(*layers: dict[str, Any]) -> dict[str, Any]:
    """Values merged as helm merges its `-f` files over the chart's defaults: maps key by key,
    anything else (lists too) replaced by the later layer."""
    out: dict[str, Any] = {}
    for layer in layers:
        out = _merge(out, layer)
    return out


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@functools.cache
def _minimal_values() -> dict[str, Any]:
    return merged(chart_defaults(), values_file(MINIMAL))


def values_with(*bad: BadValue) -> dict[str, Any]:
    """The values helm validates for `-f minimal.yaml -f <bad value>...` (the merge copies what it
    changes, and validating changes nothing: the cached minimal values stay as they are)."""
    return merged(_minimal_values(), *(b.overlay for b in bad))


def chart_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


@functools.cache
def _validator() -> Any:
    return jsonschema.Draft7Validator(chart_schema())


def schema_errors(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON pointer, keyword) of each innermost error, as helm lists them (an `allOf`, `oneOf`
    or `anyOf` that fails is explained by the errors of its branches)."""
    out: list[tuple[str, str]] = []

    def walk(errors: Any) -> None:
        for error in errors:
            if error.context:
                walk(error.context)
            else:
                where = "".join(f"/{part}" for part in error.absolute_path)
                out.append((where, str(error.validator)))

    walk(_validator().iter_errors(values))
    return sorted(out)


_HELM_ERROR = re.compile(r"^(?P<indent> *)- at '(?P<at>[^']*)': ")


def helm_errors(message: str) -> list[str]:
    """The JSON pointers of the innermost errors helm lists (an indented list explains the error
    above it)."""
    listed = [
        (len(m["indent"]), m["at"])
        for line in message.splitlines()
        if (m := _HELM_ERROR.match(line))
    ]
    innermost = [
        at
        for i, (indent, at) in enumerate(listed)
        if i + 1 == len(listed) or listed[i + 1][0] <= indent
    ]
    return sorted(innermost)


def _leaf_keys(node: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        return {leaf for k, v in node.items() for leaf in _leaf_keys(v, (*prefix, str(k)))}
    return {prefix}


def helm_runs() -> list[tuple[BadValue, ...]]:
    """HELM_ALONE each alone, the others together where they set different keys (a value that
    merges over another's would hide it)."""
    runs: list[tuple[BadValue, ...]] = [(b,) for b in SCHEMA_REFUSALS if b.case in HELM_ALONE]
    together: list[list[BadValue]] = []
    for bad in (b for b in SCHEMA_REFUSALS if b.case not in HELM_ALONE):
        keys = _leaf_keys(bad.overlay)
        for run in together:
            taken = {k for b in run for k in _leaf_keys(b.overlay)}
            if not any(a[: len(b)] == b or b[: len(a)] == a for a in keys for b in taken):
                run.append(bad)
                break
        else:
            together.append([bad])
    return runs + [tuple(run) for run in together]


def test_every_case_is_known() -> None:
    cases = [b.case for b in SCHEMA_REFUSALS]
    assert len(set(cases)) == len(cases)
    assert set(HELM_ALONE) <= set(cases)
    assert sorted(b.case for run in helm_runs() for b in run) == sorted(cases)


def test_the_schema_is_draft_07_and_knows_every_default_value() -> None:
    schema = chart_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert set(chart_defaults()) <= set(schema["properties"])


@pytest.mark.parametrize("bad", [pytest.param(b, id=b.case) for b in SCHEMA_REFUSALS])
def test_the_schema_refuses_a_bad_value_naming_its_key(bad: BadValue) -> None:
    """In-process: alone, over the minimal values, the value is refused at its key only."""
    errors = schema_errors(values_with(bad))
    assert {at for at, _ in errors} == {bad.at}, errors
    assert bad.keyword in {keyword for _, keyword in errors}, errors


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(run, id=run[0].case if len(run) == 1 else f"{len(run)} values together")
        for run in helm_runs()
    ],
)
def test_helm_refuses_the_bad_values_as_the_in_process_check_does(
    run: tuple[BadValue, ...], tmp_path: Path
) -> None:
    """The real helm applies values.schema.json: it refuses each value naming its key, and lists
    exactly the errors the in-process check finds in the same values."""
    files: list[str] = []
    for i, bad in enumerate(run):
        path = tmp_path / f"bad-{i}.yaml"
        path.write_text(yaml.safe_dump(bad.overlay))
        files += ["-f", str(path)]
    message = refusal(MINIMAL, extra=tuple(files))
    assert SCHEMA_REFUSED in message
    for bad in run:
        assert bad.message in message, bad.case
    assert helm_errors(message) == [at for at, _ in schema_errors(values_with(*run))], message


@pytest.mark.parametrize("name", VALUES_FILES)
def test_helm_and_the_in_process_check_accept_each_values_file(name: str) -> None:
    assert schema_errors(merged(chart_defaults(), values_file(name))) == []
    assert render(name)  # helm renders it: its schema check passed


def test_lint_refuses_a_bad_value_too() -> None:
    result = helm(
        "lint", str(CHART), *values_args((MINIMAL,), ("catalog.services.web.namespace=web",))
    )
    assert result.returncode != 0
    assert "at '/catalog/services/web': missing property 'deployment'" in result.stdout


# ---------------------------------------------------------------------------------------------
# the templates: what the schema cannot say, refused by the templates themselves


def test_the_defaults_alone_do_not_install_a_bot_without_tokens() -> None:
    message = refusal()
    assert "secret.slackBotToken is required" in message
    assert "existingSecret" in message


TEMPLATE_REFUSALS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "no Slack tokens anywhere",
        ("secret.create=false",),
        "the Slack tokens come from nowhere: set secret.create=true",
    ),
    (
        "both a chart Secret and existingSecret",
        ("existingSecret=mine",),
        "set either secret.create=true (the chart makes the Secret) or existingSecret",
    ),
    (
        "HTTP mode without the signing secret",
        ("secret.slackSigningSecret=",),
        "secret.slackSigningSecret is required in Slack HTTP mode",
    ),
    (
        "rbac.namespaces missing a catalog namespace",
        ("rbac.namespaces[0]=other",),
        'catalog service "checkout" is in namespace "shop", which rbac.namespaces does not list',
    ),
    (
        "Ingress without a host",
        ("ingress.enabled=true",),
        "ingress.enabled needs at least one host",
    ),
    (
        "no ServiceAccount to use",
        ("serviceAccount.create=false",),
        "serviceAccount.name is required when serviceAccount.create is false",
    ),
]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [pytest.param(sets, expected, id=case) for case, sets, expected in TEMPLATE_REFUSALS],
)
def test_the_templates_refuse_what_cannot_work_even_without_the_schema(
    sets: tuple[str, ...], expected: str
) -> None:
    message = refusal(MINIMAL, sets=sets, extra=("--skip-schema-validation",))
    assert expected in message
