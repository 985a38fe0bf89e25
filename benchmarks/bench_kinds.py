"""How long each kind's rollback takes, end to end, on this machine (it prints figures and
asserts nothing): the CLI (`rollback-bot rollback|abort|switch --yes`, which follows to the
end) beside the reference where one exists (`kubectl rollout undo` + `kubectl rollout status`),
on the same simulated cluster at real speed (pods ready 3 s after they start).

- StatefulSet `orders-db` (3 pods, one at a time) and DaemonSet `log-agent` (3 nodes): rolled
  back and forth between their two versions, alternately by the bot and by kubectl.
- Rollout `payments-canary`: a new version held on its canary step, then aborted.
- Blue-green `web`: switched to the other colour and back (the first switch scales blue up).

Medians of several runs; the machine is shared and noisy, so compare ratios, not absolutes.
Run: .venv/bin/python -m benchmarks.bench_kinds [--runs N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.stack import bot_command, kubectl_binary, local_env, running_cluster

CATALOG = """services:
  orders-db: {namespace: shop, kind: StatefulSet, name: orders-db}
  log-agent: {namespace: shop, kind: DaemonSet, name: log-agent}
  payments: {namespace: shop, kind: Rollout, name: payments-canary}
  web: {namespace: shop, kind: BlueGreen, service: web, selector_key: color, blue: web-blue,
        green: web-green}
"""
SWITCH_TOOK = re.compile(r"switch(?:ed)?[^\n]*?(\d+(?:\.\d+)?) ?(ms|s)\b", re.IGNORECASE)


def run(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-4:])} exited {done.returncode}: {done.stderr[-500:]}")
    return took, done.stdout


def seconds(samples: list[float]) -> str:
    if not samples:
        return "      n/a"
    return f"{statistics.median(samples):7.2f} s (n={len(samples)}, min {min(samples):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), speed=1.0) as cluster:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        env = local_env(
            {
                "KUBECONFIG": str(cluster.kubeconfig),
                "ROLLBACK_BOT_CONFIG": str(catalog),
                "ROLLBACK_BOT_AUDIT_FILE": str(Path(tmp) / "audit.jsonl"),
            }
        )
        bot = bot_command()
        kubectl = [kubectl_binary(), f"--kubeconfig={cluster.kubeconfig}", "-n", "shop"]
        print(f"{runs} runs each; real speed (pods ready 3 s after they start)\n")
        for kind, service, what in (
            ("StatefulSet", "orders-db", "statefulset/orders-db"),
            ("DaemonSet", "log-agent", "daemonset/log-agent"),
        ):
            ours, theirs = [], []
            for _ in range(runs):
                ours.append(run([*bot, "rollback", service, "--yes", "--timeout", "5m"], env)[0])
                undo = run([*kubectl, "rollout", "undo", what], env)[0]
                status = run([*kubectl, "rollout", "status", what, "--timeout=5m"], env)[0]
                theirs.append(undo + status)
            ratio = statistics.median(ours) / statistics.median(theirs)
            print(f"{kind:<12} bot     {seconds(ours)}")
            print(f"{'':<12} kubectl {seconds(theirs)}   bot/kubectl {ratio:.2f}x")
        aborts = []
        for number in range(runs):
            version = f"9.{number}.0"
            template = {
                "spec": {
                    "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}},
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/version": version}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "payments-canary",
                                    "image": f"registry.example.com/shop/payments-canary:{version}",
                                }
                            ]
                        },
                    },
                }
            }
            run([*kubectl, "patch", "rollout", "payments-canary", "--type", "merge",
                 "-p", json.dumps(template)], env)  # fmt: skip
            deadline = time.monotonic() + 120
            while True:
                got = run([*kubectl, "get", "rollout", "payments-canary", "-o", "json"], env)[1]
                if json.loads(got).get("status", {}).get("phase") == "Paused":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the canary never paused")
                time.sleep(0.2)
            aborts.append(run([*bot, "abort", "payments", "--yes"], env)[0])
        print(
            f"{'Rollout':<12} abort   {seconds(aborts)}   (the canary gone, the stable serving all)"
        )
        switches, switch_times = [], []
        for number in range(runs * 2):
            color = "blue" if number % 2 == 0 else "green"
            took, said = run([*bot, "switch", "web", "--to", color, "--yes"], env)
            switches.append(took)
            found = SWITCH_TOOK.search(said)
            if found:
                value = float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)
                switch_times.append(value)
        print(
            f"{'BlueGreen':<12} switch  {seconds(switches)}   (whole command; the first scales up)"
        )
        print(f"{'':<12} as told {seconds(switch_times)}   (Service patch → EndpointSlices)")


if __name__ == "__main__":
    main()
