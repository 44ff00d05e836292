//! DuckDB (Python `duckdb`) over an export folder, for the tests that check that an
//! analytics engine reading the files gets what the `stats` route says.

use std::path::Path;
use std::process::Command;

/// Whether python3 can import duckdb.
pub fn available() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether to run the DuckDB part: true if DuckDB is there; if not, fails under
/// `CI=true` and otherwise says loudly that `what` skips.
pub fn required_for(what: &str) -> bool {
    if available() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what}: python3 with duckdb is needed under CI=true (pip install duckdb)");
    }
    eprintln!(
        "\n{bar}\nSKIPPING {what}: python3 cannot import duckdb (pip install duckdb)\n{bar}\n",
        bar = "!".repeat(78)
    );
    false
}

/// Runs DuckDB over the export folder in `format` (csv or parquet): issued count and
/// amount from the bills table, the reimbursed and reversed bills from the events table.
pub fn totals(dir: &Path, format: &str) -> serde_json::Value {
    let script = r#"
import duckdb, json, sys
d, fmt = sys.argv[1], sys.argv[2]
def table(name):
    if fmt == "csv":
        return f"read_csv('{d}/{name}.csv', header=true, all_varchar={'true' if name == 'events' else 'false'})"
    return f"read_parquet('{d}/{name}.parquet')"
c = duckdb.connect()
n, fen = c.execute(f"select count(*), sum(total_fen) from {table('bills')}").fetchone()
r = c.execute(f"select count(distinct code || '/' || number) from {table('events')} where kind = 'confirm_reimbursed'").fetchone()[0]
v = c.execute(f"select count(distinct code || '/' || number) from {table('events')} where kind = 'red_reverse'").fetchone()[0]
print(json.dumps({"issued": n, "amount_fen": int(fen), "reimbursed": r, "reversed": v}))
"#;
    let out = Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap_or_default(), format])
        .output()
        .unwrap_or_else(|e| panic!("run python3: {e}"));
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("duckdb's answer: {e}"))
}

/// Asserts that DuckDB's totals over `dir` in `format` are the `total` of a stats answer.
#[track_caller]
pub fn assert_totals_match(dir: &Path, format: &str, stats: &serde_json::Value) {
    let d = totals(dir, format);
    let t = &stats["total"];
    assert_eq!(d["issued"], t["issued"]["count"], "{format}: {d} {stats}");
    assert_eq!(
        d["amount_fen"], t["issued"]["amount_fen"],
        "{format}: {d} {stats}"
    );
    assert_eq!(
        d["reimbursed"], t["reimbursed"]["count"],
        "{format}: {d} {stats}"
    );
    assert_eq!(
        d["reversed"], t["reversed"]["count"],
        "{format}: {d} {stats}"
    );
}
