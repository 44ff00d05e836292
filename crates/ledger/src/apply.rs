//! The state machine: `(state, block) -> changes | the first rejected transaction`.
//!
//! [`Executor`] applies transactions one at a time over a read-only base state, keeping
//! the block's changes in an overlay so that later transactions see earlier ones. A
//! rejected transaction changes nothing: every check runs before the first write.
//! A block is valid only if every transaction in it applies; a proposer uses
//! [`select`] to keep the applicable ones.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use ebill_types::keys::verify_many;
use ebill_types::transition::{Lifecycle, TransitionError, TransitionFacts, transition};
use ebill_types::{
    Actor, Auth, BillId, CheckCode, CreditCode, Genesis, PublicKey, Signature, SignedTx, TxBody,
    TxId, TxKind, limits,
};

use crate::error::{BlockError, ErrorCode, StateError, TxError};
use crate::gov::{GovState, ProposalOutcome, ProposalRecord, ProposalStatus, Vote};
use crate::state::{
    BillRecord, BillStatus, ChangeSet, HistoryEntry, MAX_UNIT_EVENTS, StateView, UnitEvent,
    UnitRecord, UnitRole,
};
use ebill_types::genesis::Regulators;
use ebill_types::tx::ProposalId;

/// Where and when a block executes.
#[derive(Clone, Copy, Debug)]
pub struct Context<'g> {
    /// The chain's genesis: chain id, parameters, regulators.
    pub genesis: &'g Genesis,
    /// Height of the block.
    pub height: u64,
    /// Block time, ms since the epoch (the header's time).
    pub time_ms: u64,
}

/// The units registered by a genesis, as the changes of height 0.
pub fn genesis_changes(genesis: &Genesis) -> ChangeSet {
    let mut changes = ChangeSet::default();
    for u in &genesis.issuers {
        changes.units.insert(
            u.credit_code,
            UnitRecord {
                credit_code: u.credit_code,
                name: u.name.clone(),
                role: UnitRole::Issuer {
                    code_prefixes: u.code_prefixes.clone(),
                },
                public_key: u.public_key,
                revoked_at: None,
                events: Vec::new(),
                valid_until: u.valid_until,
            },
        );
    }
    for u in &genesis.reimbursers {
        changes.units.insert(
            u.credit_code,
            UnitRecord {
                credit_code: u.credit_code,
                name: u.name.clone(),
                role: UnitRole::Reimburser,
                public_key: u.public_key,
                revoked_at: None,
                events: Vec::new(),
                valid_until: u.valid_until,
            },
        );
    }
    changes.governance = Some(GovState::genesis(&genesis.regulators));
    changes
}

/// Signatures already checked: (transaction id, key, signature). A hit lets
/// execution skip re-verifying; a miss verifies with `verify_strict` there and then.
#[derive(Clone, Debug, Default)]
pub struct VerifiedSignatures {
    set: HashSet<(TxId, PublicKey, Signature)>,
}

impl VerifiedSignatures {
    /// Records a verified signature.
    pub fn insert(&mut self, tx: TxId, key: PublicKey, sig: Signature) {
        self.set.insert((tx, key, sig));
    }

    /// Whether this exact signature was verified for this key and transaction.
    pub fn contains(&self, tx: &TxId, key: &PublicKey, sig: &Signature) -> bool {
        self.set.contains(&(*tx, *key, *sig))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Adds every entry of `other`.
    pub fn extend(&mut self, other: VerifiedSignatures) {
        self.set.extend(other.set);
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// A transaction with what every check of it needs, computed once: its signing bytes,
/// its id (their SHA-256) and its canonical bytes (the Merkle leaf, and the size the
/// limits count). Admission, block checks and block building each encode a transaction
/// once through this instead of once per step.
#[derive(Clone, Debug)]
pub struct Prepared<'t> {
    /// The transaction.
    pub tx: &'t SignedTx,
    /// What its signatures sign (`Tx::signing_bytes`).
    pub signing_bytes: Vec<u8>,
    /// Its id, the SHA-256 of `signing_bytes`.
    pub id: TxId,
    /// Its canonical bytes (`SignedTx` as stored and gossiped).
    pub encoded: Vec<u8>,
}

impl<'t> Prepared<'t> {
    /// Encodes `tx` for the chain `chain_id`.
    pub fn new(tx: &'t SignedTx, chain_id: &str) -> Self {
        let signing_bytes = tx.tx.signing_bytes(chain_id);
        let id = ebill_types::Hash32::digest(&signing_bytes);
        Self {
            tx,
            signing_bytes,
            id,
            encoded: ebill_types::Canonical::to_canonical_bytes(tx),
        }
    }

    /// Every transaction of `txs`, prepared.
    pub fn all(txs: &'t [SignedTx], chain_id: &str) -> Vec<Self> {
        txs.iter().map(|t| Self::new(t, chain_id)).collect()
    }

    /// Its Merkle leaf hash (RFC 6962).
    pub fn leaf_hash(&self) -> ebill_types::Hash32 {
        ebill_types::merkle::leaf_hash(&self.encoded)
    }
}

/// Checks the signatures of `txs` with [`verify_many`] (the chain's one signature rule),
/// against the keys in `state` (units) and `genesis` (regulators), and returns those that
/// verified, so that callers can check them ahead of execution and on several cores;
/// [`Executor`] checks anything not found here itself, so a key rotated inside the same
/// block is still handled exactly.
pub fn preverify<V: StateView + ?Sized>(
    state: &V,
    genesis: &Genesis,
    txs: &[SignedTx],
) -> Result<VerifiedSignatures, StateError> {
    let prepared = Prepared::all(txs, genesis.chain_id.as_str());
    let refs: Vec<&Prepared<'_>> = prepared.iter().collect();
    preverify_prepared(state, genesis, &refs)
}

/// [`preverify`] over transactions already prepared.
pub fn preverify_prepared<V: StateView + ?Sized>(
    state: &V,
    genesis: &Genesis,
    txs: &[&Prepared<'_>],
) -> Result<VerifiedSignatures, StateError> {
    let mut keys_by_unit: HashMap<CreditCode, Option<PublicKey>> = HashMap::new();
    let mut regulators: Option<ebill_types::genesis::Regulators> = None;
    let mut items: Vec<(TxId, PublicKey, &[u8], Signature)> = Vec::with_capacity(txs.len());
    for p in txs {
        let msg = p.signing_bytes.as_slice();
        match (&p.tx.auth, p.tx.tx.body.actor()) {
            (Auth::Unit(sig), Actor::Unit(code)) => {
                let key = match keys_by_unit.get(&code) {
                    Some(k) => *k,
                    None => {
                        let k = state.unit(&code)?.map(|u| u.public_key);
                        keys_by_unit.insert(code, k);
                        k
                    }
                };
                if let Some(key) = key {
                    items.push((p.id, key, msg, *sig));
                }
            }
            (Auth::Regulators(sigs), Actor::Regulators) => {
                if regulators.is_none() {
                    regulators = Some(match state.governance()? {
                        Some(g) => g.regulators,
                        None => genesis.regulators.clone(),
                    });
                }
                let regs = regulators.as_ref().map_or(&[][..], |r| r.keys.as_slice());
                for s in sigs {
                    if let Some(r) = regs.get(usize::from(s.index)) {
                        items.push((p.id, r.public_key, msg, s.signature));
                    }
                }
            }
            // Proposals and votes are few, and a vote counts against its proposal's
            // own set: the executor checks them itself.
            _ => {}
        }
    }
    let mut out = VerifiedSignatures::default();
    let refs: Vec<(&PublicKey, &[u8], &Signature)> =
        items.iter().map(|(_, k, m, s)| (k, *m, s)).collect();
    for (ok, (id, key, _, sig)) in verify_many(&refs).into_iter().zip(&items) {
        if ok {
            out.insert(*id, *key, *sig);
        }
    }
    Ok(out)
}

fn reject<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, TxError> {
    Err(TxError::new(code, message))
}

/// A rejection, or a failure to read state (which is not the transaction's fault).
#[derive(Debug)]
enum Failure {
    Rejected(TxError),
    State(StateError),
}

impl From<TxError> for Failure {
    fn from(e: TxError) -> Self {
        Failure::Rejected(e)
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        Failure::State(e)
    }
}

/// What one transaction will write, computed before anything is written.
enum Write {
    Bill(BillRecord),
    /// A governance transaction: a proposal's record, and what an executed action
    /// changes (a unit, and the governance record).
    Gov(Box<GovWrite>),
}

/// The writes of a governance transaction.
struct GovWrite {
    unit: Option<UnitRecord>,
    governance: Option<GovState>,
    proposal: Option<ProposalRecord>,
}

impl Write {
    fn gov(
        unit: Option<UnitRecord>,
        governance: Option<GovState>,
        proposal: Option<ProposalRecord>,
    ) -> Self {
        Write::Gov(Box::new(GovWrite {
            unit,
            governance,
            proposal,
        }))
    }
}

/// What a governance action changes.
struct Effect {
    unit: Option<UnitRecord>,
    regulators: Option<Regulators>,
}

impl Effect {
    /// The writes of the action executed on `gov`: the governance sequence moves on.
    fn into_write(self, gov: &GovState, proposal: Option<ProposalRecord>) -> Write {
        Write::gov(
            self.unit,
            Some(GovState {
                gov_seq: gov.gov_seq.saturating_add(1),
                regulators: self.regulators.unwrap_or_else(|| gov.regulators.clone()),
            }),
            proposal,
        )
    }
}

/// Applies transactions over a base state, collecting the block's changes.
pub struct Executor<'a, V: StateView + ?Sized> {
    base: &'a V,
    ctx: Context<'a>,
    verified: Option<&'a VerifiedSignatures>,
    changes: ChangeSet,
    applied: HashSet<TxId>,
    /// Units read from `base`: every transaction names its acting unit, and a block
    /// of thousands names the same few, so each is read and decoded once. The block's
    /// own unit writes are in `changes`, which is looked at first. Over a base that
    /// does not change while the executor lives (a block check, block building) this
    /// is exact; over a live store (admission) a unit changed by a block committed
    /// meanwhile is seen as it was when first read, which admission tolerates because
    /// every block is checked again when it is built and when it is received.
    base_units: RefCell<HashMap<CreditCode, Option<UnitRecord>>>,
}

impl<'a, V: StateView + ?Sized> Executor<'a, V> {
    /// An executor for one block.
    pub fn new(base: &'a V, ctx: Context<'a>) -> Self {
        Self {
            base,
            ctx,
            verified: None,
            changes: ChangeSet::default(),
            applied: HashSet::new(),
            base_units: RefCell::new(HashMap::new()),
        }
    }

    /// Uses signatures checked beforehand (see [`preverify`]).
    pub fn with_verified(mut self, verified: &'a VerifiedSignatures) -> Self {
        self.verified = Some(verified);
        self
    }

    /// The changes so far.
    pub fn finish(self) -> ChangeSet {
        self.changes
    }

    /// Changes so far, without consuming.
    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    fn bill(&self, id: &BillId) -> Result<Option<BillRecord>, StateError> {
        match self.changes.bills.get(id) {
            Some(r) => Ok(Some(r.clone())),
            None => self.base.bill(id),
        }
    }

    /// The governance record in force: this block's, the base state's, or at genesis.
    fn gov(&self) -> Result<GovState, StateError> {
        if let Some(g) = &self.changes.governance {
            return Ok(g.clone());
        }
        Ok(match self.base.governance()? {
            Some(g) => g,
            None => GovState::genesis(&self.ctx.genesis.regulators),
        })
    }

    fn proposal(&self, id: &ProposalId) -> Result<Option<ProposalRecord>, StateError> {
        match self.changes.proposals.get(id) {
            Some(r) => Ok(Some(r.clone())),
            None => self.base.proposal(id),
        }
    }

    fn unit(&self, code: &CreditCode) -> Result<Option<UnitRecord>, StateError> {
        if let Some(r) = self.changes.units.get(code) {
            return Ok(Some(r.clone()));
        }
        if let Some(r) = self.base_units.borrow().get(code) {
            return Ok(r.clone());
        }
        let r = self.base.unit(code)?;
        self.base_units.borrow_mut().insert(*code, r.clone());
        Ok(r)
    }

    /// Applies one transaction. `Ok(Err(_))` is a rejection that changed nothing;
    /// `Err(_)` means state could not be read.
    pub fn apply(&mut self, stx: &SignedTx) -> Result<Result<TxId, TxError>, StateError> {
        let prepared = Prepared::new(stx, self.ctx.genesis.chain_id.as_str());
        self.apply_prepared(&prepared)
    }

    /// [`Executor::apply`] of a transaction already prepared for this chain.
    pub fn apply_prepared(
        &mut self,
        p: &Prepared<'_>,
    ) -> Result<Result<TxId, TxError>, StateError> {
        let id = p.id;
        match self.check(p.tx, &id, &p.signing_bytes, p.encoded.len()) {
            Ok(write) => {
                match write {
                    Write::Bill(rec) => {
                        self.changes.bills.insert(rec.id, rec);
                    }
                    Write::Gov(w) => {
                        let GovWrite {
                            unit,
                            governance,
                            proposal,
                        } = *w;
                        if let Some(rec) = unit {
                            self.changes.units.insert(rec.credit_code, rec);
                        }
                        if let Some(g) = governance {
                            self.changes.governance = Some(g);
                        }
                        if let Some(rec) = proposal {
                            self.changes.proposals.insert(rec.id, rec);
                        }
                    }
                }
                self.applied.insert(id);
                self.changes.txs.push(id);
                Ok(Ok(id))
            }
            Err(Failure::Rejected(e)) => Ok(Err(e)),
            Err(Failure::State(e)) => Err(e),
        }
    }

    fn check(
        &self,
        stx: &SignedTx,
        id: &TxId,
        msg: &[u8],
        encoded_len: usize,
    ) -> Result<Write, Failure> {
        let body = &stx.tx.body;
        if encoded_len > self.ctx.genesis.params.max_tx_bytes as usize {
            return Err(TxError::new(
                ErrorCode::InvalidTx,
                format!(
                    "transaction is {encoded_len} bytes, over the limit of {}",
                    self.ctx.genesis.params.max_tx_bytes
                ),
            )
            .into());
        }
        body.validate(&self.ctx.genesis.params).map_err(|e| {
            let code = match e.code() {
                "amounts_inconsistent" => ErrorCode::AmountsInconsistent,
                _ if body.kind() == TxKind::IssueBill => ErrorCode::InvalidBill,
                _ => ErrorCode::InvalidTx,
            };
            TxError::new(code, e.to_string())
        })?;
        if body.kind() == TxKind::IssueBill && stx.tx.nonce != 0 {
            reject(ErrorCode::InvalidTx, "an IssueBill transaction has nonce 0")?;
        }
        if self.applied.contains(id) {
            reject(
                ErrorCode::DuplicateTx,
                format!("transaction {id} is already in this block"),
            )?;
        }
        if let Some(loc) = self.base.tx_location(id)? {
            reject(
                ErrorCode::DuplicateTx,
                format!("transaction {id} was applied at height {}", loc.height),
            )?;
        }
        match body.actor() {
            Actor::Unit(code) => {
                let Auth::Unit(sig) = &stx.auth else {
                    return Err(TxError::new(
                        ErrorCode::BadSignature,
                        "a unit's transaction carries one unit signature",
                    )
                    .into());
                };
                let unit = self.acting_unit(body.kind(), &code)?;
                self.check_sig(id, &unit.public_key, msg, sig)?;
                self.unit_tx(body, id, &unit, sig)
            }
            Actor::Regulators => {
                let Auth::Regulators(sigs) = &stx.auth else {
                    return Err(TxError::new(
                        ErrorCode::BadSignature,
                        "a governance transaction carries regulator signatures",
                    )
                    .into());
                };
                let gov = self.gov()?;
                self.check_regulators(id, msg, sigs, &gov.regulators)?;
                Ok(self.execute_action(body, id)?.into_write(&gov, None))
            }
            Actor::Regulator => {
                let (Auth::Regulators(sigs), 1) = (&stx.auth, auth_len(&stx.auth)) else {
                    return Err(TxError::new(
                        ErrorCode::BadSignature,
                        format!(
                            "a {} carries one regulator's signature",
                            body.kind().as_str()
                        ),
                    )
                    .into());
                };
                self.proposal_tx(body, id, msg, &sigs[0])
            }
        }
    }

    /// The registered, active unit acting, in the role the transaction needs.
    fn acting_unit(&self, kind: TxKind, code: &CreditCode) -> Result<UnitRecord, Failure> {
        let issuer_side = matches!(
            kind,
            TxKind::IssueBill | TxKind::RedReverse | TxKind::ExchangePaper
        );
        let Some(unit) = self.unit(code)? else {
            let (c, what) = if issuer_side {
                (ErrorCode::UnknownIssuer, "issuing unit")
            } else {
                (ErrorCode::UnknownReimburser, "reimbursing unit")
            };
            return Err(TxError::new(c, format!("{code} is not a registered {what}")).into());
        };
        if let Some(h) = unit.revoked_at {
            reject(
                ErrorCode::UnitRevoked,
                format!("{code} was revoked at height {h}"),
            )?;
        }
        if let Some(until) = unit.valid_until
            && until.lapsed_at(self.ctx.time_ms)
        {
            reject(
                ErrorCode::QualificationExpired,
                format!(
                    "the qualification of {code} lapsed at {until} (block time {} ms); it signs nothing new until renewed",
                    self.ctx.time_ms
                ),
            )?;
        }
        let role_ok = match unit.role {
            UnitRole::Issuer { .. } => issuer_side,
            UnitRole::Reimburser => !issuer_side,
        };
        if !role_ok {
            reject(
                ErrorCode::WrongRole,
                format!("{code} is not registered for {}", kind.as_str()),
            )?;
        }
        Ok(unit)
    }

    fn check_sig(
        &self,
        id: &TxId,
        key: &PublicKey,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), TxError> {
        if self.verified.is_some_and(|v| v.contains(id, key, sig)) {
            return Ok(());
        }
        key.verify(msg, sig)
            .map_err(|e| TxError::new(ErrorCode::BadSignature, e.to_string()))
    }

    fn check_regulators(
        &self,
        id: &TxId,
        msg: &[u8],
        sigs: &[ebill_types::RegulatorSignature],
        regs: &Regulators,
    ) -> Result<(), TxError> {
        if sigs.windows(2).any(|w| w[0].index >= w[1].index) {
            reject(
                ErrorCode::InvalidTx,
                "regulator signatures must be in increasing index order",
            )?;
        }
        for s in sigs {
            let Some(r) = regs.keys.get(usize::from(s.index)) else {
                return reject(
                    ErrorCode::UnknownRegulator,
                    format!(
                        "regulator index {} is not in the regulator set in force ({} regulators)",
                        s.index,
                        regs.keys.len()
                    ),
                );
            };
            self.check_sig(id, &r.public_key, msg, &s.signature)
                .map_err(|_| {
                    TxError::new(
                        ErrorCode::BadSignature,
                        format!(
                            "signature of regulator {} ({}) does not verify",
                            s.index, r.name
                        ),
                    )
                })?;
        }
        if sigs.len() < usize::from(regs.threshold) {
            reject(
                ErrorCode::InsufficientSignatures,
                format!(
                    "{} regulator signatures, {} needed",
                    sigs.len(),
                    regs.threshold
                ),
            )?;
        }
        Ok(())
    }

    fn history_entry(&self, action: TxKind, by: CreditCode, id: &TxId) -> HistoryEntry {
        HistoryEntry {
            action,
            by,
            height: self.ctx.height,
            time_ms: self.ctx.time_ms,
            tx_id: *id,
        }
    }

    /// The bill for a lifecycle transaction, with room for one more history entry.
    fn existing_bill(&self, id: &BillId) -> Result<BillRecord, Failure> {
        let Some(rec) = self.bill(id)? else {
            return Err(TxError::new(ErrorCode::UnknownBill, format!("no bill {id}")).into());
        };
        if rec.history.len() > limits::MAX_BILL_HISTORY {
            reject(
                ErrorCode::HistoryFull,
                format!(
                    "bill {id} took {} changes, the most allowed",
                    limits::MAX_BILL_HISTORY
                ),
            )?;
        }
        Ok(rec)
    }

    fn unit_tx(
        &self,
        body: &TxBody,
        id: &TxId,
        unit: &UnitRecord,
        signature: &Signature,
    ) -> Result<Write, Failure> {
        let by = unit.credit_code;
        match body {
            TxBody::IssueBill(bill) => {
                let UnitRole::Issuer { code_prefixes } = &unit.role else {
                    return Err(TxError::new(ErrorCode::WrongRole, "not an issuer").into());
                };
                if !code_prefixes.iter().any(|p| bill.code.has_prefix(p)) {
                    reject(
                        ErrorCode::CodePrefixNotAllowed,
                        format!(
                            "{by} may issue under prefixes {:?}, not code {}",
                            code_prefixes.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                            bill.code
                        ),
                    )?;
                }
                let p = &self.ctx.genesis.params;
                let t = i128::from(bill.issued_at.unix_ms);
                let now = i128::from(self.ctx.time_ms);
                if t < now - i128::from(p.issue_window_past_ms)
                    || t > now + i128::from(p.issue_window_future_ms)
                {
                    reject(
                        ErrorCode::IssuedAtOutOfWindow,
                        format!(
                            "issued_at {} is outside the window of -{} ms / +{} ms around the block time {} ms",
                            bill.issued_at,
                            p.issue_window_past_ms,
                            p.issue_window_future_ms,
                            self.ctx.time_ms
                        ),
                    )?;
                }
                if let Some(existing) = self.bill(&bill.id())? {
                    reject(
                        ErrorCode::BillExists,
                        format!(
                            "bill {} was issued by {} at height {}",
                            bill.id(),
                            existing.issuer,
                            existing.issue_height()
                        ),
                    )?;
                }
                Ok(Write::Bill(BillRecord {
                    id: bill.id(),
                    issuer: bill.issuer,
                    check_code: CheckCode::derive(signature),
                    status: BillStatus::Issued,
                    history: vec![self.history_entry(TxKind::IssueBill, by, id)],
                }))
            }
            TxBody::RedReverse { bill, .. }
            | TxBody::ExchangePaper { bill, .. }
            | TxBody::Lock { bill, .. }
            | TxBody::Unlock { bill, .. }
            | TxBody::ConfirmReimbursed { bill, .. } => {
                let Some(action) = Lifecycle::of(body.kind()) else {
                    unreachable!("{:?} is a lifecycle transaction", body.kind())
                };
                let mut rec = self.existing_bill(bill)?;
                let check_code_matches = match body {
                    TxBody::Lock { check_code, .. }
                    | TxBody::ConfirmReimbursed { check_code, .. } => {
                        rec.check_code.ct_eq(check_code)
                    }
                    _ => true,
                };
                let facts = TransitionFacts {
                    issuer: rec.issuer,
                    check_code_matches,
                };
                rec.status = transition(rec.status, action, by, self.ctx.height, facts)
                    .map_err(|e| transition_rejection(bill, by, e))?;
                rec.history.push(self.history_entry(body.kind(), by, id));
                Ok(Write::Bill(rec))
            }
            _ => Err(TxError::new(ErrorCode::InvalidTx, "not a unit transaction").into()),
        }
    }

    /// Executes a governance action (a direct k-of-n transaction, or a proposal's
    /// action when its approvals reach the threshold): the one rule of every action.
    #[allow(clippy::too_many_lines)]
    fn execute_action(&self, action: &TxBody, id: &TxId) -> Result<Effect, Failure> {
        let h = self.ctx.height;
        let event = UnitEvent {
            action: action.kind(),
            height: h,
            tx_id: *id,
        };
        let unit_effect = |unit: UnitRecord| Effect {
            unit: Some(unit),
            regulators: None,
        };
        match action {
            TxBody::RegisterIssuer {
                credit_code,
                name,
                public_key,
                code_prefixes,
                valid_until,
            } => {
                self.new_unit(credit_code, public_key)?;
                self.future_date(credit_code, *valid_until)?;
                Ok(unit_effect(UnitRecord {
                    credit_code: *credit_code,
                    name: name.clone(),
                    role: UnitRole::Issuer {
                        code_prefixes: code_prefixes.clone(),
                    },
                    public_key: *public_key,
                    revoked_at: None,
                    events: vec![event],
                    valid_until: Some(*valid_until),
                }))
            }
            TxBody::RegisterReimburser {
                credit_code,
                name,
                public_key,
            } => {
                self.new_unit(credit_code, public_key)?;
                Ok(unit_effect(UnitRecord {
                    credit_code: *credit_code,
                    name: name.clone(),
                    role: UnitRole::Reimburser,
                    public_key: *public_key,
                    revoked_at: None,
                    events: vec![event],
                    valid_until: None,
                }))
            }
            TxBody::RevokeUnit { credit_code, .. }
            | TxBody::RotateKey { credit_code, .. }
            | TxBody::SetPrefixes { credit_code, .. }
            | TxBody::RenewQualification { credit_code, .. } => {
                let Some(mut unit) = self.unit(credit_code)? else {
                    return Err(TxError::new(
                        ErrorCode::UnknownUnit,
                        format!("{credit_code} is not a registered unit"),
                    )
                    .into());
                };
                if let Some(at) = unit.revoked_at {
                    reject(
                        ErrorCode::AlreadyRevoked,
                        format!("{credit_code} was revoked at height {at}"),
                    )?;
                }
                if unit.events.len() >= MAX_UNIT_EVENTS {
                    reject(
                        ErrorCode::HistoryFull,
                        format!(
                            "{credit_code} took {MAX_UNIT_EVENTS} registry changes, the most allowed"
                        ),
                    )?;
                }
                match action {
                    TxBody::RotateKey { public_key, .. } => {
                        public_key
                            .check_registrable()
                            .map_err(|e| TxError::new(ErrorCode::BadKey, e.to_string()))?;
                        if *public_key == unit.public_key {
                            reject(ErrorCode::BadKey, "the new key is the current key")?;
                        }
                        unit.public_key = *public_key;
                    }
                    TxBody::SetPrefixes { code_prefixes, .. } => {
                        let UnitRole::Issuer { code_prefixes: old } = &mut unit.role else {
                            return Err(TxError::new(
                                ErrorCode::WrongRole,
                                format!("{credit_code} is a reimbursing unit: it has no prefixes"),
                            )
                            .into());
                        };
                        *old = code_prefixes.clone();
                    }
                    TxBody::RenewQualification { valid_until, .. } => {
                        self.future_date(credit_code, *valid_until)?;
                        unit.valid_until = Some(*valid_until);
                    }
                    _ => unit.revoked_at = Some(h),
                }
                unit.events.push(event);
                Ok(unit_effect(unit))
            }
            TxBody::AddRegulator { name, public_key } => {
                let mut regs = self.gov()?.regulators;
                public_key
                    .check_registrable()
                    .map_err(|e| TxError::new(ErrorCode::BadKey, e.to_string()))?;
                if let Some(r) = regs.keys.iter().find(|r| r.public_key == *public_key) {
                    reject(
                        ErrorCode::RegulatorExists,
                        format!("key {public_key} is regulator {} already", r.name),
                    )?;
                }
                if regs.keys.len() >= limits::MAX_REGULATORS {
                    reject(
                        ErrorCode::InvalidTx,
                        format!("{} regulators, the most allowed", limits::MAX_REGULATORS),
                    )?;
                }
                regs.keys.push(ebill_types::genesis::Regulator {
                    name: name.clone(),
                    public_key: *public_key,
                });
                Ok(Effect {
                    unit: None,
                    regulators: Some(regs),
                })
            }
            TxBody::RemoveRegulator { public_key } => {
                let mut regs = self.gov()?.regulators;
                let Some(pos) = regs.keys.iter().position(|r| r.public_key == *public_key) else {
                    return Err(TxError::new(
                        ErrorCode::NotARegulator,
                        format!("key {public_key} is not a regulator"),
                    )
                    .into());
                };
                if regs.keys.len() - 1 < usize::from(regs.threshold) {
                    reject(
                        ErrorCode::BadThreshold,
                        format!(
                            "{} regulators would remain, fewer than the threshold {}: lower the threshold first",
                            regs.keys.len() - 1,
                            regs.threshold
                        ),
                    )?;
                }
                regs.keys.remove(pos);
                Ok(Effect {
                    unit: None,
                    regulators: Some(regs),
                })
            }
            TxBody::SetThreshold { threshold } => {
                let mut regs = self.gov()?.regulators;
                if *threshold == 0 || usize::from(*threshold) > regs.keys.len() {
                    reject(
                        ErrorCode::BadThreshold,
                        format!(
                            "threshold {threshold}: it must be 1 to the {} regulators",
                            regs.keys.len()
                        ),
                    )?;
                }
                if *threshold == regs.threshold {
                    reject(
                        ErrorCode::BadThreshold,
                        format!("the threshold is {threshold} already"),
                    )?;
                }
                regs.threshold = *threshold;
                Ok(Effect {
                    unit: None,
                    regulators: Some(regs),
                })
            }
            _ => Err(TxError::new(ErrorCode::InvalidTx, "not a governance action").into()),
        }
    }

    /// A qualification date must be after the block time.
    fn future_date(
        &self,
        code: &CreditCode,
        valid_until: ebill_types::Timestamp,
    ) -> Result<(), TxError> {
        if valid_until.lapsed_at(self.ctx.time_ms) {
            return reject(
                ErrorCode::InvalidTx,
                format!(
                    "qualification of {code} until {valid_until}: that is before the block time {} ms",
                    self.ctx.time_ms
                ),
            );
        }
        Ok(())
    }

    /// A proposal, or a vote on one, signed by one regulator.
    #[allow(clippy::too_many_lines)]
    fn proposal_tx(
        &self,
        body: &TxBody,
        id: &TxId,
        msg: &[u8],
        sig: &ebill_types::RegulatorSignature,
    ) -> Result<Write, Failure> {
        let h = self.ctx.height;
        let gov = self.gov()?;
        let signer = |regs: &Regulators| -> Result<PublicKey, Failure> {
            let Some(r) = regs.keys.get(usize::from(sig.index)) else {
                return Err(TxError::new(
                    ErrorCode::NotARegulator,
                    format!(
                        "signer index {} is not in the regulator set ({} regulators)",
                        sig.index,
                        regs.keys.len()
                    ),
                )
                .into());
            };
            self.check_sig(id, &r.public_key, msg, &sig.signature)
                .map_err(|_| {
                    TxError::new(
                        ErrorCode::BadSignature,
                        format!(
                            "the signature is not regulator {}'s ({}, key {})",
                            sig.index, r.name, r.public_key
                        ),
                    )
                })?;
            Ok(r.public_key)
        };
        let vote = Vote {
            index: sig.index,
            height: h,
            tx_id: *id,
        };
        match body {
            TxBody::Propose {
                action,
                expires_at_height,
                base_gov_seq,
            } => {
                signer(&gov.regulators)?;
                if *expires_at_height < h || *expires_at_height - h > limits::MAX_PROPOSAL_BLOCKS {
                    reject(
                        ErrorCode::BadExpiry,
                        format!(
                            "last height {expires_at_height}: it must be from this block's height {h} to {} blocks after it",
                            limits::MAX_PROPOSAL_BLOCKS
                        ),
                    )?;
                }
                if *base_gov_seq != gov.gov_seq {
                    reject(
                        ErrorCode::StaleProposal,
                        format!(
                            "written against governance sequence {base_gov_seq}, it is {} now",
                            gov.gov_seq
                        ),
                    )?;
                }
                let Some(pid) = body.proposal_id(&self.ctx.genesis.chain_id) else {
                    unreachable!("a Propose body has a proposal id")
                };
                if let Some(existing) = self.proposal(&pid)? {
                    reject(
                        ErrorCode::ProposalExists,
                        format!(
                            "proposal {pid} was made at height {} (approve it instead)",
                            existing.proposed_height
                        ),
                    )?;
                }
                // The action is checked now, so that a proposal that could not execute
                // is refused at once; nothing governs in between without making it stale.
                let effect = self.execute_action(action, id)?;
                let mut rec = ProposalRecord {
                    id: pid,
                    action: (**action).clone(),
                    expires_at_height: *expires_at_height,
                    base_gov_seq: *base_gov_seq,
                    regulators: gov.regulators.clone(),
                    proposer: sig.index,
                    proposed_height: h,
                    propose_tx: *id,
                    approvals: vec![vote],
                    rejections: Vec::new(),
                    outcome: ProposalOutcome::Pending,
                };
                if rec.passes() {
                    rec.outcome = ProposalOutcome::Executed {
                        height: h,
                        tx_id: *id,
                    };
                    return Ok(effect.into_write(&gov, Some(rec)));
                }
                Ok(Write::gov(None, None, Some(rec)))
            }
            TxBody::Approve { proposal }
            | TxBody::Reject { proposal }
            | TxBody::Withdraw { proposal } => {
                let Some(mut rec) = self.proposal(proposal)? else {
                    return Err(TxError::new(
                        ErrorCode::UnknownProposal,
                        format!("no proposal {proposal}"),
                    )
                    .into());
                };
                signer(&rec.regulators)?;
                ended(&rec, h)?;
                if let TxBody::Withdraw { .. } = body {
                    if sig.index != rec.proposer {
                        reject(
                            ErrorCode::NotProposer,
                            format!(
                                "proposal {proposal} was made by regulator {}, only it may withdraw it",
                                rec.proposer
                            ),
                        )?;
                    }
                    rec.outcome = ProposalOutcome::Withdrawn { height: h };
                    return Ok(Write::gov(None, None, Some(rec)));
                }
                if let Some((approved, v)) = rec.vote_of(sig.index) {
                    reject(
                        ErrorCode::AlreadyVoted,
                        format!(
                            "regulator {} {} proposal {proposal} at height {} already",
                            sig.index,
                            if approved { "approved" } else { "rejected" },
                            v.height
                        ),
                    )?;
                }
                if let TxBody::Reject { .. } = body {
                    rec.rejections.push(vote);
                    if rec.cannot_pass() {
                        rec.outcome = ProposalOutcome::Rejected { height: h };
                    }
                    return Ok(Write::gov(None, None, Some(rec)));
                }
                if rec.base_gov_seq != gov.gov_seq {
                    reject(
                        ErrorCode::StaleProposal,
                        format!(
                            "proposal {proposal} was written against governance sequence {}, it is {} now: propose it again",
                            rec.base_gov_seq, gov.gov_seq
                        ),
                    )?;
                }
                rec.approvals.push(vote);
                if rec.passes() {
                    let effect = self.execute_action(&rec.action, id)?;
                    rec.outcome = ProposalOutcome::Executed {
                        height: h,
                        tx_id: *id,
                    };
                    return Ok(effect.into_write(&gov, Some(rec)));
                }
                Ok(Write::gov(None, None, Some(rec)))
            }
            _ => Err(TxError::new(ErrorCode::InvalidTx, "not a proposal or a vote").into()),
        }
    }

    fn new_unit(&self, code: &CreditCode, key: &PublicKey) -> Result<(), Failure> {
        if let Some(existing) = self.unit(code)? {
            let state = match existing.revoked_at {
                Some(h) => format!(" (revoked at height {h})"),
                None => String::new(),
            };
            reject(
                ErrorCode::UnitExists,
                format!("{code} is registered already{state}"),
            )?;
        }
        key.check_registrable()
            .map_err(|e| TxError::new(ErrorCode::BadKey, e.to_string()))?;
        Ok(())
    }
}

/// The number of signatures on a transaction.
fn auth_len(auth: &Auth) -> usize {
    match auth {
        Auth::Unit(_) => 1,
        Auth::Regulators(sigs) => sigs.len(),
    }
}

/// Refuses a vote on a proposal that ended (or expired) by `height`, naming how.
fn ended(rec: &ProposalRecord, height: u64) -> Result<(), TxError> {
    let id = rec.id;
    match (rec.status_at(height), rec.outcome) {
        (ProposalStatus::Pending, _) => Ok(()),
        (_, ProposalOutcome::Executed { height: at, .. }) => reject(
            ErrorCode::ProposalExecuted,
            format!("proposal {id} executed at height {at}"),
        ),
        (_, ProposalOutcome::Rejected { height: at }) => reject(
            ErrorCode::ProposalRejected,
            format!("proposal {id} was rejected at height {at}"),
        ),
        (_, ProposalOutcome::Withdrawn { height: at }) => reject(
            ErrorCode::ProposalWithdrawn,
            format!("proposal {id} was withdrawn at height {at}"),
        ),
        (_, ProposalOutcome::Pending) => reject(
            ErrorCode::ProposalExpired,
            format!(
                "proposal {id} expired after height {}",
                rec.expires_at_height
            ),
        ),
    }
}

/// The ledger's rejection of a lifecycle transaction `transition` refused: its stable
/// code and a message naming the bill and the conflicting fact.
fn transition_rejection(bill: &BillId, by: CreditCode, e: TransitionError) -> TxError {
    let (code, message) = match e {
        TransitionError::NotBillIssuer { issuer } => (
            ErrorCode::NotBillIssuer,
            format!("bill {bill} was issued by {issuer}, not {by}"),
        ),
        TransitionError::CheckCodeMismatch => (
            ErrorCode::CheckCodeMismatch,
            format!("check code does not match bill {bill}"),
        ),
        TransitionError::AlreadyReimbursed { by, height } => (
            ErrorCode::AlreadyReimbursed,
            format!("bill {bill} was already reimbursed by {by} at height {height}"),
        ),
        TransitionError::AlreadyReversed { height } => (
            ErrorCode::AlreadyReversed,
            format!("bill {bill} was red-reversed at height {height}"),
        ),
        TransitionError::PaperExchanged { height } => (
            ErrorCode::PaperExchanged,
            format!("bill {bill} was exchanged for paper at height {height}"),
        ),
        TransitionError::BillLocked { holder, height } => (
            ErrorCode::BillLocked,
            format!("bill {bill} is locked by {holder} since height {height}"),
        ),
        TransitionError::LockedByOther { holder, height } => (
            ErrorCode::LockedByOther,
            format!("bill {bill} is locked by {holder} since height {height}"),
        ),
        TransitionError::NotLocked => (ErrorCode::NotLocked, format!("bill {bill} is not locked")),
    };
    TxError::new(code, message)
}

/// Applies a whole block: valid only if every transaction applies, in order, and the
/// block is within the genesis limits.
pub fn apply_block<V: StateView + ?Sized>(
    base: &V,
    ctx: Context<'_>,
    txs: &[SignedTx],
    verified: Option<&VerifiedSignatures>,
) -> Result<ChangeSet, BlockError> {
    let prepared = Prepared::all(txs, ctx.genesis.chain_id.as_str());
    apply_block_prepared(base, ctx, &prepared, verified)
}

/// [`apply_block`] over transactions already prepared.
pub fn apply_block_prepared<V: StateView + ?Sized>(
    base: &V,
    ctx: Context<'_>,
    txs: &[Prepared<'_>],
    verified: Option<&VerifiedSignatures>,
) -> Result<ChangeSet, BlockError> {
    let params = &ctx.genesis.params;
    if txs.len() > params.max_block_txs as usize {
        return Err(BlockError::OverLimit(format!(
            "{} transactions, limit {}",
            txs.len(),
            params.max_block_txs
        )));
    }
    let mut exec = Executor::new(base, ctx);
    if let Some(v) = verified {
        exec = exec.with_verified(v);
    }
    for (index, p) in txs.iter().enumerate() {
        if let Err(error) = exec.apply_prepared(p)? {
            return Err(BlockError::Rejected { index, error });
        }
    }
    Ok(exec.finish())
}

/// What a proposer keeps of its candidate transactions.
#[derive(Debug, Default)]
pub struct Selection {
    /// Changes of the accepted transactions.
    pub changes: ChangeSet,
    /// Indices (into the candidates) of the accepted ones, in order.
    pub accepted: Vec<usize>,
    /// Indices of the rejected ones, with why.
    pub rejected: Vec<(usize, TxError)>,
}

/// Applies candidates in order, keeping those that apply, up to the block limits of
/// the genesis (count and bytes). Candidates beyond the limits are neither accepted nor
/// rejected: they wait for the next block.
pub fn select<V: StateView + ?Sized>(
    base: &V,
    ctx: Context<'_>,
    candidates: &[SignedTx],
    verified: Option<&VerifiedSignatures>,
) -> Result<Selection, StateError> {
    let prepared = Prepared::all(candidates, ctx.genesis.chain_id.as_str());
    select_prepared(base, ctx, &prepared, verified)
}

/// [`select`] over candidates already prepared.
pub fn select_prepared<V: StateView + ?Sized>(
    base: &V,
    ctx: Context<'_>,
    candidates: &[Prepared<'_>],
    verified: Option<&VerifiedSignatures>,
) -> Result<Selection, StateError> {
    let params = &ctx.genesis.params;
    let mut exec = Executor::new(base, ctx);
    if let Some(v) = verified {
        exec = exec.with_verified(v);
    }
    let mut out = Selection::default();
    let mut bytes = 0usize;
    for (i, p) in candidates.iter().enumerate() {
        if out.accepted.len() >= params.max_block_txs as usize {
            break;
        }
        let len = p.encoded.len();
        if bytes + len > params.max_block_bytes as usize {
            break;
        }
        match exec.apply_prepared(p)? {
            Ok(_) => {
                out.accepted.push(i);
                bytes += len;
            }
            Err(e) => out.rejected.push((i, e)),
        }
    }
    out.changes = exec.finish();
    Ok(out)
}
