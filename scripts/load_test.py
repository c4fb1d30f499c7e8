"""Load test of `sentiment serve`: concurrent clients on loopback, bounded in requests and time.

Starts `sentiment serve` on a free 127.0.0.1 port (or uses --url), then runs two phases and prints, for each,
throughput, p50 / p99 latency and failed requests:

  single  --clients clients, each sending {"text": ...} requests back to back
  batch   --batch-clients clients, each sending {"texts": [--batch-size texts]}

    python scripts/load_test.py --model runs/default [--workers 1] [--requests 20000] [--seconds 20]
    python scripts/load_test.py --model runs/default --words 20     # tweet-length texts

Texts come from ../shared's IMDB reviews when present, else from made-up sentences. Exit 1 when a request
failed. aiohttp drives the clients (one event loop; its own cost is included in the latencies measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb" / "train.csv.gz"


@dataclass
class PhaseResult:
    name: str
    requests: int
    texts: int
    failed: int
    seconds: float
    latencies_ms: np.ndarray

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds

    def line(self) -> str:
        p50, p99 = np.percentile(self.latencies_ms, [50, 99]) if len(self.latencies_ms) else (0.0, 0.0)
        return (
            f"{self.name:<7} {self.requests:>7} requests  {self.texts:>8} texts  {self.seconds:6.1f} s  "
            f"{self.requests_per_s:8.0f} req/s  {self.texts_per_s:9.0f} texts/s  "
            f"p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  failed {self.failed}"
        )

    def to_dict(self) -> dict[str, float | int | str]:
        p50, p99 = np.percentile(self.latencies_ms, [50, 99]) if len(self.latencies_ms) else (0.0, 0.0)
        return {
            "phase": self.name,
            "requests": self.requests,
            "texts": self.texts,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "texts_per_s": round(self.texts_per_s, 1),
            "p50_ms": round(float(p50), 2),
            "p99_ms": round(float(p99), 2),
        }


def load_texts(limit: int = 5000) -> list[str]:
    if SHARED_TRAIN.is_file():
        import csv

        with gzip.open(SHARED_TRAIN, "rt", encoding="utf-8", newline="") as fh:
            rows = csv.DictReader(fh)
            return [row["review"] for _, row in zip(range(limit), rows, strict=False)]
    rng = random.Random(0)
    words = ["a", "the", "film", "movie", "great", "awful", "plot", "acting", "boring", "superb", "story"]
    return [" ".join(rng.choices(words, k=rng.randint(5, 60))) for _ in range(limit)]


async def _phase(
    url: str, name: str, clients: int, batch: int, texts: list[str], max_requests: int, seconds: float
) -> PhaseResult:
    import aiohttp

    latencies: list[float] = []
    failed = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    bodies = [
        json.dumps(
            {"text": texts[i % len(texts)]} if batch == 1 else {"texts": texts[i : i + batch]}
        ).encode()
        for i in range(0, max(len(texts) - batch, 1), max(batch // 4, 1))
    ]
    headers = {"content-type": "application/json"}

    async def client(session: aiohttp.ClientSession, seed: int) -> None:
        nonlocal failed, sent
        i = seed
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            body = bodies[i % len(bodies)]
            i += clients
            start = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            failed += not ok

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def warm_up() -> None:
            async with session.post(url, data=bodies[0], headers=headers) as response:
                await response.read()

        # one warm-up request per client: connections are open before the clock starts
        await asyncio.gather(*(warm_up() for _ in range(clients)))
        start = time.perf_counter()
        await asyncio.gather(*(client(session, c) for c in range(clients)))
        elapsed = time.perf_counter() - start
    return PhaseResult(name, len(latencies), len(latencies) * batch, failed, elapsed, np.array(latencies))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(model: str | None, workers: int, threads: int = 0):
    port = free_port()
    command = [sys.executable, "-m", "sentiment", "serve", "--port", str(port), "--workers", str(workers)]
    command += ["--threads", str(threads)]
    command += ["--model", model] if model else []
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"the server stopped: {proc.stderr.read().strip()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model directory (default: the last trained)")
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--workers", type=int, default=1, help="server processes when starting one")
    parser.add_argument(
        "--threads", type=int, default=0, help="prediction threads per server process (0: serve's default)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20000, help="most requests per phase")
    parser.add_argument("--batch-requests", type=int, default=200, help="most batch requests")
    parser.add_argument("--seconds", type=float, default=20.0, help="most seconds per phase")
    parser.add_argument(
        "--words",
        type=int,
        help="cut each text to its first N words (tweet-length texts: 20); default: whole",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    args = parser.parse_args()

    texts = load_texts()
    if args.words:
        texts = [" ".join(t.split()[: args.words]) for t in texts]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(server(args.model, args.workers, args.threads))
        single = asyncio.run(
            _phase(f"{url}/predict", "single", args.clients, 1, texts, args.requests, args.seconds)
        )
        batch = asyncio.run(
            _phase(
                f"{url}/predict",
                "batch",
                args.batch_clients,
                args.batch_size,
                texts,
                args.batch_requests,
                args.seconds,
            )
        )
    results = [single, batch]
    if args.json:
        print(json.dumps([r.to_dict() for r in results]))
    else:
        mean_words = sum(len(t.split()) for t in texts) / len(texts)
        name = args.url or f"sentiment serve --workers {args.workers} --threads {args.threads or 'auto'}"
        print(f"server: {name}; {len(texts)} distinct texts of {mean_words:.0f} words on average")
        for r in results:
            print(r.line())
    if any(r.failed for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
