from __future__ import annotations

from bot.adapters.kube.parsing import label_selector, parse_history
from tests.builders import deployment, replicaset, template


def test_history_is_newest_first_with_the_current_revision_marked() -> None:
    rss = [
        replicaset(template("1"), revision=1, pod_hash="a", created="2026-11-20T10:00:00Z"),
        replicaset(
            template("2"),
            revision=4,
            pod_hash="b",
            created="2026-11-21T10:00:00Z",
            annotations={"kubernetes.io/change-cause": "deploy 2"},
            replicas=3,
        ),
        replicaset(template("3"), revision=3, pod_hash="c", created="2026-11-22T10:00:00Z"),
    ]
    h = parse_history(deployment(template("2"), revision=4), rss)
    assert [r.number for r in h.revisions] == [4, 3, 1]
    assert [r.current for r in h.revisions] == [True, False, False]
    assert h.revisions[0].change_cause == "deploy 2"
    assert h.revisions[0].containers[0].image.endswith(":2")
    assert h.revisions[0].replicas == 3


def test_replicasets_of_other_controllers_are_not_revisions() -> None:
    mine = replicaset(template("1"), revision=1, pod_hash="a", created="2026-11-20T10:00:00Z")
    other = replicaset(
        template("9"), revision=9, pod_hash="z", created="2026-11-20T10:00:00Z", owner="another-uid"
    )
    orphan = replicaset(template("8"), revision=8, pod_hash="y", created="2026-11-20T10:00:00Z")
    orphan["metadata"]["ownerReferences"] = []
    h = parse_history(deployment(template("1"), revision=1), [mine, other, orphan])
    assert [r.number for r in h.revisions] == [1]


def test_label_selector_renders_match_labels_and_expressions() -> None:
    selector = {
        "matchLabels": {"app": "checkout", "tier": "web"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "owner", "operator": "Exists"},
        ],
    }
    assert label_selector(selector) == (
        "app=checkout,tier=web,track in (stable,canary),!legacy,zone notin (b),owner"
    )


def test_went_out_is_the_rollback_time_when_an_old_replicaset_was_reused() -> None:
    rss = [
        replicaset(template("1"), revision=3, pod_hash="a", created="2026-11-20T10:00:00Z"),
        replicaset(template("2"), revision=2, pod_hash="b", created="2026-11-21T10:00:00Z"),
    ]
    plain = parse_history(deployment(template("1"), revision=3), rss)
    assert plain.went_out is not None
    assert plain.went_out.isoformat() == "2026-11-20T10:00:00+00:00"
    rolled = deployment(
        template("1"),
        revision=3,
        annotations={"rollback-bot.io/rolled-back-at": "2026-11-27T04:00:00Z"},
    )
    went_out = parse_history(rolled, rss).went_out
    assert went_out is not None
    assert went_out.isoformat() == "2026-11-27T04:00:00+00:00"
