//! Seed inputs: the golden vectors (`crates/types/tests/vectors/`, compiled in) and the
//! reference chain's blocks, certificates and bundles.
//!
//! A target writes its seeds into `$EBILL_FUZZ_SEED_DIR` at start-up (libFuzzer reads
//! its corpus after that); `scripts/fuzz.sh` points that at the target's corpus folder,
//! so seeds follow the code and no generated file is committed.

use std::path::Path;

use ebill_types::codec::Canonical;
use ebill_types::{SignedTx, Tx};
use sha2::{Digest, Sha256};

use crate::ledger::{Ledger, TRANSACTIONS_JSON};
use crate::reference::Reference;

const BLOCK_JSON: &str = include_str!("../../crates/types/tests/vectors/block.json");
const BILL_JSON: &str = include_str!("../../crates/types/tests/vectors/bill.json");
const SIGNED_BILL_JSON: &str = include_str!("../../crates/types/tests/vectors/signed_bill.json");
const BILL_CANONICAL_JSON: &str =
    include_str!("../../crates/types/tests/vectors/bill_canonical.json");
const EXAMPLE_BILL_JSON: &str = include_str!("../../genesis/examples/bill.json");

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("a golden vector is JSON")
}

fn hex_at(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("a hex string")).expect("hex")
}

/// The golden signed transactions, canonical bytes.
pub fn golden_txs() -> Vec<Vec<u8>> {
    json(TRANSACTIONS_JSON)["transactions"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| hex_at(&t["signed_tx"]))
        .collect()
}

/// The golden transactions' JSON forms.
pub fn golden_tx_json() -> Vec<Vec<u8>> {
    json(TRANSACTIONS_JSON)["transactions"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["json"].to_string().into_bytes())
        .collect()
}

/// The golden block vector.
pub fn golden_block() -> serde_json::Value {
    json(BLOCK_JSON)
}

/// The types `decode_misc` decodes, in the order of its selector byte.
pub const MISC_TYPES: &[&str] = &[
    "Header",
    "Bill",
    "Tx",
    "TxBody",
    "Auth",
    "InclusionProof",
    "ProvedTx",
    "Timestamp",
    "BillId",
    "CreditCode",
    "CheckCode",
    "CodePrefix",
    "PublicKey",
    "Signature",
    "Hash32",
    "BillStatus",
    "Payer",
    "Item",
    "BillRecord",
    "UnitRecord",
    "BillCode",
    "BillNumber",
    "TxKind",
    "BillKind",
    "StateEvidence",
    "BillState",
    "TreeNode",
    "StateProof",
    "AbsenceProof",
];

fn misc(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    let sel = MISC_TYPES
        .iter()
        .position(|t| *t == name)
        .expect("a misc type");
    let mut out = vec![sel as u8];
    out.extend(bytes);
    out
}

fn misc_seeds() -> Vec<Vec<u8>> {
    let r = Reference::get();
    let mut out = Vec::new();
    let block = golden_block();
    out.push(misc("Header", hex_at(&block["header_canonical"])));
    out.push(misc(
        "Bill",
        hex_at(&json(BILL_CANONICAL_JSON)["bill_canonical"]),
    ));
    for raw in golden_txs() {
        let Ok(stx) = SignedTx::from_canonical_bytes(&raw) else {
            continue;
        };
        out.push(misc("Tx", stx.tx.to_canonical_bytes()));
        out.push(misc("TxBody", stx.tx.body.to_canonical_bytes()));
        out.push(misc("Auth", stx.auth.to_canonical_bytes()));
        if let ebill_types::TxBody::IssueBill(bill) = &stx.tx.body {
            out.push(misc("Bill", bill.to_canonical_bytes()));
            out.push(misc("Timestamp", bill.issued_at.to_canonical_bytes()));
            out.push(misc("BillId", bill.id().to_canonical_bytes()));
            out.push(misc("CreditCode", bill.issuer.to_canonical_bytes()));
            out.push(misc("Payer", bill.payer.to_canonical_bytes()));
            out.push(misc("BillCode", bill.code.to_canonical_bytes()));
            out.push(misc("BillNumber", bill.number.to_canonical_bytes()));
            out.push(misc("BillKind", bill.kind.to_canonical_bytes()));
            for item in &bill.items {
                out.push(misc("Item", item.to_canonical_bytes()));
            }
        }
        out.push(misc("TxKind", stx.tx.body.kind().to_canonical_bytes()));
    }
    for e in &r.bundle.entries {
        out.push(misc("InclusionProof", e.proof.to_canonical_bytes()));
        out.push(misc("ProvedTx", e.to_canonical_bytes()));
        out.push(misc("Header", e.header.to_canonical_bytes()));
        out.push(misc("Hash32", e.header.tx_root.to_canonical_bytes()));
        if let ebill_types::Auth::Unit(sig) = &e.tx.auth {
            out.push(misc("Signature", sig.to_canonical_bytes()));
        }
        if let ebill_types::TxBody::RegisterIssuer {
            public_key,
            code_prefixes,
            ..
        } = &e.tx.tx.body
        {
            out.push(misc("PublicKey", public_key.to_canonical_bytes()));
            for p in code_prefixes {
                out.push(misc("CodePrefix", p.to_canonical_bytes()));
            }
        }
    }
    let ledger = Ledger::get();
    for rec in ledger.state().bills.values() {
        out.push(misc(
            "BillState",
            ebill_ledger::bill_state(rec).to_canonical_bytes(),
        ));
        out.push(misc("BillRecord", rec.to_canonical_bytes()));
        out.push(misc("BillStatus", rec.status.to_canonical_bytes()));
        out.push(misc("CheckCode", rec.check_code.to_canonical_bytes()));
    }
    for rec in ledger.state().units.values() {
        out.push(misc("UnitRecord", rec.to_canonical_bytes()));
    }
    out
}

/// The seeds of the target `name`.
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    let r = Reference::get();
    let block = golden_block();
    let mut bundles = vec![&r.bundle];
    bundles.extend(&r.other_bundles);
    match name {
        "decode_tx" => {
            let mut out = golden_txs();
            out.extend(
                r.blocks
                    .iter()
                    .flat_map(|b| b.txs.iter().map(Canonical::to_canonical_bytes)),
            );
            out
        }
        "decode_block" => {
            let mut out = vec![hex_at(&block["block_canonical"])];
            out.extend(r.blocks.iter().map(Canonical::to_canonical_bytes));
            out
        }
        "decode_vote" => block["votes"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|v| hex_at(&v["signed_vote"]))
            .collect(),
        "decode_certificate" => {
            let mut out = vec![hex_at(&block["commit_certificate_canonical"])];
            out.extend(r.certs.iter().map(Canonical::to_canonical_bytes));
            out
        }
        "decode_bundle" | "verify_bytes" => {
            let mut out: Vec<Vec<u8>> = bundles.iter().map(|b| b.to_bytes()).collect();
            if name == "verify_bytes" {
                out.extend(bundles.iter().map(|b| b.to_json().into_bytes()));
            }
            out
        }
        "decode_misc" => misc_seeds(),
        "json_bill" => [
            BILL_JSON,
            SIGNED_BILL_JSON,
            EXAMPLE_BILL_JSON,
            BILL_CANONICAL_JSON,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "json_tx" => {
            let mut out = golden_tx_json();
            for b in &r.blocks {
                for t in &b.txs {
                    out.push(
                        serde_json::to_string(t)
                            .expect("a transaction serialises")
                            .into_bytes(),
                    );
                }
            }
            out.push(
                serde_json::to_string(&Tx {
                    nonce: 0,
                    body: r.blocks[0].txs[0].tx.body.clone(),
                })
                .expect("serialises")
                .into_bytes(),
            );
            out
        }
        "json_bundle" => bundles.iter().map(|b| b.to_json().into_bytes()).collect(),
        _ => Vec::new(),
    }
}

/// Writes `seeds` into `$EBILL_FUZZ_SEED_DIR`, if set, one file each named by its
/// SHA-256 (so that writing them again changes nothing).
pub fn write(seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os("EBILL_FUZZ_SEED_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("cannot make the seed folder {}: {e}", dir.display());
    }
    for s in seeds {
        let name = hex::encode(Sha256::digest(s));
        let path = dir.join(format!("seed-{}", &name[..16]));
        if let Err(e) = std::fs::write(&path, s) {
            panic!("cannot write the seed {}: {e}", path.display());
        }
    }
}

/// [`write`] of the target's own seeds.
pub fn write_for(name: &str) {
    write(&for_target(name));
}
