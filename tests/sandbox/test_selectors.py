"""Label and field selectors in the apiserver's string syntax."""

from __future__ import annotations

import pytest

from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.selectors import (
    from_label_selector,
    matches,
    parse_field_selector,
    parse_label_selector,
    selector_string,
)

LABELS = {"app": "web", "tier": "front", "canary": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),  # != also matches objects without the label
        ("tier in (front, back)", True),
        ("tier notin (front)", False),
        ("missing notin (x)", True),
        ("canary", True),
        ("!canary", False),
        ("!missing,app=web,tier in (front)", True),
        ("app=web,tier=back", False),
    ],
)
def test_label_selector_strings(text: str, expected: bool) -> None:
    assert matches(parse_label_selector(text), LABELS) is expected


def test_bad_label_selector_is_400() -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector("app===web")
    assert err.value.code == 400


def test_label_selector_objects() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    }
    assert matches(from_label_selector(sel), LABELS)
    assert not matches(from_label_selector(sel), {"app": "web"})
    assert selector_string({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns"}, "status": {"phase": "Running"}}
    reqs = parse_field_selector("metadata.name=x,status.phase!=Pending", ("status.phase",))
    assert all(r.matches(obj) for r in reqs)
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.replicas=1", ())
    assert err.value.code == 400
    assert "field label not supported" in err.value.message
