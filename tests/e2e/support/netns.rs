//! Private network namespaces for tests that run real processes on a real (virtual)
//! network: a "hub" namespace holding a bridge, and one namespace per node, joined to
//! the bridge by a veth pair. Everything is made inside namespaces this module creates
//! (named after the test's pid, so two runs never share one): nothing in the namespace
//! the test was started in is touched, and [`Lab::teardown`] (also run on drop, so on a
//! panic too) kills every process left in them and deletes them, which removes their
//! veths and the bridge with them.
//!
//! Addresses are fixed, which is safe only because they exist nowhere but in these
//! namespaces: node `i` is `10.77.0.(i+1)` on its `eth0`, the hub's bridge `br0` is
//! `10.77.0.254` (a test process run inside the hub reaches every node through it).
//!
//! Faults between nodes are made with iproute2 alone:
//! - a cut of the directed link from node `i` to node `j` (a partition, a flapping link,
//!   a burst of loss) drops, at the bridge, every IP packet that node `i` sends to node
//!   `j`: a `u32` filter on the ingress of `i`'s port in the hub redirects them
//!   (`mirred`) into a veth pair that leads nowhere. The sender's stack sees nothing, as
//!   with a cut cable: its TCP connections stay open and retransmit with exponential
//!   back-off, and resume at the next retransmission after the cut ends. The client's
//!   traffic (to and from the hub's address) is never cut. Where the kernel lacks those
//!   tc parts, a cut is a `blackhole` route in the sender's namespace instead (the
//!   sender's stack then knows, and TCP retries every 500 ms without back-off);
//!   [`Lab::cuts_at_bridge`] says which;
//! - delay, jitter, loss and reordering are a `netem` qdisc on a node's `eth0`, where the
//!   kernel has `sch_netem` ([`Lab::netem_available`] says whether it has).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The address of node `i` inside the lab.
pub fn node_ip(i: usize) -> String {
    format!("10.77.0.{}", i + 1)
}

/// The hub's address (the bridge), where a test process run in the hub sits.
pub const HUB_IP: &str = "10.77.0.254";

/// Bound on one `ip`/`tc` command.
const COMMAND_DEADLINE: Duration = Duration::from_secs(20);
/// Bound on the processes of a namespace dying after SIGKILL.
const KILL_DEADLINE: Duration = Duration::from_secs(20);

/// Runs a command to its end (bounded by [`COMMAND_DEADLINE`]; killed after it);
/// `Ok(stdout)` if it exits 0, otherwise `Err` with the command, its status and stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let shown = format!("{program} {}", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{shown}`: cannot start: {e}"))?;
    let end = Instant::now() + COMMAND_DEADLINE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{shown}` did not finish within {COMMAND_DEADLINE:?}"
                ));
            }
            Err(e) => return Err(format!("`{shown}`: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{shown}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS`.
fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

/// The namespaces of one test run.
pub struct Lab {
    /// The hub namespace (the bridge, and the test process itself when run inside).
    pub hub: String,
    /// One namespace per node.
    pub nodes: Vec<String>,
    /// Namespaces this value made and must delete (empty for a [`Lab::attach`]ed one).
    made: Vec<String>,
    /// Whether cuts are made at the bridge (tc) rather than by blackhole routes.
    bridge_cuts: bool,
}

impl Lab {
    /// Makes the hub, `n` node namespaces and the links between them, all named
    /// `{prefix}h`, `{prefix}0`, `{prefix}1`, ... On any failure everything made so far
    /// is removed again and the error says which command failed.
    pub fn create(prefix: &str, n: usize) -> Result<Lab, String> {
        let mut lab = Lab {
            hub: format!("{prefix}h"),
            nodes: (0..n).map(|i| format!("{prefix}{i}")).collect(),
            made: Vec::new(),
            bridge_cuts: false,
        };
        match lab.build() {
            Ok(()) => Ok(lab),
            Err(e) => {
                let left = lab.teardown();
                if left.is_empty() {
                    Err(e)
                } else {
                    Err(format!(
                        "{e}; and removing what was made: {}",
                        left.join("; ")
                    ))
                }
            }
        }
    }

    fn build(&mut self) -> Result<(), String> {
        for name in std::iter::once(&self.hub).chain(&self.nodes) {
            if Path::new("/run/netns").join(name).exists() {
                return Err(format!("namespace {name} exists already"));
            }
        }
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        self.made.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_IP}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, ns) in self.nodes.clone().iter().enumerate() {
            ip(&["netns", "add", ns])?;
            self.made.push(ns.clone());
            let hub_end = format!("v{i}");
            // Both ends are created inside the lab: one in the hub, one in the node.
            ip(&[
                "-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &hub_end, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &hub_end, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", node_ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        self.bridge_cuts = self.make_bridge_cuts().is_ok();
        Ok(())
    }

    /// The sink of cut packets (a veth pair in the hub, on no bridge, with no address:
    /// what enters it is dropped as not for this host) and an ingress qdisc on every
    /// node's port to hang the cuts on.
    fn make_bridge_cuts(&self) -> Result<(), String> {
        let hub = &self.hub;
        ip(&[
            "-n", hub, "link", "add", "sink0", "type", "veth", "peer", "name", "sink1",
        ])?;
        ip(&["-n", hub, "link", "set", "sink0", "up"])?;
        ip(&["-n", hub, "link", "set", "sink1", "up"])?;
        for i in 0..self.nodes.len() {
            run(
                "tc",
                &[
                    "-n",
                    hub,
                    "qdisc",
                    "add",
                    "dev",
                    &format!("v{i}"),
                    "ingress",
                ],
            )?;
        }
        // Try one cut and its removal: the kernel may lack u32 or mirred.
        self.bridge_cut(0, 1, true)?;
        self.bridge_cut(0, 1, false)
    }

    /// Whether cuts are made at the bridge (see the module's comment).
    pub fn cuts_at_bridge(&self) -> bool {
        self.bridge_cuts
    }

    /// A lab made by another process, from its [`Lab::describe`]: this value deletes
    /// nothing.
    pub fn attach(description: &str) -> Lab {
        let (how, names) = description
            .split_once(':')
            .unwrap_or(("routes", description));
        let mut names = names.split(',').map(str::to_owned);
        let hub = names.next().unwrap_or_default();
        Lab {
            hub,
            nodes: names.collect(),
            made: Vec::new(),
            bridge_cuts: how == "bridge",
        }
    }

    /// The names and how cuts are made, for [`Lab::attach`] in another process.
    pub fn describe(&self) -> String {
        let names = std::iter::once(&self.hub)
            .chain(&self.nodes)
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        let how = if self.bridge_cuts { "bridge" } else { "routes" };
        format!("{how}:{names}")
    }

    /// The command that runs a program inside node `i`'s namespace.
    pub fn exec_in(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec", &self.nodes[i]]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// The command that runs a program inside the hub.
    pub fn exec_in_hub(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.hub]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    /// Drops (`on`) or stops dropping every packet node `from` sends to node `to`.
    pub fn cut(&self, from: usize, to: usize, on: bool) -> Result<(), String> {
        if self.bridge_cuts {
            self.bridge_cut(from, to, on)
        } else {
            self.blackhole(from, to, on)
        }
    }

    /// A cut at the bridge: on `from`'s port, packets to `to` go into the sink.
    fn bridge_cut(&self, from: usize, to: usize, on: bool) -> Result<(), String> {
        let dev = format!("v{from}");
        // One filter per destination, in hash table 800 (u32 handles are hex).
        let handle = format!("800::{:x}", to + 1);
        let mut args = vec![
            "-n", &self.hub, "filter", "", "dev", &dev, "parent", "ffff:", "protocol", "ip",
            "prio", "10", "handle", &handle, "u32",
        ];
        if on {
            args[3] = "replace";
            let dst = format!("{}/32", node_ip(to));
            let rest = [
                "match", "ip", "dst", &dst, "action", "mirred", "egress", "redirect", "dev",
                "sink0",
            ];
            args.extend(rest);
            run("tc", &args).map(drop)
        } else {
            args[3] = "del";
            run("tc", &args).map(drop)
        }
    }

    /// A cut by a blackhole route in `from`'s namespace.
    fn blackhole(&self, from: usize, to: usize, on: bool) -> Result<(), String> {
        let dst = format!("{}/32", node_ip(to));
        let ns = &self.nodes[from];
        if on {
            ip(&["-n", ns, "route", "replace", "blackhole", &dst]).map(drop)
        } else {
            ip(&["-n", ns, "route", "del", "blackhole", &dst]).map(drop)
        }
    }

    /// Sets (`Some(spec)`, e.g. `"delay 20ms 10ms loss 1%"`) or removes (`None`) the
    /// netem qdisc on node `i`'s `eth0`.
    pub fn netem(&self, i: usize, spec: Option<&str>) -> Result<(), String> {
        let ns = &self.nodes[i];
        match spec {
            Some(spec) => {
                let mut args = vec!["-n", ns, "qdisc", "replace", "dev", "eth0", "root", "netem"];
                args.extend(spec.split_whitespace());
                run("tc", &args).map(drop)
            }
            None => run("tc", &["-n", ns, "qdisc", "del", "dev", "eth0", "root"]).map(drop),
        }
    }

    /// Whether this kernel has netem: tries it on node 0's `eth0` and removes it again.
    /// `Err` says why not (typically "Specified qdisc kind is unknown").
    pub fn netem_available(&self) -> Result<(), String> {
        self.netem(0, Some("delay 1ms"))?;
        self.netem(0, None)
    }

    /// Pids of the processes in namespace `ns`.
    fn pids(ns: &str) -> Result<Vec<String>, String> {
        Ok(ip(&["netns", "pids", ns])?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }

    /// Kills (SIGKILL, by pid) every process left in the namespaces this value made,
    /// waits until none is left, then deletes the namespaces (and so their veths and the
    /// bridge). Returns what could not be done; safe to call twice.
    pub fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for ns in &self.made {
            match Self::pids(ns) {
                Ok(pids) => {
                    for pid in &pids {
                        let _ = run("kill", &["-KILL", pid]);
                    }
                    let end = Instant::now() + KILL_DEADLINE;
                    loop {
                        match Self::pids(ns) {
                            Ok(left) if left.is_empty() => break,
                            Ok(left) if Instant::now() >= end => {
                                problems.push(format!(
                                    "processes {left:?} still in {ns} {KILL_DEADLINE:?} after SIGKILL"
                                ));
                                break;
                            }
                            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                            Err(e) => {
                                problems.push(e);
                                break;
                            }
                        }
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        // Nodes first, then the hub (its bridge ports go with the node ends).
        while let Some(ns) = self.made.pop() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                problems.push(e);
            }
            if Path::new("/run/netns").join(&ns).exists() {
                problems.push(format!(
                    "namespace {ns} is still there after `ip netns del`"
                ));
            }
        }
        problems
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in self.teardown() {
            eprintln!("netns teardown: {p}");
        }
    }
}
