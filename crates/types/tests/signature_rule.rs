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
