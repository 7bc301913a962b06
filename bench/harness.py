"""What every benchmark shares: a registry, gunicorn servers pinned to cores, wrk, statistics.

A benchmark is a function ``fn(bench: Bench) -> dict`` registered with
``@benchmark("name", "what it measures")`` in a ``bench/bench_<name>.py``
module; ``bench/run.py`` finds those modules, runs the benchmarks asked for,
and writes ``bench/results/<name>-<time>.json`` and the ``<name>`` section of
``BENCHMARKS.md``. The returned dict has ``"results"`` (label → measurements),
optional ``"ratios"`` and ``"notes"``, and ``"table"``: the markdown shown in
BENCHMARKS.md.

Servers run under gunicorn through ``engine.serve.Gunicorn`` with the options
of ``engine.serve.gunicorn_options`` (``bench/serve.py``), so every app in a
comparison runs on the same gunicorn settings. The server is pinned to one
set of cores and the load generator (wrk) to another with ``taskset``, so
they do not compete for one CPU.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable


# -- the registry ------------------------------------------------------------------------


@dataclass
class Benchmark:
    name: str
    title: str
    fn: Callable[["Bench"], dict]


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(name: str, title: str):
    """Register ``fn(bench) -> dict`` under ``name`` (one section of BENCHMARKS.md)."""

    def register(fn):
        if name in BENCHMARKS:
            raise ValueError(
                f"benchmark '{name}' is registered twice "
                f"({BENCHMARKS[name].fn.__module__} and {fn.__module__})"
            )
        BENCHMARKS[name] = Benchmark(name, title, fn)
        return fn

    return register


# -- run options -----------------------------------------------------------------------------


@dataclass
class Bench:
    """The options of one run, shared by every benchmark in it."""

    duration: int = 10  # seconds per wrk run
    warmup: int = 2  # seconds of wrk before the measured runs (discarded)
    repeat: int = 3
    connections: int = 16
    wrk_threads: int = 1
    workers: int = 1  # gunicorn workers, the same for every app compared
    threads: int = 1  # gunicorn threads per worker (>1 switches to gthread)
    server_cpus: str = "0"  # taskset -c list for the servers
    client_cpus: str = "1"  # ... and for wrk
    database_url: str | None = None  # Portico's database (default: SQLite in a temp folder)
    # A folder of this run's own (two runs at once must not share databases or logs).
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="portico-bench-")))

    def settings(self) -> dict:
        """What the report records about this run."""
        return {
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "repeat": self.repeat,
            "connections": self.connections,
            "wrk_threads": self.wrk_threads,
            "gunicorn_workers": self.workers,
            "gunicorn_threads": self.threads,
            "server_cpus": self.server_cpus,
            "client_cpus": self.client_cpus,
        }


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def taskset(cpus: str) -> list[str]:
    """``taskset -c <cpus>`` when taskset exists and the machine has those CPUs."""
    if not cpus or shutil.which("taskset") is None:
        return []
    wanted = {int(c) for part in cpus.split(",") for c in _cpu_range(part)}
    if not wanted <= os.sched_getaffinity(0):
        return []
    return ["taskset", "-c", cpus]


def _cpu_range(part: str) -> range:
    first, _, last = part.partition("-")
    return range(int(first), int(last or first) + 1)


class Server:
    """One WSGI app under gunicorn (``bench/serve.py``), pinned to the server CPUs."""

    def __init__(
        self,
        bench: Bench,
        app: str,
        check_path: str = "/",
        env: dict | None = None,
        args: list[str] | None = None,
    ):
        self.bench, self.app, self.check_path = bench, app, check_path
        self.args = list(args or [])  # more bench/serve.py options
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = bench.workdir / f"server-{app.replace(':', '-')}-{self.port}.log"

    def start(self) -> "Server":
        self.bench.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *taskset(self.bench.server_cpus),
            PYTHON,
            str(BENCH_DIR / "serve.py"),
            self.app,
            "--port",
            str(self.port),
            "--workers",
            str(self.bench.workers),
            "--threads",
            str(self.bench.threads),
            "--workdir",
            str(self.bench.workdir),
        ]
        if self.bench.database_url:
            cmd += ["--database-url", self.bench.database_url]
        cmd += self.args
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
        env.update(self.env, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.app} exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + self.check_path, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.app} did not answer {self.check_path} in {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # gunicorn master and its workers
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@contextlib.contextmanager
def servers(bench: Bench, apps: dict[str, tuple[str, str]]) -> Iterator[dict[str, Server]]:
    """Start ``{label: (app spec, check path)}`` servers at once; stop them all afterwards."""
    started: dict[str, Server] = {}
    try:
        for label, (app, path) in apps.items():
            started[label] = Server(bench, app, path).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


# -- the load generator ------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def wrk(
    bench: Bench,
    url: str,
    duration: int | None = None,
    headers: dict[str, str] | None = None,
    connections: int | None = None,
    script: Path | None = None,
    env: dict[str, str] | None = None,
) -> WrkResult:
    """One wrk run against ``url``, pinned to the client CPUs (``script``: a wrk Lua script,
    which reads ``env``)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    cmd = [
        *taskset(bench.client_cpus),
        "wrk",
        f"-t{bench.wrk_threads}",
        f"-c{connections or bench.connections}",
        f"-d{duration or bench.duration}s",
        "--latency",
    ]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    requests = int(re.search(r"(\d+) requests in", out)[1])
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non2xx[1]) if non2xx else 0
    return WrkResult(rps, _latency(out, "50%"), _latency(out, "99%"), requests, errors)


def _latency(out: str, pct: str) -> float:
    found = re.search(rf"^\s+{re.escape(pct)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not found:
        return float("nan")
    return float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]


def compare(bench: Bench, targets: dict[str, str], headers: dict[str, dict] | None = None) -> dict:
    """wrk each ``{label: url}`` ``bench.repeat`` times, interleaved so drift hits all alike."""
    headers = headers or {}
    for label, url in targets.items():
        wrk(bench, url, duration=bench.warmup, headers=headers.get(label))
    runs: dict[str, list[WrkResult]] = {label: [] for label in targets}
    for _ in range(bench.repeat):
        for label, url in targets.items():
            runs[label].append(wrk(bench, url, headers=headers.get(label)))
    return {label: summarize(results) for label, results in runs.items()}


def summarize(results: list[WrkResult]) -> dict:
    rps = [r.rps for r in results]
    return {
        "rps": rps,
        "rps_min": min(rps),
        "rps_median": statistics.median(rps),
        "p50_ms_median": statistics.median(r.p50_ms for r in results),
        "p99_ms_median": statistics.median(r.p99_ms for r in results),
        "p99_ms_min": min(r.p99_ms for r in results),
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
    }


def rps_table(results: dict[str, dict], baseline: str | None = None) -> str:
    """The markdown table of a ``compare()`` result."""
    head = "| target | req/s min | req/s median | p50 ms | p99 ms | errors |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if baseline:
        head, sep = head + f" median vs {baseline} |", sep + "---:|"
    lines = [head, sep]
    for label, r in results.items():
        line = (
            f"| {label} | {r['rps_min']:,.0f} | {r['rps_median']:,.0f} | "
            f"{r['p50_ms_median']:.2f} | {r['p99_ms_median']:.2f} | {r['errors']} |"
        )
        if baseline:
            line += f" {r['rps_median'] / results[baseline]['rps_median']:.0%} |"
        lines.append(line)
    return "\n".join(lines)
