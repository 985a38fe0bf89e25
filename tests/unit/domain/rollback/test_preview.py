"""What a rollback changes, container by container, as the confirmation shows it: env names,
never env values (plain or from a Secret)."""

from __future__ import annotations

from typing import Any

from bot.domain.rollback.template_diff import diff_templates, preview
from tests.builders import template

SECRET = "hunter2-plain"


def current() -> dict[str, Any]:
    tpl = template("3.0.0", env={"LOG_LEVEL": "debug", "API_TOKEN": SECRET, "KEEP": "same"})
    main = tpl["spec"]["containers"][0]
    main["env"].append(
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
    )
    main["resources"] = {"limits": {"memory": "512Mi"}}
    main["command"] = ["/app", "--mode=fast"]
    tpl["spec"]["initContainers"] = [
        {"name": "migrate", "image": "migrate:3", "env": [{"name": "T", "value": SECRET}]}
    ]
    return tpl


def target() -> dict[str, Any]:
    tpl = template("2.13.0", env={"LOG_LEVEL": "info", "KEEP": "same", "OLD_FLAG": "1"})
    main = tpl["spec"]["containers"][0]
    main["resources"] = {"limits": {"memory": "256Mi"}}
    main["command"] = ["/app"]
    tpl["spec"]["containers"].append({"name": "legacy", "image": "legacy:1", "env": []})
    return tpl


def test_each_container_with_image_env_names_resources_and_command() -> None:
    items = {p.title: p.lines for p in preview(diff_templates(current(), target()))}
    assert items["checkout"] == (
        "image registry.example.com/shop/checkout:3.0.0 → registry.example.com/shop/checkout:"
        "2.13.0",
        "env added: OLD_FLAG (values not shown)",
        "env removed: API_TOKEN, DB_PASSWORD (values not shown)",
        "env changed: LOG_LEVEL (values not shown)",
        "resources.limits.memory: 512Mi → 256Mi",
        'command: ["/app","--mode=fast"] → ["/app"]',
    )
    assert items["migrate (init container, removed)"] == ("image migrate:3",)
    assert items["legacy (added)"] == ("image legacy:1",)
    assert items["pod"] == ("metadata.labels.app.kubernetes.io/version: 3.0.0 → 2.13.0",)
    assert list(items)[-1] == "pod"


def test_no_env_value_is_in_the_preview_nor_in_any_change_as_text() -> None:
    changes = diff_templates(current(), target())
    shown = repr([p.lines for p in preview(changes)]) + "\n".join(str(c) for c in changes)
    for value in (SECRET, "debug", "info", "secretKeyRef", '"pw"'):
        assert value not in shown, value
    assert "containers[checkout].env[API_TOKEN]: removed (values not shown)" in shown


def test_a_long_value_is_clipped() -> None:
    before, after = template("1"), template("1")
    after["spec"]["containers"][0]["args"] = ["x" * 1000]
    (item,) = preview(diff_templates(before, after))
    assert len(item.lines[0]) < 250 and item.lines[0].endswith("…")
