"""Servers the integration harnesses run on 127.0.0.1: real binaries and in-process aiohttp apps.

The binaries are from the Prometheus family (Debian's `prometheus`, `prometheus-alertmanager`):
they share the `--web.listen-address` / `--web.external-url` flags and the `/-/ready` endpoint,
which is what lets one `start_on_free_port` start, wait for and stop any of them. A harness
subclasses `LocalServer` with its binary's API and builds the rest of the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import aiohttp
import pytest
from aiohttp import web

HOST = "127.0.0.1"


def require_binary(binary: Path, name: str, apt_command: str) -> None:
    """Fail the test, naming the install command, when `binary` is absent.

    The test setup (`make tools`, run by `make test` and CI) installs it: failing rather than
    skipping keeps a broken setup from passing silently.
    """
    if not binary.exists():
        pytest.fail(f"needs the real {name} at {binary} ({apt_command})")


def free_port(avoid: int) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never `avoid`.

    `avoid` is the packaged service's port: its systemd unit may start at any time and take it.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port != avoid:
            return port


def prepare_workdir(
    workdir: Path, config_name: str, config: str, storage_name: str
) -> tuple[Path, Path]:
    """Write `config` to `workdir/config_name` and create `workdir/storage_name`; both paths."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / config_name
    config_path.write_text(config, encoding="utf-8")
    storage = workdir / storage_name
    storage.mkdir(exist_ok=True)
    return config_path, storage


def spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr in `log_path`, for a failure message to quote."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for pytest reaches it only through `stop`.
            start_new_session=True,
        )


class ServerFailed(RuntimeError):
    """The binary did not start or did not become ready; the message has its log's tail."""


@dataclass
class LocalServer:
    """A running server binary: its base URL, port, process, log, and a session to call it."""

    name: ClassVar[str] = "server"  # for messages, and the log file's name in lower case
    failure: ClassVar[type[ServerFailed]] = ServerFailed

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    session: aiohttp.ClientSession

    def log(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, within: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self.process.poll() is not None:
                raise self.failure(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.session.get(
                    f"{self.url}/-/ready", timeout=aiohttp.ClientTimeout(total=1)
                ) as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise self.failure(f"{self.name} not ready within {within:g}s:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; never leaves the process behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 5)


S = TypeVar("S", bound=LocalServer)


@contextlib.asynccontextmanager
async def start_on_free_port(
    server_type: type[S], argv: Sequence[str], *, workdir: Path, avoid: int, attempts: int
) -> AsyncIterator[S]:
    """Run `argv` listening on a free port (never `avoid`) until ready, and stop it afterwards.

    The listen and external-URL flags are added here; each attempt logs to
    `workdir/<name>-<attempt>.log`.
    """
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for attempt in range(1, attempts + 1):
            port = free_port(avoid)
            url = f"http://{HOST}:{port}"
            log_path = workdir / f"{server_type.name.lower()}-{attempt}.log"
            command = [*argv, f"--web.listen-address={HOST}:{port}", f"--web.external-url={url}"]
            process = await asyncio.to_thread(spawn, command, log_path)
            server = server_type(url, port, process, log_path, session)
            try:
                await server.wait_ready()
            except ServerFailed:
                await server.stop()
                # Another process took the port between our probe and the bind: try another.
                if attempt < attempts and "address already in use" in server.log():
                    continue
                raise
            try:
                yield server
            finally:
                await server.stop()
            return


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` in this process on 127.0.0.1 for the block; yields its base URL.

    The kernel picks the port, from its ephemeral range: never a packaged service's port.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
