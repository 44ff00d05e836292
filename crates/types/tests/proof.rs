//! Proof bundles: a bundle built over a real little chain verifies, and every tampering
//! of it (every single-byte change of the binary form, a sample of JSON field changes,
//! another genesis, missing or reordered entries, invalid histories) fails naming the
//! link that broke.
//!
//! The chain is built by hand (this crate has no ledger or store): four dev validators,
//! blocks of several transactions, precommits of three of the four validators.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;

use ebill_types::dev::{self, dev_key};
use ebill_types::merkle::{self, InclusionProof};
use ebill_types::proof::{BillStatus, Link, ProofBundle, ProvedTx, verify_bundle};
use ebill_types::{
    Bill, BillCode, BillId, Block, CheckCode, CodePrefix, CommitCertificate, CommitSignature,
    CreditCode, Genesis, Hash32, Header, Keypair, SignedTx, Tx, TxBody, TxId, Vote, VoteKind,
};
use serde_json::Value;

const CHAIN: &str = "ebill-proof-test";
const T0: u64 = 1_767_196_800_000 + 3_600_000;

struct Chain {
    genesis: Genesis,
    blocks: Vec<Block>,
    certs: Vec<CommitCertificate>,
}

impl Chain {
    fn new(genesis: Genesis) -> Self {
        Self {
            genesis,
            blocks: Vec::new(),
            certs: Vec::new(),
        }
    }

    /// Appends a block of `txs`, certified by the validators in `signers`.
    fn push(&mut self, txs: Vec<SignedTx>, signers: &[u32]) {
        let height = self.blocks.len() as u64 + 1;
        let prev_hash = self
            .blocks
            .last()
            .map_or_else(|| self.genesis.hash(), |b| b.header.hash());
        let header = Header {
            chain_id: self.genesis.chain_id.clone(),
            height,
            prev_hash,
            time_ms: T0 + height * 1000,
            proposer: (height % 4) as u32,
            tx_root: Block::tx_root(&txs),
            tx_count: txs.len() as u32,
            validator_set_hash: self.genesis.validator_set().unwrap().hash(),
            state_root: Hash32::ZERO,
        };
        let hash = header.hash();
        let signatures = signers
            .iter()
            .map(|&v| CommitSignature {
                validator: v,
                signature: Vote {
                    kind: VoteKind::Precommit,
                    height,
                    round: 1,
                    block: Some(hash),
                    validator: v,
                }
                .sign(&self.genesis.chain_id, &dev_key("validator", v))
                .signature,
            })
            .collect();
        self.certs.push(CommitCertificate {
            height,
            round: 1,
            block: hash,
            signatures,
        });
        self.blocks.push(Block { header, txs });
    }

    /// Where the transaction with `id` is.
    fn locate(&self, id: &TxId) -> Option<(usize, usize)> {
        for (b, block) in self.blocks.iter().enumerate() {
            for (i, t) in block.txs.iter().enumerate() {
                if t.tx.id(&self.genesis.chain_id) == *id {
                    return Some((b, i));
                }
            }
        }
        None
    }

    /// What `build_bundle` does with a store: the entries for these transactions.
    fn bundle(&self, bill: BillId, ids: &[TxId]) -> ProofBundle {
        let mut entries = Vec::new();
        for id in ids {
            let (b, i) = self.locate(id).expect("transaction on the chain");
            let block = &self.blocks[b];
            let leaves = Block::leaf_hashes(&block.txs);
            entries.push(ProvedTx {
                tx: block.txs[i].clone(),
                proof: InclusionProof {
                    leaf_index: i as u64,
                    tree_size: leaves.len() as u64,
                    path: merkle::inclusion_path(&leaves, i).unwrap(),
                },
                header: block.header.clone(),
                certificate: self.certs[b].clone(),
            });
        }
        ProofBundle {
            version: 1,
            chain_id: self.genesis.chain_id.clone(),
            genesis_hash: self.genesis.hash(),
            bill,
            entries,
            state: None,
            witnesses: Vec::new(),
        }
    }
}

fn regulators() -> Vec<Keypair> {
    dev::dev_regulator_keys()
}

fn governance(body: TxBody) -> SignedTx {
    let regs = regulators();
    Tx { nonce: 7, body }.sign_regulators(CHAIN, &[(0, &regs[0]), (2, &regs[2])])
}

fn filler(n: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(900 + n, 100 + n, T0 as i64)),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

fn issuer_b() -> CreditCode {
    dev::test_credit_code('B', 7)
}

fn reimburser_a() -> CreditCode {
    dev::test_credit_code('A', 5)
}

fn bill_b() -> Bill {
    let mut bill = dev::sample_bill(42, 1250, T0 as i64);
    bill.code = BillCode::parse("33020126").unwrap();
    bill.issuer = issuer_b();
    bill
}

struct Fixture {
    chain: Chain,
    bill: BillId,
    /// Ids in bundle order: register, rotate, register reimburser, issue, lock,
    /// unlock, confirm.
    ids: Vec<TxId>,
    check_code: CheckCode,
}

/// A chain where issuer B is registered after genesis and its key rotated, then it
/// issues a bill that a reimbursing unit registered after genesis locks and unlocks,
/// and the genesis reimbursing unit reimburses.
fn fixture() -> Fixture {
    let genesis = dev::dev_genesis_with(CHAIN, 4);
    let mut chain = Chain::new(genesis);
    let old_key = dev_key("issuer", 7);
    let new_key = dev_key("issuer", 8);
    let a_key = dev_key("reimburser", 5);

    let register = governance(TxBody::RegisterIssuer {
        credit_code: issuer_b(),
        name: "杭州市第二医院".into(),
        public_key: old_key.public(),
        code_prefixes: vec![CodePrefix::parse("3302").unwrap()],
        valid_until: ebill_types::dev::dev_valid_until(),
    });
    let rotate = governance(TxBody::RotateKey {
        credit_code: issuer_b(),
        public_key: new_key.public(),
    });
    let register_a = governance(TxBody::RegisterReimburser {
        credit_code: reimburser_a(),
        name: "某保险公司".into(),
        public_key: a_key.public(),
    });
    let issue = Tx {
        nonce: 0,
        body: TxBody::IssueBill(bill_b()),
    }
    .sign_unit(CHAIN, &new_key);
    let signed = issue.to_signed_bill().unwrap();
    let bill = signed.bill.id();
    let lock = Tx {
        nonce: 11,
        body: TxBody::Lock {
            unit: reimburser_a(),
            bill,
            check_code: signed.check_code,
        },
    }
    .sign_unit(CHAIN, &a_key);
    let unlock = Tx {
        nonce: 12,
        body: TxBody::Unlock {
            unit: reimburser_a(),
            bill,
        },
    }
    .sign_unit(CHAIN, &a_key);
    let confirm = Tx {
        nonce: 13,
        body: TxBody::ConfirmReimbursed {
            unit: dev::dev_reimburser_code(),
            bill,
            check_code: signed.check_code,
        },
    }
    .sign_unit(CHAIN, &dev::dev_reimburser_key());

    let txs = [
        &register,
        &rotate,
        &register_a,
        &issue,
        &lock,
        &unlock,
        &confirm,
    ];
    let ids = txs.iter().map(|t| t.tx.id(CHAIN)).collect();
    chain.push(vec![filler(1), register, filler(2)], &[0, 1, 3]);
    chain.push(vec![rotate, filler(3), register_a], &[0, 1, 2, 3]);
    chain.push(
        vec![filler(4), filler(5), filler(6), filler(7), issue],
        &[1, 2, 3],
    );
    chain.push(vec![lock, filler(8)], &[0, 2, 3]);
    chain.push(vec![filler(9), filler(10), unlock], &[0, 1, 2]);
    chain.push(vec![confirm], &[0, 1, 3]);
    Fixture {
        chain,
        bill,
        ids,
        check_code: signed.check_code,
    }
}

fn link_of(bundle: &ProofBundle, genesis: &Genesis) -> Link {
    match verify_bundle(bundle, genesis) {
        Ok(v) => panic!("tampered bundle verified: {v:?}"),
        Err(e) => e.link,
    }
}

#[test]
fn a_bundle_of_a_real_chain_verifies() {
    let f = fixture();
    let bundle = f.chain.bundle(f.bill, &f.ids);
    let v = verify_bundle(&bundle, &f.chain.genesis).unwrap();
    assert_eq!(v.bill.bill, bill_b());
    assert_eq!(v.bill.check_code, f.check_code);
    assert_eq!(v.issuer.credit_code, issuer_b());
    assert_eq!(v.issuer.public_key, dev_key("issuer", 8).public());
    assert!(!v.issuer.in_genesis);
    assert_eq!(
        v.status,
        BillStatus::Reimbursed {
            by: dev::dev_reimburser_code(),
            height: 6
        }
    );
    assert!(v.status.is_final());
    assert_eq!(v.height, 6);
    assert_eq!(v.entries, 7);
    let actions: Vec<&str> = v.history.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(
        actions,
        ["issue_bill", "lock", "unlock", "confirm_reimbursed"]
    );
    assert_eq!(v.history[0].height, 3);
    assert_eq!(v.history[0].index, 4);
    assert_eq!(v.history[0].tx_id, f.ids[3]);
    assert_eq!(v.history[0].block_hash, f.chain.blocks[2].header.hash());

    // Both forms round-trip exactly.
    let bytes = bundle.to_bytes();
    assert_eq!(ProofBundle::from_bytes(&bytes).unwrap(), bundle);
    assert_eq!(ProofBundle::decode_any(&bytes).unwrap(), bundle);
    let json = bundle.to_json();
    assert_eq!(ProofBundle::from_json(&json).unwrap(), bundle);
    assert_eq!(ProofBundle::decode_any(json.as_bytes()).unwrap(), bundle);
}

#[test]
fn a_genesis_issuer_bill_verifies_and_a_prefix_of_the_history_proves_an_earlier_status() {
    let genesis = dev::dev_genesis_with(CHAIN, 4);
    let mut chain = Chain::new(genesis);
    let issue = filler(1);
    let signed = issue.to_signed_bill().unwrap();
    let bill = signed.bill.id();
    let lock = Tx {
        nonce: 1,
        body: TxBody::Lock {
            unit: dev::dev_reimburser_code(),
            bill,
            check_code: signed.check_code,
        },
    }
    .sign_unit(CHAIN, &dev::dev_reimburser_key());
    let reverse_attempt_ids = [issue.tx.id(CHAIN), lock.tx.id(CHAIN)];
    chain.push(vec![issue], &[0, 1, 2, 3]);
    chain.push(vec![filler(2), lock], &[0, 1, 2]);
    let v = verify_bundle(&chain.bundle(bill, &reverse_attempt_ids), &chain.genesis).unwrap();
    assert!(v.issuer.in_genesis);
    assert_eq!(
        v.status,
        BillStatus::Locked {
            by: dev::dev_reimburser_code(),
            height: 2
        }
    );
    let v = verify_bundle(
        &chain.bundle(bill, &reverse_attempt_ids[..1]),
        &chain.genesis,
    )
    .unwrap();
    assert_eq!(v.status, BillStatus::Issued);
    assert_eq!(v.height, 1);
}

#[test]
fn every_single_byte_change_of_the_binary_form_fails_naming_a_link() {
    let f = fixture();
    let bundle = f.chain.bundle(f.bill, &f.ids);
    let bytes = bundle.to_bytes();
    let mut by_link: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut tried = 0usize;
    for pos in 0..bytes.len() {
        let original = bytes[pos];
        let mut values = vec![original ^ 0x01, original ^ 0x80, original ^ 0xff];
        if original != 0 {
            values.push(0);
        }
        values.push(original.wrapping_add(1 + (pos % 253) as u8));
        values.sort_unstable();
        values.dedup();
        for v in values {
            if v == original {
                continue;
            }
            let mut changed = bytes.clone();
            changed[pos] = v;
            tried += 1;
            let link = match ProofBundle::from_bytes(&changed) {
                Err(e) => e.link,
                Ok(b) => match verify_bundle(&b, &f.chain.genesis) {
                    Ok(_) => {
                        panic!("byte {pos} changed from {original:#04x} to {v:#04x} still verifies")
                    }
                    Err(e) => e.link,
                },
            };
            *by_link.entry(link.as_str()).or_default() += 1;
        }
    }
    eprintln!("{} bytes, {tried} changes: {by_link:?}", bytes.len());
    for link in [
        "decode",
        "genesis_hash",
        "merkle_path",
        "certificate",
        "bill_id",
    ] {
        assert!(
            by_link.contains_key(link),
            "no change broke {link}: {by_link:?}"
        );
    }
}

#[test]
fn every_value_of_a_sample_of_bytes_fails() {
    // All 255 other values of every 37th byte (plus the first and last bytes).
    let f = fixture();
    let bytes = f.chain.bundle(f.bill, &f.ids).to_bytes();
    let mut positions: Vec<usize> = (0..bytes.len()).step_by(37).collect();
    positions.push(bytes.len() - 1);
    for pos in positions {
        for v in 0..=255u8 {
            if v == bytes[pos] {
                continue;
            }
            let mut changed = bytes.clone();
            changed[pos] = v;
            if let Ok(b) = ProofBundle::from_bytes(&changed) {
                assert!(
                    verify_bundle(&b, &f.chain.genesis).is_err(),
                    "byte {pos} set to {v:#04x} still verifies"
                );
            }
        }
    }
}

#[test]
fn truncated_or_extended_binary_forms_are_refused() {
    let f = fixture();
    let bytes = f.chain.bundle(f.bill, &f.ids).to_bytes();
    for len in [0, 1, 4, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(
            ProofBundle::from_bytes(&bytes[..len]).unwrap_err().link,
            Link::Decode
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        ProofBundle::from_bytes(&longer).unwrap_err().link,
        Link::Decode
    );
}

/// Applies `edit` to the bundle's JSON and returns the link that breaks.
fn json_tamper(f: &Fixture, edit: impl FnOnce(&mut Value)) -> Link {
    let bundle = f.chain.bundle(f.bill, &f.ids);
    let mut v: Value = serde_json::from_str(&bundle.to_json()).unwrap();
    edit(&mut v);
    match ProofBundle::from_json(&v.to_string()) {
        Err(e) => e.link,
        Ok(b) => link_of(&b, &f.chain.genesis),
    }
}

/// A change to a bundle's JSON.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn flip_hex(s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    c[5] = if c[5] == 'a' { 'b' } else { 'a' };
    c.into_iter().collect()
}

#[test]
fn json_field_tamperings_fail_naming_the_link() {
    let f = fixture();
    // Entry 3 is the IssueBill; entry 4 the lock.
    let cases: Vec<(&str, Edit, Link)> = vec![
        (
            "bill total",
            Box::new(|v| {
                let bill = &mut v["entries"][3]["tx"]["tx"]["body"];
                bill["total"] = "99.00".into();
                bill["items"][0]["amount"] = "99.00".into();
                bill["items"][0]["unit_price"] = "99.00".into();
            }),
            Link::MerklePath,
        ),
        (
            "payer name",
            Box::new(|v| v["entries"][3]["tx"]["tx"]["body"]["payer"]["name"] = "李四".into()),
            Link::MerklePath,
        ),
        (
            "tx nonce",
            Box::new(|v| v["entries"][4]["tx"]["tx"]["nonce"] = 99.into()),
            Link::MerklePath,
        ),
        (
            "unit signature",
            Box::new(|v| {
                let s = v["entries"][4]["tx"]["auth"]["unit"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                v["entries"][4]["tx"]["auth"]["unit"] = flip_hex(&s).into();
            }),
            Link::MerklePath,
        ),
        (
            "path hash",
            Box::new(|v| {
                let s = v["entries"][3]["proof"]["path"][0]
                    .as_str()
                    .unwrap()
                    .to_owned();
                v["entries"][3]["proof"]["path"][0] = flip_hex(&s).into();
            }),
            Link::MerklePath,
        ),
        (
            "leaf index",
            Box::new(|v| v["entries"][3]["proof"]["leaf_index"] = 3.into()),
            Link::MerklePath,
        ),
        (
            "tree size",
            Box::new(|v| v["entries"][3]["proof"]["tree_size"] = 6.into()),
            Link::MerklePath,
        ),
        (
            "path dropped",
            Box::new(|v| {
                v["entries"][3]["proof"]["path"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            Link::MerklePath,
        ),
        (
            "header time",
            Box::new(|v| v["entries"][3]["header"]["time_ms"] = (T0 + 1).into()),
            Link::Certificate,
        ),
        (
            "header prev hash",
            Box::new(|v| {
                let s = v["entries"][0]["header"]["prev_hash"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                v["entries"][0]["header"]["prev_hash"] = flip_hex(&s).into();
            }),
            Link::Certificate,
        ),
        (
            "header height",
            Box::new(|v| v["entries"][5]["header"]["height"] = 9.into()),
            Link::Certificate,
        ),
        (
            "header chain id",
            Box::new(|v| v["entries"][2]["header"]["chain_id"] = "ebill-other".into()),
            Link::HeaderChainId,
        ),
        (
            "header validator set",
            Box::new(|v| {
                let s = v["entries"][1]["header"]["validator_set_hash"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                v["entries"][1]["header"]["validator_set_hash"] = flip_hex(&s).into();
            }),
            Link::ValidatorSet,
        ),
        (
            "certificate signature",
            Box::new(|v| {
                let s = v["entries"][6]["certificate"]["signatures"][2]["signature"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                v["entries"][6]["certificate"]["signatures"][2]["signature"] = flip_hex(&s).into();
            }),
            Link::Certificate,
        ),
        (
            "certificate validator index",
            Box::new(|v| v["entries"][0]["certificate"]["signatures"][2]["validator"] = 2.into()),
            Link::Certificate,
        ),
        (
            "certificate validator out of the set",
            Box::new(|v| v["entries"][0]["certificate"]["signatures"][2]["validator"] = 4.into()),
            Link::Certificate,
        ),
        (
            "certificate signer dropped",
            Box::new(|v| {
                v["entries"][3]["certificate"]["signatures"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            Link::Certificate,
        ),
        (
            "certificate signer repeated",
            Box::new(|v| {
                let sigs = v["entries"][3]["certificate"]["signatures"]
                    .as_array_mut()
                    .unwrap();
                sigs[1] = sigs[0].clone();
            }),
            Link::Certificate,
        ),
        (
            "certificate round",
            Box::new(|v| v["entries"][3]["certificate"]["round"] = 0.into()),
            Link::Certificate,
        ),
        (
            "bundle chain id",
            Box::new(|v| v["chain_id"] = "ebill-dev".into()),
            Link::ChainId,
        ),
        (
            "bundle genesis hash",
            Box::new(|v| {
                let s = v["genesis_hash"].as_str().unwrap().to_owned();
                v["genesis_hash"] = flip_hex(&s).into();
            }),
            Link::GenesisHash,
        ),
        (
            "bundle bill number",
            Box::new(|v| v["bill"]["number"] = "0000000043".into()),
            Link::BillId,
        ),
        (
            "unknown version",
            Box::new(|v| v["version"] = 4.into()),
            Link::Version,
        ),
        (
            "version 3 without a state proof",
            Box::new(|v| v["version"] = 3.into()),
            Link::StateProof,
        ),
        (
            "witnesses in a version 1 bundle",
            Box::new(|v| {
                v["witnesses"] =
                    serde_json::json!([{"key_id": "00000000", "signature": "00".repeat(64)}]);
            }),
            Link::Version,
        ),
        (
            "version 2 without a state proof",
            Box::new(|v| v["version"] = 2.into()),
            Link::StateProof,
        ),
        (
            "unknown field",
            Box::new(|v| v["extra"] = true.into()),
            Link::Decode,
        ),
        (
            "upper-case hex",
            Box::new(|v| {
                let s = v["genesis_hash"].as_str().unwrap().to_uppercase();
                v["genesis_hash"] = s.into();
            }),
            Link::Decode,
        ),
        (
            "entries swapped",
            Box::new(|v| v["entries"].as_array_mut().unwrap().swap(4, 5)),
            Link::EntryOrder,
        ),
        (
            "entry repeated",
            Box::new(|v| {
                let e = v["entries"][4].clone();
                v["entries"].as_array_mut().unwrap().insert(5, e);
            }),
            Link::EntryOrder,
        ),
        (
            "no entries",
            Box::new(|v| v["entries"] = Value::Array(Vec::new())),
            Link::IssueBill,
        ),
    ];
    for (name, edit, expected) in cases {
        assert_eq!(json_tamper(&f, edit), expected, "{name}");
    }
}

#[test]
fn a_bundle_against_another_genesis_fails_at_genesis_hash() {
    let f = fixture();
    let bundle = f.chain.bundle(f.bill, &f.ids);
    let err = verify_bundle(&bundle, &dev::dev_genesis()).unwrap_err();
    assert_eq!(err.link, Link::GenesisHash);
    assert_eq!(err.code(), "genesis_hash");
    assert_eq!(err.entry, None);
    // Same chain id, other validators: still another genesis.
    let err = verify_bundle(&bundle, &dev::dev_genesis_with(CHAIN, 7)).unwrap_err();
    assert_eq!(err.link, Link::GenesisHash);
}

#[test]
fn missing_registry_entries_break_the_issuer_links() {
    let f = fixture();
    let g = &f.chain.genesis;
    // Without the rotation, the old key is in force and does not verify the signature.
    let ids: Vec<TxId> = f
        .ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, id)| *id)
        .collect();
    let err = verify_bundle(&f.chain.bundle(f.bill, &ids), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::IssuerSignature, Some(2)));
    // Without the registration, the issuer is unknown (the rotation comes first).
    let ids: Vec<TxId> = f.ids[1..].to_vec();
    let err = verify_bundle(&f.chain.bundle(f.bill, &ids), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::UnitRegistration, Some(0)));
    let ids: Vec<TxId> = f.ids[2..].to_vec();
    let err = verify_bundle(&f.chain.bundle(f.bill, &ids), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::IssuerRegistration, Some(1)));
    // Without the reimbursing unit's registration, its lock is unproved.
    let ids: Vec<TxId> = f
        .ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, id)| *id)
        .collect();
    let err = verify_bundle(&f.chain.bundle(f.bill, &ids), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::UnitRegistration, Some(3)));
    // Without the issue, the lock comes before any issue.
    let ids: Vec<TxId> = f
        .ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, id)| *id)
        .collect();
    let err = verify_bundle(&f.chain.bundle(f.bill, &ids), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::LifecycleOrder, Some(3)));
    // Only registry changes: no issue at all.
    let err = verify_bundle(&f.chain.bundle(f.bill, &f.ids[..3]), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::IssueBill, None));
    // Another bill's issue in this bill's bundle.
    let mut ids = f.ids.clone();
    ids.insert(0, filler(1).tx.id(CHAIN));
    let err = verify_bundle(&f.chain.bundle(f.bill, &ids), g).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::BillId, Some(0)));
}

/// Certified blocks with transactions the ledger would have refused: the verifier's own
/// replay catches them.
#[test]
fn histories_the_ledger_would_refuse_fail_in_the_replay() {
    let genesis = dev::dev_genesis_with(CHAIN, 4);
    let issue = filler(1);
    let signed = issue.to_signed_bill().unwrap();
    let bill = signed.bill.id();
    let reimburser = dev::dev_reimburser_key();
    let lifecycle =
        |nonce: u64, body: TxBody, key: &Keypair| Tx { nonce, body }.sign_unit(CHAIN, key);
    let unit = dev::dev_reimburser_code();
    let lock = lifecycle(
        1,
        TxBody::Lock {
            unit,
            bill,
            check_code: signed.check_code,
        },
        &reimburser,
    );
    let cases: Vec<(&str, Vec<SignedTx>, Link)> = vec![
        (
            "unlock of an open bill",
            vec![lifecycle(1, TxBody::Unlock { unit, bill }, &reimburser)],
            Link::LifecycleOrder,
        ),
        (
            "lock twice",
            vec![
                lock.clone(),
                lifecycle(
                    2,
                    TxBody::Lock {
                        unit,
                        bill,
                        check_code: signed.check_code,
                    },
                    &reimburser,
                ),
            ],
            Link::LifecycleOrder,
        ),
        (
            "lock with a wrong check code",
            vec![lifecycle(
                1,
                TxBody::Lock {
                    unit,
                    bill,
                    check_code: CheckCode::parse("000000").unwrap(),
                },
                &reimburser,
            )],
            Link::LifecycleOrder,
        ),
        (
            "reversal while locked",
            vec![
                lock.clone(),
                lifecycle(
                    2,
                    TxBody::RedReverse {
                        issuer: dev::dev_issuer_code(),
                        bill,
                        reason: "错开".into(),
                    },
                    &dev::dev_issuer_key(),
                ),
            ],
            Link::LifecycleOrder,
        ),
        (
            "lock signed by another key",
            vec![lifecycle(
                1,
                TxBody::Lock {
                    unit,
                    bill,
                    check_code: signed.check_code,
                },
                &dev::dev_issuer_key(),
            )],
            Link::UnitSignature,
        ),
        (
            "lock by the issuer",
            vec![lifecycle(
                1,
                TxBody::Lock {
                    unit: dev::dev_issuer_code(),
                    bill,
                    check_code: signed.check_code,
                },
                &dev::dev_issuer_key(),
            )],
            Link::UnitRegistration,
        ),
        (
            "lock by an unregistered unit",
            vec![lifecycle(
                1,
                TxBody::Lock {
                    unit: reimburser_a(),
                    bill,
                    check_code: signed.check_code,
                },
                &dev_key("reimburser", 5),
            )],
            Link::UnitRegistration,
        ),
        (
            "lock after revocation",
            vec![
                governance(TxBody::RevokeUnit {
                    credit_code: unit,
                    reason: "test".into(),
                }),
                lock.clone(),
            ],
            Link::UnitRegistration,
        ),
        (
            "registration with one regulator signature",
            vec![
                Tx {
                    nonce: 1,
                    body: TxBody::RegisterReimburser {
                        credit_code: reimburser_a(),
                        name: "x".into(),
                        public_key: dev_key("reimburser", 5).public(),
                    },
                }
                .sign_regulators(CHAIN, &[(1, &regulators()[1])]),
            ],
            Link::RegulatorSignature,
        ),
        (
            "reimbursed twice",
            vec![
                lifecycle(
                    3,
                    TxBody::ConfirmReimbursed {
                        unit,
                        bill,
                        check_code: signed.check_code,
                    },
                    &reimburser,
                ),
                lifecycle(
                    4,
                    TxBody::ConfirmReimbursed {
                        unit,
                        bill,
                        check_code: signed.check_code,
                    },
                    &reimburser,
                ),
            ],
            Link::LifecycleOrder,
        ),
    ];
    for (name, later, expected) in cases {
        let mut chain = Chain::new(genesis.clone());
        let mut ids = vec![issue.tx.id(CHAIN)];
        ids.extend(later.iter().map(|t| t.tx.id(CHAIN)));
        chain.push(vec![issue.clone()], &[0, 1, 2]);
        for t in later {
            chain.push(vec![t], &[0, 1, 2]);
        }
        let err = verify_bundle(&chain.bundle(bill, &ids), &genesis).unwrap_err();
        assert_eq!(err.link, expected, "{name}: {err}");
    }

    // An IssueBill with a nonce other than 0, and one signed by a stranger.
    for (stx, expected) in [
        (
            Tx {
                nonce: 5,
                body: issue.tx.body.clone(),
            }
            .sign_unit(CHAIN, &dev::dev_issuer_key()),
            Link::IssueBill,
        ),
        (
            Tx {
                nonce: 0,
                body: issue.tx.body.clone(),
            }
            .sign_unit(CHAIN, &dev_key("issuer", 9)),
            Link::IssuerSignature,
        ),
    ] {
        let mut chain = Chain::new(genesis.clone());
        let id = stx.tx.id(CHAIN);
        chain.push(vec![stx], &[0, 1, 2]);
        assert_eq!(link_of(&chain.bundle(bill, &[id]), &genesis), expected);
    }

    // A bill under a prefix its issuer is not registered for.
    let mut other = dev::sample_bill(5, 100, T0 as i64);
    other.code = BillCode::parse("44010126").unwrap();
    let stx = Tx {
        nonce: 0,
        body: TxBody::IssueBill(other.clone()),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key());
    let mut chain = Chain::new(genesis.clone());
    let id = stx.tx.id(CHAIN);
    chain.push(vec![stx], &[0, 1, 2]);
    assert_eq!(
        link_of(&chain.bundle(other.id(), &[id]), &genesis),
        Link::IssuerRegistration
    );

    // A certificate with too few signers.
    let mut chain = Chain::new(genesis.clone());
    chain.push(vec![issue.clone()], &[0, 3]);
    let err = verify_bundle(&chain.bundle(bill, &[issue.tx.id(CHAIN)]), &genesis).unwrap_err();
    assert_eq!((err.link, err.entry), (Link::Certificate, Some(0)));
    assert!(err.to_string().contains("2 precommits, 3 needed"), "{err}");
}

#[test]
fn binary_decoding_is_bounded() {
    // A bundle that claims four billion entries in a few bytes.
    let f = fixture();
    let mut bundle = f.chain.bundle(f.bill, &f.ids);
    bundle.entries.clear();
    let mut bytes = bundle.to_bytes();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = ProofBundle::from_bytes(&bytes).unwrap_err();
    assert_eq!(err.link, Link::Decode);
    assert!(err.to_string().contains("proof entries"), "{err}");
    // Over the byte limit.
    let big = vec![0u8; ebill_types::proof::MAX_BUNDLE_BYTES + 1];
    assert_eq!(
        ProofBundle::from_bytes(&big).unwrap_err().link,
        Link::Decode
    );
}
