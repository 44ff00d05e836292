//! The governance and registry routes over the in-process backend: a proposal pending,
//! approved and executed; the registry with a unit's history and the proof of its record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use axum::http::StatusCode;
use common::{TestBackend, get};
use ebill_api::{Backend, router};
use ebill_types::state_tree::{StateKey, StateProof};
use ebill_types::{Canonical, CodePrefix, Hash32, Timestamp, Tx, TxBody, dev};

const CHAIN: &str = dev::DEV_CHAIN_ID;

fn register() -> TxBody {
    TxBody::RegisterIssuer {
        credit_code: dev::test_credit_code('B', 2),
        name: "第二医院".into(),
        public_key: dev::dev_key("issuer", 2).public(),
        code_prefixes: vec![CodePrefix::parse("3302").unwrap()],
        valid_until: Timestamp::end_of_day("2099-12-31").unwrap(),
    }
}

#[tokio::test]
async fn a_proposal_is_listed_pending_then_executed_and_the_unit_is_proved() {
    let b = TestBackend::new();
    let app = router(b.clone());
    let regs = dev::dev_regulator_keys();
    let propose = TxBody::Propose {
        action: Box::new(register()),
        expires_at_height: 100,
        base_gov_seq: 0,
    };
    let id = propose.proposal_id(CHAIN).unwrap();
    let tx = Tx {
        nonce: 1,
        body: propose,
    }
    .sign_regulator(CHAIN, 0, &regs[0]);
    b.submit(vec![tx]).into_iter().next().unwrap().unwrap();

    let list = get(&app, "/v1/gov/proposals?status=pending").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let v = list.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["proposals"][0]["id"], id.to_hex());
    assert_eq!(v["proposals"][0]["approvals_missing"], 1);
    assert_eq!(v["proposals"][0]["proposer"]["name"], "regulator-0");
    assert_eq!(v["proposals"][0]["kind"], "register_issuer");
    let none = get(&app, "/v1/gov/proposals?status=executed").await.json();
    assert_eq!(none["total"], 0);

    let approve = Tx {
        nonce: 2,
        body: TxBody::Approve { proposal: id },
    }
    .sign_regulator(CHAIN, 1, &regs[1]);
    b.submit(vec![approve]).into_iter().next().unwrap().unwrap();
    let one = get(&app, &format!("/v1/gov/proposals/{}", id.to_hex())).await;
    assert_eq!(one.status, StatusCode::OK);
    let v = one.json();
    assert_eq!(v["proposal"]["status"], "executed");
    assert_eq!(v["gov_seq"], 1);
    assert_eq!(v["proposal"]["approvals"].as_array().unwrap().len(), 2);

    get(&app, "/v1/gov/proposals?status=sideways")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_query");
    get(
        &app,
        &format!("/v1/gov/proposals/{}", Hash32([9; 32]).to_hex()),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "proposal_not_found");
    get(&app, "/v1/gov/proposals/xyz")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");

    let units = get(&app, "/v1/units").await.json();
    let codes: Vec<&str> = units["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["credit_code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&dev::test_credit_code('B', 2).as_str()));
    assert_eq!(codes.len(), 3);

    let code = dev::test_credit_code('B', 2);
    let unit = get(&app, &format!("/v1/units/{code}")).await;
    assert_eq!(unit.status, StatusCode::OK, "{}", unit.text());
    let v = unit.json();
    assert_eq!(v["unit"]["status"], "active");
    assert_eq!(v["unit"]["in_genesis"], false);
    assert_eq!(v["unit"]["valid_until"], "2099-12-31T23:59:59.999+08:00");
    assert_eq!(v["unit"]["history"][0]["action"], "register_issuer");
    // The proof leads from the record to the state root of the tip's header.
    #[derive(serde::Deserialize)]
    struct Hex(#[serde(with = "ebill_types::hexfmt::bytes")] Vec<u8>);
    let unhex = |v: &serde_json::Value| serde_json::from_value::<Hex>(v.clone()).unwrap().0;
    let record = unhex(&v["state_proof"]["record"]);
    let proof = StateProof::from_canonical_bytes(&unhex(&v["state_proof"]["proof"])).unwrap();
    let height = v["state_proof"]["height"].as_u64().unwrap();
    let header = b.store().header(height).unwrap().unwrap();
    assert_eq!(
        v["state_proof"]["state_root"],
        header.state_root.to_hex(),
        "the root of the tip's header"
    );
    let key = StateKey::Unit(code);
    proof
        .verify_member(&header.state_root, &key.hash(), &key.value_hash(&record))
        .unwrap();

    get(
        &app,
        &format!("/v1/units/{}", dev::test_credit_code('B', 9)),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "unit_not_found");
    get(&app, "/v1/units/nonsense")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_path");
}
