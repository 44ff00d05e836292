//! Checkpoints and the co-signatures of regulators' observers (docs/spec/checkpoint.md).
//!
//! A [`Checkpoint`] names one final block: chain id, height, block hash and the state
//! root after it. A regulator's observer (a witness: an observer the genesis names as
//! belonging to a regulator, [`crate::genesis::Observer::regulator`]) co-signs a
//! checkpoint only after it has re-executed every block up to it and found the same state
//! root: its [`Cosignature`] says "I re-executed this chain up to here and it is sound",
//! in a form anyone holding the genesis can check. The idea is that of C2SP's
//! tlog-cosignature (a witness co-signs a log's checkpoint so that a split view is
//! caught), with two differences: the signed bytes are the chain's canonical encoding
//! with a domain tag, and there is no timestamp (the block's own time is in its header,
//! and ed25519 is deterministic, so a co-signature of one checkpoint has one form).
//!
//! [`CheckpointBook`] is what a node keeps of them: bounded, and keeping conflicting
//! checkpoints (two block hashes at one height, each co-signed or final here) as
//! evidence.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::keys::{KeyError, PublicKey, Signature};
use crate::limits;

/// Domain tag of the bytes a witness signs: a co-signature of a checkpoint.
pub const COSIGNATURE_DOMAIN: &str = "ebill/cosignature/v1";
/// Domain tag of a witness key id.
pub const WITNESS_KEY_ID_DOMAIN: &str = "ebill/witness-key/v1";

/// One final block as a witness co-signs it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The chain.
    pub chain_id: String,
    /// The block's height.
    pub height: u64,
    /// The block's hash.
    pub block_hash: Hash32,
    /// The state root after the block (its header's `state_root`).
    pub state_root: Hash32,
}

impl Checkpoint {
    /// The checkpoint of a header.
    pub fn of(header: &crate::block::Header) -> Self {
        Self {
            chain_id: header.chain_id.clone(),
            height: header.height,
            block_hash: header.hash(),
            state_root: header.state_root,
        }
    }

    /// The bytes a witness signs: `text("ebill/cosignature/v1") ‖ text(chain_id) ‖
    /// u64(height) ‖ fixed(32) block_hash ‖ fixed(32) state_root`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::with_domain(COSIGNATURE_DOMAIN);
        self.encode_to(&mut enc);
        enc.finish()
    }

    /// A witness's co-signature of this checkpoint.
    pub fn cosign(&self, key: &crate::keys::Keypair) -> Cosignature {
        Cosignature {
            key_id: KeyId::of(&key.public()),
            signature: key.sign(&self.signing_bytes()),
        }
    }

    /// Checks `cosig` against the genesis witnesses: its key id names one, and the
    /// signature verifies with that witness's key by the chain's one signature rule.
    /// Returns the witness.
    pub fn verify_cosignature<'g>(
        &self,
        cosig: &Cosignature,
        witnesses: &'g Witnesses,
    ) -> Result<&'g Witness, CosignError> {
        let Some(w) = witnesses.get(&cosig.key_id) else {
            return Err(CosignError::UnknownWitness(cosig.key_id));
        };
        w.observer_key
            .verify(&self.signing_bytes(), &cosig.signature)
            .map_err(|e| match e {
                KeyError::BadSignature => CosignError::BadSignature(cosig.key_id),
                other => CosignError::BadKey(cosig.key_id, other),
            })?;
        Ok(w)
    }
}

impl Canonical for Checkpoint {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.str(&self.chain_id).u64(self.height);
        self.block_hash.encode_to(enc);
        self.state_root.encode_to(enc);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: dec.str("chain id", limits::MAX_CHAIN_ID_BYTES)?.to_owned(),
            height: dec.u64("height")?,
            block_hash: Hash32::decode_from(dec)?,
            state_root: Hash32::decode_from(dec)?,
        })
    }
}

/// The 4-byte id of a witness key: the first 4 bytes of
/// `SHA-256(text("ebill/witness-key/v1") ‖ fixed(32) key)`. A hint that names the
/// key among the genesis witnesses (which the genesis keeps distinct), as in C2SP's
/// signed notes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// The id of `key`.
    pub fn of(key: &PublicKey) -> Self {
        let mut enc = Encoder::with_domain(WITNESS_KEY_ID_DOMAIN);
        key.encode_to(&mut enc);
        let h = Hash32::digest(&enc.finish());
        let mut id = [0u8; 4];
        id.copy_from_slice(&h.0[..4]);
        Self(id)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 8 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, crate::hexfmt::HexError> {
        crate::hexfmt::decode_fixed(s).map(Self)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A witness's co-signature: its key id and its ed25519 signature over
/// [`Checkpoint::signing_bytes`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosignature {
    /// The witness's key id.
    pub key_id: KeyId,
    /// Its signature.
    pub signature: Signature,
}

impl Canonical for Cosignature {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.fixed(&self.key_id.0);
        self.signature.encode_to(enc);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key_id: KeyId(dec.array("witness key id")?),
            signature: Signature::decode_from(dec)?,
        })
    }
}

/// Why a co-signature does not count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    /// No regulator's observer of the genesis has this key id.
    #[error("key id {0} is not a regulator's observer of the genesis")]
    UnknownWitness(KeyId),
    /// The signature does not verify with the witness's key.
    #[error("the signature of witness {0} does not verify")]
    BadSignature(KeyId),
    /// The witness's key itself is unusable (cannot happen for a valid genesis).
    #[error("the key of witness {0} is unusable: {1}")]
    BadKey(KeyId, KeyError),
}

impl CosignError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CosignError::UnknownWitness(_) => "unknown_witness",
            CosignError::BadSignature(_) | CosignError::BadKey(..) => "bad_signature",
        }
    }
}

/// A regulator's observer as the genesis names it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Witness {
    /// Its key id.
    pub key_id: KeyId,
    /// The observer's name.
    pub name: String,
    /// The observer's node key (which signs co-signatures).
    pub observer_key: PublicKey,
    /// The regulator it belongs to: that regulator's governance key.
    pub regulator_key: PublicKey,
    /// That regulator's name in the genesis.
    pub regulator_name: String,
}

/// The genesis witnesses by key id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Witnesses {
    by_id: BTreeMap<KeyId, Witness>,
}

impl Witnesses {
    /// The regulators' observers of `genesis` (a valid genesis keeps their key ids
    /// distinct; should two collide, the first is kept).
    pub fn of(genesis: &Genesis) -> Self {
        let mut by_id = BTreeMap::new();
        for o in &genesis.observers {
            let Some(reg) = o.regulator else { continue };
            let regulator_name = genesis
                .regulators
                .keys
                .iter()
                .find(|r| r.public_key == reg)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let key_id = KeyId::of(&o.public_key);
            by_id.entry(key_id).or_insert(Witness {
                key_id,
                name: o.name.clone(),
                observer_key: o.public_key,
                regulator_key: reg,
                regulator_name,
            });
        }
        Self { by_id }
    }

    /// The witness with this key id.
    pub fn get(&self, id: &KeyId) -> Option<&Witness> {
        self.by_id.get(id)
    }

    /// The witness whose observer key is `key`.
    pub fn by_key(&self, key: &PublicKey) -> Option<&Witness> {
        self.by_id
            .get(&KeyId::of(key))
            .filter(|w| w.observer_key == *key)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the genesis names none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Most heights a [`CheckpointBook`] keeps (the lowest go first).
pub const BOOK_MAX_HEIGHTS: usize = 1024;
/// Most distinct checkpoints kept at one height (more is an attack: the rest are
/// dropped, the conflict is already on record).
pub const BOOK_MAX_CHECKPOINTS_PER_HEIGHT: usize = 4;
/// Most conflicts kept as evidence (the first ones; later ones are counted).
pub const BOOK_MAX_CONFLICTS: usize = 64;

/// A checkpoint with the co-signatures known for it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CosignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Whether this node holds the block as final (it committed it).
    pub final_here: bool,
    /// The valid co-signatures, one per witness, by key id.
    pub cosignatures: Vec<Cosignature>,
}

/// Two checkpoints of one height with different block hashes, each co-signed by a
/// witness or final here: evidence that someone (validators or witnesses) signed two
/// blocks at one height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Conflict {
    /// The height.
    pub height: u64,
    /// One checkpoint (the block final here, if it is one of the two), with its
    /// co-signatures when the conflict was found.
    pub first: CosignedCheckpoint,
    /// The other one.
    pub second: CosignedCheckpoint,
}

/// What [`CheckpointBook::add`] did with a co-signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// New: kept.
    New,
    /// Already held.
    Known,
    /// Kept, and it makes a conflict (now on record).
    Conflict,
    /// Not kept: the height is below what the book keeps, or the height holds too many
    /// checkpoints already.
    Dropped,
}

#[derive(Clone, Debug, Default)]
struct AtHeight {
    /// The block final here at this height.
    final_block: Option<Hash32>,
    /// Checkpoints by block hash, with their co-signatures by key id.
    checkpoints: BTreeMap<Hash32, (Checkpoint, BTreeMap<KeyId, Signature>)>,
}

/// The co-signed checkpoints a node keeps: bounded ([`BOOK_MAX_HEIGHTS`] heights,
/// [`BOOK_MAX_CHECKPOINTS_PER_HEIGHT`] per height, one co-signature per witness) and
/// keeping conflicts as evidence ([`BOOK_MAX_CONFLICTS`]). Every co-signature is
/// verified against the genesis witnesses before it is kept.
#[derive(Clone, Debug)]
pub struct CheckpointBook {
    chain_id: String,
    witnesses: Witnesses,
    heights: BTreeMap<u64, AtHeight>,
    conflicts: Vec<Conflict>,
    /// Conflicts found after [`BOOK_MAX_CONFLICTS`] were on record.
    pub conflicts_dropped: u64,
}

impl CheckpointBook {
    /// An empty book for the chain of `genesis`.
    pub fn new(genesis: &Genesis) -> Self {
        Self {
            chain_id: genesis.chain_id.clone(),
            witnesses: Witnesses::of(genesis),
            heights: BTreeMap::new(),
            conflicts: Vec::new(),
            conflicts_dropped: 0,
        }
    }

    /// The genesis witnesses.
    pub fn witnesses(&self) -> &Witnesses {
        &self.witnesses
    }

    /// Whether a new entry at `height` may be made: within the kept window, evicting the
    /// lowest height if full. False if `height` is below every kept height of a full
    /// book.
    fn make_room(&mut self, height: u64) -> bool {
        if self.heights.contains_key(&height) || self.heights.len() < BOOK_MAX_HEIGHTS {
            return true;
        }
        match self.heights.keys().next().copied() {
            Some(lowest) if lowest < height => {
                self.heights.remove(&lowest);
                true
            }
            _ => false,
        }
    }

    /// Records that this node committed `checkpoint`'s block as final.
    pub fn note_final(&mut self, checkpoint: &Checkpoint) {
        if checkpoint.chain_id != self.chain_id || !self.make_room(checkpoint.height) {
            return;
        }
        let at = self.heights.entry(checkpoint.height).or_default();
        at.final_block = Some(checkpoint.block_hash);
        if !at.checkpoints.contains_key(&checkpoint.block_hash)
            && at.checkpoints.len() < BOOK_MAX_CHECKPOINTS_PER_HEIGHT
        {
            at.checkpoints
                .insert(checkpoint.block_hash, (checkpoint.clone(), BTreeMap::new()));
        }
        self.find_conflicts(checkpoint.height);
    }

    /// Verifies and keeps a co-signature of `checkpoint`.
    pub fn add(
        &mut self,
        checkpoint: &Checkpoint,
        cosig: &Cosignature,
    ) -> Result<Added, CosignError> {
        checkpoint.verify_cosignature(cosig, &self.witnesses)?;
        if checkpoint.chain_id != self.chain_id || !self.make_room(checkpoint.height) {
            return Ok(Added::Dropped);
        }
        let at = self.heights.entry(checkpoint.height).or_default();
        if !at.checkpoints.contains_key(&checkpoint.block_hash)
            && at.checkpoints.len() >= BOOK_MAX_CHECKPOINTS_PER_HEIGHT
        {
            return Ok(Added::Dropped);
        }
        let (kept, sigs) = at
            .checkpoints
            .entry(checkpoint.block_hash)
            .or_insert_with(|| (checkpoint.clone(), BTreeMap::new()));
        if *kept != *checkpoint {
            // Same block hash, another state root: the block hash commits to its
            // header's state root, so the witness signed a root that is not the
            // block's. Not a checkpoint of this chain: not kept.
            return Ok(Added::Dropped);
        }
        if sigs.insert(cosig.key_id, cosig.signature).is_some() {
            return Ok(Added::Known);
        }
        let before = self.conflicts.len() as u64 + self.conflicts_dropped;
        self.find_conflicts(checkpoint.height);
        Ok(
            if self.conflicts.len() as u64 + self.conflicts_dropped > before {
                Added::Conflict
            } else {
                Added::New
            },
        )
    }

    fn cosigned(&self, height: u64, hash: &Hash32) -> Option<CosignedCheckpoint> {
        let at = self.heights.get(&height)?;
        let (cp, sigs) = at.checkpoints.get(hash)?;
        Some(CosignedCheckpoint {
            checkpoint: cp.clone(),
            final_here: at.final_block == Some(*hash),
            cosignatures: sigs
                .iter()
                .map(|(k, s)| Cosignature {
                    key_id: *k,
                    signature: *s,
                })
                .collect(),
        })
    }

    /// Records every new pair of conflicting checkpoints at `height`: two block hashes,
    /// each co-signed or final here.
    fn find_conflicts(&mut self, height: u64) {
        let Some(at) = self.heights.get(&height) else {
            return;
        };
        let mut witnessed: Vec<Hash32> = at
            .checkpoints
            .iter()
            .filter(|(h, (_, sigs))| !sigs.is_empty() || at.final_block == Some(**h))
            .map(|(h, _)| *h)
            .collect();
        // The block final here, if any, is the first side of its conflicts.
        witnessed.sort_by_key(|h| at.final_block != Some(*h));
        for (i, a) in witnessed.iter().enumerate() {
            for b in &witnessed[i + 1..] {
                let known = self.conflicts.iter().any(|c| {
                    c.height == height && {
                        let pair = (
                            c.first.checkpoint.block_hash,
                            c.second.checkpoint.block_hash,
                        );
                        pair == (*a, *b) || pair == (*b, *a)
                    }
                });
                if known {
                    continue;
                }
                if self.conflicts.len() >= BOOK_MAX_CONFLICTS {
                    self.conflicts_dropped += 1;
                    continue;
                }
                if let (Some(first), Some(second)) =
                    (self.cosigned(height, a), self.cosigned(height, b))
                {
                    self.conflicts.push(Conflict {
                        height,
                        first,
                        second,
                    });
                }
            }
        }
    }

    /// The co-signatures held for `checkpoint` (empty if none).
    pub fn cosignatures(&self, checkpoint: &Checkpoint) -> Vec<Cosignature> {
        self.cosigned(checkpoint.height, &checkpoint.block_hash)
            .filter(|c| c.checkpoint == *checkpoint)
            .map(|c| c.cosignatures)
            .unwrap_or_default()
    }

    /// The newest checkpoint final here that at least one witness co-signed.
    pub fn latest_cosigned(&self) -> Option<CosignedCheckpoint> {
        self.heights.iter().rev().find_map(|(h, at)| {
            let hash = at.final_block?;
            self.cosigned(*h, &hash)
                .filter(|c| !c.cosignatures.is_empty())
        })
    }

    /// The conflicts on record, oldest first.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::{dev_genesis_with, dev_key, dev_regulator_keys};
    use crate::genesis::Observer;

    /// A genesis with two regulators' observers and one plain observer.
    fn genesis() -> Genesis {
        let mut g = dev_genesis_with("unit", 4);
        let regs = dev_regulator_keys();
        g.observers = vec![
            Observer {
                name: "witness-0".into(),
                public_key: dev_key("observer", 0).public(),
                regulator: Some(regs[0].public()),
            },
            Observer {
                name: "witness-1".into(),
                public_key: dev_key("observer", 1).public(),
                regulator: Some(regs[1].public()),
            },
            Observer {
                name: "plain".into(),
                public_key: dev_key("observer", 2).public(),
                regulator: None,
            },
        ];
        assert_eq!(g.validate(), Ok(()));
        g
    }

    fn cp(height: u64, tag: &str) -> Checkpoint {
        Checkpoint {
            chain_id: "unit".into(),
            height,
            block_hash: Hash32::digest(format!("block {height} {tag}").as_bytes()),
            state_root: Hash32::digest(format!("state {height} {tag}").as_bytes()),
        }
    }

    #[test]
    fn only_genesis_witnesses_with_valid_signatures_count() {
        let g = genesis();
        let w = Witnesses::of(&g);
        assert_eq!(w.len(), 2);
        let c = cp(3, "a");
        let good = c.cosign(&dev_key("observer", 0));
        assert!(c.verify_cosignature(&good, &w).is_ok());
        // A plain observer is no witness; a validator neither.
        let plain = c.cosign(&dev_key("observer", 2));
        assert_eq!(
            c.verify_cosignature(&plain, &w),
            Err(CosignError::UnknownWitness(plain.key_id))
        );
        // Witness 1's key id with witness 0's signature: forged.
        let forged = Cosignature {
            key_id: KeyId::of(&dev_key("observer", 1).public()),
            signature: good.signature,
        };
        assert_eq!(
            c.verify_cosignature(&forged, &w).map(|w| w.key_id),
            Err(CosignError::BadSignature(forged.key_id))
        );
        // A co-signature of another checkpoint does not carry over.
        assert!(cp(4, "a").verify_cosignature(&good, &w).is_err());
    }

    #[test]
    fn a_genesis_refuses_an_observer_of_an_unknown_regulator() {
        let mut g = genesis();
        g.observers[0].regulator = Some(dev_key("nobody", 0).public());
        assert!(g.validate().is_err());
    }

    #[test]
    fn the_book_keeps_cosignatures_and_records_conflicts() {
        let g = genesis();
        let mut book = CheckpointBook::new(&g);
        let (w0, w1) = (dev_key("observer", 0), dev_key("observer", 1));
        let a = cp(5, "a");
        book.note_final(&a);
        assert_eq!(book.add(&a, &a.cosign(&w0)), Ok(Added::New));
        assert_eq!(book.add(&a, &a.cosign(&w0)), Ok(Added::Known));
        assert_eq!(book.add(&a, &a.cosign(&w1)), Ok(Added::New));
        assert_eq!(book.cosignatures(&a).len(), 2);
        assert_eq!(
            book.latest_cosigned().map(|c| (c.checkpoint, c.final_here)),
            Some((a.clone(), true))
        );
        assert!(book.conflicts().is_empty());
        // Witness 1 also co-signs another block at height 5: a conflict, on record
        // with both sides.
        let b = cp(5, "b");
        assert_eq!(book.add(&b, &b.cosign(&w1)), Ok(Added::Conflict));
        let conflicts = book.conflicts();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].height, 5);
        assert!(conflicts[0].first.final_here);
        assert_eq!(conflicts[0].second.checkpoint, b);
        // The same pair is recorded once.
        assert_eq!(book.add(&b, &b.cosign(&w0)), Ok(Added::New));
        assert_eq!(book.conflicts().len(), 1);
        // A forged co-signature is refused and changes nothing.
        let forged = Cosignature {
            key_id: KeyId::of(&w1.public()),
            signature: cp(6, "a").cosign(&w0).signature,
        };
        assert!(book.add(&cp(6, "a"), &forged).is_err());
        assert!(book.cosignatures(&cp(6, "a")).is_empty());
    }

    #[test]
    fn the_book_is_bounded() {
        let g = genesis();
        let mut book = CheckpointBook::new(&g);
        let w0 = dev_key("observer", 0);
        for h in 1..=(BOOK_MAX_HEIGHTS as u64 + 10) {
            let c = cp(h, "a");
            book.note_final(&c);
            assert_eq!(book.add(&c, &c.cosign(&w0)), Ok(Added::New));
        }
        assert_eq!(book.heights.len(), BOOK_MAX_HEIGHTS);
        // Below the window: dropped.
        let old = cp(1, "a");
        assert_eq!(book.add(&old, &old.cosign(&w0)), Ok(Added::Dropped));
        // At most a few checkpoints per height.
        let h = BOOK_MAX_HEIGHTS as u64;
        let mut dropped = 0;
        for i in 0..10 {
            let c = cp(h, &format!("x{i}"));
            if book.add(&c, &c.cosign(&w0)) == Ok(Added::Dropped) {
                dropped += 1;
            }
        }
        assert_eq!(dropped, 10 - (BOOK_MAX_CHECKPOINTS_PER_HEIGHT - 1));
        assert!(book.conflicts().len() <= BOOK_MAX_CONFLICTS);
    }
}
