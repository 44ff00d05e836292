//! Governance by proposals, step by step: who counts, how a proposal ends, what the
//! state tree records. The single-transaction accept/reject cases of every code are in
//! `rules.rs`; these are the sequences.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Chain, code_of};
use ebill_ledger::{
    ErrorCode, ProposalOutcome, ProposalStatus, StateView, genesis_changes, state_updates,
};
use ebill_types::state_tree::StateKey;
use ebill_types::{TxBody, dev};

fn register(index: u32, prefix: &str) -> TxBody {
    Chain::register_issuer_action(index, prefix, dev::dev_valid_until())
}

#[test]
fn a_proposal_executes_in_the_block_where_approvals_reach_the_threshold() {
    let mut c = Chain::new();
    let p = c.propose_tx(register(5, "3305"), 10, 0);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(rec.status_at(c.height + 1), ProposalStatus::Pending);
    assert_eq!(rec.approvals.len(), 1, "the proposer's own approval counts");
    assert_eq!(rec.approvals_missing(), 1);
    assert!(
        c.state
            .unit(&dev::test_credit_code('B', 5))
            .unwrap()
            .is_none()
    );
    assert_eq!(c.gov_seq(), 0, "nothing executed yet");

    let a = c.vote_tx(TxBody::Approve { proposal: id }, 2);
    let approve_id = c.submit(a).unwrap();
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(
        rec.outcome,
        ProposalOutcome::Executed {
            height: c.height,
            tx_id: approve_id
        }
    );
    let unit = c
        .state
        .unit(&dev::test_credit_code('B', 5))
        .unwrap()
        .unwrap();
    assert_eq!(unit.valid_until, Some(dev::dev_valid_until()));
    assert_eq!(unit.events.len(), 1);
    assert_eq!(unit.events[0].tx_id, approve_id, "the executing approval");
    assert_eq!(c.gov_seq(), 1);
}

#[test]
fn propose_and_approve_in_one_block_execute_in_it() {
    let mut c = Chain::new();
    let p = c.propose_tx(register(5, "3305"), 10, 1);
    let id = c.proposal_id(&p);
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 0);
    c.block(&[p, a]).unwrap();
    assert!(
        c.state
            .unit(&dev::test_credit_code('B', 5))
            .unwrap()
            .is_some()
    );
}

#[test]
fn with_threshold_one_the_proposal_executes_at_once() {
    let mut c = Chain::new();
    let t = c.gov_tx(TxBody::SetThreshold { threshold: 1 }, &[0, 1]);
    c.submit(t).unwrap();
    assert_eq!(c.gov_seq(), 1);
    let p = c.propose_tx(register(5, "3305"), 10, 2);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(rec.status_at(c.height + 1), ProposalStatus::Executed);
    assert!(
        c.state
            .unit(&dev::test_credit_code('B', 5))
            .unwrap()
            .is_some()
    );
    assert_eq!(c.gov_seq(), 2);
}

#[test]
fn rejections_end_a_proposal_only_when_it_can_no_longer_pass() {
    let mut c = Chain::new();
    let p = c.propose_tx(register(5, "3305"), 10, 0);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let r = c.vote_tx(TxBody::Reject { proposal: id }, 1);
    c.submit(r).unwrap();
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(
        rec.status_at(c.height + 1),
        ProposalStatus::Pending,
        "1 approval, 1 rejection of 3, threshold 2: regulator 2 can still pass it"
    );
    // A regulator that rejected cannot approve.
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
    assert_eq!(code_of(c.submit(a)), Some(ErrorCode::AlreadyVoted));
    let r = c.vote_tx(TxBody::Reject { proposal: id }, 2);
    c.submit(r).unwrap();
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(rec.outcome, ProposalOutcome::Rejected { height: c.height });
    assert!(
        c.state
            .unit(&dev::test_credit_code('B', 5))
            .unwrap()
            .is_none()
    );
    assert_eq!(c.gov_seq(), 0, "a rejection executes nothing");
}

#[test]
fn a_second_approval_counts_once_and_names_the_first() {
    let mut c = Chain::new();
    // Threshold 3: two approvals of one regulator would pass it if both counted.
    let t = c.gov_tx(TxBody::SetThreshold { threshold: 3 }, &[0, 1]);
    c.submit(t).unwrap();
    let p = c.propose_tx(register(5, "3305"), 10, 0);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
    c.submit(a).unwrap();
    let first_height = c.height;
    let again = c.vote_tx(TxBody::Approve { proposal: id }, 1);
    let err = c.submit(again).unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyVoted);
    assert!(
        err.message.contains(&format!("height {first_height}")),
        "{}",
        err.message
    );
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(rec.approvals.len(), 2);
    assert_eq!(rec.status_at(c.height + 1), ProposalStatus::Pending);
}

#[test]
fn the_regulator_set_of_the_proposal_counts_and_a_change_makes_it_stale() {
    let mut c = Chain::new();
    let p = c.propose_tx(register(5, "3305"), 10, 0);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let newcomer = dev::dev_key("regulator", 3);
    let add = c.gov_tx(
        TxBody::AddRegulator {
            name: "regulator-3".into(),
            public_key: newcomer.public(),
        },
        &[1, 2],
    );
    c.submit(add).unwrap();
    assert_eq!(
        c.state.governance.as_ref().unwrap().regulators.keys.len(),
        4
    );
    // Index 3 exists in the set in force, not in the proposal's.
    let a = c.vote_tx_with(TxBody::Approve { proposal: id }, 3, &newcomer);
    assert_eq!(code_of(c.submit(a)), Some(ErrorCode::NotARegulator));
    // And a regulator of the proposal's set is refused: the regulators changed since.
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
    let err = c.submit(a).unwrap_err();
    assert_eq!(err.code, ErrorCode::StaleProposal);
    assert!(err.message.contains("sequence 0"), "{}", err.message);
    // A new proposal, written against the new sequence, is counted with the new set.
    let p = c.propose_tx(register(5, "3305"), 10, 0);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let a = c.vote_tx_with(TxBody::Approve { proposal: id }, 3, &newcomer);
    c.submit(a).unwrap();
    assert!(
        c.state
            .unit(&dev::test_credit_code('B', 5))
            .unwrap()
            .is_some()
    );
}

#[test]
fn removing_a_regulator_keeps_the_threshold_reachable() {
    let mut c = Chain::new();
    let keys = dev::dev_regulator_keys();
    let rm = c.gov_tx(
        TxBody::RemoveRegulator {
            public_key: keys[2].public(),
        },
        &[0, 1],
    );
    c.submit(rm).unwrap();
    let rm = c.gov_tx(
        TxBody::RemoveRegulator {
            public_key: keys[1].public(),
        },
        &[0, 1],
    );
    assert_eq!(code_of(c.submit(rm)), Some(ErrorCode::BadThreshold));
    let rm = c.gov_tx(
        TxBody::RemoveRegulator {
            public_key: keys[2].public(),
        },
        &[0, 1],
    );
    assert_eq!(code_of(c.submit(rm)), Some(ErrorCode::NotARegulator));
    // The removed regulator's signature no longer counts: index 2 is gone.
    let tx = c.gov_tx(register(5, "3305"), &[0, 2]);
    assert_eq!(code_of(c.submit(tx)), Some(ErrorCode::UnknownRegulator));
}

#[test]
fn a_revoked_unit_signs_nothing_new_and_its_bills_stay() {
    let mut c = Chain::new();
    let (bill, _) = c.issue(1);
    let p = c.propose_tx(
        TxBody::RevokeUnit {
            credit_code: dev::dev_issuer_code(),
            reason: "执业许可证吊销".into(),
        },
        10,
        0,
    );
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
    c.submit(a).unwrap();
    let tx = c.issue_tx(c.bill(2), &Chain::issuer().1);
    assert_eq!(code_of(c.submit(tx)), Some(ErrorCode::UnitRevoked));
    assert_eq!(
        c.state.bill(&bill).unwrap().unwrap().status,
        ebill_ledger::BillStatus::Issued
    );
}

#[test]
fn a_lapsed_qualification_refuses_new_transactions_until_renewed_by_proposal() {
    let mut c = Chain::new();
    let until = ebill_types::Timestamp::from_unix_ms(c.time_ms as i64 + 2_500);
    let tx = c.gov_tx(Chain::register_issuer_action(5, "3305", until), &[0, 1]);
    c.submit(tx).unwrap();
    let key = dev::dev_key("test-issuer", 5);
    let tx = c.issue_tx(c.bill_of(5, "33050126", 1), &key);
    c.submit(tx).unwrap();
    c.time_ms += 5_000;
    let tx = c.issue_tx(c.bill_of(5, "33050126", 2), &key);
    let err = c.submit(tx).unwrap_err();
    assert_eq!(err.code, ErrorCode::QualificationExpired);
    assert!(err.message.contains(&until.to_string()), "{}", err.message);
    let renew = TxBody::RenewQualification {
        credit_code: dev::test_credit_code('B', 5),
        valid_until: dev::dev_valid_until(),
    };
    let p = c.propose_tx(renew, 10, 2);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 0);
    c.submit(a).unwrap();
    let tx = c.issue_tx(c.bill_of(5, "33050126", 2), &key);
    c.submit(tx).unwrap();
}

#[test]
fn the_state_tree_covers_proposals_the_sequence_and_qualification_dates() {
    let c = Chain::new();
    let genesis = genesis_changes(&c.genesis);
    let keys: Vec<_> = state_updates(&genesis).iter().map(|u| u.key).collect();
    assert!(keys.contains(&StateKey::Regulators.hash()));

    // A proposal's record is a leaf.
    let mut c = Chain::new();
    let p = c.propose_tx(register(5, "3305"), 10, 0);
    let id = c.proposal_id(&p);
    let ctx = ebill_ledger::Context {
        genesis: &c.genesis,
        height: 1,
        time_ms: c.time_ms + 1000,
    };
    let changes = ebill_ledger::apply_block(&c.state, ctx, std::slice::from_ref(&p), None).unwrap();
    let updated: Vec<_> = state_updates(&changes).iter().map(|u| u.key).collect();
    assert_eq!(updated, vec![StateKey::Proposal(id).hash()]);
    c.submit(p).unwrap();

    // Its execution changes the proposal, the unit and the governance record.
    let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
    let ctx = ebill_ledger::Context {
        genesis: &c.genesis,
        height: c.height + 1,
        time_ms: c.time_ms + 1000,
    };
    let changes = ebill_ledger::apply_block(&c.state, ctx, &[a], None).unwrap();
    let mut updated: Vec<_> = state_updates(&changes).iter().map(|u| u.key).collect();
    let mut expected = vec![
        StateKey::Proposal(id).hash(),
        StateKey::Unit(dev::test_credit_code('B', 5)).hash(),
        StateKey::Regulators.hash(),
    ];
    updated.sort();
    expected.sort();
    assert_eq!(updated, expected);

    // A renewal changes the unit's leaf value.
    let unit = dev::dev_issuer_code();
    let before = c.state.unit(&unit).unwrap().unwrap();
    let mut renewed = before.clone();
    renewed.valid_until = Some(ebill_types::Timestamp::end_of_day("2100-01-01").unwrap());
    use ebill_types::Canonical;
    assert_ne!(
        StateKey::Unit(unit).value_hash(&before.to_canonical_bytes()),
        StateKey::Unit(unit).value_hash(&renewed.to_canonical_bytes())
    );
}

#[test]
fn an_expired_proposal_is_expired_at_the_next_height_and_cannot_be_withdrawn() {
    let mut c = Chain::new();
    let p = c.propose_tx(register(5, "3305"), 1, 0);
    let id = c.proposal_id(&p);
    c.submit(p).unwrap();
    let rec = c.state.proposal(&id).unwrap().unwrap();
    assert_eq!(
        rec.status_at(rec.expires_at_height),
        ProposalStatus::Pending
    );
    assert_eq!(
        rec.status_at(rec.expires_at_height + 1),
        ProposalStatus::Expired
    );
    c.issue(1);
    c.issue(2);
    let w = c.vote_tx(TxBody::Withdraw { proposal: id }, 0);
    assert_eq!(code_of(c.submit(w)), Some(ErrorCode::ProposalExpired));
}
