//! ed25519 keys and signatures. Verification is always `verify_strict`; keys with a
//! small-order component ("weak" keys) are refused wherever a key is registered.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::hexfmt;

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The 32 bytes are not a point on the curve.
    #[error("public key is not a valid ed25519 point")]
    InvalidKey,
    /// The key has a small-order component and could sign for many messages at once.
    #[error("public key is weak (small order)")]
    WeakKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    BadSignature,
}

/// An ed25519 public key (32 bytes), lowercase hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (64 bytes), lowercase hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl PublicKey {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, hexfmt::HexError> {
        hexfmt::decode_fixed(s).map(Self)
    }

    /// Checks that the key may be registered: a valid point, not weak.
    pub fn check_registrable(&self) -> Result<(), KeyError> {
        let vk = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidKey)?;
        if vk.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(())
    }

    /// Verifies `sig` over `msg` with `verify_strict`.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), KeyError> {
        let vk = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidKey)?;
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        vk.verify_strict(msg, &sig)
            .map_err(|_| KeyError::BadSignature)
    }
}

impl Signature {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 128 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, hexfmt::HexError> {
        hexfmt::decode_fixed(s).map(Self)
    }
}

/// A private signing key, made from a 32-byte seed. Never printed.
#[derive(Clone)]
pub struct Keypair {
    inner: SigningKey,
}

impl Keypair {
    /// The key for a 32-byte seed. Randomness is the caller's: the pure crates never
    /// draw it themselves.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            inner: SigningKey::from_bytes(&seed),
        }
    }

    /// The seed, for writing a key file.
    pub fn seed(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.inner.verifying_key().to_bytes())
    }

    /// Signs `msg` (deterministic ed25519).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.inner.sign(msg).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

/// Below this many items a failed batch is settled one signature at a time.
const BISECT_MIN_ITEMS: usize = 8;

/// Verifies many signatures at once with ed25519 batch verification, so that the answer
/// per item is exactly that of [`PublicKey::verify`] for every honestly made signature.
///
/// A failed batch is split in halves and each half batch-checked: a half that passes is
/// settled, a single failing half is split again, and when both halves fail (bad
/// signatures are not rare in this batch) every item of it is checked on its own. So a
/// few bad signatures among n cost about 2n batch items on top of the first check,
/// and any mix costs at most that plus n single checks, never more.
///
/// Returns one verdict per item, in order.
pub fn verify_many(items: &[(&PublicKey, &[u8], &Signature)]) -> Vec<bool> {
    let mut out = vec![false; items.len()];
    if !items.is_empty() {
        if batch_ok(items) {
            out.fill(true);
        } else {
            settle_failed(items, &mut out);
        }
    }
    out
}

/// Verdicts for `items`, whose batch check failed.
fn settle_failed(items: &[(&PublicKey, &[u8], &Signature)], out: &mut [bool]) {
    debug_assert_eq!(items.len(), out.len());
    if items.len() > BISECT_MIN_ITEMS {
        let mid = items.len() / 2;
        let (left, right) = items.split_at(mid);
        let (out_left, out_right) = out.split_at_mut(mid);
        match (batch_ok(left), batch_ok(right)) {
            (true, false) => {
                out_left.fill(true);
                return settle_failed(right, out_right);
            }
            (false, true) => {
                out_right.fill(true);
                return settle_failed(left, out_left);
            }
            // Both failed: dense failures, cheaper one by one. Both passed (the whole
            // failed): batch checks disagree, so trust only single checks.
            _ => {}
        }
    }
    for (o, (pk, msg, sig)) in out.iter_mut().zip(items) {
        *o = pk.verify(msg, sig).is_ok();
    }
}

/// One ed25519 batch check of every item; false if any key is invalid or weak or the
/// batch equation fails.
fn batch_ok(items: &[(&PublicKey, &[u8], &Signature)]) -> bool {
    let mut keys = Vec::with_capacity(items.len());
    let mut msgs = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut prechecked = true;
    // Keys repeat (one issuer signs many bills): decompress and check each key once per
    // call, not once per item; decompression costs about a fifth of a batch check.
    let mut decompressed: std::collections::HashMap<PublicKey, Option<VerifyingKey>> =
        std::collections::HashMap::new();
    for (pk, msg, sig) in items {
        let vk = *decompressed.entry(**pk).or_insert_with(|| {
            VerifyingKey::from_bytes(&pk.0)
                .ok()
                .filter(|vk| !vk.is_weak())
        });
        match vk {
            Some(vk) => keys.push(vk),
            None => {
                prechecked = false;
                break;
            }
        }
        msgs.push(*msg);
        sigs.push(ed25519_dalek::Signature::from_bytes(&sig.0));
    }
    prechecked && ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
}

macro_rules! hex_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", &self.to_hex()[..12])
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl Canonical for $t {
            fn encode_to(&self, enc: &mut Encoder) {
                enc.fixed(&self.0);
            }
            fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                dec.array(stringify!($t)).map(Self)
            }
        }
    };
}

hex_serde!(PublicKey);
hex_serde!(Signature);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_strict() {
        let kp = Keypair::from_seed([7; 32]);
        let sig = kp.sign(b"hello");
        assert_eq!(kp.public().verify(b"hello", &sig), Ok(()));
        assert_eq!(
            kp.public().verify(b"hellp", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(kp.public().check_registrable(), Ok(()));
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point, encoded: y = 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            PublicKey(identity).check_registrable(),
            Err(KeyError::WeakKey)
        );
    }

    #[test]
    fn batch_matches_single_verification() {
        let kps: Vec<Keypair> = (0..5u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = kps.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let pks: Vec<PublicKey> = kps.iter().map(Keypair::public).collect();
        let items: Vec<_> = (0..5)
            .map(|i| (&pks[i], msgs[i].as_slice(), &sigs[i]))
            .collect();
        assert_eq!(verify_many(&items), vec![true; 5]);
        sigs[3].0[0] ^= 1;
        let items: Vec<_> = (0..5)
            .map(|i| (&pks[i], msgs[i].as_slice(), &sigs[i]))
            .collect();
        assert_eq!(verify_many(&items), vec![true, true, true, false, true]);
    }

    #[test]
    fn bisection_finds_exactly_the_bad_signatures_of_a_large_batch() {
        let kp = Keypair::from_seed([7; 32]);
        let other = Keypair::from_seed([8; 32]);
        let pk = kp.public();
        let n = 300usize;
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut sigs: Vec<Signature> = msgs.iter().map(|m| kp.sign(m)).collect();
        let bad = [0usize, 7, 8, 150, 299];
        for &i in &bad {
            sigs[i] = if i % 2 == 0 {
                other.sign(&msgs[i])
            } else {
                let mut s = sigs[i];
                s.0[40] ^= 0x10;
                s
            };
        }
        let items: Vec<_> = (0..n)
            .map(|i| (&pk, msgs[i].as_slice(), &sigs[i]))
            .collect();
        let expected: Vec<bool> = (0..n).map(|i| !bad.contains(&i)).collect();
        assert_eq!(verify_many(&items), expected);
        let single: Vec<bool> = items
            .iter()
            .map(|(k, m, s)| k.verify(m, s).is_ok())
            .collect();
        assert_eq!(single, expected);
        assert!(verify_many(&[]).is_empty());

        // Dense failures (every third signature bad) take the one-by-one path.
        let dense: Vec<Signature> = (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    other.sign(&msgs[i])
                } else {
                    kp.sign(&msgs[i])
                }
            })
            .collect();
        let items: Vec<_> = (0..n)
            .map(|i| (&pk, msgs[i].as_slice(), &dense[i]))
            .collect();
        let expected: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
        assert_eq!(verify_many(&items), expected);
    }
}
