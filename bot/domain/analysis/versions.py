"""Which pods are a revision's, and which revision it replaced, read from a Deployment's history.
Pure.

A revision's pods are selected in Prometheus by the `pod-template-hash` label the Deployment
controller puts on its ReplicaSet's pod template (and so on every pod). The revision a new one
replaced is the highest-numbered one below it: a rollback renumbers the revision it restores,
so the numbers are the order in which the revisions became current.
"""

from __future__ import annotations

from bot.domain.rollback.models import POD_TEMPLATE_HASH_LABEL, History, Revision


def pod_template_hash(revision: Revision) -> str | None:
    """The revision's pod-template-hash label, as the cluster wrote it (None when absent).
    Unchecked: `queries.render_query` refuses a value that is not a hash."""
    metadata = revision.template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    value = labels.get(POD_TEMPLATE_HASH_LABEL) if isinstance(labels, dict) else None
    return value if isinstance(value, str) and value else None


def replaced(history: History, revision: Revision) -> Revision | None:
    """The revision `revision` replaced when it went out: the highest-numbered below it."""
    older = [r for r in history.revisions if r.number < revision.number]
    return max(older, key=lambda r: r.number) if older else None
