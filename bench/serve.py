"""Throughput and latency of a real `mnist-logreg serve` process on 127.0.0.1 with good
requests only (drawn digits as PNG uploads, full preprocessing, and JSON pixels), with 1 and
with 2 worker processes (`serve --workers N`), side by side in one run.

    python bench/serve.py CHECKPOINT [--requests 2000] [--concurrency 32] [--workers 1 2]
"""
import argparse
import asyncio
import os
import signal
import sys
import time

import numpy as np
from abuse import _run, free_port, request_mix, start_server


def measure(checkpoint, workers, requests, concurrency, mix):
    port = free_port()
    proc = start_server(checkpoint, port, workers=workers)
    try:
        statuses, errors, lat, wall = asyncio.run(_run(f"http://127.0.0.1:{port}", requests, concurrency, mix))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    bad = sum(v for g in statuses.values() for s, v in g.items() if s != 200) + sum(errors.values())
    return requests / wall, np.percentile(np.array(lat) * 1000, [50, 99]), bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    mix = [m for m in request_mix() if m[0].startswith("good")]
    print(f"{args.requests:,} requests ({', '.join(m[0][6:] for m in mix)}) at concurrency {args.concurrency}, "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; the client runs on the same machine")
    rows, any_bad = [], 0
    for w in args.workers:
        tput, (p50, p99), bad = measure(args.checkpoint, w, args.requests, args.concurrency, mix)
        rows.append((w, tput))
        any_bad += bad
        print(f"workers {w}: throughput {tput:6.0f} req/s; latency p50 {p50:6.1f} ms, p99 {p99:6.1f} ms; errors {bad}",
              flush=True)
    base = rows[0][1]
    print("ratio to 1 worker: " + ", ".join(f"{w} workers {t / base:.2f}x" for w, t in rows))
    return 1 if any_bad else 0


if __name__ == "__main__":
    sys.exit(main())
