#!/usr/bin/env python3
"""verify.py FILE --genesis GENESIS: verify a proof bundle (v1 or v2, JSON or binary) or
an absence proof offline, as `ebill verify-proof` does, from docs/spec alone.

Prints one JSON object: {"valid": true, "kind": ..., ...facts} or {"valid": false,
"link": CODE, "entry": N|null, "reason": ...}. Exit 0 only if every link holds, 1 if a
link broke, 2 on a usage error or an unreadable genesis.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ebill_spec import model  # noqa: E402
from ebill_spec.verify import Broken, verify_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--genesis", required=True)
    ap.add_argument("--witnesses", type=int, default=0,
                    help="require this many co-signatures of distinct regulators' observers")
    args = ap.parse_args()
    try:
        with open(args.genesis, encoding="utf-8") as f:
            genesis = model.genesis_from_json(f.read())
    except (OSError, model.Invalid) as e:
        print(json.dumps({"error": f"genesis: {e}"}))
        return 2
    with open(args.file, "rb") as f:
        data = f.read()
    try:
        kind, facts = verify_file(data, genesis)
    except Broken as e:
        print(json.dumps({"valid": False, "link": e.link, "entry": e.entry, "reason": e.reason},
                         ensure_ascii=False))
        return 1
    if kind == "bundle" and args.witnesses:
        w = facts["witnesses"]
        if w is None or len(w["counted"]) < args.witnesses:
            n = 0 if w is None else len(w["counted"])
            print(json.dumps({"valid": False, "link": "witnesses", "entry": None,
                              "reason": f"{args.witnesses} witnesses required, {n} counted"}))
            return 1
    if kind == "bundle":
        out = {"valid": True, "kind": kind, "status": facts["status"], "height": facts["height"],
               "state_height": facts["state_height"], "check_code": facts["check_code"],
               "issuer": facts["issuer"]["credit_code"],
               "witnesses": None if facts["witnesses"] is None else facts["witnesses"]["counted"],
               "history": [{"action": s["action"], "by": s["by"], "height": s["height"]}
                           for s in facts["history"]]}
    else:
        out = {"valid": True, "kind": kind, "bill": {"code": facts["bill"][0], "number": facts["bill"][1]},
               "height": facts["height"]}
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
