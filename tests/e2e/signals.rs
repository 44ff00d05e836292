//! A node stops on SIGTERM even when nobody reads its logs any more.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The reader of a node's stderr goes away (a supervisor or a `| head` that exited):
/// tracing used to report the failed write with eprintln!, which panics on a closed
/// pipe, and the node then hung on SIGTERM instead of stopping.
#[test]
fn stops_on_sigterm_after_its_log_reader_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut child = Command::new(support::node_bin())
        .args(["--dev", "--data"])
        .arg(tmp.path().join("data"))
        .args(["--api", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Reads until the node is up; a node that exits instead ends the stream.
    let ready = lines.any(|l| l.is_ok_and(|l| l.contains("ebill-node ready")));
    assert!(ready, "the node did not start");
    drop(lines);

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the node exited with {status}");
}
