//! A regulator's signed export end to end: the real `ebill-node --dev --admin-api` and
//! the real `ebill`. Bills are issued, reimbursed and red-reversed; `ebill export` writes
//! the CSV files (with `--format parquet` or `xlsx`, Parquet or xlsx files; `--table`,
//! some tables) and the node-signed manifest; `ebill verify-export` passes on each, and
//! refuses one changed byte in a CSV or
//! Parquet file or in the manifest, naming it; DuckDB (Python `duckdb`) reads the CSV
//! and the Parquet files in place and gets the counts and amount of
//! `GET /admin/v1/stats` from both.
//! Without python3 and duckdb that last part skips loudly, and fails under CI=true.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use ebill_types::dev;
use support::{Http, Node, ebill, json_of, ok};

fn flip_one_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] = if b[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(path, b).unwrap();
}

#[test]
fn an_export_verifies_is_refused_when_changed_and_duckdb_agrees_with_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    let (node, admin) = Node::start_dev_with_admin(&data, &[]);
    let url = node.url.clone();
    ok(&ebill(&url, &["dev-keys", "--out", keys.to_str().unwrap()]));
    let issuer = keys.join("issuer.key");
    let reimburser = keys.join("reimburser.key");

    let mut issued = Vec::new();
    for n in 1..=4u64 {
        let bill = dev::sample_bill(n, 1000 * n + 7, 0);
        let path = tmp.path().join(format!("bill-{n}.json"));
        std::fs::write(&path, serde_json::to_string(&bill).unwrap()).unwrap();
        let v = ok(&ebill(
            &url,
            &[
                "issue",
                "--key",
                issuer.to_str().unwrap(),
                "--now",
                path.to_str().unwrap(),
            ],
        ));
        assert_eq!(v["status"], "committed", "{v}");
        issued.push(v);
    }
    for n in [1usize, 2] {
        let v = ok(&ebill(
            &url,
            &[
                "reimburse",
                "--key",
                reimburser.to_str().unwrap(),
                "33010126",
                &format!("{:010}", n),
                issued[n - 1]["check_code"].as_str().unwrap(),
            ],
        ));
        assert_eq!(v["status"], "committed", "{v}");
    }
    let v = ok(&ebill(
        &url,
        &[
            "reverse",
            "--key",
            issuer.to_str().unwrap(),
            "--reason",
            "开错了, \"重开\"",
            "33010126",
            "0000000004",
            issued[3]["check_code"].as_str().unwrap(),
        ],
    ));
    assert_eq!(v["status"], "committed", "{v}");

    let dir = tmp.path().join("export");
    let m = ok(&ebill(&admin, &["export", "-o", dir.to_str().unwrap()]));
    assert_eq!(m["from_height"], 1, "{m}");
    let pq_dir = tmp.path().join("export-parquet");
    let pm = ok(&ebill(
        &admin,
        &[
            "export",
            "--format",
            "parquet",
            "--to-height",
            &m["to_height"].to_string(),
            "-o",
            pq_dir.to_str().unwrap(),
        ],
    ));
    assert_eq!(pm["block_hash"], m["block_hash"], "{pm}");
    for f in ["bills.parquet", "events.parquet", "units.parquet"] {
        assert!(pq_dir.join(f).is_file(), "{f}");
    }
    let xlsx_dir = tmp.path().join("export-xlsx");
    let xm = ok(&ebill(
        &admin,
        &[
            "export",
            "--format",
            "xlsx",
            "--table",
            "bills,events",
            "--to-height",
            &m["to_height"].to_string(),
            "-o",
            xlsx_dir.to_str().unwrap(),
        ],
    ));
    let xlsx_tables: Vec<&str> = xm["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["table"].as_str().unwrap())
        .collect();
    assert_eq!(xlsx_tables, vec!["bills", "events"], "{xm}");
    assert!(xlsx_dir.join("bills.xlsx").is_file());
    assert!(!xlsx_dir.join("units.xlsx").exists());
    let genesis = support::repo_root().join("genesis/dev.json");
    let verify = |d: &Path| {
        ebill(
            &admin,
            &[
                "verify-export",
                d.to_str().unwrap(),
                "--genesis",
                genesis.to_str().unwrap(),
            ],
        )
    };
    let v = ok(&verify(&dir));
    assert_eq!(v["valid"], true, "{v}");
    assert!(
        v["signer"].as_str().unwrap().starts_with("validator "),
        "{v}"
    );
    let v = ok(&verify(&pq_dir));
    assert_eq!(v["valid"], true, "{v}");
    let v = ok(&verify(&xlsx_dir));
    assert_eq!(v["valid"], true, "{v}");
    // Same rows in both formats, as the manifests say.
    let rows = |m: &serde_json::Value| -> Vec<u64> {
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rows"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(rows(&pm), rows(&m));

    // DuckDB over the CSV and over the Parquet files gets what the stats route says.
    let (status, body) = Http::new(&admin).get("/admin/v1/stats");
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    let t = &stats["total"];
    assert_eq!(t["issued"]["count"], 4, "{stats}");
    if support::duckdb::required_for("the DuckDB part of the export test") {
        support::duckdb::assert_totals_match(&dir, "csv", &stats);
        support::duckdb::assert_totals_match(&pq_dir, "parquet", &stats);
    }

    // One changed byte in a CSV file, or in the manifest, is refused by name.
    for (file, code) in [
        ("bills.csv", "export_hash_mismatch"),
        ("events.csv", "export_hash_mismatch"),
        ("manifest.json", "manifest_bad_signature"),
    ] {
        let copy = tmp.path().join(format!("copy-{file}"));
        std::fs::create_dir_all(&copy).unwrap();
        for f in ["bills.csv", "events.csv", "units.csv", "manifest.json"] {
            std::fs::copy(dir.join(f), copy.join(f)).unwrap();
        }
        let target = copy.join(file);
        let text = std::fs::read_to_string(&target).unwrap();
        // A digit inside the data (the manifest: inside a row count).
        let at = if file == "manifest.json" {
            text.find("\"rows\": ").unwrap() + "\"rows\": ".len()
        } else {
            text.rfind(',').unwrap() - 1
        };
        flip_one_byte(&target, at);
        let out = verify(&copy);
        assert!(!out.status.success(), "{file} changed is refused");
        let e = json_of(&out);
        assert_eq!(e["error"]["code"], code, "{file}: {e}");
        if file != "manifest.json" {
            assert!(
                e["error"]["message"].as_str().unwrap().contains(file),
                "{e}"
            );
        } else {
            assert!(
                e["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("manifest.json"),
                "{e}"
            );
        }
    }
    // A changed byte in a Parquet file is refused by name too (in its footer, where a
    // row count or a schema lives).
    let copy = tmp.path().join("copy-parquet");
    std::fs::create_dir_all(&copy).unwrap();
    for f in [
        "bills.parquet",
        "events.parquet",
        "units.parquet",
        "manifest.json",
    ] {
        std::fs::copy(pq_dir.join(f), copy.join(f)).unwrap();
    }
    let target = copy.join("events.parquet");
    let len = std::fs::metadata(&target).unwrap().len();
    flip_one_byte(&target, usize::try_from(len).unwrap() - 20);
    let e = json_of(&verify(&copy));
    assert_eq!(e["error"]["code"], "export_hash_mismatch", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("events.parquet"),
        "{e}"
    );
    node.stop();
}
