"""What a button and a confirmation modal carry between renders and clicks: small, versioned
models, so a click can be checked against the cluster as it is now."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from bot.domain.rollback.guards import Snapshot


class BadPayload(ValueError):
    """A button value or modal metadata that is not ours (or from an older, unknown format)."""


class RollbackButton(BaseModel):
    """A "Roll back to X" button: the service, its target, and the state the message showed."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    service: str = Field(validation_alias="s", serialization_alias="s", max_length=300)
    # 0: a Rollout's ReplicaSet without revision annotation (the plugin reads it as 0).
    target_revision: int = Field(validation_alias="t", serialization_alias="t", ge=0)
    target_replicaset: str = Field(validation_alias="rs", serialization_alias="rs", max_length=253)
    target_version: str = Field(validation_alias="v", serialization_alias="v", max_length=128)
    from_version: str = Field(validation_alias="fv", serialization_alias="fv", max_length=128)
    revision: int | None = Field(validation_alias="r", serialization_alias="r")
    generation: int = Field(validation_alias="g", serialization_alias="g", ge=0)
    source: str = Field(
        default="command", validation_alias="src", serialization_alias="src", max_length=16
    )
    # An Argo Rollout's "Abort": the target is its stable ReplicaSet.
    abort: bool = Field(default=False, validation_alias="a", serialization_alias="a")

    @model_serializer(mode="wrap")
    def _abort_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A rollback's button (and the modal holding it) stays as it was, and as small.
        data: dict[str, Any] = handler(self)
        if not self.abort:
            data.pop("a", None)
            data.pop("abort", None)
        return data

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_defaults=False)

    @classmethod
    def decode(cls, raw: str) -> RollbackButton:
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise BadPayload("this button was not made by this version of rollback-bot") from None

    @property
    def snapshot(self) -> Snapshot:
        return Snapshot(
            revision=self.revision,
            generation=self.generation,
            target_replicaset=self.target_replicaset,
            target_revision=self.target_revision,
        )


class ConfirmContext(BaseModel):
    """The confirmation modal's private_metadata: the click and where its message lives."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    button: RollbackButton = Field(validation_alias="b", serialization_alias="b")
    channel: str = Field(validation_alias="c", serialization_alias="c", max_length=32)
    message_ts: str = Field(validation_alias="m", serialization_alias="m", max_length=32)
    thread_ts: str | None = Field(
        default=None, validation_alias="th", serialization_alias="th", max_length=32
    )

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def decode(cls, raw: str) -> ConfirmContext:
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise BadPayload(
                "this confirmation was not made by this version of rollback-bot"
            ) from None


# The largest revision the bot writes and reads back (`bot.domain.analysis.watching`).
MAX_REVISION = 10**18 - 1


class StopWatchButton(BaseModel):
    """A "Stop watching" button: which rollout's analysis to stop. The service is resolved in
    the catalog again at the click; namespace and deployment say where it was when posted."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    service: str = Field(
        validation_alias="s", serialization_alias="s", min_length=1, max_length=300
    )
    namespace: str = Field(
        validation_alias="n", serialization_alias="n", min_length=1, max_length=63
    )
    deployment: str = Field(
        validation_alias="d", serialization_alias="d", min_length=1, max_length=253
    )
    revision: int = Field(
        validation_alias="r", serialization_alias="r", ge=1, le=MAX_REVISION, strict=True
    )

    def encode(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def decode(cls, raw: object) -> StopWatchButton:
        # Anyone can send any value: bounded (Slack's limit on a button's value) before parsing.
        if not isinstance(raw, str) or len(raw) > 2000:
            raise BadPayload("this button was not made by this version of rollback-bot")
        try:
            return cls.model_validate_json(raw)
        except ValidationError:
            raise BadPayload("this button was not made by this version of rollback-bot") from None
