//! A regulator's audit end to end: the real `ebill-node --dev --admin-api` with an
//! `[audit]` table and the real `ebill`. Refused reimbursement attempts go to the
//! node's persistent log and come back as a rule hit with their transaction ids; a bill
//! issued outside the declared hours is flagged; `ebill audit stats|bills|anomalies`
//! and `ebill watch` read the operator's listener, which the public API does not
//! serve; `ebill-node reindex` rebuilds the indexes to the same answers.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebill_types::dev;
use support::{Http, Node, ebill, free_port, json_of, ok};

#[test]
fn a_regulator_finds_planted_anomalies_with_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    let config = tmp.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[audit]\nrefused_max_attempts = 3\n[audit.declared_hours]\n{} = \"{}\"\n",
            dev::dev_issuer_code().as_str(),
            support::hours_excluding_now()
        ),
    )
    .unwrap();
    let port = free_port();
    let admin_port = free_port();
    let args = vec![
        "--dev".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--data".into(),
        data.display().to_string(),
        "--api".into(),
        format!("127.0.0.1:{port}"),
        "--admin-api".into(),
        format!("127.0.0.1:{admin_port}"),
    ];
    let node = Node::start(&args, port);
    let url = node.url.clone();
    let admin = format!("http://127.0.0.1:{admin_port}");
    ok(&ebill(&url, &["dev-keys", "--out", keys.to_str().unwrap()]));

    // Three bills, issued now (outside the declared hours).
    let mut issued = Vec::new();
    for n in 1..=3u64 {
        let bill = dev::sample_bill(n, 1000 * n, 0);
        let path = tmp.path().join(format!("bill-{n}.json"));
        std::fs::write(&path, serde_json::to_string(&bill).unwrap()).unwrap();
        let v = ok(&ebill(
            &url,
            &[
                "issue",
                "--key",
                keys.join("issuer.key").to_str().unwrap(),
                "--now",
                path.to_str().unwrap(),
            ],
        ));
        assert_eq!(v["status"], "committed", "{v}");
        issued.push(v);
    }
    // Bill 2 reimbursed; bill 3: three attempts with a wrong check code, each refused.
    let reimburser = keys.join("reimburser.key");
    let v = ok(&ebill(
        &url,
        &[
            "reimburse",
            "--key",
            reimburser.to_str().unwrap(),
            "33010126",
            "0000000002",
            issued[1]["check_code"].as_str().unwrap(),
        ],
    ));
    assert_eq!(v["status"], "committed", "{v}");
    let right = issued[2]["check_code"].as_str().unwrap();
    let wrong = if right == "zzzzzz" {
        "yyyyyy"
    } else {
        "zzzzzz"
    };
    for _ in 0..3 {
        let out = ebill(
            &url,
            &[
                "reimburse",
                "--key",
                reimburser.to_str().unwrap(),
                "33010126",
                "0000000003",
                wrong,
            ],
        );
        assert!(!out.status.success(), "a wrong check code is refused");
    }

    let check = |admin: &str| {
        let stats = ok(&ebill(admin, &["audit", "stats", "--group-by", "issuer"]));
        assert_eq!(stats["total"]["issued"]["count"], 3, "{stats}");
        assert_eq!(stats["total"]["issued"]["amount_fen"], 6000, "{stats}");
        assert_eq!(stats["total"]["reimbursed"]["count"], 1, "{stats}");
        assert_eq!(stats["total"]["open"]["count"], 2, "{stats}");
        let bills = ok(&ebill(
            admin,
            &["audit", "bills", "--status", "issued", "--all"],
        ));
        assert_eq!(bills["bills"].as_array().unwrap().len(), 2, "{bills}");
        let v = ok(&ebill(
            admin,
            &[
                "audit",
                "anomalies",
                "--rule",
                "repeated_refused_reimbursement",
            ],
        ));
        let hits = v["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "{v}");
        assert_eq!(hits[0]["bill"]["number"], "0000000003");
        assert_eq!(hits[0]["version"], 1);
        assert_eq!(hits[0]["evidence_count"], 3, "{v}");
        let v = ok(&ebill(
            admin,
            &["audit", "anomalies", "--rule", "outside_hours"],
        ));
        let mut flagged: Vec<&str> = v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["bill"]["number"].as_str().unwrap())
            .collect();
        flagged.sort_unstable();
        assert_eq!(
            flagged,
            vec!["0000000001", "0000000002", "0000000003"],
            "{v}"
        );
        stats
    };
    let before = check(&admin);

    // The table form and one bill in full (payer unmasked).
    let out = Command::new(support::ebill_bin())
        .args(["--node", &admin, "audit", "stats"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("total"), "{table}");
    assert!(table.contains(dev::dev_issuer_code().as_str()), "{table}");
    let v = ok(&ebill(&admin, &["audit", "bill", "33010126", "0000000001"]));
    assert_eq!(v["bill"]["payer"]["name"], "张三", "{v}");

    // The public API serves none of it.
    let (status, _) = Http::new(&url).get("/admin/v1/stats");
    assert_eq!(status, 404);
    let out = ebill(&url, &["audit", "stats"]);
    assert_eq!(json_of(&out)["error"]["code"], "not_found");

    // ebill watch: replays the three bills from height 1, then stops.
    let mut watch = Command::new(support::ebill_bin())
        .args([
            "--node",
            &admin,
            "--json",
            "watch",
            "--issuer",
            dev::dev_issuer_code().as_str(),
            "--from-height",
            "1",
            "--count",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = watch.kill();
            let _ = watch.wait();
            panic!("ebill watch did not print three bills in time");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = watch.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let numbers: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["number"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(numbers, vec!["0000000001", "0000000002", "0000000003"]);

    // Stopped, reindexed, started again: the same answers, the refused log kept.
    assert!(node.stop().success());
    let out = Command::new(support::node_bin())
        .args(["reindex", "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reindexed 3 bills"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let node = Node::start(&args, port);
    let after = check(&admin);
    assert_eq!(after["total"], before["total"]);
    assert!(node.stop().success());
}
