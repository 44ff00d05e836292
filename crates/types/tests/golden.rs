//! Golden vectors: the exact bytes of the protocol, pinned in files.
//!
//! Every test here rebuilds a set of values from fixed seeds and a fixed bill (see
//! `common/mod.rs`), computes their canonical bytes, ids, signatures, check codes,
//! hashes and Merkle proofs, and compares them with the JSON files in
//! `tests/vectors/`. Any change of any byte fails the test: **a change to these files is
//! a protocol change** (old signatures, ids, block hashes and proofs stop matching).
//!
//! A missing file fails too; nothing is ever written silently. To rewrite the files
//! deliberately, after a protocol change that is meant:
//!
//! ```text
//! EBILL_REGENERATE_VECTORS=1 cargo test -p ebill-types --test golden
//! git diff crates/types/tests/vectors/   # review every changed byte, then commit
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::*;
use ebill_types::block::VALIDATOR_SET_DOMAIN;
use ebill_types::genesis::{IssuerEntry, Observer, Regulator, Regulators, ReimburserEntry};
use ebill_types::keyfile::{KdfCost, NONCE_BYTES, SALT_BYTES, SealedKeyFile};
use ebill_types::merkle::{self, InclusionProof};
use ebill_types::tx::TX_DOMAIN;
use ebill_types::{
    Auth, Block, Canonical, CheckCode, CodePrefix, CommitCertificate, CommitSignature, Genesis,
    Hash32, Header, Params, Proposal, SignedBill, SignedTx, SignedVote, Timestamp, Tx, TxBody,
    Validator, ValidatorSet, Vote, VoteKind,
};
use serde_json::{Value, json};

const REGENERATE_VAR: &str = "EBILL_REGENERATE_VECTORS";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("vectors")
}

fn regenerating() -> bool {
    std::env::var(REGENERATE_VAR).is_ok_and(|v| v == "1")
}

/// The first place where two JSON values differ, as a path, or `None` if equal.
fn first_difference(path: &str, stored: &Value, computed: &Value) -> Option<String> {
    match (stored, computed) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys()) {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(&format!("{path}.{k}"), x, y) {
                            return Some(d);
                        }
                    }
                    (x, y) => {
                        return Some(format!("{path}.{k}: file has {x:?}, code computes {y:?}"));
                    }
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(d) = first_difference(&format!("{path}[{i}]"), x, y) {
                    return Some(d);
                }
            }
            (a.len() != b.len()).then(|| {
                format!(
                    "{path}: file has {} entries, code computes {}",
                    a.len(),
                    b.len()
                )
            })
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: file has {a}, code computes {b}")),
    }
}

/// Compares `computed` with the stored vector file `name`, or rewrites the file when
/// `EBILL_REGENERATE_VECTORS=1`. Returns the text of the file as it stands.
fn check_vector(name: &str, computed: &Value) -> String {
    let path = vectors_dir().join(name);
    if regenerating() {
        std::fs::create_dir_all(vectors_dir()).unwrap();
        let text = serde_json::to_string_pretty(computed).unwrap() + "\n";
        std::fs::write(&path, &text).unwrap();
        eprintln!("rewrote golden vector file {}", path.display());
        return text;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden vector file {} cannot be read ({e}). The vectors are part of the \
             protocol and are never created silently; to write them deliberately run \
             `{REGENERATE_VAR}=1 cargo test -p ebill-types --test golden` and commit them.",
            path.display()
        )
    });
    let stored: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    if let Some(diff) = first_difference("$", &stored, computed) {
        panic!(
            "golden vector {} no longer matches the code: {diff}\n\
             This is a protocol change. If it is intended, regenerate with \
             `{REGENERATE_VAR}=1 cargo test -p ebill-types --test golden`, review the diff \
             and say so in the commit message.",
            path.display()
        );
    }
    text
}

fn hx(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Signs and checks one vector transaction; returns it with its JSON vector entry.
fn tx_vector(name: &str, tx: Tx) -> (SignedTx, Value) {
    let issuer = key(ISSUER_SEED);
    let reimburser = key(REIMBURSER_SEED);
    let regs = regulator_keys();
    let signing_bytes = tx.signing_bytes(CHAIN_ID);
    let id = tx.id(CHAIN_ID);
    assert_eq!(id, Hash32::digest(&signing_bytes));
    let signed = match tx.body.actor() {
        ebill_types::Actor::Unit(code) if code == issuer_code() => tx.sign_unit(CHAIN_ID, &issuer),
        ebill_types::Actor::Unit(code) => {
            assert_eq!(code, reimburser_code());
            tx.sign_unit(CHAIN_ID, &reimburser)
        }
        // Every governance vector is signed by two of the three regulators; which two
        // depends on the nonce, so that every pair appears.
        ebill_types::Actor::Regulators => {
            let pair: [u16; 2] = match tx.nonce % 3 {
                0 => [0, 1],
                1 => [1, 2],
                _ => [0, 2],
            };
            let keys: Vec<(u16, &ebill_types::Keypair)> =
                pair.iter().map(|&i| (i, &regs[usize::from(i)])).collect();
            tx.sign_regulators(CHAIN_ID, &keys)
        }
        // A proposal or a vote: one regulator, chosen by the nonce.
        ebill_types::Actor::Regulator => {
            let i = (tx.nonce % 3) as u16;
            tx.sign_regulator(CHAIN_ID, i, &regs[usize::from(i)])
        }
    };
    let signatures: Vec<Value> = match &signed.auth {
        Auth::Unit(sig) => {
            let pk = if signed.tx.body.actor() == ebill_types::Actor::Unit(issuer_code()) {
                issuer.public()
            } else {
                reimburser.public()
            };
            assert_eq!(pk.verify(&signing_bytes, sig), Ok(()));
            vec![json!({"public_key": pk.to_hex(), "signature": sig.to_hex()})]
        }
        Auth::Regulators(sigs) => sigs
            .iter()
            .map(|s| {
                let pk = regs[usize::from(s.index)].public();
                assert_eq!(pk.verify(&signing_bytes, &s.signature), Ok(()));
                json!({
                    "regulator_index": s.index,
                    "public_key": pk.to_hex(),
                    "signature": s.signature.to_hex(),
                })
            })
            .collect(),
    };
    let bytes = signed.to_canonical_bytes();
    assert_eq!(SignedTx::from_canonical_bytes(&bytes).as_ref(), Ok(&signed));
    let json_form = serde_json::to_value(&signed).unwrap();
    assert_eq!(
        serde_json::from_value::<SignedTx>(json_form.clone()).unwrap(),
        signed
    );
    let mut entry = json!({
        "name": name,
        "kind": signed.tx.body.kind().as_str(),
        "signing_bytes": hx(&signing_bytes),
        "tx_id": id.to_hex(),
        "signatures": signatures,
        "signed_tx": hx(&bytes),
        "merkle_leaf_hash": merkle::leaf_hash(&bytes).to_hex(),
        "json": json_form,
    });
    if let (Auth::Unit(sig), TxBody::IssueBill(_)) = (&signed.auth, &signed.tx.body) {
        entry["check_code"] = json!(CheckCode::derive(sig).as_str());
    }
    (signed, entry)
}

/// The ten vector transactions, one of every kind, in nonce order.
fn vector_txs() -> Vec<(SignedTx, Value)> {
    let bill = example_bill();
    let bill_id = bill.id();
    let issue = tx_vector(
        "issue_bill",
        Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill.clone()),
        },
    );
    let check_code = match &issue.0.auth {
        Auth::Unit(sig) => CheckCode::derive(sig),
        Auth::Regulators(_) => unreachable!(),
    };
    let bodies = vec![
        (
            "red_reverse",
            TxBody::RedReverse {
                issuer: issuer_code(),
                bill: bill_id,
                reason: "交款人信息填写错误".into(),
            },
        ),
        (
            "exchange_paper",
            TxBody::ExchangePaper {
                issuer: issuer_code(),
                bill: bill_id,
            },
        ),
        (
            "lock",
            TxBody::Lock {
                unit: reimburser_code(),
                bill: bill_id,
                check_code,
            },
        ),
        (
            "unlock",
            TxBody::Unlock {
                unit: reimburser_code(),
                bill: bill_id,
            },
        ),
        (
            "confirm_reimbursed",
            TxBody::ConfirmReimbursed {
                unit: reimburser_code(),
                bill: bill_id,
                check_code,
            },
        ),
        (
            "register_issuer",
            TxBody::RegisterIssuer {
                credit_code: new_issuer_code(),
                name: "宁波市第一医院".into(),
                public_key: public(NEW_ISSUER_SEED),
                code_prefixes: vec![
                    CodePrefix::parse("3302").unwrap(),
                    CodePrefix::parse("330201").unwrap(),
                ],
                valid_until: ebill_types::dev::dev_valid_until(),
            },
        ),
        (
            "register_reimburser",
            TxBody::RegisterReimburser {
                credit_code: new_reimburser_code(),
                name: "宁波某保险公司".into(),
                public_key: public(NEW_REIMBURSER_SEED),
            },
        ),
        (
            "revoke_unit",
            TxBody::RevokeUnit {
                credit_code: new_reimburser_code(),
                reason: "营业执照注销".into(),
            },
        ),
        (
            "rotate_key",
            TxBody::RotateKey {
                credit_code: issuer_code(),
                public_key: public(ROTATED_SEED),
            },
        ),
    ];
    let mut out = vec![issue];
    for (i, (name, body)) in bodies.into_iter().enumerate() {
        assert_eq!(body.validate(&Params::default()), Ok(()), "{name}");
        out.push(tx_vector(
            name,
            Tx {
                nonce: i as u64 + 1,
                body,
            },
        ));
    }
    out
}

fn example_genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN_ID.into(),
        genesis_time: Timestamp::parse("2026-11-01T00:00:00+08:00").unwrap(),
        params: Params::default(),
        validators: validator_keys()
            .iter()
            .enumerate()
            .map(|(i, k)| Validator {
                name: format!("validator-{i}"),
                public_key: k.public(),
            })
            .collect(),
        observers: vec![Observer {
            name: "浙江省财政厅观察节点".into(),
            public_key: public(OBSERVER_SEED),
            regulator: Some(regulator_keys()[0].public()),
        }],
        regulators: Regulators {
            threshold: 2,
            keys: regulator_keys()
                .iter()
                .enumerate()
                .map(|(i, k)| Regulator {
                    name: format!("regulator-{i}"),
                    public_key: k.public(),
                })
                .collect(),
        },
        issuers: vec![IssuerEntry {
            credit_code: issuer_code(),
            name: "杭州市某医院".into(),
            public_key: public(ISSUER_SEED),
            code_prefixes: vec![CodePrefix::parse("3301").unwrap()],
            valid_until: Some(Timestamp::end_of_day("2027-12-31").unwrap()),
        }],
        reimbursers: vec![ReimburserEntry {
            credit_code: reimburser_code(),
            name: "杭州某保险公司".into(),
            public_key: public(REIMBURSER_SEED),
            valid_until: None,
        }],
    }
}

#[test]
fn keys_and_units() {
    let mut seeds = vec![
        ("issuer", ISSUER_SEED),
        ("reimburser", REIMBURSER_SEED),
        ("rotated", ROTATED_SEED),
        ("new_issuer", NEW_ISSUER_SEED),
        ("new_reimburser", NEW_REIMBURSER_SEED),
        ("observer", OBSERVER_SEED),
    ];
    for (i, s) in REGULATOR_SEEDS.iter().enumerate() {
        seeds.push((["regulator_0", "regulator_1", "regulator_2"][i], *s));
    }
    for (i, s) in VALIDATOR_SEEDS.iter().enumerate() {
        seeds.push((
            ["validator_0", "validator_1", "validator_2", "validator_3"][i],
            *s,
        ));
    }
    let keys: Vec<Value> = seeds
        .iter()
        .map(|(name, seed)| {
            let pk = public(*seed);
            assert_eq!(pk.check_registrable(), Ok(()));
            json!({"name": name, "seed": hx(seed), "public_key": pk.to_hex()})
        })
        .collect();
    let codes = json!({
        "issuer": issuer_code().as_str(),
        "reimburser": reimburser_code().as_str(),
        "new_issuer": new_issuer_code().as_str(),
        "new_reimburser": new_reimburser_code().as_str(),
    });
    check_vector("keys.json", &json!({"keys": keys, "credit_codes": codes}));
}

#[test]
fn bill_documents() {
    let bill = example_bill();
    assert_eq!(bill.validate(&Params::default()), Ok(()));
    let text = check_vector("bill.json", &serde_json::to_value(&bill).unwrap());
    assert_eq!(
        serde_json::from_str::<ebill_types::Bill>(&text).unwrap(),
        bill
    );

    let (issue, _) = vector_txs().remove(0);
    let signed_bill = issue.to_signed_bill().unwrap();
    assert_eq!(SignedTx::from_signed_bill(&signed_bill), issue);
    let text = check_vector(
        "signed_bill.json",
        &serde_json::to_value(&signed_bill).unwrap(),
    );
    assert_eq!(
        serde_json::from_str::<SignedBill>(&text).unwrap(),
        signed_bill
    );

    check_vector(
        "bill_canonical.json",
        &json!({
            "bill_canonical": hx(&bill.to_canonical_bytes()),
            "bill_id_key": hx(&bill.id().key()),
            "issuer_signature": signed_bill.signature.to_hex(),
            "check_code": signed_bill.check_code.as_str(),
            "check_code_domain": String::from_utf8_lossy(CheckCode::DOMAIN),
        }),
    );
}

#[test]
fn transactions_of_every_kind() {
    let txs = vector_txs();
    let kinds: Vec<&str> = txs.iter().map(|(t, _)| t.tx.body.kind().as_str()).collect();
    // The kinds from set_prefixes on are in governance.json.
    let all: Vec<&str> = ebill_types::TxKind::ALL
        .iter()
        .take_while(|k| **k != ebill_types::TxKind::SetPrefixes)
        .map(|k| k.as_str())
        .collect();
    assert_eq!(kinds, all, "one vector per transaction kind, in wire order");
    if let Auth::Regulators(sigs) = &txs[9].0.auth {
        assert_eq!(sigs.len(), 2, "RotateKey carries two regulator signatures");
    }
    let entries: Vec<Value> = txs.into_iter().map(|(_, v)| v).collect();
    check_vector(
        "transactions.json",
        &json!({"chain_id": CHAIN_ID, "domain": TX_DOMAIN, "transactions": entries}),
    );
}

#[test]
fn genesis_document_and_hash() {
    let genesis = example_genesis();
    assert_eq!(genesis.validate(), Ok(()));
    let text = check_vector("genesis.json", &serde_json::to_value(&genesis).unwrap());
    let parsed = Genesis::from_json(&text).unwrap();
    assert_eq!(parsed, genesis);
    check_vector(
        "genesis_hash.json",
        &json!({
            "genesis_hash": genesis.hash().to_hex(),
            "validator_set_hash": genesis.validator_set().unwrap().hash().to_hex(),
            "validator_set_domain": VALIDATOR_SET_DOMAIN,
        }),
    );
}

/// A checkpoint, its signed bytes, the genesis observer's witness key id and its
/// co-signature (docs/spec/checkpoint.md).
#[test]
fn checkpoint_and_cosignature() {
    use ebill_types::checkpoint::{Checkpoint, Cosignature, KeyId, Witnesses};
    let genesis = example_genesis();
    let checkpoint = Checkpoint {
        chain_id: CHAIN_ID.into(),
        height: 7,
        block_hash: Hash32::digest(b"block 7"),
        state_root: Hash32::digest(b"state 7"),
    };
    let witness = key(OBSERVER_SEED);
    let cosig = checkpoint.cosign(&witness);
    let witnesses = Witnesses::of(&genesis);
    assert_eq!(
        checkpoint
            .verify_cosignature(&cosig, &witnesses)
            .map(|w| w.observer_key),
        Ok(witness.public())
    );
    let bytes = cosig.to_canonical_bytes();
    assert_eq!(Cosignature::from_canonical_bytes(&bytes), Ok(cosig));
    assert_eq!(
        Checkpoint::from_canonical_bytes(&checkpoint.to_canonical_bytes()).as_ref(),
        Ok(&checkpoint)
    );
    // The bundle format: a version 2 bundle and the same as version 3 with this
    // co-signature (bytes only: no entries, a placeholder state record and proof).
    let header = Header {
        chain_id: CHAIN_ID.into(),
        height: 7,
        prev_hash: Hash32::digest(b"block 6"),
        time_ms: 1_000,
        proposer: 0,
        tx_root: Hash32::ZERO,
        tx_count: 0,
        validator_set_hash: genesis.validator_set().unwrap().hash(),
        state_root: Hash32::digest(b"state 7"),
    };
    let mut bundle = ebill_types::proof::ProofBundle {
        version: 2,
        chain_id: CHAIN_ID.into(),
        genesis_hash: genesis.hash(),
        bill: example_bill_id(),
        entries: Vec::new(),
        state: Some(ebill_types::proof::StateEvidence {
            certificate: CommitCertificate {
                height: 7,
                round: 0,
                block: header.hash(),
                signatures: Vec::new(),
            },
            header: header.clone(),
            record: vec![1, 2],
            proof: vec![3],
        }),
        witnesses: Vec::new(),
    };
    let v2 = bundle.to_bytes();
    bundle.version = 3;
    bundle.witnesses = vec![Checkpoint::of(&header).cosign(&witness)];
    let v3 = bundle.to_bytes();
    assert_eq!(
        ebill_types::proof::ProofBundle::from_bytes(&v3).as_ref(),
        Ok(&bundle)
    );
    assert_eq!(&v3[v2.len()..v2.len() + 4], &1u32.to_be_bytes());
    check_vector(
        "checkpoint.json",
        &json!({
            "bundle_v2": hx(&v2),
            "bundle_v3": hx(&v3),
            "bundle_v3_json": serde_json::to_value(&bundle).unwrap(),
            "checkpoint": serde_json::to_value(&checkpoint).unwrap(),
            "signing_bytes": hx(&checkpoint.signing_bytes()),
            "witness_public_key": witness.public().to_hex(),
            "witness_key_id": KeyId::of(&witness.public()).to_hex(),
            "cosignature": serde_json::to_value(cosig).unwrap(),
            "cosignature_bytes": hx(&bytes),
        }),
    );
}

#[test]
fn block_header_votes_proposal_and_certificate() {
    let genesis = example_genesis();
    let validators: ValidatorSet = genesis.validator_set().unwrap();
    let vkeys = validator_keys();
    let txs: Vec<SignedTx> = vector_txs().into_iter().map(|(t, _)| t).collect();
    let bill = example_bill();
    let header = Header {
        chain_id: CHAIN_ID.into(),
        height: 1,
        prev_hash: genesis.hash(),
        time_ms: u64::try_from(bill.issued_at.unix_ms).unwrap() + 5_000,
        proposer: validators.proposer(1, 0),
        tx_root: Block::tx_root(&txs),
        tx_count: u32::try_from(txs.len()).unwrap(),
        validator_set_hash: validators.hash(),
        state_root: Hash32::ZERO,
    };
    let block = Block {
        header: header.clone(),
        txs,
    };
    assert_eq!(block.check_body(), Ok(()));
    let header_bytes = header.to_canonical_bytes();
    assert_eq!(
        Header::from_canonical_bytes(&header_bytes).as_ref(),
        Ok(&header)
    );
    let block_bytes = block.to_canonical_bytes();
    assert_eq!(
        Block::from_canonical_bytes(&block_bytes).as_ref(),
        Ok(&block)
    );
    let block_hash = header.hash();

    // Votes: a precommit for the block and a nil prevote.
    let precommit = Vote {
        kind: VoteKind::Precommit,
        height: 1,
        round: 0,
        block: Some(block_hash),
        validator: 2,
    };
    let nil_prevote = Vote {
        kind: VoteKind::Prevote,
        height: 1,
        round: 1,
        block: None,
        validator: 3,
    };
    let vote_entry = |v: Vote| {
        let signed: SignedVote = v.sign(CHAIN_ID, &vkeys[v.validator as usize]);
        assert!(signed.verify(CHAIN_ID, &validators));
        let bytes = signed.to_canonical_bytes();
        assert_eq!(SignedVote::from_canonical_bytes(&bytes), Ok(signed));
        json!({
            "vote": serde_json::to_value(v).unwrap(),
            "signing_bytes": hx(&v.signing_bytes(CHAIN_ID)),
            "signature": signed.signature.to_hex(),
            "signed_vote": hx(&bytes),
        })
    };

    // Proposals: a fresh one and one that re-proposes a block locked in round 0.
    let proposal_entry = |p: Proposal| {
        let signed = p.sign(CHAIN_ID, &vkeys[p.proposer as usize]);
        assert!(signed.verify(CHAIN_ID, &validators));
        json!({
            "proposal": serde_json::to_value(p).unwrap(),
            "signing_bytes": hx(&p.signing_bytes(CHAIN_ID)),
            "signature": signed.signature.to_hex(),
        })
    };
    let proposal = Proposal {
        height: 1,
        round: 0,
        block: block_hash,
        pol_round: None,
        proposer: header.proposer,
    };
    let reproposal = Proposal {
        height: 1,
        round: 2,
        block: block_hash,
        pol_round: Some(0),
        proposer: validators.proposer(1, 2),
    };

    // The commit certificate: precommits of validators 0, 1 and 3 (a quorum of 3 of 4).
    let cert = CommitCertificate {
        height: 1,
        round: 0,
        block: block_hash,
        signatures: [0u32, 1, 3]
            .iter()
            .map(|&i| CommitSignature {
                validator: i,
                signature: Vote {
                    validator: i,
                    ..precommit
                }
                .sign(CHAIN_ID, &vkeys[i as usize])
                .signature,
            })
            .collect(),
    };
    assert_eq!(cert.verify(CHAIN_ID, 1, &block_hash, &validators), Ok(()));
    let cert_bytes = cert.to_canonical_bytes();
    assert_eq!(
        CommitCertificate::from_canonical_bytes(&cert_bytes).as_ref(),
        Ok(&cert)
    );

    check_vector(
        "block.json",
        &json!({
            "chain_id": CHAIN_ID,
            "header": serde_json::to_value(&header).unwrap(),
            "header_canonical": hx(&header_bytes),
            "block_hash": block_hash.to_hex(),
            "block_canonical": hx(&block_bytes),
            "votes": [vote_entry(precommit), vote_entry(nil_prevote)],
            "proposals": [proposal_entry(proposal), proposal_entry(reproposal)],
            "commit_certificate": serde_json::to_value(&cert).unwrap(),
            "commit_certificate_canonical": hx(&cert_bytes),
        }),
    );
}

#[test]
fn merkle_roots_and_proofs_for_1_to_17_leaves() {
    let mut trees = Vec::new();
    for n in 1..=17u8 {
        let data: Vec<[u8; 1]> = (0..n).map(|i| [i]).collect();
        let leaves: Vec<Hash32> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
        let root = merkle::root_from_leaf_hashes(&leaves);
        let proofs: Vec<Value> = (0..usize::from(n))
            .map(|i| {
                let proof = InclusionProof {
                    leaf_index: i as u64,
                    tree_size: u64::from(n),
                    path: merkle::inclusion_path(&leaves, i).unwrap(),
                };
                assert_eq!(proof.verify(&leaves[i], &root), Ok(()));
                for (j, other) in leaves.iter().enumerate() {
                    if j != i {
                        assert!(proof.verify(other, &root).is_err(), "n={n} i={i} j={j}");
                    }
                }
                let bytes = proof.to_canonical_bytes();
                assert_eq!(
                    InclusionProof::from_canonical_bytes(&bytes).as_ref(),
                    Ok(&proof)
                );
                json!({
                    "leaf_index": i,
                    "path": proof.path.iter().map(Hash32::to_hex).collect::<Vec<_>>(),
                    "proof_canonical": hx(&bytes),
                })
            })
            .collect();
        trees.push(json!({
            "size": n,
            "leaf_data": data.iter().map(|d| hx(d)).collect::<Vec<_>>(),
            "leaf_hashes": leaves.iter().map(Hash32::to_hex).collect::<Vec<_>>(),
            "root": root.to_hex(),
            "proofs": proofs,
        }));
    }
    check_vector(
        "merkle.json",
        &json!({
            "leaf_hash": "SHA-256(0x00 || leaf_data)",
            "node_hash": "SHA-256(0x01 || left || right)",
            "empty_root": merkle::empty_root().to_hex(),
            "trees": trees,
        }),
    );
}

/// A key file sealed with a passphrase (`ebill-key-sealed/v1`): the Argon2id input, the
/// associated data and the XChaCha20-Poly1305 output, from a fixed seed, passphrase
/// (not ASCII, to pin that its UTF-8 bytes are used as they are), salt and nonce. The
/// cost is small so that the test is fast; the format is the same at any cost.
#[test]
fn sealed_key_file() {
    const PASSPHRASE: &str = "correct horse 电子票据 staple";
    let cost = KdfCost {
        memory_kib: 256,
        passes: 2,
        lanes: 1,
    };
    let salt: [u8; SALT_BYTES] = std::array::from_fn(|i| i as u8);
    let nonce: [u8; NONCE_BYTES] = std::array::from_fn(|i| 0x80 + i as u8);
    let sealed = SealedKeyFile::seal(
        &key(ISSUER_SEED),
        Some(issuer_code()),
        Some("issuer"),
        PASSPHRASE.as_bytes(),
        cost,
        salt,
        nonce,
    )
    .unwrap();
    let file: Value = serde_json::from_str(&sealed.to_json()).unwrap();
    let text = check_vector(
        "sealed_key.json",
        &json!({
            "seed": hx(&ISSUER_SEED),
            "passphrase": PASSPHRASE,
            "associated_data": hx(&sealed.associated_data()),
            "file": file,
        }),
    );
    // The stored file, read as a key file is, opens to the seed.
    let stored: Value = serde_json::from_str(&text).unwrap();
    let read = SealedKeyFile::from_json(&stored["file"].to_string()).unwrap();
    assert_eq!(
        read.open(PASSPHRASE.as_bytes()).unwrap().seed(),
        ISSUER_SEED
    );
}

/// The stored files must be the only ones: a vector file that no test checks is a
/// vector nobody pins.
#[test]
fn no_stray_vector_files() {
    if regenerating() {
        return;
    }
    let known = [
        "absence.json",
        "bill.json",
        "bill_canonical.json",
        "block.json",
        "checkpoint.json",
        // Published, not generated: read by tests/signature_rule.rs.
        "ed25519_edge_cases.json",
        "genesis.json",
        "genesis_hash.json",
        "governance.json",
        // Written by the ledger's tests (crates/ledger/tests/golden_gov.rs).
        "governance_state.json",
        "keys.json",
        "merkle.json",
        "sealed_key.json",
        "signed_bill.json",
        "state_tree.json",
        "transactions.json",
    ];
    let dir = std::fs::read_dir(vectors_dir()).unwrap_or_else(|e| {
        panic!(
            "{} missing ({e}); run `{REGENERATE_VAR}=1 cargo test -p ebill-types --test golden`",
            vectors_dir().display()
        )
    });
    let mut found: Vec<String> = dir
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, known, "files in tests/vectors/");
}

/// The state tree: key and value hashes of each kind of key, a bill's state record and
/// its history digest, the roots of an empty tree, of one leaf and of two leaves whose
/// paths share 255 bits, and a membership and an absence proof with their bytes.
#[test]
fn state_tree_hashes_roots_and_proofs() {
    use ebill_types::state_tree::{
        self, BillState, EMPTY, HistoryStep, LeafUpdate, NodeKey, NodeReader, StateKey, StateProof,
        TreeError, TreeNode, history_step,
    };
    use ebill_types::{BillStatus, TxKind};
    use std::collections::HashMap;

    #[derive(Default)]
    struct Nodes(HashMap<NodeKey, TreeNode>);
    impl NodeReader for Nodes {
        fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
            Ok(self.0.get(key).copied())
        }
    }
    let apply = |nodes: &mut Nodes, updates: &[LeafUpdate]| {
        let u = state_tree::apply(nodes, updates).unwrap();
        for w in u.writes {
            nodes.0.insert(w.key, w.node);
        }
        u.root
    };

    let bill_key = StateKey::Bill(example_bill_id());
    let unit_key = StateKey::Unit(issuer_code());
    let step1 = HistoryStep {
        action: TxKind::IssueBill,
        by: issuer_code(),
        height: 1,
        time_ms: 1_700_000_000_000,
        tx_id: Hash32::digest(b"issue"),
    };
    let step2 = HistoryStep {
        action: TxKind::ConfirmReimbursed,
        by: reimburser_code(),
        height: 5,
        time_ms: 1_700_000_004_000,
        tx_id: Hash32::digest(b"reimburse"),
    };
    let digest1 = history_step(&Hash32::ZERO, &step1);
    let digest2 = history_step(&digest1, &step2);
    let state = BillState {
        status: BillStatus::Reimbursed {
            by: reimburser_code(),
            height: 5,
        },
        history_len: 2,
        issue_tx: step1.tx_id,
        last_tx: step2.tx_id,
        last_height: 5,
        history_digest: digest2,
    };
    let state_bytes = state.to_canonical_bytes();
    assert_eq!(BillState::from_canonical_bytes(&state_bytes), Ok(state));
    let bill_value = bill_key.value_hash(&state_bytes);

    let mut one = Nodes::default();
    let one_root = apply(
        &mut one,
        &[LeafUpdate {
            key: bill_key.hash(),
            value: bill_value,
        }],
    );
    assert_eq!(
        one_root,
        state_tree::leaf_hash(&bill_key.hash(), &bill_value)
    );

    // Two keys that part only at the last bit.
    let mut a = Hash32([0x5a; 32]);
    let mut b = a;
    a.0[31] &= 0xfe;
    b.0[31] |= 0x01;
    let mut two = Nodes::default();
    let two_root = apply(
        &mut two,
        &[
            LeafUpdate {
                key: a,
                value: Hash32::digest(b"a"),
            },
            LeafUpdate {
                key: b,
                value: Hash32::digest(b"b"),
            },
        ],
    );
    let member = state_tree::prove(&two, &a).unwrap();
    member
        .verify_member(&two_root, &a, &Hash32::digest(b"a"))
        .unwrap();
    let absent_key = Hash32([0xa5; 32]);
    let absent = state_tree::prove(&two, &absent_key).unwrap();
    absent.verify_absent(&two_root, &absent_key).unwrap();
    for p in [&member, &absent] {
        assert_eq!(
            StateProof::from_canonical_bytes(&p.to_canonical_bytes()).as_ref(),
            Ok(p)
        );
    }

    check_vector(
        "state_tree.json",
        &json!({
            "empty_root": EMPTY.to_hex(),
            "keys": {
                "bill": { "bill_id": hx(&example_bill_id().to_canonical_bytes()), "key_hash": bill_key.hash().to_hex() },
                "unit": { "credit_code": issuer_code().to_string(), "key_hash": unit_key.hash().to_hex() },
                "regulators": { "key_hash": StateKey::Regulators.hash().to_hex() },
            },
            "bill_state": {
                "history": [
                    { "action": "issue_bill", "by": issuer_code().to_string(), "height": 1, "time_ms": 1_700_000_000_000u64, "tx_id": step1.tx_id.to_hex(), "digest": digest1.to_hex() },
                    { "action": "confirm_reimbursed", "by": reimburser_code().to_string(), "height": 5, "time_ms": 1_700_000_004_000u64, "tx_id": step2.tx_id.to_hex(), "digest": digest2.to_hex() },
                ],
                "canonical": hx(&state_bytes),
                "value_hash": bill_value.to_hex(),
            },
            "one_leaf_root": one_root.to_hex(),
            "two_leaves": {
                "a": a.to_hex(),
                "b": b.to_hex(),
                "value_a": Hash32::digest(b"a").to_hex(),
                "value_b": Hash32::digest(b"b").to_hex(),
                "root": two_root.to_hex(),
                "membership_proof_of_a": hx(&member.to_canonical_bytes()),
                "absent_key": absent_key.to_hex(),
                "absence_proof": hx(&absent.to_canonical_bytes()),
            },
        }),
    );
}

/// An absence proof (`ebill/absence/v1`): a tree holding the example bill and one
/// other key, a header over its root certified by validators 0, 1 and 3, and the proof
/// that the example bill's code with number 0000000002 was never issued, in both forms.
#[test]
fn absence_proof_of_a_never_issued_bill() {
    use ebill_types::absence::{
        ABSENCE_DOMAIN, ABSENCE_VERSION, AbsenceKind, AbsenceProof, verify_absence,
    };
    use ebill_types::state_tree::{
        self, LeafUpdate, NodeKey, NodeReader, StateKey, TreeError, TreeNode,
    };
    use ebill_types::{BillId, BillNumber};
    use std::collections::HashMap;

    #[derive(Default)]
    struct Nodes(HashMap<NodeKey, TreeNode>);
    impl NodeReader for Nodes {
        fn tree_node(&self, key: &NodeKey) -> Result<Option<TreeNode>, TreeError> {
            Ok(self.0.get(key).copied())
        }
    }

    let genesis = example_genesis();
    let validators = genesis.validator_set().unwrap();
    let vkeys = validator_keys();
    let present = StateKey::Bill(example_bill_id());
    let unit = StateKey::Unit(issuer_code());
    let mut updates = vec![
        LeafUpdate {
            key: present.hash(),
            value: present.value_hash(b"a bill record"),
        },
        LeafUpdate {
            key: unit.hash(),
            value: unit.value_hash(b"a unit record"),
        },
    ];
    updates.sort_by_key(|u| u.key);
    let mut nodes = Nodes::default();
    let update = state_tree::apply(&nodes, &updates).unwrap();
    for w in update.writes {
        nodes.0.insert(w.key, w.node);
    }
    let absent = BillId {
        code: example_bill_id().code,
        number: BillNumber::parse("0000000002").unwrap(),
    };
    let absent_key = StateKey::Bill(absent).hash();
    let path = state_tree::prove(&nodes, &absent_key).unwrap();
    let header = Header {
        chain_id: CHAIN_ID.into(),
        height: 3,
        prev_hash: Hash32::digest(b"block 2"),
        time_ms: 1_700_000_003_000,
        proposer: validators.proposer(3, 0),
        tx_root: Hash32::ZERO,
        tx_count: 0,
        validator_set_hash: validators.hash(),
        state_root: update.root,
    };
    let block_hash = header.hash();
    let certificate = CommitCertificate {
        height: 3,
        round: 0,
        block: block_hash,
        signatures: [0u32, 1, 3]
            .iter()
            .map(|&i| CommitSignature {
                validator: i,
                signature: Vote {
                    kind: VoteKind::Precommit,
                    height: 3,
                    round: 0,
                    block: Some(block_hash),
                    validator: i,
                }
                .sign(CHAIN_ID, &vkeys[i as usize])
                .signature,
            })
            .collect(),
    };
    let proof = AbsenceProof {
        kind: AbsenceKind::Absence,
        version: ABSENCE_VERSION,
        chain_id: CHAIN_ID.into(),
        genesis_hash: genesis.hash(),
        bill: absent,
        header,
        certificate,
        proof: path.to_canonical_bytes(),
    };
    let verified = verify_absence(&proof, &genesis).unwrap();
    assert_eq!(verified.height, 3);
    let bytes = proof.to_bytes();
    assert_eq!(AbsenceProof::from_bytes(&bytes).as_ref(), Ok(&proof));
    let json_form: Value = serde_json::from_str(&proof.to_json()).unwrap();
    assert_eq!(
        AbsenceProof::from_json(&json_form.to_string()).as_ref(),
        Ok(&proof)
    );

    check_vector(
        "absence.json",
        &json!({
            "domain": ABSENCE_DOMAIN,
            "present_bill_key_hash": present.hash().to_hex(),
            "unit_key_hash": unit.hash().to_hex(),
            "state_root": update.root.to_hex(),
            "absent_bill_key_hash": absent_key.to_hex(),
            "block_hash": block_hash.to_hex(),
            "json": json_form,
            "canonical": hx(&bytes),
        }),
    );
}

/// Governance transactions: the actions added with proposals (direct, two regulators),
/// a proposal carrying an action with its id, and the three votes (one regulator each);
/// the state-tree key of a proposal.
#[test]
fn governance_transactions_and_proposal_ids() {
    let register = TxBody::RegisterIssuer {
        credit_code: new_issuer_code(),
        name: "宁波市第一医院".into(),
        public_key: public(NEW_ISSUER_SEED),
        code_prefixes: vec![CodePrefix::parse("3302").unwrap()],
        valid_until: Timestamp::end_of_day("2027-12-31").unwrap(),
    };
    let propose = TxBody::Propose {
        action: Box::new(register),
        expires_at_height: 1_000,
        base_gov_seq: 3,
    };
    let proposal = propose.proposal_id(CHAIN_ID).unwrap();
    let bodies = vec![
        (
            "set_prefixes",
            TxBody::SetPrefixes {
                credit_code: issuer_code(),
                code_prefixes: vec![
                    CodePrefix::parse("3301").unwrap(),
                    CodePrefix::parse("3303").unwrap(),
                ],
            },
        ),
        (
            "renew_qualification",
            TxBody::RenewQualification {
                credit_code: issuer_code(),
                valid_until: Timestamp::end_of_day("2028-12-31").unwrap(),
            },
        ),
        (
            "add_regulator",
            TxBody::AddRegulator {
                name: "regulator-3".into(),
                public_key: public([9; 32]),
            },
        ),
        (
            "remove_regulator",
            TxBody::RemoveRegulator {
                public_key: regulator_keys()[2].public(),
            },
        ),
        ("set_threshold", TxBody::SetThreshold { threshold: 3 }),
        ("propose", propose.clone()),
        ("approve", TxBody::Approve { proposal }),
        ("reject", TxBody::Reject { proposal }),
        ("withdraw", TxBody::Withdraw { proposal }),
    ];
    let kinds: Vec<&str> = bodies.iter().map(|(_, b)| b.kind().as_str()).collect();
    let rest: Vec<&str> = ebill_types::TxKind::ALL
        .iter()
        .skip_while(|k| **k != ebill_types::TxKind::SetPrefixes)
        .map(|k| k.as_str())
        .collect();
    assert_eq!(kinds, rest, "one vector per governance kind, in wire order");
    let mut txs = Vec::new();
    for (i, (name, body)) in bodies.into_iter().enumerate() {
        assert_eq!(body.validate(&Params::default()), Ok(()), "{name}");
        txs.push(
            tx_vector(
                name,
                Tx {
                    nonce: 100 + i as u64,
                    body,
                },
            )
            .1,
        );
    }
    let mut propose_bytes = ebill_types::Encoder::with_domain(ebill_types::tx::PROPOSAL_DOMAIN);
    propose_bytes.str(CHAIN_ID);
    propose.encode_to(&mut propose_bytes);
    let propose_bytes = propose_bytes.finish();
    assert_eq!(Hash32::digest(&propose_bytes), proposal);
    let key = ebill_types::state_tree::StateKey::Proposal(proposal);
    let computed = json!({
        "chain_id": CHAIN_ID,
        "transactions": txs,
        "proposal": {
            "id_preimage": hx(&propose_bytes),
            "id": proposal.to_hex(),
            "state_key_hash": key.hash().to_hex(),
        },
    });
    check_vector("governance.json", &computed);
}
