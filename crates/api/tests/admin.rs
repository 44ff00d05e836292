//! The operator's API (`admin_router`): an absence proof of a bill never issued verifies
//! offline in both forms; an issued bill answers `409 bill_exists`; and the public router
//! has no `/admin` route at all, so it is no oracle for which bills exist.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use axum::http::{Method, StatusCode};
use common::{TestBackend, call, get, post_json};
use ebill_api::admin::build_absence;
use ebill_api::{Backend, admin_router, router};
use ebill_types::absence::{AbsenceProof, verify_absence};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::proof::Link;
use ebill_types::{SignedTx, Tx, TxBody};

const CHAIN: &str = dev::DEV_CHAIN_ID;

fn issue(number: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(number, 500, DEV_GENESIS_TIME_MS)),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

#[tokio::test]
async fn absent_bills_are_proved_absent_and_issued_ones_conflict() {
    let b = TestBackend::new();
    let public = router(b.clone());
    let admin = admin_router(b.clone());

    // Before any block: no certified header to prove against.
    get(&admin, "/admin/v1/absent/33010126/0000000070")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "node_not_ready");

    for n in [70, 71, 72] {
        let a = post_json(&public, "/v1/txs", serde_json::to_vec(&issue(n)).unwrap()).await;
        assert!(a.status.is_success(), "{}", a.text());
    }

    // A number never issued: a proof that verifies offline, as of the tip (height 3).
    let a = get(&admin, "/admin/v1/absent/33010126/0000000099").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(a.json()["kind"], "absence");
    let proof = AbsenceProof::from_json(&a.text()).unwrap();
    let v = verify_absence(&proof, b.genesis()).unwrap();
    assert_eq!(v.height, 3);
    assert_eq!(v.bill.number.to_string(), "0000000099");

    let bin = get(&admin, "/admin/v1/absent/33010126/0000000099?format=binary").await;
    assert_eq!(bin.status, StatusCode::OK);
    assert_eq!(
        bin.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    assert_eq!(AbsenceProof::from_bytes(&bin.body).unwrap(), proof);

    // The proof names its bill: it does not serve for an issued one.
    let mut borrowed = proof.clone();
    borrowed.bill = dev::sample_bill(71, 500, DEV_GENESIS_TIME_MS).id();
    assert_eq!(
        verify_absence(&borrowed, b.genesis()).map_err(|e| e.link),
        Err(Link::StateProof)
    );

    // An issued bill: 409 bill_exists, on the route and from the builder.
    let e = get(&admin, "/admin/v1/absent/33010126/0000000071")
        .await
        .assert_error(StatusCode::CONFLICT, "bill_exists");
    assert!(e["message"].as_str().unwrap().contains("0000000071"), "{e}");
    let id = dev::sample_bill(71, 500, DEV_GENESIS_TIME_MS).id();
    assert_eq!(
        build_absence(b.store().as_ref(), b.genesis(), &id)
            .unwrap_err()
            .code(),
        "bill_exists"
    );

    // Malformed paths and queries, unknown routes and methods: the usual JSON errors.
    get(&admin, "/admin/v1/absent/3301012x/0000000099")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
    get(&admin, "/admin/v1/absent/33010126/0000000099?format=xml")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    get(
        &admin,
        "/admin/v1/absent/33010126/0000000099?check_code=abcdef",
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    get(&admin, "/v1/status")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    call(
        &admin,
        Method::POST,
        "/admin/v1/absent/33010126/0000000099",
        None,
        Vec::new(),
    )
    .await
    .assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

/// The public router serves no absence proof: the same 404 as any unknown route, for an
/// issued bill and for one never issued.
#[tokio::test]
async fn the_public_router_has_no_admin_route() {
    let b = TestBackend::new();
    let public = router(b.clone());
    post_json(&public, "/v1/txs", serde_json::to_vec(&issue(80)).unwrap()).await;
    let issued = get(&public, "/admin/v1/absent/33010126/0000000080").await;
    let never = get(&public, "/admin/v1/absent/33010126/0000000081").await;
    issued.assert_error(StatusCode::NOT_FOUND, "not_found");
    never.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        issued.text().replace("0000000080", "N"),
        never.text().replace("0000000081", "N")
    );
    get(
        &public,
        "/admin/v1/absent/33010126/0000000081?format=binary",
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");
}
