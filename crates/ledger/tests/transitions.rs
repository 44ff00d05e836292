//! The ledger and the offline verifier share one rule of a bill's status transitions
//! (`ebill_types::transition::transition`). This holds the ledger's wiring of it against
//! the rule on every pair of (status, action), for the issuer and for two reimbursing
//! units, with the right and a wrong check code: the ledger leaves exactly the status
//! the rule gives, or refuses with exactly the code of the rule's error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ebill_ledger::{
    BillRecord, BillStatus, Context, ErrorCode, Executor, HistoryEntry, MemState, UnitRecord,
    UnitRole, genesis_changes,
};
use ebill_types::transition::{Lifecycle, TransitionError, TransitionFacts, transition};
use ebill_types::{CheckCode, CreditCode, Keypair, Tx, TxBody, TxKind, dev};

const CHAIN: &str = "ebill-dev";

fn code_of(e: TransitionError) -> ErrorCode {
    match e {
        TransitionError::NotBillIssuer { .. } => ErrorCode::NotBillIssuer,
        TransitionError::CheckCodeMismatch => ErrorCode::CheckCodeMismatch,
        TransitionError::AlreadyReimbursed { .. } => ErrorCode::AlreadyReimbursed,
        TransitionError::AlreadyReversed { .. } => ErrorCode::AlreadyReversed,
        TransitionError::PaperExchanged { .. } => ErrorCode::PaperExchanged,
        TransitionError::BillLocked { .. } => ErrorCode::BillLocked,
        TransitionError::LockedByOther { .. } => ErrorCode::LockedByOther,
        TransitionError::NotLocked => ErrorCode::NotLocked,
    }
}

#[test]
fn the_ledger_applies_exactly_the_shared_transition_rule() {
    let genesis = dev::dev_genesis();
    assert_eq!(genesis.chain_id, CHAIN);
    let issuer = dev::dev_issuer_code();
    let issuer_key = dev::dev_issuer_key();
    let a = dev::dev_reimburser_code();
    let a_key = dev::dev_reimburser_key();
    let b = dev::test_credit_code('R', 9);
    let b_key = dev::dev_key("reimburser", 9);
    let bill = dev::sample_bill(1, 1250, dev::DEV_GENESIS_TIME_MS);
    let id = bill.id();
    let right = CheckCode::derive(
        &Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill.clone()),
        }
        .sign_unit(CHAIN, &issuer_key)
        .to_signed_bill()
        .unwrap()
        .signature,
    );
    let wrong = if right.as_str() == "aaaaaa" {
        CheckCode::parse("bbbbbb").unwrap()
    } else {
        CheckCode::parse("aaaaaa").unwrap()
    };
    let statuses = [
        BillStatus::Issued,
        BillStatus::Locked { by: a, height: 2 },
        BillStatus::Locked { by: b, height: 2 },
        BillStatus::Reimbursed { by: a, height: 3 },
        BillStatus::Reversed { height: 3 },
        BillStatus::PaperExchanged { height: 3 },
    ];
    let actors: [(CreditCode, &Keypair); 3] = [(issuer, &issuer_key), (a, &a_key), (b, &b_key)];
    let height = 10;
    let mut checked = 0;
    for status in statuses {
        let mut state = MemState::default();
        state.commit(0, &genesis_changes(&genesis));
        state.units.insert(
            b,
            UnitRecord {
                credit_code: b,
                name: "第二报销单位".into(),
                role: UnitRole::Reimburser,
                public_key: b_key.public(),
                revoked_at: None,
                events: Vec::new(),
                valid_until: None,
            },
        );
        state.bills.insert(
            id,
            BillRecord {
                id,
                issuer,
                check_code: right,
                status,
                history: vec![HistoryEntry {
                    action: TxKind::IssueBill,
                    by: issuer,
                    height: 1,
                    time_ms: dev::DEV_GENESIS_TIME_MS as u64,
                    tx_id: ebill_types::Hash32::digest(b"issue"),
                }],
            },
        );
        for action in Lifecycle::ALL {
            for (unit, key) in actors {
                // The issuer's actions are the issuer's; the reimbursing ones a
                // reimbursing unit's (the role rule comes before the transition rule).
                let issuer_action =
                    matches!(action, Lifecycle::RedReverse | Lifecycle::ExchangePaper);
                if issuer_action != (unit == issuer) {
                    continue;
                }
                for code in [right, wrong] {
                    if !action.needs_check_code() && code == wrong {
                        continue;
                    }
                    let body = match action {
                        Lifecycle::RedReverse => TxBody::RedReverse {
                            issuer: unit,
                            bill: id,
                            reason: "开错金额".into(),
                        },
                        Lifecycle::ExchangePaper => TxBody::ExchangePaper {
                            issuer: unit,
                            bill: id,
                        },
                        Lifecycle::Lock => TxBody::Lock {
                            unit,
                            bill: id,
                            check_code: code,
                        },
                        Lifecycle::Unlock => TxBody::Unlock { unit, bill: id },
                        Lifecycle::ConfirmReimbursed => TxBody::ConfirmReimbursed {
                            unit,
                            bill: id,
                            check_code: code,
                        },
                    };
                    let stx = Tx { nonce: 1, body }.sign_unit(CHAIN, key);
                    let ctx = Context {
                        genesis: &genesis,
                        height,
                        time_ms: dev::DEV_GENESIS_TIME_MS as u64 + 10_000,
                    };
                    let mut exec = Executor::new(&state, ctx);
                    let got = exec.apply(&stx).unwrap();
                    let facts = TransitionFacts {
                        issuer,
                        check_code_matches: code == right,
                    };
                    let rule = transition(status, action, unit, height, facts);
                    match (got, rule) {
                        (Ok(_), Ok(next)) => {
                            let changes = exec.finish();
                            assert_eq!(
                                changes.bills[&id].status, next,
                                "{status:?} {action:?} by {unit}"
                            );
                        }
                        (Err(e), Err(r)) => {
                            assert_eq!(e.code, code_of(r), "{status:?} {action:?} by {unit}: {e}")
                        }
                        (got, rule) => {
                            panic!("{status:?} {action:?} by {unit}: ledger {got:?}, rule {rule:?}")
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    // 6 statuses x (2 issuer actions + 2 reimbursers x (2 codes x 2 actions + unlock)).
    assert_eq!(checked, 6 * (2 + 2 * (2 * 2 + 1)));
}
