"""Throughput and latency of a real `mnist-logreg serve` process on 127.0.0.1 with good
requests only: drawn digits as PNG uploads (full preprocessing) and JSON pixels.

    python bench/serve.py CHECKPOINT [--requests 2000] [--concurrency 32]
"""
import argparse
import asyncio
import os
import signal
import sys
import time

import numpy as np

from abuse import _run, free_port, peak_rss_mb, request_mix, start_server


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    mix = [m for m in request_mix() if m[0].startswith("good")]
    port = free_port()
    proc = start_server(args.checkpoint, port)
    try:
        statuses, errors, lat, wall = asyncio.run(_run(f"http://127.0.0.1:{port}", args.requests, args.concurrency, mix))
        peak = peak_rss_mb(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    bad = sum(v for g in statuses.values() for s, v in g.items() if s != 200) + sum(errors.values())
    lat_ms = np.array(lat) * 1000
    print(f"{args.requests:,} requests ({', '.join(m[0][6:] for m in mix)}) at concurrency {args.concurrency}, "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    print(f"throughput {args.requests / wall:.0f} req/s; latency p50 {np.percentile(lat_ms, 50):.1f} ms, "
          f"p99 {np.percentile(lat_ms, 99):.1f} ms; errors {bad}; server peak RSS {peak:.0f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
