//! What the fuzz targets share: the strictness check of canonical decoders, a real little
//! chain and its proof bundle (the reference every verifier target checks mutants
//! against), the rule for when a verified mutant is a false verification, a ledger on
//! the golden genesis for admission checks, and the seeds of every target.
//!
//! A fuzz target signals a finding by panicking; so this harness panics (`assert!`,
//! `panic!`) where the project's code must not.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod ledger;
pub mod oracle;
pub mod reference;
pub mod seeds;

use std::fmt::Debug;

use ebill_types::codec::Canonical;

/// Decodes `bytes` as a `T` and, if that succeeds, asserts the decoder's promise
/// (`codec.rs`: a value has exactly one encoding and a decoder never accepts a second
/// one): the value encodes back to exactly `bytes`. Returns the value.
pub fn strict<T: Canonical + Debug>(what: &str, bytes: &[u8]) -> Option<T> {
    let value = T::from_canonical_bytes(bytes).ok()?;
    let again = value.to_canonical_bytes();
    assert!(
        again == bytes,
        "{what}: {} bytes decode to {value:?}, which encodes to {} other bytes:\n  in:  {}\n  out: {}",
        bytes.len(),
        again.len(),
        hex::encode(bytes),
        hex::encode(&again)
    );
    Some(value)
}

/// Asserts that `value` survives its own canonical form: encode, decode, equal.
pub fn canonical_round_trip<T: Canonical + PartialEq + Debug>(what: &str, value: &T) {
    let bytes = value.to_canonical_bytes();
    match T::from_canonical_bytes(&bytes) {
        Ok(back) => assert!(
            back == *value,
            "{what}: {value:?} encodes to {} which decodes to another value {back:?}",
            hex::encode(&bytes)
        ),
        Err(e) => panic!(
            "{what}: {value:?} encodes to {} which its own decoder refuses: {e}",
            hex::encode(&bytes)
        ),
    }
}

/// Asserts that `value` survives its JSON form: serialise, parse, equal.
pub fn json_round_trip<T>(what: &str, value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).unwrap_or_else(|e| {
        panic!("{what}: {value:?} parsed from JSON but does not serialise: {e}")
    });
    match serde_json::from_str::<T>(&text) {
        Ok(back) => assert!(
            back == *value,
            "{what}: {value:?} serialises to {text} which parses to another value {back:?}"
        ),
        Err(e) => panic!("{what}: {value:?} serialises to {text} which does not parse: {e}"),
    }
}
