"""Settings from the environment (and a mounted Secret directory), read once at startup.

Secrets are SecretStr: their repr and str are masked, so they cannot leak into logs or messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, StringConstraints, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    kubeconfig: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KUBECONFIG", "kubeconfig"),
        description="kubeconfig path(s), joined by ':' like kubectl's $KUBECONFIG",
    )
    kube_context: str | None = Field(
        default=None, validation_alias=AliasChoices("ROLLBACK_BOT_KUBE_CONTEXT", "kube_context")
    )
    kube_request_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias=AliasChoices("ROLLBACK_BOT_KUBE_TIMEOUT", "kube_request_timeout"),
    )
    config: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("ROLLBACK_BOT_CONFIG", "config"),
        description="the YAML service catalog",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("ROLLBACK_BOT_SLACK_API_URL", "slack_api_url"),
    )
    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("ROLLBACK_BOT_HOST", "host"))  # noqa: S104 - a server in a pod listens on all interfaces
    port: int = Field(
        default=3000, ge=0, le=65535, validation_alias=AliasChoices("ROLLBACK_BOT_PORT", "port")
    )
    alertmanager_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ROLLBACK_BOT_ALERTMANAGER_TOKEN", "alertmanager_token"),
    )
    default_channel: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ROLLBACK_BOT_DEFAULT_CHANNEL", "default_channel"),
    )
    slash_command: str = Field(
        default="/rollback",
        pattern=r"^/[a-z0-9_-]{1,31}$",
        validation_alias=AliasChoices("ROLLBACK_BOT_SLASH_COMMAND", "slash_command"),
    )
    namespace: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ROLLBACK_BOT_NAMESPACE", "namespace"),
        description="the bot's own namespace: where its alert message index (a ConfigMap) lives",
    )
    alert_patterns: list[str] = Field(
        default_factory=list,
        validation_alias=AliasChoices("ROLLBACK_BOT_ALERT_PATTERNS", "alert_patterns"),
        description="JSON list of regexes finding the service in Alertmanager's Slack messages",
    )
    deploy_window_minutes: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices(
            "ROLLBACK_BOT_DEPLOY_WINDOW_MINUTES", "deploy_window_minutes"
        ),
        description="a deploy this long before an alert started is its likely cause",
    )
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("ROLLBACK_BOT_LOG_LEVEL", "log_level")
    )
    lease_seconds: int = Field(
        default=30,
        ge=3,
        le=300,
        validation_alias=AliasChoices("ROLLBACK_BOT_LEASE_SECONDS", "lease_seconds"),
        description=(
            "a rollback's lock is renewed every third of this; a replica silent this long has "
            "its running rollback picked up by another"
        ),
    )

    audit_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        validation_alias=AliasChoices("ROLLBACK_BOT_AUDIT_RETENTION_DAYS", "audit_retention_days"),
        description="days the audit trail is kept in the bot's namespace; older objects go",
    )

    gitops_namespaces: list[
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    ] = Field(
        default_factory=lambda: ["argocd", "flux-system"],
        validation_alias=AliasChoices("ROLLBACK_BOT_GITOPS_NAMESPACES", "gitops_namespaces"),
        description=(
            "JSON list of the namespaces where the Argo CD Applications and Flux objects that "
            "manage Deployments may be read and suspended; [] turns the GitOps check off"
        ),
    )
    gitops_reminder_seconds: float = Field(
        default=4 * 3600.0,
        gt=0,
        validation_alias=AliasChoices(
            "ROLLBACK_BOT_GITOPS_REMINDER_SECONDS", "gitops_reminder_seconds"
        ),
        description="how often the thread is reminded while the bot keeps auto-sync suspended",
    )

    @field_validator("config", "kubeconfig", "kube_context", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `ROLLBACK_BOT_CONFIG=` in a shell means "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value


def load_settings(secrets_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment, a secrets directory if it exists, and CLI overrides."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if secrets_dir is not None and secrets_dir.is_dir():
        return Settings(_secrets_dir=secrets_dir, **given)  # type: ignore[call-arg, arg-type]
    return Settings(**given)  # type: ignore[arg-type]
