//! ed25519 keys and signatures. One signature rule holds on every path (admission, block
//! checks, observers, sync, the offline verifier): [`PublicKey::verify`], which is
//! `verify_strict` with a canonically encoded key that is not of small order. Keys are
//! held to the same test wherever one is registered.

use std::fmt;

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::EdwardsBasepointTable;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha512};
use thiserror::Error;

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::hexfmt;

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The 32 bytes are not a point on the curve.
    #[error("public key is not a valid ed25519 point")]
    InvalidKey,
    /// The key is a point of small order and could sign for many messages at once.
    #[error("public key is weak (small order)")]
    WeakKey,
    /// The 32 bytes are not the canonical encoding of their point.
    #[error("public key is not canonically encoded")]
    NonCanonicalKey,
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

    /// Checks that the key may be registered: a canonical encoding of a curve point,
    /// not weak. The same test every verification makes ([`PublicKey::verify`]), so a key
    /// that is registered can verify.
    pub fn check_registrable(&self) -> Result<(), KeyError> {
        self.verifying_key().map(|_| ())
    }

    /// The key as ed25519-dalek's, after the checks every use of a key makes: the 32 bytes
    /// decompress to a curve point, are that point's canonical encoding (a y coordinate
    /// of p or more, or a negative zero x, is refused: `verify_strict` would hash such
    /// bytes as they are, and other verifiers disagree about them), and the point is not
    /// of small order.
    fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let vk = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::InvalidKey)?;
        if vk.to_edwards().compress().to_bytes() != self.0 {
            return Err(KeyError::NonCanonicalKey);
        }
        if vk.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(vk)
    }

    /// Verifies `sig` over `msg`: the one signature rule of the chain. The key must pass
    /// the checks of [`PublicKey::check_registrable`]; the signature must pass
    /// `verify_strict` (s below the group order, R canonical and not of small order, and
    /// R = [s]B - [k]A exactly, without the cofactor).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), KeyError> {
        let vk = self.verifying_key()?;
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

/// From this many signatures of one key in one [`verify_many`] call on, the key's
/// multiples are precomputed ([`KeyTable`]): building the table costs about 40 single
/// checks, and each check with it about half of one (ADR 0003).
pub const TABLE_MIN_SIGNATURES: usize = 64;

/// Verifies many signatures, each exactly as [`PublicKey::verify`] would: the answer for
/// every item is that of `verify_strict` with a canonical, non-weak key, whoever made the
/// signature.
///
/// This is deliberately not ed25519 batch verification. A batch check accepts some
/// signatures that `verify_strict` refuses — a small-order R (which ed25519-dalek's batch
/// does not test at all), or an R with a small-order component, which a random linear
/// combination over the 8-torsion only catches with probability 1/2 to 7/8 — and the key's
/// owner can make such signatures at will. Refusing them before a batch would need a
/// torsion check of every R, which costs as much as the single check itself (ADR 0003).
///
/// Each distinct key is decompressed and checked once per call; a key with at least
/// [`TABLE_MIN_SIGNATURES`] items is checked through a [`KeyTable`], which computes the
/// same equation faster.
///
/// Returns one verdict per item, in order.
pub fn verify_many(items: &[(&PublicKey, &[u8], &Signature)]) -> Vec<bool> {
    let mut counts: HashMap<PublicKey, usize> = HashMap::new();
    for (pk, _, _) in items {
        *counts.entry(**pk).or_default() += 1;
    }
    let checkers: HashMap<PublicKey, Option<Checker>> = counts
        .into_iter()
        .map(|(pk, n)| {
            let checker = pk.verifying_key().ok().map(|vk| {
                if n >= TABLE_MIN_SIGNATURES {
                    Checker::Table(Box::new(KeyTable::new(&vk)))
                } else {
                    Checker::Single(vk)
                }
            });
            (pk, checker)
        })
        .collect();
    items
        .iter()
        .map(|(pk, msg, sig)| match checkers.get(*pk) {
            Some(Some(Checker::Single(vk))) => vk
                .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
                .is_ok(),
            Some(Some(Checker::Table(t))) => t.verify(msg, sig),
            Some(None) | None => false,
        })
        .collect()
}

/// How [`verify_many`] checks the signatures of one key.
enum Checker {
    /// `verify_strict` each.
    Single(VerifyingKey),
    /// The same equation with precomputed multiples of the key.
    Table(Box<KeyTable>),
}

/// A key (already checked: canonical, not of small order) with a precomputed table of
/// multiples of −A, so that R' = [s]B + [k](−A) costs two fixed-base multiplications
/// instead of one double-base one with 253 doublings: measured about 23 µs against 42 µs
/// per signature on one core, for about 870 µs to build the table.
///
/// [`KeyTable::verify`] decides exactly as ed25519-dalek's `verify_strict`: s must be
/// canonical (below L), k = SHA-512(R ‖ A ‖ M) reduced, and the canonical encoding of R'
/// must be R's 32 bytes (so R decompresses, and is R'), and R' must not be of small order.
/// The differential tests in `tests/signature_rule.rs` hold the two to the same verdicts.
struct KeyTable {
    /// The key's bytes, as hashed into k.
    key_bytes: [u8; 32],
    /// Multiples of −A.
    neg_a: EdwardsBasepointTable,
}

impl KeyTable {
    fn new(vk: &VerifyingKey) -> Self {
        Self {
            key_bytes: vk.to_bytes(),
            neg_a: EdwardsBasepointTable::create(&(-vk.to_edwards())),
        }
    }

    fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        let (r_bytes, s_bytes) = sig.0.split_at(32);
        let mut s_arr = [0u8; 32];
        s_arr.copy_from_slice(s_bytes);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_arr)) else {
            return false;
        };
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(self.key_bytes);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let expected_r = ED25519_BASEPOINT_TABLE * &s + &self.neg_a * &k;
        !expected_r.is_small_order() && expected_r.compress().as_bytes() == r_bytes
    }
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
    fn verify_many_finds_exactly_the_bad_signatures_of_many() {
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

        // Dense failures: every third signature bad.
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
