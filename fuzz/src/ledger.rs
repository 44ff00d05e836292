//! The ledger on the golden genesis (`crates/types/tests/vectors/genesis.json`), with the
//! golden example bill issued, for admission checks of fuzzed transactions.
//!
//! The property: a transaction the ledger accepts is one every node can carry. Its
//! canonical form decodes back to it, within the size limit of a transaction in a block;
//! otherwise a node that admitted it (from JSON, say) would build a block its peers
//! cannot decode.
//!
//! Fuzzed signatures never verify, so each transaction is also tried re-signed with the
//! key of its acting unit (or of the regulators it lists): the golden keys come from
//! public seeds (`crates/types/tests/common/mod.rs`), like the dev keys.

use std::sync::OnceLock;

use ebill_ledger::{Context, Executor, MemState, StateView, genesis_changes};
use ebill_types::codec::Canonical;
use ebill_types::{Actor, Auth, Genesis, Keypair, SignedTx, limits};

use crate::canonical_round_trip;

/// Seeds of the golden vectors' keys: issuer, reimburser, the three regulators, the
/// rotated key, the new issuer and the new reimburser.
const UNIT_SEEDS: [[u8; 32]; 5] = [[1; 32], [2; 32], [6; 32], [7; 32], [8; 32]];
const REGULATOR_SEEDS: [[u8; 32]; 3] = [[3; 32], [4; 32], [5; 32]];

/// The golden genesis and a state in which its example bill was issued at height 1.
pub struct Ledger {
    /// The golden genesis.
    pub genesis: Genesis,
    state: MemState,
    time_ms: u64,
    units: Vec<Keypair>,
    regulators: Vec<Keypair>,
}

impl Ledger {
    /// Built once per process.
    pub fn get() -> &'static Ledger {
        static L: OnceLock<Ledger> = OnceLock::new();
        L.get_or_init(build)
    }

    /// The state: genesis units and the golden example bill.
    pub fn state(&self) -> &MemState {
        &self.state
    }

    /// Applies `tx` at height 2 over the state; `true` if the ledger accepts it. A
    /// transaction accepted must survive its canonical form (see the module doc).
    pub fn admit(&self, tx: &SignedTx) -> bool {
        let ctx = Context {
            genesis: &self.genesis,
            height: 2,
            time_ms: self.time_ms,
        };
        let mut exec = Executor::new(&self.state, ctx);
        match exec.apply(tx) {
            Ok(Ok(_)) => {
                canonical_round_trip("admitted transaction", tx);
                let len = tx.to_canonical_bytes().len();
                assert!(
                    len <= limits::MAX_TX_BYTES,
                    "admitted transaction of {len} bytes, over MAX_TX_BYTES"
                );
                true
            }
            Ok(Err(_)) => false,
            Err(e) => panic!("the in-memory state failed: {e:?}"),
        }
    }

    /// `tx` with its signatures made anew by the keys it names: the acting unit's current
    /// key if it is one of the golden keys, the listed regulators' keys (in the order
    /// listed, unknown indices kept as they are). `None` if nothing could be signed.
    pub fn resign(&self, tx: &SignedTx) -> Option<SignedTx> {
        let msg = tx.tx.signing_bytes(&self.genesis.chain_id);
        let auth = match (&tx.auth, tx.tx.body.actor()) {
            (Auth::Unit(_), Actor::Unit(code)) => {
                let key = self.state.unit(&code).ok()??.public_key;
                let kp = self.units.iter().find(|k| k.public() == key)?;
                Auth::Unit(kp.sign(&msg))
            }
            (Auth::Regulators(sigs), Actor::Regulators | Actor::Regulator) => Auth::Regulators(
                sigs.iter()
                    .map(|s| {
                        let mut s = *s;
                        if let Some(k) = self.regulators.get(usize::from(s.index)) {
                            s.signature = k.sign(&msg);
                        }
                        s
                    })
                    .collect(),
            ),
            _ => return None,
        };
        Some(SignedTx {
            tx: tx.tx.clone(),
            auth,
        })
    }

    /// [`Ledger::admit`] of `tx` as it is and re-signed.
    pub fn admit_both(&self, tx: &SignedTx) {
        self.admit(tx);
        if let Some(t) = self.resign(tx) {
            self.admit(&t);
        }
    }
}

/// The golden genesis text.
pub const GENESIS_JSON: &str = include_str!("../../crates/types/tests/vectors/genesis.json");
/// The golden transactions.
pub const TRANSACTIONS_JSON: &str =
    include_str!("../../crates/types/tests/vectors/transactions.json");

fn build() -> Ledger {
    let genesis = Genesis::from_json(GENESIS_JSON).expect("the golden genesis parses");
    let mut state = MemState::default();
    state.commit(0, &genesis_changes(&genesis));
    let vectors: serde_json::Value =
        serde_json::from_str(TRANSACTIONS_JSON).expect("the golden transactions parse");
    let issue_hex = vectors["transactions"][0]["signed_tx"]
        .as_str()
        .expect("the first golden transaction has signed_tx");
    let issue = SignedTx::from_canonical_bytes(&hex::decode(issue_hex).expect("hex"))
        .expect("the golden issue decodes");
    let ebill_types::TxBody::IssueBill(bill) = &issue.tx.body else {
        panic!("the first golden transaction is not an issue");
    };
    let time_ms = u64::try_from(bill.issued_at.unix_ms + 60_000).expect("after the epoch");
    let mut exec = Executor::new(
        &state,
        Context {
            genesis: &genesis,
            height: 1,
            time_ms,
        },
    );
    match exec.apply(&issue) {
        Ok(Ok(_)) => {}
        other => panic!("the golden issue does not apply: {other:?}"),
    }
    let changes = exec.finish();
    state.commit(1, &changes);
    Ledger {
        genesis,
        state,
        time_ms: time_ms + 1000,
        units: UNIT_SEEDS.iter().map(|s| Keypair::from_seed(*s)).collect(),
        regulators: REGULATOR_SEEDS
            .iter()
            .map(|s| Keypair::from_seed(*s))
            .collect(),
    }
}
