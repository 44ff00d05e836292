//! The HTTP API driven in-process over a `MemStore` backend that commits every
//! transaction at once (see `common`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use common::{TestBackend, call, get, post_json};
use ebill_api::{ApiConfig, Backend, router, router_with};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{BillId, CheckCode, CommitCertificate, Hash32, SignedBill, SignedTx, Tx, TxBody};
use serde_json::{Value, json};

const CHAIN: &str = dev::DEV_CHAIN_ID;

fn app() -> (Arc<TestBackend>, Router) {
    let b = TestBackend::new();
    let r = router(b.clone());
    (b, r)
}

fn issue(number: u64, amount_fen: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(number, amount_fen, DEV_GENESIS_TIME_MS)),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

fn signed_bill(tx: &SignedTx) -> SignedBill {
    tx.to_signed_bill().unwrap()
}

fn reimburse(id: BillId, check_code: CheckCode, nonce: u64) -> SignedTx {
    Tx {
        nonce,
        body: TxBody::ConfirmReimbursed {
            unit: dev::dev_reimburser_code(),
            bill: id,
            check_code,
        },
    }
    .sign_unit(CHAIN, &dev::dev_reimburser_key())
}

fn to_json(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn bill_uri(sb: &SignedBill, check_code: &str) -> String {
    format!(
        "/v1/bills/{}/{}?check_code={check_code}",
        sb.bill.code, sb.bill.number
    )
}

#[tokio::test]
async fn submit_then_verdict() {
    let (_b, app) = app();
    let tx = issue(1, 1250);
    let id = tx.tx.id(CHAIN);
    let a = post_json(&app, "/v1/txs", to_json(&tx)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    assert_eq!(a.json(), json!({"tx_id": id.to_hex(), "status": "pending"}));

    let a = get(&app, &format!("/v1/txs/{id}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"tx_id": id.to_hex(), "status": "committed", "height": 1, "index": 0})
    );

    let sb = signed_bill(&tx);
    let a = get(&app, &bill_uri(&sb, sb.check_code.as_str())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["authentic"], true);
    assert_eq!(v["final"], true);
    assert_eq!(v["status"], "issued");
    assert_eq!(v["code"], "33010126");
    assert_eq!(v["number"], "0000000001");
    assert_eq!(v["check_code"], sb.check_code.as_str());
    assert_eq!(v["kind"], "medical_outpatient");
    assert_eq!(
        v["issuer"]["credit_code"],
        dev::dev_issuer_code().to_string()
    );
    assert_eq!(v["issuer"]["name"], "杭州市第一人民医院 (dev)");
    assert_eq!(v["total"], "12.50");
    assert_eq!(v["currency"], "CNY");
    assert_eq!(v["issued_at"], "2026-01-01T00:00:00+08:00");
    assert_eq!(v["payer"]["name"], "张*");
    assert_eq!(v["payer"]["id"], "3301**********1234");
    assert_eq!(v["items"][0]["amount"], "12.50");
    assert_eq!(v["height"], 1);
    assert_eq!(v["tx_id"], id.to_hex());
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["action"], "issue_bill");
    assert_eq!(history[0]["height"], 1);
    assert_eq!(history[0]["time"], "2025-12-31T16:00:01Z");

    let block = get(&app, "/v1/blocks/1").await.json();
    assert_eq!(v["block_hash"], block["hash"]);
}

#[tokio::test]
async fn wait_commit_answers_committed() {
    let (_b, app) = app();
    let tx = issue(2, 100);
    let a = post_json(&app, "/v1/txs?wait=commit", to_json(&tx)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["status"], "committed");
    assert_eq!(v["height"], 1);
    assert_eq!(v["index"], 0);
    assert_eq!(v["tx_id"], tx.tx.id(CHAIN).to_hex());

    let a = post_json(&app, "/v1/txs?wait=forever", to_json(&issue(3, 100))).await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn wait_commit_times_out_with_the_tx_id() {
    let b = TestBackend::new();
    b.hold.store(true, Ordering::SeqCst);
    let app = router_with(
        b.clone(),
        ApiConfig {
            wait_commit_timeout: Duration::from_millis(50),
            ..ApiConfig::default()
        },
    );
    let tx = issue(4, 100);
    let id = tx.tx.id(CHAIN);
    let a = post_json(&app, "/v1/txs?wait=commit", to_json(&tx)).await;
    let e = a.assert_error(StatusCode::GATEWAY_TIMEOUT, "timeout");
    assert_eq!(e["tx_id"], id.to_hex());
    let a = get(&app, &format!("/v1/txs/{id}")).await;
    assert_eq!(a.json(), json!({"tx_id": id.to_hex(), "status": "pending"}));

    // A batch that times out leaves its items pending.
    let body = json!({"txs": [issue(5, 100), issue(6, 100)]});
    let a = post_json(&app, "/v1/txs/batch?wait=commit", to_json(&body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["committed"], 0);
    assert_eq!(v["pending"], 2);
    assert_eq!(v["results"][1]["status"], "pending");
}

#[tokio::test]
async fn duplicate_bill_and_duplicate_tx_conflict() {
    let (_b, app) = app();
    let tx = issue(7, 1250);
    assert_eq!(
        post_json(&app, "/v1/txs", to_json(&tx)).await.status,
        StatusCode::ACCEPTED
    );

    // Same bill id, other contents: another transaction, same bill.
    let other = issue(7, 990);
    let a = post_json(&app, "/v1/txs", to_json(&other)).await;
    let e = a.assert_error(StatusCode::CONFLICT, "bill_exists");
    assert_eq!(e["tx_id"], other.tx.id(CHAIN).to_hex());

    // The very same transaction again.
    let a = post_json(&app, "/v1/txs", to_json(&tx)).await;
    a.assert_error(StatusCode::CONFLICT, "duplicate_tx");

    // The rejection is remembered.
    let a = get(&app, &format!("/v1/txs/{}", other.tx.id(CHAIN))).await;
    let v = a.json();
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["code"], "bill_exists");
}

#[tokio::test]
async fn second_reimbursement_is_refused() {
    let (_b, app) = app();
    let tx = issue(8, 1250);
    let sb = signed_bill(&tx);
    post_json(&app, "/v1/txs", to_json(&tx)).await;
    let r1 = reimburse(sb.bill.id(), sb.check_code, 1);
    let a = post_json(&app, "/v1/txs?wait=commit", to_json(&r1)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let r2 = reimburse(sb.bill.id(), sb.check_code, 2);
    let a = post_json(&app, "/v1/txs", to_json(&r2)).await;
    let e = a.assert_error(StatusCode::CONFLICT, "already_reimbursed");
    assert!(e["message"].as_str().unwrap().contains("height 2"), "{e}");

    let v = get(&app, &bill_uri(&sb, sb.check_code.as_str()))
        .await
        .json();
    assert_eq!(v["status"], "reimbursed");
    assert_eq!(v["history"].as_array().unwrap().len(), 2);
    assert_eq!(v["history"][1]["action"], "confirm_reimbursed");
    assert_eq!(
        v["history"][1]["by"],
        dev::dev_reimburser_code().to_string()
    );
}

#[tokio::test]
async fn bad_signature_is_unprocessable() {
    let (_b, app) = app();
    let mut tx = issue(9, 1250);
    // Signed by the reimburser's key instead of the issuer's.
    tx = tx.tx.clone().sign_unit(CHAIN, &dev::dev_reimburser_key());
    let a = post_json(&app, "/v1/txs", to_json(&tx)).await;
    a.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "bad_signature");
}

#[tokio::test]
async fn malformed_bodies_answer_json_errors() {
    let (_b, app) = app();
    let good = serde_json::to_value(issue(10, 1250)).unwrap();

    // Money as a JSON number.
    let mut v = good.clone();
    v["tx"]["body"]["total"] = json!(12.5);
    let a = post_json(&app, "/v1/txs", to_json(&v)).await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_json");

    // An unknown field.
    let mut v = good.clone();
    v["tx"]["body"]["surprise"] = json!("x");
    let a = post_json(&app, "/v1/txs", to_json(&v)).await;
    let e = a.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    assert!(e["message"].as_str().unwrap().contains("surprise"), "{e}");

    // Not JSON at all.
    let a = post_json(&app, "/v1/txs", b"{\"tx\": ".to_vec()).await;
    a.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    let a = post_json(&app, "/v1/txs", b"not json".to_vec()).await;
    a.assert_error(StatusCode::BAD_REQUEST, "malformed_json");

    // Wrong or missing content type.
    let a = call(
        &app,
        Method::POST,
        "/v1/txs",
        Some("text/plain"),
        to_json(&good),
    )
    .await;
    a.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let a = call(&app, Method::POST, "/v1/txs", None, to_json(&good)).await;
    a.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    let a = call(
        &app,
        Method::POST,
        "/v1/txs",
        Some("application/json; charset=utf-8"),
        to_json(&good),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
}

#[tokio::test]
async fn oversize_bodies_are_refused_with_json() {
    let (_b, app) = app();
    let big = format!(
        "{{\"pad\": \"{}\"}}",
        "x".repeat(ebill_api::limits::MAX_TX_BODY_BYTES)
    );
    let a = post_json(&app, "/v1/txs", big.clone()).await;
    a.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let a = post_json(&app, "/v1/verify", big).await;
    a.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    let items = vec![json!({}); ebill_api::limits::MAX_BATCH_TXS + 1];
    let a = post_json(&app, "/v1/txs/batch", to_json(&json!({ "txs": items }))).await;
    let e = a.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");
    assert!(e["message"].as_str().unwrap().contains("10001"), "{e}");
}

#[tokio::test]
async fn unknown_bill_and_wrong_check_code_are_the_same_404() {
    let (_b, app) = app();
    let tx = issue(11, 1250);
    let sb = signed_bill(&tx);
    post_json(&app, "/v1/txs", to_json(&tx)).await;

    let wrong = if sb.check_code.as_str() == "aaaaaa" {
        "bbbbbb"
    } else {
        "aaaaaa"
    };
    let wrong_code = get(&app, &bill_uri(&sb, wrong)).await;
    let unknown = get(
        &app,
        &format!("/v1/bills/33010126/0000009999?check_code={}", sb.check_code),
    )
    .await;
    wrong_code.assert_error(StatusCode::NOT_FOUND, "bill_not_found");
    assert_eq!(wrong_code.status, unknown.status);
    assert_eq!(wrong_code.body, unknown.body);
    assert_eq!(
        wrong_code.headers.get("content-type"),
        unknown.headers.get("content-type")
    );

    // /proof and /verify give the very same answer too.
    let proof = get(
        &app,
        &format!(
            "/v1/bills/33010126/0000009999/proof?check_code={}",
            sb.check_code
        ),
    )
    .await;
    assert_eq!(proof.body, unknown.body);
    let mut forged = sb.clone();
    forged.check_code = CheckCode::parse(wrong).unwrap();
    let a = post_json(&app, "/v1/verify", to_json(&forged)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body, unknown.body);

    // Format errors are 400s: the format is public.
    let a = get(
        &app,
        &format!("/v1/bills/{}/{}", sb.bill.code, sb.bill.number),
    )
    .await;
    a.assert_error(StatusCode::BAD_REQUEST, "missing_check_code");
    let a = get(&app, &bill_uri(&sb, "ABCDEF")).await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_check_code");
    let a = get(&app, "/v1/bills/3301/0000000011?check_code=aaaaaa").await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    let a = get(&app, &format!("{}&extra=1", bill_uri(&sb, "aaaaaa"))).await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn batch_answers_per_item_in_order() {
    let (_b, app) = app();
    let first = issue(20, 100);
    post_json(&app, "/v1/txs", to_json(&first)).await;
    let a_tx = issue(21, 100);
    let b_tx = issue(22, 200);
    let dup = issue(20, 300); // bill 20 exists
    let mut bad = serde_json::to_value(issue(23, 100)).unwrap();
    bad["tx"]["body"]["total"] = json!(1);
    let body = json!({"txs": [
        serde_json::to_value(&a_tx).unwrap(),
        serde_json::to_value(&dup).unwrap(),
        bad,
        serde_json::to_value(&b_tx).unwrap(),
    ]});
    let a = post_json(&app, "/v1/txs/batch", to_json(&body)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text());
    let v = a.json();
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["rejected"], 2);
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(
        r[0],
        json!({"tx_id": a_tx.tx.id(CHAIN).to_hex(), "status": "pending"})
    );
    assert_eq!(r[1]["error"]["code"], "bill_exists");
    assert_eq!(r[1]["tx_id"], dup.tx.id(CHAIN).to_hex());
    assert_eq!(r[2]["error"]["code"], "invalid_json");
    assert!(
        r[2]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("txs[2]")
    );
    assert_eq!(r[3]["tx_id"], b_tx.tx.id(CHAIN).to_hex());

    // With wait=commit every accepted item is committed.
    let body = json!({"txs": [issue(24, 100), issue(25, 100)]});
    let a = post_json(&app, "/v1/txs/batch?wait=commit", to_json(&body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["committed"], 2);
    assert_eq!(v["pending"], 0);
    assert_eq!(v["results"][0]["status"], "committed");
    assert!(v["results"][1]["height"].as_u64().unwrap() > 1);

    // Shape errors of the batch itself.
    let a = post_json(
        &app,
        "/v1/txs/batch",
        to_json(&json!({"txs": [], "more": 1})),
    )
    .await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    let a = post_json(&app, "/v1/txs/batch", to_json(&json!([]))).await;
    a.assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    let a = post_json(&app, "/v1/txs/batch", to_json(&json!({"txs": []}))).await;
    assert_eq!(
        a.json(),
        json!({"results": [], "accepted": 0, "rejected": 0})
    );
}

#[tokio::test]
async fn verify_a_real_and_a_tampered_bill_file() {
    let (_b, app) = app();
    let tx = issue(30, 1250);
    let sb = signed_bill(&tx);
    post_json(&app, "/v1/txs", to_json(&tx)).await;

    let a = post_json(&app, "/v1/verify", to_json(&sb)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let verdict = a.json();
    assert_eq!(verdict["authentic"], true);
    assert_eq!(verdict["status"], "issued");
    // Same verdict as the GET route.
    let got = get(&app, &bill_uri(&sb, sb.check_code.as_str()))
        .await
        .json();
    assert_eq!(verdict, got);

    // Tampered total (and item): on chain under this code, number and check code, but
    // not this bill.
    let mut tampered = sb.clone();
    tampered.bill.total = ebill_types::Fen(125_000);
    tampered.bill.items[0].amount = ebill_types::Fen(125_000);
    tampered.bill.items[0].unit_price = ebill_types::Fen(125_000);
    let a = post_json(&app, "/v1/verify", to_json(&tampered)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["authentic"], false);
    assert_eq!(v["final"], false);
    assert_eq!(v["reason"], "content_mismatch");
    assert_eq!(v["differing_fields"], json!(["items", "total"]));
    assert_eq!(v["on_chain_tx_id"], tx.tx.id(CHAIN).to_hex());

    // Another signature over the same bill.
    let mut resigned = sb.clone();
    resigned.signature = ebill_types::Signature([7; 64]);
    let a = post_json(&app, "/v1/verify", to_json(&resigned)).await;
    assert_eq!(a.json()["reason"], "signature_mismatch");

    // A bill file with an unknown field, or without its signature, is a 400.
    let mut v = serde_json::to_value(&sb).unwrap();
    v["extra"] = json!(1);
    post_json(&app, "/v1/verify", to_json(&v))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
    let mut v = serde_json::to_value(&sb).unwrap();
    v.as_object_mut().unwrap().remove("signature");
    post_json(&app, "/v1/verify", to_json(&v))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_json");
}

#[tokio::test]
async fn blocks_status_genesis_health() {
    let (b, app) = app();
    get(&app, "/v1/blocks/latest")
        .await
        .assert_error(StatusCode::NOT_FOUND, "block_not_found");
    let s = get(&app, "/v1/status").await.json();
    assert_eq!(s["height"], 0);
    assert_eq!(s["tip_hash"], Value::Null);

    let tx = issue(40, 100);
    post_json(&app, "/v1/txs", to_json(&tx)).await;
    post_json(&app, "/v1/txs", to_json(&issue(41, 100))).await;

    let latest = get(&app, "/v1/blocks/latest").await;
    assert_eq!(latest.status, StatusCode::OK);
    let latest = latest.json();
    assert_eq!(latest["height"], 2);
    let first = get(&app, "/v1/blocks/1").await.json();
    assert_eq!(first["tx_ids"], json!([tx.tx.id(CHAIN).to_hex()]));
    assert_eq!(first["tx_count"], 1);
    assert_eq!(first["time"], "2025-12-31T16:00:01Z");
    assert_eq!(first["prev_hash"], b.genesis().hash().to_hex());
    assert_eq!(latest["prev_hash"], first["hash"]);
    let cert: CommitCertificate = serde_json::from_value(first["certificate"].clone()).unwrap();
    let hash = Hash32::from_hex(first["hash"].as_str().unwrap()).unwrap();
    cert.verify(CHAIN, 1, &hash, &b.genesis().validator_set().unwrap())
        .unwrap();

    get(&app, "/v1/blocks/3")
        .await
        .assert_error(StatusCode::NOT_FOUND, "block_not_found");
    get(&app, "/v1/blocks/0")
        .await
        .assert_error(StatusCode::NOT_FOUND, "block_not_found");
    get(&app, "/v1/blocks/-1")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    get(&app, "/v1/blocks/+1")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    get(&app, "/v1/blocks/99999999999999999999999")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");

    let s = get(&app, "/v1/status").await.json();
    assert_eq!(
        s,
        json!({
            "chain_id": "ebill-dev",
            "genesis_hash": b.genesis().hash().to_hex(),
            "height": 2,
            "tip_hash": latest["hash"],
            "role": "validator",
            "peers": 0,
            "syncing": false,
        })
    );
    assert_eq!(
        get(&app, "/healthz").await.json(),
        json!({"ok": true, "height": 2})
    );
    let g = get(&app, "/v1/genesis").await;
    assert_eq!(g.status, StatusCode::OK);
    let g: ebill_types::Genesis = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(&g, b.genesis());
}

#[tokio::test]
async fn tx_status_errors() {
    let (_b, app) = app();
    let a = get(&app, &format!("/v1/txs/{}", Hash32::digest(b"nothing"))).await;
    a.assert_error(StatusCode::NOT_FOUND, "tx_not_found");
    get(&app, "/v1/txs/xyz")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    let upper = Hash32::digest(b"x").to_hex().to_uppercase();
    get(&app, &format!("/v1/txs/{upper}"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let (_b, app) = app();
    get(&app, "/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    get(&app, "/v1/bills")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    get(&app, "/v1/txs")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    call(&app, Method::DELETE, "/v1/genesis", None, Vec::new())
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn metrics_expose_the_names() {
    let (_b, app) = app();
    let tx = issue(50, 100);
    post_json(&app, "/v1/txs", to_json(&tx)).await;
    post_json(&app, "/v1/txs", to_json(&tx)).await; // duplicate_tx
    get(&app, "/v1/bills/33010126/0000000050?check_code=aaaaaa").await;
    get(&app, "/no/such/route").await;
    let a = get(&app, "/metrics").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = a.text();
    for needle in [
        "# TYPE ebill_height gauge",
        "# TYPE ebill_committed_txs counter",
        "# TYPE ebill_rejections counter",
        "ebill_height 1",
        "ebill_committed_txs_total 1",
        "ebill_mempool_txs 0",
        "ebill_rejections_total{code=\"duplicate_tx\"} 1",
        "# TYPE ebill_http_request_duration_seconds histogram",
        "ebill_http_request_duration_seconds_count{route=\"/v1/txs\"} 2",
        "ebill_http_request_duration_seconds_count{route=\"/v1/bills/{code}/{number}\"} 1",
        "ebill_http_request_duration_seconds_count{route=\"unmatched\"} 1",
        "ebill_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/txs\"} 2",
        "ebill_http_request_duration_seconds_sum{route=\"/v1/txs\"}",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Raw paths never become labels.
    assert!(!text.contains("0000000050"));
    assert!(!text.contains("/no/such/route"));
}

#[tokio::test]
async fn serve_answers_over_tcp_and_shuts_down_gracefully() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let b = TestBackend::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ebill_api::serve(listener, b, async move {
        let _ = stop_rx.await;
    }));

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_string(&mut resp))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with(r#"{"ok":true,"height":0}"#), "{resp}");

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn proof_bundle_verifies_offline() {
    use ebill_types::proof::{ProofBundle, verify_bundle};

    let (b, app) = app();
    let tx = issue(60, 1250);
    let sb = signed_bill(&tx);
    post_json(&app, "/v1/txs", to_json(&tx)).await;
    post_json(&app, "/v1/txs", to_json(&issue(61, 100))).await;
    let r = reimburse(sb.bill.id(), sb.check_code, 1);
    post_json(&app, "/v1/txs", to_json(&r)).await;

    let uri = format!(
        "/v1/bills/{}/{}/proof?check_code={}",
        sb.bill.code, sb.bill.number, sb.check_code
    );
    let a = get(&app, &uri).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers.get("content-type").unwrap(), "application/json");
    let bundle = ProofBundle::from_json(&a.text()).unwrap();
    assert_eq!(bundle.entries.len(), 2);
    let verified = verify_bundle(&bundle, b.genesis()).unwrap();
    assert_eq!(verified.status.as_str(), "reimbursed");
    assert_eq!(verified.bill, sb);

    let a = get(&app, &format!("{uri}&format=binary")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    assert_eq!(ProofBundle::from_bytes(&a.body).unwrap(), bundle);

    get(&app, &format!("{uri}&format=xml"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    let wrong = if sb.check_code.as_str() == "aaaaaa" {
        "bbbbbb"
    } else {
        "aaaaaa"
    };
    get(
        &app,
        &format!(
            "/v1/bills/{}/{}/proof?check_code={wrong}",
            sb.bill.code, sb.bill.number
        ),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "bill_not_found");
    get(
        &app,
        &format!("/v1/bills/{}/{}/proof", sb.bill.code, sb.bill.number),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "missing_check_code");
}

/// Version 3 bundles carry the witnesses' co-signatures of their state checkpoint;
/// `require_witnesses` counts distinct valid ones and names those that do not count;
/// `?version=2` gives the same bundle without them, which says it carries no witnesses.
#[tokio::test]
async fn proof_bundles_carry_witness_cosignatures() {
    use ebill_types::checkpoint::{Checkpoint, KeyId};
    use ebill_types::proof::{Link, ProofBundle, require_witnesses, verify_bundle};

    let b = TestBackend::with_witnesses();
    let app = router(b.clone());
    let tx = issue(70, 990);
    let sb = signed_bill(&tx);
    post_json(&app, "/v1/txs", to_json(&tx)).await;
    let uri = format!(
        "/v1/bills/{}/{}/proof?check_code={}",
        sb.bill.code, sb.bill.number, sb.check_code
    );
    let a = get(&app, &uri).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let bundle = ProofBundle::from_json(&a.text()).unwrap();
    assert_eq!(bundle.version, 3);
    assert_eq!(bundle.witnesses.len(), 2);
    let state = bundle.state.as_ref().unwrap();
    let checkpoint = Checkpoint::of(&state.header);
    let v = verify_bundle(&bundle, b.genesis()).unwrap();
    let report = v.witnesses.clone().unwrap();
    assert_eq!(report.checkpoint, checkpoint);
    assert_eq!(report.counted.len(), 2);
    assert!(report.refused.is_empty());
    assert_eq!(require_witnesses(&v, 2), Ok(()));
    let e = require_witnesses(&v, 3).unwrap_err();
    assert_eq!(e.link, Link::Witnesses);

    // The binary form carries them too.
    let a = get(&app, &format!("{uri}&format=binary")).await;
    assert_eq!(ProofBundle::from_bytes(&a.body).unwrap(), bundle);

    // A forged co-signature (witness 1's key id, witness 0's signature) and a repeated
    // one do not count, and the error names both.
    let mut forged = bundle.clone();
    forged.witnesses[1].signature = forged.witnesses[0].signature;
    forged.witnesses.push(bundle.witnesses[0]);
    let v = verify_bundle(&forged, b.genesis()).unwrap();
    let report = v.witnesses.clone().unwrap();
    assert_eq!(report.counted.len(), 1);
    let codes: Vec<&str> = report.refused.iter().map(|r| r.code).collect();
    assert_eq!(codes, ["bad_signature", "duplicate"]);
    let e = require_witnesses(&v, 2).unwrap_err();
    assert_eq!(e.code(), "witnesses");
    let key1 = KeyId::of(&b.witness_keys[1].public()).to_hex();
    assert!(e.reason.contains(&key1), "{e}");
    assert!(
        e.reason.contains("co-signature 1") && e.reason.contains("co-signature 2"),
        "{e}"
    );
    assert!(e.reason.contains("duplicate"), "{e}");
    // A key that is no witness.
    let mut stranger = bundle.clone();
    stranger.witnesses = vec![checkpoint.cosign(&ebill_types::dev::dev_key("observer", 9))];
    let v = verify_bundle(&stranger, b.genesis()).unwrap();
    assert_eq!(v.witnesses.unwrap().refused[0].code, "unknown_witness");

    // Version 2: no witnesses, and says so.
    let a = get(&app, &format!("{uri}&version=2")).await;
    let v2 = ProofBundle::from_json(&a.text()).unwrap();
    assert_eq!(v2.version, 2);
    assert!(v2.witnesses.is_empty());
    let v = verify_bundle(&v2, b.genesis()).unwrap();
    assert!(v.witnesses.is_none());
    let e = require_witnesses(&v, 1).unwrap_err();
    assert!(e.reason.contains("carries no witnesses"), "{e}");
    // A version 2 bundle with witnesses is refused.
    let mut bad = v2.clone();
    bad.witnesses = bundle.witnesses.clone();
    assert_eq!(
        verify_bundle(&bad, b.genesis()).unwrap_err().link,
        Link::Version
    );
    get(&app, &format!("{uri}&version=4"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");

    // The newest co-signed checkpoint, with its certificate and co-signatures.
    let a = get(&app, "/v1/checkpoints/latest").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let j = a.json();
    assert_eq!(j["checkpoint"]["height"], checkpoint.height);
    assert_eq!(
        j["checkpoint"]["block_hash"],
        checkpoint.block_hash.to_hex()
    );
    assert_eq!(j["certificate"]["block"], checkpoint.block_hash.to_hex());
    assert_eq!(j["cosignatures"].as_array().unwrap().len(), 2);
    assert!(j["cosignatures"][0]["regulator"].as_str().is_some());
    assert_eq!(j["witnesses_in_genesis"], 2);
    assert_eq!(j["conflicts"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn no_checkpoint_before_a_witness_cosigns() {
    let (_b, app) = app();
    get(&app, "/v1/checkpoints/latest")
        .await
        .assert_error(StatusCode::NOT_FOUND, "checkpoint_not_found");
}

/// The router serves every route that `routes::served` lists (and so the OpenAPI document
/// describes), with the method listed and no other: a route's template filled in and its
/// method reach its handler (never the `not_found` or `method_not_allowed` fallbacks),
/// and every other method is `405`. `GET /v1/openapi.json` answers the document.
#[tokio::test]
async fn every_documented_route_is_served_with_its_method_only() {
    let (_b, app) = app();
    let fill = |template: &str| {
        template
            .replace("{id}", &"ab".repeat(32))
            .replace("{code}", "33010126")
            .replace("{number}", "0000000001")
            .replace("{height}", "1")
            .replace("{credit_code}", "12330100MB0000001N")
    };
    // Whether `template` matches `uri`, a `{param}` matching any one segment.
    let matches = |template: &str, uri: &str| {
        let (t, u): (Vec<_>, Vec<_>) = (template.split('/').collect(), uri.split('/').collect());
        t.len() == u.len()
            && t.iter()
                .zip(&u)
                .all(|(t, u)| t == u || (t.starts_with('{') && t.ends_with('}')))
    };
    let served = ebill_api::routes::served();
    assert!(served.len() >= 17, "{served:?}");
    for (template, method) in served.clone() {
        let uri = fill(template);
        assert!(!uri.contains('{'), "unfilled template {template}");
        let answer = call(&app, method.clone(), &uri, None, Vec::new()).await;
        if answer
            .headers
            .get("content-type")
            .is_some_and(|c| c == "application/json")
            && let Some(code) = answer.json()["error"]["code"].as_str()
        {
            assert!(
                code != "not_found" && code != "method_not_allowed",
                "{method} {uri} fell through to {code}"
            );
        }
        for other in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            // GET /v1/txs/batch is GET /v1/txs/{id} with the id "batch".
            let other_route = served
                .iter()
                .any(|(t, m)| *m == other && *t != template && matches(t, &uri));
            if other != method && !other_route {
                call(&app, other.clone(), &uri, None, Vec::new())
                    .await
                    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
            }
        }
    }
    let doc = get(&app, "/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(doc.json(), ebill_api::openapi::document());
}
