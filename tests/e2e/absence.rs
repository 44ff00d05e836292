//! Absence proofs end to end: the real `ebill-node --dev --admin-api` on free loopback
//! ports and the real `ebill` binary. A number never issued yields a proof that
//! `ebill verify-proof` accepts offline (JSON and binary); an issued bill yields
//! `bill_exists`; the public API has no such route; `--min-height` applies.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ebill_types::dev;
use support::{Http, Node, ebill, json_of};

#[test]
fn absence_proofs_come_from_the_admin_listener_only_and_verify_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    let (mut node, admin) = Node::start_dev_with_admin(&data, &[]);
    assert!(
        node.logged(&admin),
        "the ready line names the admin API: {:?}",
        node.log
    );
    let url = node.url.clone();
    let genesis = support::repo_root().join("genesis/dev.json");

    let out = ebill(&url, &["dev-keys", "--out", keys.to_str().unwrap()]);
    assert!(out.status.success());
    let bill = dev::sample_bill(1, 1250, 0);
    let bill_path = tmp.path().join("bill-1.json");
    std::fs::write(&bill_path, serde_json::to_string_pretty(&bill).unwrap()).unwrap();
    let out = ebill(
        &url,
        &[
            "issue",
            "--key",
            keys.join("issuer.key").to_str().unwrap(),
            "--now",
            bill_path.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json_of(&out)["status"], "committed");

    // A number never issued: proved absent, and the proof verifies offline.
    for (file, binary) in [("absent.json", false), ("absent.bin", true)] {
        let path = tmp.path().join(file);
        let mut a = vec![
            "proof-absent",
            "33010126",
            "0000000777",
            "-o",
            path.to_str().unwrap(),
        ];
        if binary {
            a.push("--binary");
        }
        let out = ebill(&admin, &a);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let got = json_of(&out);
        assert!(got["state_height"].as_u64().unwrap() >= 1, "{got}");

        let out = ebill(
            &url,
            &[
                "verify-proof",
                path.to_str().unwrap(),
                "--genesis",
                genesis.to_str().unwrap(),
                "--max-age",
                "3600",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let v = json_of(&out);
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["absent"], true, "{v}");
        assert_eq!(v["number"], "0000000777", "{v}");
        assert!(v["state_height"].as_u64().unwrap() >= 1, "{v}");

        // A desk that wants a newer state refuses it.
        let out = ebill(
            &url,
            &[
                "verify-proof",
                path.to_str().unwrap(),
                "--genesis",
                genesis.to_str().unwrap(),
                "--min-height",
                "1000000",
            ],
        );
        assert!(!out.status.success());
        assert_eq!(json_of(&out)["error"]["code"], "stale_state");
    }

    // The human summary says what is proved.
    let out = std::process::Command::new(support::ebill_bin())
        .args([
            "verify-proof",
            tmp.path().join("absent.json").to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no bill 33010126/0000000777 exists as of height"),
        "{text}"
    );

    // A tampered proof is refused, naming the link.
    let text = std::fs::read_to_string(tmp.path().join("absent.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["bill"]["number"] = "0000000001".into();
    let tampered = tmp.path().join("tampered.json");
    std::fs::write(&tampered, doc.to_string()).unwrap();
    let out = ebill(
        &url,
        &[
            "verify-proof",
            tampered.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert_eq!(json_of(&out)["error"]["code"], "state_proof");

    // An issued bill: no absence proof.
    let out = ebill(
        &admin,
        &[
            "proof-absent",
            "33010126",
            "0000000001",
            "-o",
            tmp.path().join("no.json").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert_eq!(json_of(&out)["error"]["code"], "bill_exists");
    assert!(!tmp.path().join("no.json").exists());

    // The public API serves no absence proof, for an issued bill or not.
    let http = Http::new(&url);
    for n in ["0000000001", "0000000777"] {
        let (status, body) = http.get(&format!("/admin/v1/absent/33010126/{n}"));
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("\"not_found\""), "{body}");
    }
    // And the admin listener serves nothing of the public API.
    let (status, _) = Http::new(&admin).get("/v1/status");
    assert_eq!(status, 404);

    assert!(node.stop().success());
}
