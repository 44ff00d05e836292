//! The one signature rule (ADR 0003): whatever `verify_strict` refuses is refused by every
//! entry point of this crate — `PublicKey::verify` (the offline verifier, certificates),
//! `verify_many` (admission, block checks, observers, sync) and key registration —
//! including signatures that an ed25519 batch check lets through.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ebill_types::adversary::sign_with_torsion;
use ebill_types::keys::{KeyError, verify_many};
use ebill_types::{Keypair, PublicKey, Signature};
use serde_json::Value;

fn owner() -> Keypair {
    Keypair::from_seed([0x42; 32])
}

fn dalek_batch_accepts(key: &PublicKey, msgs: &[&[u8]], sigs: &[Signature]) -> bool {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0).unwrap();
    let sigs: Vec<_> = sigs
        .iter()
        .map(|s| ed25519_dalek::Signature::from_bytes(&s.0))
        .collect();
    ed25519_dalek::verify_batch(msgs, &sigs, &vec![vk; msgs.len()]).is_ok()
}

#[test]
fn an_identity_r_made_by_the_key_owner_is_refused_on_every_path() {
    let kp = owner();
    let pk = kp.public();
    let msg = b"IssueBill signed with R = identity".as_slice();
    let forged = sign_with_torsion(&kp, msg, 0, 0);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(forged.0[..32], identity, "R is the identity point");

    // The gap this rule closes: a batch check accepts the signature.
    assert!(dalek_batch_accepts(&pk, &[msg], &[forged]));

    assert_eq!(pk.verify(msg, &forged), Err(KeyError::BadSignature));
    assert_eq!(verify_many(&[(&pk, msg, &forged)]), vec![false]);

    // Among many honest signatures, exactly the forged one is refused.
    let msgs: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let mut sigs: Vec<Signature> = msgs.iter().map(|m| kp.sign(m)).collect();
    sigs[137] = sign_with_torsion(&kp, &msgs[137], 0, 0);
    let items: Vec<_> = msgs
        .iter()
        .zip(&sigs)
        .map(|(m, s)| (&pk, m.as_slice(), s))
        .collect();
    let expected: Vec<bool> = (0..200).map(|i| i != 137).collect();
    assert_eq!(verify_many(&items), expected);
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    assert!(dalek_batch_accepts(&pk, &refs, &sigs));
}

#[test]
fn an_r_with_a_small_order_component_is_refused_though_some_batches_accept_it() {
    let kp = owner();
    let pk = kp.public();
    let mut batch_accepted = 0;
    for torsion in [1usize, 2, 4] {
        for nonce in 1..=16u64 {
            let msg = format!("bill {nonce} torsion {torsion}");
            let forged = sign_with_torsion(&kp, msg.as_bytes(), nonce, torsion);
            assert_eq!(
                pk.verify(msg.as_bytes(), &forged),
                Err(KeyError::BadSignature)
            );
            assert_eq!(verify_many(&[(&pk, msg.as_bytes(), &forged)]), vec![false]);
            if dalek_batch_accepts(&pk, &[msg.as_bytes()], &[forged]) {
                batch_accepted += 1;
            }
        }
    }
    // Refusing small-order R before a batch would not be enough: the batch's random
    // multiple of T vanishes for a share of these (1/2 for order 2, 1/8 for order 8).
    assert!(batch_accepted > 0, "no batch accepted a mixed-order R");
    // The same construction with T = identity is an honest signature: the helper is sound.
    let msg = b"honest";
    assert_eq!(pk.verify(msg, &sign_with_torsion(&kp, msg, 9, 0)), Ok(()));
}

#[test]
fn the_twelve_edge_cases_of_taming_the_many_eddsas_follow_verify_strict() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ed25519_edge_cases.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    let mut parsed = Vec::new();
    for c in cases {
        let msg = hex::decode(c["msg"].as_str().unwrap()).unwrap();
        let key = PublicKey(
            hex::decode(c["pub_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        );
        let sig = Signature(
            hex::decode(c["sig"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        );
        parsed.push((
            c["case"].as_u64().unwrap(),
            msg,
            key,
            sig,
            c["strict"].as_bool().unwrap(),
        ));
    }
    for (case, msg, key, sig, strict) in &parsed {
        assert_eq!(key.verify(msg, sig).is_ok(), *strict, "case {case}");
        // ed25519-dalek's own verify_strict gives the same verdict wherever it takes the key.
        if let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&key.0) {
            let dalek = vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0));
            assert_eq!(dalek.is_ok(), *strict, "case {case}: dalek verify_strict");
        }
        // A key that verifies a signature can be registered; the keys of cases 10 and
        // 11 (the order-2 point with a negative zero x) cannot.
        let registrable = key.check_registrable();
        if *strict {
            assert_eq!(registrable, Ok(()), "case {case}");
        }
        if [10, 11].contains(case) {
            assert_eq!(registrable, Err(KeyError::NonCanonicalKey), "case {case}");
        }
    }
    let items: Vec<_> = parsed
        .iter()
        .map(|(_, m, k, s, _)| (k, m.as_slice(), s))
        .collect();
    let expected: Vec<bool> = parsed.iter().map(|c| c.4).collect();
    assert_eq!(verify_many(&items), expected);
}

#[test]
fn a_non_canonical_key_encoding_is_refused() {
    // The field prime p = 2^255 - 19 in little-endian; y + p for a small y encodes the
    // same point as y (without a carry for y <= 18), non-canonically.
    let mut found = 0;
    for y in 2u8..=18 {
        let mut canonical = [0u8; 32];
        canonical[0] = y;
        let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&canonical) else {
            continue;
        };
        if vk.is_weak() {
            continue;
        }
        let mut alias = [0xffu8; 32];
        alias[0] = 0xed + y;
        alias[31] = 0x7f;
        assert!(
            ed25519_dalek::VerifyingKey::from_bytes(&alias).is_ok(),
            "the library takes the alias of y = {y}"
        );
        assert_eq!(PublicKey(canonical).check_registrable(), Ok(()));
        assert_eq!(
            PublicKey(alias).check_registrable(),
            Err(KeyError::NonCanonicalKey)
        );
        assert_eq!(
            PublicKey(alias).verify(b"m", &Signature([0; 64])),
            Err(KeyError::NonCanonicalKey)
        );
        found += 1;
    }
    assert!(found > 0, "no point with a small y coordinate");
}

/// L, the order of the base point, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `sig` with s + L in place of s: the same point equation, a non-canonical scalar.
fn with_s_plus_l(sig: &Signature) -> Signature {
    let mut out = *sig;
    let mut carry = 0u16;
    for (o, l) in out.0[32..].iter_mut().zip(GROUP_ORDER) {
        let v = u16::from(*o) + u16::from(l) + carry;
        *o = v as u8;
        carry = v >> 8;
    }
    out
}

/// Verdicts of `verify_many` with every item's key used at least
/// `TABLE_MIN_SIGNATURES` times (so through its precomputed table), against
/// `PublicKey::verify` one by one.
fn assert_table_path_agrees(items: &[(PublicKey, Vec<u8>, Signature)]) {
    let refs: Vec<_> = items.iter().map(|(k, m, s)| (k, m.as_slice(), s)).collect();
    let mut per_key = std::collections::HashMap::new();
    for (k, _, _) in items {
        *per_key.entry(*k).or_insert(0usize) += 1;
    }
    assert!(
        per_key
            .values()
            .all(|n| *n >= ebill_types::keys::TABLE_MIN_SIGNATURES),
        "test setup: every key must take the table path"
    );
    let single: Vec<bool> = items
        .iter()
        .map(|(k, m, s)| k.verify(m, s).is_ok())
        .collect();
    assert_eq!(verify_many(&refs), single);
}

#[test]
fn the_precomputed_table_path_decides_as_verify_strict() {
    // The edge cases whose keys can be used (mixed-order and prime-order keys), each
    // repeated past the table threshold.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/ed25519_edge_cases.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut items = Vec::new();
    for c in doc["cases"].as_array().unwrap() {
        let key = PublicKey(
            hex::decode(c["pub_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        );
        if key.check_registrable().is_err() {
            continue;
        }
        let msg = hex::decode(c["msg"].as_str().unwrap()).unwrap();
        let sig = Signature(
            hex::decode(c["sig"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        );
        for _ in 0..ebill_types::keys::TABLE_MIN_SIGNATURES {
            items.push((key, msg.clone(), sig));
        }
    }
    assert!(items.len() >= 5 * ebill_types::keys::TABLE_MIN_SIGNATURES);
    assert_table_path_agrees(&items);

    // One honest key's signatures, and every kind of damage a hostile sender can do.
    let kp = owner();
    let pk = kp.public();
    let mut items = Vec::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..600u64 {
        let msg = format!("bill {i}").into_bytes();
        let mut sig = kp.sign(&msg);
        let mut m = msg.clone();
        match i % 8 {
            0 | 1 => {}
            2 => sig.0[(next() % 64) as usize] ^= 1 << (next() % 8),
            3 => {
                let at = (next() % m.len() as u64) as usize;
                m[at] ^= 1;
            }
            4 => sig = with_s_plus_l(&sig),
            5 => sig = sign_with_torsion(&kp, &msg, 0, 0),
            6 => sig = sign_with_torsion(&kp, &msg, next() | 1, (next() % 7 + 1) as usize),
            _ => sig = sign_with_torsion(&kp, &msg, next() | 1, 0),
        }
        items.push((pk, m, sig));
    }
    let accepted = items
        .iter()
        .filter(|(k, m, s)| k.verify(m, s).is_ok())
        .count();
    // Cases 0, 1 and 7 are valid (7: an honest signature made with another nonce).
    assert_eq!(accepted, 3 * 600 / 8);
    assert_table_path_agrees(&items);
}
