//! Bills from files: one bill as JSON (`ebill issue BILL.json`), and batches as JSON Lines
//! or CSV (`ebill issue --batch FILE.jsonl|FILE.csv`), read as a stream so that a batch
//! of any size takes bounded memory.
//!
//! ## JSON Lines (`.jsonl`)
//! One bill per line, in the JSON form of docs/design.md §2 (unknown fields refused,
//! money as strings). Blank lines are skipped.
//!
//! ## CSV (`.csv`)
//! UTF-8, comma-separated, a header row naming the columns (in any order), then one row
//! per bill item. Consecutive rows with the same `code` and `number` are one bill with
//! several items; their bill-level columns must agree. Columns:
//!
//! | column | required | meaning |
//! | --- | --- | --- |
//! | `code` | yes | bill code, 8 digits |
//! | `number` | yes | bill number, 10 digits |
//! | `kind` | yes | `medical_outpatient`, `non_tax_payment`, ... |
//! | `issued_at` | yes | RFC 3339 with offset, e.g. `2026-11-29T10:15:00+08:00` |
//! | `payer_type` | yes | `person` or `unit` |
//! | `payer_name` | yes | payer's name |
//! | `payer_id` | yes | ID number, or the unit's credit code |
//! | `item_code`, `item_name` | yes | the item |
//! | `quantity` | yes | decimal, up to 4 places |
//! | `unit` | yes | unit of quantity (may be empty) |
//! | `unit_price`, `amount` | yes | money, e.g. `12.50` |
//! | `total` | yes | the bill's total (the same on every row of the bill) |
//! | `remark` | no | free text |
//! | `issuer` | no | the issuer's credit code; by default the key file's |
//!
//! Fields may be quoted with `"` (a quote inside doubled: `""`); a field cannot span
//! lines. A UTF-8 byte-order mark before the header is ignored.

use std::collections::HashMap;
use std::io::{BufRead, Read as _};

use ebill_types::bill::Currency;
use ebill_types::{
    Bill, BillCode, BillKind, BillNumber, CreditCode, Fen, Item, Params, Payer, PayerType,
    Quantity, Timestamp,
};
use thiserror::Error;

/// Longest line read from a batch file.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// Why input could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// A line is not a valid bill (or bill item).
    #[error("{source_name}: line {line}: {reason}")]
    Line {
        /// File name.
        source_name: String,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file as a whole.
    #[error("{source_name}: {reason}")]
    File {
        /// File name.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
}

impl InputError {
    /// The stable code: `invalid_input`.
    pub fn code(&self) -> &'static str {
        "invalid_input"
    }
}

/// A bill read from a file, with the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceBill {
    /// Line number, from 1.
    pub line: usize,
    /// The bill, validated ([`Bill::validate`]).
    pub bill: Bill,
}

/// The format of a batch file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON bill per line.
    JsonLines,
    /// One item per row, see the module documentation.
    Csv,
}

impl Format {
    /// From the file name: `.csv` is CSV, `.jsonl` / `.ndjson` / `.json` JSON Lines.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Some(Format::Csv),
            Some("jsonl" | "ndjson" | "json") => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// Parses one bill from JSON text and validates it.
pub fn parse_bill_json(text: &str) -> Result<Bill, String> {
    let bill: Bill = serde_json::from_str(text).map_err(|e| {
        // On one line, serde's "at line 1 column N" says only the column.
        let msg = e.to_string();
        match (e.line(), msg.rfind(" at line ")) {
            (1, Some(i)) => format!("{} (column {})", &msg[..i], e.column()),
            _ => msg,
        }
    })?;
    bill.validate(&Params::widest_bounds())
        .map_err(|e| e.to_string())?;
    Ok(bill)
}

/// Reads lines of at most [`MAX_LINE_BYTES`], numbering them.
struct Lines<R> {
    reader: R,
    source: String,
    line: usize,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R, source: &str) -> Self {
        Self {
            reader,
            source: source.to_owned(),
            line: 0,
            done: false,
        }
    }

    fn err(&self, line: usize, reason: impl Into<String>) -> InputError {
        InputError::Line {
            source_name: self.source.clone(),
            line,
            reason: reason.into(),
        }
    }

    /// The next line (without its line ending), or `None` at the end.
    fn next_line(&mut self) -> Option<Result<(usize, String), InputError>> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        match (&mut self.reader).take(limit).read_until(b'\n', &mut buf) {
            Err(e) => {
                self.done = true;
                return Some(Err(InputError::File {
                    source_name: self.source.clone(),
                    reason: e.to_string(),
                }));
            }
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(_) => {}
        }
        self.line += 1;
        let line = self.line;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        } else if buf.len() > MAX_LINE_BYTES {
            self.done = true;
            return Some(Err(
                self.err(line, format!("line is longer than {MAX_LINE_BYTES} bytes"))
            ));
        }
        match String::from_utf8(buf) {
            Ok(s) => Some(Ok((line, s))),
            Err(_) => Some(Err(self.err(line, "not UTF-8 text"))),
        }
    }
}

/// JSON Lines: one bill per line.
pub struct JsonLinesReader<R> {
    lines: Lines<R>,
}

impl<R: BufRead> JsonLinesReader<R> {
    /// A reader over `reader`, naming `source` in errors.
    pub fn new(reader: R, source: &str) -> Self {
        Self {
            lines: Lines::new(reader, source),
        }
    }
}

impl<R: BufRead> Iterator for JsonLinesReader<R> {
    type Item = Result<SourceBill, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, text) = match self.lines.next_line()? {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            if text.trim().is_empty() {
                continue;
            }
            return Some(
                parse_bill_json(text)
                    .map(|bill| SourceBill { line, bill })
                    .map_err(|reason| self.lines.err(line, reason)),
            );
        }
    }
}

/// Splits one CSV line into fields: commas, `"` quoting with `""` for a quote.
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    match chars.peek() {
                        None | Some(',') => {}
                        Some(other) => {
                            return Err(format!(
                                "field {}: {other:?} after a closing quote",
                                fields.len() + 1
                            ));
                        }
                    }
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            '"' => {
                return Err(format!(
                    "field {}: a quote inside an unquoted field",
                    fields.len() + 1
                ));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            _ => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(format!(
            "field {}: the quote is not closed (a field cannot span lines)",
            fields.len() + 1
        ));
    }
    fields.push(field);
    Ok(fields)
}

const CSV_REQUIRED: [&str; 14] = [
    "code",
    "number",
    "kind",
    "issued_at",
    "payer_type",
    "payer_name",
    "payer_id",
    "item_code",
    "item_name",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "total",
];
const CSV_OPTIONAL: [&str; 2] = ["remark", "issuer"];

/// The bill-level fields of a CSV row, compared across the rows of one bill.
#[derive(PartialEq, Eq)]
struct BillFields {
    code: BillCode,
    number: BillNumber,
    kind: BillKind,
    issuer: CreditCode,
    issued_at: Timestamp,
    payer: Payer,
    total: Fen,
    remark: String,
}

/// CSV: one item per row, see the module documentation.
pub struct CsvReader<R> {
    lines: Lines<R>,
    columns: Option<HashMap<String, usize>>,
    default_issuer: Option<CreditCode>,
    pending: Option<(usize, BillFields, Vec<Item>)>,
    failed: bool,
}

impl<R: BufRead> CsvReader<R> {
    /// A reader over `reader`, naming `source` in errors; bills without an `issuer`
    /// column get `default_issuer`.
    pub fn new(reader: R, source: &str, default_issuer: Option<CreditCode>) -> Self {
        Self {
            lines: Lines::new(reader, source),
            columns: None,
            default_issuer,
            pending: None,
            failed: false,
        }
    }

    fn header(&mut self) -> Result<(), InputError> {
        loop {
            let Some(next) = self.lines.next_line() else {
                return Err(InputError::File {
                    source_name: self.lines.source.clone(),
                    reason: "empty file: a CSV batch starts with a header row".into(),
                });
            };
            let (line, text) = next?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            if text.trim().is_empty() {
                continue;
            }
            let names = split_csv_line(text).map_err(|e| self.lines.err(line, e))?;
            let mut columns = HashMap::new();
            for (i, name) in names.iter().enumerate() {
                let name = name.trim();
                if !CSV_REQUIRED.contains(&name) && !CSV_OPTIONAL.contains(&name) {
                    return Err(self.lines.err(
                        line,
                        format!(
                            "unknown column {name:?}; columns are {} and optionally {}",
                            CSV_REQUIRED.join(","),
                            CSV_OPTIONAL.join(",")
                        ),
                    ));
                }
                if columns.insert(name.to_owned(), i).is_some() {
                    return Err(self.lines.err(line, format!("column {name:?} twice")));
                }
            }
            if let Some(missing) = CSV_REQUIRED.iter().find(|c| !columns.contains_key(**c)) {
                return Err(self.lines.err(line, format!("missing column {missing:?}")));
            }
            self.columns = Some(columns);
            return Ok(());
        }
    }

    fn row(&self, text: &str) -> Result<(BillFields, Item), String> {
        let fields = split_csv_line(text)?;
        let columns = self.columns.as_ref().ok_or("no header row")?;
        if fields.len() != columns.len() {
            return Err(format!(
                "{} fields, the header has {}",
                fields.len(),
                columns.len()
            ));
        }
        let get = |name: &str| -> &str {
            columns
                .get(name)
                .and_then(|&i| fields.get(i))
                .map_or("", String::as_str)
        };
        let named = |name: &str, e: &dyn std::fmt::Display| format!("{name}: {e}");
        let enum_of = |name: &str| serde_json::Value::String(get(name).to_owned());
        let kind: BillKind = serde_json::from_value(enum_of("kind"))
            .map_err(|_| format!("kind: unknown bill kind {:?}", get("kind")))?;
        let payer_type: PayerType = serde_json::from_value(enum_of("payer_type"))
            .map_err(|_| format!("payer_type: {:?} is not person or unit", get("payer_type")))?;
        let issuer = match (columns.contains_key("issuer"), self.default_issuer) {
            (true, _) if !get("issuer").is_empty() => {
                CreditCode::parse(get("issuer")).map_err(|e| named("issuer", &e))?
            }
            (_, Some(code)) => code,
            _ => {
                return Err(
                    "no issuer: add an issuer column, or use a key file with a credit_code (or --unit)"
                        .into(),
                );
            }
        };
        let fields_out = BillFields {
            code: BillCode::parse(get("code")).map_err(|e| e.to_string())?,
            number: BillNumber::parse(get("number")).map_err(|e| e.to_string())?,
            kind,
            issuer,
            issued_at: Timestamp::parse(get("issued_at")).map_err(|e| named("issued_at", &e))?,
            payer: Payer {
                payer_type,
                name: get("payer_name").to_owned(),
                id: get("payer_id").to_owned(),
            },
            total: Fen::parse(get("total")).map_err(|e| named("total", &e))?,
            remark: get("remark").to_owned(),
        };
        let item = Item {
            code: get("item_code").to_owned(),
            name: get("item_name").to_owned(),
            quantity: Quantity::parse(get("quantity")).map_err(|e| named("quantity", &e))?,
            unit: get("unit").to_owned(),
            unit_price: Fen::parse(get("unit_price")).map_err(|e| named("unit_price", &e))?,
            amount: Fen::parse(get("amount")).map_err(|e| named("amount", &e))?,
        };
        match item.quantity.times(item.unit_price) {
            Some(expected) if expected == item.amount => {}
            Some(expected) => {
                return Err(format!(
                    "amount: {} × {} is {expected}, not {}",
                    item.quantity, item.unit_price, item.amount
                ));
            }
            None => return Err("amount: quantity × unit_price overflows".into()),
        }
        Ok((fields_out, item))
    }

    fn finish_bill(
        &self,
        line: usize,
        f: BillFields,
        items: Vec<Item>,
    ) -> Result<SourceBill, InputError> {
        let bill = Bill {
            code: f.code,
            number: f.number,
            kind: f.kind,
            issuer: f.issuer,
            issued_at: f.issued_at,
            payer: f.payer,
            items,
            total: f.total,
            currency: Currency::Cny,
            remark: f.remark,
            related: None,
        };
        bill.validate(&Params::widest_bounds())
            .map_err(|e| self.lines.err(line, format!("bill {}: {e}", bill.id())))?;
        Ok(SourceBill { line, bill })
    }

    fn step(&mut self) -> Option<Result<SourceBill, InputError>> {
        if self.columns.is_none()
            && let Err(e) = self.header()
        {
            return Some(Err(e));
        }
        loop {
            let Some(next) = self.lines.next_line() else {
                let (line, f, items) = self.pending.take()?;
                return Some(self.finish_bill(line, f, items));
            };
            let (line, text) = match next {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            if text.trim().is_empty() {
                continue;
            }
            let (fields, item) = match self.row(&text) {
                Ok(x) => x,
                Err(reason) => return Some(Err(self.lines.err(line, reason))),
            };
            match self.pending.take() {
                Some((start, f, mut items))
                    if f.code == fields.code && f.number == fields.number =>
                {
                    if f != fields {
                        return Some(Err(self.lines.err(
                            line,
                            format!(
                                "bill {}/{}: bill-level columns differ from its first row (line {start})",
                                f.code, f.number
                            ),
                        )));
                    }
                    if items.len() >= ebill_types::limits::MAX_ITEMS {
                        return Some(Err(self.lines.err(
                            line,
                            format!(
                                "bill {}/{}: more than {} items",
                                f.code,
                                f.number,
                                ebill_types::limits::MAX_ITEMS
                            ),
                        )));
                    }
                    items.push(item);
                    self.pending = Some((start, f, items));
                }
                Some((start, f, items)) => {
                    self.pending = Some((line, fields, vec![item]));
                    return Some(self.finish_bill(start, f, items));
                }
                None => self.pending = Some((line, fields, vec![item])),
            }
        }
    }
}

impl<R: BufRead> Iterator for CsvReader<R> {
    type Item = Result<SourceBill, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let out = self.step();
        if matches!(out, Some(Err(_))) {
            self.failed = true;
        }
        out
    }
}

/// A reader of either format.
pub fn reader<'a, R: BufRead + 'a>(
    format: Format,
    reader: R,
    source: &str,
    default_issuer: Option<CreditCode>,
) -> Box<dyn Iterator<Item = Result<SourceBill, InputError>> + 'a> {
    match format {
        Format::JsonLines => Box::new(JsonLinesReader::new(reader, source)),
        Format::Csv => Box::new(CsvReader::new(reader, source, default_issuer)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use ebill_types::dev;

    use super::*;

    const HEADER: &str = "code,number,kind,issued_at,payer_type,payer_name,payer_id,item_code,item_name,quantity,unit,unit_price,amount,total,remark";

    fn csv(text: &str) -> Vec<Result<SourceBill, InputError>> {
        CsvReader::new(text.as_bytes(), "t.csv", Some(dev::dev_issuer_code())).collect()
    }

    fn jsonl(text: &str) -> Vec<Result<SourceBill, InputError>> {
        JsonLinesReader::new(text.as_bytes(), "t.jsonl").collect()
    }

    fn line_of(r: &Result<SourceBill, InputError>) -> usize {
        match r {
            Err(InputError::Line { line, .. }) => *line,
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    fn bill_json(number: u64) -> String {
        serde_json::to_string(&dev::sample_bill(number, 1250, dev::DEV_GENESIS_TIME_MS)).unwrap()
    }

    #[test]
    fn jsonl_reads_one_bill_per_line_and_skips_blank_lines() {
        let text = format!("{}\n\n{}\r\n", bill_json(1), bill_json(2));
        let bills: Vec<SourceBill> = jsonl(&text).into_iter().map(Result::unwrap).collect();
        assert_eq!(bills.len(), 2);
        assert_eq!((bills[0].line, bills[1].line), (1, 3));
        assert_eq!(
            bills[1].bill,
            dev::sample_bill(2, 1250, dev::DEV_GENESIS_TIME_MS)
        );
    }

    #[test]
    fn jsonl_names_the_bad_line() {
        let bad_total = bill_json(3).replace("\"total\":\"12.50\"", "\"total\":\"12.51\"");
        let number_money = bill_json(4).replace("\"total\":\"12.50\"", "\"total\":12.5");
        let unknown = bill_json(5).replacen('{', "{\"colour\":\"red\",", 1);
        for (bad, reason) in [
            (bad_total.as_str(), "add up"),
            (number_money.as_str(), ""),
            (unknown.as_str(), "colour"),
            ("{not json", ""),
        ] {
            let text = format!(
                "{}\n{}\n{bad}\n{}\n",
                bill_json(1),
                bill_json(2),
                bill_json(6)
            );
            let out = jsonl(&text);
            assert!(out[0].is_ok() && out[1].is_ok());
            assert_eq!(line_of(&out[2]), 3, "{bad}");
            assert!(
                out[2].as_ref().unwrap_err().to_string().contains(reason),
                "{:?}",
                out[2]
            );
            assert!(
                out[2]
                    .as_ref()
                    .unwrap_err()
                    .to_string()
                    .starts_with("t.jsonl: line 3: ")
            );
        }
    }

    #[test]
    fn jsonl_refuses_an_overlong_line() {
        let text = format!("{}\n{}\n", bill_json(1), "x".repeat(MAX_LINE_BYTES + 10));
        let out = jsonl(&text);
        assert!(out[0].is_ok());
        assert_eq!(line_of(&out[1]), 2);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn csv_groups_rows_into_bills_with_several_items() {
        let text = format!(
            "\u{feff}{HEADER}\n\
             33010126,0000000001,medical_outpatient,2026-01-01T09:00:00+08:00,person,张三,330102199001011234,001,西药费,1,次,12.50,12.50,20.00,\n\
             33010126,0000000001,medical_outpatient,2026-01-01T09:00:00+08:00,person,张三,330102199001011234,002,\"检查费, 血常规\",2,次,3.75,7.50,20.00,\n\
             \n\
             33010126,0000000002,medical_inpatient,2026-01-01T10:00:00+08:00,person,李四,330102199202021234,003,\"床位费 \"\"单人\"\"\",1.5,天,100.00,150.00,150.00,住院\n"
        );
        let bills: Vec<SourceBill> = csv(&text).into_iter().map(Result::unwrap).collect();
        assert_eq!(bills.len(), 2);
        assert_eq!(bills[0].line, 2);
        assert_eq!(bills[0].bill.items.len(), 2);
        assert_eq!(bills[0].bill.items[1].name, "检查费, 血常规");
        assert_eq!(bills[0].bill.total, Fen(2000));
        assert_eq!(bills[0].bill.issuer, dev::dev_issuer_code());
        assert_eq!(bills[1].line, 5);
        assert_eq!(bills[1].bill.items[0].name, "床位费 \"单人\"");
        assert_eq!(bills[1].bill.items[0].quantity, Quantity(15_000));
        assert_eq!(bills[1].bill.remark, "住院");
        assert_eq!(bills[1].bill.kind, BillKind::MedicalInpatient);
    }

    #[test]
    fn csv_columns_may_come_in_any_order_and_name_the_issuer() {
        let issuer = dev::test_credit_code('B', 2);
        let text = format!(
            "total,amount,unit_price,unit,quantity,item_name,item_code,payer_id,payer_name,payer_type,issued_at,kind,number,code,issuer\n\
             5.00,5.00,5.00,次,1,挂号费,001,91330100MA0000002X,某公司,unit,2026-01-01T09:00:00+08:00,non_tax_payment,0000000009,33010126,{issuer}\n"
        );
        let text = text.replace("91330100MA0000002X", dev::dev_reimburser_code().as_str());
        let bills: Vec<SourceBill> = CsvReader::new(text.as_bytes(), "t.csv", None)
            .map(Result::unwrap)
            .collect();
        assert_eq!(bills[0].bill.issuer, issuer);
        assert_eq!(bills[0].bill.payer.payer_type, PayerType::Unit);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let good = "33010126,0000000001,medical_outpatient,2026-01-01T09:00:00+08:00,person,张三,330102199001011234,001,西药费,1,次,12.50,12.50,12.50,";
        let cases: Vec<(String, usize, &str)> = vec![
            (format!("{HEADER},colour\n"), 1, "unknown column"),
            ("code,number\n".to_owned(), 1, "missing column"),
            (
                format!(
                    "{HEADER}\n{good}\n{}\n",
                    good.replace("12.50,12.50,", "12.5,12.51,")
                ),
                3,
                "amount",
            ),
            (
                format!(
                    "{HEADER}\n{}\n",
                    good.replace("medical_outpatient", "dental")
                ),
                2,
                "kind",
            ),
            (
                format!("{HEADER}\n{}\n", good.replace("12.50,", "12.50")),
                2,
                "fields",
            ),
            (
                format!("{HEADER}\n{}\n", good.replace("西药费", "\"西药费")),
                2,
                "quote",
            ),
            (
                format!(
                    "{HEADER}\n{}\n",
                    good.replace("12.50,12.50,12.50", "12.50,12.50,12.5x")
                ),
                2,
                "total",
            ),
            (
                format!("{HEADER}\n{}\n", good.replace("0000000001", "1")),
                2,
                "number",
            ),
            (
                format!("{HEADER}\n{}\n", good.replace("+08:00", "")),
                2,
                "issued_at",
            ),
            (
                format!("{HEADER}\n{good}\n{}\n", good.replace("张三", "李四")),
                3,
                "differ",
            ),
            // A bill whose items do not add up to its total is reported at its first row.
            (
                format!(
                    "{HEADER}\n{}\n",
                    good.replace("12.50,12.50,12.50", "12.50,12.50,13.50")
                ),
                2,
                "add up",
            ),
        ];
        for (text, line, reason) in cases {
            let out = csv(&text);
            let err = out
                .iter()
                .find(|r| r.is_err())
                .unwrap_or_else(|| panic!("{text}: no error"));
            assert_eq!(line_of(err), line, "{text}");
            let msg = err.as_ref().unwrap_err().to_string();
            assert!(msg.contains(reason), "{msg} should mention {reason}");
            // Reading stops at the first error.
            assert!(out.last().unwrap().is_err());
        }
        assert!(matches!(
            csv("").first(),
            Some(Err(InputError::File { .. }))
        ));
        let no_issuer: Vec<_> =
            CsvReader::new(format!("{HEADER}\n{good}\n").as_bytes(), "t.csv", None).collect();
        assert!(
            no_issuer[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("no issuer")
        );
    }

    #[test]
    fn csv_line_splitting() {
        assert_eq!(
            split_csv_line("a,,\"b,c\",\"\"\"\"").unwrap(),
            ["a", "", "b,c", "\""]
        );
        assert_eq!(split_csv_line("").unwrap(), [""]);
        assert!(split_csv_line("\"a\"b").is_err());
        assert!(split_csv_line("a\"b").is_err());
        assert!(split_csv_line("\"open").is_err());
    }

    #[test]
    fn formats_follow_the_extension() {
        use std::path::Path;
        assert_eq!(Format::from_path(Path::new("a/b.CSV")), Some(Format::Csv));
        assert_eq!(
            Format::from_path(Path::new("b.jsonl")),
            Some(Format::JsonLines)
        );
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
    }
}

#[cfg(test)]
mod example_files {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::path::PathBuf;

    use super::*;

    fn examples() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../genesis/examples")
    }

    /// The sample files in `genesis/examples/` are valid bills of the dev issuer.
    #[test]
    fn the_example_files_are_valid_bills_of_the_dev_issuer() {
        let issuer = ebill_types::dev::dev_issuer_code();
        let text = std::fs::read_to_string(examples().join("bill.json")).unwrap();
        let bill = parse_bill_json(&text).unwrap();
        assert_eq!(bill.issuer, issuer);
        assert_eq!(bill.code.as_str(), "33010126");
        for (name, format, count) in [
            ("bills.jsonl", Format::JsonLines, 3),
            ("bills.csv", Format::Csv, 3),
        ] {
            let file = std::fs::File::open(examples().join(name)).unwrap();
            let bills: Vec<SourceBill> =
                reader(format, std::io::BufReader::new(file), name, Some(issuer))
                    .map(Result::unwrap)
                    .collect();
            assert_eq!(bills.len(), count, "{name}");
            assert!(bills.iter().all(|b| b.bill.issuer == issuer), "{name}");
        }
    }
}
