"""Load and abuse test of a real `mnist-logreg serve` process on 127.0.0.1.

Sends N requests at concurrency C, cycling through good bodies (a drawn digit as a PNG
upload, 784 JSON pixels) and bad ones (not an image, a truncated PNG, a 50-megapixel PNG,
a 20 MB body, malformed JSON, 783 pixels, NaN pixels), and prints, per kind, the status
codes seen, plus errors, throughput, latency and the server's peak resident memory.
Every bad request must get a 4xx, every good one a 200, none a 5xx. Then --worst uploads at
once of the largest accepted image (25 megapixels), with /api/health timed meanwhile: each
gets 200 or 503 (busy, Retry-After), and the server's memory stays bounded by design.

    python bench/abuse.py CHECKPOINT [--requests 5000] [--concurrency 64] [--worst 64]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict

import numpy as np
from PIL import Image, ImageDraw


def _png(im) -> bytes:
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def request_mix():
    """(name, expected status class, httpx request kwargs) for each kind of request."""
    digit = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(digit).line([(140, 40), (140, 240)], fill=0, width=18)
    good_png = _png(digit)
    rng = np.random.default_rng(0)
    mnist_like = (rng.random(784) * (rng.random(784) > 0.8)).round(3).tolist()
    bomb = _png(Image.new("1", (7072, 7072), 0))  # 50 megapixels in a few kB
    nan = '{"pixels": [' + ",".join(["NaN"] * 784) + "]}"
    return [
        ("good: PNG upload", 200, {"files": {"image": ("d.png", good_png, "image/png")}}),
        ("good: JSON 784 pixels", 200, {"json": {"pixels": mnist_like}}),
        ("bad: not an image", 422, {"files": {"image": ("x.png", os.urandom(2000), "image/png")}}),
        ("bad: truncated PNG", 422, {"files": {"image": ("t.png", good_png[: len(good_png) // 2], "image/png")}}),
        ("bad: 50-megapixel PNG", 422, {"files": {"image": ("bomb.png", bomb, "image/png")}}),
        ("bad: 20 MB body", 413, {"content": b"\0" * (20 * 1024 * 1024), "headers": {"content-type": "application/json"}}),
        ("bad: malformed JSON", 400, {"content": b'{"pixels": [1, 2,', "headers": {"content-type": "application/json"}}),
        ("bad: 783 pixels", 422, {"json": {"pixels": mnist_like[:783]}}),
        ("bad: NaN pixels", 422, {"content": nan.encode(), "headers": {"content-type": "application/json"}}),
    ]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(checkpoint, port, cwd=None, workers=1, options=(), stdout=subprocess.DEVNULL):
    """`mnist-logreg serve CHECKPOINT --port PORT --workers N OPTIONS`, returned once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "mnist_logreg.cli", "serve", str(checkpoint), "--port", str(port),
                             "--workers", str(workers), *map(str, options)], stdout=stdout, stderr=subprocess.PIPE,
                            cwd=cwd)
    import httpx
    # one client for every poll: httpx.get builds an SSL context each time (40 ms of CPU)
    with httpx.Client(timeout=1) as client:
        for _ in range(300):
            try:
                if client.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + proc.stderr.read().decode()[-400:])


def peak_rss_mb(pid) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _run(url, n, concurrency, mix):
    import httpx
    statuses = defaultdict(Counter)
    latencies = []
    errors = Counter()
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def one(k):
            name, _, kw = mix[k % len(mix)]
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/predict", **kw)
                    statuses[name][r.status_code] += 1
                except httpx.HTTPError as e:
                    errors[f"{name}: {type(e).__name__}"] += 1
                latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(n)))
        wall = time.perf_counter() - t0
    return statuses, errors, latencies, wall


def worst_case_png() -> bytes:
    """The largest image the server accepts (25 megapixels), a digit on white: 35 kB of PNG
    that decodes to 25 MB of pixels."""
    im = Image.new("L", (5000, 5000), 255)
    ImageDraw.Draw(im).line([(2500, 800), (2500, 4200)], fill=0, width=300)
    return _png(im)


async def _worst(url, n):
    """n uploads of the worst-case image at once, while /api/health is asked every 10 ms."""
    import httpx
    png, statuses, health = worst_case_png(), Counter(), []
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        done = asyncio.Event()

        async def upload(k):
            r = await client.post("/api/predict", files={"image": (f"w{k}.png", png, "image/png")})
            statuses[r.status_code] += 1

        async def poll():
            while not done.is_set():
                t0 = time.perf_counter()
                await client.get("/api/health")
                health.append(time.perf_counter() - t0)
                await asyncio.sleep(0.01)
        poller = asyncio.create_task(poll())
        t0 = time.perf_counter()
        await asyncio.gather(*(upload(k) for k in range(n)))
        wall = time.perf_counter() - t0
        done.set()
        await poller
    return statuses, health, wall


def run_abuse(url, n, concurrency):
    mix = request_mix()
    statuses, errors, lat, wall = asyncio.run(_run(url, n, concurrency, mix))
    expected = {name: code for name, code, _ in mix}
    return statuses, errors, lat, wall, expected


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--worst", type=int, default=64, help="then this many worst-case uploads at once (0: skip)")
    args = ap.parse_args()
    port = free_port()
    proc = start_server(args.checkpoint, port)
    try:
        statuses, errors, lat, wall, expected = run_abuse(f"http://127.0.0.1:{port}", args.requests, args.concurrency)
        peak = peak_rss_mb(proc.pid)
        worst = asyncio.run(_worst(f"http://127.0.0.1:{port}", args.worst)) if args.worst else None
        worst_peak = peak_rss_mb(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    print(f"{args.requests:,} requests at concurrency {args.concurrency} to 127.0.0.1:{port} "
          f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n")
    print(f"{'kind':26s} {'sent':>6s}  statuses            expected")
    wrong = 0
    for name, code in expected.items():
        got = statuses[name]
        sent = sum(got.values())
        ok = set(got) == {code}
        wrong += 0 if ok else sum(v for s, v in got.items() if s != code)
        print(f"{name:26s} {sent:6d}  {json.dumps(dict(sorted(got.items()))):18s}  {code}{'' if ok else '  <-- MISMATCH'}")
    five = sum(v for g in statuses.values() for s, v in g.items() if s >= 500)
    lat_ms = np.array(lat) * 1000
    print(f"\n5xx: {five}, transport errors: {sum(errors.values())} {dict(errors) if errors else ''}, "
          f"unexpected statuses: {wrong}")
    print(f"throughput {args.requests / wall:.0f} req/s; latency p50 {np.percentile(lat_ms, 50):.1f} ms, "
          f"p99 {np.percentile(lat_ms, 99):.1f} ms; server peak RSS {peak:.0f} MB")
    bad_worst = 0
    if worst is not None:
        w_status, health, w_wall = worst
        h_ms = np.array(health) * 1000
        bad_worst = sum(v for k, v in w_status.items() if k not in (200, 503))
        print(f"\n{args.worst} uploads at once of a 5000x5000 PNG ({len(worst_case_png()):,} bytes): statuses "
              f"{json.dumps(dict(sorted(w_status.items())))} in {w_wall:.1f} s; /api/health meanwhile: "
              f"{len(health)} answers, p50 {np.percentile(h_ms, 50):.1f} ms, p99 {np.percentile(h_ms, 99):.1f} ms; "
              f"server peak RSS {worst_peak:.0f} MB (target: under 1,024 MB, p99 under 100 ms)")
    return 1 if (five or errors or wrong or bad_worst) else 0


if __name__ == "__main__":
    sys.exit(main())
