"""Values of ebill: their JSON forms (read strictly) and canonical bytes.

docs/spec: text.md, money.md, credit-code.md, bill.md, transaction.md, vote.md,
block.md, certificate.md, merkle.md (the proof's bytes), genesis.md, state-tree.md
(bill states). Internally money is an int of fen, a quantity an int of
ten-thousandths, a time a (unix_ms, offset_min) pair, hashes/keys/signatures bytes.
"""

import json
import re
import unicodedata

from .codec import DecodeError, Encoder, sha256
from . import ed25519


class Invalid(Exception):
    """A value breaks a rule of the spec (JSON form or validity)."""


# ----- JSON reading (encoding.md section 4) -----


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise Invalid(f"field {k!r} given twice")
        out[k] = v
    return out


def loads(text):
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise Invalid(f"not JSON: {e}") from None


def fields(obj, required, optional=(), what="object"):
    if not isinstance(obj, dict):
        raise Invalid(f"{what} is not an object")
    unknown = set(obj) - set(required) - set(optional)
    if unknown:
        raise Invalid(f"{what}: unknown fields {sorted(unknown)}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise Invalid(f"{what}: missing fields {missing}")
    return obj


def integer(v, bits, what):
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**bits:
        raise Invalid(f"{what} is not a u{bits}")
    return v


def string(v, what):
    if not isinstance(v, str):
        raise Invalid(f"{what} is not a string")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{what} holds a lone surrogate") from None
    return v


HEX = re.compile(r"[0-9a-f]*\Z")


def hex_bytes(v, n, what):
    s = string(v, what)
    if (n is not None and len(s) != 2 * n) or len(s) % 2 or not HEX.match(s):
        raise Invalid(f"{what} is not {n if n else 'even-length'} bytes of lowercase hex")
    return bytes.fromhex(s)


# ----- text (text.md) -----

WHITE_SPACE = set(
    [chr(c) for c in range(0x09, 0x0E)]
    + ["\x20", "\x85", "\xa0", "\u1680"]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
)
REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def check_text(s, max_bytes, allow_empty, what):
    if not allow_empty and all(c in WHITE_SPACE for c in s):
        raise Invalid(f"{what} must not be empty")
    if len(s.encode()) > max_bytes:
        raise Invalid(f"{what} is over {max_bytes} bytes")
    for c in s:
        if unicodedata.category(c) in REFUSED_CATEGORIES:
            raise Invalid(f"{what} holds U+{ord(c):04X}")
    if not unicodedata.is_normalized("NFC", s):
        raise Invalid(f"{what} is not NFC")


# ----- money (money.md) -----


def parse_decimal(v, places, what):
    s = string(v, what)
    m = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?", s)
    if not m or (len(m.group(1)) > 1 and m.group(1)[0] == "0") or len(m.group(1)) > 19:
        raise Invalid(f"{what}: {s!r} is not a plain decimal")
    frac = m.group(2) or ""
    if len(frac) > places:
        raise Invalid(f"{what}: {s!r} has more than {places} decimals")
    value = int(m.group(1)) * 10**places + int((frac + "0" * places)[:places])
    if value >= 2**64:
        raise Invalid(f"{what}: {s!r} is too large")
    return value


def fen(v, what):
    return parse_decimal(v, 2, what)


def quantity(v, what):
    return parse_decimal(v, 4, what)


def item_amount(quantity_ten_thousandths, unit_price_fen):
    return (quantity_ten_thousandths * unit_price_fen + 5000) // 10000


# ----- times (encoding.md section 3) -----


def _days_from_civil(y, m, d):
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _year_of_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2)


TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[\x00-\x7f]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def check_time(unix_ms, offset_min):
    if abs(offset_min) > 23 * 60 + 59:
        raise Invalid("time offset beyond 23:59")
    local_days = (unix_ms + offset_min * 60000) // 86400000
    if not 0 <= _year_of_days(local_days) <= 9999:
        raise Invalid("time outside the years 0000-9999")


def parse_time(v, what):
    s = string(v, what)
    m = TIME.match(s)
    if not m:
        raise Invalid(f"{what}: {s!r} is not RFC 3339 with an offset")
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7) or "", m.group(8)
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days_in = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not (1 <= mo <= 12 and 1 <= d <= days_in[mo - 1] and h < 24 and mi < 60 and sec < 60):
        raise Invalid(f"{what}: {s!r} is not a valid date and time")
    # Read to nanoseconds: digits after the ninth are ignored (encoding.md section 3).
    if frac[3:9].strip("0"):
        raise Invalid(f"{what}: {s!r} is more precise than a millisecond")
    ms = int((frac + "000")[:3])
    if off in ("Z", "z"):
        offset_min = 0
    else:
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            raise Invalid(f"{what}: bad offset")
        offset_min = (oh * 60 + om) * (1 if off[0] == "+" else -1)
    unix_ms = ((_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms
    check_time(unix_ms, offset_min)
    return (unix_ms, offset_min)


def encode_time(e, t):
    e.i64(t[0]).i16(t[1])


def decode_time(d):
    t = (d.i64("time"), d.i16("time offset"))
    try:
        check_time(*t)
    except Invalid as err:
        raise DecodeError(str(err)) from None
    return t


# ----- credit codes (credit-code.md) -----

CC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def credit_code(v, what="credit code"):
    s = string(v, what)
    if len(s) != 18 or any(c not in CC_ALPHABET for c in s):
        raise Invalid(f"{what}: {s!r} is not 18 characters of the GB 32100 alphabet")
    total = sum(CC_ALPHABET.index(c) * w for c, w in zip(s[:17], CC_WEIGHTS))
    if s[17] != CC_ALPHABET[(31 - total % 31) % 31]:
        raise Invalid(f"{what}: {s!r} has a wrong check character")
    return s


def decode_credit_code(d, what="credit code"):
    raw = d.take(18, what)
    try:
        return credit_code(raw.decode("ascii"), what)
    except (UnicodeDecodeError, Invalid) as e:
        raise DecodeError(f"{what}: {e}") from None


# ----- bills (bill.md) -----

KINDS = ["non_tax_payment", "non_tax_general", "non_tax_special", "fund_settlement",
         "donation", "membership_fee", "medical_outpatient", "medical_inpatient",
         "medical_other"]
PAYER_TYPES = ["person", "unit"]


def digits(v, n, what):
    s = string(v, what)
    if len(s) != n or not s.isascii() or not s.isdigit():
        raise Invalid(f"{what}: {s!r} is not {n} digits")
    return s


def decode_digits(d, n, what):
    raw = d.take(n, what)
    if not all(0x30 <= b <= 0x39 for b in raw):
        raise DecodeError(f"{what} is not {n} digits")
    return raw.decode()


def bill_id(v, what="bill"):
    o = fields(v, ["code", "number"], what=what)
    return (digits(o["code"], 8, "code"), digits(o["number"], 10, "number"))


def encode_bill_id(e, b):
    e.fixed(b[0].encode(), 8).fixed(b[1].encode(), 10)


def decode_bill_id(d):
    return (decode_digits(d, 8, "code"), decode_digits(d, 10, "number"))


def code_prefix(v):
    s = string(v, "code prefix")
    if not 1 <= len(s) <= 8 or not s.isascii() or not s.isdigit():
        raise Invalid(f"code prefix {s!r} is not 1 to 8 digits")
    return s


def decode_code_prefix(d):
    s = d.text(8, "code prefix")
    try:
        return code_prefix(s)
    except Invalid as e:
        raise DecodeError(str(e)) from None


BILL_FIELDS = ["code", "number", "kind", "issuer", "issued_at", "payer", "items", "total", "currency"]


def bill_from_json(v, extra=()):
    o = fields(v, BILL_FIELDS, ["remark", "related", *extra], what="bill")
    kind = string(o["kind"], "kind")
    if kind not in KINDS:
        raise Invalid(f"unknown bill kind {kind!r}")
    p = fields(o["payer"], ["type", "name", "id"], what="payer")
    if string(p["type"], "payer.type") not in PAYER_TYPES:
        raise Invalid("unknown payer type")
    if not isinstance(o["items"], list):
        raise Invalid("items is not a list")
    items = []
    for it in o["items"]:
        it = fields(it, ["code", "name", "quantity", "unit", "unit_price", "amount"], what="item")
        items.append({
            "code": string(it["code"], "items.code"),
            "name": string(it["name"], "items.name"),
            "quantity": quantity(it["quantity"], "items.quantity"),
            "unit": string(it["unit"], "items.unit"),
            "unit_price": fen(it["unit_price"], "items.unit_price"),
            "amount": fen(it["amount"], "items.amount"),
        })
    if o["currency"] != "CNY":
        raise Invalid("currency is not CNY")
    related = o.get("related")
    return {
        "code": digits(o["code"], 8, "code"),
        "number": digits(o["number"], 10, "number"),
        "kind": kind,
        "issuer": credit_code(o["issuer"], "issuer"),
        "issued_at": parse_time(o["issued_at"], "issued_at"),
        "payer": {"type": p["type"], "name": string(p["name"], "payer.name"), "id": string(p["id"], "payer.id")},
        "items": items,
        "total": fen(o["total"], "total"),
        "remark": string(o.get("remark", ""), "remark"),
        "related": None if related is None else bill_id(related, "related"),
    }


def encode_bill(e, b):
    e.fixed(b["code"].encode(), 8).fixed(b["number"].encode(), 10)
    e.u8(KINDS.index(b["kind"]) + 1)
    e.fixed(b["issuer"].encode(), 18)
    encode_time(e, b["issued_at"])
    e.u8(PAYER_TYPES.index(b["payer"]["type"]) + 1).text(b["payer"]["name"]).text(b["payer"]["id"])

    def item(e, it):
        e.text(it["code"]).text(it["name"]).u64(it["quantity"]).text(it["unit"])
        e.u64(it["unit_price"]).u64(it["amount"])

    e.seq(b["items"], item)
    e.u64(b["total"]).u8(1).text(b["remark"])
    e.option(b["related"], encode_bill_id)


def _tag(d, names, what):
    t = d.u8(what)
    if not 1 <= t <= len(names):
        raise DecodeError(f"unknown {what} {t}")
    return names[t - 1]


def decode_bill(d):
    code = decode_digits(d, 8, "code")
    number = decode_digits(d, 10, "number")
    kind = _tag(d, KINDS, "bill kind")
    issuer = decode_credit_code(d, "issuer")
    issued_at = decode_time(d)
    payer = {"type": _tag(d, PAYER_TYPES, "payer type"), "name": d.text(300, "payer name"),
             "id": d.text(32, "payer id")}
    items = d.seq(200, lambda d: {
        "code": d.text(32, "item code"), "name": d.text(300, "item name"),
        "quantity": d.u64(), "unit": d.text(30, "item unit"),
        "unit_price": d.u64(), "amount": d.u64()}, "items")
    total = d.u64("total")
    if d.u8("currency") != 1:
        raise DecodeError("unknown currency")
    remark = d.text(600, "remark")
    related = d.option(decode_bill_id, "related")
    return {"code": code, "number": number, "kind": kind, "issuer": issuer,
            "issued_at": issued_at, "payer": payer, "items": items, "total": total,
            "remark": remark, "related": related}


def validate_bill(b, params):
    """bill.md section 5; raises Invalid."""
    p = b["payer"]
    check_text(p["name"], 300, False, "payer.name")
    if p["type"] == "person":
        if not 1 <= len(p["id"]) <= 32 or not re.fullmatch(r"[A-Za-z0-9-]+", p["id"]):
            raise Invalid("payer.id is not 1 to 32 letters, digits or '-'")
    else:
        credit_code(p["id"], "payer.id")
    if not 1 <= len(b["items"]) <= 200:
        raise Invalid("a bill has 1 to 200 items")
    total = 0
    for it in b["items"]:
        check_text(it["code"], 32, False, "items.code")
        check_text(it["name"], 300, False, "items.name")
        check_text(it["unit"], 30, True, "items.unit")
        if it["quantity"] > params["max_item_quantity"] * 10000:
            raise Invalid("items.quantity over params.max_item_quantity")
        if it["unit_price"] > params["max_amount_fen"] or it["amount"] > params["max_amount_fen"]:
            raise Invalid("item amount over params.max_amount_fen")
        if item_amount(it["quantity"], it["unit_price"]) != it["amount"]:
            raise Invalid("items.amount is not quantity x unit price")
        total += it["amount"]
    if b["total"] == 0 or b["total"] > params["max_amount_fen"]:
        raise Invalid("total is zero or over params.max_amount_fen")
    if total != b["total"]:
        raise Invalid("amounts_inconsistent: the items do not add up to the total")
    check_text(b["remark"], 600, True, "remark")
    if b["related"] == (b["code"], b["number"]):
        raise Invalid("a bill is not related to itself")


CHECK_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def check_code(signature):
    """bill.md section 4: the domain is hashed as raw bytes, with no length prefix."""
    v = int.from_bytes(sha256(b"ebill/check-code/v1", signature)[:8], "big") % 36**6
    out = ""
    for _ in range(6):
        out = CHECK_ALPHABET[v % 36] + out
        v //= 36
    return out


def parse_check_code(v, what="check_code"):
    s = string(v, what)
    if not re.fullmatch(r"[0-9a-z]{6}", s):
        raise Invalid(f"{what} is not 6 characters of 0-9 and a-z")
    return s


def decode_check_code(d):
    raw = d.take(6, "check code")
    s = raw.decode("latin-1")
    if not re.fullmatch(r"[0-9a-z]{6}", s):
        raise DecodeError("check code is not 6 characters of 0-9 and a-z")
    return s


# ----- transactions (transaction.md) -----

TX_KINDS = ["issue_bill", "red_reverse", "exchange_paper", "lock", "unlock",
            "confirm_reimbursed", "register_issuer", "register_reimburser",
            "revoke_unit", "rotate_key", "set_prefixes", "renew_qualification",
            "add_regulator", "remove_regulator", "set_threshold",
            "propose", "approve", "reject", "withdraw"]
# governance.md section 1: tags 7 to 15, what k of n regulators sign directly and what a
# proposal may carry.
GOVERNANCE = {"register_issuer", "register_reimburser", "revoke_unit", "rotate_key",
              "set_prefixes", "renew_qualification", "add_regulator", "remove_regulator",
              "set_threshold"}
# Signed by one regulator.
VOTES = {"propose", "approve", "reject", "withdraw"}
LIFECYCLE = {"red_reverse", "exchange_paper", "lock", "unlock", "confirm_reimbursed"}
MAX_REGULATORS = 64

# The fields of each body after its tag, in order: (name, kind)
BODY_FIELDS = {
    "red_reverse": [("issuer", "cc"), ("bill", "id"), ("reason", "reason")],
    "exchange_paper": [("issuer", "cc"), ("bill", "id")],
    "lock": [("unit", "cc"), ("bill", "id"), ("check_code", "check")],
    "unlock": [("unit", "cc"), ("bill", "id")],
    "confirm_reimbursed": [("unit", "cc"), ("bill", "id"), ("check_code", "check")],
    "register_issuer": [("credit_code", "cc"), ("name", "name"), ("public_key", "key"), ("code_prefixes", "prefixes"),
                        ("valid_until", "time")],
    "register_reimburser": [("credit_code", "cc"), ("name", "name"), ("public_key", "key")],
    "revoke_unit": [("credit_code", "cc"), ("reason", "reason")],
    "rotate_key": [("credit_code", "cc"), ("public_key", "key")],
    "set_prefixes": [("credit_code", "cc"), ("code_prefixes", "prefixes")],
    "renew_qualification": [("credit_code", "cc"), ("valid_until", "time")],
    "add_regulator": [("name", "name"), ("public_key", "key")],
    "remove_regulator": [("public_key", "key")],
    "set_threshold": [("threshold", "u16")],
    "propose": [("action", "action"), ("expires_at_height", "u64"), ("base_gov_seq", "u64")],
    "approve": [("proposal", "hash")],
    "reject": [("proposal", "hash")],
    "withdraw": [("proposal", "hash")],
}


def body_from_json(v, nested=False):
    if not isinstance(v, dict) or not isinstance(v.get("type"), str) or v["type"] not in TX_KINDS:
        raise Invalid("transaction body has no known type")
    kind = v["type"]
    if nested and kind not in GOVERNANCE:
        raise Invalid(f"proposal action: {kind} is not a governance action")
    if kind == "issue_bill":
        rest = {k: x for k, x in v.items() if k != "type"}
        return {"type": kind, "bill": bill_from_json(rest)}
    o = fields(v, ["type"] + [n for n, _ in BODY_FIELDS[kind]], what=kind)
    out = {"type": kind}
    for name, f in BODY_FIELDS[kind]:
        x = o[name]
        if f == "cc":
            out[name] = credit_code(x, name)
        elif f == "id":
            out[name] = bill_id(x)
        elif f in ("reason", "name"):
            out[name] = string(x, name)
        elif f == "check":
            out[name] = parse_check_code(x)
        elif f == "key":
            out[name] = hex_bytes(x, 32, name)
        elif f == "hash":
            out[name] = hex_bytes(x, 32, name)
        elif f == "prefixes":
            if not isinstance(x, list):
                raise Invalid("code_prefixes is not a list")
            out[name] = [code_prefix(p) for p in x]
        elif f == "time":
            out[name] = parse_time(x, name)
        elif f == "u16":
            out[name] = integer(x, 16, name)
        elif f == "u64":
            out[name] = integer(x, 64, name)
        elif f == "action":
            out[name] = body_from_json(x, nested=True)
    return out


def encode_body(e, b):
    kind = b["type"]
    e.u8(TX_KINDS.index(kind) + 1)
    if kind == "issue_bill":
        encode_bill(e, b["bill"])
        return
    for name, f in BODY_FIELDS[kind]:
        x = b[name]
        if f == "cc":
            e.fixed(x.encode(), 18)
        elif f == "id":
            encode_bill_id(e, x)
        elif f in ("reason", "name"):
            e.text(x)
        elif f == "check":
            e.fixed(x.encode(), 6)
        elif f in ("key", "hash"):
            e.fixed(x, 32)
        elif f == "prefixes":
            e.seq(x, lambda e, p: e.text(p))
        elif f == "time":
            encode_time(e, x)
        elif f == "u16":
            e.u16(x)
        elif f == "u64":
            e.u64(x)
        elif f == "action":
            encode_body(e, x)


def decode_body(d, nested=False):
    kind = _tag(d, TX_KINDS, "transaction kind")
    if nested and kind not in GOVERNANCE:
        raise DecodeError(f"proposal action: {kind} is not a governance action")
    if kind == "issue_bill":
        return {"type": kind, "bill": decode_bill(d)}
    out = {"type": kind}
    for name, f in BODY_FIELDS[kind]:
        if f == "cc":
            out[name] = decode_credit_code(d, name)
        elif f == "id":
            out[name] = decode_bill_id(d)
        elif f == "reason":
            out[name] = d.text(600, name)
        elif f == "name":
            out[name] = d.text(300, name)
        elif f == "check":
            out[name] = decode_check_code(d)
        elif f in ("key", "hash"):
            out[name] = d.take(32, name)
        elif f == "prefixes":
            out[name] = d.seq(64, decode_code_prefix, "code prefixes")
        elif f == "time":
            out[name] = decode_time(d)
        elif f == "u16":
            out[name] = d.u16(name)
        elif f == "u64":
            out[name] = d.u64(name)
        elif f == "action":
            out[name] = decode_body(d, nested=True)
    return out


def proposal_id(body, chain_id):
    """governance.md section 1: the id of a propose body."""
    if body["type"] != "propose":
        raise Invalid("only a propose body has a proposal id")
    e = Encoder("ebill/gov-proposal/v1").text(chain_id)
    encode_body(e, body)
    return sha256(e.finish())


def body_bill_id(b):
    return (b["bill"]["code"], b["bill"]["number"]) if b["type"] == "issue_bill" else b.get("bill")


def body_actor(b):
    """The acting unit's credit code, or None for governance."""
    if b["type"] == "issue_bill":
        return b["bill"]["issuer"]
    if b["type"] in GOVERNANCE or b["type"] in VOTES:
        return None
    return b.get("issuer") or b.get("unit")


def _check_prefixes(ps):
    if not 1 <= len(ps) <= 64 or len(set(ps)) != len(ps):
        raise Invalid("code_prefixes: 1 to 64 distinct prefixes")


def validate_body(b, params):
    kind = b["type"]
    if kind == "issue_bill":
        validate_bill(b["bill"], params)
    elif kind in ("red_reverse", "revoke_unit"):
        check_text(b["reason"], 600, False, "reason")
    elif kind in ("register_issuer", "register_reimburser", "add_regulator"):
        check_text(b["name"], 300, False, "name")
        if kind == "register_issuer":
            _check_prefixes(b["code_prefixes"])
    elif kind == "set_prefixes":
        _check_prefixes(b["code_prefixes"])
    elif kind == "set_threshold":
        if not 1 <= b["threshold"] <= MAX_REGULATORS:
            raise Invalid(f"threshold: 1 to {MAX_REGULATORS}")
    elif kind == "propose":
        validate_body(b["action"], params)


def signing_bytes(tx, chain_id):
    e = Encoder("ebill/tx/v1").text(chain_id).u64(tx["nonce"])
    encode_body(e, tx["body"])
    return e.finish()


def tx_id(tx, chain_id):
    return sha256(signing_bytes(tx, chain_id))


def signed_tx_from_json(v):
    o = fields(v, ["tx", "auth"], what="signed transaction")
    t = fields(o["tx"], ["nonce", "body"], what="tx")
    a = o["auth"]
    if isinstance(a, dict) and list(a) == ["unit"]:
        auth = ("unit", hex_bytes(a["unit"], 64, "auth.unit"))
    elif isinstance(a, dict) and list(a) == ["regulators"] and isinstance(a["regulators"], list):
        sigs = []
        for s in a["regulators"]:
            s = fields(s, ["index", "signature"], what="regulator signature")
            sigs.append((integer(s["index"], 16, "index"), hex_bytes(s["signature"], 64, "signature")))
        auth = ("regulators", sigs)
    else:
        raise Invalid("auth is neither {unit} nor {regulators}")
    return {"nonce": integer(t["nonce"], 64, "nonce"), "body": body_from_json(t["body"]), "auth": auth}


def check_regulator_order(sigs):
    if any(a[0] >= b[0] for a, b in zip(sigs, sigs[1:])):
        raise Invalid("regulator indices do not strictly increase")


def encode_signed_tx(tx):
    e = Encoder().u64(tx["nonce"])
    encode_body(e, tx["body"])
    kind, a = tx["auth"]
    if kind == "unit":
        e.u8(1).fixed(a, 64)
    else:
        e.u8(2).seq(a, lambda e, s: e.u16(s[0]).fixed(s[1], 64))
    return e.finish()


def decode_signed_tx(d):
    nonce = d.u64("nonce")
    body = decode_body(d)
    tag = d.u8("auth")
    if tag == 1:
        auth = ("unit", d.take(64, "signature"))
    elif tag == 2:
        sigs = d.seq(64, lambda d: (d.u16("regulator index"), d.take(64, "signature")), "regulator signatures")
        try:
            check_regulator_order(sigs)
        except Invalid as e:
            raise DecodeError(str(e)) from None
        auth = ("regulators", sigs)
    else:
        raise DecodeError(f"unknown auth tag {tag}")
    return {"nonce": nonce, "body": body, "auth": auth}


MAX_TX_BYTES = 256 * 1024


# ----- headers, certificates, votes (block.md, certificate.md, vote.md) -----

HEADER_FIELDS = ["chain_id", "height", "prev_hash", "time_ms", "proposer", "tx_root",
                 "tx_count", "validator_set_hash", "state_root"]


def header_from_json(v):
    o = fields(v, HEADER_FIELDS, what="header")
    return {
        "chain_id": string(o["chain_id"], "chain_id"),
        "height": integer(o["height"], 64, "height"),
        "prev_hash": hex_bytes(o["prev_hash"], 32, "prev_hash"),
        "time_ms": integer(o["time_ms"], 64, "time_ms"),
        "proposer": integer(o["proposer"], 32, "proposer"),
        "tx_root": hex_bytes(o["tx_root"], 32, "tx_root"),
        "tx_count": integer(o["tx_count"], 32, "tx_count"),
        "validator_set_hash": hex_bytes(o["validator_set_hash"], 32, "validator_set_hash"),
        "state_root": hex_bytes(o["state_root"], 32, "state_root"),
    }


def encode_header(e, h):
    e.text("ebill/header/v1").text(h["chain_id"]).u64(h["height"]).fixed(h["prev_hash"], 32)
    e.u64(h["time_ms"]).u32(h["proposer"]).fixed(h["tx_root"], 32).u32(h["tx_count"])
    e.fixed(h["validator_set_hash"], 32).fixed(h["state_root"], 32)


def header_bytes(h):
    e = Encoder()
    encode_header(e, h)
    return e.finish()


def decode_header(d):
    d.domain("ebill/header/v1")
    return {"chain_id": d.text(64, "chain id"), "height": d.u64(), "prev_hash": d.take(32),
            "time_ms": d.u64(), "proposer": d.u32(), "tx_root": d.take(32), "tx_count": d.u32(),
            "validator_set_hash": d.take(32), "state_root": d.take(32)}


def block_hash(h):
    return sha256(header_bytes(h))


def certificate_from_json(v):
    o = fields(v, ["height", "round", "block", "signatures"], what="certificate")
    if not isinstance(o["signatures"], list):
        raise Invalid("signatures is not a list")
    sigs = []
    for s in o["signatures"]:
        s = fields(s, ["validator", "signature"], what="commit signature")
        sigs.append((integer(s["validator"], 32, "validator"), hex_bytes(s["signature"], 64, "signature")))
    return {"height": integer(o["height"], 64, "height"), "round": integer(o["round"], 32, "round"),
            "block": hex_bytes(o["block"], 32, "block"), "signatures": sigs}


def encode_certificate(e, c):
    e.u64(c["height"]).u32(c["round"]).fixed(c["block"], 32)
    e.seq(c["signatures"], lambda e, s: e.u32(s[0]).fixed(s[1], 64))


def certificate_bytes(c):
    e = Encoder()
    encode_certificate(e, c)
    return e.finish()


def decode_certificate(d):
    return {"height": d.u64(), "round": d.u32(), "block": d.take(32),
            "signatures": d.seq(256, lambda d: (d.u32(), d.take(64)), "commit signatures")}


def vote_signing_bytes(chain_id, kind, height, round_, block, validator):
    e = Encoder("ebill/vote/v1").text(chain_id).u8({"prevote": 1, "precommit": 2}[kind])
    e.u64(height).u32(round_).option(block, lambda e, b: e.fixed(b, 32)).u32(validator)
    return e.finish()


def signed_vote_bytes(kind, height, round_, block, validator, signature):
    e = Encoder().u8({"prevote": 1, "precommit": 2}[kind]).u64(height).u32(round_)
    e.option(block, lambda e, b: e.fixed(b, 32)).u32(validator).fixed(signature, 64)
    return e.finish()


def proposal_signing_bytes(chain_id, height, round_, block, pol_round, proposer):
    e = Encoder("ebill/proposal/v1").text(chain_id).u64(height).u32(round_).fixed(block, 32)
    e.option(pol_round, lambda e, r: e.u32(r)).u32(proposer)
    return e.finish()


def quorum(n):
    return n * 2 // 3 + 1


def verify_certificate(c, chain_id, height, hash_, validator_keys):
    """certificate.md section 2; raises Invalid."""
    if c["height"] != height or c["block"] != hash_:
        raise Invalid("certificate is for another block")
    idx = [s[0] for s in c["signatures"]]
    if any(a >= b for a, b in zip(idx, idx[1:])) or any(i >= len(validator_keys) for i in idx):
        raise Invalid("signers are not strictly increasing validators")
    if len(idx) < quorum(len(validator_keys)):
        raise Invalid(f"{len(idx)} precommits, {quorum(len(validator_keys))} needed")
    for v, sig in c["signatures"]:
        msg = vote_signing_bytes(chain_id, "precommit", c["height"], c["round"], c["block"], v)
        if not ed25519.verify(validator_keys[v], msg, sig):
            raise Invalid(f"precommit of validator {v} does not verify")


# ----- inclusion proofs (merkle.md section 2) -----


def inclusion_from_json(v):
    o = fields(v, ["leaf_index", "tree_size", "path"], what="inclusion proof")
    if not isinstance(o["path"], list):
        raise Invalid("path is not a list")
    return {"leaf_index": integer(o["leaf_index"], 64, "leaf_index"),
            "tree_size": integer(o["tree_size"], 64, "tree_size"),
            "path": [hex_bytes(p, 32, "path") for p in o["path"]]}


def inclusion_bytes(p):
    return Encoder().u64(p["leaf_index"]).u64(p["tree_size"]).seq(p["path"], lambda e, h: e.fixed(h, 32)).finish()


def decode_inclusion(d):
    return {"leaf_index": d.u64(), "tree_size": d.u64(), "path": d.seq(32, lambda d: d.take(32), "merkle path")}


# ----- genesis (genesis.md) -----

PARAMS32 = ["max_block_txs", "max_block_bytes", "max_tx_bytes"]
PARAMS64 = ["issue_window_past_ms", "issue_window_future_ms", "max_amount_fen", "max_item_quantity"]


def _valid_until(u):
    """governance.md section 4: a genesis unit's qualification date, if it lapses."""
    return parse_time(u["valid_until"], "valid_until") if "valid_until" in u else None


def observers(lst):
    """genesis.md section 1: name, key and, for a regulator's observer (a witness), the
    regulator's governance key."""
    if not isinstance(lst, list):
        raise Invalid("observers is not a list")
    out = []
    for x in lst:
        x = fields(x, ["name", "public_key"], ["regulator"], what="observer")
        reg = hex_bytes(x["regulator"], 32, "regulator") if "regulator" in x else None
        out.append((string(x["name"], "name"), hex_bytes(x["public_key"], 32, "public_key"), reg))
    return out


def witness_key_id(observer_key):
    """checkpoint.md section 2."""
    return sha256(Encoder("ebill/witness-key/v1").fixed(observer_key, 32).finish())[:4]


def genesis_from_json(text):
    o = fields(loads(text) if isinstance(text, str) else text,
               ["chain_id", "genesis_time", "params", "validators", "regulators"],
               ["observers", "issuers", "reimbursers"], what="genesis")
    p = fields(o["params"], PARAMS32 + PARAMS64, what="params")
    params = {k: integer(p[k], 32, k) for k in PARAMS32}
    params.update({k: integer(p[k], 64, k) for k in PARAMS64})

    def named(lst, what):
        if not isinstance(lst, list):
            raise Invalid(f"{what} is not a list")
        return [(string(fields(x, ["name", "public_key"], what=what)["name"], "name"),
                 hex_bytes(x["public_key"], 32, "public_key")) for x in lst]

    r = fields(o["regulators"], ["threshold", "keys"], what="regulators")
    issuers = []
    for u in o.get("issuers", []):
        u = fields(u, ["credit_code", "name", "public_key", "code_prefixes"], ["valid_until"], what="issuer")
        if not isinstance(u["code_prefixes"], list):
            raise Invalid("code_prefixes is not a list")
        issuers.append({"credit_code": credit_code(u["credit_code"]), "name": string(u["name"], "name"),
                        "public_key": hex_bytes(u["public_key"], 32, "public_key"),
                        "code_prefixes": [code_prefix(x) for x in u["code_prefixes"]],
                        "valid_until": _valid_until(u)})
    reimbursers = []
    for u in o.get("reimbursers", []):
        u = fields(u, ["credit_code", "name", "public_key"], ["valid_until"], what="reimburser")
        reimbursers.append({"credit_code": credit_code(u["credit_code"]), "name": string(u["name"], "name"),
                            "public_key": hex_bytes(u["public_key"], 32, "public_key"),
                            "valid_until": _valid_until(u)})
    g = {"chain_id": string(o["chain_id"], "chain_id"),
         "genesis_time": parse_time(o["genesis_time"], "genesis_time"), "params": params,
         "validators": named(o["validators"], "validators"),
         "observers": observers(o.get("observers", [])),
         "threshold": integer(r["threshold"], 16, "threshold"),
         "regulators": named(r["keys"], "regulators.keys"),
         "issuers": issuers, "reimbursers": reimbursers}
    validate_genesis(g)
    return g


def validate_genesis(g):
    if not re.fullmatch(r"[a-z0-9.-]{1,64}", g["chain_id"]):
        raise Invalid("chain_id")
    p = g["params"]
    if not (1 <= p["max_block_txs"] <= 100000 and 1024 <= p["max_tx_bytes"] <= 262144
            and p["max_block_bytes"] >= p["max_tx_bytes"]
            and 1 <= p["max_amount_fen"] <= 10**15 and 1 <= p["max_item_quantity"] <= 10**9):
        raise Invalid("params out of bounds")
    vkeys = [k for _, k in g["validators"]]
    if not 1 <= len(vkeys) <= 256 or len(set(vkeys)) != len(vkeys) or not all(map(ed25519.usable_key, vkeys)):
        raise Invalid("validators")
    for name in [v[0] for v in g["validators"]] + [o[0] for o in g["observers"]]:
        check_text(name, 300, False, "name")
    rkeys = [k for _, k in g["regulators"]]
    if (not 1 <= len(rkeys) <= 64 or not 1 <= g["threshold"] <= len(rkeys)
            or len(set(rkeys)) != len(rkeys) or not all(map(ed25519.usable_key, rkeys))):
        raise Invalid("regulators")
    okeys = [o[1] for o in g["observers"]]
    if len(okeys) > 256:
        raise Invalid("at most 256 observers")
    if len(set(vkeys + okeys)) != len(vkeys) + len(okeys):
        raise Invalid("observer key used twice")
    witnesses = [o for o in g["observers"] if o[2] is not None]
    for _, key, reg in witnesses:
        if reg not in rkeys:
            raise Invalid("observers.regulator is not a genesis regulator's key")
        if not ed25519.usable_key(key):
            raise Invalid("a regulator's observer has an unusable key")
    if len({witness_key_id(o[1]) for o in witnesses}) != len(witnesses):
        raise Invalid("two regulators' observers share a witness key id")
    units = g["issuers"] + g["reimbursers"]
    codes = [u["credit_code"] for u in units]
    if len(units) > 10000 or len(set(codes)) != len(codes):
        raise Invalid("units")
    for u in units:
        check_text(u["name"], 300, False, "unit name")
        if not ed25519.usable_key(u["public_key"]):
            raise Invalid("unit key")
    for u in g["issuers"]:
        ps = u["code_prefixes"]
        if not 1 <= len(ps) <= 64 or len(set(ps)) != len(ps):
            raise Invalid("code_prefixes")


def _named_seq(e, lst):
    e.seq(lst, lambda e, x: e.text(x[0]).fixed(x[1], 32))


def validator_set_hash(g):
    e = Encoder("ebill/validators/v1")
    _named_seq(e, g["validators"])
    return sha256(e.finish())


def genesis_hash(g):
    e = Encoder("ebill/genesis/v1").text(g["chain_id"])
    encode_time(e, g["genesis_time"])
    p = g["params"]
    for k in PARAMS32:
        e.u32(p[k])
    for k in PARAMS64:
        e.u64(p[k])
    _named_seq(e, g["validators"])
    e.seq(g["observers"], lambda e, o: e.text(o[0]).fixed(o[1], 32).option(o[2], lambda e, r: e.fixed(r, 32)))
    e.u16(g["threshold"])
    _named_seq(e, g["regulators"])
    e.seq(g["issuers"], lambda e, u: e.fixed(u["credit_code"].encode(), 18).text(u["name"])
          .fixed(u["public_key"], 32).seq(u["code_prefixes"], lambda e, x: e.text(x))
          .option(u["valid_until"], encode_time))
    e.seq(g["reimbursers"], lambda e, u: e.fixed(u["credit_code"].encode(), 18).text(u["name"])
          .fixed(u["public_key"], 32).option(u["valid_until"], encode_time))
    return sha256(e.finish())
