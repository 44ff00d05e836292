"""The state tree: keys, values, bill states, history digests and proofs
(docs/spec/state-tree.md)."""

from .codec import DecodeError, Decoder, Encoder, sha256
from . import model

EMPTY = bytes(32)
BILL, UNIT, REGULATORS, PROPOSAL = 1, 2, 3, 4


def key_hash(namespace, key_bytes=b""):
    return sha256(Encoder("ebill/state-key/v1").u8(namespace).finish(), key_bytes)


def value_hash(namespace, value_bytes):
    return sha256(Encoder("ebill/state-value/v1").u8(namespace).finish(), value_bytes)


def bill_key(bill_id):
    e = Encoder()
    model.encode_bill_id(e, bill_id)
    return key_hash(BILL, e.finish())


def leaf(k, v):
    return sha256(b"\x10", k, v)


def node(left, right):
    return sha256(b"\x11", left, right)


def bit(key, i):
    return (key[i // 8] >> (7 - i % 8)) & 1


# ----- bill state (section 2) -----

STATUSES = ["issued", "locked", "reimbursed", "reversed", "paper_exchanged"]


def encode_status(e, s):
    name = s[0]
    e.u8(STATUSES.index(name) + 1)
    if name in ("locked", "reimbursed"):
        e.fixed(s[1].encode(), 18).u64(s[2])
    elif name in ("reversed", "paper_exchanged"):
        e.u64(s[1])


def decode_status(d):
    t = d.u8("status")
    if not 1 <= t <= 5:
        raise DecodeError(f"unknown status {t}")
    name = STATUSES[t - 1]
    if name in ("locked", "reimbursed"):
        return (name, model.decode_credit_code(d), d.u64())
    if name in ("reversed", "paper_exchanged"):
        return (name, d.u64())
    return ("issued",)


def encode_bill_state(st):
    e = Encoder()
    encode_status(e, st["status"])
    e.u32(st["history_len"]).fixed(st["issue_tx"], 32).fixed(st["last_tx"], 32)
    e.u64(st["last_height"]).fixed(st["history_digest"], 32)
    return e.finish()


def decode_bill_state(data):
    d = Decoder(data)
    st = {"status": decode_status(d), "history_len": d.u32(), "issue_tx": d.take(32),
          "last_tx": d.take(32), "last_height": d.u64(), "history_digest": d.take(32)}
    d.finish()
    return st


def history_step(previous, action, by, height, time_ms, tx_id):
    e = Encoder("ebill/bill-history/v1").fixed(previous, 32).u8(model.TX_KINDS.index(action) + 1)
    e.fixed(by.encode(), 18).u64(height).u64(time_ms).fixed(tx_id, 32)
    return sha256(e.finish())


# ----- trees and proofs (sections 4, 5) -----


def root_of(entries, depth=0):
    """The root of a tree of {key: value_hash} (for recomputing vectors)."""
    if not entries:
        return EMPTY
    if len(entries) == 1:
        (k, v), = entries.items()
        return leaf(k, v)
    left = {k: v for k, v in entries.items() if not bit(k, depth)}
    right = {k: v for k, v in entries.items() if bit(k, depth)}
    return node(root_of(left, depth + 1), root_of(right, depth + 1))


def prove(entries, key):
    """A proof of `key` in the tree of {key: value_hash}: (siblings, end)."""
    siblings, depth = [], 0
    while True:
        if not entries:
            return siblings, None
        if len(entries) == 1:
            (k, v), = entries.items()
            return siblings, (k, v)
        left = {k: v for k, v in entries.items() if not bit(k, depth)}
        right = {k: v for k, v in entries.items() if bit(k, depth)}
        if bit(key, depth):
            siblings.append(root_of(left, depth + 1))
            entries = right
        else:
            siblings.append(root_of(right, depth + 1))
            entries = left
        depth += 1


def encode_proof(siblings, end):
    e = Encoder().u16(len(siblings))
    bitmap = bytearray((len(siblings) + 7) // 8)
    for i, s in enumerate(siblings):
        if s != EMPTY:
            bitmap[i // 8] |= 0x80 >> (i % 8)
    e.fixed(bytes(bitmap))
    for s in siblings:
        if s != EMPTY:
            e.fixed(s, 32)
    if end is None:
        e.u8(0)
    else:
        e.u8(1).fixed(end[0], 32).fixed(end[1], 32)
    return e.finish()


def decode_proof(data):
    d = Decoder(data)
    depth = d.u16("depth")
    if depth > 256:
        raise DecodeError("state proof deeper than 256")
    bitmap = d.take((depth + 7) // 8, "bitmap")
    for i in range(depth, len(bitmap) * 8):
        if bitmap[i // 8] & (0x80 >> (i % 8)):
            raise DecodeError("bits past the depth are set")
    siblings = []
    for i in range(depth):
        if bitmap[i // 8] & (0x80 >> (i % 8)):
            s = d.take(32, "sibling")
            if s == EMPTY:
                raise DecodeError("an empty sibling marked present")
            siblings.append(s)
        else:
            siblings.append(EMPTY)
    t = d.u8("end")
    if t == 0:
        end = None
    elif t == 1:
        end = (d.take(32), d.take(32))
    else:
        raise DecodeError(f"unknown proof end {t}")
    d.finish()
    return siblings, end


def proof_root(siblings, end, key):
    h = EMPTY if end is None else leaf(end[0], end[1])
    for i in range(len(siblings) - 1, -1, -1):
        h = node(siblings[i], h) if bit(key, i) else node(h, siblings[i])
    return h


def is_member(siblings, end, root, key, value):
    return end is not None and end == (key, value) and proof_root(siblings, end, key) == root


def is_absent(siblings, end, root, key):
    if end is not None:
        other = end[0]
        if other == key or any(bit(other, i) != bit(key, i) for i in range(len(siblings))):
            return False
    return proof_root(siblings, end, key) == root
