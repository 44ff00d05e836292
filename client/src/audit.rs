//! `ebill audit stats|bills|bill|anomalies` and `ebill watch`: a regulator's commands
//! against an observer's audit API (the operator's listener, `--admin-api`; give its
//! URL as `--node`). A table by default, the API's JSON unchanged with `--json`.

use std::io::{BufRead, BufReader, Write};

use clap::Subcommand;
use ebill_api_types::audit::{
    AnomaliesReport, BillDetail, BillEvent, BillRow, BillsPage, StatsReport,
};

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

fn print_json(v: &impl serde::Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = writeln!(out);
}

/// Fen as yuan with two decimals, for the tables.
fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// A time as the API gives it (RFC 3339), for the tables.
fn rfc3339(t: &ebill_types::Timestamp) -> String {
    t.to_rfc3339().unwrap_or_else(|_| "-".to_owned())
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
            let v: StatsReport = node.get(&format!("/admin/v1/stats{q}"))?.ok_typed()?;
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
            let mut bills: Vec<BillRow> = Vec::new();
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
                let v: BillsPage = node.get(&format!("/admin/v1/bills{q}"))?.ok_typed()?;
                bills.extend(v.bills);
                next = v.next_cursor;
                pages += 1;
                if !*all || next.is_none() || pages == MAX_PAGES {
                    break;
                }
                cursor = next.clone();
            }
            if json_out {
                print_json(&BillsPage {
                    bills,
                    next_cursor: next,
                });
            } else {
                println!(
                    "{:<8} {:<10} {:<18} {:<20} {:>12} {:<16} issued at",
                    "code", "number", "issuer", "kind", "total ¥", "status"
                );
                for b in &bills {
                    println!(
                        "{:<8} {:<10} {:<18} {:<20} {:>12} {:<16} {}",
                        b.code,
                        b.number,
                        b.issuer.as_str(),
                        b.kind.as_str(),
                        yuan(b.total_fen),
                        b.status.as_str(),
                        rfc3339(&b.issued_at)
                    );
                }
                println!("{} bills", bills.len());
                if let Some(c) = next {
                    println!("more: --cursor {c}");
                }
            }
        }
        AuditCommand::Bill { code, number } => {
            let v: BillDetail = node
                .get(&format!(
                    "/admin/v1/bills/{}/{}",
                    encode(code),
                    encode(number)
                ))?
                .ok_typed()?;
            if json_out {
                print_json(&v);
            } else {
                let b = &v.bill;
                println!(
                    "{}/{}  {}  {}  ¥{}  {}",
                    b.code,
                    b.number,
                    b.issuer.as_str(),
                    b.kind.as_str(),
                    b.total,
                    v.status.as_str()
                );
                println!(
                    "  payer   {} {} ({})",
                    b.payer.name,
                    b.payer.id,
                    b.payer.payer_type.as_str()
                );
                println!("  issued  {}", rfc3339(&b.issued_at));
                for h in &v.history {
                    println!(
                        "  h{:<8} {:<20} {}  tx {}",
                        h.height,
                        h.action.as_str(),
                        h.by.as_str(),
                        h.tx_id
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
            let v: AnomaliesReport = node.get(&format!("/admin/v1/anomalies{q}"))?.ok_typed()?;
            if json_out {
                print_json(&v);
            } else {
                for h in &v.hits {
                    let subject = match (&h.bill, &h.issuer) {
                        (Some(b), _) => format!("{}/{}", b.code, b.number),
                        (None, Some(i)) => i.as_str().to_owned(),
                        (None, None) => "-".to_owned(),
                    };
                    println!("{} v{}  {}  {}", h.rule, h.version, subject, h.detail);
                    let ev: Vec<String> = h.evidence.iter().map(|t| t.to_hex()).collect();
                    println!("    evidence ({}): {}", h.evidence_count, ev.join(" "));
                }
                println!("{} hits at height {}", v.hits.len(), v.height);
            }
        }
    }
    Ok(true)
}

fn print_stats(v: &StatsReport) {
    println!(
        "{:<20} {:>8} {:>14} {:>8} {:>8} {:>8} {:>8} {:>12} {:>7} {:>7} {:>7}",
        v.group_by,
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
    for g in v.groups.iter().chain(std::iter::once(&v.total)) {
        let median = g
            .median_ms_to_reimbursement
            .map_or("-".to_owned(), |ms| format!("{:.1}", ms as f64 / 1000.0));
        println!(
            "{:<20} {:>8} {:>14} {:>8} {:>7.1}% {:>8} {:>7.1}% {:>12} {:>7} {:>7} {:>7}",
            g.key,
            g.issued.count,
            yuan(g.issued.amount_fen),
            g.reversed.count,
            g.reversed_rate * 100.0,
            g.reimbursed.count,
            g.reimbursed_share * 100.0,
            median,
            g.paper_exchanged.count,
            g.locked.count,
            g.open.count
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
        let v: BillEvent = serde_json::from_str(data).map_err(|e| {
            CliError::new(
                "bad_answer",
                format!("a stream event is not a bill event: {e}"),
            )
        })?;
        if json_out {
            print_json(&v);
        } else {
            println!(
                "h{}  {}/{}  {}  ¥{}  issued {}  tx {}",
                v.height,
                v.code,
                v.number,
                v.kind.as_str(),
                yuan(v.total_fen),
                rfc3339(&v.issued_at),
                v.tx_id
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
        assert_eq!(yuan(12345), "123.45");
        assert_eq!(yuan(7), "0.07");
    }
}
