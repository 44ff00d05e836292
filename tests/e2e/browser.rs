//! The taxpayers' pages in a real browser: Debian's headless Chromium driven by
//! playwright-core (tests/browser/run.mjs) against a real `ebill-node --dev`.
//!
//! Types a bill into the form and reads its status; sees one 未查到 page for a wrong
//! check code and an unknown bill; runs the in-browser proof check on the good bundle
//! and on a tampered one (the page names the broken link); runs the browser's verifier
//! and the Rust `verify_bundle` on the same good and tampered bundles and requires the
//! same verdict from both; checks the offline page with the network cut, as served and
//! saved as one file; decodes the QR code with zbarimg from the QR route's SVG (rendered
//! by Chromium), from a screenshot of the page, and from the print page printed to PDF
//! and rasterised at 150 dpi by pdftoppm; saves screenshots at 375 and 1280 px (copied to
//! `$EBILL_SCREENSHOT_DIR` when set); and decodes the PNG of `ebill qr -o`.
//!
//! Needs node, Chromium, zbarimg, pdftoppm and `npm ci` in tests/browser (`.ci/run`
//! installs them): under CI=true a missing one fails the test, elsewhere it is skipped
//! with a loud message.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ebill_types::proof::{ProofBundle, verify_bundle};
use ebill_types::receipt_link::{bill_digest, qr_url};
use ebill_types::{BillId, CheckCode, Genesis, TxBody, dev};
use serde_json::{Value, json};
use support::{Http, Node, ebill, json_of, repo_root};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The tools the test needs, or why it cannot run.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    let on_path = |name: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for tool in ["node", "zbarimg", "pdftoppm"] {
        if !on_path(tool) {
            missing.push(tool.to_owned());
        }
    }
    if !Path::new(CHROMIUM).exists() {
        missing.push(CHROMIUM.to_owned());
    }
    let pw = repo_root().join("tests/browser/node_modules/playwright-core");
    if !pw.exists() {
        missing.push(format!("{} (run npm ci in tests/browser)", pw.display()));
    }
    missing
}

/// Decodes the QR codes in `image` with zbarimg: the texts found.
fn zbar(image: &Path) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zbarimg found no QR code in {}: {}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The Rust verifier's verdict on a bundle's JSON text: `ok:STATUS` or the link.
fn rust_verdict(text: &str, genesis: &Genesis) -> Value {
    match ProofBundle::from_json(text) {
        Err(e) => json!({"ok": false, "link": e.link.as_str()}),
        Ok(b) => match verify_bundle(&b, genesis) {
            Ok(v) => json!({"ok": true, "status": v.status.as_str()}),
            Err(e) => json!({"ok": false, "link": e.link.as_str()}),
        },
    }
}

/// Flips the last hex digit of a string value.
fn flip_hex(v: &mut Value) {
    let s = v.as_str().unwrap().to_owned();
    let last = s.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    *v = Value::String(format!("{}{flipped}", &s[..s.len() - 1]));
}

/// The good bundle and tampered ones, each to a file: name -> (path, what broke).
fn bundles(dir: &Path, good: &Value) -> Vec<(String, PathBuf)> {
    let mut variants: Vec<(&str, Value)> = vec![("good", good.clone())];
    let mut v = good.clone();
    v["entries"][0]["tx"]["tx"]["body"]["items"][0]["name"] = json!("篡改的项目");
    variants.push(("merkle_path", v));
    let mut v = good.clone();
    flip_hex(&mut v["entries"][0]["certificate"]["signatures"][0]["signature"]);
    variants.push(("certificate", v));
    let mut v = good.clone();
    flip_hex(&mut v["entries"][0]["header"]["prev_hash"]);
    variants.push(("header", v));
    let mut v = good.clone();
    flip_hex(&mut v["state"]["record"]);
    variants.push(("state_proof", v));
    let mut v = good.clone();
    flip_hex(&mut v["state"]["certificate"]["signatures"][0]["signature"]);
    variants.push(("state_certificate", v));
    let mut v = good.clone();
    flip_hex(&mut v["genesis_hash"]);
    variants.push(("genesis_hash", v));
    let mut v = good.clone();
    v["version"] = json!(4);
    variants.push(("version", v));
    let mut v = good.clone();
    v["bill"]["number"] = json!("0000000002");
    variants.push(("bill_id", v));
    variants
        .into_iter()
        .map(|(name, v)| {
            let path = dir.join(format!("{name}.proof.json"));
            std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
            (name.to_owned(), path)
        })
        .collect()
}

#[test]
fn taxpayer_pages_in_headless_chromium() {
    let missing = missing_tools();
    if !missing.is_empty() {
        let msg = format!("browser test needs: {}", missing.join(", "));
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg} (CI=true: .ci/run must install them)");
        }
        eprintln!("\n\n!!!!! SKIPPED taxpayer_pages_in_headless_chromium: {msg} !!!!!\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let node = Node::start_dev(&tmp.path().join("data"));
    let url = node.url.clone();
    let http = Http::new(&url);
    let keys = tmp.path().join("keys");
    assert!(
        ebill(&url, &["dev-keys", "--out", keys.to_str().unwrap()])
            .status
            .success()
    );
    let bill = dev::sample_bill(1, 1250, 0);
    let bill_path = tmp.path().join("bill.json");
    std::fs::write(&bill_path, serde_json::to_string(&bill).unwrap()).unwrap();
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
    let check = json_of(&out)["check_code"].as_str().unwrap().to_owned();
    let id = bill.id();
    let (code, number) = (id.code.to_string(), id.number.to_string());

    let (status, bundle_text) = http.get(&format!(
        "/v1/bills/{code}/{number}/proof?check_code={check}"
    ));
    assert_eq!(status, 200, "{bundle_text}");
    let (status, genesis_text) = http.get("/v1/genesis");
    assert_eq!(status, 200);
    let genesis: Genesis = serde_json::from_str(&genesis_text).unwrap();
    let genesis_file = tmp.path().join("genesis.json");
    std::fs::write(&genesis_file, &genesis_text).unwrap();

    let good: Value = serde_json::from_str(&bundle_text).unwrap();
    let files = bundles(tmp.path(), &good);
    let page_tampered = std::fs::read_to_string(&files[2].1).unwrap();
    let wrong_check = if check == "aaaaaa" {
        "bbbbbb"
    } else {
        "aaaaaa"
    };
    let out_dir = tmp.path().join("shots");
    std::fs::create_dir_all(&out_dir).unwrap();
    let cfg = json!({
        "chromium": CHROMIUM,
        "base": url,
        "code": code,
        "number": number,
        "check": check,
        "wrong_check": wrong_check,
        "unknown_number": "0000009999",
        "genesis_file": genesis_file,
        "bundles": files.iter().map(|(n, p)| (n.clone(), json!(p))).collect::<serde_json::Map<_, _>>(),
        "tampered_for_page": page_tampered,
        "out_dir": out_dir,
    });
    let cfg_path = tmp.path().join("config.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();

    let script = repo_root().join("tests/browser/run.mjs");
    let run = Command::new("node")
        .arg(&script)
        .arg(&cfg_path)
        .current_dir(repo_root().join("tests/browser"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the browser script failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let found: Value = serde_json::from_slice(&run.stdout).unwrap();
    eprintln!("browser findings: {found:#}");

    // The form.
    assert_eq!(found["form_banner"], "真实有效");
    assert!(
        found["form_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/b/{code}/{number}/{check}"))
    );
    assert_eq!(found["short_code_stays_on_form"], true);
    assert_eq!(found["short_code_invalid"], true);
    // One 未查到 page.
    assert_eq!(found["not_found_banner"], "未查到");
    assert_eq!(found["not_found_same"], true);
    // The in-browser check.
    assert_eq!(found["good_state"], "pass", "{}", found["good_text"]);
    let text = found["good_text"].as_str().unwrap();
    assert!(
        text.contains("1/1 个验证节点签名") && text.contains("状态证明"),
        "{text}"
    );
    assert!(text.contains(&genesis.hash().to_hex()), "{text}");
    assert_eq!(found["tampered_state"], "fail");
    assert_eq!(
        found["tampered_link"], "certificate",
        "{}",
        found["tampered_text"]
    );
    eprintln!(
        "in-browser check of the good bundle: {:.1} ms",
        found["good_ms"].as_f64().unwrap()
    );

    // Both verifiers agree on every bundle.
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let rust = rust_verdict(&text, &genesis);
        let js = &found["js_verdicts"][name];
        assert_eq!(rust["ok"], js["ok"], "{name}: rust {rust} js {js}");
        if rust["ok"] == true {
            assert_eq!(rust["status"], js["status"], "{name}");
            assert_eq!(name, "good");
        } else {
            assert_eq!(rust["link"], js["link"], "{name}: rust {rust} js {js}");
        }
    }
    assert_eq!(found["js_verdicts"]["merkle_path"]["link"], "merkle_path");
    assert_eq!(found["js_verdicts"]["state_proof"]["link"], "state_proof");

    // The offline page, network cut.
    assert_eq!(
        found["offline_served"]["state"], "pass",
        "{}",
        found["offline_served"]
    );
    assert_eq!(
        found["offline_saved"]["state"], "pass",
        "{}",
        found["offline_saved"]
    );
    assert_eq!(found["offline_saved_tampered_link"], "certificate");

    // The QR code decodes to the page's link: from the SVG, the page and the print PDF.
    let digest = bill_digest(&issued_bill(&good, &id));
    let want = qr_url(&url, &id, &CheckCode::parse(&check).unwrap(), &digest);
    assert!(want.starts_with("HTTP://127.0.0.1:"), "{want}");
    assert_eq!(zbar(&out_dir.join("qr-svg.png")), vec![want.clone()]);
    assert_eq!(zbar(&out_dir.join("page-qr.png")), vec![want.clone()]);
    let ppm = Command::new("pdftoppm")
        .args(["-r", "150", "-png"])
        .arg(out_dir.join("print.pdf"))
        .arg(out_dir.join("print"))
        .status()
        .unwrap();
    assert!(ppm.success());
    let first_page = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("print-") && n.ends_with(".png"))
        })
        .min()
        .expect("pdftoppm wrote no page");
    assert_eq!(zbar(&first_page), vec![want.clone()]);
    // `ebill qr` draws the same code, as PNG and SVG files and in the terminal.
    for file in ["cli-qr.png", "cli-qr.svg"] {
        let path = out_dir.join(file);
        let out = ebill(
            &url,
            &["qr", &code, &number, &check, "-o", path.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(json_of(&out)["url"], want.as_str());
    }
    assert_eq!(zbar(&out_dir.join("cli-qr.png")), vec![want.clone()]);
    let svg = std::fs::read_to_string(out_dir.join("cli-qr.svg")).unwrap();
    assert!(svg.contains("<svg"));
    let term = Command::new(support::ebill_bin())
        .args(["--node", &url, "qr", &code, &number, &check])
        .output()
        .unwrap();
    assert!(term.status.success());
    let text = String::from_utf8(term.stdout).unwrap();
    assert!(text.contains('█') && text.contains(&want), "{text}");
    // The link the QR code carries opens the page and matches the bill.
    let (status, page) = http.get(&want[want.find("/B/").unwrap()..]);
    assert_eq!(status, 200);
    assert!(page.contains("二维码所载摘要与本票据内容一致"));

    // Screenshots.
    for w in [375, 1280] {
        let shot = out_dir.join(format!("result-{w}.png"));
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "{}",
            shot.display()
        );
        if let Ok(dir) = std::env::var("EBILL_SCREENSHOT_DIR") {
            std::fs::copy(&shot, Path::new(&dir).join(format!("result-{w}.png"))).unwrap();
        }
    }
    node.stop();
}

/// The bill of the bundle's IssueBill entry.
fn issued_bill(bundle: &Value, id: &BillId) -> ebill_types::Bill {
    let b = ProofBundle::from_json(&bundle.to_string()).unwrap();
    b.entries
        .iter()
        .find_map(|e| match &e.tx.tx.body {
            TxBody::IssueBill(bill) if bill.id() == *id => Some(bill.clone()),
            _ => None,
        })
        .unwrap()
}
