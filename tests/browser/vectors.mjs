// node tests/browser/vectors.mjs VECTOR_DIR: the browser's verifier (crates/api/src/web/assets/verify.js)
// recomputes the golden vectors it shares with crates/types: the genesis hash, and the signing bytes and
// signed bytes of every transaction kind, and which co-signatures of a checkpoint count. Prints one line per mismatch and exits 1 on any.
import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const v = await import(join(here, "..", "..", "crates", "api", "src", "web", "assets", "verify.js"));
const dir = process.argv[2] || join(here, "..", "..", "crates", "types", "tests", "vectors");
const load = (name) => JSON.parse(readFileSync(join(dir, name), "utf8"));

let checks = 0;
let bad = 0;
function same(what, got, want) {
  checks++;
  if (got !== want) {
    bad++;
    console.log(`MISMATCH ${what}: computed ${got}, vector ${want}`);
  }
}

same("genesis hash", v.bytesToHex(await v.genesisHash(load("genesis.json"))), load("genesis_hash.json").genesis_hash);
const kinds = new Set();
for (const file of ["transactions.json", "governance.json"]) {
  const f = load(file);
  for (const t of f.transactions) {
    kinds.add(t.kind);
    same(`${file} ${t.name} signing bytes`, v.bytesToHex(v.signingBytes(t.json.tx, f.chain_id)), t.signing_bytes);
    same(`${file} ${t.name} signed tx`, v.bytesToHex(v.signedTxBytes(t.json)), t.signed_tx);
  }
}
same("transaction kinds covered", kinds.size, 19);
// checkpoint.json: the version 3 bundle's co-signature counts for its state checkpoint; a forged one does not.
const cp = load("checkpoint.json");
const g = load("genesis.json");
const b3 = cp.bundle_v3_json;
same("bundle_v3 witnesses counted", (await v.countWitnesses(b3.state.header, b3.witnesses, g)).length, 1);
const forged = b3.witnesses.map((w) => ({ key_id: w.key_id, signature: "00".repeat(64) }));
same("a forged co-signature is not counted", (await v.countWitnesses(b3.state.header, forged, g)).length, 0);
console.log(`js vectors: ${checks} checks, ${bad} mismatches`);
process.exit(bad ? 1 : 0);
