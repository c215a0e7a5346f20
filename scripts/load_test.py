#!/usr/bin/env python3
"""Load test: a real `kgdistill serve` process driven by a real HTTP client (httpx, asyncio) at several
concurrency levels; per level: requests, errors, throughput, latency p50/p95/p99 (client side, end to end),
and the server's resident memory sampled every 0.5 s (per level and across the whole run: start, end, max; a
level's start is after its warm-up, so growth within a level is growth under a steady load).

    .venv/bin/python scripts/load_test.py EXPORT_DIR --inputs-from RUN [--requests 4000,3000,3000]
        [--concurrency 1,8,32] [--threads 1] [--workers 1] [--out runs/load-test/summary.json]

One input per request, cycling over the run's test inputs.  Client and server share the machine: on 2 cores the
client's own CPU is part of what limits throughput (reported)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
RSS_EVERY_S = 0.5       # the server's resident memory is read this often (sample_rss, rss_summary)


def start_server(export: Path, token_file: Path, log: Path, threads: int, workers: int,
                 env: dict[str, str] | None = None) -> tuple:
    """The server in its own process; ``env``: variables set for it alone (e.g. ``LD_PRELOAD`` of an allocator),
    not for this client."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "kgdistill", "serve", str(export), "--port", str(port), "--token-file",
           str(token_file), "--threads", str(threads), "--workers", str(workers), "--max-batch", "64"]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT,
                            env=os.environ | {"PYTHONPATH": str(ROOT)} | (env or {}))
    import httpx

    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, f"http://127.0.0.1:{port}"
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready after 300 s")


async def drive(url: str, token: str, bodies: list[bytes], n: int, concurrency: int) -> dict:
    import httpx

    lat: list[float] = []
    errors: dict[str, int] = {}
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"}) as client:
        async def worker() -> None:
            for i in counter:
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", content=bodies[i % len(bodies)])
                    if r.status_code != 200:
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                lat.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ms = np.asarray(lat) * 1000
    return {"concurrency": concurrency, "requests": n, "errors": errors, "seconds": wall,
            "throughput_per_s": n / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99))}


async def sample_rss(pid: int, out: list[float], stop: asyncio.Event) -> None:
    import psutil

    proc = psutil.Process(pid)
    while not stop.is_set():
        procs = [proc, *proc.children(recursive=True)]
        out.append(sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20)
        await asyncio.sleep(RSS_EVERY_S)


def rss_summary(rss: list[float], every_s: float = RSS_EVERY_S) -> dict:
    """Resident memory over the run (samples every ``every_s``): flat means no trend once the first tenth has met
    the batch shapes: the thirds' means and the fitted slope after the first tenth (MB per minute)."""
    thirds = np.array_split(np.asarray(rss), 3)
    rest = np.asarray(rss[len(rss) // 10:])
    slope = float(np.polyfit(np.arange(len(rest)) * every_s / 60, rest, 1)[0]) if len(rest) > 2 else 0.0
    return {"start": rss[0], "end": rss[-1], "max": max(rss), "samples": len(rss),
            "third_means": [round(float(t.mean()), 1) for t in thirds if len(t)],
            "mb_per_minute_after_first_tenth": round(slope, 2),
            "trace_every_5s": [round(v, 1) for v in rss[::round(5 / every_s)]]}


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds so far of the server (with its workers) and of this client process."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    server = sum(sum(p.cpu_times()[:2]) for p in procs)
    return server, sum(psutil.Process().cpu_times()[:2])


async def run_levels(url: str, token: str, bodies: list[bytes], plan: list[tuple[int, int]], pid: int) -> tuple:
    rss: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, rss, stop))
    levels = []
    for c, n in plan:
        await drive(url, token, bodies, min(50, n), c)          # warm-up, not counted
        s0, c0 = cpu_seconds(pid)
        first = len(rss)
        levels.append(await drive(url, token, bodies, n, c))
        s1, c1 = cpu_seconds(pid)
        during = rss[first:] or rss[-1:]
        levels[-1] |= {"server_rss_mb": {"start": during[0], "end": during[-1], "max": max(during)},
                       "server_cpu_ms_per_request": 1000 * (s1 - s0) / n,
                       "client_cpu_ms_per_request": 1000 * (c1 - c0) / n}
        print(json.dumps(levels[-1]), flush=True)
    stop.set()
    await sampler
    return levels, rss


def parse_server_env(pairs: list[str]) -> dict[str, str]:
    """``--server-env KEY=VALUE`` arguments as a dict; ValueError naming the first that is not KEY=VALUE."""
    for pair in pairs:
        if "=" not in pair or not pair.partition("=")[0]:
            raise ValueError(f"--server-env {pair!r}: expected KEY=VALUE")
    return dict(pair.split("=", 1) for pair in pairs)


def main() -> None:
    from bench_deploy import test_set

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("export", type=Path)
    p.add_argument("--inputs-from", type=Path, required=True, help="The run whose test inputs are sent.")
    p.add_argument("--requests", default="4000,3000,3000")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                   help="An environment variable for the server process only (repeatable), e.g. "
                        "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2.")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "load-test" / "summary.json")
    args = p.parse_args()
    try:
        server_env = parse_server_env(args.server_env)
    except ValueError as exc:
        p.error(str(exc))
    plan = list(zip(map(int, args.concurrency.split(",")), map(int, args.requests.split(","))))
    x, _ = test_set(args.inputs_from)
    bodies = [json.dumps({"inputs": [v if isinstance(v, str) else v.tolist()], "top_k": 10}).encode() for v in x]
    token = secrets.token_urlsafe(32)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "tokens").write_text(token + "\n")
    proc, url = start_server(args.export, tmp / "tokens", tmp / "server.log", args.threads, args.workers,
                             server_env)
    try:
        levels, rss = asyncio.run(run_levels(url, token, bodies, plan, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    summary = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "export": str(args.export),
               "threads": args.threads, "workers": args.workers, "server_env": server_env, "levels": levels,
               "total_requests": sum(lv["requests"] for lv in levels), "rss_mb": rss_summary(rss),
               "speedup_c_max_vs_c1": levels[-1]["throughput_per_s"] / levels[0]["throughput_per_s"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "levels"}, indent=2))


if __name__ == "__main__":
    main()
