"""A revision's pods by their pod-template-hash, and the revision it replaced."""

from __future__ import annotations

from bot.adapters.kube.parsing import parse_history
from bot.domain.analysis.versions import pod_template_hash, replaced
from tests.builders import deployment, replicaset, template


def test_the_hash_is_the_replicasets_label_and_the_replaced_one_the_highest_below() -> None:
    history = parse_history(
        deployment(template("1.1"), revision=5),
        [
            replicaset(template("1.0"), revision=1, pod_hash="aaa", created="2026-11-20T10:00:00Z"),
            replicaset(template("0.9"), revision=3, pod_hash="ccc", created="2026-11-21T10:00:00Z"),
            replicaset(template("1.1"), revision=5, pod_hash="bbb", created="2026-11-22T10:00:00Z"),
        ],
    )
    current = history.current
    assert current is not None
    assert pod_template_hash(current) == "bbb"
    previous = replaced(history, current)
    assert previous is not None and previous.number == 3
    first = history.revision(1)
    assert first is not None and replaced(history, first) is None


def test_a_template_without_the_label_has_no_hash() -> None:
    history = parse_history(
        deployment(template("1.0"), revision=1),
        [replicaset(template("1.0"), revision=1, pod_hash="aaa", created="2026-11-20T10:00:00Z")],
    )
    revision = history.revisions[0]
    del revision.template["metadata"]["labels"]["pod-template-hash"]
    assert pod_template_hash(revision) is None
