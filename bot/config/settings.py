"""Settings from the environment (and a mounted Secret directory), read once at startup.

Secrets are SecretStr: their repr and str are masked, so they cannot leak into logs or messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.analysis.links import check_prometheus_url


class Settings(BaseSettings):
    # hide_input_in_errors: a value given to the wrong variable (a token, a URL with a password
    # in it) must not come back in the error that refuses it, which is logged.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, frozen=True, hide_input_in_errors=True
    )

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
    alert_storm_messages: int = Field(
        default=5,
        ge=2,
        le=1000,
        validation_alias=AliasChoices("ROLLBACK_BOT_ALERT_STORM_MESSAGES", "alert_storm_messages"),
        description=(
            "the most top-level alert messages a channel gets within the storm window, the "
            "storm's digest included: past it, new alert groups go into one digest message"
        ),
    )
    alert_storm_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        validation_alias=AliasChoices(
            "ROLLBACK_BOT_ALERT_STORM_WINDOW_SECONDS", "alert_storm_window_seconds"
        ),
        description="how far back new alert groups count; a storm ends this long after its last",
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

    prometheus_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ROLLBACK_BOT_PROMETHEUS_URL", "prometheus_url"),
        description="the Prometheus of services whose auto_rollback block names none",
    )

    @field_validator("config", "kubeconfig", "kube_context", "prometheus_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `ROLLBACK_BOT_CONFIG=` in a shell means "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, value: str | None) -> str | None:
        return None if value is None else default_prometheus_url(value)


def default_prometheus_url(value: str) -> str:
    """The bot's default Prometheus URL (the environment's, or the CLI's --prometheus) as
    `check_prometheus_url` accepts it; ValueError otherwise, never quoting a URL with a password
    in it: that is asked first, as the later checks quote the URL. Any "@" counts (a
    Prometheus' path has none), so "user:pw@host" without a scheme is refused too."""
    if "@" in value:
        raise ValueError(
            "the Prometheus URL must not hold a user or password: give the service's "
            "auto_rollback.prometheus.bearer_token_file"
        )
    return check_prometheus_url(value)


def describe_invalid(exc: ValidationError) -> str:
    """Each bad setting by name and what is wrong, never its value (it may be a secret)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "(settings)"
        problems.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def load_settings(secrets_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment, a secrets directory if it exists, and CLI overrides."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if secrets_dir is not None and secrets_dir.is_dir():
        return Settings(_secrets_dir=secrets_dir, **given)  # type: ignore[call-arg, arg-type]
    return Settings(**given)  # type: ignore[arg-type]
