"""The blue-green switch's Slack ids, and what its button and its confirmation modal carry
between the render and the click: small, versioned models, bounded before they are parsed (anyone
can send any value), so a click is checked against the cluster as it is now."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.adapters.slack.payloads import BadPayload

SWITCH_BUTTON = "switch:to"  # one per colour: "switch:to:blue"
SWITCH_BUTTON_PATTERN = re.compile(r"^switch:to:[A-Za-z0-9._-]{1,63}$")
SWITCH_VIEW = "switch:confirm"
SWITCH_REASON_BLOCK = "switch:reason"
SWITCH_REASON_INPUT = "reason"
MAX_VALUE = 2000  # Slack's limit on a button's value; private_metadata's is 3000

NOT_OURS = "this button was not made by this version of rollback-bot"
NOT_OUR_MODAL = "this confirmation was not made by this version of rollback-bot"


def switch_button_id(color: str) -> str:
    return f"{SWITCH_BUTTON}:{color}"


class SwitchButton(BaseModel):
    """A "Switch back to blue" button: the service (resolved in the catalog again at the click),
    the colour to switch to, and the colour the message showed live."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    service: str = Field(
        validation_alias="s", serialization_alias="s", min_length=1, max_length=300
    )
    to_color: str = Field(
        validation_alias="t", serialization_alias="t", min_length=1, max_length=63
    )
    live: str | None = Field(
        default=None, validation_alias="l", serialization_alias="l", max_length=63
    )
    # The mark of the version the message showed the target colour running
    # (`switches.version_mark`): a colour redeployed since makes the click stale.
    version: str | None = Field(
        default=None, validation_alias="v", serialization_alias="v", pattern=r"^[0-9a-f]{16}$"
    )

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def decode(cls, raw: object) -> SwitchButton:
        if not isinstance(raw, str) or len(raw) > MAX_VALUE:
            raise BadPayload(NOT_OURS)
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise BadPayload(NOT_OURS) from None


class SwitchContext(BaseModel):
    """The switch modal's private_metadata: the click, and where its message lives."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    button: SwitchButton = Field(validation_alias="b", serialization_alias="b")
    channel: str = Field(validation_alias="c", serialization_alias="c", max_length=32)
    message_ts: str = Field(validation_alias="m", serialization_alias="m", max_length=32)
    thread_ts: str | None = Field(
        default=None, validation_alias="th", serialization_alias="th", max_length=32
    )

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def decode(cls, raw: object) -> SwitchContext:
        if not isinstance(raw, str) or len(raw) > 3000:
            raise BadPayload(NOT_OUR_MODAL)
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise BadPayload(NOT_OUR_MODAL) from None
