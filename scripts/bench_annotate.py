"""Load benchmark of the annotation tool: many annotators voting at once, a kill -9 half-way.

    python scripts/bench_annotate.py [--backend sqlite|postgres|both] [--items 10000]
        [--annotators 50] [--duration 30] [--max-votes 30000] [--rate 0] [--threads N]
        [--workers N] [--src DIR]
    python scripts/bench_annotate.py --load lapsed [--backend ...] [--duration 30]

What it does, on 127.0.0.1 only, bounded in votes and in time:

1. writes a study of ``--items`` items (random 28x28 images, seeded) and 100 spare MNIST-like
   images for the attention checks, then runs the tool's own commands: ``init
   --votes-per-item 3 --attention-every 10``, ``add-annotator --count N``;
2. starts ``serve`` (as documented, with its default threads and workers unless
   ``--threads``/``--workers`` are given) and lets ``--annotators`` asyncio clients vote as fast as
   the server answers, each on one keep-alive connection: POST /api/vote, whose answer carries
   the next item (and its image) - the requests a browser makes;
3. half-way through sends SIGKILL to the server's process group (every worker) and starts
   it again at once; clients
   reconnect and resume with GET /api/next;
4. stops at ``--duration`` seconds or ``--max-votes`` acknowledged votes, runs ``export``, and
   reconciles: votes acknowledged (201 with a vote_id), stored, exported, lost (acknowledged
   but not stored), duplicated (an annotator's item stored twice), stored without an
   acknowledgement (answers in flight at the kill: saved, the answer was lost with the
   process), items over their quota.

Prints votes/s (acknowledged votes over the load's wall time, the restart included, and
while serving), latency percentiles of the vote requests, and the CPU time per acknowledged
vote of the server (start-ups excluded) and of this load client. ``--rate R`` offers R
votes/s in all (each annotator on a fixed schedule of one vote per annotators/R seconds,
catching up after a delay such as the restart) instead of voting as fast as the server
answers, for the latency at a given rate. ``--src DIR`` runs the tool from another source
tree (e.g. an older checkout) to compare, with the same client and the same data. PostgreSQL
runs against a throwaway server (default durability settings) started from the machine's
binaries.

``--load lapsed`` is the lapsed-reservation shape instead: ``init --lease-seconds 1``, a
study of ``--items`` (default 300 in this shape) items, ``--annotators`` (default 40) clients
of which ``--stalled`` (default 30%) hold every item they are shown for ``--stall`` seconds
(default 2, twice the lease) before they answer it, so their reservations lapse and are
handed to others while they still vote on them; no kill. It runs until every client is done
(the study is complete) or ``--duration`` passes, and prints the next-item latency
(``GET /api/next``: the first item and the one asked for after a refused late vote) and the
vote latency, the 503s, the votes saved without a next item, the clients that finished,
the items over quota and, on PostgreSQL, the "deadlock detected" entries of the server's log.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: the throughput target of a campaign on a 2-core machine (50 annotators, 10,000 items)
TARGET_RATE = 300
TARGET_P95_MS = 150
TOOL = [sys.executable, "-m", "soft_label_audit.annotation_tool"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool_env(src: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(src), "KEDRO_DISABLE_TELEMETRY": "true"}


def make_inputs(workdir: Path, n_items: int, seed: int = 0) -> tuple[Path, Path]:
    """study_items and digits tables: random images, ids 0..n-1, 100 spare ids for checks."""
    rng = np.random.default_rng(seed)
    n_all = n_items + 100
    images = rng.integers(0, 256, size=(n_all, 784), dtype=np.uint8)
    digits = pd.DataFrame(
        {
            "item_id": np.arange(n_all, dtype=np.int64),
            "source": "mnist",
            "original_label": rng.integers(0, 10, n_all).astype(np.int64),
            "image": [row.tobytes() for row in images],
        }
    )
    study = digits.iloc[:n_items][["item_id", "source", "original_label"]].copy()
    study["split"] = np.array(["train", "val", "test"])[np.arange(n_items) % 3]
    digits_path, study_path = workdir / "digits.parquet", workdir / "study_items.parquet"
    digits.to_parquet(digits_path)
    study.to_parquet(study_path)
    return study_path, digits_path


def serve_flags(threads: int | None, workers: int | None) -> list[str]:
    """``serve``'s own defaults unless --threads/--workers say otherwise."""
    flags = [] if threads is None else ["--threads", str(threads)]
    return flags + ([] if workers is None else ["--workers", str(workers)])


class Server:
    def __init__(
        self, db: str, port: int, env: dict, log: Path, threads: int | None, workers: int | None
    ):
        self.cmd = [*TOOL, "serve", "--db", db, "--port", str(port), *serve_flags(threads, workers)]
        self.port, self.env, self.log = port, env, log
        self.proc: subprocess.Popen | None = None
        self.cpu_s = 0.0  # CPU seconds of the server processes that have ended

    def cpu_now(self) -> float:
        """CPU seconds (user + system) the running server's processes (its process group:
        the server and its workers) have used so far."""
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.proc.pid:  # process group id
                    total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                continue
        return total / os.sysconf("SC_CLK_TCK")

    def start(self, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=ROOT,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 reaches every worker
        )
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:  # answering, not just listening (with --workers the port opens first)
                conn = HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("server did not start")

    def kill9(self) -> None:
        """SIGKILL to every process of the server at once (a crash of the machine's server)."""
        self.cpu_s += self.cpu_now()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.cpu_s += self.cpu_now()
            self.proc.terminate()  # serve stops its workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Stats:
    def __init__(self):
        self.acked: list[tuple[str, int, str, int]] = []  # token, item, choice, vote_id
        self.latencies: list[float] = []
        self.in_flight_lost = 0  # vote requests whose answer never came (the kill)
        self.refused: dict[int, int] = {}
        self.done_annotators = 0


async def http(
    reader, writer, method: str, path: str, token: str, port: int, body: bytes | None = None
) -> tuple[int, dict]:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Annotator-Token: {token}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + (body or b""))
    await writer.drain()
    header = await reader.readuntil(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    data = await reader.readexactly(length) if length else b""
    return status, (json.loads(data) if data else {})


async def next_item(
    reader, writer, token: str, port: int, body, refused: dict[int, int], latencies=None
):
    """The answer that holds the annotator's item: ``body`` itself when it holds one (or says
    the annotator is done), else that of ``GET /api/next`` (its time appended to
    ``latencies`` when given); None after a refusal, counted in ``refused`` by status, once
    the client has waited 0.1 s to ask again."""
    if body is not None and (body.get("item") is not None or body.get("done")):
        return body
    t0 = time.perf_counter()
    status, body = await http(reader, writer, "GET", "/api/next", token, port)
    if latencies is not None:
        latencies.append(time.perf_counter() - t0)
    if status != 200:
        refused[status] = refused.get(status, 0) + 1
        await asyncio.sleep(0.1)
        return None
    return body


async def annotator(
    k: int,
    token: str,
    port: int,
    stats: Stats,
    stop: asyncio.Event,
    max_votes: int,
    interval: float = 0.0,
) -> None:
    """One annotator on one keep-alive connection. ``interval`` > 0: votes on a fixed
    schedule, one per ``interval`` seconds (an offered load), the first after a phase that
    spreads them; a vote that could not be sent on time (its item came late, the server was
    restarting) goes out as soon as it can, and the next ones follow until the schedule is
    caught up, so the offered rate holds over the run."""
    rng = np.random.default_rng(k)
    reader = writer = None
    body = None
    next_at = time.perf_counter() + rng.uniform(0, interval)
    while not stop.is_set():
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                body = None
            body = await next_item(reader, writer, token, port, body, stats.refused)
            if body is None:
                continue
            if body.get("done"):
                stats.done_annotators += 1
                return
            item_id = body["item"]["item_id"]
            choice = str(int(rng.integers(0, 10)))
            vote = json.dumps(
                {"item_id": item_id, "choice": choice, "unsure": False, "response_time": 0.3}
            ).encode()
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            t0 = time.perf_counter()
            next_at += interval
            try:
                status, answer = await http(reader, writer, "POST", "/api/vote", token, port, vote)
            except (OSError, asyncio.IncompleteReadError):
                stats.in_flight_lost += 1
                raise
            if status == 201:
                stats.latencies.append(time.perf_counter() - t0)
                stats.acked.append((token, item_id, choice, int(answer["vote_id"])))
                body = answer
                if len(stats.acked) >= max_votes:
                    stop.set()
            else:
                stats.refused[status] = stats.refused.get(status, 0) + 1
                body = None
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)  # the server is restarting
    if writer is not None:
        writer.close()


async def load(
    tokens: list[str],
    server: Server,
    duration: float,
    max_votes: int,
    kill_at: float,
    rate: float = 0.0,
) -> tuple[Stats, float, float]:
    stats, stop = Stats(), asyncio.Event()
    interval = len(tokens) / rate if rate else 0.0
    tasks = [
        asyncio.create_task(annotator(k, t, server.port, stats, stop, max_votes, interval))
        for k, t in enumerate(tokens)
    ]
    start = time.perf_counter()
    downtime = 0.0
    killed = False
    while not stop.is_set() and time.perf_counter() - start < duration:
        if all(t.done() for t in tasks):
            break
        if not killed and time.perf_counter() - start >= kill_at * duration:
            killed = True
            t_kill = time.perf_counter()
            server.kill9()
            server.start(wait=False)
            await asyncio.get_running_loop().run_in_executor(None, server.wait_ready)
            server.cpu_s -= server.cpu_now()  # the new process's start-up is not load
            downtime = time.perf_counter() - t_kill
        await asyncio.sleep(0.05)
    stop.set()
    elapsed = time.perf_counter() - start
    await asyncio.wait(tasks, timeout=30)
    for t in tasks:
        t.cancel()
    return stats, elapsed, downtime


class LapsedStats:
    def __init__(self):
        self.next_latencies: list[float] = []
        self.vote_latencies: list[float] = []
        self.acked: list[tuple[str, int, str, int]] = []
        self.refused: dict[int, int] = {}
        self.saved_without_next = 0
        self.finished = 0
        self.errors: list[str] = []


async def lapsed_annotator(
    k: int, token: str, port: int, stats: LapsedStats, stall: float, stop: asyncio.Event
) -> None:
    """One client of the lapsed-reservation shape on one keep-alive connection; ``stall`` >
    0: it holds every item that long before it answers (its reservation lapses)."""
    rng = np.random.default_rng(k)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = None
    try:
        while not stop.is_set():
            body = await next_item(
                reader, writer, token, port, body, stats.refused, stats.next_latencies
            )
            if body is None:
                continue
            if body.get("done"):
                stats.finished += 1
                return
            item_id = body["item"]["item_id"]
            if stall:
                await asyncio.sleep(stall)
            choice = str(int(rng.integers(0, 10)))
            vote = json.dumps(
                {
                    "item_id": item_id,
                    "choice": choice,
                    "unsure": False,
                    "response_time": stall or 0.3,
                }
            ).encode()
            t0 = time.perf_counter()
            status, answer = await http(reader, writer, "POST", "/api/vote", token, port, vote)
            stats.vote_latencies.append(time.perf_counter() - t0)
            if status == 201:
                stats.acked.append((token, item_id, choice, int(answer["vote_id"])))
                if answer.get("next_error") or (
                    answer.get("item") is None and not answer.get("done")
                ):
                    stats.saved_without_next += 1
                body = answer
            else:  # 409: others completed the item while the lease lapsed
                stats.refused[status] = stats.refused.get(status, 0) + 1
                body = None
    except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
        stats.errors.append(f"client {k}: {type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def lapsed_load(
    tokens: list[str], port: int, duration: float, stalled: float, stall: float
) -> tuple[LapsedStats, float]:
    stats, stop = LapsedStats(), asyncio.Event()
    n_stalled = round(stalled * len(tokens))
    tasks = [
        asyncio.create_task(
            lapsed_annotator(k, t, port, stats, stall if k < n_stalled else 0.0, stop)
        )
        for k, t in enumerate(tokens)
    ]
    start = time.perf_counter()
    await asyncio.wait(tasks, timeout=duration)
    elapsed = time.perf_counter() - start
    stop.set()
    await asyncio.wait(tasks, timeout=stall + 30)
    for t in tasks:
        t.cancel()
    return stats, elapsed


def stored_votes(db: str) -> list[tuple[str, int, str, int]]:
    query = (
        "SELECT a.token_sha256, v.item_id, v.choice, v.vote_id FROM votes v "
        "JOIN annotators a ON a.annotator_id = v.annotator_id"
    )
    if "://" in db:
        import psycopg

        with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://")) as conn:
            return [tuple(r) for r in conn.execute(query).fetchall()]
    with sqlite3.connect(db) as conn:
        return [tuple(r) for r in conn.execute(query).fetchall()]


def run_one(backend: str, args, src: Path, workdir: Path) -> dict:
    env = tool_env(src)
    study, digits = make_inputs(workdir, args.items)
    pg = None
    if backend == "postgres":
        sys.path.insert(0, str(ROOT / "src"))
        from soft_label_audit.annotation_tool.local_postgres import LocalPostgres

        pg = LocalPostgres(durable=True).start()
        db = pg.create_database("bench")
    else:
        db = str(workdir / "bench.db")
    server = None
    try:

        def tool(*a: str) -> str:
            done = subprocess.run(
                [*TOOL, *a, "--db", db],
                env=env,
                cwd=ROOT,
                text=True,
                capture_output=True,
                timeout=600,
            )
            if done.returncode:
                raise RuntimeError(f"{a[0]} failed: {done.stdout}{done.stderr}")
            return done.stdout

        lease = ["--lease-seconds", "1"] if args.load == "lapsed" else []
        tool(
            "init",
            "--study-items",
            str(study),
            "--digits",
            str(digits),
            "--votes-per-item",
            "3",
            "--attention-every",
            "10",
            *lease,
        )
        links = tool("add-annotator", "--count", str(args.annotators)).split()
        tokens = [link.rsplit("/", 1)[1] for link in links if "/a/" in link]
        server = Server(
            db, free_port(), env, workdir / f"serve-{backend}.log", args.threads, args.workers
        )
        server.start()
        if args.load == "lapsed":
            lapsed, elapsed = asyncio.run(
                lapsed_load(tokens, server.port, args.duration, args.stalled, args.stall)
            )
            server.stop()
            stored = stored_votes(db)
            deadlocks = None
            if pg is not None:
                log = pg.root / "server.log"
                deadlocks = log.read_text(errors="replace").count("deadlock detected")
            return lapsed_result(backend, args, lapsed, elapsed, stored, deadlocks)
        cpu_at_start = server.cpu_now()  # imports and start-up, not load
        client_cpu_at_start = time.process_time()
        stats, elapsed, downtime = asyncio.run(
            load(tokens, server, args.duration, args.max_votes, args.kill_at, args.rate)
        )
        client_cpu = time.process_time() - client_cpu_at_start
        server.stop()
        server_cpu = server.cpu_s - cpu_at_start
        out = workdir / f"export-{backend}.csv"
        checks = workdir / f"export-{backend}-checks.csv"
        keep_all = ["--min-attention-accuracy", "0"]
        if "--max-fast-share" in tool("export", "--help"):
            keep_all += ["--max-fast-share", "1"]  # these clients answer at once, on purpose
        tool("export", "--out", str(out), "--attention-out", str(checks), *keep_all)
        exported = len(pd.read_csv(out)) + len(pd.read_csv(checks))
        stored = stored_votes(db)
    finally:
        if server is not None:
            server.stop()
        if pg is not None:
            pg.stop()

    sha = {t: hashlib.sha256(t.encode()).hexdigest() for t in {a[0] for a in stats.acked}}
    acked = {(sha[t], i, c, v) for t, i, c, v in stats.acked}
    stored_set = set(stored)
    pairs = pd.Series([(s[0], s[1]) for s in stored]).value_counts()
    # study items are ids 0..items-1; the attention checks (spare ids above) have no quota
    per_item = pd.Series([s[1] for s in stored if s[1] < args.items]).value_counts()
    lat = np.array(stats.latencies) * 1000
    return {
        "backend": backend,
        "votes_per_s": len(stats.acked) / elapsed,
        "serving_votes_per_s": len(stats.acked) / max(elapsed - downtime, 1e-9),
        "server_cpu_ms_per_vote": 1000 * server_cpu / max(len(stats.acked), 1),
        "client_cpu_ms_per_vote": 1000 * client_cpu / max(len(stats.acked), 1),
        "wall_s": elapsed,
        "restart_s": downtime,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if len(lat) else float("nan"),
        "max_ms": float(lat.max()) if len(lat) else float("nan"),
        "acknowledged": len(stats.acked),
        "stored": len(stored),
        "exported": exported,
        "lost": len(acked - stored_set),
        "duplicated": int((pairs > 1).sum()) + (len(stats.acked) - len(acked)),
        "stored_unacknowledged": len(stored_set - acked),
        "in_flight_at_kill": stats.in_flight_lost,
        "over_quota_items": int((per_item > 3).sum()),
        "refused": dict(stats.refused),
    }


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def lapsed_result(
    backend: str,
    args,
    stats: LapsedStats,
    elapsed: float,
    stored: list[tuple[str, int, str, int]],
    deadlocks: int | None,
) -> dict:
    sha = {t: hashlib.sha256(t.encode()).hexdigest() for t in {a[0] for a in stats.acked}}
    acked = {(sha[t], i, c, v) for t, i, c, v in stats.acked}
    per_item = pd.Series([s[1] for s in stored if s[1] < args.items]).value_counts()
    return {
        "backend": backend,
        "wall_s": elapsed,
        "clients": args.annotators,
        "finished": stats.finished,
        "next_calls": len(stats.next_latencies),
        "next_over_1s": sum(x > 1 for x in stats.next_latencies),
        "next_p95_ms": _percentile(stats.next_latencies, 95),
        "next_max_ms": _percentile(stats.next_latencies, 100),
        "votes": len(stats.vote_latencies),
        "vote_p95_ms": _percentile(stats.vote_latencies, 95),
        "vote_max_ms": _percentile(stats.vote_latencies, 100),
        "acknowledged": len(stats.acked),
        "stored": len(stored),
        "lost": len(acked - set(stored)),
        "refused": dict(stats.refused),
        "saved_without_next": stats.saved_without_next,
        "over_quota_items": int((per_item > 3).sum()),
        "deadlocks": deadlocks,
        "errors": stats.errors,
    }


def print_lapsed(r: dict) -> bool:
    """Print one lapsed-shape result; True when it shows a failure."""
    b = r["backend"]
    print(
        f"\n[{b}] lapsed reservations: {r['finished']} of {r['clients']} clients finished in "
        f"{r['wall_s']:.1f} s; next-item (GET /api/next) {r['next_calls']} calls, p95 "
        f"{r['next_p95_ms']:.0f} ms, max {r['next_max_ms']:.0f} ms, {r['next_over_1s']} over "
        f"1 s; votes {r['votes']}, p95 {r['vote_p95_ms']:.0f} ms, max {r['vote_max_ms']:.0f} ms"
    )
    deadlocks = "n/a" if r["deadlocks"] is None else r["deadlocks"]
    print(
        f"[{b}] deadlocks in the server log {deadlocks}, items over quota "
        f"{r['over_quota_items']}, 503s {r['refused'].get(503, 0)}, votes saved without a "
        f"next item {r['saved_without_next']}, acknowledged {r['acknowledged']}, stored "
        f"{r['stored']}, lost {r['lost']}, refused {r['refused'] or 'none'}"
        + (f", client errors {r['errors'][:3]}" if r["errors"] else ""),
        flush=True,
    )
    return bool(
        r["lost"]
        or r["over_quota_items"]
        or r["deadlocks"]
        or r["finished"] < r["clients"]
        or r["refused"].get(503)
        or r["saved_without_next"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (max)")
    parser.add_argument("--max-votes", type=int, default=30_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered load in votes/s over all annotators (each on a fixed schedule, "
        "catching up after a delay); 0: every annotator votes as soon as the previous "
        "answer arrives",
    )
    parser.add_argument("--threads", type=int, help="serve --threads (default: serve's default)")
    parser.add_argument("--workers", type=int, help="serve --workers (default: serve's default)")
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.5,
        help="fraction of --duration at which the server gets SIGKILL",
    )
    parser.add_argument(
        "--src", type=Path, default=ROOT / "src", help="source tree of the tool under test"
    )
    parser.add_argument(
        "--load",
        choices=["throughput", "lapsed"],
        default="throughput",
        help="throughput: votes as fast as answered, kill -9 half-way; lapsed: 1 s leases, "
        "stalled clients (see the module docstring)",
    )
    parser.add_argument(
        "--stalled", type=float, default=0.3, help="lapsed: share of clients that stall"
    )
    parser.add_argument(
        "--stall", type=float, default=2.0, help="lapsed: seconds a stalled client holds an item"
    )
    args = parser.parse_args()
    if args.load == "lapsed":  # the shape's own defaults where none were given
        args.items = 300 if "--items" not in sys.argv else args.items
        args.annotators = 40 if "--annotators" not in sys.argv else args.annotators
    if (
        not 1 <= args.items <= 200_000
        or not 1 <= args.annotators <= 500
        or not 0 < args.duration <= 600
    ):
        parser.error("bounds: 1..200000 items, 1..500 annotators, duration up to 600 s")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    shape = (
        f"lapsed reservations (1 s lease, {args.stalled:.0%} of clients hold each item "
        f"{args.stall:g} s), until done or"
        if args.load == "lapsed"
        else f"{f'offering {args.rate:g} votes/s' if args.rate else 'each voting at once'},"
        f" kill -9 at {args.kill_at:.0%},"
    )
    print(
        f"annotation tool load test: {args.items} items, {args.annotators} annotators "
        f"({shape} up to {args.duration:g} s or {args.max_votes} votes), serve with "
        f"{' '.join(serve_flags(args.threads, args.workers)) or 'its defaults'}"
        f", tool from {args.src}, load average now "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    failed = False
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-annotate-{backend}-"))
        try:
            r = run_one(backend, args, args.src, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if args.load == "lapsed":
            failed |= print_lapsed(r)
            continue
        print(
            f"\n[{backend}] {r['votes_per_s']:.0f} votes/s over {r['wall_s']:.1f} s "
            f"(restart after kill -9 took {r['restart_s']:.1f} s; "
            f"{r['serving_votes_per_s']:.0f} votes/s while serving); vote latency p50 "
            f"{r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms"
        )
        print(
            f"[{backend}] server CPU per acknowledged vote {r['server_cpu_ms_per_vote']:.1f} ms "
            f"(start-ups excluded): one free core would serve about "
            f"{1000 / max(r['server_cpu_ms_per_vote'], 1e-9):.0f} votes/s; the load client "
            f"used {r['client_cpu_ms_per_vote']:.1f} ms per vote"
        )
        print(
            f"[{backend}] reconciliation: acknowledged {r['acknowledged']}, stored "
            f"{r['stored']}, exported {r['exported']}, lost {r['lost']}, duplicated "
            f"{r['duplicated']}, stored but unacknowledged {r['stored_unacknowledged']} "
            f"(requests in flight at the kill: {r['in_flight_at_kill']}), items over quota "
            f"{r['over_quota_items']}, refused {r['refused'] or 'none'}",
            flush=True,
        )
        failed |= bool(
            r["lost"]
            or r["duplicated"]
            or r["over_quota_items"]
            or r["exported"] != r["stored"]
            or r["stored_unacknowledged"] > r["in_flight_at_kill"]
        )
        misses = [
            what
            for what, ok in (
                (f"{r['votes_per_s']:.0f} votes/s over the run", r["votes_per_s"] >= TARGET_RATE),
                (f"p95 {r['p95_ms']:.0f} ms", r["p95_ms"] < TARGET_P95_MS),
                (f"{r['lost']} lost", r["lost"] == 0),
                (f"{r['duplicated']} duplicated", r["duplicated"] == 0),
            )
            if not ok
        ]
        print(
            f"[{backend}] target (at least {TARGET_RATE} votes/s over the whole run, kill -9 "
            f"included, p95 under {TARGET_P95_MS} ms, 0 lost, 0 duplicated): "
            + ("met" if not misses else "not met: " + ", ".join(misses)),
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
