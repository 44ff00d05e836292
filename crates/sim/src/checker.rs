//! The checkers, run after every step of a run (each step reports what it made final
//! and what it signed; the checks are incremental, so "after every step" costs no scan):
//!
//! - **agreement**: no two different final blocks at one height across honest validators;
//! - **certificates**: every final block of an honest validator has a certificate that
//!   passes `CommitCertificate::verify` against the validator set, for that block;
//! - **ledger equality**: honest validators' ledger digests are equal at equal heights;
//! - **ledger invariants**, over each honest validator's committed transactions: a bill
//!   is issued at most once, reimbursed at most once, only after its issue, and never
//!   after a red-reversal or a paper exchange;
//! - **no honest equivocation**: an honest validator never signs two different votes of
//!   one kind, or two different proposals, for one height and round (across restarts
//!   too), and consensus never had to refuse a conflicting signature;
//! - **state root**: after its commits, an honest validator's own state tree has the
//!   root its last committed header carries;
//! - **node faults**: a final block that does not re-execute, a WAL refused on restart.
//!
//! Liveness (stalls) is checked by the run, which owns the clock.

use std::collections::{BTreeMap, BTreeSet};

use ebill_consensus::Message;
use ebill_types::{BillId, Block, CommitCertificate, Hash32, TxBody, ValidatorSet, VoteKind};

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Simulated time.
    pub time_ms: u64,
    /// The validator concerned, if one.
    pub node: Option<u32>,
    /// Which checker: `agreement`, `certificate`, `ledger_divergence`, `issued_twice`,
    /// `reimbursed_twice`, `reimbursed_unissued`, `reimbursed_after_final`,
    /// `honest_equivocation`, `refused_conflicting_signature`, `state_root`, `node_fault`.
    pub kind: &'static str,
    /// What exactly.
    pub detail: String,
}

/// What one honest validator's chain has seen of each bill.
#[derive(Debug, Default)]
struct BillFacts {
    issued: BTreeSet<BillId>,
    reimbursed: BTreeSet<BillId>,
    closed: BTreeSet<BillId>,
}

/// The final block of a height, as the first honest validator committed it.
#[derive(Clone, Copy, Debug)]
struct FinalBlock {
    hash: Hash32,
    state_digest: Hash32,
    node: u32,
}

/// All checkers of one run.
#[derive(Debug)]
pub struct Checker {
    chain_id: String,
    validators: ValidatorSet,
    finals: BTreeMap<u64, FinalBlock>,
    facts: BTreeMap<u32, BillFacts>,
    signed: BTreeMap<(u32, u64, u32, u8), Message>,
    violations: Vec<Violation>,
}

impl Checker {
    /// Checkers for a chain.
    pub fn new(chain_id: &str, validators: ValidatorSet) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            validators,
            finals: BTreeMap::new(),
            facts: BTreeMap::new(),
            signed: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Heights final so far (at any honest validator).
    pub fn final_heights(&self) -> u64 {
        self.finals.keys().next_back().copied().unwrap_or(0)
    }

    fn violation(&mut self, time_ms: u64, node: Option<u32>, kind: &'static str, detail: String) {
        self.violations.push(Violation {
            time_ms,
            node,
            kind,
            detail,
        });
    }

    /// A node-detected fault of an honest validator.
    pub fn on_fault(&mut self, time_ms: u64, node: u32, detail: String) {
        self.violation(time_ms, Some(node), "node_fault", detail);
    }

    /// Honest validator `node` made `block` final at `height`.
    pub fn on_commit(
        &mut self,
        time_ms: u64,
        node: u32,
        height: u64,
        block: &Block,
        certificate: &CommitCertificate,
        state_digest: Hash32,
    ) {
        let hash = block.header.hash();
        if let Err(e) = certificate.verify(&self.chain_id, height, &hash, &self.validators) {
            self.violation(
                time_ms,
                Some(node),
                "certificate",
                format!("final block {hash} at height {height}: {e}"),
            );
        }
        match self.finals.get(&height).copied() {
            None => {
                self.finals.insert(
                    height,
                    FinalBlock {
                        hash,
                        state_digest,
                        node,
                    },
                );
            }
            Some(first) if first.hash != hash => self.violation(
                time_ms,
                Some(node),
                "agreement",
                format!(
                    "height {height}: validator {} finalised {}, validator {node} finalised {hash}",
                    first.node, first.hash
                ),
            ),
            Some(first) if first.state_digest != state_digest => self.violation(
                time_ms,
                Some(node),
                "ledger_divergence",
                format!(
                    "height {height}: ledger digest {} at validator {}, {state_digest} at validator {node}",
                    first.state_digest, first.node
                ),
            ),
            Some(_) => {}
        }
        self.scan(time_ms, node, height, block);
    }

    /// The ledger invariants over the transactions of one committed block.
    fn scan(&mut self, time_ms: u64, node: u32, height: u64, block: &Block) {
        let mut found = Vec::new();
        let facts = self.facts.entry(node).or_default();
        for stx in &block.txs {
            match &stx.tx.body {
                TxBody::IssueBill(bill) => {
                    let id = bill.id();
                    if !facts.issued.insert(id) {
                        found.push((
                            "issued_twice",
                            format!("bill {id} issued again at height {height}"),
                        ));
                    }
                }
                TxBody::ConfirmReimbursed { bill, .. } => {
                    if !facts.issued.contains(bill) {
                        found.push((
                            "reimbursed_unissued",
                            format!("bill {bill} reimbursed at height {height} but never issued"),
                        ));
                    }
                    if facts.closed.contains(bill) {
                        found.push((
                            "reimbursed_after_final",
                            format!("bill {bill} reimbursed at height {height} after a reversal or exchange"),
                        ));
                    }
                    if !facts.reimbursed.insert(*bill) {
                        found.push((
                            "reimbursed_twice",
                            format!("bill {bill} reimbursed again at height {height}"),
                        ));
                    }
                }
                TxBody::RedReverse { bill, .. } | TxBody::ExchangePaper { bill, .. } => {
                    facts.closed.insert(*bill);
                }
                _ => {}
            }
        }
        for (kind, detail) in found {
            self.violation(time_ms, Some(node), kind, detail);
        }
    }

    /// Honest validator `node` signed and sent `msg`.
    pub fn on_signed(&mut self, time_ms: u64, node: u32, msg: Message) {
        let kind = match msg {
            Message::Proposal(_) => 0,
            Message::Vote(v) => match v.vote.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            },
        };
        let key = (node, msg.height(), msg.round(), kind);
        match self.signed.get(&key) {
            None => {
                self.signed.insert(key, msg);
            }
            Some(first) if *first != msg => {
                let detail = format!(
                    "validator {node} signed two different {} at height {} round {}: {first:?} and {msg:?}",
                    ["proposals", "prevotes", "precommits"][kind as usize],
                    msg.height(),
                    msg.round()
                );
                self.violation(time_ms, Some(node), "honest_equivocation", detail);
            }
            Some(_) => {}
        }
    }

    /// Forgets signed messages of heights below `height` (memory bound for long runs;
    /// only called with a height every honest validator has committed).
    pub fn prune_signed_below(&mut self, height: u64) {
        self.signed.retain(|(_, h, _, _), _| *h >= height);
    }

    /// Honest validator `node`'s own state tree after its commits: its root must be the
    /// state root of the header it committed last.
    pub fn on_tree_root(
        &mut self,
        time_ms: u64,
        node: u32,
        height: u64,
        header_root: Hash32,
        tree_root: Hash32,
    ) {
        if header_root != tree_root {
            self.violation(
                time_ms,
                Some(node),
                "state_root",
                format!(
                    "validator {node}'s state tree has root {tree_root} after height {height}, whose header says {header_root}"
                ),
            );
        }
    }

    /// After each step: consensus must never have refused to sign (`refused` is
    /// `Stats::refused_conflicting_signatures` of honest validator `node`).
    pub fn after_step(&mut self, time_ms: u64, node: u32, refused: u64) {
        if refused > 0 {
            self.violation(
                time_ms,
                Some(node),
                "refused_conflicting_signature",
                format!("consensus of validator {node} refused {refused} conflicting signature(s)"),
            );
        }
    }
}
