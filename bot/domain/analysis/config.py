"""A catalog service's `auto_rollback:` block, as a pydantic model with its defaults and bounds.

    auto_rollback:
      mode: dry-run               # or act; dry-run says what it would do and does nothing
      prometheus:                 # url defaults to ROLLBACK_BOT_PROMETHEUS_URL
        url: https://prometheus.monitoring:9090
        bearer_token_file: /var/run/secrets/prometheus/token
        ca_file: /var/run/secrets/prometheus/ca.crt
      window: 10m                 # how long a new version is watched
      interval: 30s               # how often
      query_window: 1m            # the range of rate() in the queries: what {window} becomes
      consecutive: 3              # breaching intervals in a row that confirm a breach
      volume: {minimum_per_second: 1}
      signals:                    # default: the two presets
        - preset: error_ratio
        - preset: p99_latency
          absolute: 0.5
        - name: job latency
          unit: seconds
          query: >-
            max(rate(job_seconds_sum{{pod_template_hash="{pod_template_hash}"}}[{window}])
            / rate(job_seconds_count{{pod_template_hash="{pod_template_hash}"}}[{window}]))
          ratio: 2
          absolute: 5
      on_call_group: S0123ABCD     # mentioned on a verdict

`query_window` is its own key, not the analysis window: a rate over the whole 10 minutes would
keep one spike in every interval's figure for 10 minutes and turn "consecutive" into nothing.
A spike still shows in every interval whose query window holds it, about query_window ÷
interval intervals in a row (2 with the defaults): keep `consecutive` above that for one spike
never to confirm a breach.

Pure: the catalog (`bot.config.catalog`) reads the YAML and embeds this model;
`signal_specs()` and `volume_spec()` give the domain's values.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.domain.analysis.links import check_prometheus_url
from bot.domain.analysis.presets import (
    DEFAULT_MINIMUM_PER_SECOND,
    PRESETS,
    REQUEST_RATE,
    PresetName,
)
from bot.domain.analysis.queries import (
    MAX_WINDOW_SECONDS,
    TemplateError,
    template_placeholders,
)
from bot.domain.analysis.signals import Rule, Signal, Unit, Volume
from bot.domain.times import parse_duration

Mode = Literal["dry-run", "act"]
MIN_INTERVAL_SECONDS = 1.0
MAX_CONSECUTIVE = 100
# Keys people reach for to put a secret inline; each is refused with the way to do it instead.
_INLINE_SECRETS = ("bearer_token", "token", "password", "basic_auth", "authorization")


def _refuse(message: str) -> PydanticCustomError:
    # A custom error keeps the sentence as it is (a ValueError gets "Value error, " before it).
    return PydanticCustomError("auto_rollback", message)


def _seconds(value: Any) -> float:
    """A duration as people type it ("10m", "30s", "1h30m") or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse("a duration is text such as 90s, 5m or 1h30m, or a number of seconds")
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise _refuse(str(exc)) from None
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise _refuse(f"a duration must be above 0 (got {value!r})")
    return seconds


Seconds = Annotated[float, BeforeValidator(_seconds)]
SlackGroupId = Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$")]
SignalName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$")]


def _absolute_path(value: Any) -> Any:
    if isinstance(value, str) and (not PurePosixPath(value).is_absolute() or "\0" in value):
        raise _refuse(f"{value[:200]!r} is not an absolute path in the bot's container")
    return value


FilePath = Annotated[str, BeforeValidator(_absolute_path), Field(max_length=4096)]


def _checked_template(query: str, where: str) -> str:
    try:
        used = template_placeholders(query)
    except TemplateError as exc:
        raise _refuse(f"{where}: {exc}") from None
    if "pod_template_hash" not in used:
        raise _refuse(
            f"{where} must select a version by {{pod_template_hash}}: without it the new "
            "version and the baseline read the same series"
        )
    return query


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrometheusConfig(_Block):
    """Where Prometheus is and how to reach it. Its token is only ever a file's path: the
    catalog is a ConfigMap, readable by whoever may read its namespace and usually kept in
    Git, so a secret in it is a leaked secret; a mounted Secret's file is not."""

    url: str | None = Field(default=None, description="default: ROLLBACK_BOT_PROMETHEUS_URL")
    bearer_token_file: FilePath | None = None
    ca_file: FilePath | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secret(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _INLINE_SECRETS:
                if key in data:
                    raise _refuse(
                        f"{key!r} is not accepted: a secret is never written in the catalog "
                        "(a ConfigMap, readable by whoever reads its namespace); mount a Secret "
                        "and give its file as bearer_token_file"
                    )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> PrometheusConfig:
        if self.url is not None:
            try:
                check_prometheus_url(self.url)
            except ValueError as exc:
                raise _refuse(str(exc)) from None
        if self.ca_file is not None and self.insecure_skip_verify:
            raise _refuse(
                "ca_file and insecure_skip_verify contradict each other: give the CA, or skip "
                "verification, not both"
            )
        return self


class SignalConfig(_Block):
    """A preset (`preset: error_ratio`, its rule's numbers overridable), or a signal of one's
    own (`name`, `query`, `unit`, `ratio`, `absolute`, all required)."""

    preset: PresetName | None = None
    name: SignalName | None = None
    query: str | None = None
    unit: Unit | None = None
    ratio: float | None = Field(default=None, gt=1, allow_inf_nan=False)
    absolute: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _complete(self) -> SignalConfig:
        if self.preset is not None:
            if self.query is not None or self.unit is not None:
                raise _refuse(
                    f"preset {self.preset} has its own query and unit: give a preset, or a "
                    "query with its unit, not both"
                )
            return self
        if self.query is None:
            raise _refuse(
                "a signal is a preset (error_ratio or p99_latency) or a query of its own "
                "with name, unit, ratio and absolute"
            )
        fields = {"name": self.name, "unit": self.unit, "ratio": self.ratio}
        missing = [key for key, value in fields.items() if value is None]
        missing += ["absolute"] if self.absolute is None else []
        if missing:
            raise _refuse(f"a signal with its own query needs {', '.join(missing)} too")
        _checked_template(self.query, "the signal's query")
        return self

    def signal(self) -> Signal:
        """The domain's signal: the preset with what this entry overrides, or its own."""
        if self.preset is not None:
            base = PRESETS[self.preset]
            rule = Rule(
                self.ratio if self.ratio is not None else base.rule.ratio,
                self.absolute if self.absolute is not None else base.rule.absolute,
            )
            return Signal(self.name or base.name, base.query_template, rule, base.unit)
        name, query, unit, ratio, absolute = (
            self.name,
            self.query,
            self.unit,
            self.ratio,
            self.absolute,
        )
        if name is None or query is None or unit is None or ratio is None or absolute is None:
            raise ValueError("a signal with its own query needs name, unit, ratio and absolute")
        return Signal(name, query, Rule(ratio, absolute), unit)


class VolumeConfig(_Block):
    """The request rate each side must serve for a verdict (0: judge whatever the traffic)."""

    query: str = REQUEST_RATE
    minimum_per_second: float = Field(default=DEFAULT_MINIMUM_PER_SECOND, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _template(self) -> VolumeConfig:
        _checked_template(self.query, "the volume's query")
        return self


DEFAULT_SIGNALS = (SignalConfig(preset="error_ratio"), SignalConfig(preset="p99_latency"))


class AutoRollbackConfig(_Block):
    """A service's automatic rollback: watched, then rolled back only in mode `act`."""

    mode: Mode = "dry-run"
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    window: Seconds = 600.0
    interval: Seconds = 30.0
    query_window: Seconds = 60.0
    consecutive: int = Field(default=3, ge=1, le=MAX_CONSECUTIVE)
    signals: tuple[SignalConfig, ...] = DEFAULT_SIGNALS
    volume: VolumeConfig = Field(default_factory=VolumeConfig)
    on_call_group: SlackGroupId | None = Field(
        default=None, description="Slack user group id (S…) mentioned on a verdict"
    )

    @field_validator("signals")
    @classmethod
    def _some_signals(cls, signals: tuple[SignalConfig, ...]) -> tuple[SignalConfig, ...]:
        # Not min_length: pydantic would add "too short" to every bad signal's own error.
        if not signals:
            raise _refuse("signals must list at least one (or leave it out for the presets)")
        return signals

    @model_validator(mode="after")
    def _bounds(self) -> AutoRollbackConfig:
        if self.interval < MIN_INTERVAL_SECONDS:
            raise _refuse(f"interval is {self.interval:g}s: it must be at least 1s")
        if self.window < self.interval:
            raise _refuse(
                f"window ({self.window:g}s) must be at least the interval ({self.interval:g}s)"
            )
        for key, seconds in (("window", self.window), ("query_window", self.query_window)):
            if seconds != int(seconds):
                raise _refuse(f"{key} is {seconds:g}s: it must be whole seconds")
            if seconds > MAX_WINDOW_SECONDS:
                raise _refuse(f"{key} is {seconds:g}s: it must be 7 days at most")
        if not self.interval <= self.query_window <= self.window:
            raise _refuse(
                f"query_window ({self.query_window:g}s) must be from the interval "
                f"({self.interval:g}s), so no request falls between two queries, to the window "
                f"({self.window:g}s)"
            )
        names = [entry.signal().name for entry in self.signals]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise _refuse(f"signal names must differ: {', '.join(twice)} appear twice")
        return self

    @property
    def acts(self) -> bool:
        """Whether a confirmed breach rolls back (else it is only told)."""
        return self.mode == "act"

    def signal_specs(self) -> tuple[Signal, ...]:
        return tuple(entry.signal() for entry in self.signals)

    def volume_spec(self) -> Volume:
        return Volume(self.volume.query, self.volume.minimum_per_second)

    def prometheus_url(self, default: str | None) -> str:
        """The block's URL, else `default` (ROLLBACK_BOT_PROMETHEUS_URL); ValueError if none."""
        url = self.prometheus.url or default
        if not url:
            raise ValueError(
                "auto_rollback needs a Prometheus: give prometheus.url in the service's "
                "auto_rollback block, or set ROLLBACK_BOT_PROMETHEUS_URL"
            )
        return check_prometheus_url(url)
