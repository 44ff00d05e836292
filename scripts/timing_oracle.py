#!/usr/bin/env python3
"""Is there a timing oracle for existence? (issue 16, item 4)

Starts a dev node (release build, free loopback port, temporary data), issues bills,
then sends, over one keep-alive connection and in a random interleaving, two kinds of
GET /v1/bills/{code}/{number}?check_code=... that both answer the same 404:

  wrong    a bill on chain, with a wrong check code (a new random one each time)
  unknown  a bill number never issued (same code), with a random check code

Both kinds follow the same pattern, so that only existence differs between them:

  repeated  one bill on chain and one number never issued, each asked again and again
  fresh     a different bill on chain and a different unknown number for every request
            (--requests + --warmup bills are issued first)

and reports, per pattern and run: the median time of each kind, their difference
(wrong - unknown), the p-value of a two-sided permutation test of that difference (the
kinds' labels shuffled), and how often the best single threshold on one request's time
tells the kinds apart (50% is chance).

  scripts/timing_oracle.py [--build] [--patterns repeated,fresh] [--runs 3]
                           [--requests 2000] [--permutations 5000]

Only 127.0.0.1, only the node it starts; bounded by patterns x runs x 2 x (requests +
warmup) requests. Python 3 stdlib only; binaries as in scripts/devnode.py.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import devnode  # noqa: E402

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def random_check_code(rng, avoid):
    while True:
        c = "".join(rng.choice(ALPHABET) for _ in range(6))
        if c != avoid:
            return c


def permutation_p(a, b, observed, permutations, rng):
    """Two-sided p-value of a difference of medians at least `observed` under random
    relabelling of the pooled samples."""
    pooled = a + b
    n = len(a)
    hits = 0
    for _ in range(permutations):
        rng.shuffle(pooled)
        d = statistics.median(pooled[:n]) - statistics.median(pooled[n:])
        if abs(d) >= abs(observed):
            hits += 1
    return (hits + 1) / (permutations + 1)


def threshold_accuracy(a, b):
    """Best accuracy of "slower than t means `a`" over every threshold t, with equal
    numbers of each kind (0.5 is chance). Symmetric: also tries the other direction."""
    marked = sorted([(x, 1) for x in a] + [(x, 0) for x in b])
    na, nb = len(a), len(b)
    best = 0.5
    a_below = b_below = 0
    for _, kind in marked:
        if kind:
            a_below += 1
        else:
            b_below += 1
        # Below or at t: called `b`; above: called `a`.
        acc = 0.5 * (b_below / nb + (na - a_below) / na)
        best = max(best, acc, 1 - acc)
    return best


def one_run(port, code, present, check_codes, pattern, requests, warmup, rng):
    """`present`: bill numbers on chain, with `check_codes` (never sent)."""
    conn = devnode.KeepAlive(port)
    conn.connect()
    top = max(int(n) for n in present)
    fixed_unknown = f"{rng.randrange(top + 1_000, 9_999_999_999):010d}"
    kinds = ["wrong"] * requests + ["unknown"] * requests
    rng.shuffle(kinds)
    kinds = ["wrong", "unknown"] * warmup + kinds
    fresh_present = iter(rng.sample(present, len(present)))
    seen_unknown = set()
    times = {"wrong": [], "unknown": []}
    bodies = set()
    for i, kind in enumerate(kinds):
        if kind == "wrong":
            n = present[0] if pattern == "repeated" else next(fresh_present)
        elif pattern == "repeated":
            n = fixed_unknown
        else:
            while True:
                n = f"{rng.randrange(top + 1_000, 9_999_999_999):010d}"
                if n not in seen_unknown:
                    seen_unknown.add(n)
                    break
        cc = random_check_code(rng, check_codes.get(n))
        raw = devnode.get_request(f"/v1/bills/{code}/{n}?check_code={cc}")
        t0 = time.perf_counter_ns()
        status, body = conn.request(raw)
        t1 = time.perf_counter_ns()
        if status != 404:
            sys.exit(f"expected 404, got {status}: {body[:200]!r}")
        bodies.add(body)
        if i >= 2 * warmup:
            times[kind].append((t1 - t0) / 1000.0)
    conn.close()
    if len(bodies) != 1:
        sys.exit(f"the two kinds answered different bodies: {bodies}")
    return times["wrong"], times["unknown"]


def issue_bills(node, count):
    """Issues `count` bills (numbers 1..count) in one batch; returns {number: check}."""
    path = os.path.join(node.dir, "bills.jsonl")
    with open(os.path.join(devnode.ROOT, "genesis", "examples", "bill.json")) as f:
        bill = json.load(f)
    with open(path, "w") as f:
        for n in range(1, count + 1):
            bill["number"] = f"{n:010d}"
            f.write(json.dumps(bill, ensure_ascii=False) + "\n")
    keys = node.dev_keys()
    out = node.ebill("issue", "--key", os.path.join(keys, "issuer.key"), "--now",
                     "--batch", path)
    codes = {r["number"]: r["check_code"] for r in out["results"] if "check_code" in r}
    if len(codes) != count:
        sys.exit(f"issued {len(codes)} of {count} bills")
    return bill["code"], codes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="store_true", help="cargo build --release first")
    ap.add_argument("--patterns", default="repeated,fresh")
    ap.add_argument("--runs", type=int, default=3, help="per pattern")
    ap.add_argument("--requests", type=int, default=2000, help="of each kind, per run")
    ap.add_argument("--warmup", type=int, default=200, help="pairs before each run, not counted")
    ap.add_argument("--permutations", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--json", action="store_true", help="also print one JSON line per run")
    args = ap.parse_args()
    if args.build:
        devnode.build()
    rng = random.Random(args.seed)
    patterns = args.patterns.split(",")
    rows = []
    with devnode.DevNode() as node:
        count = args.requests + args.warmup if "fresh" in patterns else 1
        code, check_codes = issue_bills(node, count)
        present = sorted(check_codes)
        print(f"node {node.url}, {count} bills on chain under code {code}", flush=True)
        for pattern in patterns:
            for run in range(1, args.runs + 1):
                wrong, unknown = one_run(node.port, code, present, check_codes, pattern,
                                         args.requests, args.warmup, rng)
                mw, mu = statistics.median(wrong), statistics.median(unknown)
                diff = mw - mu
                p = permutation_p(wrong, unknown, diff, args.permutations, rng)
                acc = threshold_accuracy(wrong, unknown)
                row = {
                    "pattern": pattern,
                    "run": run,
                    "requests_per_kind": len(wrong),
                    "median_wrong_us": round(mw, 2),
                    "median_unknown_us": round(mu, 2),
                    "diff_us": round(diff, 2),
                    "p_value": round(p, 4),
                    "one_request_accuracy": round(acc, 3),
                    "deciles_wrong_us": [round(x, 1) for x in statistics.quantiles(wrong, n=10)],
                    "deciles_unknown_us": [round(x, 1) for x in statistics.quantiles(unknown, n=10)],
                }
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
    print()
    print("| pattern | run | requests/kind | median wrong check code (µs) | median unknown bill (µs) "
          "| difference (µs) | permutation p | one-request accuracy |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['pattern']} | {r['run']} | {r['requests_per_kind']} | {r['median_wrong_us']:.1f} "
              f"| {r['median_unknown_us']:.1f} | {r['diff_us']:+.2f} | {r['p_value']:.4f} "
              f"| {100 * r['one_request_accuracy']:.1f}% |")


if __name__ == "__main__":
    main()
