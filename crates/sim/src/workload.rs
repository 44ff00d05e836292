//! The clients: random bill lifecycles (issue, lock, unlock, reimburse, red-reverse,
//! exchange for paper) and governance (proposals to renew the issuer's qualification,
//! approved by two regulators at once), including conflicting transactions: the same bill reimbursed by
//! two units through two different validators at once, a bill number issued twice with
//! different contents, the same transaction sent to two validators, wrong check codes.

use std::sync::Arc;

use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{BillId, CheckCode, CreditCode, Keypair, SignedTx, Tx, TxBody};

use crate::rng::Rng;

/// Chain time (ms since the Unix epoch) at simulated time 0: an hour after the dev
/// genesis, so that bills issued "now" are inside the ledger's issue window.
pub const CHAIN_EPOCH_MS: u64 = DEV_GENESIS_TIME_MS as u64 + 3_600_000;

/// A bill the clients issued (whether or not its issue became final).
#[derive(Clone, Copy, Debug)]
struct KnownBill {
    id: BillId,
    check_code: CheckCode,
}

/// One submission: a transaction and the validators it is sent to (all at once).
#[derive(Clone, Debug)]
pub struct Submission {
    /// The transaction.
    pub tx: Arc<SignedTx>,
    /// Validator indexes it is sent to.
    pub to: Vec<u32>,
}

/// The clients of the cluster.
#[derive(Debug)]
pub struct Workload {
    chain_id: String,
    validators: u32,
    issuer: (CreditCode, Keypair),
    reimbursers: Vec<(CreditCode, Keypair)>,
    bills: Vec<KnownBill>,
    next_number: u64,
    next_nonce: u64,
    /// The governance sequence the clients write proposals against (a guess: the
    /// setup's registration, then one per proposal made).
    gov_seq: u64,
}

impl Workload {
    /// Clients of a chain with `validators` validators and the dev units.
    pub fn new(chain_id: &str, validators: u32) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            validators,
            issuer: (dev::dev_issuer_code(), dev::dev_issuer_key()),
            reimbursers: vec![
                (dev::dev_reimburser_code(), dev::dev_reimburser_key()),
                (dev::test_credit_code('A', 1), dev::dev_key("reimburser", 1)),
            ],
            bills: Vec::new(),
            next_number: 1,
            next_nonce: 1,
            gov_seq: 1,
        }
    }

    /// The first submission: the regulators (2 of 3) register a second reimbursing
    /// unit, sent to every validator.
    pub fn setup(&mut self) -> Submission {
        let (code, key) = self.reimbursers[1].clone();
        let tx = Tx {
            nonce: self.nonce(),
            body: TxBody::RegisterReimburser {
                credit_code: code,
                name: "sim reimburser".to_owned(),
                public_key: key.public(),
            },
        };
        let regs = dev::dev_regulator_keys();
        let stx = tx.sign_regulators(&self.chain_id, &[(0, &regs[0]), (2, &regs[2])]);
        Submission {
            tx: Arc::new(stx),
            to: (0..self.validators).collect(),
        }
    }

    fn nonce(&mut self) -> u64 {
        let n = self.next_nonce;
        self.next_nonce += 1;
        n
    }

    fn one_validator(&self, rng: &mut Rng) -> Vec<u32> {
        vec![rng.below(u64::from(self.validators)) as u32]
    }

    /// Two different validators (or one, in a one-validator cluster).
    fn two_validators(&self, rng: &mut Rng) -> (u32, u32) {
        let n = u64::from(self.validators);
        let a = rng.below(n) as u32;
        let b = if n > 1 {
            ((u64::from(a) + 1 + rng.below(n - 1)) % n) as u32
        } else {
            a
        };
        (a, b)
    }

    fn unit_tx(&mut self, body: TxBody, key: &Keypair) -> Arc<SignedTx> {
        let tx = Tx {
            nonce: self.nonce(),
            body,
        };
        Arc::new(tx.sign_unit(&self.chain_id, key))
    }

    fn issue(
        &mut self,
        rng: &mut Rng,
        number: u64,
        chain_now_ms: u64,
    ) -> (Arc<SignedTx>, KnownBill) {
        let issued_at = chain_now_ms.saturating_sub(rng.below(60_000));
        let amount_fen = rng.range(1, 500_000);
        let bill = dev::sample_bill(
            number,
            amount_fen,
            i64::try_from(issued_at).unwrap_or(i64::MAX),
        );
        let id = bill.id();
        let stx = Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill),
        }
        .sign_unit(&self.chain_id, &self.issuer.1);
        let check_code = match &stx.auth {
            ebill_types::Auth::Unit(sig) => CheckCode::derive(sig),
            ebill_types::Auth::Regulators(_) => unreachable!("an issue is signed by its issuer"),
        };
        (Arc::new(stx), KnownBill { id, check_code })
    }

    /// Governance by proposal: a random regulator proposes to renew the dev issuer's
    /// qualification (to a random far date, so each is a new proposal), written against
    /// the sequence the clients believe current, and the two other regulators approve
    /// through two validators at once. At most one approval executes it; the other, or a
    /// proposal gone stale under a concurrent one, is refused.
    fn governance(&mut self, rng: &mut Rng) -> Vec<Submission> {
        let regs = dev::dev_regulator_keys();
        let proposer = rng.below(3) as u16;
        let valid_until = ebill_types::Timestamp {
            unix_ms: dev::dev_valid_until().unix_ms
                - i64::try_from(rng.below(1 << 40)).unwrap_or(0),
            offset_min: 480,
        };
        let body = TxBody::Propose {
            action: Box::new(TxBody::RenewQualification {
                credit_code: self.issuer.0,
                valid_until,
            }),
            expires_at_height: 1_000_000,
            base_gov_seq: self.gov_seq,
        };
        let Some(proposal) = body.proposal_id(&self.chain_id) else {
            unreachable!("a Propose has an id")
        };
        let propose = Tx {
            nonce: self.nonce(),
            body,
        }
        .sign_regulator(&self.chain_id, proposer, &regs[usize::from(proposer)]);
        // Assume it passes: a later proposal against a stale guess is refused, and the
        // guess catches up when a proposal of it executes.
        self.gov_seq += 1;
        let (a, b) = self.two_validators(rng);
        let mut out = vec![Submission {
            tx: Arc::new(propose),
            to: (0..self.validators).collect(),
        }];
        for (i, to) in [a, b].into_iter().enumerate() {
            let voter = (proposer + 1 + i as u16) % 3;
            let tx = Tx {
                nonce: self.nonce(),
                body: TxBody::Approve { proposal },
            }
            .sign_regulator(&self.chain_id, voter, &regs[usize::from(voter)]);
            out.push(Submission {
                tx: Arc::new(tx),
                to: vec![to],
            });
        }
        out
    }

    /// The next submissions of the clients, at chain time `chain_now_ms`.
    pub fn next(&mut self, rng: &mut Rng, chain_now_ms: u64) -> Vec<Submission> {
        let roll = rng.below(100);
        if self.bills.is_empty() || roll < 30 {
            let number = self.next_number;
            self.next_number += 1;
            let (tx, known) = self.issue(rng, number, chain_now_ms);
            self.bills.push(known);
            let to = if rng.chance(100) {
                let (a, b) = self.two_validators(rng);
                vec![a, b] // the same transaction through two validators
            } else {
                self.one_validator(rng)
            };
            return vec![Submission { tx, to }];
        }
        let bill = self.bills[rng.index(self.bills.len())];
        let r = rng.index(self.reimbursers.len());
        let (unit, key) = self.reimbursers[r].clone();
        let (issuer, issuer_key) = self.issuer.clone();
        let check_code = if rng.chance(50) {
            CheckCode::derive(&ebill_types::Signature([7; 64])) // a wrong one: rejected
        } else {
            bill.check_code
        };
        match roll {
            30..=34 => {
                // The same bill number issued again with other contents: at most one
                // of the two issues may ever apply.
                let number = rng.range(1, self.next_number.saturating_sub(1).max(1));
                let (tx, _) = self.issue(rng, number, chain_now_ms);
                vec![Submission {
                    tx,
                    to: self.one_validator(rng),
                }]
            }
            35..=49 => {
                let tx = self.unit_tx(
                    TxBody::Lock {
                        unit,
                        bill: bill.id,
                        check_code,
                    },
                    &key,
                );
                vec![Submission {
                    tx,
                    to: self.one_validator(rng),
                }]
            }
            50..=57 => {
                let tx = self.unit_tx(
                    TxBody::Unlock {
                        unit,
                        bill: bill.id,
                    },
                    &key,
                );
                vec![Submission {
                    tx,
                    to: self.one_validator(rng),
                }]
            }
            58..=81 => {
                // Conflicting reimbursements: both units at once, through two validators.
                let (a, b) = self.two_validators(rng);
                let mut out = Vec::new();
                for (i, to) in [a, b].into_iter().enumerate() {
                    let (unit, key) = self.reimbursers[(r + i) % self.reimbursers.len()].clone();
                    let tx = self.unit_tx(
                        TxBody::ConfirmReimbursed {
                            unit,
                            bill: bill.id,
                            check_code,
                        },
                        &key,
                    );
                    out.push(Submission { tx, to: vec![to] });
                }
                out
            }
            82..=89 => {
                let tx = self.unit_tx(
                    TxBody::RedReverse {
                        issuer,
                        bill: bill.id,
                        reason: "开错".to_owned(),
                    },
                    &issuer_key,
                );
                vec![Submission {
                    tx,
                    to: self.one_validator(rng),
                }]
            }
            90..=91 => self.governance(rng),
            _ => {
                let tx = self.unit_tx(
                    TxBody::ExchangePaper {
                        issuer,
                        bill: bill.id,
                    },
                    &issuer_key,
                );
                vec![Submission {
                    tx,
                    to: self.one_validator(rng),
                }]
            }
        }
    }
}
