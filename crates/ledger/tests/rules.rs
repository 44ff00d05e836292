//! One accept and at least one reject case for every rule of docs/design.md §3.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Chain, code_of};
use ebill_ledger::{BillStatus, ErrorCode, StateView};
use ebill_types::dev;
use ebill_types::{Auth, BillCode, Fen, Keypair, Signature, SignedTx, TxBody, TxId};

type Case = (
    &'static str,
    fn(&mut Chain) -> Result<TxId, ebill_ledger::TxError>,
    Option<ErrorCode>,
);

fn lock(
    c: &mut Chain,
    n: u64,
    who: (ebill_types::CreditCode, Keypair),
) -> Result<TxId, ebill_ledger::TxError> {
    let (bill, check) = (
        c.bill(n).id(),
        c.state.bill(&c.bill(n).id()).unwrap().unwrap().check_code,
    );
    let tx = c.unit_tx(
        TxBody::Lock {
            unit: who.0,
            bill,
            check_code: check,
        },
        &who.1,
    );
    c.submit(tx)
}

fn reimburse(
    c: &mut Chain,
    n: u64,
    who: (ebill_types::CreditCode, Keypair),
) -> Result<TxId, ebill_ledger::TxError> {
    let bill = c.bill(n).id();
    let check = c.state.bill(&bill).unwrap().unwrap().check_code;
    let tx = c.unit_tx(
        TxBody::ConfirmReimbursed {
            unit: who.0,
            bill,
            check_code: check,
        },
        &who.1,
    );
    c.submit(tx)
}

fn unlock(
    c: &mut Chain,
    n: u64,
    who: (ebill_types::CreditCode, Keypair),
) -> Result<TxId, ebill_ledger::TxError> {
    let bill = c.bill(n).id();
    let tx = c.unit_tx(TxBody::Unlock { unit: who.0, bill }, &who.1);
    c.submit(tx)
}

fn reverse(
    c: &mut Chain,
    n: u64,
    who: (ebill_types::CreditCode, Keypair),
) -> Result<TxId, ebill_ledger::TxError> {
    let bill = c.bill(n).id();
    let tx = c.unit_tx(
        TxBody::RedReverse {
            issuer: who.0,
            bill,
            reason: "开错金额".into(),
        },
        &who.1,
    );
    c.submit(tx)
}

fn exchange(
    c: &mut Chain,
    n: u64,
    who: (ebill_types::CreditCode, Keypair),
) -> Result<TxId, ebill_ledger::TxError> {
    let bill = c.bill(n).id();
    let tx = c.unit_tx(
        TxBody::ExchangePaper {
            issuer: who.0,
            bill,
        },
        &who.1,
    );
    c.submit(tx)
}

fn cases() -> Vec<Case> {
    vec![
        // IssueBill
        (
            "issue: accepted",
            |c| {
                let tx = c.issue_tx(c.bill(1), &Chain::issuer().1);
                c.submit(tx)
            },
            None,
        ),
        (
            "issue: duplicate bill id",
            |c| {
                c.issue(1);
                let mut b = c.bill(1);
                b.remark = "another".into();
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::BillExists),
        ),
        (
            "issue: same transaction twice",
            |c| {
                let tx = c.issue_tx(c.bill(1), &Chain::issuer().1);
                c.submit(tx.clone()).unwrap();
                c.submit(tx)
            },
            Some(ErrorCode::DuplicateTx),
        ),
        (
            "issue: unknown issuer",
            |c| {
                let mut b = c.bill(1);
                b.issuer = dev::test_credit_code('B', 99);
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::UnknownIssuer),
        ),
        (
            "issue: signed by a reimbursing unit's code",
            |c| {
                let mut b = c.bill(1);
                b.issuer = dev::dev_reimburser_code();
                let tx = c.issue_tx(b, &Chain::reimburser().1);
                c.submit(tx)
            },
            Some(ErrorCode::WrongRole),
        ),
        (
            "issue: wrong key",
            |c| {
                let tx = c.issue_tx(c.bill(1), &Chain::reimburser().1);
                c.submit(tx)
            },
            Some(ErrorCode::BadSignature),
        ),
        (
            "issue: signature over another chain id",
            |c| {
                let tx = ebill_types::Tx {
                    nonce: 0,
                    body: TxBody::IssueBill(c.bill(1)),
                }
                .sign_unit("another-chain", &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::BadSignature),
        ),
        (
            "issue: regulator signatures on a unit transaction",
            |c| {
                let tx = c.issue_tx(c.bill(1), &Chain::issuer().1);
                let tx = SignedTx {
                    tx: tx.tx,
                    auth: Auth::Regulators(vec![]),
                };
                c.submit(tx)
            },
            Some(ErrorCode::BadSignature),
        ),
        (
            "issue: code prefix not allowed",
            |c| {
                let mut b = c.bill(1);
                b.code = BillCode::parse("33020126").unwrap();
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::CodePrefixNotAllowed),
        ),
        (
            "issue: issued_at far in the past",
            |c| {
                let b = dev::sample_bill(1, 100, c.time_ms as i64 - 30 * 24 * 3_600_000);
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::IssuedAtOutOfWindow),
        ),
        (
            "issue: issued_at in the future",
            |c| {
                let b = dev::sample_bill(1, 100, c.time_ms as i64 + 3_600_000);
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::IssuedAtOutOfWindow),
        ),
        (
            "issue: items do not sum to the total",
            |c| {
                let mut b = c.bill(1);
                b.total = Fen(1300);
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::AmountsInconsistent),
        ),
        (
            "issue: zero total",
            |c| {
                let b = dev::sample_bill(1, 0, c.time_ms as i64);
                let tx = c.issue_tx(b, &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::InvalidBill),
        ),
        (
            "issue: nonce other than 0",
            |c| {
                let tx = ebill_types::Tx {
                    nonce: 5,
                    body: TxBody::IssueBill(c.bill(1)),
                }
                .sign_unit(&c.chain_id(), &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::InvalidTx),
        ),
        (
            "issue: by a revoked issuer",
            |c| {
                let tx = c.gov_tx(
                    TxBody::RevokeUnit {
                        credit_code: dev::dev_issuer_code(),
                        reason: "closed".into(),
                    },
                    &[0, 2],
                );
                c.submit(tx).unwrap();
                let tx = c.issue_tx(c.bill(1), &Chain::issuer().1);
                c.submit(tx)
            },
            Some(ErrorCode::UnitRevoked),
        ),
        // Lock / Unlock / ConfirmReimbursed
        (
            "lock: accepted",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser())
            },
            None,
        ),
        (
            "lock: wrong check code",
            |c| {
                c.issue(1);
                let (code, key) = Chain::reimburser();
                let bill = c.bill(1).id();
                let tx = c.unit_tx(
                    TxBody::Lock {
                        unit: code,
                        bill,
                        check_code: ebill_types::CheckCode::parse("000000").unwrap(),
                    },
                    &key,
                );
                c.submit(tx)
            },
            Some(ErrorCode::CheckCodeMismatch),
        ),
        (
            "lock: unknown bill",
            |c| {
                let (code, key) = Chain::reimburser();
                let bill = c.bill(7).id();
                let tx = c.unit_tx(
                    TxBody::Lock {
                        unit: code,
                        bill,
                        check_code: ebill_types::CheckCode::parse("000000").unwrap(),
                    },
                    &key,
                );
                c.submit(tx)
            },
            Some(ErrorCode::UnknownBill),
        ),
        (
            "lock: by an issuer",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::issuer())
            },
            Some(ErrorCode::WrongRole),
        ),
        (
            "lock: unknown reimbursing unit",
            |c| {
                c.issue(1);
                lock(
                    c,
                    1,
                    (dev::test_credit_code('A', 50), dev::dev_key("nobody", 0)),
                )
            },
            Some(ErrorCode::UnknownReimburser),
        ),
        (
            "lock: held by another unit",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                let other = c.register_reimburser(1);
                lock(c, 1, other)
            },
            Some(ErrorCode::LockedByOther),
        ),
        (
            "lock: twice by the same unit",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                lock(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::BillLocked),
        ),
        (
            "unlock: accepted, then lock again",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                unlock(c, 1, Chain::reimburser()).unwrap();
                lock(c, 1, Chain::reimburser())
            },
            None,
        ),
        (
            "unlock: not locked",
            |c| {
                c.issue(1);
                unlock(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::NotLocked),
        ),
        (
            "unlock: by another unit",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                let other = c.register_reimburser(1);
                unlock(c, 1, other)
            },
            Some(ErrorCode::LockedByOther),
        ),
        (
            "reimburse: accepted without lock",
            |c| {
                c.issue(1);
                reimburse(c, 1, Chain::reimburser())
            },
            None,
        ),
        (
            "reimburse: accepted by the lock holder",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                reimburse(c, 1, Chain::reimburser())
            },
            None,
        ),
        (
            "reimburse: locked by another unit",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                let other = c.register_reimburser(1);
                reimburse(c, 1, other)
            },
            Some(ErrorCode::LockedByOther),
        ),
        (
            "reimburse: second time",
            |c| {
                c.issue(1);
                reimburse(c, 1, Chain::reimburser()).unwrap();
                reimburse(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::AlreadyReimbursed),
        ),
        (
            "reimburse: second time by another unit",
            |c| {
                c.issue(1);
                reimburse(c, 1, Chain::reimburser()).unwrap();
                let other = c.register_reimburser(1);
                reimburse(c, 1, other)
            },
            Some(ErrorCode::AlreadyReimbursed),
        ),
        (
            "reimburse: reversed bill",
            |c| {
                c.issue(1);
                reverse(c, 1, Chain::issuer()).unwrap();
                reimburse(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::AlreadyReversed),
        ),
        (
            "reimburse: paper-exchanged bill",
            |c| {
                c.issue(1);
                exchange(c, 1, Chain::issuer()).unwrap();
                reimburse(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::PaperExchanged),
        ),
        (
            "lock: reimbursed bill",
            |c| {
                c.issue(1);
                reimburse(c, 1, Chain::reimburser()).unwrap();
                lock(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::AlreadyReimbursed),
        ),
        // RedReverse / ExchangePaper
        (
            "reverse: accepted",
            |c| {
                c.issue(1);
                reverse(c, 1, Chain::issuer())
            },
            None,
        ),
        (
            "reverse: reimbursed bill",
            |c| {
                c.issue(1);
                reimburse(c, 1, Chain::reimburser()).unwrap();
                reverse(c, 1, Chain::issuer())
            },
            Some(ErrorCode::AlreadyReimbursed),
        ),
        (
            "reverse: locked bill",
            |c| {
                c.issue(1);
                lock(c, 1, Chain::reimburser()).unwrap();
                reverse(c, 1, Chain::issuer())
            },
            Some(ErrorCode::BillLocked),
        ),
        (
            "reverse: twice",
            |c| {
                c.issue(1);
                reverse(c, 1, Chain::issuer()).unwrap();
                reverse(c, 1, Chain::issuer())
            },
            Some(ErrorCode::AlreadyReversed),
        ),
        (
            "reverse: by another issuer",
            |c| {
                c.issue(1);
                let other = c.register_issuer(1, "3302");
                reverse(c, 1, other)
            },
            Some(ErrorCode::NotBillIssuer),
        ),
        (
            "reverse: empty reason",
            |c| {
                c.issue(1);
                let (code, key) = Chain::issuer();
                let bill = c.bill(1).id();
                let tx = c.unit_tx(
                    TxBody::RedReverse {
                        issuer: code,
                        bill,
                        reason: " ".into(),
                    },
                    &key,
                );
                c.submit(tx)
            },
            Some(ErrorCode::InvalidTx),
        ),
        (
            "exchange: accepted",
            |c| {
                c.issue(1);
                exchange(c, 1, Chain::issuer())
            },
            None,
        ),
        (
            "exchange: reversed bill",
            |c| {
                c.issue(1);
                reverse(c, 1, Chain::issuer()).unwrap();
                exchange(c, 1, Chain::issuer())
            },
            Some(ErrorCode::AlreadyReversed),
        ),
        (
            "exchange: twice",
            |c| {
                c.issue(1);
                exchange(c, 1, Chain::issuer()).unwrap();
                exchange(c, 1, Chain::issuer())
            },
            Some(ErrorCode::PaperExchanged),
        ),
        // Governance
        (
            "register issuer: 2 of 3, then it issues",
            |c| {
                let (code, key) = c.register_issuer(1, "3302");
                let mut b = c.bill(1);
                b.issuer = code;
                b.code = BillCode::parse("33020126").unwrap();
                let tx = c.issue_tx(b, &key);
                c.submit(tx)
            },
            None,
        ),
        (
            "register: one signature of the two needed",
            |c| {
                let tx = c.gov_tx(
                    TxBody::RegisterReimburser {
                        credit_code: dev::test_credit_code('A', 1),
                        name: "x".into(),
                        public_key: dev::dev_key("x", 0).public(),
                    },
                    &[2],
                );
                c.submit(tx)
            },
            Some(ErrorCode::InsufficientSignatures),
        ),
        (
            "register: a forged regulator signature",
            |c| {
                let mut tx = c.gov_tx(
                    TxBody::RegisterReimburser {
                        credit_code: dev::test_credit_code('A', 1),
                        name: "x".into(),
                        public_key: dev::dev_key("x", 0).public(),
                    },
                    &[0, 1],
                );
                if let Auth::Regulators(sigs) = &mut tx.auth {
                    sigs[1].signature = Signature([9; 64]);
                }
                c.submit(tx)
            },
            Some(ErrorCode::BadSignature),
        ),
        (
            "register: unknown regulator index",
            |c| {
                let mut tx = c.gov_tx(
                    TxBody::RegisterReimburser {
                        credit_code: dev::test_credit_code('A', 1),
                        name: "x".into(),
                        public_key: dev::dev_key("x", 0).public(),
                    },
                    &[0, 1],
                );
                if let Auth::Regulators(sigs) = &mut tx.auth {
                    sigs[1].index = 7;
                }
                c.submit(tx)
            },
            Some(ErrorCode::UnknownRegulator),
        ),
        (
            "register: existing unit",
            |c| {
                let tx = c.gov_tx(
                    TxBody::RegisterReimburser {
                        credit_code: dev::dev_issuer_code(),
                        name: "x".into(),
                        public_key: dev::dev_key("x", 0).public(),
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::UnitExists),
        ),
        (
            "register: weak key",
            |c| {
                let mut identity = [0u8; 32];
                identity[0] = 1;
                let tx = c.gov_tx(
                    TxBody::RegisterReimburser {
                        credit_code: dev::test_credit_code('A', 1),
                        name: "x".into(),
                        public_key: ebill_types::PublicKey(identity),
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::BadKey),
        ),
        (
            "register: replayed with another subset of signers",
            |c| {
                let body = TxBody::RegisterReimburser {
                    credit_code: dev::test_credit_code('A', 1),
                    name: "x".into(),
                    public_key: dev::dev_key("x", 0).public(),
                };
                let tx = c.gov_tx(body, &[0, 1]);
                c.submit(tx.clone()).unwrap();
                let keys = dev::dev_regulator_keys();
                let replay = tx
                    .tx
                    .sign_regulators(&c.chain_id(), &[(1, &keys[1]), (2, &keys[2])]);
                c.submit(replay)
            },
            Some(ErrorCode::DuplicateTx),
        ),
        (
            "revoke: twice",
            |c| {
                let tx = c.gov_tx(
                    TxBody::RevokeUnit {
                        credit_code: dev::dev_reimburser_code(),
                        reason: "r".into(),
                    },
                    &[0, 1],
                );
                c.submit(tx).unwrap();
                let tx = c.gov_tx(
                    TxBody::RevokeUnit {
                        credit_code: dev::dev_reimburser_code(),
                        reason: "r".into(),
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::AlreadyRevoked),
        ),
        (
            "revoke: unknown unit",
            |c| {
                let tx = c.gov_tx(
                    TxBody::RevokeUnit {
                        credit_code: dev::test_credit_code('A', 9),
                        reason: "r".into(),
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::UnknownUnit),
        ),
        (
            "revoked reimburser cannot reimburse",
            |c| {
                c.issue(1);
                let tx = c.gov_tx(
                    TxBody::RevokeUnit {
                        credit_code: dev::dev_reimburser_code(),
                        reason: "r".into(),
                    },
                    &[0, 1],
                );
                c.submit(tx).unwrap();
                reimburse(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::UnitRevoked),
        ),
        (
            "rotate key: old key refused, new key accepted",
            |c| {
                let new_key = dev::dev_key("rotated-issuer", 0);
                let tx = c.gov_tx(
                    TxBody::RotateKey {
                        credit_code: dev::dev_issuer_code(),
                        public_key: new_key.public(),
                    },
                    &[0, 1],
                );
                c.submit(tx).unwrap();
                let old = c.issue_tx(c.bill(1), &Chain::issuer().1);
                assert_eq!(code_of(c.submit(old)), Some(ErrorCode::BadSignature));
                let tx = c.issue_tx(c.bill(1), &new_key);
                c.submit(tx)
            },
            None,
        ),
        (
            "rotate key: to the same key",
            |c| {
                let tx = c.gov_tx(
                    TxBody::RotateKey {
                        credit_code: dev::dev_issuer_code(),
                        public_key: dev::dev_issuer_key().public(),
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::BadKey),
        ),
        // Qualifications
        (
            "qualification: lapsed by block time",
            |c| {
                let until = ebill_types::Timestamp::from_unix_ms(c.time_ms as i64 + 5_000);
                let tx = c.gov_tx(Chain::register_issuer_action(5, "3305", until), &[0, 1]);
                c.submit(tx).unwrap();
                c.time_ms += 10_000;
                let tx = c.issue_tx(c.bill_of(5, "33050126", 1), &dev::dev_key("test-issuer", 5));
                c.submit(tx)
            },
            Some(ErrorCode::QualificationExpired),
        ),
        (
            "qualification: renewal restores",
            |c| {
                let until = ebill_types::Timestamp::from_unix_ms(c.time_ms as i64 + 5_000);
                let tx = c.gov_tx(Chain::register_issuer_action(5, "3305", until), &[0, 1]);
                c.submit(tx).unwrap();
                c.time_ms += 10_000;
                let tx = c.gov_tx(
                    TxBody::RenewQualification {
                        credit_code: dev::test_credit_code('B', 5),
                        valid_until: dev::dev_valid_until(),
                    },
                    &[0, 2],
                );
                c.submit(tx).unwrap();
                let tx = c.issue_tx(c.bill_of(5, "33050126", 1), &dev::dev_key("test-issuer", 5));
                c.submit(tx)
            },
            None,
        ),
        // Proposals
        (
            "propose: by a regulator, pending",
            |c| {
                let tx = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                c.submit(tx)
            },
            None,
        ),
        (
            "propose: signer index outside the regulator set",
            |c| {
                let tx = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let mut tx = tx;
                if let ebill_types::Auth::Regulators(sigs) = &mut tx.auth {
                    sigs[0].index = 7;
                }
                c.submit(tx)
            },
            Some(ErrorCode::NotARegulator),
        ),
        (
            "propose: stale base",
            |c| {
                let base = c.gov_seq() + 1;
                let h = c.height + 10;
                let tx = c.propose_tx_at(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    h,
                    base,
                    0,
                );
                c.submit(tx)
            },
            Some(ErrorCode::StaleProposal),
        ),
        (
            "propose: expiry in the past",
            |c| {
                let base = c.gov_seq();
                let h = c.height;
                let tx = c.propose_tx_at(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    h,
                    base,
                    0,
                );
                c.submit(tx)
            },
            Some(ErrorCode::BadExpiry),
        ),
        (
            "propose: the same proposal twice",
            |c| {
                let base = c.gov_seq();
                let h = c.height + 10;
                let action = Chain::register_issuer_action(5, "3305", dev::dev_valid_until());
                let tx = c.propose_tx_at(action.clone(), h, base, 0);
                c.submit(tx).unwrap();
                let tx = c.propose_tx_at(action, h, base, 1);
                c.submit(tx)
            },
            Some(ErrorCode::ProposalExists),
        ),
        (
            "propose: an action that cannot execute is refused at once",
            |c| {
                let tx = c.propose_tx(
                    TxBody::RevokeUnit {
                        credit_code: dev::test_credit_code('B', 77),
                        reason: "none".into(),
                    },
                    10,
                    0,
                );
                c.submit(tx)
            },
            Some(ErrorCode::UnknownUnit),
        ),
        (
            "approve: reaches the threshold and executes",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
                c.submit(a).unwrap();
                let tx = c.issue_tx(c.bill_of(5, "33050126", 1), &dev::dev_key("test-issuer", 5));
                c.submit(tx)
            },
            None,
        ),
        (
            "approve: unknown proposal",
            |c| {
                let a = c.vote_tx(
                    TxBody::Approve {
                        proposal: ebill_types::Hash32([7; 32]),
                    },
                    1,
                );
                c.submit(a)
            },
            Some(ErrorCode::UnknownProposal),
        ),
        (
            "approve: twice by the proposer",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 0);
                c.submit(a)
            },
            Some(ErrorCode::AlreadyVoted),
        ),
        (
            "approve: after it executed",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
                c.submit(a).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 2);
                c.submit(a)
            },
            Some(ErrorCode::ProposalExecuted),
        ),
        (
            "approve: after it expired",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    0,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
                c.submit(a)
            },
            Some(ErrorCode::ProposalExpired),
        ),
        (
            "approve: after it was rejected",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let r = c.vote_tx(TxBody::Reject { proposal: id }, 1);
                c.submit(r).unwrap();
                let r = c.vote_tx(TxBody::Reject { proposal: id }, 2);
                c.submit(r).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
                c.submit(a)
            },
            Some(ErrorCode::ProposalRejected),
        ),
        (
            "approve: after it was withdrawn",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let w = c.vote_tx(TxBody::Withdraw { proposal: id }, 0);
                c.submit(w).unwrap();
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
                c.submit(a)
            },
            Some(ErrorCode::ProposalWithdrawn),
        ),
        (
            "approve: stale after another action executed",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                c.register_reimburser(9);
                let a = c.vote_tx(TxBody::Approve { proposal: id }, 1);
                c.submit(a)
            },
            Some(ErrorCode::StaleProposal),
        ),
        (
            "withdraw: by another regulator",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let w = c.vote_tx(TxBody::Withdraw { proposal: id }, 1);
                c.submit(w)
            },
            Some(ErrorCode::NotProposer),
        ),
        (
            "vote: signed by a key that is not the regulator's",
            |c| {
                let p = c.propose_tx(
                    Chain::register_issuer_action(5, "3305", dev::dev_valid_until()),
                    10,
                    0,
                );
                let id = c.proposal_id(&p);
                c.submit(p).unwrap();
                let outsider = dev::dev_key("outsider", 0);
                let a = c.vote_tx_with(TxBody::Approve { proposal: id }, 1, &outsider);
                c.submit(a)
            },
            Some(ErrorCode::BadSignature),
        ),
        // Regulator set
        (
            "add regulator: a key that is one already",
            |c| {
                let tx = c.gov_tx(
                    TxBody::AddRegulator {
                        name: "again".into(),
                        public_key: dev::dev_regulator_keys()[1].public(),
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::RegulatorExists),
        ),
        (
            "set threshold: above the number of regulators",
            |c| {
                let tx = c.gov_tx(TxBody::SetThreshold { threshold: 4 }, &[0, 1]);
                c.submit(tx)
            },
            Some(ErrorCode::BadThreshold),
        ),
        (
            "set prefixes: of a reimbursing unit",
            |c| {
                let tx = c.gov_tx(
                    TxBody::SetPrefixes {
                        credit_code: dev::dev_reimburser_code(),
                        code_prefixes: vec![ebill_types::CodePrefix::parse("3301").unwrap()],
                    },
                    &[0, 1],
                );
                c.submit(tx)
            },
            Some(ErrorCode::WrongRole),
        ),
        (
            "history: bounded",
            |c| {
                c.issue(1);
                for _ in 0..ebill_types::limits::MAX_BILL_HISTORY / 2 {
                    lock(c, 1, Chain::reimburser()).unwrap();
                    unlock(c, 1, Chain::reimburser()).unwrap();
                }
                lock(c, 1, Chain::reimburser())
            },
            Some(ErrorCode::HistoryFull),
        ),
    ]
}

#[test]
fn every_rule_accepts_and_rejects_as_specified() {
    let mut failures = Vec::new();
    for (name, run, expected) in cases() {
        let mut chain = Chain::new();
        let result = run(&mut chain);
        let got = code_of(result.clone());
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {result:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_code_is_covered_by_a_case_or_explained() {
    let covered: std::collections::BTreeSet<ErrorCode> =
        cases().iter().filter_map(|c| c.2).collect();
    for code in ErrorCode::ALL {
        // WrongRole on governance, DuplicateTx in one block and the others are covered by
        // the cases above; any new code must get a case here.
        assert!(covered.contains(code), "no test case rejects with {code}");
    }
}

#[test]
fn rejection_messages_name_the_conflicting_fact() {
    let mut c = Chain::new();
    c.issue(1);
    reimburse(&mut c, 1, Chain::reimburser()).unwrap();
    let height = c.height;
    let err = reimburse(&mut c, 1, Chain::reimburser()).unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyReimbursed);
    assert!(
        err.message.contains(dev::dev_reimburser_code().as_str()),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&format!("height {height}")),
        "{}",
        err.message
    );
}

#[test]
fn a_rejected_transaction_changes_nothing_and_a_bad_block_commits_nothing() {
    let mut c = Chain::new();
    c.issue(1);
    let before = format!("{:?}", c.state);
    // A block whose second transaction is a second reimbursement: the whole block is invalid.
    let (code, key) = Chain::reimburser();
    let bill = c.bill(1).id();
    let check = c.state.bill(&bill).unwrap().unwrap().check_code;
    let t1 = c.unit_tx(
        TxBody::ConfirmReimbursed {
            unit: code,
            bill,
            check_code: check,
        },
        &key,
    );
    let t2 = c.unit_tx(
        TxBody::ConfirmReimbursed {
            unit: code,
            bill,
            check_code: check,
        },
        &key,
    );
    let err = c.block(&[t1, t2]).unwrap_err();
    assert!(
        matches!(err, ebill_ledger::BlockError::Rejected { index: 1, .. }),
        "{err}"
    );
    assert_eq!(format!("{:?}", c.state), before);
}

#[test]
fn the_same_transaction_twice_in_one_block_is_refused() {
    let mut c = Chain::new();
    let tx = c.issue_tx(c.bill(1), &Chain::issuer().1);
    let err = c.block(&[tx.clone(), tx]).unwrap_err();
    match err {
        ebill_ledger::BlockError::Rejected { index: 1, error } => {
            assert_eq!(error.code, ErrorCode::DuplicateTx)
        }
        other => panic!("{other}"),
    }
}

#[test]
fn select_keeps_the_first_of_two_conflicting_reimbursements() {
    let mut c = Chain::new();
    c.issue(1);
    let other = c.register_reimburser(1);
    let bill = c.bill(1).id();
    let check = c.state.bill(&bill).unwrap().unwrap().check_code;
    let (code, key) = Chain::reimburser();
    let a = c.unit_tx(
        TxBody::ConfirmReimbursed {
            unit: code,
            bill,
            check_code: check,
        },
        &key,
    );
    let b = c.unit_tx(
        TxBody::ConfirmReimbursed {
            unit: other.0,
            bill,
            check_code: check,
        },
        &other.1,
    );
    let ctx = ebill_ledger::Context {
        genesis: &c.genesis,
        height: c.height + 1,
        time_ms: c.time_ms + 1,
    };
    let sel = ebill_ledger::select(&c.state, ctx, &[a, b], None).unwrap();
    assert_eq!(sel.accepted, vec![0]);
    assert_eq!(sel.rejected.len(), 1);
    assert_eq!(sel.rejected[0].1.code, ErrorCode::AlreadyReimbursed);
    let rec = &sel.changes.bills[&bill];
    assert_eq!(
        rec.status,
        BillStatus::Reimbursed {
            by: code,
            height: c.height + 1
        }
    );
}

#[test]
fn preverified_signatures_give_the_same_result_as_strict_checks() {
    let c = Chain::new();
    let good = c.issue_tx(c.bill(1), &Chain::issuer().1);
    let mut bad = c.issue_tx(c.bill(2), &Chain::issuer().1);
    if let Auth::Unit(sig) = &mut bad.auth {
        sig.0[10] ^= 1;
    }
    let txs = vec![good, bad];
    let verified = ebill_ledger::preverify(&c.state, &c.genesis, &txs).unwrap();
    assert_eq!(verified.len(), 1);
    let ctx = ebill_ledger::Context {
        genesis: &c.genesis,
        height: 1,
        time_ms: c.time_ms,
    };
    let with = ebill_ledger::select(&c.state, ctx, &txs, Some(&verified)).unwrap();
    let without = ebill_ledger::select(&c.state, ctx, &txs, None).unwrap();
    assert_eq!(with.accepted, without.accepted);
    assert_eq!(with.rejected, without.rejected);
    assert_eq!(with.rejected[0].1.code, ErrorCode::BadSignature);
}

/// Issue 16, defect 1: an issuer signs its own IssueBill with R = the identity (or an R
/// with a small-order component). `verify_strict` refuses such a signature, so the
/// offline verifier would too; admission (preverify) and execution must refuse it as
/// well, or the chain commits a bill whose proof never verifies.
#[test]
fn a_signature_verify_strict_refuses_is_refused_by_admission_and_execution() {
    for (nonce, torsion) in [(0, 0), (7, 4), (9, 1)] {
        let mut c = Chain::new();
        let (_, key) = Chain::issuer();
        let mut tx = c.issue_tx(c.bill(1), &key);
        let msg = tx.tx.signing_bytes(&c.chain_id());
        tx.auth = Auth::Unit(ebill_types::adversary::sign_with_torsion(
            &key, &msg, nonce, torsion,
        ));
        let txs = vec![c.issue_tx(c.bill(2), &key), tx.clone()];
        let verified = ebill_ledger::preverify(&c.state, &c.genesis, &txs).unwrap();
        assert_eq!(
            verified.len(),
            1,
            "only the honest signature is preverified"
        );
        let ctx = ebill_ledger::Context {
            genesis: &c.genesis,
            height: 1,
            time_ms: c.time_ms,
        };
        let selected = ebill_ledger::select(&c.state, ctx, &txs, Some(&verified)).unwrap();
        assert_eq!(selected.accepted.len(), 1);
        assert_eq!(selected.rejected[0].1.code, ErrorCode::BadSignature);
        assert_eq!(code_of(c.submit(tx)), Some(ErrorCode::BadSignature));
    }
}
