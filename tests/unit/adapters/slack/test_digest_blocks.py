"""The storm digest's Block Kit: one line per service with the alert button, the picker and the
thread's list past Slack's limits, hostile names, and every message as Slack checks it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack import action_ids
from bot.adapters.slack.blocks import clicked_known_bad
from bot.adapters.slack.digest_blocks import (
    OPTION_TEXT,
    OPTION_VALUE,
    PICKER_OPTIONS,
    SERVICE_LINE,
    digest_list_message,
    digest_message,
    digest_overflows,
    picked_reply,
)
from bot.adapters.slack.payloads import RollbackButton
from bot.adapters.slack.render import MAX_BLOCKS, SECTION_TEXT, TEXT_BUDGET, Message
from bot.domain.alerts.advice import advise
from bot.domain.alerts.storms import DigestRecord, ServiceSummary, service_summaries, summarize
from bot.domain.alerts.views import DigestServiceView, DigestView
from bot.domain.rollback.migrations import MIGRATION_ANNOTATION
from bot.domain.rollback.models import History, RunInfo
from bot.domain.rollback.views import ServiceView
from rollback_sandbox.slack.blockkit import validate_blocks
from tests.builders import deployment, replicaset, template
from tests.unit.adapters.slack.test_alert_blocks import history, rolled_back_from_2_14_0, texts

NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
SINCE = NOW - timedelta(minutes=12)
ALERTS = (("HighErrorRate", 3), ("HighLatency", 1))


def service_view(
    name: str, h: History | None = None, running: RunInfo | None = None
) -> ServiceView:
    return ServiceView(
        service=name,
        namespace="shop",
        cluster="prod-eu",
        history=h or history(),
        asked_by="alertmanager",
        taken_at=NOW,
        running=running,
    )


def line(
    name: str,
    *,
    firing: bool = True,
    alerts: tuple[tuple[str, int], ...] = ALERTS,
    groups: int = 1,
    sv: ServiceView | None = None,
    read: bool = True,
    with_advice: bool = True,
) -> DigestServiceView:
    """One service of the digest: read from the cluster (unless `read` is False), with the
    advice the use case would give."""
    summary = ServiceSummary(
        service=name,
        alerts=alerts,
        groups=groups,
        firing=firing,
        since=SINCE,
        resolved_at=None if firing else SINCE + timedelta(minutes=23, seconds=7),
    )
    if not read:
        problem = "reading deployment shop/checkout: the API server did not answer in 10s"
        return DigestServiceView(summary, problem=problem)
    sv = sv or service_view(name)
    advice = advise(SINCE, sv.history.went_out, sv.history.deployment.version)
    return DigestServiceView(summary, sv, advice if with_advice else None)


def digest(*services: DigestServiceView, groups: int | None = None) -> DigestView:
    return DigestView(
        started=NOW - timedelta(minutes=5),
        last=NOW - timedelta(seconds=20),
        window=timedelta(seconds=60),
        groups=groups if groups is not None else sum(s.summary.groups for s in services),
        services=services,
        taken_at=NOW,
    )


def many(count: int, *, resolved_every: int = 0) -> DigestView:
    """`count` services, every `resolved_every`th resolved (0: none), in the digest's order."""
    lines = [
        line(f"svc-{n:03d}", firing=not resolved_every or n % resolved_every != 0)
        for n in range(count)
    ]
    return digest(*sorted(lines, key=lambda s: not s.summary.firing))


def service_blocks(message: Message) -> list[dict[str, Any]]:
    return [
        b
        for b in message.blocks
        if b.get("block_id", "").startswith(("digest:service", "rollback:known-bad"))
    ]


def picker(message: Message) -> dict[str, Any] | None:
    for block in message.blocks:
        accessory = block.get("accessory") or {}
        if accessory.get("type") == "static_select":
            return dict(accessory)
    return None


def mrkdwn(message: Message) -> str:
    """The texts Slack formats (links, mentions): what escaping protects. Plain texts (header,
    buttons, options) are shown as typed."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(found)


def text_size(message: Message) -> int:
    def walk(node: Any) -> int:
        if isinstance(node, dict):
            return sum(
                len(v) if k == "text" and isinstance(v, str) else walk(v) for k, v in node.items()
            )
        if isinstance(node, list):
            return sum(walk(v) for v in node)
        return 0

    return walk(message.blocks)


def assert_valid(message: Message) -> None:
    """As Slack checks it: Block Kit's limits, unique block_ids, and well within the text Slack
    accepts in one message's blocks."""
    assert validate_blocks(message.blocks) == []
    ids = [b["block_id"] for b in message.blocks if "block_id" in b]
    assert len(ids) == len(set(ids))
    assert len(message.blocks) <= MAX_BLOCKS
    assert text_size(message) <= TEXT_BUDGET
    assert "<!" not in message.text


def test_each_service_has_one_line_with_its_own_rollback_button() -> None:
    view = digest(line("checkout", groups=2), line("payments"), line("cart", firing=False))
    message = digest_message(view)
    assert_valid(message)
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[0]["text"]["text"] == (
        "Alert storm: 3 services, 4 alert groups · 2 still firing"
    )
    sections = service_blocks(message)
    assert [s["text"]["text"].split("\n")[0].split(" · ")[0] for s in sections] == [
        "*checkout*",
        "*payments*",
        "~*cart*~",
    ]
    body = texts(message)
    for name in ("checkout", "payments", "cart"):
        assert body.count(f"*{name}*") == 1
    checkout = sections[0]["text"]["text"]
    assert checkout.startswith("*checkout* · 2 groups · firing since <!date^")
    assert "(12m ago)" in checkout
    assert "\nHighErrorRate ×3 · HighLatency ×1\n" in checkout
    assert ":point_right: likely caused by the deploy of 2.14.0" in checkout
    for section, name in zip(sections[:2], ("checkout", "payments"), strict=True):
        button = section["accessory"]
        assert button["text"]["text"] == f"Roll back {name} to 2.13.0"
        assert button["style"] == "danger"
        assert action_ids.ROLLBACK_BUTTON_PATTERN.match(button["action_id"])
        value = RollbackButton.decode(button["value"])
        assert (value.service, value.target_revision, value.source) == (name, 2, "alert")
        assert (value.from_version, value.target_version) == ("2.14.0", "2.13.0")
    assert not digest_overflows(view)


def test_a_resolved_service_is_struck_through_without_a_button() -> None:
    message = digest_message(digest(line("checkout"), line("cart", firing=False)))
    (_, cart) = service_blocks(message)
    assert cart["text"]["text"] == (
        "~*cart*~ · resolved after 23m07s\n~HighErrorRate ×3 · HighLatency ×1~"
    )
    assert "accessory" not in cart
    assert "likely caused" not in cart["text"]["text"]  # the advice is for what still fires


def test_the_context_says_when_it_started_and_how_it_ends() -> None:
    view = digest(line("checkout"))
    context = texts(digest_message(view))
    assert "Started <!date^" in context
    assert "it ends once no new group arrives for 1 minute" in context
    assert "alert groups from before the storm keep their own messages" in context
    ended = replace(view, taken_at=view.last + timedelta(minutes=3))
    assert "it ended <!date^" in texts(digest_message(ended))
    resolved = digest(line("checkout", firing=False))
    assert digest_message(resolved).blocks[0]["text"]["text"].endswith("· all resolved")


def test_without_a_plain_button_the_line_says_why() -> None:
    run = RunInfo("running", "U0ALICE01", "2.14.0", "2.13.0", 2, NOW - timedelta(seconds=40))
    guarded = template("2.14.0")
    guarded["metadata"]["annotations"] = {MIGRATION_ANNOTATION: "irreversible"}
    rss = [
        replicaset(template("2.13.0"), revision=2, pod_hash="h2", created="2026-11-22T10:00:00Z"),
        replicaset(guarded, revision=3, pod_hash="h3", created="2026-11-27T03:46:00Z"),
    ]
    migrated = parse_history(deployment(guarded, revision=3), rss)
    view = digest(
        line("running", sv=service_view("running", running=run)),
        line("alone", sv=service_view("alone", history(revisions=1))),
        line("migrated", sv=service_view("migrated", migrated)),
        line("unread", read=False),
    )
    message = digest_message(view)
    assert_valid(message)
    running, alone, migrated_line, unread = service_blocks(message)
    assert "<@U0ALICE01> is rolling back to *2.13.0*" in running["text"]["text"]
    assert "accessory" not in running
    assert "there is nothing to roll back to" in alone["text"]["text"]
    assert "accessory" not in alone
    assert (
        ":no_entry: 2.13.0 cannot run against the schema migrated by 2.14.0"
        in (migrated_line["text"]["text"])
    )
    override = migrated_line["accessory"]
    assert override["text"]["text"] == "Override migration guard"
    assert action_ids.OVERRIDE_BUTTON_PATTERN.match(override["action_id"])
    assert RollbackButton.decode(override["value"]).source == "alert"
    assert (
        ":warning: the cluster could not be read: reading deployment shop/checkout"
        in (unread["text"]["text"])
    )
    assert "accessory" not in unread


def test_known_bad_versions_keep_their_marker_and_block_ids_stay_unique() -> None:
    bad = [line(f"bad-{n}", sv=service_view(f"bad-{n}", rolled_back_from_2_14_0())) for n in (1, 2)]
    message = digest_message(digest(*bad, line("good")))
    assert_valid(message)
    first, second, good = service_blocks(message)
    for block, name in ((first, "bad-1"), (second, "bad-2")):
        assert clicked_known_bad(block["block_id"])  # what the click handler checks
        button = block["accessory"]
        assert button["text"]["text"] == f"Redeploy {name} 2.14.0 (known bad)"
        assert "style" not in button
        assert RollbackButton.decode(button["value"]).target_revision == 3
    assert first["block_id"] != second["block_id"]
    assert not clicked_known_bad(good["block_id"])


def test_forty_services_each_get_their_line_and_button() -> None:
    view = many(40)
    message = digest_message(view)
    assert_valid(message)
    sections = service_blocks(message)
    assert len(sections) == 40
    assert all(s["accessory"]["type"] == "button" for s in sections)
    assert picker(message) is None
    assert not digest_overflows(view)


def test_past_what_fits_the_firing_rest_is_in_a_picker_and_all_in_the_thread() -> None:
    view = many(120, resolved_every=5)
    message = digest_message(view)
    assert_valid(message)
    sections = service_blocks(message)
    shown = {RollbackButton.decode(s["accessory"]["value"]).service for s in sections}
    assert len(sections) == len(shown) >= 30
    select = picker(message)
    assert select is not None
    assert select["action_id"] == action_ids.DIGEST_PICK == "digest:pick"
    assert select["placeholder"]["text"] == "Roll back another service…"
    options = select["options"]
    assert 0 < len(options) <= PICKER_OPTIONS
    assert all(
        len(o["value"]) <= OPTION_VALUE and len(o["text"]["text"]) <= OPTION_TEXT for o in options
    )
    rest = [s.service for s in view.services[len(sections) :]]
    firing_rest = [s.service for s in view.services[len(sections) :] if s.summary.firing]
    assert [o["value"] for o in options] == firing_rest
    assert f"…and {len(rest)} more services: the full list is in the thread." in texts(message)
    assert digest_overflows(view)
    listing = digest_list_message(view)
    assert_valid(listing)
    body = texts(listing)
    for item in view.services:
        assert body.count(f"*{item.service}*") == 1
    assert "\n• :point_right: *svc-001* (2.14.0) · HighErrorRate ×3 · HighLatency ×1\n" in body
    assert "\n• ~*svc-005*~ · resolved after 23m07s\n" in body
    assert not any("accessory" in b or b["type"] == "actions" for b in listing.blocks)
    assert "not listed here" not in body


def test_a_huge_storm_stays_within_slacks_limits() -> None:
    view = many(1000, resolved_every=7)
    message = digest_message(view)
    assert_valid(message)
    select = picker(message)
    assert select is not None and len(select["options"]) == PICKER_OPTIONS
    firing_rest = sum(1 for s in view.services[len(service_blocks(message)) :] if s.summary.firing)
    assert f"(the first {PICKER_OPTIONS} of {firing_rest})" in texts(message)
    listing = digest_list_message(view)
    assert_valid(listing)
    assert all(len(b["text"]["text"]) <= SECTION_TEXT for b in listing.blocks if "text" in b)
    listed = sum(texts(listing).count(f"*svc-{n:03d}*") for n in range(1000))
    assert 100 < listed < 1000
    assert f"…and {1000 - listed} more services not listed here." in texts(listing)


HOSTILE = ["<!channel>", "*bold* <https://evil.example|click>", "&" * 5000, "x" * 5000]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_escaped_and_clipped(name: str) -> None:
    alerts = ((name, 2), ("<!here>", 1))
    view = digest(
        line(name, alerts=alerts),
        *(line(f"{name}{n}", alerts=alerts, firing=n % 2 == 0) for n in range(60)),
    )
    for message in (digest_message(view), digest_list_message(view)):
        assert_valid(message)
        body = mrkdwn(message)
        assert "<!channel>" not in body and "<!here>" not in body
        assert "<https://evil" not in body
        assert all(len(b.get("text", {}).get("text", "")) <= SECTION_TEXT for b in message.blocks)
    message = digest_message(view)
    assert "<!channel>" not in message.text
    first = service_blocks(message)[0]
    assert len(first["text"]["text"]) <= SERVICE_LINE
    if name.startswith("<!"):
        assert first["text"]["text"].startswith("*&lt;!channel&gt;*")
    if name.startswith("*bold*"):
        assert "&lt;https://evil.example|click&gt;" in first["text"]["text"]
    if len(name) > 300:  # more than a button's value carries: no button, and why
        assert "accessory" not in first
        assert first["text"]["text"].endswith(":warning: its name is too long for a button")
    else:  # the button carries the name itself: the click resolves it in the catalog
        assert len(first["accessory"]["text"]["text"]) <= 75
        assert RollbackButton.decode(first["accessory"]["value"]).service == name
    select = picker(message)
    if select is not None:
        assert all(len(o["value"]) <= OPTION_VALUE for o in select["options"])


def test_the_fallback_is_short_plain_and_escaped() -> None:
    view = digest(line("<!channel> checkout"), line("payments"), line("cart", firing=False))
    message = digest_message(view)
    assert message.text == (
        "Alert storm: 3 services, 3 alert groups, 2 still firing: "
        "&lt;!channel&gt; checkout, payments"
    )
    assert "<!channel>" not in digest_list_message(view).text


def test_summaries_from_a_stored_record_render() -> None:
    """From the groups' lines through the domain's summaries: what the use case renders."""
    record = DigestRecord("C0ALERTS", NOW - timedelta(minutes=3), NOW, NOW, groups=3)
    names = ["HighErrorRate", "HighErrorRate", "HighLatency"]
    lines = [
        summarize(service, names, [True, True, n != 1], SINCE, None, NOW)
        for n, service in enumerate(["checkout", "payments", "checkout"])
    ]
    services = tuple(
        DigestServiceView(s, service_view(s.service)) for s in service_summaries(lines)
    )
    view = DigestView(record.started, record.last, timedelta(seconds=60), 3, services, NOW)
    message = digest_message(view)
    assert_valid(message)
    checkout = service_blocks(message)[0]["text"]["text"]
    assert checkout.startswith("*checkout* · 2 groups · firing since")
    assert "\nHighErrorRate ×4 · HighLatency ×2" in checkout


def test_a_picked_service_is_offered_in_the_thread_with_who_picked_it() -> None:
    sv = service_view("payments")
    message = picked_reply(sv, "U0BOB0001")
    assert validate_blocks(message.blocks) == []
    assert message.blocks[0]["type"] == "context"
    assert message.blocks[0]["elements"][0]["text"] == (
        ":point_down: <@U0BOB0001> picked *payments* from the alert storm digest"
    )
    (button,) = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    value = RollbackButton.decode(button["value"])
    assert (value.service, value.target_revision, value.source) == ("payments", 2, "alert")
    assert "picked from the alert storm digest" in message.text
    hostile = picked_reply(service_view("<!channel>"), "<!here>")
    assert "<!channel>" not in mrkdwn(hostile) and "<!here>" not in mrkdwn(hostile)
