//! The taxpayers' pages driven in-process over the test backend: the form, the result
//! page of each status, the one 未查到 page, JSON by `Accept`, languages, headers, the
//! lookup limits, the QR code and the print page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestBackend, post_json};
use ebill_api::web::{WebConfig, lookup_limits::LookupLimits};
use ebill_api::{ApiConfig, router_with};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::receipt_link::bill_digest;
use ebill_types::{SignedBill, SignedTx, Tx, TxBody};
use tower::ServiceExt;

const CHAIN: &str = dev::DEV_CHAIN_ID;

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn fetch(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn app_with(limits: LookupLimits) -> (std::sync::Arc<TestBackend>, Router) {
    let b = TestBackend::new();
    let r = router_with(
        b.clone(),
        ApiConfig {
            web: WebConfig {
                public_url: Some("http://127.0.0.1:8080".into()),
                lookups: limits,
            },
            ..ApiConfig::default()
        },
    );
    (b, r)
}

fn issue(number: u64, amount_fen: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(number, amount_fen, DEV_GENESIS_TIME_MS)),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

async fn issued(app: &Router, number: u64, amount_fen: u64) -> SignedBill {
    let tx = issue(number, amount_fen);
    let a = post_json(app, "/v1/txs", serde_json::to_vec(&tx).unwrap()).await;
    assert!(a.status.is_success(), "{}", a.text());
    tx.to_signed_bill().unwrap()
}

fn page_path(sb: &SignedBill) -> String {
    format!("/b/{}/{}/{}", sb.bill.code, sb.bill.number, sb.check_code)
}

#[tokio::test]
async fn the_form_checks_each_field_and_redirects_when_all_are_right() {
    let (_b, app) = app_with(LookupLimits::default());
    let p = fetch(&app, "/", &[]).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("票据代码") && p.body.contains("inputmode=\"numeric\""));
    assert!(
        p.body.contains("<svg"),
        "the picture of where the fields sit"
    );
    assert!(
        p.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(p.headers["x-content-type-options"], "nosniff");
    assert_eq!(p.headers["referrer-policy"], "no-referrer");

    let p = fetch(&app, "/?code=3301&number=00000000x1&check_code=abc", &[]).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("应为 8 位，填写了 4 位"), "{}", p.body);
    assert!(p.body.contains("只能填写数字"));
    assert!(p.body.contains("应为 6 位，填写了 3 位"));
    assert_eq!(p.headers["cache-control"], "no-store");

    let p = fetch(
        &app,
        "/?code=33010126&number=0000000001&check_code=ABC123&lang=en",
        &[],
    )
    .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(
        p.headers["location"],
        "/b/33010126/0000000001/abc123?lang=en"
    );
}

#[tokio::test]
async fn a_genuine_bill_page_and_its_json() {
    let (_b, app) = app_with(LookupLimits::default());
    let sb = issued(&app, 21, 1250).await;
    let p = fetch(&app, &page_path(&sb), &[]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    for want in [
        "真实有效",
        "壹拾贰元伍角",
        "¥12.50",
        "技术证据",
        "ebill verify-proof",
        "今日查验次数",
        "/qr.svg?d=",
    ] {
        assert!(p.body.contains(want), "page lacks {want:?}");
    }
    assert!(!p.body.contains(&sb.bill.payer.name), "the payer is masked");
    assert_eq!(p.headers["cache-control"], "no-store");
    assert_eq!(p.headers["referrer-policy"], "no-referrer");
    assert!(
        p.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let j = fetch(&app, &page_path(&sb), &[("accept", "application/json")]).await;
    assert_eq!(j.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
    assert_eq!(v["status"], "issued");
    assert_eq!(v["authentic"], true);

    let en = fetch(&app, &format!("{}?lang=en", page_path(&sb)), &[]).await;
    assert!(en.body.contains("Genuine") && en.body.contains("<html lang=\"en\""));
    let en = fetch(
        &app,
        &page_path(&sb),
        &[("accept-language", "en-GB,en;q=0.9,zh;q=0.5")],
    )
    .await;
    assert!(en.body.contains("Genuine"));
    let zh = fetch(
        &app,
        &page_path(&sb),
        &[("accept-language", "zh-CN,en;q=0.5")],
    )
    .await;
    assert!(zh.body.contains("真实有效"));
}

#[tokio::test]
async fn wrong_check_code_and_unknown_bill_give_the_same_page() {
    let (_b, app) = app_with(LookupLimits::default());
    let sb = issued(&app, 22, 500).await;
    let wrong = if sb.check_code.as_str() == "aaaaaa" {
        "bbbbbb"
    } else {
        "aaaaaa"
    };
    let a = fetch(
        &app,
        &format!("/b/{}/{}/{wrong}", sb.bill.code, sb.bill.number),
        &[],
    )
    .await;
    let b = fetch(
        &app,
        &format!("/b/{}/0000009999/{wrong}", sb.bill.code),
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.status, b.status);
    assert!(a.body.contains("未查到"));
    let number = sb.bill.number.to_string();
    assert_eq!(
        a.body.replace(&number, "N"),
        b.body.replace("0000009999", "N")
    );
    assert_eq!(a.headers, b.headers);
    // JSON: the API's one 404.
    let a = fetch(
        &app,
        &format!("/b/{}/{}/{wrong}", sb.bill.code, sb.bill.number),
        &[("accept", "application/json")],
    )
    .await;
    let b = fetch(
        &app,
        &format!("/b/{}/0000009999/{wrong}", sb.bill.code),
        &[("accept", "application/json")],
    )
    .await;
    assert_eq!(a.body, b.body);
    assert!(a.body.contains("bill_not_found"));
}

#[tokio::test]
async fn every_status_has_its_banner() {
    let (_b, app) = app_with(LookupLimits::default());
    let sb = issued(&app, 23, 1000).await;
    let tx = Tx {
        nonce: 1,
        body: TxBody::ConfirmReimbursed {
            unit: dev::dev_reimburser_code(),
            bill: sb.bill.id(),
            check_code: sb.check_code,
        },
    }
    .sign_unit(CHAIN, &dev::dev_reimburser_key());
    let a = post_json(&app, "/v1/txs", serde_json::to_vec(&tx).unwrap()).await;
    assert!(a.status.is_success());
    let p = fetch(&app, &page_path(&sb), &[]).await;
    assert!(p.body.contains("已报销"), "{}", p.body);
    assert!(
        p.body.contains("已报销入账"),
        "timeline shows the reimbursement"
    );

    let sb2 = issued(&app, 24, 1000).await;
    let tx = Tx {
        nonce: 1,
        body: TxBody::RedReverse {
            issuer: sb2.bill.issuer,
            bill: sb2.bill.id(),
            reason: "开错".into(),
        },
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key());
    assert!(
        post_json(&app, "/v1/txs", serde_json::to_vec(&tx).unwrap())
            .await
            .status
            .is_success()
    );
    assert!(
        fetch(&app, &page_path(&sb2), &[])
            .await
            .body
            .contains("已冲红")
    );
}

#[tokio::test]
async fn lookups_are_limited_per_bill_and_counted() {
    let (_b, app) = app_with(LookupLimits {
        lookups_per_bill_per_day: 3,
        ..LookupLimits::default()
    });
    let sb = issued(&app, 25, 1000).await;
    for i in 1..=3 {
        let p = fetch(&app, &page_path(&sb), &[]).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(
            p.body.contains(&format!("<strong>{i}</strong>")),
            "count {i}"
        );
    }
    let p = fetch(&app, &page_path(&sb), &[]).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.headers.contains_key("retry-after"));
    assert!(p.body.contains("查验次数已达上限"));
    let j = fetch(&app, &page_path(&sb), &[("accept", "application/json")]).await;
    assert_eq!(j.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(j.body.contains("too_many_lookups"));
}

#[tokio::test]
async fn lookups_are_limited_per_client() {
    let (_b, app) = app_with(LookupLimits {
        lookups_per_client_per_minute: 2,
        ..LookupLimits::default()
    });
    let sb = issued(&app, 26, 1000).await;
    assert_eq!(
        fetch(&app, &page_path(&sb), &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, "/b/33010126/0000000001/aaaaaa", &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let p = fetch(&app, &page_path(&sb), &[]).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.body.contains("查验过于频繁"));
}

#[tokio::test]
async fn the_qr_link_carries_the_digest_and_the_page_checks_it() {
    let (_b, app) = app_with(LookupLimits::default());
    let sb = issued(&app, 27, 1250).await;
    let digest = bill_digest(&sb.bill);
    let upper = format!(
        "/B/{}/{}/{}/{digest}",
        sb.bill.code,
        sb.bill.number,
        sb.check_code.as_str().to_ascii_uppercase()
    );
    let p = fetch(&app, &upper, &[]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("二维码所载摘要与本票据内容一致"));
    let url = format!(
        "HTTP://127.0.0.1:8080/B/{}/{}/{}/{digest}",
        sb.bill.code,
        sb.bill.number,
        sb.check_code.as_str().to_ascii_uppercase()
    );
    assert!(p.body.contains(&url), "the page shows the QR link");
    let p = fetch(&app, &format!("{}/AAAAAAAA", page_path(&sb)), &[]).await;
    assert!(p.body.contains("二维码所载摘要与链上票据内容不符"));

    let q = fetch(&app, &format!("{}/qr.svg", page_path(&sb)), &[]).await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.headers["content-type"], "image/svg+xml");
    assert!(q.body.starts_with("<svg"));
    let pr = fetch(&app, &format!("{}/print", page_path(&sb)), &[]).await;
    assert_eq!(pr.status, StatusCode::OK);
    assert!(pr.body.contains("/qr.svg?d=") && pr.body.contains("壹拾贰元伍角"));
}

#[tokio::test]
async fn the_page_links_its_qr_code_with_a_token_that_spares_a_lookup() {
    let (_b, app) = app_with(LookupLimits {
        lookups_per_bill_per_day: 3,
        ..LookupLimits::default()
    });
    let sb = issued(&app, 28, 1250).await;
    let p = fetch(&app, &page_path(&sb), &[]).await;
    assert!(p.body.contains("<strong>1</strong>"));
    let start = p.body.find("/qr.svg?d=").unwrap();
    let src_start = p.body[..start].rfind('"').unwrap() + 1;
    let src_end = start + p.body[start..].find('"').unwrap();
    let src = p.body[src_start..src_end].replace("&amp;", "&");
    for _ in 0..5 {
        let q = fetch(&app, &src, &[]).await;
        assert_eq!(q.status, StatusCode::OK, "{src}");
        assert!(q.body.starts_with("<svg"));
    }
    // Five images and the count is still the page's own.
    let p = fetch(&app, &page_path(&sb), &[]).await;
    assert!(
        p.body.contains("<strong>2</strong>"),
        "the images counted no lookup"
    );
    // A forged token is a counted lookup like any other.
    let forged = format!(
        "{}&t=00000000000000000000000000000000",
        &src[..src.find("&t=").unwrap()]
    );
    assert_eq!(fetch(&app, &forged, &[]).await.status, StatusCode::OK);
    assert_eq!(
        fetch(&app, &forged, &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn static_assets_and_the_offline_page() {
    let (_b, app) = app_with(LookupLimits::default());
    let css = fetch(&app, "/static/style.css", &[]).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("@media print"));
    assert_eq!(css.headers["content-type"], "text/css");
    let v = fetch(&app, "/verify", &[]).await;
    assert_eq!(v.status, StatusCode::OK);
    let csp = v.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("'sha256-"), "{csp}");
    assert!(
        !v.body.contains("src=\"/static"),
        "the offline page is one file"
    );
}
