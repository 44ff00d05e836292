//! The rule for free text in signed data (names, items, reasons, remarks): what a bill
//! says must look like what its bytes say, so that no two different bills print the same.
//!
//! Text is refused when it
//! - is empty where a value is required, or longer than its limit in bytes;
//! - contains a control character (Unicode category Cc);
//! - contains a format character (Cf: zero-width space, joiners, word joiner, BOM, soft
//!   hyphen, the bidirectional controls of "Trojan Source", tags, ...) or a line or
//!   paragraph separator (Zl, Zp): invisible on paper and on screen, so "张\u{200B}三"
//!   would be another bill than "张三" that looks the same;
//! - is not in Unicode Normalization Form C. Other forms are refused, not rewritten: the
//!   signed bytes are the issuer's, and a node must not change them.
//!
//! A protocol rule: which characters are in which category, and what NFC is, come from
//! Unicode [`UNICODE_VERSION`]'s tables in the pinned crates `unicode-properties` and
//! `unicode-normalization`. A version of them with other tables changes which bills are
//! valid, so it is a protocol change (the test below pins the version).

use unicode_normalization::is_nfc;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::bill::{BillError, field};

/// The Unicode version whose tables decide the text rule.
pub const UNICODE_VERSION: (u8, u8, u8) = unicode_normalization::UNICODE_VERSION;

/// Why a character may not stand in signed text, or `None` if it may.
fn refused_character(c: char) -> Option<&'static str> {
    match c.general_category() {
        GeneralCategory::Control => Some("control character"),
        GeneralCategory::Format => Some("invisible format character"),
        GeneralCategory::LineSeparator => Some("line separator"),
        GeneralCategory::ParagraphSeparator => Some("paragraph separator"),
        _ => None,
    }
}

/// Checks free text `s` of the field `what`: length in bytes, characters, NFC.
pub(crate) fn check_text(
    what: &'static str,
    s: &str,
    max_bytes: usize,
    allow_empty: bool,
) -> Result<(), BillError> {
    if !allow_empty && s.trim().is_empty() {
        return Err(field(what, "must not be empty"));
    }
    if s.len() > max_bytes {
        return Err(field(
            what,
            format!("is {} bytes, over the limit of {max_bytes}", s.len()),
        ));
    }
    if let Some((at, c, why)) = s
        .chars()
        .enumerate()
        .find_map(|(i, c)| refused_character(c).map(|why| (i, c, why)))
    {
        return Err(field(
            what,
            format!(
                "must not contain a {why}: U+{:04X} at character {at}",
                u32::from(c)
            ),
        ));
    }
    if !is_nfc(s) {
        return Err(field(
            what,
            "is not in Unicode NFC (normalise the text before signing; e.g. a letter and a \
             combining accent must be one precomposed character)",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_unicode_version_of_the_rule_is_pinned() {
        // A change here changes which bills are valid: a protocol change (see the module).
        assert_eq!(UNICODE_VERSION, (18, 0, 0));
        let (major, minor, patch) = unicode_properties::UNICODE_VERSION;
        assert_eq!(
            (major, minor, patch),
            (18, 0, 0),
            "both crates must use the same Unicode tables"
        );
    }

    #[test]
    fn ordinary_text_of_every_script_is_allowed() {
        for ok in [
            "杭州市第一人民医院",
            "مستشفى שלום",
            "Hôpital Saint-Éloi",
            "（注射）0.9%氯化钠 500ml×2",
            "张　三", // U+3000 ideographic space is a space (Zs), not invisible
        ] {
            assert_eq!(check_text("name", ok, 128, false), Ok(()), "{ok}");
        }
    }

    #[test]
    fn invisible_and_separator_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{2029}',
            '\u{00AD}',
            '\u{180E}',
            '\u{2061}',
            '\u{E0041}',
            '\u{061C}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2066}',
            '\u{2069}',
            '\u{0007}',
            '\u{0085}',
        ] {
            let text = format!("张{c}三");
            let err = check_text("payer.name", &text, 64, false).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("U+{:04X}", u32::from(c))) && msg.contains("payer.name"),
                "U+{:04X}: {msg}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn text_not_in_nfc_is_refused_not_rewritten() {
        // "é" as e + COMBINING ACUTE ACCENT (NFD) looks like the precomposed U+00E9.
        let nfd = "Caf\u{0065}\u{0301}";
        let nfc = "Caf\u{00E9}";
        assert_eq!(check_text("items.name", nfc, 64, false), Ok(()));
        let err = check_text("items.name", nfd, 64, false).unwrap_err();
        assert!(err.to_string().contains("NFC"), "{err}");
        // CJK compatibility ideographs change under NFC (U+F900 -> U+8C48): refused too.
        assert!(check_text("items.name", "\u{F900}", 64, false).is_err());
        // Hangul as conjoining jamo is not NFC; the precomposed syllable is.
        assert!(check_text("items.name", "\u{1100}\u{1161}", 64, false).is_err());
        assert_eq!(check_text("items.name", "\u{AC00}", 64, false), Ok(()));
    }
}
