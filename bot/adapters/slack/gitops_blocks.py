"""Block Kit of the GitOps guard: the note in the versions message and the confirmation, the
thread's "auto-sync suspended" message and its reminders (each with "Resume auto-sync"), and
what a click on that button answers. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.adapters.slack.payloads import BadPayload
from bot.adapters.slack.render import (
    SECTION_TEXT,
    Message,
    clip,
    escape,
    fallback,
    render,
    section_message,
    slack_date,
    who,
)
from bot.domain.rollback.gitops import (
    GitopsNote,
    Managed,
    Suspension,
    in_git_instead,
    resume_warning,
)
from bot.domain.times import span

RESUME_BUTTON = "gitops:resume"
RESUME_ANYWAY_BUTTON = "gitops:resume-anyway"
GITOPS_BLOCK = "gitops:note"


class ResumeButton(BaseModel):
    """A "Resume auto-sync" button: only the service; what to resume is read from the cluster
    (the bot's mark on the GitOps object), never taken from the click."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    service: str = Field(validation_alias="s", serialization_alias="s", max_length=300)

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def decode(cls, raw: object) -> ResumeButton:
        if not isinstance(raw, str) or len(raw) > 1000:
            raise BadPayload("this button was not made by this version of rollback-bot")
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise BadPayload("this button was not made by this version of rollback-bot") from None


def _what(note: GitopsNote) -> str:
    return escape(clip(note.text, 1200))


def versions_note(note: GitopsNote, service: str) -> str:
    """The versions message's GitOps line, and what a rollback will do about it."""
    head = f":arrows_counterclockwise: *GitOps:* {_what(note)}."
    action = note.action
    if action == "refuse":
        return clip(
            f":no_entry: *GitOps:* {escape(in_git_instead(note.managed, service))}", SECTION_TEXT
        )
    if action == "warn":
        return clip(f"{head} The confirmation asks you to roll back anyway.", SECTION_TEXT)
    if action == "suspend":
        return clip(
            f"{head} A rollback turns its auto-sync off just before the patch; resume it "
            "from the rollback's thread once Git is fixed.",
            SECTION_TEXT,
        )
    return clip(head, SECTION_TEXT)


def modal_note(note: GitopsNote) -> str | None:
    """The confirmation's warning, or None when GitOps does not matter to this rollback."""
    if note.action == "warn":
        return clip(
            f":warning: *This rollback will be reverted:* {_what(note)}. Fix the version in Git "
            "too, or roll back anyway to buy time.",
            SECTION_TEXT,
        )
    if note.action == "suspend":
        return clip(
            f":pause_button: {_what(note)}. Auto-sync is turned off just before the patch, so "
            "the rollback stays; resume it from the thread once Git is fixed.",
            SECTION_TEXT,
        )
    return None


def _resume_button(service: str) -> ActionsBlock:
    return ActionsBlock(
        block_id=GITOPS_BLOCK,
        elements=[
            ButtonElement(
                text=PlainTextObject(text="Resume auto-sync"),
                action_id=RESUME_BUTTON,
                value=ResumeButton(service=clip(service, 300)).encode(),
            )
        ],
    )


def suspended_message(managed: Managed, suspension: Suspension, every: timedelta) -> Message:
    label = escape(managed.label)
    body = (
        f":pause_button: Auto-sync of {label} is suspended so that it does not revert the "
        f"rollback of *{escape(suspension.service)}* (it would redeploy "
        f"{escape(clip(suspension.bad_version or 'the bad version', 200))}). Fix the version in "
        f"Git, then resume it here. A reminder comes every {span(every)} until then."
    )
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=clip(body, SECTION_TEXT))),
        _resume_button(suspension.service),
    ]
    text = f"Auto-sync of {managed.label} suspended for the rollback of {suspension.service}"
    return Message(text=fallback(text), blocks=render(blocks))


def reminder_message(managed: Managed, suspension: Suspension, now: datetime) -> Message:
    state = managed.state
    warning = resume_warning(state) if state is not None else None
    since = span(now - suspension.at)
    body = (
        f":alarm_clock: Auto-sync of {escape(managed.label)} is still suspended, for {since} "
        f"(since {slack_date(suspension.at)}, for the rollback of "
        f"*{escape(suspension.service)}* by {who(suspension.by)}). GitOps is not deploying "
        "this service until it is resumed."
    )
    if warning is not None:
        body += f"\n{escape(clip(warning, 1000))}."
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=clip(body, SECTION_TEXT))),
        _resume_button(suspension.service),
    ]
    text = f"Auto-sync of {managed.label} is still suspended ({since})"
    return Message(text=fallback(text), blocks=render(blocks))


def resumed_message(managed: Managed, actor: str, warning: str | None) -> Message:
    body = f":arrow_forward: {who(actor)} resumed auto-sync of {escape(managed.label)}."
    if warning is not None:
        body += f" They were told: {escape(clip(warning, 1000))}."
    return section_message(f"Auto-sync of {managed.label} resumed", body)


def resume_anyway_message(service: str, warning: str) -> Message:
    """Told privately to whoever clicked "Resume auto-sync" while Git may still name the bad
    version: what the GitOps tool says, and a second button to resume anyway."""
    body = (
        f":warning: Not resumed yet: {escape(clip(warning, 2000))}.\nFix the version in Git "
        "first, or resume anyway."
    )
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=clip(body, SECTION_TEXT))),
        ActionsBlock(
            block_id=GITOPS_BLOCK,
            elements=[
                ButtonElement(
                    text=PlainTextObject(text="Resume anyway"),
                    action_id=RESUME_ANYWAY_BUTTON,
                    value=ResumeButton(service=clip(service, 300)).encode(),
                    style="danger",
                )
            ],
        ),
    ]
    return Message(text=fallback(f"Not resumed yet: {warning}"), blocks=render(blocks))


def refused_message(service: str, managed: Managed) -> Message:
    """A click on a service whose catalog refuses rollbacks its GitOps would revert."""
    said = f"{in_git_instead(managed, service)} Nothing was changed."
    return section_message(f"Not rolled back: {said}", f":no_entry: {escape(clip(said, 2900))}")


def resume_notice(text: str) -> Message:
    """A private answer to "Resume auto-sync" that changed nothing."""
    return section_message(text, f":information_source: {escape(clip(text, 2900))}")
