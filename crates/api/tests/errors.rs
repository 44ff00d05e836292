//! Refused bodies answer one status per kind of error, with a message that names the
//! field (issue 16, item 5): a key given twice inside `auth`, a lone UTF-16 surrogate
//! escape, a wrong check character in a credit code wherever it is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use common::{TestBackend, post_json};
use ebill_api::router;
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{Bill, PayerType, SignedTx, Tx, TxBody};
use serde_json::{Value, json};

const CHAIN: &str = dev::DEV_CHAIN_ID;

fn app() -> (Arc<TestBackend>, Router) {
    let b = TestBackend::new();
    let r = router(b.clone());
    (b, r)
}

fn bill(number: u64) -> Bill {
    dev::sample_bill(number, 1250, DEV_GENESIS_TIME_MS)
}

fn sign(bill: Bill) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(bill),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

/// A credit code whose check character is wrong (the first 17 are a real unit's).
fn bad_check_char(code: &str) -> String {
    let (head, last) = code.split_at(17);
    let other = if last == "0" { "1" } else { "0" };
    format!("{head}{other}")
}

fn message(e: &Value) -> &str {
    e["message"].as_str().unwrap()
}

/// The JSON text of `v` with the string `"@@"` replaced by `raw` (JSON that
/// serde_json would never write, such as a lone surrogate escape).
fn with_raw(v: &Value, raw: &str) -> Vec<u8> {
    let text = serde_json::to_string(v).unwrap();
    assert!(text.contains("\"@@\""), "{text}");
    text.replace("\"@@\"", raw).into_bytes()
}

#[tokio::test]
async fn a_key_twice_inside_auth_is_invalid_json_naming_auth() {
    let (_b, app) = app();
    let v = serde_json::to_value(sign(bill(1))).unwrap();
    let sig = v["auth"]["unit"].as_str().unwrap().to_owned();
    let mut v2 = v.clone();
    v2["auth"] = json!("@@");
    let body = with_raw(&v2, &format!(r#"{{"unit":"{sig}","unit":"{sig}"}}"#));
    let e = post_json(&app, "/v1/txs", body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(
        message(&e),
        r#"auth: must be an object with exactly one key, "unit" or "regulators""#
    );

    // Two different keys, and not an object at all: the same answer.
    let body = with_raw(&v2, &format!(r#"{{"unit":"{sig}","regulators":[]}}"#));
    let e = post_json(&app, "/v1/txs", body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(message(&e).starts_with("auth: must be an object"), "{e}");
    let body = with_raw(&v2, "[1]");
    let e = post_json(&app, "/v1/txs", body)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(message(&e).starts_with("auth: must be an object"), "{e}");

    // Inside a batch, the item's slot says the same, with the item's place.
    let body = with_raw(
        &json!({"txs": ["@@"]}),
        &String::from_utf8(with_raw(
            &v2,
            &format!(r#"{{"unit":"{sig}","unit":"{sig}"}}"#),
        ))
        .unwrap(),
    );
    let a = post_json(&app, "/v1/txs/batch", body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    let item = &a.json()["results"][0]["error"];
    assert_eq!(item["code"], "invalid_json");
    assert!(
        message(item).starts_with("txs[0].auth: must be an object"),
        "{item}"
    );
}

#[tokio::test]
async fn a_lone_surrogate_is_invalid_json_naming_the_field() {
    let (_b, app) = app();
    for raw in [r#""\ud800""#, r#""\udc00 x""#, r#""a\ud800\u0041""#] {
        let mut v = serde_json::to_value(sign(bill(2))).unwrap();
        v["tx"]["body"]["payer"]["name"] = json!("@@");
        let e = post_json(&app, "/v1/txs", with_raw(&v, raw))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
        assert!(
            message(&e).starts_with(
                "tx.body.payer.name: the string holds a \\u escape of a lone UTF-16 surrogate"
            ),
            "{raw}: {e}"
        );
    }

    // A signed bill file, and a batch item (the other items still go through).
    let tx = sign(bill(3));
    let mut file = serde_json::to_value(tx.to_signed_bill().unwrap()).unwrap();
    file["items"][0]["name"] = json!("@@");
    let e = post_json(&app, "/v1/verify", with_raw(&file, r#""\udfff""#))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        message(&e).starts_with("items[0].name: the string holds"),
        "{e}"
    );

    let mut bad = serde_json::to_value(sign(bill(4))).unwrap();
    bad["tx"]["body"]["remark"] = json!("@@");
    let bad = String::from_utf8(with_raw(&bad, r#""\ud83d""#)).unwrap();
    let good = serde_json::to_string(&sign(bill(5))).unwrap();
    let body = format!(r#"{{"txs": [{good}, {bad}]}}"#);
    let a = post_json(&app, "/v1/txs/batch", body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    let v = a.json();
    assert_eq!(v["accepted"], 1, "{v}");
    let item = &v["results"][1]["error"];
    assert_eq!(item["code"], "invalid_json");
    assert!(
        message(item).starts_with("txs[1].tx.body.remark: the string holds"),
        "{item}"
    );

    // A body that is not JSON at all is still malformed_json.
    post_json(&app, "/v1/txs", br#"{"tx": "\u12"}"#.to_vec())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
}

#[tokio::test]
async fn a_wrong_credit_code_check_character_is_one_status_wherever_it_is() {
    let (_b, app) = app();
    let issuer = dev::dev_issuer_code().to_string();
    let wrong = bad_check_char(&issuer);

    // In `issuer` (typed): 400 invalid_json naming the field.
    let mut v = serde_json::to_value(sign(bill(6))).unwrap();
    v["tx"]["body"]["issuer"] = json!(wrong);
    let e = post_json(&app, "/v1/txs", serde_json::to_vec(&v).unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        message(&e).starts_with("tx.body.issuer: check character is"),
        "{e}"
    );

    // In `payer.id` of a unit payer (text): the same status, code and words.
    let mut b = bill(7);
    b.payer.payer_type = PayerType::Unit;
    b.payer.id = wrong.clone();
    let tx = sign(b);
    let e = post_json(&app, "/v1/txs", serde_json::to_vec(&tx).unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        message(&e).starts_with("tx.body.payer.id: check character is"),
        "{e}"
    );

    // The same in a bill file and in a batch item.
    let file = tx.to_signed_bill().unwrap();
    let e = post_json(&app, "/v1/verify", serde_json::to_vec(&file).unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        message(&e).starts_with("payer.id: check character is"),
        "{e}"
    );
    let mut file_v = serde_json::to_value(sign(bill(8)).to_signed_bill().unwrap()).unwrap();
    file_v["issuer"] = json!(wrong);
    let e = post_json(&app, "/v1/verify", serde_json::to_vec(&file_v).unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(message(&e).starts_with("issuer: check character is"), "{e}");
    let a = post_json(
        &app,
        "/v1/txs/batch",
        serde_json::to_vec(&json!({"txs": [tx]})).unwrap(),
    )
    .await;
    let item = &a.json()["results"][0]["error"];
    assert_eq!(item["code"], "invalid_json");
    assert!(
        message(item).starts_with("txs[0].tx.body.payer.id: check character is"),
        "{item}"
    );

    // In a transaction of another kind (the unit of a lock).
    let lock = Tx {
        nonce: 1,
        body: TxBody::Lock {
            unit: dev::dev_reimburser_code(),
            bill: bill(6).id(),
            check_code: ebill_types::CheckCode::derive(&ebill_types::Signature([1; 64])),
        },
    }
    .sign_unit(CHAIN, &dev::dev_reimburser_key());
    let mut v = serde_json::to_value(&lock).unwrap();
    v["tx"]["body"]["unit"] = json!(bad_check_char(&dev::dev_reimburser_code().to_string()));
    let e = post_json(&app, "/v1/txs", serde_json::to_vec(&v).unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(
        message(&e).starts_with("tx.body.unit: check character is"),
        "{e}"
    );

    // A unit payer with a good credit code is accepted.
    let mut b = bill(9);
    b.payer.payer_type = PayerType::Unit;
    b.payer.id = dev::dev_reimburser_code().to_string();
    let a = post_json(&app, "/v1/txs", serde_json::to_vec(&sign(b)).unwrap()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
}

#[tokio::test]
async fn other_refusals_name_the_field_too() {
    let (_b, app) = app();
    let good = serde_json::to_value(sign(bill(10))).unwrap();

    // Deep inside a bill: the item and its field.
    let mut v = good.clone();
    v["tx"]["body"]["items"][0]["amount"] = json!(12.5);
    let e = post_json(&app, "/v1/txs", serde_json::to_vec(&v).unwrap())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(message(&e).starts_with("tx.body.items[0].amount: "), "{e}");

    // A key given twice in a typed object.
    let text = serde_json::to_string(&good).unwrap();
    let text = text.replacen(r#""nonce":0"#, r#""nonce":0,"nonce":1"#, 1);
    let e = post_json(&app, "/v1/txs", text)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(message(&e), "tx.nonce: the key appears more than once");

    // A number out of range.
    let text =
        serde_json::to_string(&good)
            .unwrap()
            .replacen(r#""nonce":0"#, r#""nonce":1e400"#, 1);
    let e = post_json(&app, "/v1/txs", text)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(message(&e), "tx.nonce: number out of range");

    // Trailing bytes after the JSON text are not JSON.
    let mut text = serde_json::to_string(&good).unwrap();
    text.push_str(" {}");
    post_json(&app, "/v1/txs", text)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_json");
}
