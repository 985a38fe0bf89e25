"""The bot's Prometheus client: instant and range queries over Prometheus' HTTP API, on aiohttp.

- One `aiohttp.ClientSession`, made on the running loop at the first query (a session belongs to
  the loop it was made on) and closed by `close()`; or one the wiring shares, which stays its own.
- Queries are POSTed as a form (`/api/v1/query`, `/api/v1/query_range`): a long query does not
  fit every proxy's URL limit, a body does. Prometheus is also given the client's timeout, so it
  stops evaluating a query nobody waits for any more.
- The bearer token is read from its file at every request, in a worker thread. Tokens rotate (a
  projected ServiceAccount token every hour, a Secret when someone rotates it) and the kubelet
  swaps a mounted Secret's files through a symlink: a cache checked by mtime would have to get
  inode swaps and same-second rewrites right to save reading a few hundred bytes once per query.
  The token goes into the Authorization header only: never into a log, a message or an exception
  (text the server sends back is scrubbed of it, in case the server echoes the request).
- TLS: verified against `ca_file` alone when given (reloaded when the file changes: CAs rotate
  too), verification off only with `insecure_skip_verify`, else the system's CAs.
- Redirects are not followed: a POST redirected becomes a GET without its query, and the token
  would go wherever the Location header says.
- The body read is bounded (`max_body_bytes`, counted after decompression), and so are the
  numbers of series and points (`results`); everything decoded is checked, nothing assumed.
- Retries: a connection that failed (refused, reset, DNS) or a 502/503 is tried once more after a
  short pause (`bot.domain.retry`), within the same overall `timeout`. The analysis loop's next
  interval is not retry enough: an interval without data breaks a run of breaching intervals
  (`bot.domain.analysis.verdict`), so one dropped keep-alive connection would put a confirmed
  rollback `consecutive` intervals later. A timeout is not retried: it has used the time up.

Failures are one `PrometheusError` each, one line, naming the Prometheus by its URL (which holds
no credentials: `check_prometheus_url`).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bot.adapters.prometheus.errors import PrometheusError, plain, scrub
from bot.adapters.prometheus.results import (
    MAX_POINTS,
    MAX_SERIES,
    ResultError,
    Sample,
    parse_instant,
    parse_range,
)
from bot.domain.analysis.config import PrometheusConfig
from bot.domain.analysis.links import check_prometheus_url
from bot.domain.analysis.series import Series
from bot.domain.retry import Backoff, retry

log = logging.getLogger(__name__)

T = TypeVar("T")
MiB = 1024 * 1024
MAX_BODY_BYTES = 8 * MiB
DEFAULT_TIMEOUT_SECONDS = 10.0
ATTEMPTS = 2
# Short: the pause only has to outlast a restarting proxy or a dropped keep-alive connection,
# and both attempts share the one timeout.
RETRY_BACKOFF = Backoff(first=0.2, factor=2.0, cap=1.0, jitter=0.5)
# A JWT is about 1 KiB; a "token" file much larger than this is the wrong file.
MAX_TOKEN_BYTES = 16 * 1024
# Prometheus' own limit for a range query; asking for more only earns its bad_data error.
MAX_POINTS_PER_SERIES = 11_000
_CHUNK = 64 * 1024
# Answers above this are decoded and parsed in a worker thread: building a few hundred thousand
# points takes seconds, and a thread lets the event loop in between. (json.loads itself holds
# the GIL: what bounds that pause is max_body_bytes.)
INLINE_BODY_BYTES = 256 * 1024
_RETRIED_STATUSES = frozenset({HTTPStatus.BAD_GATEWAY, HTTPStatus.SERVICE_UNAVAILABLE})


class _Retryable(Exception):
    """A transient failure for `retry` to try again; carries the error to raise at the end."""

    def __init__(self, error: PrometheusError) -> None:
        super().__init__(str(error))
        self.error = error


class _TooLarge(Exception):
    """The body is over `max_body_bytes`; becomes a PrometheusError."""


@dataclass(frozen=True)
class _CaFile:
    """A loaded CA file and what it was on disk, to notice it changed."""

    stamp: tuple[int, int, int, int]  # device, inode, size, mtime in ns
    context: ssl.SSLContext


def _stamp(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _unix(at: datetime, what: str) -> str:
    # A naive datetime would be taken as the host's local time by .timestamp(): refused, as the
    # bot's clocks are aware (`bot.domain.times.utc_now`).
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (UTC), not a naive one")
    return f"{at.timestamp():.3f}"


def _transport_reason(exc: BaseException) -> tuple[str, bool]:
    """Why a request got no answer, in words, and whether trying again may help."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        detail = getattr(cert_error, "verify_message", None) or type(cert_error).__name__
        return (
            f"its TLS certificate is not trusted ({plain(str(detail), 120)}): give its CA as "
            "ca_file",
            False,
        )
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "the TLS handshake failed", False
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "its host name does not resolve", True
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno == errno.ECONNREFUSED or isinstance(
            exc.os_error, ConnectionRefusedError
        ):
            return "connection refused", True
        return f"cannot connect ({plain(exc.os_error.strerror or 'no reason given', 120)})", True
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "the connection dropped before the answer", True
    if isinstance(exc, aiohttp.ClientOSError | ConnectionError):
        return "the connection failed", True
    # Anything else aiohttp raises (an invalid URL, a closed session): its type says enough, and
    # its text could hold the request's details.
    return f"the request failed ({type(exc).__name__})", False


class PrometheusClient:
    """Asks one Prometheus (`url`, as `check_prometheus_url` accepts it) instant and range queries.

    `session`: a ClientSession to share (the wiring's); it is not closed by `close()`. TLS
    settings go with each request, so they hold for a shared session too. Without one, the
    client makes its own on the running loop at the first query. Also an async context manager.
    """

    def __init__(
        self,
        url: str,
        *,
        bearer_token_file: str | Path | None = None,
        ca_file: str | Path | None = None,
        insecure_skip_verify: bool = False,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_series: int = MAX_SERIES,
        max_points: int = MAX_POINTS,
        backoff: Backoff = RETRY_BACKOFF,
    ) -> None:
        self.url = check_prometheus_url(url)
        if ca_file is not None and insecure_skip_verify:
            raise ValueError("give ca_file or insecure_skip_verify, not both")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"the timeout must be above 0 seconds (got {timeout})")
        self.timeout = timeout
        self._token_file = Path(bearer_token_file) if bearer_token_file is not None else None
        self._ca_file = Path(ca_file) if ca_file is not None else None
        self._insecure = insecure_skip_verify
        self._shared = session
        self._own: aiohttp.ClientSession | None = None
        self._ca: _CaFile | None = None
        self._max_body = max_body_bytes
        self._max_series = max_series
        self._max_points = max_points
        self._backoff = backoff

    @classmethod
    def from_config(
        cls,
        config: PrometheusConfig,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
    ) -> PrometheusClient:
        """From a service's `auto_rollback.prometheus` block; `url` is the one to use
        (`AutoRollbackConfig.prometheus_url`: the block's, else the bot's default)."""
        return cls(
            url,
            bearer_token_file=config.bearer_token_file,
            ca_file=config.ca_file,
            insecure_skip_verify=config.insecure_skip_verify,
            timeout=timeout,
            session=session,
        )

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client's own session (a shared one is left to its owner). A later query
        opens a new one."""
        own, self._own = self._own, None
        if own is not None and not own.closed:
            await own.close()

    # --- the queries ----------------------------------------------------------------------

    async def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        """An instant query at `at` (Prometheus' now when None): a vector's samples, or a scalar
        as one sample without labels. Values may be NaN or ±Inf, as Prometheus computed them."""
        form = {"query": promql}
        if at is not None:
            form["time"] = _unix(at, "the query's time")
        data, large = await self._ask("query", form)
        return await self._parsed(
            lambda: parse_instant(data, max_series=self._max_series), in_thread=large
        )

    async def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        """A range query from `start` to `end` every `step_seconds`: each series with its
        points. ValueError for a window or step Prometheus would refuse."""
        if not math.isfinite(step_seconds) or step_seconds <= 0:
            raise ValueError(f"the step must be above 0 seconds (got {step_seconds})")
        form = {
            "query": promql,
            "start": _unix(start, "start"),
            "end": _unix(end, "end"),
            "step": repr(float(step_seconds)),
        }
        span = (end - start).total_seconds()
        if span < 0:
            raise ValueError("the range's end is before its start")
        if span / step_seconds >= MAX_POINTS_PER_SERIES:
            raise ValueError(
                f"{span:g}s every {step_seconds:g}s is more than Prometheus' "
                f"{MAX_POINTS_PER_SERIES} points per series: take a longer step"
            )
        data, large = await self._ask("query_range", form)
        return await self._parsed(
            lambda: parse_range(data, max_series=self._max_series, max_points=self._max_points),
            in_thread=large,
        )

    async def _parsed(self, parse: Callable[[], T], *, in_thread: bool) -> T:
        try:
            return await asyncio.to_thread(parse) if in_thread else parse()
        except ResultError as exc:
            reason, too_large = str(exc), exc.too_large
        # Raised outside the except block: the error carries no context to unpack.
        if too_large:
            raise PrometheusError(f"Prometheus at {self.url} answered too much: {reason}")
        raise PrometheusError(f"Prometheus at {self.url} answered {reason}")

    # --- one request, tried at most twice -------------------------------------------------

    async def _ask(self, path: str, form: dict[str, str]) -> tuple[Any, bool]:
        """POST `form` to `/api/v1/<path>`: the answer's `data`, and whether it is large."""
        endpoint = f"{self.url}/api/v1/{path}"
        # Plain seconds: Prometheus reads "2.5" but not "2.5s" (its durations are whole units).
        form = {**form, "timeout": f"{self.timeout:g}"}

        async def attempt(_number: int) -> tuple[Any, bool]:
            return await self._attempt(endpoint, form)

        def retrying(number: int, exc: BaseException, delay: float) -> None:
            log.warning(
                "Prometheus query failed (attempt %d of %d), retrying in %.1fs: %s",
                number,
                ATTEMPTS,
                delay,
                exc,  # a _Retryable: the PrometheusError's sentence, nothing of the request
            )

        failure: PrometheusError
        try:
            async with asyncio.timeout(self.timeout):
                return await retry(
                    attempt,
                    retry_on=_Retryable,
                    attempts=ATTEMPTS,
                    backoff=self._backoff,
                    on_retry=retrying,
                )
        except _Retryable as exc:
            failure = exc.error
        except TimeoutError:
            failure = self._timed_out()
        raise failure

    def _timed_out(self) -> PrometheusError:
        return PrometheusError(
            f"Prometheus at {self.url} did not answer within {self.timeout:g}s", transient=True
        )

    async def _attempt(self, endpoint: str, form: Mapping[str, str]) -> tuple[Any, bool]:
        token, tls = await self._credentials()
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        session = self._session()
        started = time.monotonic()
        failure: PrometheusError | None = None
        try:
            async with session.post(
                endpoint,
                data=dict(form),
                headers=headers,
                ssl=tls,
                allow_redirects=False,
                # A shared session may raise on statuses itself; its error would carry the
                # request's headers. This client reads the status.
                raise_for_status=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                status = response.status
                location = response.headers.get("Location", "")
                body = await self._read(response)
        except _TooLarge:
            failure = PrometheusError(
                f"Prometheus at {self.url} answered more than {self._max_body / MiB:g} MiB: "
                "narrow the query"
            )
        except TimeoutError:
            failure = self._timed_out()
        except (aiohttp.ClientError, OSError) as exc:
            reason, transient = _transport_reason(exc)
            failure = PrometheusError(
                f"Prometheus at {self.url} is unreachable: {reason}", transient=transient
            )
            if transient:
                raise _Retryable(failure) from None
        if failure is not None:
            raise failure
        log.debug(
            "Prometheus %s answered %d in %.0f ms (%d bytes)",
            endpoint.rsplit("/", 1)[-1],
            status,
            (time.monotonic() - started) * 1000,
            len(body),
        )
        large = len(body) > INLINE_BODY_BYTES
        document = await asyncio.to_thread(_loads, body) if large else _loads(body)
        return self._answer(status, location, document, token), large

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, at most `max_body_bytes` of it after decompression, else _TooLarge."""
        declared = response.content_length
        if declared is not None and declared > self._max_body:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _answer(self, status: int, location: str, document: Any, token: str | None) -> Any:
        """The `data` of Prometheus' answer, or the PrometheusError it amounts to."""
        where = f"Prometheus at {self.url}"
        status_text = _status_text(status)
        if 300 <= status < 400:
            raise PrometheusError(
                f"{where} answered {status_text}, a redirect to "
                f"{plain(scrub(location, token), 120) or 'nowhere'}: give the URL it redirects to"
            )
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            # Whatever the body says: a proxy's page may echo the request, headers included.
            raise PrometheusError(self._refused(status_text, token is not None))
        if not isinstance(document, dict) or document.get("status") not in ("success", "error"):
            failure = PrometheusError(
                f"{where} answered {status_text} with something that is not Prometheus' JSON",
                transient=status in _RETRIED_STATUSES,
            )
            # A proxy's 502/503 page while Prometheus restarts: worth the second attempt.
            raise _Retryable(failure) if failure.transient else failure
        if document["status"] == "error" or status >= 400:
            error_type = document.get("errorType")
            error = document.get("error")
            kind = plain(scrub(error_type, token), 40) if isinstance(error_type, str) else ""
            text = plain(scrub(error, token)) if isinstance(error, str) else "no error given"
            failure = PrometheusError(
                f"{where} answered {status_text}{f' ({kind})' if kind else ''}: {text}",
                transient=status in _RETRIED_STATUSES or kind in ("timeout", "unavailable"),
            )
            # 502/503 (a proxy or Prometheus starting up) may pass; Prometheus' own timeout
            # means the query is too heavy, and trying again would time out again.
            if status in _RETRIED_STATUSES and kind != "timeout":
                raise _Retryable(failure)
            raise failure
        if status != HTTPStatus.OK or "data" not in document:
            raise PrometheusError(f"{where} answered {status_text} without data")
        warnings = document.get("warnings")
        if isinstance(warnings, list) and warnings:
            log.debug(
                "Prometheus warned: %s",
                plain(scrub("; ".join(str(w) for w in warnings[:5]), token)),
            )
        return document["data"]

    def _refused(self, status_text: str, with_token: bool) -> str:
        if with_token:
            return (
                f"Prometheus at {self.url} refused the bearer token from "
                f"{self._token_file} ({status_text})"
            )
        return (
            f"Prometheus at {self.url} asks for credentials ({status_text}): "
            "give a bearer_token_file"
        )

    # --- session and credentials ----------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        if self._shared is not None:
            return self._shared
        if self._own is None or self._own.closed:
            # Made here, in a coroutine, so it belongs to the loop that runs the queries.
            self._own = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "rollback-bot"},
                # No proxy or .netrc credentials from the environment: what reaches Prometheus
                # is what the catalog says.
                trust_env=False,
            )
        return self._own

    async def _credentials(self) -> tuple[str | None, ssl.SSLContext | bool]:
        """The bearer token (None without a file) and the TLS setting for this request.

        Files are read in a worker thread: the event loop never waits on a disk."""
        if self._token_file is None and self._ca_file is None:
            return None, self._tls_without_ca()
        return await asyncio.to_thread(self._read_credentials)

    def _tls_without_ca(self) -> ssl.SSLContext | bool:
        # aiohttp: False skips verification, True verifies against the system's CAs.
        return not self._insecure

    def _read_credentials(self) -> tuple[str | None, ssl.SSLContext | bool]:
        token = self._read_token() if self._token_file is not None else None
        tls = self._load_ca() if self._ca_file is not None else self._tls_without_ca()
        return token, tls

    def _read_token(self) -> str:
        path = self._token_file
        assert path is not None
        failure: PrometheusError | None = None
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            failure = _file_error("the bearer token file", path, exc)
        if failure is not None:
            # Raised outside the except block, as every error of this client: nothing hangs
            # off it but its sentence.
            raise failure
        if len(raw) > MAX_TOKEN_BYTES:
            raise PrometheusError(
                f"the bearer token file {path} is over {MAX_TOKEN_BYTES // 1024} KiB: not a token"
            )
        token = raw.strip()
        if not token:
            raise PrometheusError(f"the bearer token file {path} is empty")
        # Visible ASCII only: a newline inside would split the header; anything else is not a
        # token. The message never shows what the file holds.
        if any(byte < 0x21 or byte > 0x7E for byte in token):
            raise PrometheusError(
                f"the bearer token file {path} holds characters a bearer token cannot have"
            )
        return token.decode("ascii")

    def _load_ca(self) -> ssl.SSLContext:
        path = self._ca_file
        assert path is not None
        failure: PrometheusError | None = None
        try:
            stamp = _stamp(path.stat())
            if self._ca is not None and self._ca.stamp == stamp:
                return self._ca.context
            context = ssl.create_default_context(cafile=str(path))
        except OSError as exc:  # ssl.SSLError is an OSError: a file that holds no certificate
            failure = _file_error("the CA file", path, exc)
        if failure is not None:
            raise failure
        self._ca = _CaFile(stamp, context)
        return context


def _loads(body: bytes) -> Any:
    """The body as JSON, None when it is not: ValueError covers bad UTF-8 too, RecursionError a
    deeply nested hostile body."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _status_text(status: int) -> str:
    # The standard phrase, not the server's: a reason line is outside text for nothing.
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _file_error(what: str, path: Path, exc: OSError) -> PrometheusError:
    if isinstance(exc, ssl.SSLError):
        reason = "no usable PEM certificate in it"
    else:
        reason = plain(exc.strerror or type(exc).__name__, 120)
    return PrometheusError(f"cannot read {what} {path}: {reason}")
