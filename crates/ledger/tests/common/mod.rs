//! A small chain over `MemState` for the ledger's tests.
#![allow(
    missing_docs,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use ebill_ledger::{
    BlockError, Context, ErrorCode, MemState, TxError, apply_block, genesis_changes,
};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{
    Bill, BillId, CheckCode, CodePrefix, CreditCode, Genesis, Keypair, SignedTx, Tx, TxBody, TxId,
};

pub struct Chain {
    pub genesis: Genesis,
    pub state: MemState,
    pub height: u64,
    pub time_ms: u64,
    nonce: u64,
}

impl Chain {
    pub fn new() -> Self {
        let genesis = dev::dev_genesis();
        let mut state = MemState::default();
        state.commit(0, &genesis_changes(&genesis));
        Self {
            genesis,
            state,
            height: 0,
            time_ms: DEV_GENESIS_TIME_MS as u64 + 3_600_000,
            nonce: 0,
        }
    }

    pub fn chain_id(&self) -> String {
        self.genesis.chain_id.clone()
    }

    /// Applies `txs` as one block; commits it only if every transaction applies.
    pub fn block(&mut self, txs: &[SignedTx]) -> Result<(), BlockError> {
        let ctx = Context {
            genesis: &self.genesis,
            height: self.height + 1,
            time_ms: self.time_ms + 1000,
        };
        let changes = apply_block(&self.state, ctx, txs, None)?;
        self.height += 1;
        self.time_ms += 1000;
        self.state.commit(self.height, &changes);
        Ok(())
    }

    /// One transaction in its own block.
    pub fn submit(&mut self, tx: SignedTx) -> Result<TxId, TxError> {
        let id = tx.tx.id(&self.genesis.chain_id);
        match self.block(&[tx]) {
            Ok(()) => Ok(id),
            Err(BlockError::Rejected { error, .. }) => Err(error),
            Err(e) => panic!("unexpected block error {e}"),
        }
    }

    pub fn next_nonce(&mut self) -> u64 {
        self.nonce += 1;
        self.nonce
    }

    pub fn issuer() -> (CreditCode, Keypair) {
        (dev::dev_issuer_code(), dev::dev_issuer_key())
    }

    pub fn reimburser() -> (CreditCode, Keypair) {
        (dev::dev_reimburser_code(), dev::dev_reimburser_key())
    }

    pub fn bill(&self, number: u64) -> Bill {
        dev::sample_bill(number, 1250, self.time_ms as i64)
    }

    pub fn issue_tx(&self, bill: Bill, key: &Keypair) -> SignedTx {
        Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill),
        }
        .sign_unit(&self.genesis.chain_id, key)
    }

    /// Issues bill `number` from the dev issuer; returns its id and check code.
    pub fn issue(&mut self, number: u64) -> (BillId, CheckCode) {
        let bill = self.bill(number);
        let id = bill.id();
        let tx = self.issue_tx(bill, &Self::issuer().1);
        let check = tx.to_signed_bill().unwrap().check_code;
        self.submit(tx).unwrap();
        (id, check)
    }

    pub fn unit_tx(&mut self, body: TxBody, key: &Keypair) -> SignedTx {
        let nonce = self.next_nonce();
        Tx { nonce, body }.sign_unit(&self.genesis.chain_id, key)
    }

    pub fn gov_tx(&mut self, body: TxBody, signers: &[u16]) -> SignedTx {
        let nonce = self.next_nonce();
        let keys = dev::dev_regulator_keys();
        let pairs: Vec<(u16, &Keypair)> = signers
            .iter()
            .map(|&i| (i, &keys[usize::from(i)]))
            .collect();
        Tx { nonce, body }.sign_regulators(&self.genesis.chain_id, &pairs)
    }

    /// Registers a second reimbursing unit; returns its code and key.
    pub fn register_reimburser(&mut self, index: u32) -> (CreditCode, Keypair) {
        let code = dev::test_credit_code('A', index);
        let key = dev::dev_key("test-reimburser", index);
        let tx = self.gov_tx(
            TxBody::RegisterReimburser {
                credit_code: code,
                name: format!("reimburser {index}"),
                public_key: key.public(),
            },
            &[0, 1],
        );
        self.submit(tx).unwrap();
        (code, key)
    }

    /// Registers another issuer for `prefix`; returns its code and key.
    pub fn register_issuer(&mut self, index: u32, prefix: &str) -> (CreditCode, Keypair) {
        let code = dev::test_credit_code('B', index);
        let key = dev::dev_key("test-issuer", index);
        let tx = self.gov_tx(
            TxBody::RegisterIssuer {
                credit_code: code,
                name: format!("issuer {index}"),
                public_key: key.public(),
                code_prefixes: vec![CodePrefix::parse(prefix).unwrap()],
                valid_until: ebill_types::dev::dev_valid_until(),
            },
            &[1, 2],
        );
        self.submit(tx).unwrap();
        (code, key)
    }
}

pub fn code_of(r: Result<TxId, TxError>) -> Option<ErrorCode> {
    r.err().map(|e| e.code)
}

impl Chain {
    /// A `Propose` of `action` signed by regulator `by`, open for `blocks` blocks after
    /// the next one, written against the current governance sequence.
    pub fn propose_tx(&mut self, action: TxBody, blocks: u64, by: u16) -> SignedTx {
        let base = self.gov_seq();
        self.propose_tx_at(action, self.height + 1 + blocks, base, by)
    }

    /// A `Propose` with every field given.
    pub fn propose_tx_at(
        &mut self,
        action: TxBody,
        expires_at_height: u64,
        base_gov_seq: u64,
        by: u16,
    ) -> SignedTx {
        let nonce = self.next_nonce();
        let keys = dev::dev_regulator_keys();
        Tx {
            nonce,
            body: TxBody::Propose {
                action: Box::new(action),
                expires_at_height,
                base_gov_seq,
            },
        }
        .sign_regulator(&self.genesis.chain_id, by, &keys[usize::from(by)])
    }

    /// A vote (`Approve`, `Reject`, `Withdraw` body) signed by `key` as regulator `index`.
    pub fn vote_tx_with(&mut self, body: TxBody, index: u16, key: &Keypair) -> SignedTx {
        let nonce = self.next_nonce();
        Tx { nonce, body }.sign_regulator(&self.genesis.chain_id, index, key)
    }

    /// A vote signed by dev regulator `by`.
    pub fn vote_tx(&mut self, body: TxBody, by: u16) -> SignedTx {
        let key = dev::dev_regulator_keys()[usize::from(by)].clone();
        self.vote_tx_with(body, by, &key)
    }

    /// The id of the proposal in a `Propose` transaction.
    pub fn proposal_id(&self, tx: &SignedTx) -> ebill_types::Hash32 {
        tx.tx.body.proposal_id(&self.genesis.chain_id).unwrap()
    }

    /// The governance sequence number now.
    pub fn gov_seq(&self) -> u64 {
        self.state.governance.as_ref().map_or(0, |g| g.gov_seq)
    }

    /// An action registering issuer `index` under `prefix`, qualified until `valid_until`.
    pub fn register_issuer_action(
        index: u32,
        prefix: &str,
        valid_until: ebill_types::Timestamp,
    ) -> TxBody {
        TxBody::RegisterIssuer {
            credit_code: dev::test_credit_code('B', index),
            name: format!("issuer {index}"),
            public_key: dev::dev_key("test-issuer", index).public(),
            code_prefixes: vec![CodePrefix::parse(prefix).unwrap()],
            valid_until,
        }
    }

    /// A bill of issuer `index` (registered by `register_issuer_action`) under `code`.
    pub fn bill_of(&self, index: u32, code: &str, number: u64) -> Bill {
        let mut b = self.bill(number);
        b.issuer = dev::test_credit_code('B', index);
        b.code = ebill_types::BillCode::parse(code).unwrap();
        b
    }
}
