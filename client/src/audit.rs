//! `ebill audit stats|bills|bill|anomalies` and `ebill watch`: a regulator's commands
//! against an observer's audit API (the operator's listener, `--admin-api`; give its
//! URL as `--node`). A table by default, the API's JSON unchanged with `--json`.

use std::io::{BufRead, BufReader, Write};

use clap::Subcommand;
use serde_json::Value;

use crate::CliError;
use crate::http::Node;

/// Most pages `ebill audit bills --all` follows.
pub const MAX_PAGES: usize = 1_000;

/// `ebill audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Counts and amounts (integer fen) of bills issued, red-reversed, reimbursed,
    /// exchanged for paper, locked and still open, grouped.
    Stats {
        /// issuer, kind, day or month (days and months in China time).
        #[arg(long, default_value = "issuer")]
        group_by: String,
        /// From (inclusive): RFC 3339 or YYYY-MM-DD, on the block time of the issue.
        #[arg(long)]
        from: Option<String>,
        /// To (exclusive).
        #[arg(long)]
        to: Option<String>,
    },
    /// Search bills (every filter optional).
    Bills {
        /// Issuer's credit code.
        #[arg(long)]
        issuer: Option<String>,
        /// Reimbursing unit's credit code (bills it locked or reimbursed).
        #[arg(long)]
        reimburser: Option<String>,
        /// Bill kind (medical_outpatient, non_tax_general, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Status now: issued, locked, reimbursed, reversed, paper_exchanged.
        #[arg(long)]
        status: Option<String>,
        /// From (inclusive): RFC 3339 or YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// To (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// Total at least, fen.
        #[arg(long)]
        min_total: Option<u64>,
        /// Total at most, fen.
        #[arg(long)]
        max_total: Option<u64>,
        /// Bills per page (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Start from this cursor (the `next_cursor` of an earlier page).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow the cursors to the last page.
        #[arg(long)]
        all: bool,
    },
    /// One bill in full: as issued (payer unmasked) and its whole history.
    Bill {
        /// Bill code.
        code: String,
        /// Bill number.
        number: String,
    },
    /// Hits of the open anomaly rules, each with its rule, version and evidence.
    Anomalies {
        /// Only this rule (see GET /admin/v1/rules).
        #[arg(long)]
        rule: Option<String>,
        /// From (inclusive): RFC 3339 or YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// To (exclusive).
        #[arg(long)]
        to: Option<String>,
    },
}

/// `?a=b&c=d` of the parameters that are set, percent-encoded.
fn query(params: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = writeln!(out);
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// Fen as yuan with two decimals, for the tables.
fn yuan(v: &Value) -> String {
    let fen = v.as_u64().unwrap_or(0);
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Runs an audit command against `node_url`.
pub fn run(node_url: &str, json_out: bool, cmd: &AuditCommand) -> Result<bool, CliError> {
    let node = Node::new(node_url)?;
    match cmd {
        AuditCommand::Stats { group_by, from, to } => {
            let q = query(&[
                ("group_by", Some(group_by.clone())),
                ("from", from.clone()),
                ("to", to.clone()),
            ]);
            let v = node.get(&format!("/admin/v1/stats{q}"))?.ok_json()?;
            if json_out {
                print_json(&v);
            } else {
                print_stats(&v);
            }
        }
        AuditCommand::Bills {
            issuer,
            reimburser,
            kind,
            status,
            from,
            to,
            min_total,
            max_total,
            limit,
            cursor,
            all,
        } => {
            let mut cursor = cursor.clone();
            let mut bills: Vec<Value> = Vec::new();
            let mut next: Option<String>;
            let mut pages = 0;
            loop {
                let q = query(&[
                    ("issuer", issuer.clone()),
                    ("reimburser", reimburser.clone()),
                    ("kind", kind.clone()),
                    ("status", status.clone()),
                    ("from", from.clone()),
                    ("to", to.clone()),
                    ("min_total", min_total.map(|n| n.to_string())),
                    ("max_total", max_total.map(|n| n.to_string())),
                    ("limit", Some(limit.to_string())),
                    ("cursor", cursor.clone()),
                ]);
                let v = node.get(&format!("/admin/v1/bills{q}"))?.ok_json()?;
                bills.extend(v["bills"].as_array().cloned().unwrap_or_default());
                next = v["next_cursor"].as_str().map(str::to_owned);
                pages += 1;
                if !*all || next.is_none() || pages == MAX_PAGES {
                    break;
                }
                cursor = next.clone();
            }
            if json_out {
                print_json(&serde_json::json!({"bills": bills, "next_cursor": next}));
            } else {
                println!(
                    "{:<8} {:<10} {:<18} {:<20} {:>12} {:<16} issued at",
                    "code", "number", "issuer", "kind", "total ¥", "status"
                );
                for b in &bills {
                    println!(
                        "{:<8} {:<10} {:<18} {:<20} {:>12} {:<16} {}",
                        s(&b["code"]),
                        s(&b["number"]),
                        s(&b["issuer"]),
                        s(&b["kind"]),
                        yuan(&b["total_fen"]),
                        s(&b["status"]),
                        s(&b["issued_at"])
                    );
                }
                println!("{} bills", bills.len());
                if let Some(c) = next {
                    println!("more: --cursor {c}");
                }
            }
        }
        AuditCommand::Bill { code, number } => {
            let v = node
                .get(&format!(
                    "/admin/v1/bills/{}/{}",
                    encode(code),
                    encode(number)
                ))?
                .ok_json()?;
            if json_out {
                print_json(&v);
            } else {
                let b = &v["bill"];
                println!(
                    "{}/{}  {}  {}  ¥{}  {}",
                    s(&b["code"]),
                    s(&b["number"]),
                    s(&b["issuer"]),
                    s(&b["kind"]),
                    s(&b["total"]),
                    s(&v["status"]["status"])
                );
                println!(
                    "  payer   {} {} ({})",
                    s(&b["payer"]["name"]),
                    s(&b["payer"]["id"]),
                    s(&b["payer"]["type"])
                );
                println!("  issued  {}", s(&b["issued_at"]));
                for h in v["history"].as_array().into_iter().flatten() {
                    println!(
                        "  h{:<8} {:<20} {}  tx {}",
                        h["height"],
                        s(&h["action"]),
                        s(&h["by"]),
                        s(&h["tx_id"])
                    );
                }
            }
        }
        AuditCommand::Anomalies { rule, from, to } => {
            let q = query(&[
                ("rule", rule.clone()),
                ("from", from.clone()),
                ("to", to.clone()),
            ]);
            let v = node.get(&format!("/admin/v1/anomalies{q}"))?.ok_json()?;
            if json_out {
                print_json(&v);
            } else {
                let hits = v["hits"].as_array().cloned().unwrap_or_default();
                for h in &hits {
                    let subject = match (h["bill"].is_object(), h["issuer"].as_str()) {
                        (true, _) => {
                            format!("{}/{}", s(&h["bill"]["code"]), s(&h["bill"]["number"]))
                        }
                        (false, Some(i)) => i.to_owned(),
                        (false, None) => "-".to_owned(),
                    };
                    println!(
                        "{} v{}  {}  {}",
                        s(&h["rule"]),
                        h["version"],
                        subject,
                        s(&h["detail"])
                    );
                    let ev: Vec<&str> = h["evidence"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    println!("    evidence ({}): {}", h["evidence_count"], ev.join(" "));
                }
                println!("{} hits at height {}", hits.len(), v["height"]);
            }
        }
    }
    Ok(true)
}

fn print_stats(v: &Value) {
    println!(
        "{:<20} {:>8} {:>14} {:>8} {:>8} {:>8} {:>8} {:>12} {:>7} {:>7} {:>7}",
        s(&v["group_by"]),
        "issued",
        "amount ¥",
        "reversed",
        "rate",
        "reimb.",
        "share",
        "median s",
        "paper",
        "locked",
        "open"
    );
    let groups = v["groups"].as_array().cloned().unwrap_or_default();
    for g in groups.iter().chain(std::iter::once(&v["total"])) {
        let median = g["median_ms_to_reimbursement"]
            .as_u64()
            .map_or("-".to_owned(), |ms| format!("{:.1}", ms as f64 / 1000.0));
        println!(
            "{:<20} {:>8} {:>14} {:>8} {:>7.1}% {:>8} {:>7.1}% {:>12} {:>7} {:>7} {:>7}",
            s(&g["key"]),
            g["issued"]["count"],
            yuan(&g["issued"]["amount_fen"]),
            g["reversed"]["count"],
            g["reversed_rate"].as_f64().unwrap_or(0.0) * 100.0,
            g["reimbursed"]["count"],
            g["reimbursed_share"].as_f64().unwrap_or(0.0) * 100.0,
            median,
            g["paper_exchanged"]["count"],
            g["locked"]["count"],
            g["open"]["count"]
        );
    }
}

/// `ebill watch --issuer CODE`: prints each bill issued under the code as its block
/// becomes final (one JSON line each with `--json`), until `count` bills if given, or
/// until the node closes the stream.
pub fn watch(
    node_url: &str,
    json_out: bool,
    issuer: &str,
    from_height: Option<u64>,
    count: Option<u64>,
) -> Result<bool, CliError> {
    let node = Node::new(node_url)?;
    let q = query(&[
        ("issuer", Some(issuer.to_owned())),
        ("from_height", from_height.map(|h| h.to_string())),
    ]);
    let reader = node.stream(&format!("/admin/v1/stream{q}"))?;
    let mut seen = 0u64;
    if count == Some(0) {
        return Ok(true);
    }
    if !json_out {
        eprintln!("watching bills issued under {issuer} (Ctrl-C stops)");
    }
    for line in BufReader::new(reader).lines() {
        let line = line
            .map_err(|e| CliError::new("node_unreachable", format!("the stream broke off: {e}")))?;
        let Some(data) = line
            .strip_prefix("data: ")
            .or_else(|| line.strip_prefix("data:"))
        else {
            continue;
        };
        let v: Value = serde_json::from_str(data)
            .map_err(|e| CliError::new("bad_answer", format!("a stream event is not JSON: {e}")))?;
        if json_out {
            print_json(&v);
        } else {
            println!(
                "h{}  {}/{}  {}  ¥{}  issued {}  tx {}",
                v["height"],
                s(&v["code"]),
                s(&v["number"]),
                s(&v["kind"]),
                yuan(&v["total_fen"]),
                s(&v["issued_at"]),
                s(&v["tx_id"])
            );
        }
        let _ = std::io::stdout().flush();
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn queries_are_encoded_and_skip_unset_parameters() {
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(
            query(&[
                ("from", Some("2026-12-01T08:00:00+08:00".to_owned())),
                ("x", None),
                ("kind", Some("medical_outpatient".to_owned())),
            ]),
            "?from=2026-12-01T08%3A00%3A00%2B08%3A00&kind=medical_outpatient"
        );
        assert_eq!(yuan(&serde_json::json!(12345)), "123.45");
    }
}
