#!/usr/bin/env python3
"""Does the public API hold under abuse? (issue 16, item 6)

Starts a dev node (release build, free loopback port, temporary data), issues bills to
verify, then runs phases of --phase-s seconds each (by default a baseline before each
attack):

  baseline   the well-behaved verifier alone
  flood      + 10,000 TCP connections opened as fast as the node takes them, held idle
  slowloris  + 1,000 sockets each sending a request head one byte a second
               (reconnecting, after a second, when cut off)
  malformed  + a burst of malformed requests (bad request lines, bad headers,
               oversize heads, bad lengths, bodies that are not JSON, lone surrogates,
               bad credit codes), as fast as the node answers, at most
               --malformed-requests

In every phase a well-behaved verifier (--good-threads threads from 127.0.0.2, each
with a keep-alive connection, --good-rate requests/s in total) asks for verdicts of
bills on chain, and an issuing load (`ebill issue --batch`, from 127.0.0.1, --load-rate
bills/s) keeps submitting bills; the attacks come from 127.66.0.1 (--attack-sources N
spreads them over N addresses of 127.66.0.0/16). The table shows, per phase, the
verifier's latency percentiles and errors, the chain height at the start and end (it
must grow), the node's CPU time, and what the attack saw. Exit status 1 if a phase had
a verifier error or no new block.

  scripts/abuse.py [--build] [--phase-s 15] [--http key=value ...] [--json]

Only loopback, only the node it starts; every attack is bounded in count and time and
runs in a child process that is stopped with the phase. Python 3 stdlib only; the
file-descriptor limit is raised to the hard limit for the attacks and the node.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import devnode  # noqa: E402

GOOD_SOURCE = "127.0.0.2"
BILLS_TO_VERIFY = 200


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def attack_sources(n):
    return [f"127.66.{i // 250}.{i % 250 + 1}" for i in range(n)]


# ---------------------------------------------------------------- attacks (child) --


async def open_conn(port, source):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def flood(port, sources, duration_s, connections, stats):
    """Opens `connections` connections (at most 500 connecting at once), holds each
    until the server closes it or the phase ends."""
    end = time.monotonic() + duration_s
    sem = asyncio.Semaphore(500)

    async def one(i):
        async with sem:
            if time.monotonic() > end:
                return
            try:
                r, w = await asyncio.wait_for(open_conn(port, sources[i % len(sources)]), 5)
            except (OSError, asyncio.TimeoutError):
                stats["connect_failed"] += 1
                return
        stats["opened"] += 1
        opened = time.monotonic()
        try:
            data = await asyncio.wait_for(r.read(4096), max(0.0, end - time.monotonic()))
            if data.startswith(b"HTTP/1.1 503"):
                stats["refused_503"] += 1
            else:
                stats["closed_by_server"] += 1
                stats["held_s"].append(time.monotonic() - opened)
        except asyncio.TimeoutError:
            stats["still_open_at_end"] += 1
        except OSError:
            stats["reset"] += 1
        finally:
            w.close()

    tasks = [asyncio.create_task(one(i)) for i in range(connections)]
    await asyncio.gather(*tasks, return_exceptions=True)


async def slowloris(port, sources, duration_s, sockets, stats):
    """`sockets` connections, each sending a request head one byte a second; when cut
    off, waits a second and starts again, until the phase ends."""
    end = time.monotonic() + duration_s
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-a: " + b"b" * 4000

    async def one(i):
        while time.monotonic() < end:
            try:
                r, w = await asyncio.wait_for(open_conn(port, sources[i % len(sources)]), 5)
            except (OSError, asyncio.TimeoutError):
                stats["connect_failed"] += 1
                await asyncio.sleep(1)
                continue
            stats["opened"] += 1
            opened = time.monotonic()
            cut = False
            reader = asyncio.create_task(r.read(4096))
            try:
                for b in head:
                    if time.monotonic() >= end:
                        break
                    if reader.done():
                        cut = True
                        break
                    w.write(bytes([b]))
                    await w.drain()
                    stats["bytes_sent"] += 1
                    await asyncio.sleep(1)
                else:
                    stats["head_completed"] += 1
            except OSError:
                cut = True
            if cut:
                data = reader.result() if reader.done() and not reader.exception() else b""
                if data.startswith(b"HTTP/1.1 503"):
                    stats["refused_503"] += 1
                else:
                    stats["cut_off"] += 1
                    stats["held_s"].append(time.monotonic() - opened)
            reader.cancel()
            w.close()
            if cut:
                await asyncio.sleep(1)

    await asyncio.gather(*(one(i) for i in range(sockets)), return_exceptions=True)


def malformed_requests():
    long_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: 1\r\n" % i for i in range(200)
    ) + b"\r\n"

    def post(path, body, ctype=b"application/json", length=None):
        n = len(body) if length is None else length
        return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype
                + b"\r\nContent-Length: " + str(n).encode() + b"\r\n\r\n" + body)

    bad_code = json.dumps({"tx": {"nonce": 0, "body": {"type": "lock", "unit": "12330100MB0000001X",
                          "bill": {"code": "33010126", "number": "0000000001"},
                          "check_code": "abcdef"}}, "auth": {"unit": "00" * 64}}).encode()
    return [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS hello
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /v1/bills/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/bills/%ff%fe/1?check_code=%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST /v1/txs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        long_head,
        many,
        post(b"/v1/txs", b"{\"tx\": "),
        post(b"/v1/txs", b"not json at all"),
        post(b"/v1/txs", b"{\"tx\": {\"nonce\": 0}, \"auth\": {\"unit\": \"\\ud800\"}}"),
        post(b"/v1/verify", b"[" * 5000),
        post(b"/v1/verify", b"{}", ctype=b"text/plain"),
        post(b"/v1/txs", bad_code),
        post(b"/v1/txs/batch", b"{\"txs\": [1, 2, {\"a\": \"\\udc00\"}]}"),
    ]


async def malformed(port, sources, duration_s, limit, stats):
    """32 connections sending malformed requests back to back, reconnecting whenever the
    server closes, until `limit` requests or the phase ends."""
    end = time.monotonic() + duration_s
    reqs = malformed_requests()
    counter = {"n": 0}

    async def one(i):
        while time.monotonic() < end and counter["n"] < limit:
            try:
                r, w = await asyncio.wait_for(open_conn(port, sources[i % len(sources)]), 5)
            except (OSError, asyncio.TimeoutError):
                stats["connect_failed"] += 1
                await asyncio.sleep(0.1)
                continue
            try:
                while time.monotonic() < end and counter["n"] < limit:
                    req = reqs[counter["n"] % len(reqs)]
                    counter["n"] += 1
                    stats["sent"] += 1
                    w.write(req)
                    await w.drain()
                    # The answer's status line (or the close); the short-bodied one
                    # waits for the body timeout, so bound the wait by the phase.
                    line = await asyncio.wait_for(r.readline(), max(0.1, end - time.monotonic()))
                    if not line:
                        stats["closed"] += 1
                        break
                    parts = line.split()
                    status = parts[1].decode() if len(parts) > 1 else "?"
                    stats["status_" + status] = stats.get("status_" + status, 0) + 1
                    # Skip the rest of the answer: headers, then the body by length.
                    length = 0
                    close = False
                    while True:
                        h = await r.readline()
                        if h in (b"\r\n", b""):
                            break
                        name, _, value = h.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value.strip())
                        if name.strip().lower() == b"connection" and b"close" in value.lower():
                            close = True
                    if length:
                        await r.readexactly(length)
                    if close:
                        stats["closed"] += 1
                        break
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
                stats["closed"] += 1
            finally:
                w.close()

    await asyncio.gather(*(one(i) for i in range(32)), return_exceptions=True)


def run_attack(kind, port, sources, duration_s, amount, out_path):
    raise_nofile()
    stats = {
        k: 0
        for k in ["opened", "connect_failed", "refused_503", "closed_by_server", "reset",
                  "still_open_at_end", "cut_off", "bytes_sent", "head_completed", "sent",
                  "closed"]
    }
    stats["held_s"] = []
    fn = {"flood": flood, "slowloris": slowloris, "malformed": malformed}[kind]
    try:
        asyncio.run(asyncio.wait_for(fn(port, sources, duration_s, amount, stats), duration_s + 10))
    except asyncio.TimeoutError:
        stats["overran"] = 1
    ru = resource.getrusage(resource.RUSAGE_SELF)
    stats["attacker_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 1)
    held = stats.pop("held_s")
    if held:
        stats["held_median_s"] = round(statistics.median(held), 2)
        stats["held_max_s"] = round(max(held), 2)
    stats = {k: v for k, v in stats.items() if v}
    with open(out_path, "w") as f:
        json.dump(stats, f)


# ------------------------------------------------------------------ the verifier --


class Verifier:
    """`threads` threads, each with a keep-alive connection from GOOD_SOURCE, asking for
    verdicts at `rate` requests/s in total (each thread paced on its own schedule)."""

    def __init__(self, port, bills, threads, rate):
        self.port = port
        self.reqs = [devnode.get_request(f"/v1/bills/{c}/{n}?check_code={k}") for c, n, k in bills]
        self.threads = threads
        self.interval = threads / rate
        self.lock = threading.Lock()
        self.samples = []
        self.errors = []
        self.stop = threading.Event()
        self.workers = []

    def start(self):
        for i in range(self.threads):
            t = threading.Thread(target=self.run, args=(i,), daemon=True)
            t.start()
            self.workers.append(t)

    def run(self, i):
        conn = devnode.KeepAlive(self.port, source=GOOD_SOURCE, timeout_s=10)
        rng = random.Random(i)
        next_at = time.monotonic() + rng.random() * self.interval
        while not self.stop.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += self.interval
            raw = rng.choice(self.reqs)
            t0 = time.perf_counter()
            try:
                status, body = conn.request(raw)
                dt = (time.perf_counter() - t0) * 1000
                ok = status == 200 and b'"authentic":true' in body
            except OSError as e:
                dt, ok, status = (time.perf_counter() - t0) * 1000, False, repr(e)
            with self.lock:
                if ok:
                    self.samples.append(dt)
                else:
                    self.errors.append(status)
        conn.close()

    def take(self):
        with self.lock:
            s, e = self.samples, self.errors
            self.samples, self.errors = [], []
        return s, e

    def finish(self):
        self.stop.set()
        for t in self.workers:
            t.join(15)


def percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ---------------------------------------------------------------- issuing load ----


class IssuingLoad:
    """Issues bills in batches of `batch` with `ebill issue --batch`, at most `rate`
    bills/s, until stopped."""

    def __init__(self, node, first_number, batch, rate):
        self.node = node
        self.next = first_number
        self.batch = batch
        self.interval = batch / rate
        self.stop = threading.Event()
        self.issued = 0
        self.failures = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        keys = self.node.dev_keys()
        path = os.path.join(self.node.dir, "load.jsonl")
        next_at = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            next_at = max(next_at + self.interval, time.monotonic() - self.interval)
            write_bills(path, self.next, self.batch)
            self.next += self.batch
            out = subprocess.run(
                [devnode.binary("ebill"), "--node", self.node.url, "--json", "issue",
                 "--key", os.path.join(keys, "issuer.key"), "--now", "--batch", path],
                capture_output=True, text=True, timeout=120,
            )
            if out.returncode == 0:
                self.issued += self.batch
            else:
                self.failures += 1
                time.sleep(0.5)


def write_bills(path, first, count):
    with open(os.path.join(devnode.ROOT, "genesis", "examples", "bill.json")) as f:
        bill = json.load(f)
    with open(path, "w") as f:
        for n in range(first, first + count):
            bill["number"] = f"{n:010d}"
            f.write(json.dumps(bill, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------ main ----


def height(node):
    return node.get_json("/v1/status")["height"]


def cpu_s(pid):
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="store_true", help="cargo build --release first")
    ap.add_argument("--phase-s", type=float, default=15.0)
    ap.add_argument("--flood-connections", type=int, default=10_000)
    ap.add_argument("--slowloris-sockets", type=int, default=1_000)
    ap.add_argument("--malformed-requests", type=int, default=50_000)
    ap.add_argument("--attack-sources", type=int, default=1)
    ap.add_argument("--good-threads", type=int, default=2)
    ap.add_argument("--good-rate", type=float, default=200.0, help="verdicts/s in total")
    ap.add_argument("--load-batch", type=int, default=200, help="bills per ebill issue --batch")
    ap.add_argument("--load-rate", type=float, default=1000.0, help="bills/s the issuing load submits")
    ap.add_argument("--http", action="append", default=[], metavar="KEY=VALUE",
                    help="a key of the node config's [http] table (repeatable)")
    ap.add_argument("--phases", default="baseline,flood,baseline,slowloris,baseline,malformed",
                    help="in order; each attack is compared with the baseline before it")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.build:
        devnode.build()
    nofile = raise_nofile()
    sources = attack_sources(args.attack_sources)
    config = ""
    if args.http:
        config = "[http]\n" + "".join(f"{kv.split('=', 1)[0]} = {kv.split('=', 1)[1]}\n" for kv in args.http)
    amounts = {
        "flood": args.flood_connections,
        "slowloris": args.slowloris_sockets,
        "malformed": args.malformed_requests,
    }
    rows = []
    with devnode.DevNode(config_toml=config) as node:
        print(f"node {node.url}, file descriptors {nofile}, attacks from {sources[0]}"
              + (f"..{sources[-1]}" if len(sources) > 1 else ""), flush=True)
        keys = node.dev_keys()
        path = os.path.join(node.dir, "verify.jsonl")
        write_bills(path, 1, BILLS_TO_VERIFY)
        out = node.ebill("issue", "--key", os.path.join(keys, "issuer.key"), "--now", "--batch", path)
        bills = [(r["code"], r["number"], r["check_code"]) for r in out["results"] if "check_code" in r]
        if len(bills) != BILLS_TO_VERIFY:
            sys.exit(f"issued {len(bills)} of {BILLS_TO_VERIFY} bills to verify")
        verifier = Verifier(node.port, bills, args.good_threads, args.good_rate)
        load = IssuingLoad(node, 1_000_000, args.load_batch, args.load_rate)
        verifier.start()
        load.thread.start()
        time.sleep(2)  # warm-up, not counted
        verifier.take()
        ctx = multiprocessing.get_context("spawn")
        try:
            for phase in args.phases.split(","):
                h0, issued0, cpu0 = height(node), load.issued, cpu_s(node.proc.pid)
                attack_stats = {}
                proc = None
                out_path = os.path.join(node.dir, f"{phase}.json")
                t0 = time.monotonic()
                if phase != "baseline":
                    proc = ctx.Process(target=run_attack, args=(
                        phase, node.port, sources, args.phase_s, amounts[phase], out_path))
                    proc.start()
                time.sleep(args.phase_s)
                samples, errors = verifier.take()
                h1, cpu1 = height(node), cpu_s(node.proc.pid)
                if proc is not None:
                    proc.join(30)
                    if proc.is_alive():
                        proc.terminate()
                        proc.join(10)
                    if os.path.exists(out_path):
                        with open(out_path) as f:
                            attack_stats = json.load(f)
                elapsed = time.monotonic() - t0
                row = {
                    "phase": phase,
                    "verdicts": len(samples),
                    "errors": len(errors),
                    "p50_ms": round(percentile(samples, 0.50), 2),
                    "p99_ms": round(percentile(samples, 0.99), 2),
                    "max_ms": round(max(samples), 2) if samples else None,
                    "height": [h0, h1],
                    "bills_issued": load.issued - issued0,
                    "node_cpu_s": round(cpu1 - cpu0, 1),
                    "seconds": round(elapsed, 1),
                    "attack": attack_stats,
                }
                if errors:
                    row["error_kinds"] = sorted({str(e) for e in errors})[:5]
                rows.append(row)
                print(json.dumps(row) if args.json else
                      f"{phase}: {len(samples)} verdicts, p99 {row['p99_ms']} ms, "
                      f"height {h0} -> {h1}, attack {attack_stats}", flush=True)
        finally:
            verifier.finish()
            load.stop.set()
            load.thread.join(130)
    print()
    print("| phase | verdicts | errors | p50 (ms) | p99 (ms) | max (ms) | p99 / baseline "
          "| height start → end | bills issued | node CPU (s) | what the attack saw |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    base = None
    for r in rows:
        # Against the baseline measured last before it (the machine drifts).
        if r["phase"] == "baseline":
            base = r
        ratio = (f"{r['p99_ms'] / base['p99_ms']:.2f}" if base and base["p99_ms"] else "")
        seen = ", ".join(f"{k} {v}" for k, v in r["attack"].items())
        print(f"| {r['phase']} | {r['verdicts']} | {r['errors']} | {r['p50_ms']} | {r['p99_ms']} "
              f"| {r['max_ms']} | {ratio} | {r['height'][0]} → {r['height'][1]} "
              f"| {r['bills_issued']} | {r['node_cpu_s']} | {seen} |")
        if r["height"][1] <= r["height"][0] or r["errors"]:
            ok = False
    if not ok:
        print("\nFAILED: a phase had verifier errors or no new block")
        sys.exit(1)


if __name__ == "__main__":
    main()
