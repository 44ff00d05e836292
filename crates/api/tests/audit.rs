//! The audit API on the operator's router: search with cursor pagination and strict
//! parameters, one bill in full (payer unmasked), statistics, the anomaly rules over
//! planted cases, the credit-code stream; and none of it on the public router.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestBackend, get, post_json};
use ebill_api::{Backend, admin_router, router};
use ebill_store::index::RefusedTx;
use ebill_types::bill::BillKind;
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{BillId, CheckCode, SignedTx, Tx, TxBody, TxKind};
use futures_util::StreamExt;
use tower::ServiceExt;

const CHAIN: &str = dev::DEV_CHAIN_ID;

fn issue(number: u64, fen: u64, kind: BillKind) -> SignedTx {
    let mut bill = dev::sample_bill(number, fen, DEV_GENESIS_TIME_MS);
    bill.kind = kind;
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(bill),
    }
    .sign_unit(CHAIN, &dev::dev_issuer_key())
}

fn id(number: u64) -> BillId {
    dev::sample_bill(number, 1, 0).id()
}

fn reimburser(body: TxBody, nonce: u64) -> SignedTx {
    Tx { nonce, body }.sign_unit(CHAIN, &dev::dev_reimburser_key())
}

fn issuer(body: TxBody, nonce: u64) -> SignedTx {
    Tx { nonce, body }.sign_unit(CHAIN, &dev::dev_issuer_key())
}

async fn submit(public: &Router, tx: &SignedTx) {
    let a = post_json(public, "/v1/txs", serde_json::to_vec(tx).unwrap()).await;
    assert!(a.status.is_success(), "{}", a.text());
}

/// Bills 1..=12 (12 fen × n; 9..=12 inpatient); 1 locked then reimbursed, 2 locked,
/// 3 red-reversed, 4 exchanged for paper, 5 locked, unlocked and red-reversed.
async fn workload() -> (Arc<TestBackend>, Router, Router, Vec<CheckCode>) {
    let b = TestBackend::new();
    let public = router(b.clone());
    let admin = admin_router(b.clone());
    let mut codes = Vec::new();
    for n in 1..=12 {
        let kind = if n >= 9 {
            BillKind::MedicalInpatient
        } else {
            BillKind::MedicalOutpatient
        };
        let tx = issue(n, 12 * n, kind);
        codes.push(tx.to_signed_bill().unwrap().check_code);
        submit(&public, &tx).await;
    }
    let unit = dev::dev_reimburser_code();
    let cc = |n: u64| codes[usize::try_from(n - 1).unwrap()];
    for (n, nonce) in [(1, 1), (2, 2), (5, 3)] {
        let body = TxBody::Lock {
            unit,
            bill: id(n),
            check_code: cc(n),
        };
        submit(&public, &reimburser(body, nonce)).await;
    }
    let body = TxBody::ConfirmReimbursed {
        unit,
        bill: id(1),
        check_code: cc(1),
    };
    submit(&public, &reimburser(body, 4)).await;
    submit(
        &public,
        &reimburser(TxBody::Unlock { unit, bill: id(5) }, 5),
    )
    .await;
    for (n, nonce) in [(3, 1), (5, 2)] {
        let body = TxBody::RedReverse {
            issuer: dev::dev_issuer_code(),
            bill: id(n),
            reason: "错误".to_owned(),
        };
        submit(&public, &issuer(body, nonce)).await;
    }
    let body = TxBody::ExchangePaper {
        issuer: dev::dev_issuer_code(),
        bill: id(4),
    };
    submit(&public, &issuer(body, 3)).await;
    (b, public, admin, codes)
}

fn numbers(v: &serde_json::Value) -> Vec<u64> {
    let mut out: Vec<u64> = v["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["number"].as_str().unwrap().parse().unwrap())
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test]
async fn bills_are_searched_by_each_index_and_paged() {
    let (_b, public, admin, _) = workload().await;
    let issuer = dev::dev_issuer_code();
    let all = get(&admin, "/admin/v1/bills").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text());
    assert_eq!(numbers(&all.json()), (1..=12).collect::<Vec<_>>());
    assert!(all.json()["next_cursor"].is_null());

    // Pages of 5 through the issuer index, in issue order, each bill once.
    let mut seen = Vec::new();
    let mut uri = format!("/admin/v1/bills?issuer={issuer}&limit=5");
    let mut pages = 0;
    loop {
        let page = get(&admin, &uri).await.json();
        pages += 1;
        seen.extend(numbers(&page));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/admin/v1/bills?issuer={issuer}&limit=5&cursor={c}"),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen.len(), 12);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 12);

    let q = |s: &str| {
        let admin = admin.clone();
        let s = s.to_owned();
        async move {
            let a = get(&admin, &s).await;
            assert_eq!(a.status, StatusCode::OK, "{s}: {}", a.text());
            numbers(&a.json())
        }
    };
    assert_eq!(q("/admin/v1/bills?status=locked").await, vec![2]);
    let locked = get(&admin, "/admin/v1/bills?status=locked").await;
    let text = locked.text();
    assert_eq!(
        text.matches("\"status\"").count(),
        1,
        "one status key: {text}"
    );
    let row = &locked.json()["bills"][0];
    assert_eq!(row["status"], "locked");
    assert_eq!(row["by"], dev::dev_reimburser_code().as_str());
    assert_eq!(row["total_fen"], 24);
    assert_eq!(q("/admin/v1/bills?status=reversed").await, vec![3, 5]);
    assert_eq!(q("/admin/v1/bills?status=paper_exchanged").await, vec![4]);
    assert_eq!(
        q(&format!(
            "/admin/v1/bills?reimburser={}",
            dev::dev_reimburser_code()
        ))
        .await,
        vec![1, 2, 5]
    );
    assert_eq!(
        q(&format!(
            "/admin/v1/bills?reimburser={}&status=reimbursed",
            dev::dev_reimburser_code()
        ))
        .await,
        vec![1]
    );
    assert_eq!(
        q("/admin/v1/bills?kind=medical_inpatient").await,
        vec![9, 10, 11, 12]
    );
    assert_eq!(
        q("/admin/v1/bills?kind=medical_inpatient&min_total=120&max_total=132").await,
        vec![10, 11]
    );
    // Bill n is block n: block time genesis + n s. [3 s, 6 s) holds bills 3, 4, 5.
    let t = |s: i64| {
        ebill_types::Timestamp::from_unix_ms(DEV_GENESIS_TIME_MS + s * 1000)
            .to_rfc3339()
            .unwrap()
            .replace('+', "%2B")
    };
    assert_eq!(
        q(&format!("/admin/v1/bills?from={}&to={}", t(3), t(6))).await,
        vec![3, 4, 5]
    );
    assert_eq!(
        q(&format!(
            "/admin/v1/bills?issuer={issuer}&from={}&to={}",
            t(3),
            t(6)
        ))
        .await,
        vec![3, 4, 5]
    );

    // None of it on the public router.
    get(&public, "/admin/v1/bills")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    get(&public, "/admin/v1/stats")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn bad_parameters_are_typed_400s() {
    let (_b, _public, admin, _) = workload().await;
    for (uri, code) in [
        ("/admin/v1/bills?kind=pizza", "invalid_kind"),
        ("/admin/v1/bills?status=open", "invalid_status"),
        ("/admin/v1/bills?issuer=123", "invalid_credit_code"),
        ("/admin/v1/bills?reimburser=x", "invalid_credit_code"),
        ("/admin/v1/bills?from=yesterday", "invalid_time"),
        (
            "/admin/v1/bills?from=2026-12-02&to=2026-12-01",
            "invalid_range",
        ),
        ("/admin/v1/bills?min_total=1.50", "invalid_amount"),
        ("/admin/v1/bills?min_total=9&max_total=8", "invalid_range"),
        ("/admin/v1/bills?limit=0", "invalid_limit"),
        ("/admin/v1/bills?limit=1001", "invalid_limit"),
        ("/admin/v1/bills?cursor=zz", "invalid_cursor"),
        ("/admin/v1/bills?colour=red", "invalid_query"),
        ("/admin/v1/stats?group_by=week", "invalid_group_by"),
        ("/admin/v1/anomalies?rule=nope", "invalid_rule"),
        ("/admin/v1/stream", "invalid_credit_code"),
        ("/admin/v1/bills/3301/1", "invalid_path"),
    ] {
        get(&admin, uri)
            .await
            .assert_error(StatusCode::BAD_REQUEST, code);
    }
    // A cursor of one query is refused by another.
    let page = get(&admin, "/admin/v1/bills?limit=2").await.json();
    let c = page["next_cursor"].as_str().unwrap().to_owned();
    get(&admin, &format!("/admin/v1/bills?limit=2&cursor={c}")).await;
    get(&admin, &format!("/admin/v1/bills?status=issued&cursor={c}"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_cursor");
}

#[tokio::test]
async fn one_bill_in_full_shows_the_payer() {
    let (_b, _public, admin, _) = workload().await;
    let a = get(&admin, "/admin/v1/bills/33010126/0000000005").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let v = a.json();
    assert_eq!(v["bill"]["payer"]["name"], "张三");
    assert_eq!(v["bill"]["payer"]["id"], "330102199001011234");
    let actions: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["issue_bill", "lock", "unlock", "red_reverse"]);
    assert_eq!(v["status"]["status"], "reversed");
    get(&admin, "/admin/v1/bills/33010126/0000000099")
        .await
        .assert_error(StatusCode::NOT_FOUND, "bill_not_found");
}

#[tokio::test]
async fn stats_count_and_sum_each_status() {
    let (_b, _public, admin, _) = workload().await;
    let v = get(&admin, "/admin/v1/stats?group_by=issuer").await.json();
    let t = &v["total"];
    let fen = |ns: &[u64]| ns.iter().map(|n| 12 * n).sum::<u64>();
    assert_eq!(t["issued"]["count"], 12);
    assert_eq!(
        t["issued"]["amount_fen"],
        fen(&(1..=12).collect::<Vec<_>>())
    );
    assert_eq!(t["reversed"]["count"], 2);
    assert_eq!(t["reversed"]["amount_fen"], fen(&[3, 5]));
    assert_eq!(t["reimbursed"]["count"], 1);
    assert_eq!(t["reimbursed"]["amount_fen"], fen(&[1]));
    assert_eq!(t["paper_exchanged"]["count"], 1);
    assert_eq!(t["locked"]["count"], 1);
    assert_eq!(t["open"]["count"], 7);
    assert!((t["reversed_rate"].as_f64().unwrap() - 2.0 / 12.0).abs() < 1e-9);
    // Bill 1 was issued in block 1 and reimbursed in block 16: 15 s.
    assert_eq!(t["median_ms_to_reimbursement"], 15_000);
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["groups"][0]["key"], dev::dev_issuer_code().as_str());
    assert_eq!(v["groups"][0]["issued"], t["issued"]);

    let v = get(&admin, "/admin/v1/stats?group_by=kind").await.json();
    let keys: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["medical_inpatient", "medical_outpatient"]);
    assert_eq!(v["groups"][0]["issued"]["count"], 4);
    // In key order the scan meets bills 1..=8 (outpatient), then 9..=12 (inpatient):
    // it leaves one group for the other, and every bill still counts once.
    assert_eq!(v["groups"][1]["issued"]["count"], 8);
    let amounts: u64 = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["issued"]["amount_fen"].as_u64().unwrap())
        .sum();
    assert_eq!(amounts, fen(&(1..=12).collect::<Vec<_>>()));
    let v = get(&admin, "/admin/v1/stats?group_by=day").await.json();
    let day = v["groups"][0]["key"].as_str().unwrap();
    assert_eq!(day.len(), 10, "{day}");
    let v = get(&admin, "/admin/v1/stats?group_by=month").await.json();
    assert_eq!(v["groups"][0]["key"].as_str().unwrap(), &day[..7]);
}

#[tokio::test]
async fn anomalies_name_rule_version_and_evidence() {
    let (b, _public, admin, _) = workload().await;
    // Three refused reimbursement attempts of bill 7, as the node's log keeps them.
    for n in 0..3u8 {
        b.store()
            .refused_append(&RefusedTx {
                time_ms: u64::try_from(DEV_GENESIS_TIME_MS).unwrap() + 30_000 + u64::from(n),
                tx_id: ebill_types::Hash32::digest(&[n]),
                kind: TxKind::ConfirmReimbursed,
                bill: Some(id(7)),
                unit: Some(dev::dev_reimburser_code()),
                code: "wrong_check_code".to_owned(),
                message: String::new(),
            })
            .unwrap();
    }
    let v = get(&admin, "/admin/v1/anomalies").await.json();
    let hits = v["hits"].as_array().unwrap();
    let find = |rule: &str| {
        hits.iter()
            .filter(|h| h["rule"] == rule)
            .cloned()
            .collect::<Vec<_>>()
    };
    let rev = find("reversal_after_lock");
    assert_eq!(rev.len(), 1, "{v}");
    assert_eq!(rev[0]["version"], 1);
    assert_eq!(rev[0]["bill"]["number"], "0000000005");
    assert_eq!(
        rev[0]["evidence"].as_array().unwrap().len(),
        2,
        "lock and reversal"
    );
    let rep = find("repeated_refused_reimbursement");
    assert_eq!(rep.len(), 1);
    assert_eq!(rep[0]["evidence_count"], 3);
    // 2 of 12 reversed is 166 per mille, but 12 bills are under the minimum of 20.
    assert!(find("reversal_rate").is_empty());
    // One rule only.
    let v = get(&admin, "/admin/v1/anomalies?rule=reversal_after_lock")
        .await
        .json();
    assert_eq!(v["hits"].as_array().unwrap().len(), 1);
    assert_eq!(v["rules"].as_array().unwrap().len(), 1);
    let rules = get(&admin, "/admin/v1/rules").await.json();
    assert_eq!(rules["rules"].as_array().unwrap().len(), 7);
    assert_eq!(rules["config"]["locked_max_days"], 30);
}

#[tokio::test]
async fn the_stream_sends_each_bill_of_the_watched_issuer() {
    let (_b, public, admin, _) = workload().await;
    let uri = format!(
        "/admin/v1/stream?issuer={}&from_height=11",
        dev::dev_issuer_code()
    );
    let resp = admin
        .clone()
        .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body().into_data_stream();
    // Blocks 11 and 12 are bills 11 and 12; then a new bill, issued after the stream
    // opened.
    let late = issue(77, 500, BillKind::MedicalOther);
    let mut text = String::new();
    let mut submitted = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while text.matches("event: bill").count() < 3 {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("the stream sent the bills in time")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if !submitted && text.matches("event: bill").count() == 2 {
            submit(&public, &late).await;
            submitted = true;
        }
    }
    let numbers: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            let v: serde_json::Value = serde_json::from_str(d).unwrap();
            v["number"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(numbers, vec!["0000000011", "0000000012", "0000000077"]);
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn export_writes_each_table_as_csv_with_its_schema() {
    let (_b, _public, admin, _) = workload().await;
    let a = get(&admin, "/admin/v1/export?table=bills&format=csv").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(a.headers["x-ebill-schema-version"], "1");
    // Streamed: the head cannot count the rows that follow (the manifest does).
    assert!(a.headers.get("x-ebill-rows").is_none());
    assert!(a.headers.get("content-length").is_none(), "{:?}", a.headers);
    assert_eq!(a.headers["x-ebill-from-height"], "1");
    let tip: u64 = a.headers["x-ebill-to-height"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(tip, 12 + 3 + 1 + 1 + 2 + 1);
    let rows = csv_rows(&a.text());
    assert_eq!(
        rows[0],
        ebill_api::audit::export::Table::Bills.column_names()
    );
    assert_eq!(rows.len(), 13);
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    let total: u64 = rows[1..]
        .iter()
        .map(|r| r[col("total_fen")].parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, (1..=12).map(|n| 12 * n).sum::<u64>());
    assert_eq!(rows[1][col("payer_name")], "张三");
    assert_eq!(rows[1][col("height")], "1");
    assert!(
        rows[1][col("block_time")].ends_with("+08:00"),
        "{:?}",
        rows[1]
    );

    // A range: the bills of heights 3..=5 only.
    let a = get(
        &admin,
        "/admin/v1/export?table=bills&from_height=3&to_height=5",
    )
    .await;
    assert_eq!(csv_rows(&a.text()).len(), 1 + 3);
    assert_eq!(a.headers["x-ebill-to-height"], "5");
    let hash = a.headers["x-ebill-block-hash"].to_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);

    let a = get(&admin, "/admin/v1/export?table=events").await;
    let rows = csv_rows(&a.text());
    assert_eq!(
        rows[0],
        ebill_api::audit::export::Table::Events.column_names()
    );
    assert_eq!(rows.len() - 1, usize::try_from(tip).unwrap());
    let kind = rows[0].iter().position(|c| c == "kind").unwrap();
    let count = |k: &str| rows[1..].iter().filter(|r| r[kind] == k).count();
    assert_eq!(count("confirm_reimbursed"), 1);
    assert_eq!(count("red_reverse"), 2);
    assert_eq!(count("issue_bill"), 12);

    let a = get(&admin, "/admin/v1/export?table=units").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        csv_rows(&a.text())[0],
        ebill_api::audit::export::Table::Units.column_names()
    );
}

#[tokio::test]
async fn export_writes_parquet_with_the_rows_and_columns_of_csv() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let (_b, _public, admin, _) = workload().await;
    let csv = get(&admin, "/admin/v1/export?table=bills&format=csv").await;
    let a = get(&admin, "/admin/v1/export?table=bills&format=parquet").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.headers["content-type"], "application/vnd.apache.parquet");
    assert_eq!(
        a.headers["x-ebill-block-hash"],
        csv.headers["x-ebill-block-hash"]
    );
    let reader = SerializedFileReader::new(bytes::Bytes::from(a.body.to_vec())).unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 12);
    let names: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(names, ebill_api::audit::export::Table::Bills.column_names());
    // Row by row, every value is the CSV's (a null where CSV has an empty field).
    let csv_rows = csv_rows(&csv.text());
    for (row, expected) in reader.get_row_iter(None).unwrap().zip(&csv_rows[1..]) {
        let row = row.unwrap();
        let got: Vec<String> = row
            .get_column_iter()
            .map(|(_, f)| match f {
                Field::Null => String::new(),
                Field::Long(i) => i.to_string(),
                Field::Str(s) => s.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(&got, expected);
    }
}

#[tokio::test]
async fn export_writes_xlsx_with_one_sheet_of_the_rows() {
    use std::io::Read;
    let (_b, _public, admin, _) = workload().await;
    let a = get(&admin, "/admin/v1/export?table=events&format=xlsx").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(
        a.headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let csv = get(&admin, "/admin/v1/export?table=events&format=csv").await;
    let rows = csv_rows(&csv.text()).len() - 1;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(a.body.to_vec())).unwrap();
    let mut sheet = String::new();
    zip.by_name("xl/worksheets/sheet1.xml")
        .unwrap()
        .read_to_string(&mut sheet)
        .unwrap();
    assert_eq!(
        sheet.matches("<row ").count(),
        rows + 1,
        "a header and the rows"
    );
    for name in ebill_api::audit::export::Table::Events.column_names() {
        assert!(sheet.contains(&format!(">{name}<")), "{name}");
    }
    assert!(sheet.contains("red_reverse"));
}

#[tokio::test]
async fn export_refuses_bad_and_too_large_ranges_with_typed_codes() {
    let (_b, _public, admin, _) = workload().await;
    for (uri, code) in [
        ("/admin/v1/export", "invalid_table"),
        ("/admin/v1/export?table=payers", "invalid_table"),
        ("/admin/v1/export?table=bills&format=xml", "invalid_format"),
        (
            "/admin/v1/export?table=bills&from_height=x",
            "invalid_height",
        ),
        (
            "/admin/v1/export?table=bills&from_height=-1",
            "invalid_height",
        ),
        (
            "/admin/v1/export?table=bills&from_height=5&to_height=4",
            "invalid_height",
        ),
    ] {
        get(&admin, uri)
            .await
            .assert_error(StatusCode::BAD_REQUEST, code);
    }
    get(&admin, "/admin/v1/export?table=bills&to_height=999")
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "height_beyond_tip");
    // The range is bounded before any block is read.
    get(
        &admin,
        "/admin/v1/export?table=bills&from_height=1&to_height=10000",
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "height_beyond_tip");
    get(
        &admin,
        "/admin/v1/export?table=bills&from_height=1&to_height=10001",
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "range_too_large");
}

#[tokio::test]
async fn the_manifest_is_signed_by_the_node_and_hashes_each_export() {
    let (b, _public, admin, _) = workload().await;
    get(&admin, "/admin/v1/export/manifest")
        .await
        .assert_error(StatusCode::CONFLICT, "no_signing_key");
    let signed = ebill_api::admin_router_signed(
        b.clone(),
        ebill_api::AuditConfig::default(),
        Some(dev::dev_validator_key()),
    );
    let a = get(
        &signed,
        "/admin/v1/export/manifest?from_height=2&to_height=14",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let m: ebill_types::export::ExportManifest = serde_json::from_slice(&a.body).unwrap();
    let who = m.verify(b.genesis()).unwrap();
    assert!(who.starts_with("validator "), "{who}");
    assert_eq!((m.body.from_height, m.body.to_height), (2, 14));
    let tables: Vec<&str> = m.body.files.iter().map(|f| f.table.as_str()).collect();
    assert_eq!(tables, vec!["bills", "events", "units"]);
    for f in &m.body.files {
        let csv = get(
            &admin,
            &format!(
                "/admin/v1/export?table={}&from_height=2&to_height=14",
                f.table
            ),
        )
        .await;
        assert_eq!(
            ebill_types::Hash32::digest(&csv.body),
            f.sha256,
            "{}",
            f.table
        );
        assert_eq!(
            csv_rows(&csv.text()).len() - 1,
            usize::try_from(f.rows).unwrap()
        );
        assert_eq!(
            csv.headers["x-ebill-block-hash"],
            m.body.block_hash.to_hex().as_str()
        );
    }
    assert_eq!(m.body.files[0].rows, 11);

    // Parquet, two tables only: the files named, in the manifest's order, and signed.
    let a = get(
        &signed,
        "/admin/v1/export/manifest?to_height=14&format=parquet&tables=units,bills",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let m: ebill_types::export::ExportManifest = serde_json::from_slice(&a.body).unwrap();
    m.verify(b.genesis()).unwrap();
    let files: Vec<(&str, &str)> = m
        .body
        .files
        .iter()
        .map(|f| (f.table.as_str(), f.format.as_str()))
        .collect();
    assert_eq!(files, vec![("bills", "parquet"), ("units", "parquet")]);
    let pq = get(
        &admin,
        "/admin/v1/export?table=bills&format=parquet&to_height=14",
    )
    .await;
    assert_eq!(
        ebill_types::Hash32::digest(&pq.body),
        m.body.files[0].sha256
    );
    for (uri, code) in [
        (
            "/admin/v1/export/manifest?tables=bills,payers",
            "invalid_table",
        ),
        ("/admin/v1/export/manifest?format=xml", "invalid_format"),
    ] {
        let a = get(&signed, uri).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}: {}", a.text());
        assert!(a.text().contains(code), "{uri}: {}", a.text());
    }
}

/// An export larger than one chunk of the streamed answer arrives whole: the same bytes
/// the signed manifest hashed, every row in it.
#[tokio::test]
async fn an_export_of_many_chunks_streams_whole_and_hashes_to_its_manifest() {
    use ebill_api::audit::streamed::CHUNK_BYTES;
    let b = TestBackend::new();
    let public = router(b.clone());
    let admin = admin_router(b.clone());
    let bills = 1_000u64;
    for n in 1..=bills {
        submit(&public, &issue(n, n, BillKind::MedicalOutpatient)).await;
    }
    let signed = ebill_api::admin_router_signed(
        b.clone(),
        ebill_api::AuditConfig::default(),
        Some(dev::dev_validator_key()),
    );
    let m = get(&signed, "/admin/v1/export/manifest?tables=bills").await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text());
    let m: ebill_types::export::ExportManifest = serde_json::from_slice(&m.body).unwrap();
    let a = get(
        &admin,
        &format!(
            "/admin/v1/export?table=bills&from_height={}&to_height={}",
            m.body.from_height, m.body.to_height
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert!(
        a.body.len() > 2 * CHUNK_BYTES,
        "{} bytes: not enough to need several chunks",
        a.body.len()
    );
    assert_eq!(csv_rows(&a.text()).len(), 1 + 1_000);
    assert_eq!(m.body.files[0].rows, bills);
    assert_eq!(ebill_types::Hash32::digest(&a.body), m.body.files[0].sha256);
}
