//! Starts and stops an `ebill-node` for a measurement, on a free loopback port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A running node, killed on drop if still running.
pub struct RunningNode {
    child: Option<Child>,
    /// Its API base URL.
    pub url: String,
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `bin --dev --data data --api 127.0.0.1:PORT` and waits for its ready line.
/// Its verification pages' lookup limits are raised (a config file beside `data`): the
/// benchmark's load comes from one address and looks bills up many times.
pub fn start_dev(bin: &Path, data: &Path) -> Result<RunningNode> {
    let port = free_port()?;
    let config = data.with_extension("bench.toml");
    std::fs::write(
        &config,
        "[http]\nlookups_per_bill_per_day = 4000000000\nlookups_per_client_per_minute = 4000000000\n",
    )?;
    let args: Vec<String> = vec![
        "--config".into(),
        config.display().to_string(),
        "--dev".into(),
        "--data".into(),
        data.display().to_string(),
        "--api".into(),
        format!("127.0.0.1:{port}"),
        "--heartbeat-ms".into(),
        "600000".into(),
    ];
    start(bin, &args, format!("http://127.0.0.1:{port}"))
}

/// Starts `bin --config config` (its API URL is `url`) and waits for its ready line.
pub fn start_config(bin: &Path, config: &Path, url: &str) -> Result<RunningNode> {
    let args = vec!["--config".to_string(), config.display().to_string()];
    start(bin, &args, url.to_owned())
}

fn start(bin: &Path, args: &[String], url: String) -> Result<RunningNode> {
    let mut child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn,ebill_node=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ebill-node ready") {
                let _ = tx.send(());
            }
        }
    });
    let node = RunningNode {
        child: Some(child),
        url,
    };
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        bail!("the node did not become ready within 60 s");
    }
    Ok(node)
}

impl RunningNode {
    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Peak resident memory (VmHWM) in MiB.
    pub fn peak_rss_mb(&self) -> Result<f64> {
        let pid = self.pid().context("node not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .context("no VmHWM")?;
        let kb: f64 = line
            .split_whitespace()
            .nth(1)
            .context("VmHWM format")?
            .parse()?;
        Ok(kb / 1024.0)
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `name` (a binary) next to this one, unless given.
pub fn sibling_bin(given: Option<PathBuf>, name: &str) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name(name);
    if !p.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p ebill-node) or pass --node-bin",
            p.display()
        );
    }
    Ok(p)
}
