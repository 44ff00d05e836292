//! Property tests of the canonical encoding, the JSON forms, signatures, Merkle proofs
//! and money. Case counts are kept moderate so that the whole crate's tests stay fast in
//! a debug build; raise them locally with `PROPTEST_CASES=...` when hunting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::deterministic;
use ebill_types::bill::Currency;
use ebill_types::merkle::{self, InclusionProof};
use ebill_types::{
    Auth, Bill, BillCode, BillId, BillKind, BillNumber, Block, Canonical, CheckCode, CodePrefix,
    CommitCertificate, CommitSignature, CreditCode, Fen, Hash32, Header, Item, Keypair, Payer,
    PayerType, PublicKey, Quantity, Signature, SignedBill, SignedTx, SignedVote, Timestamp, Tx,
    TxBody, Vote, VoteKind, genesis::Params,
};
use proptest::prelude::*;

const CHAIN_ID: &str = "ebill-props";
const REGULATORS: u8 = 5;

fn regulator_key(index: u16) -> Keypair {
    Keypair::from_seed([100 + index as u8; 32])
}

// ---------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------

/// Non-empty free text: ASCII, CJK and a few other scripts, no control characters,
/// never blank; sometimes exactly at the 300-byte name limit.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9\u{4e00}-\u{9fa5}][a-zA-Z0-9 ·()（）\u{4e00}-\u{9fa5}é]{0,30}",
        1 => "[\u{4e00}-\u{9fa5}]{100}",
    ]
}

/// Possibly empty text up to `max_chars` CJK characters (3 bytes each).
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~\u{4e00}-\u{9fa5}]{{0,{max_chars}}}")).unwrap()
}

/// Non-empty, non-blank text up to `max_chars` characters.
fn reason() -> impl Strategy<Value = String> {
    "[a-z\u{4e00}-\u{9fa5}][ -~\u{4e00}-\u{9fa5}]{0,199}"
}

fn credit_code() -> impl Strategy<Value = CreditCode> {
    "[0-9A-HJ-NP-RTUWXY]{17}".prop_map(|s| CreditCode::complete(&s).unwrap())
}

fn bill_id() -> impl Strategy<Value = BillId> {
    ("[0-9]{8}", "[0-9]{10}").prop_map(|(c, n)| BillId {
        code: BillCode::parse(&c).unwrap(),
        number: BillNumber::parse(&n).unwrap(),
    })
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 1906 to 2096, offsets from -12:00 to +14:00.
    (-2_000_000_000_000i64..4_000_000_000_000, -720i16..=840).prop_map(|(unix_ms, offset_min)| {
        Timestamp {
            unix_ms,
            offset_min,
        }
    })
}

fn payer() -> impl Strategy<Value = Payer> {
    prop_oneof![
        (name(), "[0-9A-Za-z-]{1,32}").prop_map(|(name, id)| Payer {
            payer_type: PayerType::Person,
            name,
            id,
        }),
        (name(), credit_code()).prop_map(|(name, code)| Payer {
            payer_type: PayerType::Unit,
            name,
            id: code.to_string(),
        }),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    (
        "[0-9A-Z]{1,32}",
        name(),
        1u64..=100_000_000,
        text(10),
        0u64..=100_000_000,
    )
        .prop_map(|(code, name, q, unit, price)| {
            let quantity = Quantity(q);
            let unit_price = Fen(price);
            Item {
                code,
                name,
                quantity,
                unit: unit.trim().to_owned(),
                unit_price,
                amount: quantity.times(unit_price).unwrap(),
            }
        })
}

/// A bill that passes `Bill::validate`: its items sum to its total, which is positive.
fn bill() -> impl Strategy<Value = Bill> {
    (
        bill_id(),
        proptest::sample::select(BillKind::ALL),
        credit_code(),
        timestamp(),
        payer(),
        proptest::collection::vec(item(), 1..6),
        text(200),
        proptest::option::of(bill_id()),
    )
        .prop_filter_map(
            "total must be positive",
            |(id, kind, issuer, issued_at, payer, items, remark, related)| {
                let total = items.iter().map(|i| i.amount.0).sum::<u64>();
                (total > 0).then(|| Bill {
                    code: id.code,
                    number: id.number,
                    kind,
                    issuer,
                    issued_at,
                    payer,
                    items,
                    total: Fen(total),
                    currency: Currency::Cny,
                    remark,
                    related: related.filter(|r| *r != id),
                })
            },
        )
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(|s| Keypair::from_seed(s).public())
}

fn hash() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn check_code() -> impl Strategy<Value = CheckCode> {
    "[0-9a-z]{6}".prop_map(|s| CheckCode::parse(&s).unwrap())
}

fn code_prefixes() -> impl Strategy<Value = Vec<CodePrefix>> {
    // Distinct: a prefix listed twice is invalid.
    proptest::collection::btree_set("[0-9]{1,8}", 1..8)
        .prop_map(|v| v.iter().map(|p| CodePrefix::parse(p).unwrap()).collect())
}

/// Every kind of transaction body, with valid fields.
fn body() -> impl Strategy<Value = TxBody> {
    prop_oneof![
        bill().prop_map(TxBody::IssueBill),
        (credit_code(), bill_id(), reason()).prop_map(|(issuer, bill, reason)| {
            TxBody::RedReverse {
                issuer,
                bill,
                reason,
            }
        }),
        (credit_code(), bill_id())
            .prop_map(|(issuer, bill)| TxBody::ExchangePaper { issuer, bill }),
        (credit_code(), bill_id(), check_code()).prop_map(|(unit, bill, check_code)| {
            TxBody::Lock {
                unit,
                bill,
                check_code,
            }
        }),
        (credit_code(), bill_id()).prop_map(|(unit, bill)| TxBody::Unlock { unit, bill }),
        (credit_code(), bill_id(), check_code()).prop_map(|(unit, bill, check_code)| {
            TxBody::ConfirmReimbursed {
                unit,
                bill,
                check_code,
            }
        }),
        (
            credit_code(),
            name(),
            public_key(),
            code_prefixes(),
            timestamp()
        )
            .prop_map(
                |(credit_code, name, public_key, code_prefixes, valid_until)| {
                    TxBody::RegisterIssuer {
                        credit_code,
                        name,
                        public_key,
                        code_prefixes,
                        valid_until,
                    }
                }
            ),
        (credit_code(), name(), public_key()).prop_map(|(credit_code, name, public_key)| {
            TxBody::RegisterReimburser {
                credit_code,
                name,
                public_key,
            }
        }),
        (credit_code(), reason()).prop_map(|(credit_code, reason)| TxBody::RevokeUnit {
            credit_code,
            reason
        }),
        (credit_code(), public_key()).prop_map(|(credit_code, public_key)| {
            TxBody::RotateKey {
                credit_code,
                public_key,
            }
        }),
        gov_action(),
        (gov_action(), any::<u64>(), any::<u64>()).prop_map(
            |(action, expires_at_height, base_gov_seq)| TxBody::Propose {
                action: Box::new(action),
                expires_at_height,
                base_gov_seq,
            }
        ),
        hash().prop_map(|proposal| TxBody::Approve { proposal }),
        hash().prop_map(|proposal| TxBody::Reject { proposal }),
        hash().prop_map(|proposal| TxBody::Withdraw { proposal }),
    ]
}

/// The governance actions added with proposals (the older ones are in `body`).
fn gov_action() -> impl Strategy<Value = TxBody> {
    prop_oneof![
        (credit_code(), code_prefixes()).prop_map(|(credit_code, code_prefixes)| {
            TxBody::SetPrefixes {
                credit_code,
                code_prefixes,
            }
        }),
        (credit_code(), timestamp()).prop_map(|(credit_code, valid_until)| {
            TxBody::RenewQualification {
                credit_code,
                valid_until,
            }
        }),
        (name(), public_key())
            .prop_map(|(name, public_key)| TxBody::AddRegulator { name, public_key }),
        public_key().prop_map(|public_key| TxBody::RemoveRegulator { public_key }),
        (1u16..=64).prop_map(|threshold| TxBody::SetThreshold { threshold }),
    ]
}

fn tx() -> impl Strategy<Value = Tx> {
    (body(), any::<u64>()).prop_map(|(body, nonce)| Tx {
        // IssueBill always has nonce 0: the signed bill file rebuilds its transaction.
        nonce: if matches!(body, TxBody::IssueBill(_)) {
            0
        } else {
            nonce
        },
        body,
    })
}

/// A signed transaction and the key that verifies a unit signature (regulator keys
/// come from `regulator_key`).
#[derive(Debug, Clone)]
struct Signed {
    stx: SignedTx,
    unit_key: PublicKey,
}

fn signed_tx() -> impl Strategy<Value = Signed> {
    (
        tx(),
        any::<[u8; 32]>(),
        proptest::collection::btree_set(0..u16::from(REGULATORS), 1..=usize::from(REGULATORS)),
    )
        .prop_map(|(tx, seed, regs)| {
            let unit = Keypair::from_seed(seed);
            let stx = match tx.body.actor() {
                ebill_types::Actor::Unit(_) => tx.sign_unit(CHAIN_ID, &unit),
                ebill_types::Actor::Regulators => {
                    let keys: Vec<(u16, Keypair)> =
                        regs.iter().map(|&i| (i, regulator_key(i))).collect();
                    let refs: Vec<(u16, &Keypair)> = keys.iter().map(|(i, k)| (*i, k)).collect();
                    tx.sign_regulators(CHAIN_ID, &refs)
                }
                ebill_types::Actor::Regulator => {
                    let i = regs.first().copied().unwrap_or(0);
                    tx.sign_regulator(CHAIN_ID, i, &regulator_key(i))
                }
            };
            Signed {
                stx,
                unit_key: unit.public(),
            }
        })
}

/// True if every signature on `stx` verifies with `verify_strict`.
fn signatures_verify(stx: &SignedTx, unit_key: &PublicKey) -> bool {
    let msg = stx.tx.signing_bytes(CHAIN_ID);
    match &stx.auth {
        Auth::Unit(sig) => unit_key.verify(&msg, sig).is_ok(),
        Auth::Regulators(sigs) => {
            !sigs.is_empty()
                && sigs.iter().all(|s| {
                    s.index < u16::from(REGULATORS)
                        && regulator_key(s.index)
                            .public()
                            .verify(&msg, &s.signature)
                            .is_ok()
                })
        }
    }
}

fn header() -> impl Strategy<Value = Header> {
    (
        "[a-z0-9.-]{1,64}",
        any::<u64>(),
        hash(),
        any::<u64>(),
        any::<u32>(),
        hash(),
        any::<u32>(),
        hash(),
        hash(),
    )
        .prop_map(
            |(chain_id, height, prev_hash, time_ms, proposer, tx_root, tx_count, vs, sr)| Header {
                chain_id,
                height,
                prev_hash,
                time_ms,
                proposer,
                tx_root,
                tx_count,
                validator_set_hash: vs,
                state_root: sr,
            },
        )
}

fn signed_vote() -> impl Strategy<Value = SignedVote> {
    (
        prop_oneof![Just(VoteKind::Prevote), Just(VoteKind::Precommit)],
        any::<u64>(),
        any::<u32>(),
        proptest::option::of(hash()),
        any::<u32>(),
        signature(),
    )
        .prop_map(
            |(kind, height, round, block, validator, signature)| SignedVote {
                vote: Vote {
                    kind,
                    height,
                    round,
                    block,
                    validator,
                },
                signature,
            },
        )
}

fn certificate() -> impl Strategy<Value = CommitCertificate> {
    (
        any::<u64>(),
        any::<u32>(),
        hash(),
        proptest::collection::vec((any::<u32>(), signature()), 0..8),
    )
        .prop_map(|(height, round, block, sigs)| CommitCertificate {
            height,
            round,
            block,
            signatures: sigs
                .into_iter()
                .map(|(validator, signature)| CommitSignature {
                    validator,
                    signature,
                })
                .collect(),
        })
}

fn inclusion_proof() -> impl Strategy<Value = InclusionProof> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(hash(), 0..=merkle::MAX_PATH_LEN),
    )
        .prop_map(|(leaf_index, tree_size, path)| InclusionProof {
            leaf_index,
            tree_size,
            path,
        })
}

fn round_trip<T: Canonical + PartialEq + std::fmt::Debug>(v: &T) -> Result<(), TestCaseError> {
    let bytes = v.to_canonical_bytes();
    let back = T::from_canonical_bytes(&bytes);
    prop_assert_eq!(back.as_ref(), Ok(v));
    // One value, one encoding.
    prop_assert_eq!(back.map(|b| b.to_canonical_bytes()).ok(), Some(bytes));
    Ok(())
}

// ---------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(deterministic(64))]

    #[test]
    fn generated_bills_and_bodies_are_valid(b in bill(), body in body()) {
        prop_assert_eq!(b.validate(&Params::widest_bounds()), Ok(()));
        prop_assert_eq!(body.validate(&Params::widest_bounds()), Ok(()));
    }

    #[test]
    fn bill_round_trips(b in bill()) {
        round_trip(&b)?;
        let json = serde_json::to_string(&b).unwrap();
        prop_assert_eq!(serde_json::from_str::<Bill>(&json).unwrap(), b);
    }

    #[test]
    fn tx_and_signed_tx_round_trip(s in signed_tx()) {
        round_trip(&s.stx.tx)?;
        round_trip(&s.stx)?;
        prop_assert!(signatures_verify(&s.stx, &s.unit_key));
        let json = serde_json::to_string(&s.stx).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTx>(&json).unwrap(), s.stx.clone());
        let bytes = s.stx.to_canonical_bytes();
        prop_assert_eq!(SignedTx::decode_bounded(&bytes, bytes.len()), Ok(s.stx.clone()));
        prop_assert!(SignedTx::decode_bounded(&bytes, bytes.len() - 1).is_err());
    }

    #[test]
    fn signed_bill_json_round_trips(b in bill(), seed in any::<[u8; 32]>()) {
        let stx = Tx { nonce: 0, body: TxBody::IssueBill(b) }
            .sign_unit(CHAIN_ID, &Keypair::from_seed(seed));
        let signed = stx.to_signed_bill().unwrap();
        let json = serde_json::to_string(&signed).unwrap();
        let back: SignedBill = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(SignedTx::from_signed_bill(&back), stx);
    }

    #[test]
    fn header_and_block_round_trip(
        h in header(),
        txs in proptest::collection::vec(signed_tx(), 0..4),
    ) {
        round_trip(&h)?;
        let block = Block { header: h, txs: txs.into_iter().map(|s| s.stx).collect() };
        round_trip(&block)?;
        let bytes = block.to_canonical_bytes();
        let bounded = Block::decode_bounded(&bytes, block.txs.len(), usize::MAX);
        prop_assert_eq!(bounded.as_ref(), Ok(&block));
    }

    #[test]
    fn votes_certificates_and_proofs_round_trip(
        v in signed_vote(),
        c in certificate(),
        p in inclusion_proof(),
    ) {
        round_trip(&v)?;
        round_trip(&c)?;
        round_trip(&p)?;
    }
}

proptest! {
    #![proptest_config(deterministic(48))]

    /// Every single-byte change to a signed transaction is refused by decoding, or
    /// breaks a signature, or changes the transaction id; and whatever does decode is
    /// canonical (it re-encodes to exactly the changed bytes).
    #[test]
    fn every_byte_change_is_caught(s in signed_tx(), mask in 1u8..=255) {
        let bytes = s.stx.to_canonical_bytes();
        let id = s.stx.tx.id(CHAIN_ID);
        for i in 0..bytes.len() {
            for m in [mask, 0x01, 0x80] {
                let mut changed = bytes.clone();
                changed[i] ^= m;
                let Ok(decoded) = SignedTx::from_canonical_bytes(&changed) else { continue };
                prop_assert_eq!(&decoded.to_canonical_bytes(), &changed, "byte {} ^ {:#x}", i, m);
                if decoded.tx.id(CHAIN_ID) != id {
                    continue;
                }
                prop_assert!(
                    !signatures_verify(&decoded, &s.unit_key),
                    "byte {} ^ {:#x} kept the id and a valid signature", i, m
                );
            }
        }
    }

    /// Every truncation and every appended tail is refused.
    #[test]
    fn truncated_and_extended_encodings_are_refused(
        s in signed_tx(),
        tail in proptest::collection::vec(any::<u8>(), 1..9),
    ) {
        let bytes = s.stx.to_canonical_bytes();
        for len in 0..bytes.len() {
            prop_assert!(SignedTx::from_canonical_bytes(&bytes[..len]).is_err(), "prefix {}", len);
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&tail);
        prop_assert!(SignedTx::from_canonical_bytes(&longer).is_err());
        let block = Block { header: Header {
            chain_id: CHAIN_ID.into(), height: 1, prev_hash: Hash32::ZERO, time_ms: 0,
            proposer: 0, tx_root: Hash32::ZERO, tx_count: 1,
            validator_set_hash: Hash32::ZERO, state_root: Hash32::ZERO,
        }, txs: vec![s.stx] };
        let bytes = block.to_canonical_bytes();
        let mut longer = bytes.clone();
        longer.extend_from_slice(&tail);
        prop_assert!(Block::from_canonical_bytes(&longer).is_err());
        prop_assert!(Block::from_canonical_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}

proptest! {
    #![proptest_config(deterministic(128))]

    /// A proof for one leaf never verifies another leaf, nor the same leaf claimed at
    /// another index.
    #[test]
    fn merkle_proof_is_for_one_leaf_only(
        data in proptest::collection::vec(any::<u64>(), 1..70),
        pick in any::<proptest::sample::Index>(),
        other in any::<proptest::sample::Index>(),
    ) {
        // Distinct leaves: the position is part of the data.
        let leaves: Vec<Hash32> = data
            .iter()
            .enumerate()
            .map(|(i, d)| merkle::leaf_hash(&[(i as u64).to_be_bytes(), d.to_be_bytes()].concat()))
            .collect();
        let n = leaves.len();
        let root = merkle::root_from_leaf_hashes(&leaves);
        let i = pick.index(n);
        let proof = InclusionProof {
            leaf_index: i as u64,
            tree_size: n as u64,
            path: merkle::inclusion_path(&leaves, i).unwrap(),
        };
        prop_assert_eq!(proof.verify(&leaves[i], &root), Ok(()));
        let j = other.index(n);
        if j != i {
            prop_assert!(proof.verify(&leaves[j], &root).is_err());
            let moved = InclusionProof { leaf_index: j as u64, ..proof.clone() };
            prop_assert!(moved.verify(&leaves[i], &root).is_err());
        }
    }

    #[test]
    fn fen_formats_and_parses_back(v in any::<u64>()) {
        let s = Fen(v).to_string();
        prop_assert_eq!(Fen::parse(&s), Ok(Fen(v)));
        let json = serde_json::to_string(&Fen(v)).unwrap();
        prop_assert_eq!(json.clone(), format!("\"{s}\""));
        prop_assert_eq!(serde_json::from_str::<Fen>(&json).unwrap(), Fen(v));
    }

    #[test]
    fn fen_accepts_zero_one_or_two_places(yuan in 0u64..1_000_000_000_000, fen in 0u64..100) {
        let two = format!("{yuan}.{fen:02}");
        prop_assert_eq!(Fen::parse(&two), Ok(Fen(yuan * 100 + fen)));
        if fen % 10 == 0 {
            let one = format!("{yuan}.{}", fen / 10);
            prop_assert_eq!(Fen::parse(&one), Ok(Fen(yuan * 100 + fen)));
        }
        prop_assert_eq!(Fen::parse(&yuan.to_string()), Ok(Fen(yuan * 100)));
    }

    #[test]
    fn fen_refuses_numbers_three_places_and_signs(
        yuan in 0u64..1_000_000_000_000,
        frac in 0u64..1000,
    ) {
        // JSON numbers, whole or fractional, are never money.
        let whole = yuan.to_string();
        let fractional = format!("{yuan}.{:02}", frac % 100);
        let three_places = format!("{yuan}.{frac:03}");
        let quoted_three = format!("\"{three_places}\"");
        let s = Fen(yuan).to_string();
        let minus = format!("-{s}");
        let plus = format!("+{s}");
        let quoted_minus = format!("\"{minus}\"");
        prop_assert!(serde_json::from_str::<Fen>(&whole).is_err());
        prop_assert!(serde_json::from_str::<Fen>(&fractional).is_err());
        // Three decimals.
        prop_assert!(Fen::parse(&three_places).is_err());
        prop_assert!(serde_json::from_str::<Fen>(&quoted_three).is_err());
        // Signs.
        prop_assert!(Fen::parse(&minus).is_err());
        prop_assert!(Fen::parse(&plus).is_err());
        prop_assert!(serde_json::from_str::<Fen>(&quoted_minus).is_err());
    }

    #[test]
    fn quantity_formats_and_parses_back(v in any::<u64>()) {
        prop_assert_eq!(Quantity::parse(&Quantity(v).to_string()), Ok(Quantity(v)));
    }

    #[test]
    fn timestamps_round_trip_as_text_and_bytes(t in timestamp()) {
        let text = t.to_rfc3339().unwrap();
        prop_assert_eq!(Timestamp::parse(&text), Ok(t));
        round_trip(&t)?;
    }
}
