//! Amounts in Chinese capital numerals (大写金额), as a fiscal bill writes its total
//! beside the figures: 壹拾贰元伍角 for ¥12.50.
//!
//! The rules of the payment-settlement practice: digits 零壹贰叁肆伍陆柒捌玖, places
//! 拾佰仟 within a group of four, groups 万 亿 万亿; a run of zeros inside the number is
//! written as one 零 and zeros at the end of a group are not written; 元 after the
//! yuan, then 角 and 分; 整 when there are neither, and 零 before 分 when there is no
//! 角 after a non-zero yuan part.

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
const PLACES: [&str; 4] = ["", "拾", "佰", "仟"];
const GROUPS: [&str; 5] = ["", "万", "亿", "万亿", "亿亿"];

/// One group of four digits (1..=9999) without its group name; `out` gets a leading 零
/// from the caller when one is due.
fn group(value: u64, out: &mut String) {
    let digits = [
        value / 1000 % 10,
        value / 100 % 10,
        value / 10 % 10,
        value % 10,
    ];
    let mut started = false;
    let mut zero_pending = false;
    for (i, d) in digits.iter().enumerate() {
        if *d == 0 {
            zero_pending = started;
            continue;
        }
        if zero_pending {
            out.push('零');
            zero_pending = false;
        }
        out.push(DIGITS[*d as usize]);
        out.push_str(PLACES[3 - i]);
        started = true;
    }
}

/// The yuan part in capital numerals, without 元 (empty for 0).
fn yuan(mut n: u64) -> String {
    let mut groups = Vec::new();
    while n > 0 {
        groups.push(n % 10_000);
        n /= 10_000;
    }
    let mut out = String::new();
    let mut zero_pending = false;
    for (i, g) in groups.iter().enumerate().rev() {
        if *g == 0 {
            zero_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() && (zero_pending || *g < 1000) {
            out.push('零');
        }
        zero_pending = false;
        group(*g, &mut out);
        out.push_str(GROUPS[i]);
    }
    out
}

/// `fen` (integer fen) in capital numerals: 1250 → 壹拾贰元伍角.
pub fn capital_amount(fen: u64) -> String {
    let whole = fen / 100;
    let jiao = (fen / 10 % 10) as usize;
    let cents = (fen % 10) as usize;
    let mut out = yuan(whole);
    if whole > 0 {
        out.push('元');
    }
    match (jiao, cents) {
        (0, 0) if whole == 0 => out.push_str("零元整"),
        (0, 0) => out.push('整'),
        (j, 0) => {
            out.push(DIGITS[j]);
            out.push('角');
        }
        (0, c) => {
            if whole > 0 {
                out.push('零');
            }
            out.push(DIGITS[c]);
            out.push('分');
        }
        (j, c) => {
            out.push(DIGITS[j]);
            out.push('角');
            out.push(DIGITS[c]);
            out.push('分');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::capital_amount;

    #[test]
    fn amounts_as_the_settlement_rules_write_them() {
        let cases: &[(u64, &str)] = &[
            (1250, "壹拾贰元伍角"),
            (0, "零元整"),
            (1, "壹分"),
            (50, "伍角"),
            (57, "伍角柒分"),
            (100, "壹元整"),
            (1000, "壹拾元整"),
            (10005, "壹佰元零伍分"),
            (101010, "壹仟零壹拾元壹角"),
            (10_001_000, "壹拾万零壹拾元整"),
            (100_000_100, "壹佰万零壹元整"),
            (10_000_000_000, "壹亿元整"),
            (10_001_000_000, "壹亿零壹万元整"),
            (23_000_000_000, "贰亿叁仟万元整"),
            (100_000_100_000, "壹拾亿零壹仟元整"),
            (12_345_678_901, "壹亿贰仟叁佰肆拾伍万陆仟柒佰捌拾玖元零壹分"),
            (100_000_000_000_000, "壹万亿元整"),
            (
                u64::MAX,
                "壹拾捌亿亿肆仟肆佰陆拾柒万亿肆仟肆佰零柒亿叁仟柒佰零玖万伍仟伍佰壹拾陆元壹角伍分",
            ),
        ];
        for (fen, want) in cases {
            assert_eq!(capital_amount(*fen), *want, "{fen} fen");
        }
    }
}
