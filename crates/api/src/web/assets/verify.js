// ebill proof bundle verifier for the browser: a second, independent implementation of
// `ebill_types::proof::verify_bundle` (crates/types/src/proof.rs), in plain JavaScript
// with WebCrypto's Ed25519 and SHA-256. No build step, no dependency.
//
// It re-encodes every signed or hashed value from the bundle's JSON form into the
// canonical bytes of crates/types/src/codec.rs (big-endian integers, u32 length
// prefixes, domain tags), and checks the links in the Rust verifier's order, naming a
// failure by the same link code (merkle_path, certificate, issuer_signature, ...).
// What it does not re-check: the Unicode text rules of a bill's fields (the Rust
// verifier does); it checks the amounts.

const te = new TextEncoder();

export class VerifyError extends Error {
  constructor(link, reason, entry) {
    super(`${entry === undefined || entry === null ? "" : `entry ${entry}: `}${link}: ${reason}`);
    this.link = link;
    this.reason = reason;
    this.entry = entry === undefined ? null : entry;
  }
}

function fail(link, reason, entry) {
  throw new VerifyError(link, reason, entry);
}

// ----- bytes -----

export function hexToBytes(hex, len, what) {
  if (typeof hex !== "string" || !/^[0-9a-f]*$/.test(hex) || hex.length % 2 !== 0 ||
      (len !== undefined && hex.length !== len * 2)) {
    fail("decode", `${what} is not ${len === undefined ? "" : len + " bytes of "}lowercase hex`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function eqBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(parts) {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// The canonical encoder of crates/types/src/codec.rs.
class Enc {
  constructor() { this.parts = []; }
  u8(v) { this.parts.push(Uint8Array.of(v & 0xff)); return this; }
  int(v, bytes, signed) {
    let x = BigInt(v);
    if (signed && x < 0n) x += 1n << BigInt(bytes * 8);
    if (x < 0n || x >= 1n << BigInt(bytes * 8)) fail("decode", `integer ${v} out of range`);
    const out = new Uint8Array(bytes);
    for (let i = bytes - 1; i >= 0; i--) { out[i] = Number(x & 0xffn); x >>= 8n; }
    this.parts.push(out);
    return this;
  }
  u16(v) { return this.int(v, 2, false); }
  u32(v) { return this.int(v, 4, false); }
  u64(v) { return this.int(v, 8, false); }
  i16(v) { return this.int(v, 2, true); }
  i64(v) { return this.int(v, 8, true); }
  fixed(b) { this.parts.push(b); return this; }
  bytes(b) { this.u32(b.length); this.parts.push(b); return this; }
  str(s) { return this.bytes(te.encode(s)); }
  ascii(s, len, what) {
    if (typeof s !== "string" || s.length !== len || !/^[\x20-\x7e]*$/.test(s)) fail("decode", `${what} is not ${len} characters`);
    return this.fixed(te.encode(s));
  }
  option(v, f) { if (v === undefined || v === null) return this.u8(0); this.u8(1); f(this, v); return this; }
  seq(items, f) { this.u32(items.length); for (const it of items) f(this, it); return this; }
  finish() { return concat(this.parts); }
}

function withDomain(tag) { return new Enc().str(tag); }

// ----- values of crates/types -----

// A decimal string ("12.50", "1", "0.125") as an integer scaled by 10^places.
function decimal(s, places, what) {
  if (typeof s !== "string" || !/^[0-9]+(\.[0-9]+)?$/.test(s)) fail("decode", `${what} ${JSON.stringify(s)} is not a decimal string`);
  const [int, frac = ""] = s.split(".");
  if (frac.length > places) fail("decode", `${what} has more than ${places} decimals`);
  return BigInt(int) * 10n ** BigInt(places) + BigInt((frac + "0".repeat(places)).slice(0, places) || "0");
}
const fen = (s, what) => decimal(s, 2, what);
const quantity = (s) => decimal(s, 4, "quantity");

// RFC 3339 text -> {unixMs, offsetMin}.
function timestamp(s) {
  const m = typeof s === "string" && /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i.exec(s);
  if (!m) fail("decode", `time ${JSON.stringify(s)} is not RFC 3339`);
  const frac = m[7] ? m[7].slice(1).padEnd(9, "0") : "000000000";
  if (!/^\d{3}0{6}$/.test(frac)) fail("decode", `time ${s} is more precise than a millisecond`);
  let offsetMin = 0;
  if (m[8].toUpperCase() !== "Z") {
    const sign = m[8][0] === "-" ? -1 : 1;
    offsetMin = sign * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6)));
  }
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return { unixMs: utc + Number(frac.slice(0, 3)) - offsetMin * 60000, offsetMin };
}

const BILL_KINDS = ["non_tax_payment", "non_tax_general", "non_tax_special", "fund_settlement", "donation",
  "membership_fee", "medical_outpatient", "medical_inpatient", "medical_other"];
const TX_KINDS = ["issue_bill", "red_reverse", "exchange_paper", "lock", "unlock", "confirm_reimbursed",
  "register_issuer", "register_reimburser", "revoke_unit", "rotate_key", "set_prefixes", "renew_qualification",
  "add_regulator", "remove_regulator", "set_threshold", "propose", "approve", "reject", "withdraw"];
// docs/spec/governance.md section 1: what k of n regulators sign directly, and what a proposal may carry.
const GOV_ACTIONS = new Set(["register_issuer", "register_reimburser", "revoke_unit", "rotate_key", "set_prefixes",
  "renew_qualification", "add_regulator", "remove_regulator", "set_threshold"]);

function tag(table, name, what) {
  const i = table.indexOf(name);
  if (i < 0) fail("decode", `unknown ${what} ${JSON.stringify(name)}`);
  return i + 1;
}

function encBillId(e, id) {
  e.ascii(id.code, 8, "bill code").ascii(id.number, 10, "bill number");
}
function encCredit(e, c) { e.ascii(c, 18, "credit code"); }
function encKey(e, k) { e.fixed(hexToBytes(k, 32, "public key")); }
function encTime(e, s) { const t = timestamp(s); e.i64(t.unixMs).i16(t.offsetMin); }

function encBill(e, b) {
  encBillId(e, b);
  e.u8(tag(BILL_KINDS, b.kind, "bill kind"));
  encCredit(e, b.issuer);
  const t = timestamp(b.issued_at);
  e.i64(t.unixMs).i16(t.offsetMin);
  const p = b.payer;
  e.u8(p.type === "person" ? 1 : p.type === "unit" ? 2 : fail("decode", "unknown payer type"));
  e.str(p.name).str(p.id);
  e.seq(b.items, (e2, it) => {
    e2.str(it.code).str(it.name).u64(quantity(it.quantity)).str(it.unit)
      .u64(fen(it.unit_price, "unit price")).u64(fen(it.amount, "amount"));
  });
  e.u64(fen(b.total, "total"));
  if (b.currency !== "CNY") fail("decode", "the currency is CNY");
  e.u8(1);
  e.str(b.remark === undefined ? "" : b.remark);
  e.option(b.related, encBillId);
}

function encBody(e, body) {
  const kind = body.type;
  e.u8(tag(TX_KINDS, kind, "transaction kind"));
  switch (kind) {
    case "issue_bill": encBill(e, body); break;
    case "red_reverse": encCredit(e, body.issuer); encBillId(e, body.bill); e.str(body.reason); break;
    case "exchange_paper": encCredit(e, body.issuer); encBillId(e, body.bill); break;
    case "lock":
    case "confirm_reimbursed": encCredit(e, body.unit); encBillId(e, body.bill); e.ascii(body.check_code, 6, "check code"); break;
    case "unlock": encCredit(e, body.unit); encBillId(e, body.bill); break;
    case "register_issuer":
      encCredit(e, body.credit_code); e.str(body.name); encKey(e, body.public_key);
      e.seq(body.code_prefixes, (e2, p) => e2.str(p)); encTime(e, body.valid_until); break;
    case "register_reimburser": encCredit(e, body.credit_code); e.str(body.name); encKey(e, body.public_key); break;
    case "revoke_unit": encCredit(e, body.credit_code); e.str(body.reason); break;
    case "rotate_key": encCredit(e, body.credit_code); encKey(e, body.public_key); break;
    case "set_prefixes": encCredit(e, body.credit_code); e.seq(body.code_prefixes, (e2, p) => e2.str(p)); break;
    case "renew_qualification": encCredit(e, body.credit_code); encTime(e, body.valid_until); break;
    case "add_regulator": e.str(body.name); encKey(e, body.public_key); break;
    case "remove_regulator": encKey(e, body.public_key); break;
    case "set_threshold": e.u16(body.threshold); break;
    case "propose":
      if (!body.action || !GOV_ACTIONS.has(body.action.type)) fail("decode", "a proposal's action is a governance action");
      encBody(e, body.action); e.u64(body.expires_at_height).u64(body.base_gov_seq); break;
    case "approve":
    case "reject":
    case "withdraw": e.fixed(hexToBytes(body.proposal, 32, "proposal id")); break;
    default: fail("decode", `unknown transaction kind ${kind}`);
  }
}

export function signingBytes(tx, chainId) {
  const e = withDomain("ebill/tx/v1").str(chainId).u64(tx.nonce);
  encBody(e, tx.body);
  return e.finish();
}

export function signedTxBytes(stx) {
  const e = new Enc().u64(stx.tx.nonce);
  encBody(e, stx.tx.body);
  const a = stx.auth;
  if (a && typeof a.unit === "string") {
    e.u8(1).fixed(hexToBytes(a.unit, 64, "signature"));
  } else if (a && Array.isArray(a.regulators)) {
    e.u8(2).seq(a.regulators, (e2, s) => e2.u16(s.index).fixed(hexToBytes(s.signature, 64, "signature")));
  } else {
    fail("decode", "unknown auth");
  }
  return e.finish();
}

function headerBytes(h) {
  return withDomain("ebill/header/v1").str(h.chain_id).u64(h.height)
    .fixed(hexToBytes(h.prev_hash, 32, "prev hash")).u64(h.time_ms).u32(h.proposer)
    .fixed(hexToBytes(h.tx_root, 32, "tx root")).u32(h.tx_count)
    .fixed(hexToBytes(h.validator_set_hash, 32, "validator set hash"))
    .fixed(hexToBytes(h.state_root, 32, "state root")).finish();
}

function precommitBytes(chainId, height, round, block, validator) {
  return withDomain("ebill/vote/v1").str(chainId).u8(2).u64(height).u32(round)
    .u8(1).fixed(block).u32(validator).finish();
}

async function validatorSetHash(validators) {
  const e = withDomain("ebill/validators/v1");
  e.seq(validators, (e2, v) => { e2.str(v.name); encKey(e2, v.public_key); });
  return sha256(e.finish());
}

/** The genesis hash of a genesis document (its JSON form), as `Genesis::hash`. */
export async function genesisHash(g) {
  const e = withDomain("ebill/genesis/v1").str(g.chain_id);
  const t = timestamp(g.genesis_time);
  e.i64(t.unixMs).i16(t.offsetMin);
  const p = g.params;
  e.u32(p.max_block_txs).u32(p.max_block_bytes).u32(p.max_tx_bytes).u64(p.issue_window_past_ms)
    .u64(p.issue_window_future_ms).u64(p.max_amount_fen).u64(p.max_item_quantity);
  const named = (e2, v) => { e2.str(v.name); encKey(e2, v.public_key); };
  e.seq(g.validators, named);
  e.seq(g.observers || [], (e2, o) => {
    named(e2, o);
    e2.option(o.regulator, (e3, r) => encKey(e3, r));
  });
  e.u16(g.regulators.threshold);
  e.seq(g.regulators.keys, named);
  e.seq(g.issuers || [], (e2, u) => {
    encCredit(e2, u.credit_code); e2.str(u.name); encKey(e2, u.public_key);
    e2.seq(u.code_prefixes, (e3, pre) => e3.str(pre));
    e2.option(u.valid_until, encTime);
  });
  e.seq(g.reimbursers || [], (e2, u) => {
    encCredit(e2, u.credit_code); e2.str(u.name); encKey(e2, u.public_key); e2.option(u.valid_until, encTime);
  });
  return sha256(e.finish());
}

/** The check code (校验码) of an issuer signature: `CheckCode::derive`. */
export async function checkCode(sigBytes) {
  const d = await sha256(concat([te.encode("ebill/check-code/v1"), sigBytes]));
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(d[i]);
  v %= 36n ** 6n;
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  let out = "";
  for (let i = 0; i < 6; i++) { out = alphabet[Number(v % 36n)] + out; v /= 36n; }
  return out;
}

// ----- signatures -----

const keyCache = new Map();
async function ed25519Verify(pubHex, msg, sigBytes) {
  let key = keyCache.get(pubHex);
  if (!key) {
    key = await crypto.subtle.importKey("raw", hexToBytes(pubHex, 32, "public key"), { name: "Ed25519" }, false, ["verify"]);
    keyCache.set(pubHex, key);
  }
  try {
    return await crypto.subtle.verify({ name: "Ed25519" }, key, sigBytes, msg);
  } catch (_) {
    return false;
  }
}

// ----- Merkle (RFC 6962 / RFC 9162 section 2.1.3.2) -----

async function leafHash(data) { return sha256(concat([Uint8Array.of(0), data])); }
async function nodeHash(l, r) { return sha256(concat([Uint8Array.of(1), l, r])); }

async function verifyInclusion(proof, leaf, root) {
  if (!(proof.leaf_index < proof.tree_size)) return `leaf index ${proof.leaf_index} is not below the tree size ${proof.tree_size}`;
  let fn = BigInt(proof.leaf_index);
  let sn = BigInt(proof.tree_size) - 1n;
  let r = leaf;
  for (const hex of proof.path) {
    const p = hexToBytes(hex, 32, "merkle path");
    if (sn === 0n) return "path length is wrong for this leaf index and tree size";
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) return "path length is wrong for this leaf index and tree size";
  if (!eqBytes(r, root)) return `path leads to root ${bytesToHex(r)}, not ${bytesToHex(root)}`;
  return null;
}

// ----- the state tree (crates/types/src/state_tree.rs) -----

class Dec {
  constructor(b) { this.b = b; this.p = 0; }
  take(n, what) { if (this.p + n > this.b.length) fail("state_proof", `${what}: input ends early`); const o = this.b.slice(this.p, this.p + n); this.p += n; return o; }
  u8(w) { return this.take(1, w)[0]; }
  uint(n, w) { let v = 0n; for (const x of this.take(n, w)) v = (v << 8n) | BigInt(x); return v; }
  finish(w) { if (this.p !== this.b.length) fail("state_proof", `${w}: trailing bytes`); }
}

function decodeStatus(d) {
  const t = d.u8("bill status");
  const code = () => new TextDecoder().decode(d.take(18, "credit code"));
  switch (t) {
    case 1: return { status: "issued" };
    case 2: return { status: "locked", by: code(), height: d.uint(8, "height") };
    case 3: return { status: "reimbursed", by: code(), height: d.uint(8, "height") };
    case 4: return { status: "reversed", height: d.uint(8, "height") };
    case 5: return { status: "paper_exchanged", height: d.uint(8, "height") };
    default: return fail("state_proof", `record: invalid bill status ${t}`);
  }
}

function sameStatus(a, b) {
  return a.status === b.status && (a.by || null) === (b.by || null) &&
    (a.height === undefined ? undefined : BigInt(a.height)) === (b.height === undefined ? undefined : BigInt(b.height));
}

function decodeBillState(bytes) {
  const d = new Dec(bytes);
  const r = {
    status: decodeStatus(d),
    historyLen: Number(d.uint(4, "history length")),
    issueTx: d.take(32, "issue tx"),
    lastTx: d.take(32, "last tx"),
    lastHeight: d.uint(8, "last height"),
    historyDigest: d.take(32, "history digest"),
  };
  d.finish("record");
  return r;
}

function decodeStateProof(bytes) {
  const d = new Dec(bytes);
  const depth = Number(d.uint(2, "depth"));
  if (depth > 256) fail("state_proof", "proof: deeper than 256");
  const map = d.take(Math.ceil(depth / 8), "sibling map");
  for (let i = depth; i < map.length * 8; i++) if (map[i >> 3] & (0x80 >> (i & 7))) fail("state_proof", "proof: bits past the depth");
  const siblings = [];
  for (let i = 0; i < depth; i++) siblings.push(map[i >> 3] & (0x80 >> (i & 7)) ? d.take(32, "sibling") : new Uint8Array(32));
  const endTag = d.u8("proof end");
  let end;
  if (endTag === 0) end = null;
  else if (endTag === 1) end = { key: d.take(32, "leaf key"), value: d.take(32, "leaf value") };
  else fail("state_proof", `proof: invalid end ${endTag}`);
  d.finish("proof");
  return { siblings, end };
}

async function stateRootFor(proof, key) {
  let h = proof.end ? await sha256(concat([Uint8Array.of(0x10), proof.end.key, proof.end.value])) : new Uint8Array(32);
  for (let depth = proof.siblings.length - 1; depth >= 0; depth--) {
    const right = (key[depth >> 3] & (0x80 >> (depth & 7))) !== 0;
    const s = proof.siblings[depth];
    h = await sha256(concat([Uint8Array.of(0x11), right ? s : h, right ? h : s]));
  }
  return h;
}

async function historyStep(prev, step) {
  const e = withDomain("ebill/bill-history/v1").fixed(prev).u8(tag(TX_KINDS, step.action, "action"));
  encCredit(e, step.by);
  e.u64(step.height).u64(step.timeMs).fixed(step.txId);
  return sha256(e.finish());
}

// ----- the lifecycle rule (crates/types/src/transition.rs) -----

function refuseFinal(s) {
  if (s.status === "reimbursed") return `the bill was already reimbursed by ${s.by} at height ${s.height}`;
  if (s.status === "reversed") return `the bill was red-reversed at height ${s.height}`;
  if (s.status === "paper_exchanged") return `the bill was exchanged for paper at height ${s.height}`;
  return null;
}

function transition(s, kind, by, height, issuer, checkCodeMatches) {
  if (kind === "red_reverse" || kind === "exchange_paper") {
    if (by !== issuer) return [null, `the bill was issued by ${issuer}`];
    const f = refuseFinal(s); if (f) return [null, f];
    if (s.status === "locked") return [null, `the bill is locked by ${s.by} since height ${s.height}`];
    return [{ status: kind === "red_reverse" ? "reversed" : "paper_exchanged", height }, null];
  }
  if (kind === "lock" || kind === "confirm_reimbursed") {
    if (!checkCodeMatches) return [null, "the check code does not match the bill"];
    const f = refuseFinal(s); if (f) return [null, f];
    if (s.status === "locked") {
      if (s.by !== by) return [null, `the bill is locked by ${s.by} since height ${s.height}`];
      if (kind === "lock") return [null, `the bill is locked by ${s.by} since height ${s.height}`];
    }
    return [{ status: kind === "lock" ? "locked" : "reimbursed", by, height }, null];
  }
  if (kind === "unlock") {
    const f = refuseFinal(s); if (f) return [null, f];
    if (s.status === "locked" && s.by === by) return [{ status: "issued" }, null];
    if (s.status === "locked") return [null, `the bill is locked by ${s.by} since height ${s.height}`];
    return [null, "the bill is not locked"];
  }
  return [null, `${kind} is not a lifecycle transaction`];
}

// ----- the bundle -----

function checkBillAmounts(b) {
  if (!Array.isArray(b.items) || b.items.length === 0) return "items: a bill has at least one item";
  let sum = 0n;
  for (const [i, it] of b.items.entries()) {
    const q = quantity(it.quantity), price = fen(it.unit_price, "unit price"), amount = fen(it.amount, "amount");
    const expected = (q * price + 5000n) / 10000n;
    if (expected !== amount) return `items.amount: item ${i}: ${it.quantity} × ${it.unit_price} is not ${it.amount}`;
    sum += amount;
  }
  const total = fen(b.total, "total");
  if (total === 0n) return "total: must be more than zero";
  if (sum !== total) return `items add up to a different total than ${b.total}`;
  return null;
}

/**
 * Verifies `bundle` (the JSON form, parsed) against `genesis` (the genesis document,
 * parsed). Resolves to what it proved; rejects with a VerifyError naming the link.
 */
export async function verifyBundle(bundle, genesis) {
  try {
    return await verifyInner(bundle, genesis);
  } catch (e) {
    if (e instanceof VerifyError) throw e;
    throw new VerifyError("decode", String(e && e.message ? e.message : e), null);
  }
}

async function verifyInner(bundle, genesis) {
  if (![1, 2, 3].includes(bundle.version)) fail("version", `bundle version ${bundle.version}, this verifier reads 1, 2 and 3`);
  if (bundle.version === 1 && bundle.state) fail("version", "a version 1 bundle carries no state proof");
  if (bundle.version >= 2 && !bundle.state) fail("state_proof", `a version ${bundle.version} bundle must carry the bill's state proof`);
  const cosigs = bundle.witnesses || [];
  if (!Array.isArray(cosigs)) fail("decode", "witnesses is not a list");
  if (bundle.version !== 3 && cosigs.length) fail("version", `a version ${bundle.version} bundle carries no witnesses`);
  if (cosigs.length > 256) fail("decode", `${cosigs.length} co-signatures, over the limit of 256`);
  const gHash = await genesisHash(genesis);
  if (bundle.genesis_hash !== bytesToHex(gHash)) fail("genesis_hash", `bundle is for genesis ${bundle.genesis_hash}, the genesis given hashes to ${bytesToHex(gHash)}`);
  const chainId = genesis.chain_id;
  if (bundle.chain_id !== chainId) fail("chain_id", `bundle names chain ${JSON.stringify(bundle.chain_id)}, the genesis ${JSON.stringify(chainId)}`);
  const validators = genesis.validators;
  const vsetHash = bytesToHex(await validatorSetHash(validators));
  const quorum = Math.floor(validators.length * 2 / 3) + 1;
  const entries = bundle.entries;
  if (!Array.isArray(entries) || entries.length === 0) fail("issue_bill", "the bundle proves no transaction");
  if (entries.length > 1024) fail("decode", `${entries.length} entries, over the limit of 1024`);

  // Pass 1: the cheap links of every entry.
  const blockHashes = [];
  for (const [i, e] of entries.entries()) {
    const h = e.header;
    if (h.chain_id !== chainId) fail("header_chain_id", `header names chain ${JSON.stringify(h.chain_id)}, not ${JSON.stringify(chainId)}`, i);
    if (h.validator_set_hash !== vsetHash) fail("validator_set", `header names validator set ${h.validator_set_hash}, the genesis set hashes to ${vsetHash}`, i);
    if (e.proof.tree_size !== h.tx_count) fail("merkle_path", `proof is for a tree of ${e.proof.tree_size} leaves, the block has ${h.tx_count} transactions`, i);
    const leaf = await leafHash(signedTxBytes(e.tx));
    const err = await verifyInclusion(e.proof, leaf, hexToBytes(h.tx_root, 32, "tx root"));
    if (err) fail("merkle_path", err, i);
    const blockHash = await sha256(headerBytes(h));
    if (e.certificate.height !== h.height || e.certificate.block !== bytesToHex(blockHash)) {
      fail("certificate", `certificate is for height ${e.certificate.height} block ${e.certificate.block}, the header is height ${h.height} block ${bytesToHex(blockHash)}`, i);
    }
    blockHashes.push(blockHash);
  }
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1], b = entries[i];
    const before = a.header.height < b.header.height || (a.header.height === b.header.height && a.proof.leaf_index < b.proof.leaf_index);
    if (!before) fail("entry_order", `entry at height ${b.header.height} position ${b.proof.leaf_index} follows height ${a.header.height} position ${a.proof.leaf_index}`, i);
  }

  // Pass 2: the certificates, once per distinct (block, certificate).
  const checked = new Set();
  let fewestSigners = validators.length;
  const verifyCert = async (cert, height, blockHash, link, entry) => {
    const sigs = cert.signatures;
    for (let j = 1; j < sigs.length; j++) if (!(sigs[j - 1].validator < sigs[j].validator)) fail(link, "signer list is not strictly increasing known validators", entry);
    for (const s of sigs) if (!(s.validator >= 0 && s.validator < validators.length)) fail(link, "signer list is not strictly increasing known validators", entry);
    if (sigs.length < quorum) fail(link, `${sigs.length} precommits, ${quorum} needed`, entry);
    for (const s of sigs) {
      const msg = precommitBytes(chainId, height, cert.round, blockHash, s.validator);
      if (!(await ed25519Verify(validators[s.validator].public_key, msg, hexToBytes(s.signature, 64, "signature")))) {
        fail(link, `precommit signature of validator ${s.validator} does not verify`, entry);
      }
    }
    fewestSigners = Math.min(fewestSigners, sigs.length);
  };
  for (const [i, e] of entries.entries()) {
    const id = bytesToHex(blockHashes[i]) + JSON.stringify(e.certificate);
    if (checked.has(id)) continue;
    await verifyCert(e.certificate, e.header.height, blockHashes[i], "certificate", i);
    checked.add(id);
  }

  // Pass 3: replay.
  const units = new Map();
  const until = (u) => (u.valid_until === undefined || u.valid_until === null ? null : timestamp(u.valid_until).unixMs);
  for (const u of genesis.issuers || []) units.set(u.credit_code, { name: u.name, key: u.public_key, prefixes: u.code_prefixes, revokedAt: null, validUntilMs: until(u), inGenesis: true });
  for (const u of genesis.reimbursers || []) units.set(u.credit_code, { name: u.name, key: u.public_key, prefixes: null, revokedAt: null, validUntilMs: until(u), inGenesis: true });
  const replay = { issuer: null, signed: null, status: { status: "issued" }, history: [], proposals: new Map() };
  for (const [i, e] of entries.entries()) {
    await replayEntry(i, e, bundle, genesis, units, replay);
  }
  if (!replay.signed) fail("issue_bill", `the bundle holds no IssueBill transaction of bill ${bundle.bill.code}/${bundle.bill.number}`);
  let height = Math.max(...entries.map((e) => e.header.height));
  let stateHeight = null;
  if (bundle.state) {
    await checkState(bundle.state, bundle, chainId, vsetHash, replay, height, verifyCert);
    height = Math.max(height, bundle.state.header.height);
    stateHeight = bundle.state.header.height;
  }
  return {
    chainId,
    genesisHash: bytesToHex(gHash),
    bill: bundle.bill,
    checkCode: replay.signed.checkCode,
    issuer: replay.issuer,
    status: replay.status.status,
    history: replay.history.map((h) => ({ action: h.action, by: h.by, height: h.height, txId: bytesToHex(h.txId) })),
    height,
    entries: entries.length,
    stateHeight,
    witnesses: bundle.version === 3 ? await countWitnesses(bundle.state.header, cosigs, genesis) : null,
    validatorsSigned: fewestSigners,
    validatorsTotal: validators.length,
  };
}

async function checkRegulators(i, e, genesis) {
  const sigs = e.tx.auth && e.tx.auth.regulators;
  if (!Array.isArray(sigs)) fail("regulator_signature", "a registry change carries regulator signatures, not a unit's", i);
  for (let j = 1; j < sigs.length; j++) if (!(sigs[j - 1].index < sigs[j].index)) fail("regulator_signature", "regulator signatures are not in strictly increasing index order", i);
  const msg = signingBytes(e.tx.tx, genesis.chain_id);
  const regs = genesis.regulators;
  for (const s of sigs) {
    const r = regs.keys[s.index];
    if (!r) fail("regulator_signature", `regulator index ${s.index} is not in the genesis`, i);
    if (!(await ed25519Verify(r.public_key, msg, hexToBytes(s.signature, 64, "signature")))) fail("regulator_signature", `signature of regulator ${s.index} (${r.name}) does not verify`, i);
  }
  if (sigs.length < regs.threshold) fail("regulator_signature", `${sigs.length} regulator signatures, ${regs.threshold} needed`, i);
}

// docs/spec/checkpoint.md: the names of the regulators' observers whose co-signatures of
// the state header's checkpoint are valid, each once. A co-signature that does not count
// never fails the bundle.
export async function countWitnesses(header, cosigs, genesis) {
  const msg = withDomain("ebill/cosignature/v1").str(header.chain_id).u64(header.height)
    .fixed(await sha256(headerBytes(header))).fixed(hexToBytes(header.state_root, 32, "state root")).finish();
  const byId = new Map();
  for (const o of genesis.observers || []) {
    if (!o.regulator) continue;
    const id = bytesToHex((await sha256(withDomain("ebill/witness-key/v1").fixed(hexToBytes(o.public_key, 32, "key")).finish())).slice(0, 4));
    byId.set(id, o);
  }
  const counted = [];
  for (const c of cosigs) {
    const o = byId.get(c.key_id);
    if (!o || counted.includes(o.name)) continue;
    if (await ed25519Verify(o.public_key, msg, hexToBytes(c.signature, 64, "signature"))) counted.push(o.name);
  }
  return counted;
}

// The one regulator signature of a proposal or a vote, against the genesis regulators; the signer's index.
async function checkOneRegulator(i, e, genesis) {
  const sigs = e.tx.auth && e.tx.auth.regulators;
  if (!Array.isArray(sigs) || sigs.length !== 1) fail("regulator_signature", "a proposal or vote carries one regulator's signature", i);
  const s = sigs[0];
  const r = genesis.regulators.keys[s.index];
  if (!r) fail("regulator_signature", `regulator index ${s.index} is not in the genesis`, i);
  if (!(await ed25519Verify(r.public_key, signingBytes(e.tx.tx, genesis.chain_id), hexToBytes(s.signature, 64, "signature")))) {
    fail("regulator_signature", `signature of regulator ${s.index} (${r.name}) does not verify`, i);
  }
  return s.index;
}

// A registry action (its signatures already counted) applied to the units.
function applyRegistry(i, body, height, units) {
  const regErr = (reason) => fail("unit_registration", reason, i);
  const code = body.credit_code;
  switch (body.type) {
    case "register_issuer":
    case "register_reimburser":
      if (units.has(code)) regErr(`${code} is registered twice`);
      units.set(code, {
        name: body.name, key: body.public_key, prefixes: body.type === "register_issuer" ? body.code_prefixes : null,
        revokedAt: null, validUntilMs: body.valid_until ? timestamp(body.valid_until).unixMs : null, inGenesis: false,
      });
      return;
    case "rotate_key":
    case "revoke_unit":
    case "set_prefixes":
    case "renew_qualification": {
      const u = units.get(code);
      if (!u) regErr(`${body.type} of ${code}, which is not registered`);
      if (body.type === "rotate_key") u.key = body.public_key;
      else if (body.type === "revoke_unit") u.revokedAt = height;
      else if (body.type === "set_prefixes") u.prefixes = body.code_prefixes;
      else u.validUntilMs = timestamp(body.valid_until).unixMs;
      return;
    }
    default:
      fail("regulator_signature", `${body.type} is not replayed by this verifier: it counts the genesis regulators only`, i);
  }
}

// docs/spec/governance.md section 2: a qualification lapses strictly after its date.
function lapsed(u, timeMs) { return u.validUntilMs !== null && timeMs > u.validUntilMs; }

function bodyBytes(body) { const e = new Enc(); encBody(e, body); return e.finish(); }

async function unitSignature(i, e, key, chainId, link) {
  const sig = e.tx.auth && e.tx.auth.unit;
  if (typeof sig !== "string") fail(link, "a unit's transaction carries one unit signature", i);
  const sigBytes = hexToBytes(sig, 64, "signature");
  if (!(await ed25519Verify(key, signingBytes(e.tx.tx, chainId), sigBytes))) fail(link, `signature does not verify (key ${key})`, i);
  return sigBytes;
}

async function replayEntry(i, e, bundle, genesis, units, replay) {
  const chainId = genesis.chain_id;
  const body = e.tx.tx.body;
  const height = e.header.height;
  const txId = await sha256(signingBytes(e.tx.tx, chainId));
  const step = (by) => ({ action: body.type, by, height, timeMs: e.header.time_ms, txId });
  const regErr = (reason) => fail("unit_registration", reason, i);
  const sameBill = (id) => id.code === bundle.bill.code && id.number === bundle.bill.number;
  switch (body.type) {
    case "register_issuer":
    case "register_reimburser":
    case "rotate_key":
    case "revoke_unit":
    case "set_prefixes":
    case "renew_qualification":
      await checkRegulators(i, e, genesis);
      applyRegistry(i, body, height, units);
      return;
    case "propose": {
      const index = await checkOneRegulator(i, e, genesis);
      const id = bytesToHex(await sha256(concat([withDomain("ebill/gov-proposal/v1").str(chainId).finish(), bodyBytes(body)])));
      const p = { action: body.action, approvals: new Set([index]), executed: false };
      if (p.approvals.size >= genesis.regulators.threshold) { applyRegistry(i, p.action, height, units); p.executed = true; }
      replay.proposals.set(id, p);
      return;
    }
    case "approve": {
      const index = await checkOneRegulator(i, e, genesis);
      const p = replay.proposals.get(body.proposal);
      if (!p) fail("regulator_signature", `an approval of proposal ${body.proposal}, whose Propose is not in the bundle`, i);
      if (p.executed || p.approvals.has(index)) fail("regulator_signature", `approval of proposal ${body.proposal} by regulator ${index} after it executed or a second time`, i);
      p.approvals.add(index);
      if (p.approvals.size >= genesis.regulators.threshold) { p.executed = true; applyRegistry(i, p.action, height, units); }
      return;
    }
    case "add_regulator":
    case "remove_regulator":
    case "set_threshold":
    case "reject":
    case "withdraw":
      fail("regulator_signature", `${body.type} is not replayed by this verifier: it counts the genesis regulators only`, i);
      return;
    case "issue_bill": {
      if (!sameBill(body)) fail("bill_id", `IssueBill of bill ${body.code}/${body.number}, the bundle is for ${bundle.bill.code}/${bundle.bill.number}`, i);
      if (replay.signed) fail("lifecycle_order", "the bill is issued a second time", i);
      if (e.tx.tx.nonce !== 0) fail("issue_bill", `an IssueBill has nonce 0, not ${e.tx.tx.nonce}`, i);
      const bad = checkBillAmounts(body);
      if (bad) fail("issue_bill", bad, i);
      const u = units.get(body.issuer);
      if (!u) fail("issuer_registration", `${body.issuer} is not a registered issuing unit at height ${height}`, i);
      if (u.revokedAt !== null) fail("issuer_registration", `${body.issuer} was revoked at height ${u.revokedAt}`, i);
      if (lapsed(u, e.header.time_ms)) fail("issuer_registration", `the qualification of ${body.issuer} lapsed before block ${height}`, i);
      if (!u.prefixes) fail("issuer_registration", `${body.issuer} is registered as a reimbursing unit, not an issuer`, i);
      if (!u.prefixes.some((p) => body.code.startsWith(p))) fail("issuer_registration", `${body.issuer} may not issue code ${body.code}`, i);
      const sig = await unitSignature(i, e, u.key, chainId, "issuer_signature");
      replay.issuer = { creditCode: body.issuer, name: u.name, publicKey: u.key, inGenesis: u.inGenesis };
      replay.signed = { bill: body, signature: sig, checkCode: await checkCode(sig) };
      replay.status = { status: "issued" };
      replay.history.push(step(body.issuer));
      return;
    }
    case "red_reverse":
    case "exchange_paper":
    case "lock":
    case "unlock":
    case "confirm_reimbursed": {
      const issuerSide = body.type === "red_reverse" || body.type === "exchange_paper";
      const by = issuerSide ? body.issuer : body.unit;
      if (!sameBill(body.bill)) fail("bill_id", `${body.type} of bill ${body.bill.code}/${body.bill.number}, the bundle is for ${bundle.bill.code}/${bundle.bill.number}`, i);
      if (!replay.signed) fail("lifecycle_order", `${body.type} before the bill was issued`, i);
      const u = units.get(by);
      if (!u) regErr(`${by} is not a registered unit at height ${height}`);
      if (u.revokedAt !== null) regErr(`${by} was revoked at height ${u.revokedAt}`);
      if ((u.prefixes !== null) !== issuerSide) regErr(`${by} is not registered for ${body.type}`);
      if (lapsed(u, e.header.time_ms)) regErr(`the qualification of ${by} lapsed before block ${height}`);
      await unitSignature(i, e, u.key, chainId, "unit_signature");
      if (replay.history.length > 64) fail("lifecycle_order", "more than 64 changes of one bill", i);
      const matches = body.check_code === undefined || body.check_code === replay.signed.checkCode;
      const [next, why] = transition(replay.status, body.type, by, height, replay.signed.bill.issuer, matches);
      if (!next) fail("lifecycle_order", `${body.type} by ${by}: ${why}`, i);
      replay.status = next;
      replay.history.push(step(by));
      return;
    }
    default:
      fail("decode", `unknown transaction kind ${body.type}`, i);
  }
}

async function checkState(s, bundle, chainId, vsetHash, replay, entriesHeight, verifyCert) {
  const h = s.header;
  if (h.chain_id !== chainId || h.validator_set_hash !== vsetHash) fail("state_proof", "the state header names another chain or validator set");
  if (h.height < entriesHeight) fail("state_proof", `the state header is at height ${h.height}, below the bundle's transactions at ${entriesHeight}`);
  const hash = await sha256(headerBytes(h));
  if (s.certificate.height !== h.height || s.certificate.block !== bytesToHex(hash)) fail("state_proof", "the state header's certificate is for another block");
  try {
    await verifyCert(s.certificate, h.height, hash, "state_proof", null);
  } catch (e) {
    if (e instanceof VerifyError) fail("state_proof", `certificate: ${e.reason}`);
    throw e;
  }
  const recordBytes = hexToBytes(s.record, undefined, "state record");
  const proofBytes = hexToBytes(s.proof, undefined, "state proof");
  if (recordBytes.length > 16384 || proofBytes.length > 16384) fail("state_proof", "state record or proof over 16 KiB");
  const record = decodeBillState(recordBytes);
  const proof = decodeStateProof(proofBytes);
  const idBytes = new Enc(); encBillId(idBytes, bundle.bill);
  const key = await sha256(withDomain("ebill/state-key/v1").u8(1).fixed(idBytes.finish()).finish());
  const value = await sha256(concat([withDomain("ebill/state-value/v1").u8(1).finish(), recordBytes]));
  if (!proof.end || !eqBytes(proof.end.key, key) || !eqBytes(proof.end.value, value)) fail("state_proof", "the state proof does not end at this key's leaf with this value");
  if (!eqBytes(await stateRootFor(proof, key), hexToBytes(h.state_root, 32, "state root"))) fail("state_proof", "the state proof does not lead to the root");
  let digest = new Uint8Array(32);
  for (const st of replay.history) digest = await historyStep(digest, st);
  const first = replay.history[0], last = replay.history[replay.history.length - 1];
  if (!first) fail("state_proof", "no history to compare the state record with");
  if (!sameStatus(record.status, replay.status)) fail("state_proof", `the state tree says ${record.status.status}, the transactions replay to ${replay.status.status}`);
  if (record.historyLen !== replay.history.length || !eqBytes(record.historyDigest, digest) ||
      !eqBytes(record.issueTx, first.txId) || !eqBytes(record.lastTx, last.txId) || record.lastHeight !== BigInt(last.height)) {
    fail("state_proof", `the state tree records ${record.historyLen} transactions of the bill up to height ${h.height}, the bundle shows ${replay.history.length}: a transaction is missing or extra`);
  }
}

/** Human text of a result, in `lang` ("zh-CN" or "en"). */
export function describe(result, lang, ms) {
  const zh = lang !== "en";
  const t = ms === undefined ? "" : zh ? `（用时 ${ms.toFixed(0)} 毫秒）` : ` (${ms.toFixed(0)} ms)`;
  if (result.ok) {
    const r = result.value;
    const links = zh
      ? `${r.validatorsSigned}/${r.validatorsTotal} 个验证节点签名、默克尔路径、开票单位签名、校验码${r.stateHeight !== null ? "、状态证明" : ""}${r.witnesses ? `、${r.witnesses.length} 个监管观察节点联署` : ""}`
      : `${r.validatorsSigned} of ${r.validatorsTotal} validators, Merkle path, issuer signature, check code${r.stateHeight !== null ? ", state proof" : ""}${r.witnesses ? `, co-signed by ${r.witnesses.length} regulators' observers` : ""}`;
    return (zh ? `已在本浏览器中验证：${links}${t}。\n信任的创世哈希：${r.genesisHash}` : `Verified in this browser: ${links}${t}.\nTrusted genesis hash: ${r.genesisHash}`);
  }
  const e = result.error;
  return (zh ? `验证失败：${e.link}${e.entry !== null ? `（第 ${e.entry} 项）` : ""}：${e.reason}` : `Verification failed at ${e.link}${e.entry !== null ? ` (entry ${e.entry})` : ""}: ${e.reason}`);
}

/** Runs `verifyBundle` and reports {ok, value} or {ok: false, error: {link, entry, reason}}. */
export async function check(bundle, genesis) {
  try {
    return { ok: true, value: await verifyBundle(bundle, genesis) };
  } catch (e) {
    const err = e instanceof VerifyError ? e : new VerifyError("decode", String(e), null);
    return { ok: false, error: { link: err.link, entry: err.entry, reason: err.reason } };
  }
}
