//! Helpers for tests that run the real `ebill-node` and `ebill` binaries on loopback, or
//! (`netns`) in network namespaces of their own.
#![allow(
    dead_code,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod duckdb;
pub mod netns;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long a node may take to start (the bound, not a guess: the test waits for the
/// node's own "ready" line and fails after this).
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// Declared hours of an issuer (for `[audit.declared_hours]`) that exclude the current
/// time in China: from two to three hours from now.
pub fn hours_excluding_now() -> String {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let h = (now_s / 3600 + 8) % 24;
    format!("{:02}:00-{:02}:00", (h + 2) % 24, (h + 3) % 24)
}

/// A free loopback port, picked by the OS.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `ebill` client under test: client/src/main.rs, built by this package
/// (tests/Cargo.toml says why under another name).
pub fn ebill_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ebill-under-test"))
}

/// The `ebill-node` under test: node/src/main.rs, built by this package.
pub fn node_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ebill-node-under-test"))
}

/// A running `ebill-node`, stopped (SIGKILL) when dropped if still running.
pub struct Node {
    child: Option<Child>,
    pub url: String,
    lines: Receiver<String>,
    pub log: Vec<String>,
}

impl Node {
    /// Starts `ebill-node --dev` on a free port with its data in `data`.
    pub fn start_dev(data: &Path) -> Node {
        let port = free_port();
        let args = vec![
            "--dev".to_string(),
            "--data".into(),
            data.display().to_string(),
            "--api".into(),
            format!("127.0.0.1:{port}"),
        ];
        Self::start(&args, port)
    }

    /// Starts `ebill-node --dev` with its data in `data`, its API and the operator's
    /// listener (`--admin-api`) on free ports, and `extra` flags (a `--config`); returns
    /// the node and the operator's URL.
    pub fn start_dev_with_admin(data: &Path, extra: &[String]) -> (Node, String) {
        let port = free_port();
        let admin_port = free_port();
        let mut args = vec!["--dev".to_string()];
        args.extend(extra.iter().cloned());
        args.extend([
            "--data".into(),
            data.display().to_string(),
            "--api".into(),
            format!("127.0.0.1:{port}"),
            "--admin-api".into(),
            format!("127.0.0.1:{admin_port}"),
        ]);
        (
            Self::start(&args, port),
            format!("http://127.0.0.1:{admin_port}"),
        )
    }

    /// Starts `ebill-node` with `args`; `port` is its API port.
    pub fn start(args: &[String], port: u16) -> Node {
        Self::spawn(args, format!("http://127.0.0.1:{port}"))
    }

    /// Starts `ebill-node --config CONFIG` (a node of `ebill genesis init`); its API URL
    /// comes from the config's `api`.
    pub fn start_config(config: &Path) -> Node {
        Self::start_config_with(config, &[])
    }

    /// Starts `ebill-node --config CONFIG` with more flags (flags override the file).
    pub fn start_config_with(config: &Path, extra: &[String]) -> Node {
        let text = std::fs::read_to_string(config)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", config.display()));
        let table: toml::Table = toml::from_str(&text).unwrap();
        let api = table["api"].as_str().expect("api in the node config");
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend(extra.iter().cloned());
        Self::spawn(&args, format!("http://{api}"))
    }

    /// Starts `ebill-node` with `args`, serving its API at `url`; returns once the node
    /// has logged "ebill-node ready".
    pub fn spawn(args: &[String], url: String) -> Node {
        Self::spawn_under(&[], args, url)
    }

    /// Starts `ebill-node` with `args` under the command `wrapper` (for example
    /// `["ip", "netns", "exec", NAMESPACE]`, which execs the node in its place, so that
    /// the child is the node itself); with an empty `wrapper`, the node directly.
    /// Returns once the node has logged "ebill-node ready".
    pub fn spawn_under(wrapper: &[String], args: &[String], url: String) -> Node {
        let bin = node_bin();
        let mut command = match wrapper.split_first() {
            None => Command::new(bin),
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
        };
        let mut child = command
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ebill-node");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            child: Some(child),
            url,
            lines: rx,
            log: Vec::new(),
        };
        node.wait_for_line("ebill-node ready", START_DEADLINE);
        node
    }

    /// Waits until the node logs a line containing `needle`.
    pub fn wait_for_line(&mut self, needle: &str, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.log.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!(
                    "node did not log {needle:?} within {deadline:?}; its log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Moves every line logged so far (without waiting) into `log`.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    /// Whether the node has logged a line containing `needle` so far.
    pub fn logged(&mut self, needle: &str) -> bool {
        self.drain();
        self.log.iter().any(|l| l.contains(needle))
    }

    /// The lines logged so far that contain `needle`.
    pub fn lines_with(&mut self, needle: &str) -> Vec<String> {
        self.drain();
        self.log
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Whether the process is still running (a node that stops by itself has failed).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        child.wait().unwrap()
    }

    /// Kills with SIGKILL.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the `ebill` client against `node_url` with `--json`.
pub fn ebill(node_url: &str, args: &[&str]) -> Output {
    Command::new(ebill_bin())
        .arg("--node")
        .arg(node_url)
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ebill")
}

/// The JSON a client run printed on stdout.
pub fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ebill printed no JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What `ebill genesis init` made.
pub struct GenesisInit {
    /// Its JSON answer (`nodes`, `issuers`, `reimbursers`, ...).
    pub answer: serde_json::Value,
    /// The genesis file.
    pub genesis_path: PathBuf,
    /// The genesis, as JSON.
    pub genesis: serde_json::Value,
}

/// `ebill genesis init --out DIR` with more flags (`--validators 4`, ...): fails the test
/// if it fails.
pub fn genesis_init(dir: &Path, flags: &[&str]) -> GenesisInit {
    let mut args = vec!["genesis", "init"];
    args.extend_from_slice(flags);
    let out_dir = dir.to_str().unwrap();
    args.extend(["--out", out_dir]);
    // No node is asked: genesis init works offline.
    let out = ebill("http://127.0.0.1:1", &args);
    assert!(
        out.status.success(),
        "genesis init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = json_of(&out);
    let genesis_path = PathBuf::from(answer["genesis"].as_str().unwrap());
    let genesis = serde_json::from_str(&std::fs::read_to_string(&genesis_path).unwrap()).unwrap();
    GenesisInit {
        answer,
        genesis_path,
        genesis,
    }
}

/// The JSON an `ebill` command printed, after it succeeded (fails with both streams).
#[track_caller]
pub fn ok(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stdout: {} stderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(out)
}

/// A small HTTP client that treats every status as an answer.
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Self {
            agent,
            base: base.to_owned(),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    }

    /// Like [`Http::new`], with another bound on each whole request.
    pub fn with_timeout(base: &str, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self {
            agent,
            base: base.to_owned(),
        }
    }

    /// `GET`; a transport failure (refused, reset, timed out) is an `Err`, not a panic.
    pub fn try_get(&self, path: &str) -> Result<(u16, String), String> {
        let mut r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| e.to_string())?;
        let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((r.status().as_u16(), body))
    }

    /// `POST` of a JSON body; a transport failure is an `Err`, not a panic.
    pub fn try_post(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        let mut r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| e.to_string())?;
        let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
        Ok((r.status().as_u16(), body))
    }
}
