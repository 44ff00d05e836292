//! Unit tests of the validation rules at the edges: bills, signed bill files, genesis
//! documents and hostile canonical bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ebill_types::bill::BillError;
use ebill_types::genesis::{Genesis, GenesisError};
use ebill_types::limits;
use ebill_types::{
    Bill, BillId, Canonical, CreditCode, DecodeError, Fen, Header, Item, Params, PayerType,
    Quantity, SignedBill, SignedTx, Timestamp, Tx, TxBody,
};
use serde_json::{Value, json};

fn field_of(r: Result<(), BillError>) -> &'static str {
    match r {
        Err(BillError::Field { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

fn item(q: &str, price: &str, amount: &str) -> Item {
    Item {
        code: "001".into(),
        name: "西药费".into(),
        quantity: Quantity::parse(q).unwrap(),
        unit: "盒".into(),
        unit_price: Fen::parse(price).unwrap(),
        amount: Fen::parse(amount).unwrap(),
    }
}

fn bill_with_items(items: Vec<Item>) -> Bill {
    let mut b = example_bill();
    b.total = Fen(items.iter().map(|i| i.amount.0).sum());
    b.items = items;
    b
}

#[test]
fn the_example_bill_is_valid() {
    assert_eq!(example_bill().validate(&Params::default()), Ok(()));
}

#[test]
fn zero_total_is_refused() {
    let b = bill_with_items(vec![item("1", "0", "0")]);
    assert_eq!(b.total, Fen(0));
    assert_eq!(field_of(b.validate(&Params::default())), "total");
}

#[test]
fn items_must_sum_to_the_total() {
    let mut b = bill_with_items(vec![item("1", "12.50", "12.50"), item("2", "3.00", "6.00")]);
    assert_eq!(b.validate(&Params::default()), Ok(()));
    b.total = Fen(1849);
    let err = b.validate(&Params::default()).unwrap_err();
    assert_eq!(err.code(), "amounts_inconsistent");
    assert_eq!(
        err,
        BillError::TotalMismatch {
            items_sum: Fen(1850),
            total: Fen(1849)
        }
    );
}

#[test]
fn amount_must_be_quantity_times_price_rounded_half_up() {
    // 0.5 × 0.03 = 0.015, rounded half up to 0.02.
    assert_eq!(
        bill_with_items(vec![item("0.5", "0.03", "0.02")]).validate(&Params::default()),
        Ok(())
    );
    let b = bill_with_items(vec![item("0.5", "0.03", "0.01")]);
    assert_eq!(field_of(b.validate(&Params::default())), "items.amount");
    let b = bill_with_items(vec![item("3", "1.10", "3.31")]);
    assert_eq!(field_of(b.validate(&Params::default())), "items.amount");
    assert_eq!(
        b.validate(&Params::default()).unwrap_err().code(),
        "invalid_bill"
    );
}

/// Issue 16, defect 3: a bill of u64::MAX fen was committed. Every amount and every
/// quantity is bounded by the genesis parameters.
#[test]
fn amounts_and_quantities_are_bounded_by_the_genesis() {
    let params = Params::default();
    assert_eq!(params.max_amount_fen, 1_000_000_000_000);
    // At the limit: 10^10 yuan in one item.
    let at = bill_with_items(vec![item("1", "10000000000", "10000000000")]);
    assert_eq!(at.validate(&params), Ok(()));
    // One fen over, as a unit price, an amount and a total.
    let over = bill_with_items(vec![item("1", "10000000000.01", "10000000000.01")]);
    let err = over.validate(&params).unwrap_err();
    assert_eq!(field_of(Err(err.clone())), "items.unit_price");
    assert!(err.to_string().contains("max_amount_fen"), "{err}");
    let mut two = bill_with_items(vec![
        item("1", "6000000000", "6000000000"),
        item("1", "6000000000", "6000000000"),
    ]);
    assert_eq!(field_of(two.validate(&params)), "total");
    // The u64::MAX bill of the report: refused, with no overflow on the way.
    two.items = vec![Item {
        amount: Fen(u64::MAX),
        unit_price: Fen(u64::MAX),
        ..item("1", "1", "1")
    }];
    two.total = Fen(u64::MAX);
    assert!(two.validate(&params).is_err());
    // Quantities: at most max_item_quantity whole units.
    let q = bill_with_items(vec![item("1000000", "0.01", "10000")]);
    assert_eq!(q.validate(&params), Ok(()));
    let q = bill_with_items(vec![item("1000000.0001", "0.01", "10000")]);
    assert_eq!(field_of(q.validate(&params)), "items.quantity");
    // A chain may set other bounds, within the hard ceilings.
    let tight = Params {
        max_amount_fen: 10_000,
        ..Params::default()
    };
    assert_eq!(
        field_of(bill_with_items(vec![item("1", "100.01", "100.01")]).validate(&tight)),
        "items.unit_price"
    );
    let mut g = ebill_types::dev::dev_genesis();
    g.params.max_amount_fen = limits::MAX_AMOUNT_FEN_CEILING + 1;
    assert!(g.validate().is_err());
    g.params.max_amount_fen = 0;
    assert!(g.validate().is_err());
    g.params.max_amount_fen = limits::MAX_AMOUNT_FEN_CEILING;
    g.params.max_item_quantity = limits::MAX_ITEM_QUANTITY_CEILING + 1;
    assert!(g.validate().is_err());
    g.params.max_item_quantity = limits::MAX_ITEM_QUANTITY_CEILING;
    assert_eq!(g.validate(), Ok(()));
}

#[test]
fn items_may_not_be_empty_or_too_many() {
    let mut b = example_bill();
    b.items.clear();
    assert_eq!(field_of(b.validate(&Params::default())), "items");

    let b = bill_with_items(vec![item("1", "0.01", "0.01"); limits::MAX_ITEMS]);
    assert_eq!(b.validate(&Params::default()), Ok(()));
    let b = bill_with_items(vec![item("1", "0.01", "0.01"); limits::MAX_ITEMS + 1]);
    assert_eq!(field_of(b.validate(&Params::default())), "items");
}

#[test]
fn control_characters_are_refused_everywhere() {
    for bad in [
        "张\n三",
        "张\t三",
        "张\u{0}三",
        "张\u{7f}三",
        "张\u{85}三",
        "\u{1b}[31m",
    ] {
        let mut b = example_bill();
        b.payer.name = bad.into();
        assert_eq!(
            field_of(b.validate(&Params::default())),
            "payer.name",
            "{bad:?}"
        );

        let mut b = example_bill();
        b.items[0].name = bad.into();
        assert_eq!(
            field_of(b.validate(&Params::default())),
            "items.name",
            "{bad:?}"
        );

        let mut b = example_bill();
        b.items[0].unit = bad.into();
        assert_eq!(
            field_of(b.validate(&Params::default())),
            "items.unit",
            "{bad:?}"
        );

        let mut b = example_bill();
        b.remark = bad.into();
        assert_eq!(
            field_of(b.validate(&Params::default())),
            "remark",
            "{bad:?}"
        );
    }
}

#[test]
fn blank_names_and_over_long_texts_are_refused() {
    let mut b = example_bill();
    b.payer.name = "   ".into();
    assert_eq!(field_of(b.validate(&Params::default())), "payer.name");

    let mut b = example_bill();
    b.items[0].code = String::new();
    assert_eq!(field_of(b.validate(&Params::default())), "items.code");

    // 100 CJK characters are exactly the limit; one more byte is over it.
    let mut b = example_bill();
    b.payer.name = "张".repeat(100);
    assert_eq!(b.validate(&Params::default()), Ok(()));
    b.payer.name.push('a');
    assert_eq!(field_of(b.validate(&Params::default())), "payer.name");

    let mut b = example_bill();
    b.remark = "注".repeat(200);
    assert_eq!(b.validate(&Params::default()), Ok(()));
    b.remark.push('.');
    assert_eq!(field_of(b.validate(&Params::default())), "remark");
}

#[test]
fn payer_ids_follow_the_payer_type() {
    let mut b = example_bill();
    b.payer.id = "3301 0219".into();
    assert_eq!(field_of(b.validate(&Params::default())), "payer.id");
    b.payer.id = String::new();
    assert_eq!(field_of(b.validate(&Params::default())), "payer.id");
    b.payer.id = "1".repeat(33);
    assert_eq!(field_of(b.validate(&Params::default())), "payer.id");

    // A unit pays with its credit code, which must check.
    b.payer.payer_type = PayerType::Unit;
    b.payer.id = "330102199001011234".into();
    assert_eq!(field_of(b.validate(&Params::default())), "payer.id");
    b.payer.id = reimburser_code().to_string();
    assert_eq!(b.validate(&Params::default()), Ok(()));
}

#[test]
fn a_bill_cannot_be_related_to_itself() {
    let mut b = example_bill();
    b.related = Some(b.id());
    assert_eq!(field_of(b.validate(&Params::default())), "related");
    b.related = Some(BillId {
        number: ebill_types::BillNumber::parse("0000000002").unwrap(),
        ..b.id()
    });
    assert_eq!(b.validate(&Params::default()), Ok(()));
}

// ---------------------------------------------------------------------------------
// JSON edges
// ---------------------------------------------------------------------------------

fn signed_bill_json() -> Value {
    let stx = Tx {
        nonce: 0,
        body: TxBody::IssueBill(example_bill()),
    }
    .sign_unit(CHAIN_ID, &key(ISSUER_SEED));
    serde_json::to_value(stx.to_signed_bill().unwrap()).unwrap()
}

fn parse_signed(v: &Value) -> Result<SignedBill, String> {
    serde_json::from_value::<SignedBill>(v.clone()).map_err(|e| e.to_string())
}

#[test]
fn signed_bill_json_is_the_bill_plus_signature_and_check_code() {
    let v = signed_bill_json();
    let signed = parse_signed(&v).unwrap();
    assert_eq!(signed.bill, example_bill());
    assert_eq!(v["signature"], json!(signed.signature.to_hex()));
    assert_eq!(v["check_code"], json!(signed.check_code.as_str()));
}

#[test]
fn signed_bill_json_refuses_unknown_and_missing_fields() {
    let mut v = signed_bill_json();
    v["extra"] = json!("x");
    assert!(parse_signed(&v).unwrap_err().contains("unknown field"));

    let mut v = signed_bill_json();
    v["payer"]["age"] = json!(30);
    assert!(parse_signed(&v).is_err());

    let mut v = signed_bill_json();
    v["items"][0]["discount"] = json!("0.00");
    assert!(parse_signed(&v).is_err());

    for missing in ["signature", "check_code", "total", "issuer", "items"] {
        let mut v = signed_bill_json();
        v.as_object_mut().unwrap().remove(missing);
        assert!(parse_signed(&v).is_err(), "{missing} missing");
    }
}

#[test]
fn signed_bill_json_refuses_numbers_for_money() {
    for (path, number) in [("total", json!(12.5)), ("total", json!(12))] {
        let mut v = signed_bill_json();
        v[path] = number;
        assert!(parse_signed(&v).is_err());
    }
    let mut v = signed_bill_json();
    v["items"][0]["amount"] = json!(12.5);
    assert!(parse_signed(&v).is_err());
    let mut v = signed_bill_json();
    v["items"][0]["unit_price"] = json!(12.5);
    assert!(parse_signed(&v).is_err());
    let mut v = signed_bill_json();
    v["items"][0]["quantity"] = json!(1);
    assert!(parse_signed(&v).is_err());
    let mut v = signed_bill_json();
    v["total"] = json!("12.500");
    assert!(parse_signed(&v).is_err());
}

#[test]
fn signed_bill_json_refuses_bad_signature_and_check_code_forms() {
    let mut v = signed_bill_json();
    v["signature"] = json!(v["signature"].as_str().unwrap().to_uppercase());
    assert!(parse_signed(&v).is_err());
    let mut v = signed_bill_json();
    v["signature"] = json!("00");
    assert!(parse_signed(&v).is_err());
    let mut v = signed_bill_json();
    v["check_code"] = json!("ABCDEF");
    assert!(parse_signed(&v).is_err());
}

/// A JSON document with the same key twice means different things to different
/// parsers; a signed bill file with one is refused, as a plain bill is.
#[test]
fn duplicate_keys_are_refused() {
    let text = serde_json::to_string(&signed_bill_json()).unwrap();
    let dup_total = text.replacen(
        "\"total\":\"12.50\"",
        "\"total\":\"12.50\",\"total\":\"99.00\"",
        1,
    );
    assert_ne!(dup_total, text);
    assert!(serde_json::from_str::<SignedBill>(&dup_total).is_err());
    let dup_sig = text.replacen("\"signature\":", "\"signature\":\"00\",\"signature\":", 1);
    assert!(serde_json::from_str::<SignedBill>(&dup_sig).is_err());

    // At any depth: the payer's name twice.
    let dup_name = text.replacen(
        "\"name\":\"张三\"",
        "\"name\":\"张三\",\"name\":\"李四\"",
        1,
    );
    assert_ne!(dup_name, text);
    assert!(serde_json::from_str::<SignedBill>(&dup_name).is_err());

    let bill_text = serde_json::to_string(&example_bill()).unwrap();
    let dup = bill_text.replacen(
        "\"total\":\"12.50\"",
        "\"total\":\"12.50\",\"total\":\"99.00\"",
        1,
    );
    assert!(serde_json::from_str::<Bill>(&dup).is_err());
}

#[test]
fn bill_json_refuses_numbers_unknown_fields_and_other_currencies() {
    let base = serde_json::to_value(example_bill()).unwrap();
    let mut v = base.clone();
    v["total"] = json!(12.5);
    assert!(serde_json::from_value::<Bill>(v).is_err());
    let mut v = base.clone();
    v["currency"] = json!("USD");
    assert!(serde_json::from_value::<Bill>(v).is_err());
    let mut v = base.clone();
    v["kind"] = json!("lottery");
    assert!(serde_json::from_value::<Bill>(v).is_err());
    let mut v = base.clone();
    v["issued_at"] = json!("2026-11-29T10:15:00");
    assert!(serde_json::from_value::<Bill>(v).is_err());
    let mut v = base;
    v["signature"] = json!("00");
    assert!(serde_json::from_value::<Bill>(v).is_err());
}

// ---------------------------------------------------------------------------------
// Genesis
// ---------------------------------------------------------------------------------

fn genesis_json() -> Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/genesis.json"),
    )
    .expect("tests/vectors/genesis.json (the golden genesis)");
    serde_json::from_str(&text).unwrap()
}

fn genesis_err(v: &Value) -> GenesisError {
    Genesis::from_json(&v.to_string()).unwrap_err()
}

fn invalid_field(v: &Value) -> &'static str {
    match genesis_err(v) {
        GenesisError::Invalid { field, .. } => field,
        e => panic!("expected a rule error, got {e:?}"),
    }
}

#[test]
fn the_golden_genesis_is_valid() {
    assert!(Genesis::from_json(&genesis_json().to_string()).is_ok());
}

#[test]
fn genesis_refuses_bad_chain_ids() {
    for bad in [
        "",
        "Ebill",
        "ebill main",
        "ebill_main",
        "链",
        &"a".repeat(65),
    ] {
        let mut v = genesis_json();
        v["chain_id"] = json!(bad);
        assert_eq!(invalid_field(&v), "chain_id", "{bad:?}");
    }
    let mut v = genesis_json();
    v["chain_id"] = json!("a".repeat(64));
    assert!(Genesis::from_json(&v.to_string()).is_ok());
}

#[test]
fn genesis_refuses_bad_thresholds() {
    for t in [0, 4] {
        let mut v = genesis_json();
        v["regulators"]["threshold"] = json!(t);
        assert_eq!(invalid_field(&v), "regulators.threshold", "threshold {t}");
    }
    let mut v = genesis_json();
    v["regulators"]["threshold"] = json!(-1);
    assert!(matches!(genesis_err(&v), GenesisError::Json(_)));
}

#[test]
fn genesis_refuses_duplicates() {
    let mut v = genesis_json();
    v["validators"][1]["public_key"] = v["validators"][0]["public_key"].clone();
    assert_eq!(invalid_field(&v), "validators");

    let mut v = genesis_json();
    v["regulators"]["keys"][2]["public_key"] = v["regulators"]["keys"][0]["public_key"].clone();
    assert_eq!(invalid_field(&v), "regulators.keys");

    let mut v = genesis_json();
    v["observers"][0]["public_key"] = v["validators"][0]["public_key"].clone();
    assert_eq!(invalid_field(&v), "observers");

    let mut v = genesis_json();
    let issuer = v["issuers"][0].clone();
    v["issuers"].as_array_mut().unwrap().push(issuer);
    assert_eq!(invalid_field(&v), "issuers");

    // One credit code may not be both an issuer and a reimburser.
    let mut v = genesis_json();
    v["reimbursers"][0]["credit_code"] = v["issuers"][0]["credit_code"].clone();
    assert_eq!(invalid_field(&v), "reimbursers");

    // A JSON key given twice.
    let text = genesis_json().to_string();
    let dup = text.replacen("\"chain_id\":", "\"chain_id\":\"other\",\"chain_id\":", 1);
    assert!(matches!(
        Genesis::from_json(&dup),
        Err(GenesisError::Json(_))
    ));
}

#[test]
fn genesis_refuses_weak_keys_bad_params_and_unknown_fields() {
    // The identity point: a small-order key.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let mut v = genesis_json();
    v["regulators"]["keys"][0]["public_key"] = json!(hex::encode(weak));
    assert_eq!(invalid_field(&v), "regulators.keys");
    let mut v = genesis_json();
    v["validators"][0]["public_key"] = json!(hex::encode(weak));
    assert_eq!(invalid_field(&v), "validators");
    let mut v = genesis_json();
    v["issuers"][0]["public_key"] = json!(hex::encode(weak));
    assert_eq!(invalid_field(&v), "issuers");

    let mut v = genesis_json();
    v["params"]["max_tx_bytes"] = json!(1023);
    assert_eq!(invalid_field(&v), "params.max_tx_bytes");
    let mut v = genesis_json();
    v["params"]["max_block_txs"] = json!(0);
    assert_eq!(invalid_field(&v), "params.max_block_txs");
    let mut v = genesis_json();
    v["params"]["max_block_bytes"] = json!(1024);
    assert_eq!(invalid_field(&v), "params.max_block_bytes");

    let mut v = genesis_json();
    v["validators"] = json!([]);
    assert_eq!(invalid_field(&v), "validators");
    let mut v = genesis_json();
    v["issuers"][0]["code_prefixes"] = json!([]);
    assert_eq!(invalid_field(&v), "issuers.code_prefixes");
    let mut v = genesis_json();
    v["issuers"][0]["code_prefixes"] = json!(["33a"]);
    assert!(matches!(genesis_err(&v), GenesisError::Json(_)));

    let mut v = genesis_json();
    v["params"]["block_time_ms"] = json!(1000);
    assert!(matches!(genesis_err(&v), GenesisError::Json(_)));
    let mut v = genesis_json();
    v["issuers"][0]["credit_code"] = json!("12330100MB00000010");
    assert!(matches!(genesis_err(&v), GenesisError::Json(_)));
}

// ---------------------------------------------------------------------------------
// Hostile canonical bytes
// ---------------------------------------------------------------------------------

fn issue_tx() -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(example_bill()),
    }
    .sign_unit(CHAIN_ID, &key(ISSUER_SEED))
}

#[test]
fn unknown_tags_are_refused() {
    let bytes = issue_tx().to_canonical_bytes();
    // nonce(8) then the kind byte.
    for kind in [0u8, 20, 255] {
        let mut b = bytes.clone();
        b[8] = kind;
        assert!(matches!(
            SignedTx::from_canonical_bytes(&b),
            Err(DecodeError::InvalidTag { .. })
        ));
    }
    // The last 65 bytes are the auth tag and the signature.
    let auth = bytes.len() - 65;
    for tag in [0u8, 3] {
        let mut b = bytes.clone();
        b[auth] = tag;
        assert!(SignedTx::from_canonical_bytes(&b).is_err());
    }
}

#[test]
fn regulator_signatures_must_strictly_increase() {
    let regs = regulator_keys();
    let tx = Tx {
        nonce: 1,
        body: TxBody::RotateKey {
            credit_code: issuer_code(),
            public_key: public(ROTATED_SEED),
        },
    };
    let signed = tx.sign_regulators(CHAIN_ID, &[(1, &regs[1]), (0, &regs[0])]);
    let bytes = signed.to_canonical_bytes();
    assert_eq!(SignedTx::from_canonical_bytes(&bytes).as_ref(), Ok(&signed));
    // Swap the two (index, signature) entries: 66 bytes each at the end.
    let n = bytes.len();
    let mut swapped = bytes[..n - 132].to_vec();
    swapped.extend_from_slice(&bytes[n - 66..]);
    swapped.extend_from_slice(&bytes[n - 132..n - 66]);
    assert!(SignedTx::from_canonical_bytes(&swapped).is_err());
    // The same index twice.
    let mut twice = bytes[..n - 132].to_vec();
    twice.extend_from_slice(&bytes[n - 132..n - 66]);
    twice.extend_from_slice(&bytes[n - 132..n - 66]);
    assert!(SignedTx::from_canonical_bytes(&twice).is_err());
}

#[test]
fn decode_bounded_refuses_oversized_transactions() {
    let bytes = issue_tx().to_canonical_bytes();
    assert!(SignedTx::decode_bounded(&bytes, bytes.len()).is_ok());
    assert!(matches!(
        SignedTx::decode_bounded(&bytes, bytes.len() - 1),
        Err(DecodeError::TooLong { .. })
    ));
}

#[test]
fn invalid_field_values_in_bytes_are_refused() {
    let bill = example_bill();
    let bytes = bill.to_canonical_bytes();
    // A letter in the bill code.
    let mut b = bytes.clone();
    b[0] = b'A';
    assert!(matches!(
        Bill::from_canonical_bytes(&b),
        Err(DecodeError::Invalid { .. })
    ));
    // A wrong credit-code check character (issuer starts at 8 + 10 + 1).
    let mut b = bytes.clone();
    b[19 + 17] = if b[19 + 17] == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        Bill::from_canonical_bytes(&b),
        Err(DecodeError::Invalid { .. })
    ));
    // An offset beyond ±25:59 (the i16 after the i64 of the time).
    let mut b = bytes.clone();
    let off = 19 + 18 + 8;
    b[off..off + 2].copy_from_slice(&2000i16.to_be_bytes());
    assert!(matches!(
        Bill::from_canonical_bytes(&b),
        Err(DecodeError::Invalid { .. })
    ));
    // A currency other than CNY: the byte before the remark's length and the option.
    let mut b = bytes.clone();
    let cur = b.len() - 1 - 4 - 1;
    assert_eq!(b[cur], 1);
    b[cur] = 2;
    assert!(matches!(
        Bill::from_canonical_bytes(&b),
        Err(DecodeError::InvalidTag { .. })
    ));
    // An "optional" flag that is neither 0 nor 1.
    let mut b = bytes.clone();
    *b.last_mut().unwrap() = 2;
    assert!(matches!(
        Bill::from_canonical_bytes(&b),
        Err(DecodeError::InvalidTag { .. })
    ));
    // Invalid UTF-8 in the payer name (张 is e5 bc a0).
    let mut b = bytes;
    let name = b.windows(3).position(|w| w == [0xe5, 0xbc, 0xa0]).unwrap();
    b[name] = 0xff;
    assert!(matches!(
        Bill::from_canonical_bytes(&b),
        Err(DecodeError::BadUtf8(_))
    ));
}

#[test]
fn over_long_lengths_are_refused_before_reading() {
    // A remark that claims 601 bytes.
    let mut bill = example_bill();
    bill.remark = "x".repeat(limits::MAX_REMARK_BYTES + 1);
    assert!(matches!(
        Bill::from_canonical_bytes(&bill.to_canonical_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
    // A header whose chain id is over 64 bytes.
    let header = Header {
        chain_id: "a".repeat(limits::MAX_CHAIN_ID_BYTES + 1),
        height: 1,
        prev_hash: ebill_types::Hash32::ZERO,
        time_ms: 0,
        proposer: 0,
        tx_root: ebill_types::Hash32::ZERO,
        tx_count: 0,
        validator_set_hash: ebill_types::Hash32::ZERO,
        state_root: ebill_types::Hash32::ZERO,
    };
    assert!(matches!(
        Header::from_canonical_bytes(&header.to_canonical_bytes()),
        Err(DecodeError::TooLong { .. })
    ));
    // The wrong domain tag.
    let mut bytes = Header {
        chain_id: CHAIN_ID.into(),
        ..header
    }
    .to_canonical_bytes();
    bytes[4] = b'E';
    assert!(matches!(
        Header::from_canonical_bytes(&bytes),
        Err(DecodeError::WrongDomain { .. })
    ));
}

#[test]
fn signatures_bind_the_chain_id() {
    let stx = issue_tx();
    let msg_here = stx.tx.signing_bytes(CHAIN_ID);
    let msg_there = stx.tx.signing_bytes("ebill-other");
    assert_ne!(stx.tx.id(CHAIN_ID), stx.tx.id("ebill-other"));
    let ebill_types::Auth::Unit(sig) = stx.auth else {
        panic!("unit signature")
    };
    assert!(public(ISSUER_SEED).verify(&msg_here, &sig).is_ok());
    assert!(public(ISSUER_SEED).verify(&msg_there, &sig).is_err());
}

#[test]
fn credit_codes_and_times_at_the_edges() {
    assert!(CreditCode::complete("12330100MB000000").is_err());
    assert!(CreditCode::complete("12330100MB000000I").is_err());
    assert!(Timestamp::parse("2026-11-29T10:15:00.123+08:00").is_ok());
    assert!(Timestamp::parse("2026-11-29T10:15:00.1234+08:00").is_err());
    assert!(Timestamp::parse("2026-13-01T00:00:00+08:00").is_err());
}

#[test]
fn duplicate_code_prefixes_and_unnamed_validators_are_refused() {
    use ebill_types::{CodePrefix, Tx, TxBody, dev};
    let mut g = dev::dev_genesis();
    let p = g.issuers[0].code_prefixes[0].clone();
    g.issuers[0].code_prefixes.push(p.clone());
    assert!(g.validate().is_err());
    let mut g = dev::dev_genesis();
    g.validators[0].name = " ".into();
    assert!(g.validate().is_err());
    let body = TxBody::RegisterIssuer {
        credit_code: dev::test_credit_code('B', 5),
        name: "x".into(),
        public_key: dev::dev_key("x", 1).public(),
        code_prefixes: vec![
            CodePrefix::parse("3301").unwrap(),
            CodePrefix::parse("3301").unwrap(),
        ],
        valid_until: ebill_types::dev::dev_valid_until(),
    };
    assert!(
        Tx { nonce: 1, body }
            .body
            .validate(&Params::default())
            .is_err()
    );
    let _ = p;
}
