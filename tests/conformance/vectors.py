#!/usr/bin/env python3
"""vectors.py [DIR]: recompute every golden vector of crates/types/tests/vectors/ from
docs/spec alone, and fail (exit 1) on the first value that differs. A vector file this
script does not know also fails: every file must be checked.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ebill_spec import ed25519, keyfile, merkle, model, state_tree  # noqa: E402
from ebill_spec.codec import Encoder, sha256  # noqa: E402
from ebill_spec.verify import read_absence, verify_absence  # noqa: E402

DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "crates", "types", "tests", "vectors")
checks = 0
checked_files = set()
kinds = set()  # transaction kinds some vector file checked


def load(name):
    checked_files.add(name)
    with open(os.path.join(DIR, name), encoding="utf-8") as f:
        return json.load(f)


def text(name):
    with open(os.path.join(DIR, name), encoding="utf-8") as f:
        return f.read()


def same(what, got, want):
    global checks
    if isinstance(got, bytes):
        got = got.hex()
    if got != want:
        print(f"MISMATCH {what}:\n  computed {got}\n  vector   {want}")
        sys.exit(1)
    checks += 1


def keys_and_codes():
    k = load("keys.json")
    seeds = {}
    for e in k["keys"]:
        seed = bytes.fromhex(e["seed"])
        same(f"keys.json {e['name']} public key", ed25519.public_key(seed), e["public_key"])
        same(f"keys.json {e['name']} usable", ed25519.usable_key(bytes.fromhex(e["public_key"])), True)
        seeds[e["public_key"]] = seed
    for name, code in k["credit_codes"].items():
        same(f"keys.json credit code {name}", model.credit_code(code), code)
    return seeds


def bills(genesis):
    bill = model.bill_from_json(load("bill.json"))
    model.validate_bill(bill, genesis["params"])
    c = load("bill_canonical.json")
    e = Encoder()
    model.encode_bill(e, bill)
    same("bill_canonical.json bill_canonical", e.finish(), c["bill_canonical"])
    same("bill_canonical.json decodes back", model.decode_bill(model_decoder(c["bill_canonical"])) == bill, True)
    id_e = Encoder()
    model.encode_bill_id(id_e, (bill["code"], bill["number"]))
    same("bill_canonical.json bill_id_key", id_e.finish(), c["bill_id_key"])
    same("bill_canonical.json check_code_domain", "ebill/check-code/v1", c["check_code_domain"])
    same("bill_canonical.json check_code", model.check_code(bytes.fromhex(c["issuer_signature"])), c["check_code"])
    sb = dict(load("signed_bill.json"))
    sig, cc = sb.pop("signature"), sb.pop("check_code")
    same("signed_bill.json bill", model.bill_from_json(sb) == bill, True)
    same("signed_bill.json signature", sig, c["issuer_signature"])
    same("signed_bill.json check_code", model.check_code(bytes.fromhex(sig)), cc)
    tx = {"nonce": 0, "body": {"type": "issue_bill", "bill": bill}}
    issuer_key = next(u["public_key"] for u in genesis["issuers"] if u["credit_code"] == bill["issuer"])
    same("signed_bill.json signature verifies",
         ed25519.verify(issuer_key, model.signing_bytes(tx, genesis["chain_id"]), bytes.fromhex(sig)), True)


def model_decoder(hexstr):
    from ebill_spec.codec import Decoder
    return Decoder(bytes.fromhex(hexstr))


def decode_exactly(hexstr, f):
    from ebill_spec.codec import decode_all
    return decode_all(bytes.fromhex(hexstr), f)


def check_transaction(v, chain, seeds):
    """One entry of transactions.json or governance.json; returns its signed bytes."""
    n = v["name"]
    tx = model.signed_tx_from_json(v["json"])
    same(f"{n} kind", tx["body"]["type"], v["kind"])
    msg = model.signing_bytes(tx, chain)
    same(f"{n} signing_bytes", msg, v["signing_bytes"])
    same(f"{n} tx_id", model.tx_id(tx, chain), v["tx_id"])
    raw = model.encode_signed_tx(tx)
    same(f"{n} signed_tx", raw, v["signed_tx"])
    same(f"{n} signed_tx decodes back", decode_exactly(v["signed_tx"], model.decode_signed_tx) == tx, True)
    same(f"{n} merkle_leaf_hash", merkle.leaf_hash(raw), v["merkle_leaf_hash"])
    for s in v["signatures"]:
        pk, sig = bytes.fromhex(s["public_key"]), bytes.fromhex(s["signature"])
        same(f"{n} signature verifies", ed25519.verify(pk, msg, sig), True)
        same(f"{n} signature is the key's (deterministic)", ed25519.sign(seeds[s["public_key"]], msg), s["signature"])
    kind, a = tx["auth"]
    if kind == "unit":
        same(f"{n} auth", a, v["signatures"][0]["signature"])
    else:
        same(f"{n} auth", [(i, x.hex()) for i, x in a],
             [(s["regulator_index"], s["signature"]) for s in v["signatures"]])
    if "check_code" in v:
        same(f"{n} check_code", model.check_code(a), v["check_code"])
    return tx, raw


def transactions(seeds):
    t = load("transactions.json")
    chain = t["chain_id"]
    same("transactions.json domain", "ebill/tx/v1", t["domain"])
    checked = [check_transaction(v, chain, seeds) for v in t["transactions"]]
    kinds.update(tx["body"]["type"] for tx, _ in checked)
    return chain, [raw for _, raw in checked]


def governance(seeds):
    """governance.md: the new transaction kinds, a proposal's id and its state key."""
    g = load("governance.json")
    chain = g["chain_id"]
    txs = {v["name"]: check_transaction(v, chain, seeds)[0] for v in g["transactions"]}
    kinds.update(tx["body"]["type"] for tx in txs.values())
    for name in model.TX_KINDS:
        same(f"some vector has a {name} transaction", name in kinds, True)
    p = g["proposal"]
    body = txs["propose"]["body"]
    e = Encoder("ebill/gov-proposal/v1").text(chain)
    model.encode_body(e, body)
    same("governance.json proposal id_preimage", e.finish(), p["id_preimage"])
    pid = model.proposal_id(body, chain)
    same("governance.json proposal id", pid, p["id"])
    same("governance.json proposal state key", state_tree.key_hash(state_tree.PROPOSAL, pid), p["state_key_hash"])
    for vote in ("approve", "reject", "withdraw"):
        same(f"governance.json {vote} names the proposal", txs[vote]["body"]["proposal"].hex(), pid.hex())
    try:
        raw = Encoder()
        model.encode_body(raw, dict(body, action=body))
        decode_exactly(raw.finish().hex(), model.decode_body)
        same("a proposal inside a proposal is refused", False, True)
    except model.DecodeError:
        same("a proposal inside a proposal is refused", True, True)


def _decode_regulator_set(d):
    return {"threshold": d.u16("threshold"),
            "keys": d.seq(64, lambda d: (d.text(300, "name"), d.take(32, "key")), "regulators")}


def _encode_regulator_set(e, r):
    e.u16(r["threshold"]).seq(r["keys"], lambda e, k: e.text(k[0]).fixed(k[1], 32))


def _decode_votes(d):
    return d.seq(64, lambda d: (d.u16("index"), d.u64("height"), d.take(32, "tx id")), "votes")


def _encode_votes(e, votes):
    e.seq(votes, lambda e, v: e.u16(v[0]).u64(v[1]).fixed(v[2], 32))


def _decode_proposal_record(d):
    rec = {"id": d.take(32, "id"), "action": model.decode_body(d, nested=True),
           "expires_at_height": d.u64("expiry"), "base_gov_seq": d.u64("base"),
           "set": _decode_regulator_set(d), "proposer": d.u16("proposer"),
           "proposed_height": d.u64("proposed at"), "propose_tx": d.take(32, "propose tx"),
           "approvals": _decode_votes(d), "rejections": _decode_votes(d)}
    tag = d.u8("outcome")
    if tag == 0:
        rec["outcome"] = ("pending",)
    elif tag == 1:
        rec["outcome"] = ("executed", d.u64("height"), d.take(32, "tx id"))
    elif tag in (2, 3):
        rec["outcome"] = (("rejected", "withdrawn")[tag - 2], d.u64("height"))
    else:
        raise model.DecodeError(f"unknown proposal outcome {tag}")
    return rec


def _encode_proposal_record(r):
    e = Encoder().fixed(r["id"], 32)
    model.encode_body(e, r["action"])
    e.u64(r["expires_at_height"]).u64(r["base_gov_seq"])
    _encode_regulator_set(e, r["set"])
    e.u16(r["proposer"]).u64(r["proposed_height"]).fixed(r["propose_tx"], 32)
    _encode_votes(e, r["approvals"])
    _encode_votes(e, r["rejections"])
    o = r["outcome"]
    tag = ["pending", "executed", "rejected", "withdrawn"].index(o[0])
    e.u8(tag)
    if tag == 1:
        e.u64(o[1]).fixed(o[2], 32)
    elif tag > 1:
        e.u64(o[1])
    return e.finish()


def governance_state(genesis):
    """governance.md section 3: the governance record and a proposal record as values."""
    s = load("governance_state.json")
    g = s["governance_record"]
    rec = decode_exactly(g["bytes"], lambda d: (d.u64("gov_seq"), _decode_regulator_set(d)))
    e = Encoder().u64(rec[0])
    _encode_regulator_set(e, rec[1])
    same("governance record re-encodes", e.finish(), g["bytes"])
    same("governance record regulators are the genesis keys",
         [k for _, k in rec[1]["keys"]], [k for _, k in genesis["regulators"]])
    same("governance record key", state_tree.key_hash(state_tree.REGULATORS), g["state_key_hash"])
    same("governance record value hash",
         state_tree.value_hash(state_tree.REGULATORS, bytes.fromhex(g["bytes"])), g["state_value_hash"])
    p = s["proposal_record"]
    prec = decode_exactly(p["bytes"], _decode_proposal_record)
    same("proposal record re-encodes", _encode_proposal_record(prec), p["bytes"])
    same("proposal record key", state_tree.key_hash(state_tree.PROPOSAL, prec["id"]), p["state_key_hash"])
    same("proposal record value hash",
         state_tree.value_hash(state_tree.PROPOSAL, bytes.fromhex(p["bytes"])), p["state_value_hash"])


def block(genesis, chain, signed):
    b = load("block.json")
    same("block.json chain_id", b["chain_id"], chain)
    h = model.header_from_json(b["header"])
    hb = model.header_bytes(h)
    same("block.json header_canonical", hb, b["header_canonical"])
    bh = model.block_hash(h)
    same("block.json block_hash", bh, b["block_hash"])
    same("block.json tx_count", h["tx_count"], len(signed))
    same("block.json tx_root", merkle.root([merkle.leaf_hash(x) for x in signed]), b["header"]["tx_root"])
    e = Encoder().fixed(hb).seq(signed, lambda e, x: e.bytes(x))
    same("block.json block_canonical", e.finish(), b["block_canonical"])
    same("block.json validator_set_hash", model.validator_set_hash(genesis), b["header"]["validator_set_hash"])
    same("block.json prev_hash is the genesis hash", model.genesis_hash(genesis), b["header"]["prev_hash"])
    vkeys = [k for _, k in genesis["validators"]]
    for v in b["votes"]:
        vo = v["vote"]
        blk = None if vo["block"] is None else bytes.fromhex(vo["block"])
        msg = model.vote_signing_bytes(chain, vo["kind"], vo["height"], vo["round"], blk, vo["validator"])
        same(f"vote {vo['kind']} signing_bytes", msg, v["signing_bytes"])
        sig = bytes.fromhex(v["signature"])
        same(f"vote {vo['kind']} signature", ed25519.verify(vkeys[vo["validator"]], msg, sig), True)
        same(f"vote {vo['kind']} signed_vote",
             model.signed_vote_bytes(vo["kind"], vo["height"], vo["round"], blk, vo["validator"], sig),
             v["signed_vote"])
    for p in b["proposals"]:
        po = p["proposal"]
        msg = model.proposal_signing_bytes(chain, po["height"], po["round"], bytes.fromhex(po["block"]),
                                           po["pol_round"], po["proposer"])
        same(f"proposal round {po['round']} signing_bytes", msg, p["signing_bytes"])
        same(f"proposal round {po['round']} proposer", po["proposer"], (po["height"] + po["round"]) % len(vkeys))
        same(f"proposal round {po['round']} signature",
             ed25519.verify(vkeys[po["proposer"]], msg, bytes.fromhex(p["signature"])), True)
    c = model.certificate_from_json(b["commit_certificate"])
    same("block.json commit_certificate_canonical", model.certificate_bytes(c), b["commit_certificate_canonical"])
    model.verify_certificate(c, chain, h["height"], bh, vkeys)
    same("block.json commit certificate verifies", True, True)
    short = dict(c, signatures=c["signatures"][: model.quorum(len(vkeys)) - 1])
    try:
        model.verify_certificate(short, chain, h["height"], bh, vkeys)
        same("a certificate below quorum is refused", False, True)
    except model.Invalid:
        same("a certificate below quorum is refused", True, True)


def genesis_vectors():
    g = model.genesis_from_json(text("genesis.json"))
    checked_files.add("genesis.json")
    gh = load("genesis_hash.json")
    same("genesis_hash.json genesis_hash", model.genesis_hash(g), gh["genesis_hash"])
    same("genesis_hash.json validator_set_hash", model.validator_set_hash(g), gh["validator_set_hash"])
    same("genesis_hash.json validator_set_domain", "ebill/validators/v1", gh["validator_set_domain"])
    return g


def merkle_vectors():
    m = load("merkle.json")
    same("merkle.json empty_root", merkle.root([]), m["empty_root"])
    for t in m["trees"]:
        data = [bytes.fromhex(x) for x in t["leaf_data"]]
        leaves = [merkle.leaf_hash(x) for x in data]
        same(f"merkle size {t['size']} leaves", [x.hex() for x in leaves], t["leaf_hashes"])
        root = merkle.root(leaves)
        same(f"merkle size {t['size']} root", root, t["root"])
        for p in t["proofs"]:
            i = p["leaf_index"]
            path = merkle.audit_path(leaves, i)
            same(f"merkle size {t['size']} path {i}", [x.hex() for x in path], p["path"])
            same(f"merkle size {t['size']} proof_canonical {i}",
                 model.inclusion_bytes({"leaf_index": i, "tree_size": t["size"], "path": path}),
                 p["proof_canonical"])
            same(f"merkle size {t['size']} proof {i} verifies",
                 merkle.root_from_path(leaves[i], i, t["size"], path), t["root"])
            if path:
                bad = [bytes([path[0][0] ^ 1]) + path[0][1:]] + path[1:]
                same(f"merkle size {t['size']} tampered proof {i} fails",
                     merkle.root_from_path(leaves[i], i, t["size"], bad) == root, False)


def sealed_key():
    s = load("sealed_key.json")
    f = s["file"]
    same("sealed_key.json associated_data", keyfile.associated_data(f), s["associated_data"])
    seed = keyfile.open_sealed(f, s["passphrase"].encode("utf-8"))
    same("sealed_key.json opens to the seed", seed, s["seed"])
    try:
        keyfile.open_sealed(f, (s["passphrase"] + "x").encode())
        same("sealed_key.json wrong passphrase refused", False, True)
    except model.Invalid:
        same("sealed_key.json wrong passphrase refused", True, True)
    plain = {"type": "ebill-key/v1", "public_key": f["public_key"], "seed": s["seed"]}
    same("plain key file reads", keyfile.read_plain(plain), s["seed"])


def state_tree_vectors():
    s = load("state_tree.json")
    same("state_tree.json empty_root", state_tree.EMPTY, s["empty_root"])
    k = s["keys"]
    bill_id = model.decode_bill_id(model_decoder(k["bill"]["bill_id"]))
    same("state key bill", state_tree.bill_key(bill_id), k["bill"]["key_hash"])
    same("state key unit", state_tree.key_hash(state_tree.UNIT, k["unit"]["credit_code"].encode()), k["unit"]["key_hash"])
    same("state key regulators", state_tree.key_hash(state_tree.REGULATORS), k["regulators"]["key_hash"])
    digest = bytes(32)
    hist = s["bill_state"]["history"]
    for st in hist:
        digest = state_tree.history_step(digest, st["action"], st["by"], st["height"], st["time_ms"],
                                         bytes.fromhex(st["tx_id"]))
        same(f"history digest after {st['action']}", digest, st["digest"])
    last = hist[-1]
    record = {"status": ("reimbursed", last["by"], last["height"]), "history_len": len(hist),
              "issue_tx": bytes.fromhex(hist[0]["tx_id"]), "last_tx": bytes.fromhex(last["tx_id"]),
              "last_height": last["height"], "history_digest": digest}
    raw = state_tree.encode_bill_state(record)
    same("bill_state canonical", raw, s["bill_state"]["canonical"])
    same("bill_state decodes back", state_tree.decode_bill_state(raw) == record, True)
    vh = state_tree.value_hash(state_tree.BILL, raw)
    same("bill_state value_hash", vh, s["bill_state"]["value_hash"])
    bkey = bytes.fromhex(k["bill"]["key_hash"])
    same("one_leaf_root", state_tree.root_of({bkey: vh}), s["one_leaf_root"])
    t = s["two_leaves"]
    a, b = bytes.fromhex(t["a"]), bytes.fromhex(t["b"])
    same("value_a", sha256(b"a"), t["value_a"])
    same("value_b", sha256(b"b"), t["value_b"])
    entries = {a: sha256(b"a"), b: sha256(b"b")}
    root = state_tree.root_of(entries)
    same("two_leaves root", root, t["root"])
    sib, end = state_tree.prove(entries, a)
    same("membership_proof_of_a", state_tree.encode_proof(sib, end), t["membership_proof_of_a"])
    sib2, end2 = state_tree.decode_proof(bytes.fromhex(t["membership_proof_of_a"]))
    same("membership of a verifies", state_tree.is_member(sib2, end2, root, a, sha256(b"a")), True)
    same("membership of a with b's value fails", state_tree.is_member(sib2, end2, root, a, sha256(b"b")), False)
    same("the membership proof of a shows b absent? no", state_tree.is_absent(sib2, end2, root, a), False)
    absent = bytes.fromhex(t["absent_key"])
    sib, end = state_tree.prove(entries, absent)
    same("absence_proof", state_tree.encode_proof(sib, end), t["absence_proof"])
    sib3, end3 = state_tree.decode_proof(bytes.fromhex(t["absence_proof"]))
    same("absence verifies", state_tree.is_absent(sib3, end3, root, absent), True)
    same("absence proof does not prove a absent", state_tree.is_absent(sib3, end3, root, a), False)


def absence_vectors(genesis):
    s = load("absence.json")
    same("absence.json domain", "ebill/absence/v1", s["domain"])
    present = bytes.fromhex(s["present_bill_key_hash"])
    unit = bytes.fromhex(s["unit_key_hash"])
    entries = {present: state_tree.value_hash(state_tree.BILL, b"a bill record"),
               unit: state_tree.value_hash(state_tree.UNIT, b"a unit record")}
    same("absence.json state_root", state_tree.root_of(entries), s["state_root"])
    from_json = read_absence(json.dumps(s["json"]).encode())
    from_bin = read_absence(bytes.fromhex(s["canonical"]))
    same("absence.json both forms read alike", from_json == from_bin, True)
    same("absence.json absent key", state_tree.bill_key(from_json["bill"]), s["absent_bill_key_hash"])
    e = Encoder().text("ebill/absence/v1").u32(1).text(from_json["chain_id"]).fixed(from_json["genesis_hash"])
    model.encode_bill_id(e, from_json["bill"])
    e.fixed(model.header_bytes(from_json["header"])).fixed(model.certificate_bytes(from_json["certificate"]))
    e.bytes(from_json["proof"])
    same("absence.json canonical", e.finish(), s["canonical"])
    v = verify_absence(from_json, genesis)
    same("absence.json verifies", v["block_hash"], s["block_hash"])
    present_bill = model.bill_id(s["json"]["bill"])
    same("absence.json bill is not the present one", state_tree.bill_key(present_bill) != present, True)


def checkpoint_vectors(genesis):
    """checkpoint.md: a checkpoint's signed bytes, a witness key id, a co-signature, and
    the same bundle as version 2 and as version 3 with that co-signature."""
    from ebill_spec.verify import checkpoint_signing_bytes, read_bundle
    c = load("checkpoint.json")
    cp = c["checkpoint"]
    msg = checkpoint_signing_bytes(cp["chain_id"], cp["height"], bytes.fromhex(cp["block_hash"]),
                                   bytes.fromhex(cp["state_root"]))
    same("checkpoint.json signing_bytes", msg, c["signing_bytes"])
    key = bytes.fromhex(c["witness_public_key"])
    same("checkpoint.json witness_key_id", model.witness_key_id(key), c["witness_key_id"])
    same("checkpoint.json witness is the genesis's regulator observer",
         any(k == key and reg is not None for _, k, reg in genesis["observers"]), True)
    cs = c["cosignature"]
    same("checkpoint.json cosignature key id", cs["key_id"], c["witness_key_id"])
    same("checkpoint.json cosignature_bytes", bytes.fromhex(cs["key_id"]) + bytes.fromhex(cs["signature"]),
         c["cosignature_bytes"])
    same("checkpoint.json cosignature verifies", ed25519.verify(key, msg, bytes.fromhex(cs["signature"])), True)
    v2 = read_bundle(bytes.fromhex(c["bundle_v2"]))
    v3 = read_bundle(bytes.fromhex(c["bundle_v3"]))
    v3j = read_bundle(json.dumps(c["bundle_v3_json"]).encode())
    same("checkpoint.json bundle_v3 binary and JSON read alike", v3 == v3j, True)
    same("checkpoint.json bundle versions", (v2["version"], v3["version"]), (2, 3))
    same("checkpoint.json bundle_v3 carries one co-signature of the witness",
         [k.hex() for k, _ in v3["witnesses"]], [c["witness_key_id"]])
    from ebill_spec.verify import check_witnesses
    w = check_witnesses(v3["state"]["header"], v3["witnesses"], genesis)
    same("checkpoint.json bundle_v3's co-signature counts for its state checkpoint", (len(w["counted"]), w["refused"]),
         (1, []))
    forged = [(v3["witnesses"][0][0], bytes(64))]
    same("a forged co-signature does not count", check_witnesses(v3["state"]["header"], forged, genesis)["refused"],
         [(0, "bad_signature")])
    same("checkpoint.json bundle_v2 is bundle_v3 without witnesses",
         dict(v3, version=2, witnesses=[]) == v2, True)


def edge_cases():
    e = load("ed25519_edge_cases.json")
    for c in e["cases"]:
        same(f"ed25519 edge case {c['case']}",
             ed25519.verify(bytes.fromhex(c["pub_key"]), bytes.fromhex(c["msg"]), bytes.fromhex(c["sig"])),
             c["strict"])


def main():
    seeds = keys_and_codes()
    genesis = genesis_vectors()
    bills(genesis)
    chain, signed = transactions(seeds)
    governance(seeds)
    governance_state(genesis)
    block(genesis, chain, signed)
    merkle_vectors()
    sealed_key()
    state_tree_vectors()
    absence_vectors(genesis)
    checkpoint_vectors(genesis)
    edge_cases()
    files = {f for f in os.listdir(DIR) if f.endswith(".json")}
    unknown = files - checked_files
    if unknown:
        print(f"vector files this verifier does not check: {sorted(unknown)}")
        return 1
    print(f"conformance: {checks} checks over {len(files)} vector files passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
