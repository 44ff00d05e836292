"""Verifying proof bundles (docs/spec/proof-bundle.md) and absence proofs
(docs/spec/absence.md) against a genesis, and reading both forms of each."""

from .codec import DecodeError, Decoder, Encoder
from . import ed25519, merkle, model, state_tree
from .model import Invalid

MAX_BUNDLE_BYTES = 32 * 1024 * 1024
MAX_ABSENCE_BYTES = 256 * 1024
MAX_STATE_BYTES = 16 * 1024
MAX_WITNESSES = 256
MAX_ENTRIES = 1024
MAX_BILL_HISTORY = 64


class Broken(Exception):
    """A link of the proof does not hold: `link` is its code (proof-bundle.md section 4)."""

    def __init__(self, link, reason, entry=None):
        super().__init__(f"{link}: {reason}")
        self.link, self.reason, self.entry = link, reason, entry


def _first_byte(data):
    for b in data:
        if b not in b" \t\n\r\x0c":
            return b
    return None


def is_absence(data):
    if _first_byte(data) == ord("{"):
        if len(data) > MAX_ABSENCE_BYTES:
            return False
        try:
            obj = model.loads(data.decode("utf-8"))
        except (Invalid, UnicodeError, RecursionError):
            return False
        return isinstance(obj, dict) and obj.get("kind") == "absence"
    return data.startswith(Encoder("ebill/absence/v1").finish())


# ----- reading bundles (sections 2, 3) -----


def _state_from_json(v):
    o = model.fields(v, ["header", "certificate", "record", "proof"], what="state")
    return {"header": model.header_from_json(o["header"]),
            "certificate": model.certificate_from_json(o["certificate"]),
            "record": model.hex_bytes(o["record"], None, "record"),
            "proof": model.hex_bytes(o["proof"], None, "proof")}


def bundle_from_json(text):
    o = model.fields(model.loads(text), ["version", "chain_id", "genesis_hash", "bill", "entries"],
                     ["state", "witnesses"], what="bundle")
    if not isinstance(o["entries"], list):
        raise Invalid("entries is not a list")
    entries = []
    for e in o["entries"]:
        e = model.fields(e, ["tx", "proof", "header", "certificate"], what="entry")
        entries.append({"tx": model.signed_tx_from_json(e["tx"]),
                        "proof": model.inclusion_from_json(e["proof"]),
                        "header": model.header_from_json(e["header"]),
                        "certificate": model.certificate_from_json(e["certificate"])})
    state = o.get("state")
    ws = o.get("witnesses", [])
    if not isinstance(ws, list):
        raise Invalid("witnesses is not a list")
    witnesses = []
    for w in ws:
        w = model.fields(w, ["key_id", "signature"], what="co-signature")
        witnesses.append((model.hex_bytes(w["key_id"], 4, "key_id"), model.hex_bytes(w["signature"], 64, "signature")))
    return {"version": model.integer(o["version"], 32, "version"), "witnesses": witnesses,
            "chain_id": model.string(o["chain_id"], "chain_id"),
            "genesis_hash": model.hex_bytes(o["genesis_hash"], 32, "genesis_hash"),
            "bill": model.bill_id(o["bill"]), "entries": entries,
            "state": None if state is None else _state_from_json(state)}


def _decode_entry(d):
    raw = d.bytes(model.MAX_TX_BYTES, "transaction")
    tx = _decode_exactly(raw, model.decode_signed_tx)
    return {"tx": tx, "proof": model.decode_inclusion(d), "header": model.decode_header(d),
            "certificate": model.decode_certificate(d)}


def _decode_exactly(raw, f):
    d = Decoder(raw)
    v = f(d)
    d.finish()
    return v


def _decode_state(d):
    return {"header": model.decode_header(d), "certificate": model.decode_certificate(d),
            "record": d.bytes(MAX_STATE_BYTES, "state record"),
            "proof": d.bytes(MAX_STATE_BYTES, "state proof")}


def bundle_from_bytes(data):
    d = Decoder(data)
    d.domain("ebill/proof/v1")
    version = d.u32("version")
    if version not in (1, 2, 3):
        raise DecodeError(f"bundle version {version}")
    b = {"version": version, "chain_id": d.text(64, "chain id"), "genesis_hash": d.take(32),
         "bill": model.decode_bill_id(d),
         "entries": d.seq(MAX_ENTRIES, _decode_entry, "proof entries")}
    b["state"] = d.option(_decode_state, "state evidence") if version >= 2 else None
    b["witnesses"] = (d.seq(MAX_WITNESSES, lambda d: (d.take(4, "key id"), d.take(64, "signature")), "witnesses")
                      if version == 3 else [])
    d.finish()
    return b


def read_bundle(data):
    if len(data) > MAX_BUNDLE_BYTES:
        raise Broken("decode", "bundle over 32 MiB")
    try:
        if _first_byte(data) == ord("{"):
            return bundle_from_json(data.decode("utf-8"))
        return bundle_from_bytes(data)
    except (Invalid, DecodeError, UnicodeError, RecursionError) as e:
        raise Broken("decode", str(e)) from None


# ----- verifying bundles (section 4) -----


def verify_bundle(b, g):
    """Returns the accepted facts (section 5) or raises Broken."""
    if b["version"] not in (1, 2, 3):
        raise Broken("version", f"bundle version {b['version']}")
    if b["version"] == 1 and b["state"] is not None:
        raise Broken("version", "a version 1 bundle carries no state proof")
    if b["version"] >= 2 and b["state"] is None:
        raise Broken("state_proof", f"a version {b['version']} bundle must carry the bill's state proof")
    if b["version"] != 3 and b["witnesses"]:
        raise Broken("version", f"a version {b['version']} bundle carries no witnesses")
    if len(b["witnesses"]) > MAX_WITNESSES:
        raise Broken("decode", "too many co-signatures")
    if b["genesis_hash"] != model.genesis_hash(g):
        raise Broken("genesis_hash", "bundle is for another genesis")
    chain = g["chain_id"]
    if b["chain_id"] != chain:
        raise Broken("chain_id", "bundle names another chain")
    vkeys = [k for _, k in g["validators"]]
    vset = model.validator_set_hash(g)
    entries = b["entries"]
    if not entries:
        raise Broken("issue_bill", "the bundle proves no transaction")
    if len(entries) > MAX_ENTRIES:
        raise Broken("decode", "too many entries")
    hashes = []
    for i, e in enumerate(entries):
        h = e["header"]
        if h["chain_id"] != chain:
            raise Broken("header_chain_id", "header names another chain", i)
        if h["validator_set_hash"] != vset:
            raise Broken("validator_set", "header names another validator set", i)
        p = e["proof"]
        if p["tree_size"] != h["tx_count"]:
            raise Broken("merkle_path", "tree size is not the block's transaction count", i)
        leaf = merkle.leaf_hash(model.encode_signed_tx(e["tx"]))
        if merkle.root_from_path(leaf, p["leaf_index"], p["tree_size"], p["path"]) != h["tx_root"]:
            raise Broken("merkle_path", "path does not lead to the header's tx_root", i)
        bh = model.block_hash(h)
        if e["certificate"]["height"] != h["height"] or e["certificate"]["block"] != bh:
            raise Broken("certificate", "certificate is for another block", i)
        hashes.append(bh)
    for i in range(1, len(entries)):
        a = (entries[i - 1]["header"]["height"], entries[i - 1]["proof"]["leaf_index"])
        c = (entries[i]["header"]["height"], entries[i]["proof"]["leaf_index"])
        if a >= c:
            raise Broken("entry_order", "entries are not in chain order", i)
    for i, e in enumerate(entries):
        try:
            model.verify_certificate(e["certificate"], chain, e["header"]["height"], hashes[i], vkeys)
        except Invalid as err:
            raise Broken("certificate", str(err), i) from None
    replay = _Replay(b, g)
    for i, e in enumerate(entries):
        replay.entry(i, e, hashes[i])
    if replay.signed is None:
        raise Broken("issue_bill", "the bundle holds no IssueBill of the bill")
    height = max(e["header"]["height"] for e in entries)
    state_height = None
    if b["state"] is not None:
        _check_state(b, g, vkeys, vset, replay, height)
        state_height = b["state"]["header"]["height"]
        height = max(height, state_height)
    witnesses = check_witnesses(b["state"]["header"], b["witnesses"], g) if b["version"] == 3 else None
    return {"status": replay.status[0], "status_detail": replay.status, "history": replay.history,
            "height": height, "state_height": state_height, "issuer": replay.issuer,
            "check_code": model.check_code(replay.signed), "witnesses": witnesses}


def checkpoint_signing_bytes(chain_id, height, block_hash, state_root):
    """checkpoint.md section 1."""
    return (Encoder("ebill/cosignature/v1").text(chain_id).u64(height)
            .fixed(block_hash, 32).fixed(state_root, 32).finish())


def check_witnesses(header, cosigs, g):
    """checkpoint.md section 2 and proof-bundle.md: which co-signatures of the state
    header's checkpoint count. A co-signature never makes a bundle invalid; it counts,
    or is refused with unknown_witness, bad_signature or duplicate."""
    msg = checkpoint_signing_bytes(g["chain_id"], header["height"], model.block_hash(header), header["state_root"])
    witnesses = {model.witness_key_id(key): name for name, key, reg in g["observers"] if reg is not None}
    keys = {model.witness_key_id(key): key for _, key, reg in g["observers"] if reg is not None}
    counted, refused = [], []
    for i, (key_id, sig) in enumerate(cosigs):
        if key_id not in witnesses:
            refused.append((i, "unknown_witness"))
        elif not ed25519.verify(keys[key_id], msg, sig):
            refused.append((i, "bad_signature"))
        elif key_id in counted:
            refused.append((i, "duplicate"))
        else:
            counted.append(key_id)
    return {"counted": [witnesses[k] for k in counted], "refused": refused}


def _check_state(b, g, vkeys, vset, replay, entries_height):
    s, chain = b["state"], g["chain_id"]
    h = s["header"]

    def fail(reason):
        raise Broken("state_proof", reason)

    if h["chain_id"] != chain or h["validator_set_hash"] != vset:
        fail("the state header names another chain or validator set")
    if h["height"] < entries_height:
        fail("the state header is below the bundle's transactions")
    bh = model.block_hash(h)
    if s["certificate"]["height"] != h["height"] or s["certificate"]["block"] != bh:
        fail("the state header's certificate is for another block")
    try:
        model.verify_certificate(s["certificate"], chain, h["height"], bh, vkeys)
        record = state_tree.decode_bill_state(s["record"])
        siblings, end = state_tree.decode_proof(s["proof"])
    except (Invalid, DecodeError) as err:
        fail(str(err))
    key = state_tree.bill_key(b["bill"])
    if not state_tree.is_member(siblings, end, h["state_root"], key,
                                state_tree.value_hash(state_tree.BILL, s["record"])):
        fail("the record is not the bill's leaf under the state root")
    digest = bytes(32)
    for st in replay.history:
        digest = state_tree.history_step(digest, st["action"], st["by"], st["height"], st["time_ms"], st["tx_id"])
    hist = replay.history
    if record["status"] != replay.status:
        fail("the state tree's status is not the replayed one")
    if (record["history_len"] != len(hist) or record["history_digest"] != digest
            or record["issue_tx"] != hist[0]["tx_id"] or record["last_tx"] != hist[-1]["tx_id"]
            or record["last_height"] != hist[-1]["height"]):
        fail("a transaction of the bill is missing or extra")


# governance.md section 1: the actions that change a unit's record.
UNIT_ACTIONS = {"register_issuer", "register_reimburser", "revoke_unit", "rotate_key",
                "set_prefixes", "renew_qualification"}


def lapsed(unit, block_time_ms):
    """governance.md section 2: a qualification lapses strictly after its date."""
    return unit["valid_until"] is not None and block_time_ms > unit["valid_until"][0]


class _Replay:
    """Section 6: the registry and the bill's life, entry by entry."""

    def __init__(self, bundle, genesis):
        self.b, self.g = bundle, genesis
        self.units = {}
        for u in genesis["issuers"]:
            self.units[u["credit_code"]] = {"name": u["name"], "key": u["public_key"],
                                            "prefixes": u["code_prefixes"], "revoked": None, "genesis": True,
                                            "valid_until": u["valid_until"]}
        for u in genesis["reimbursers"]:
            self.units[u["credit_code"]] = {"name": u["name"], "key": u["public_key"],
                                            "prefixes": None, "revoked": None, "genesis": True,
                                            "valid_until": u["valid_until"]}
        self.proposals = {}  # id -> {"action", "approvals" (genesis indices), "executed"}
        self.signed = None
        self.issuer = None
        self.status = ("issued",)
        self.history = []

    def _regulators(self, i, tx, msg):
        kind, sigs = tx["auth"]
        if kind != "regulators":
            raise Broken("regulator_signature", "a registry change carries a unit's signature", i)
        if any(a[0] >= c[0] for a, c in zip(sigs, sigs[1:])):
            raise Broken("regulator_signature", "indices do not strictly increase", i)
        regs = self.g["regulators"]
        for idx, sig in sigs:
            if idx >= len(regs):
                raise Broken("regulator_signature", f"regulator index {idx} is not in the genesis", i)
            if not ed25519.verify(regs[idx][1], msg, sig):
                raise Broken("regulator_signature", f"signature of regulator {idx} does not verify", i)
        if len(sigs) < self.g["threshold"]:
            raise Broken("regulator_signature", "too few regulator signatures", i)

    def _one_regulator(self, i, tx, msg):
        """governance.md section 5: a propose or approve carries one genesis regulator's signature."""
        kind, sigs = tx["auth"]
        if kind != "regulators" or len(sigs) != 1:
            raise Broken("regulator_signature", "a proposal or vote carries one regulator's signature", i)
        idx, sig = sigs[0]
        regs = self.g["regulators"]
        if idx >= len(regs):
            raise Broken("regulator_signature", f"regulator index {idx} is not in the genesis", i)
        if not ed25519.verify(regs[idx][1], msg, sig):
            raise Broken("regulator_signature", f"signature of regulator {idx} does not verify", i)
        return idx

    def _apply_registry(self, i, body, h):
        kind, units = body["type"], self.units
        if kind not in UNIT_ACTIONS:
            raise Broken("regulator_signature", f"{kind} is not replayed: the verifier counts the genesis regulators", i)
        code = body["credit_code"]
        if kind.startswith("register_"):
            if code in units:
                raise Broken("unit_registration", f"{code} is registered twice", i)
            units[code] = {"name": body["name"], "key": body["public_key"],
                           "prefixes": body.get("code_prefixes") if kind == "register_issuer" else None,
                           "revoked": None, "genesis": False, "valid_until": body.get("valid_until")}
            return
        u = units.get(code)
        if u is None:
            raise Broken("unit_registration", f"{code} is not registered", i)
        if kind == "rotate_key":
            u["key"] = body["public_key"]
        elif kind == "revoke_unit":
            u["revoked"] = h
        elif kind == "set_prefixes":
            u["prefixes"] = body["code_prefixes"]
        else:
            u["valid_until"] = body["valid_until"]

    def _unit_sig(self, i, tx, key, msg, link):
        kind, sig = tx["auth"]
        if kind != "unit" or not ed25519.verify(key, msg, sig):
            raise Broken(link, "the unit's signature does not verify", i)
        return sig

    def entry(self, i, e, bh):
        g, tx, h = self.g, e["tx"], e["header"]["height"]
        body = tx["body"]
        kind = body["type"]
        msg = model.signing_bytes(tx, g["chain_id"])
        step = {"action": kind, "height": h, "index": e["proof"]["leaf_index"],
                "time_ms": e["header"]["time_ms"], "block_hash": bh, "tx_id": model.tx_id(tx, g["chain_id"])}
        if kind in UNIT_ACTIONS:
            self._regulators(i, tx, msg)
            self._apply_registry(i, body, h)
            return
        if kind == "propose":
            idx = self._one_regulator(i, tx, msg)
            p = {"action": body["action"], "approvals": {idx}, "executed": False}
            self.proposals[model.proposal_id(body, g["chain_id"])] = p
            if len(p["approvals"]) >= g["threshold"]:
                self._apply_registry(i, p["action"], h)
                p["executed"] = True
            return
        if kind == "approve":
            idx = self._one_regulator(i, tx, msg)
            p = self.proposals.get(body["proposal"])
            if p is None:
                raise Broken("regulator_signature", "an approval of a proposal whose propose is not in the bundle", i)
            if p["executed"] or idx in p["approvals"]:
                raise Broken("regulator_signature", f"approval by regulator {idx} after execution or a second time", i)
            p["approvals"].add(idx)
            if len(p["approvals"]) >= g["threshold"]:
                p["executed"] = True
                self._apply_registry(i, p["action"], h)
            return
        if kind in model.GOVERNANCE or kind in model.VOTES:
            raise Broken("regulator_signature", f"{kind} is not replayed: the verifier counts the genesis regulators", i)
        bill_id = model.body_bill_id(body)
        if bill_id != self.b["bill"]:
            raise Broken("bill_id", "a transaction of another bill", i)
        if kind == "issue_bill":
            bill = body["bill"]
            if self.signed is not None:
                raise Broken("lifecycle_order", "the bill is issued a second time", i)
            if tx["nonce"] != 0:
                raise Broken("issue_bill", "an IssueBill has nonce 0", i)
            try:
                model.validate_bill(bill, g["params"])
            except Invalid as err:
                raise Broken("issue_bill", str(err), i) from None
            u = self.units.get(bill["issuer"])
            if u is None or u["revoked"] is not None or u["prefixes"] is None:
                raise Broken("issuer_registration", "the issuer is not a registered, active issuing unit", i)
            if lapsed(u, e["header"]["time_ms"]):
                raise Broken("issuer_registration", "the issuer's qualification lapsed before this block", i)
            if not any(bill["code"].startswith(p) for p in u["prefixes"]):
                raise Broken("issuer_registration", "the code has none of the issuer's prefixes", i)
            self.signed = self._unit_sig(i, tx, u["key"], msg, "issuer_signature")
            self.issuer = {"credit_code": bill["issuer"], "name": u["name"],
                           "public_key": u["key"].hex(), "in_genesis": u["genesis"]}
            self.status = ("issued",)
            self.history.append(dict(step, by=bill["issuer"]))
            return
        if self.signed is None:
            raise Broken("lifecycle_order", f"{kind} before the bill was issued", i)
        by = model.body_actor(body)
        issuer_side = kind in ("red_reverse", "exchange_paper")
        u = self.units.get(by)
        if u is None or u["revoked"] is not None or (u["prefixes"] is not None) != issuer_side:
            raise Broken("unit_registration", f"{by} is not a registered, active unit for {kind}", i)
        if lapsed(u, e["header"]["time_ms"]):
            raise Broken("unit_registration", f"the qualification of {by} lapsed before this block", i)
        self._unit_sig(i, tx, u["key"], msg, "unit_signature")
        if len(self.history) > MAX_BILL_HISTORY:
            raise Broken("lifecycle_order", "more than 64 changes of one bill", i)
        self.status = self._transition(i, kind, by, h, body)
        self.history.append(dict(step, by=by))

    def _transition(self, i, kind, by, h, body):
        """proof-bundle.md section 6.4."""
        s = self.status
        issuer = self.history[0]["by"]

        def no(reason):
            raise Broken("lifecycle_order", f"{kind} by {by}: {reason}", i)

        if kind in ("red_reverse", "exchange_paper"):
            if by != issuer:
                no("not the bill's issuer")
            if s[0] != "issued":
                no(f"the bill is {s[0]}")
            return ("reversed", h) if kind == "red_reverse" else ("paper_exchanged", h)
        if kind in ("lock", "confirm_reimbursed"):
            if body["check_code"] != model.check_code(self.signed):
                no("the check code does not match the bill")
            if s[0] == "locked" and s[1] == by and kind == "confirm_reimbursed":
                return ("reimbursed", by, h)
            if s[0] != "issued":
                no(f"the bill is {s[0]}")
            return ("locked", by, h) if kind == "lock" else ("reimbursed", by, h)
        # unlock
        if s[0] == "locked" and s[1] == by:
            return ("issued",)
        no(f"the bill is {s[0]}" + (" by another unit" if s[0] == "locked" else ""))


# ----- absence proofs (absence.md) -----


def absence_from_json(text):
    o = model.fields(model.loads(text), ["kind", "version", "chain_id", "genesis_hash", "bill",
                                         "header", "certificate", "proof"], what="absence proof")
    if o["kind"] != "absence":
        raise Invalid("kind is not absence")
    return {"version": model.integer(o["version"], 32, "version"),
            "chain_id": model.string(o["chain_id"], "chain_id"),
            "genesis_hash": model.hex_bytes(o["genesis_hash"], 32, "genesis_hash"),
            "bill": model.bill_id(o["bill"]), "header": model.header_from_json(o["header"]),
            "certificate": model.certificate_from_json(o["certificate"]),
            "proof": model.hex_bytes(o["proof"], None, "proof")}


def absence_from_bytes(data):
    d = Decoder(data)
    d.domain("ebill/absence/v1")
    version = d.u32("version")
    if version != 1:
        raise DecodeError(f"absence proof version {version}")
    a = {"version": version, "chain_id": d.text(64, "chain id"), "genesis_hash": d.take(32),
         "bill": model.decode_bill_id(d), "header": model.decode_header(d),
         "certificate": model.decode_certificate(d), "proof": d.bytes(MAX_STATE_BYTES, "state proof")}
    d.finish()
    return a


def read_absence(data):
    if len(data) > MAX_ABSENCE_BYTES:
        raise Broken("decode", "absence proof over 256 KiB")
    try:
        if _first_byte(data) == ord("{"):
            return absence_from_json(data.decode("utf-8"))
        return absence_from_bytes(data)
    except (Invalid, DecodeError, UnicodeError, RecursionError) as e:
        raise Broken("decode", str(e)) from None


def verify_absence(a, g):
    if a["version"] != 1:
        raise Broken("version", f"absence proof version {a['version']}")
    if a["genesis_hash"] != model.genesis_hash(g):
        raise Broken("genesis_hash", "absence proof is for another genesis")
    chain = g["chain_id"]
    if a["chain_id"] != chain:
        raise Broken("chain_id", "absence proof names another chain")
    h = a["header"]
    if h["chain_id"] != chain:
        raise Broken("header_chain_id", "header names another chain")
    if h["validator_set_hash"] != model.validator_set_hash(g):
        raise Broken("validator_set", "header names another validator set")
    bh = model.block_hash(h)
    if a["certificate"]["height"] != h["height"] or a["certificate"]["block"] != bh:
        raise Broken("certificate", "certificate is for another block")
    try:
        model.verify_certificate(a["certificate"], chain, h["height"], bh, [k for _, k in g["validators"]])
    except Invalid as err:
        raise Broken("certificate", str(err)) from None
    try:
        siblings, end = state_tree.decode_proof(a["proof"])
    except DecodeError as err:
        raise Broken("state_proof", str(err)) from None
    if not state_tree.is_absent(siblings, end, h["state_root"], state_tree.bill_key(a["bill"])):
        raise Broken("state_proof", "the path does not show the bill absent under the state root")
    return {"bill": a["bill"], "height": h["height"], "time_ms": h["time_ms"], "block_hash": bh}


def verify_file(data, g):
    """Either kind of proof, as `ebill verify-proof` takes them."""
    if is_absence(data):
        return "absence", verify_absence(read_absence(data), g)
    return "bundle", verify_bundle(read_bundle(data), g)
