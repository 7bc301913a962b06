"""Portico's benchmarks, measured side by side in one run.

    python bench/run.py                  # every benchmark
    python bench/run.py healthz          # only these
    python bench/run.py --list
    python bench/run.py healthz --duration 5 --repeat 3 --connections 16

Each benchmark writes ``bench/results/<name>-<UTC time>.json`` (every sample,
the machine, the options, the git commit) and replaces its own section of
``BENCHMARKS.md``. Servers run under gunicorn pinned to ``--server-cpus``;
wrk (Debian's ``wrk`` package) runs pinned to ``--client-cpus``. Each target
is measured ``--repeat`` times, interleaved; the report gives min and median.

Adding a benchmark: create ``bench/bench_<name>.py`` with a function decorated
``@harness.benchmark("<name>", "<what it measures>")`` taking a
``harness.Bench`` and returning ``{"results": ..., "table": markdown, ...}``
(see ``bench_healthz.py``; ``harness.servers``, ``harness.compare`` and
``harness.wrk`` do the serving and the measuring). It is found automatically.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(ROOT)]

import harness  # noqa: E402

RESULTS = BENCH_DIR / "results"
REPORT = ROOT / "BENCHMARKS.md"
REPORT_HEAD = """# Benchmarks

Measured with `python bench/run.py` (see `bench/run.py` for options and how to
add a benchmark). Servers run under gunicorn with the options `portico serve`
uses, pinned to one CPU; the load generator (wrk) runs pinned to another.
Every figure is a run on one machine: compare rows of one section, not
across machines. Raw samples are in `bench/results/`.
"""


def discover() -> None:
    """Import every ``bench/bench_*.py`` so its benchmarks register themselves."""
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        importlib.import_module(path.stem)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = {}
    for dist in ("falcon", "gunicorn", "peewee", "pluggy"):
        try:
            from importlib import metadata

            versions[dist] = metadata.version(dist)
        except Exception:
            versions[dist] = "?"
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        **versions,
    }


def git_commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "engine", "plugins") else "")


def write_section(name: str, text: str) -> None:
    """Replace (or append) the ``name`` section of BENCHMARKS.md, leaving the others alone."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    report = REPORT.read_text() if REPORT.exists() else REPORT_HEAD
    block = f"{start}\n{text.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    report = (
        pattern.sub(lambda _: block, report)
        if pattern.search(report)
        else report.rstrip() + "\n\n" + block + "\n"
    )
    REPORT.write_text(report)


def section(bench_def, bench, outcome: dict, meta: dict, result_file: Path) -> str:
    lines = [
        f"## {bench_def.name}: {bench_def.title}",
        "",
        f"Run {meta['when']} at commit `{meta['commit']}` on {meta['machine']['cpu']} "
        f"({meta['machine']['cpus']} CPUs), Python {meta['machine']['python']}, "
        f"gunicorn {meta['machine']['gunicorn']}, falcon {meta['machine']['falcon']}. "
        f"gunicorn: {bench.workers} worker(s) × {bench.threads} thread(s) on CPU "
        f"{bench.server_cpus}; wrk: {bench.wrk_threads} thread(s), {bench.connections} "
        f"connections on CPU {bench.client_cpus}; {bench.repeat} runs of {bench.duration}s "
        f"each after a {bench.warmup}s warm-up. Load average (1 min) before/after: "
        f"{meta['load_average_1min'][0]} / {meta['load_average_1min'][1]}"
        + (
            " — other work shared the CPUs, so absolute figures are low; the targets ran "
            "interleaved, so the ratios are the figures to read."
            if max(meta["load_average_1min"]) > (meta["machine"]["cpus"] or 1) / 2
            else "."
        ),
        "",
        outcome["table"],
        "",
    ]
    for key, value in outcome.get("ratios", {}).items():
        lines.append(f"- `{key}`: {value:.1%}")
    lines += [f"- {note}" for note in outcome.get("notes", [])]
    lines += ["", f"Samples: `{result_file.relative_to(ROOT)}`."]
    return "\n".join(lines)


def main(argv=None) -> int:
    discover()
    defaults = harness.Bench(workdir=Path("unused"))  # only its default options
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--duration", type=int, default=defaults.duration)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--repeat", type=int, default=defaults.repeat)
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--wrk-threads", type=int, default=defaults.wrk_threads)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--server-cpus", default=defaults.server_cpus)
    parser.add_argument("--client-cpus", default=defaults.client_cpus)
    parser.add_argument(
        "--database-url",
        default=None,
        help="Portico's database (default: SQLite in a temporary folder)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where servers keep their data and logs (default: a new temporary "
        "folder, removed at the end; one given here is kept)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="write the JSON results but leave BENCHMARKS.md alone",
    )
    args = parser.parse_args(argv)
    if args.list:
        for b in harness.BENCHMARKS.values():
            print(f"{b.name:16} {b.title}")
        return 0
    unknown = [n for n in args.names if n not in harness.BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; known: {', '.join(harness.BENCHMARKS)}")
    bench = harness.Bench(
        duration=args.duration,
        warmup=args.warmup,
        repeat=args.repeat,
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        workers=args.workers,
        threads=args.threads,
        server_cpus=args.server_cpus,
        client_cpus=args.client_cpus,
        database_url=args.database_url,
    )
    if args.workdir is not None:
        bench.workdir = args.workdir
    try:
        return run_all(args, bench)
    finally:
        if args.workdir is None:
            shutil.rmtree(bench.workdir, ignore_errors=True)


def run_all(args, bench) -> int:
    RESULTS.mkdir(exist_ok=True)
    for name in args.names or list(harness.BENCHMARKS):
        bench_def = harness.BENCHMARKS[name]
        print(f"== {name}: {bench_def.title}", flush=True)
        now = datetime.now(timezone.utc)
        load_before = os.getloadavg()[0]
        outcome = bench_def.fn(bench)
        meta = {
            "benchmark": name,
            "title": bench_def.title,
            "when": now.strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(),
            "machine": machine(),
            "options": bench.settings(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        result_file = RESULTS / f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
        result_file.write_text(
            json.dumps({**meta, **{k: v for k, v in outcome.items() if k != "table"}}, indent=2)
            + "\n"
        )
        print(outcome["table"])
        for key, value in outcome.get("ratios", {}).items():
            print(f"{key}: {value:.1%}")
        print(f"-> {result_file.relative_to(ROOT)}", flush=True)
        if not args.no_report:
            write_section(name, section(bench_def, bench, outcome, meta, result_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
