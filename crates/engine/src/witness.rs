//! A regulator's observer co-signing the checkpoints it has re-executed
//! ([`ebill_types::checkpoint`]).
//!
//! An observer commits a block only after it has checked the block's certificate and
//! re-executed every transaction to the header's state root; the host then asks its
//! [`Witness`] for a co-signature of that block's checkpoint. The witness never co-signs
//! two different blocks at one height, nor a height below the last it signed: before it
//! signs, it records what it signs in the store, durably, as a validator writes its vote
//! to the WAL before sending it. After a restart it reads that record back.

use ebill_store::{Cosigned, Store, StoreError};
use ebill_types::checkpoint::{Checkpoint, Cosignature, Witnesses};
use ebill_types::{Genesis, Header, Keypair};
use thiserror::Error;

/// Why a witness does not co-sign.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WitnessError {
    /// It co-signed another block at this height: signing this one too would be
    /// equivocation.
    #[error("already co-signed block {signed} at height {height}; refusing block {offered}")]
    OtherBlock {
        /// The height.
        height: u64,
        /// The block it signed.
        signed: ebill_types::Hash32,
        /// The block offered now.
        offered: ebill_types::Hash32,
    },
    /// It co-signed a higher height already; it keeps no record of lower ones.
    #[error("already co-signed height {signed}; refusing height {offered}")]
    Behind {
        /// The highest height signed.
        signed: u64,
        /// The height offered.
        offered: u64,
    },
    /// The record of what it signed could not be read or written: it signs nothing.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// An observer's co-signing key, if the genesis names it as a regulator's observer.
pub struct Witness {
    key: Keypair,
}

impl Witness {
    /// The witness of `key` on the chain of `genesis`: `None` unless `key` is the node
    /// key of an observer the genesis names as a regulator's.
    pub fn of(genesis: &Genesis, key: &Keypair) -> Option<Self> {
        Witnesses::of(genesis)
            .by_key(&key.public())
            .map(|_| Self { key: key.clone() })
    }

    /// Co-signs the checkpoint of `header`, a block this node has committed (and so
    /// re-executed to its state root): records it in `store` durably first. Signing the
    /// same block again (after a restart, or to re-send) gives the same co-signature.
    pub fn cosign(
        &self,
        store: &dyn Store,
        header: &Header,
    ) -> Result<(Checkpoint, Cosignature), WitnessError> {
        let checkpoint = Checkpoint::of(header);
        match store.last_cosigned()? {
            Some(last) if last.height > checkpoint.height => {
                return Err(WitnessError::Behind {
                    signed: last.height,
                    offered: checkpoint.height,
                });
            }
            Some(last) if last.height == checkpoint.height => {
                if last.hash != checkpoint.block_hash {
                    return Err(WitnessError::OtherBlock {
                        height: last.height,
                        signed: last.hash,
                        offered: checkpoint.block_hash,
                    });
                }
            }
            _ => store.record_cosigned(Cosigned {
                height: checkpoint.height,
                hash: checkpoint.block_hash,
            })?,
        }
        let cosig = checkpoint.cosign(&self.key);
        Ok((checkpoint, cosig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebill_store::MemStore;
    use ebill_types::Hash32;
    use ebill_types::dev::{dev_genesis_with, dev_key, dev_regulator_keys};
    use ebill_types::genesis::Observer;

    fn genesis() -> Genesis {
        let mut g = dev_genesis_with("unit", 4);
        g.observers = vec![
            Observer {
                name: "witness".into(),
                public_key: dev_key("observer", 0).public(),
                regulator: Some(dev_regulator_keys()[0].public()),
            },
            Observer {
                name: "plain".into(),
                public_key: dev_key("observer", 1).public(),
                regulator: None,
            },
        ];
        g
    }

    fn header(height: u64, tag: u8) -> Header {
        Header {
            chain_id: "unit".into(),
            height,
            prev_hash: Hash32([tag; 32]),
            time_ms: 1,
            proposer: 0,
            tx_root: Hash32::ZERO,
            tx_count: 0,
            validator_set_hash: Hash32::ZERO,
            state_root: Hash32([tag; 32]),
        }
    }

    #[test]
    fn only_a_regulators_observer_is_a_witness() {
        let g = genesis();
        assert!(Witness::of(&g, &dev_key("observer", 0)).is_some());
        assert!(Witness::of(&g, &dev_key("observer", 1)).is_none());
        assert!(Witness::of(&g, &dev_key("validator", 0)).is_none());
    }

    #[test]
    fn a_witness_never_cosigns_two_blocks_at_one_height_even_after_a_restart() {
        let g = genesis();
        let store = MemStore::new();
        let key = dev_key("observer", 0);
        let w = Witness::of(&g, &key).unwrap_or_else(|| unreachable!("a witness"));
        let (cp, sig) = w
            .cosign(&store, &header(5, 1))
            .unwrap_or_else(|e| unreachable!("{e}"));
        // What it signed is on record before the co-signature is returned.
        assert_eq!(
            store.last_cosigned(),
            Ok(Some(Cosigned {
                height: 5,
                hash: cp.block_hash
            }))
        );
        assert!(
            cp.verify_cosignature(&sig, &Witnesses::of(&g)).is_ok(),
            "the co-signature verifies"
        );
        // The same block again: the same co-signature.
        assert_eq!(w.cosign(&store, &header(5, 1)).map(|x| x.1), Ok(sig));
        // A restarted witness (a new one over the same store) refuses another block at
        // height 5, and any lower height.
        let restarted = Witness::of(&g, &key).unwrap_or_else(|| unreachable!("a witness"));
        assert!(matches!(
            restarted.cosign(&store, &header(5, 2)),
            Err(WitnessError::OtherBlock { height: 5, .. })
        ));
        assert!(matches!(
            restarted.cosign(&store, &header(4, 1)),
            Err(WitnessError::Behind {
                signed: 5,
                offered: 4
            })
        ));
        // The next height is fine.
        assert!(restarted.cosign(&store, &header(6, 2)).is_ok());
    }
}
