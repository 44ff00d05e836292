//! Golden vectors of the governance state: the canonical bytes of the governance record
//! and of a proposal record, and their state-tree value hashes, pinned in
//! `crates/types/tests/vectors/governance_state.json` beside the other vectors (they are
//! the values of the state tree's `Regulators` and `Proposal` leaves, so a change is a
//! protocol change). Rewrite deliberately with `EBILL_REGENERATE_VECTORS=1`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use ebill_ledger::{GovState, ProposalOutcome, ProposalRecord, Vote};
use ebill_types::genesis::{Regulator, Regulators};
use ebill_types::state_tree::StateKey;
use ebill_types::{Canonical, CodePrefix, Hash32, Keypair, Timestamp, TxBody};
use serde_json::json;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../types/tests/vectors/governance_state.json")
}

fn regulators() -> Regulators {
    // The regulator seeds of the types crate's vectors.
    Regulators {
        threshold: 2,
        keys: [[3u8; 32], [4; 32], [5; 32]]
            .iter()
            .enumerate()
            .map(|(i, s)| Regulator {
                name: format!("regulator-{i}"),
                public_key: Keypair::from_seed(*s).public(),
            })
            .collect(),
    }
}

#[test]
fn governance_record_and_proposal_bytes() {
    let gov = GovState {
        gov_seq: 3,
        regulators: regulators(),
    };
    let action = TxBody::RegisterIssuer {
        credit_code: ebill_types::dev::test_credit_code('B', 2),
        name: "宁波市第一医院".into(),
        public_key: Keypair::from_seed([7; 32]).public(),
        code_prefixes: vec![CodePrefix::parse("3302").unwrap()],
        valid_until: Timestamp::end_of_day("2027-12-31").unwrap(),
    };
    let id = Hash32([0x42; 32]);
    let proposal = ProposalRecord {
        id,
        action,
        expires_at_height: 1_000,
        base_gov_seq: 3,
        regulators: regulators(),
        proposer: 0,
        proposed_height: 10,
        propose_tx: Hash32([0x10; 32]),
        approvals: vec![
            Vote {
                index: 0,
                height: 10,
                tx_id: Hash32([0x10; 32]),
            },
            Vote {
                index: 2,
                height: 12,
                tx_id: Hash32([0x12; 32]),
            },
        ],
        rejections: vec![Vote {
            index: 1,
            height: 11,
            tx_id: Hash32([0x11; 32]),
        }],
        outcome: ProposalOutcome::Executed {
            height: 12,
            tx_id: Hash32([0x12; 32]),
        },
    };
    let gov_bytes = gov.to_canonical_bytes();
    let proposal_bytes = proposal.to_canonical_bytes();
    assert_eq!(GovState::from_canonical_bytes(&gov_bytes), Ok(gov.clone()));
    assert_eq!(
        ProposalRecord::from_canonical_bytes(&proposal_bytes),
        Ok(proposal.clone())
    );
    let computed = json!({
        "governance_record": {
            "bytes": hex::encode(&gov_bytes),
            "state_key_hash": StateKey::Regulators.hash().to_hex(),
            "state_value_hash": StateKey::Regulators.value_hash(&gov_bytes).to_hex(),
        },
        "proposal_record": {
            "bytes": hex::encode(&proposal_bytes),
            "state_key_hash": StateKey::Proposal(id).hash().to_hex(),
            "state_value_hash": StateKey::Proposal(id).value_hash(&proposal_bytes).to_hex(),
        },
    });
    let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
    if std::env::var("EBILL_REGENERATE_VECTORS").is_ok_and(|v| v == "1") {
        std::fs::write(path(), &text).unwrap();
    }
    let stored = std::fs::read_to_string(path()).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}); write it deliberately with EBILL_REGENERATE_VECTORS=1",
            path().display()
        )
    });
    assert_eq!(
        stored, text,
        "governance state bytes changed: a protocol change (regenerate deliberately)"
    );
}
