"""The processes a benchmark measures: the simulated cluster (`rollback_sandbox.cluster`),
`rollback-bot serve` and any other HTTP server under test, each in its own process as in
production (none steals the bot's interpreter lock), and the Slack stand-in in the benchmark's
own process.

Only the bot's command line, environment variables and HTTP endpoints are used, so the
benchmarks keep working while its modules move. Everything listens on 127.0.0.1; every wait
is bounded; every process started here is stopped on the way out, errors included.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from rollback_sandbox.slack.web_api import FakeSlackWebApi

REPO = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret"
CATALOG = "services:\n  checkout: {namespace: shop, deployment: checkout}\n"
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    url: str


@dataclass(frozen=True)
class Server:
    """An HTTP server under test, running in its own process."""

    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(frozen=True)
class Stack:
    slack: FakeSlackWebApi
    http: aiohttp.ClientSession
    cluster_url: str
    bot_url: str
    bot: Server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def kubectl_binary() -> str:
    found = shutil.which("kubectl", path=f"{REPO / '.tools' / 'bin'}")
    if not found:
        sys.exit("the pinned kubectl is missing: run `make tools`")
    return found


def local_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment plus `extra`, without proxy settings: slack_sdk follows HTTPS_PROXY on
    its own, and a benchmark's traffic must stay on 127.0.0.1."""
    kept = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return {**kept, **extra}


# The development venv holds packages the product does not install (kubernetes-validate, for
# the chart's tests), and the official Kubernetes client imports that one whenever it is there
# (kubernetes.dynamic): 11 MiB and a tenth of a second the image never pays. The bot is measured
# as shipped, with the development-only packages out of its reach.
DEV_ONLY = ("kubernetes_validate",)
AS_SHIPPED = (
    "import sys; sys.modules.update(dict.fromkeys({dev_only!r})); "
    "from bot.__main__ import main; sys.exit(main())"
)


def bot_command() -> list[str]:
    """`rollback-bot` as the product's image runs it: its code, without the dev-only packages."""
    return [sys.executable, "-c", AS_SHIPPED.format(dev_only=DEV_ONLY)]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _exited(process: subprocess.Popen[bytes], what: str) -> RuntimeError | None:
    code = process.poll()
    return None if code is None else RuntimeError(f"{what} exited with status {code}")


def _command_line(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    return " ".join(map(str, args)) if isinstance(args, list | tuple) else str(args)


def _server_url(kubeconfig: Path) -> str | None:
    """The cluster's URL once its kubeconfig is completely written, else None."""
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        return str(config["clusters"][0]["cluster"]["server"])
    except (OSError, yaml.YAMLError, LookupError, TypeError):
        return None


@contextmanager
def running_cluster(directory: Path, *, speed: float, seed: str = "demo") -> Iterator[Cluster]:
    """The simulated cluster on a free port, until the block ends; `shop/checkout` with the demo
    seed. It writes its kubeconfig once it listens, so the kubeconfig is the readiness signal."""
    kubeconfig = directory / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "rollback_sandbox.cluster", "--host", HOST, "--port", "0",
         "--seed", seed, "--speed", f"{speed:g}", "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while (url := _server_url(kubeconfig)) is None:
            if error := _exited(process, "the simulated cluster"):
                raise error
            if time.monotonic() > deadline:
                raise RuntimeError(f"the simulated cluster wrote no kubeconfig in {START_TIMEOUT}s")
            time.sleep(0.05)
        yield Cluster(kubeconfig, url)
    finally:
        stop(process)


async def wait_ready(
    session: aiohttp.ClientSession, url: str, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and (error := _exited(process, _command_line(process))):
            raise error
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} was not ready within {START_TIMEOUT}s")


def slack_env(slack: FakeSlackWebApi) -> dict[str, str]:
    """How `rollback-bot serve` (and the bare Bolt app) find the Slack stand-in, HTTP mode."""
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "ROLLBACK_BOT_SLACK_API_URL": slack.api_url,
    }


@asynccontextmanager
async def running_server(
    argv: Sequence[str],
    env: Mapping[str, str],
    http: aiohttp.ClientSession,
    *,
    ready_path: str,
) -> AsyncIterator[Server]:
    """`argv` serving HTTP on a free port of 127.0.0.1 (told by ROLLBACK_BOT_HOST/PORT), once
    `ready_path` answers 200, until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        list(argv),
        env=local_env({**env, "ROLLBACK_BOT_HOST": HOST, "ROLLBACK_BOT_PORT": str(port)}),
    )
    try:
        url = f"http://{HOST}:{port}"
        await wait_ready(http, f"{url}{ready_path}", process)
        yield Server(process, url)
    finally:
        stop(process)


def bot_env(cluster: Cluster, catalog: Path, slack: FakeSlackWebApi) -> dict[str, str]:
    return {
        "KUBECONFIG": str(cluster.kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(catalog),
        **slack_env(slack),
        "ROLLBACK_BOT_LOG_LEVEL": "WARNING",
    }


@asynccontextmanager
async def running_bot(
    cluster: Cluster,
    catalog: Path,
    slack: FakeSlackWebApi,
    http: aiohttp.ClientSession,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Server]:
    """`rollback-bot serve` in HTTP mode, once /readyz says Slack and the cluster answer."""
    async with running_server(
        [*bot_command(), "serve"],
        {**bot_env(cluster, catalog, slack), **(env or {})},
        http,
        ready_path="/readyz",
    ) as server:
        yield server


@asynccontextmanager
async def running_stack(
    *, speed: float, env: Mapping[str, str] | None = None
) -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), speed=speed) as cluster:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        async with (
            # Acks and the patch are measured here, not Slack's limits: the bare Bolt reference does
            # not pace itself, and 50 commands at once would only measure 429s.
            FakeSlackWebApi(enforce_limits=False) as slack,
            aiohttp.ClientSession() as http,
            running_bot(cluster, catalog, slack, http, env) as bot,
        ):
            yield Stack(slack, http, cluster.url, bot.url, bot)
