//! Signatures a hostile key owner can make, for tests of the one signature rule
//! (ADR 0003). Compiled only with the `adversary` feature, which no node enables.
//!
//! The owner of a key knows its secret scalar a, so it can pick any R and solve for s.
//! With R = [r]B + T, T a point of small order, and s = r + k·a (k = SHA-512(R ‖ A ‖ M)),
//! the cofactorless equation [s]B = R + [k]A fails by exactly T, so `verify_strict`
//! refuses the signature; a batch check, which only sees a random multiple of T, accepts
//! it for some batches. With r = 0 and T the identity, R is the identity itself: both
//! equations hold, and only `verify_strict`'s small-order test refuses it.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use crate::keys::{Keypair, Signature};

/// The secret scalar of `key` (RFC 8032 section 5.1.5: the clamped first half of
/// SHA-512 of the seed), reduced modulo the group order.
fn secret_scalar(key: &Keypair) -> Scalar {
    let h = Sha512::digest(key.seed());
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    Scalar::from_bytes_mod_order(a)
}

/// Signs `msg` with `key` but with R = [r]B + T, where r is derived from `nonce` and T
/// is `EIGHT_TORSION[torsion]` (index 0 is the identity, 4 the point of order 2, odd
/// indexes have order 8). `nonce` zero and `torsion` zero give R = the identity.
///
/// Panics if `torsion` is 8 or more (a test's own mistake).
pub fn sign_with_torsion(key: &Keypair, msg: &[u8], nonce: u64, torsion: usize) -> Signature {
    let a = secret_scalar(key);
    let r = if nonce == 0 {
        Scalar::ZERO
    } else {
        Scalar::from_bytes_mod_order_wide(&Sha512::digest(nonce.to_le_bytes()).into())
    };
    let big_r = ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[torsion];
    let r_bytes = big_r.compress().to_bytes();
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(key.public().0);
    h.update(msg);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    Signature(sig)
}
