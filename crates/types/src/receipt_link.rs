//! The link printed on a bill as a QR code: the address of the bill's verification page,
//! written so that a QR code holds it in alphanumeric mode (upper case, digits and
//! `/:.`), and carrying a short digest of the bill's canonical bytes, so that the page
//! can say whether the bill it shows is the bill the QR code was printed from.
//!
//! `HTTPS://HOST/B/{code}/{number}/{CHECK}/{DIGEST}`: the check code in upper case (the
//! page reads it case-blind), the digest [`DIGEST_CHARS`] characters of RFC 4648
//! base32. One place for this form: the node's pages and the `ebill qr` command both
//! build the link here.

use sha2::{Digest, Sha256};

use crate::bill::{Bill, BillId, CheckCode};
use crate::codec::{Canonical, Encoder};

/// Domain tag of the bill digest.
pub const DIGEST_DOMAIN: &str = "ebill/bill-digest/v1";
/// Characters of the digest: 8 base32 characters, 40 bits.
pub const DIGEST_CHARS: usize = 8;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The short digest of a bill: the first 40 bits of SHA-256(canonical(domain) ‖
/// canonical(bill)), in base32 upper case.
pub fn bill_digest(bill: &Bill) -> String {
    let mut enc = Encoder::with_domain(DIGEST_DOMAIN);
    bill.encode_to(&mut enc);
    let hash = Sha256::digest(enc.finish());
    let mut v = 0u64;
    for b in &hash[..5] {
        v = (v << 8) | u64::from(*b);
    }
    (0..DIGEST_CHARS)
        .rev()
        .map(|i| char::from(BASE32[((v >> (i * 5)) & 31) as usize]))
        .collect()
}

/// Reads a digest as printed (either case); `None` unless [`DIGEST_CHARS`] base32
/// characters.
pub fn parse_digest(s: &str) -> Option<String> {
    let up = s.to_ascii_uppercase();
    (up.len() == DIGEST_CHARS && up.bytes().all(|b| BASE32.contains(&b))).then_some(up)
}

/// The page's path, in lower case (as links on the pages are written):
/// `/b/{code}/{number}/{check}`.
pub fn page_path(id: &BillId, check: &CheckCode) -> String {
    format!("/b/{}/{}/{}", id.code, id.number, check)
}

/// The base URL as printed: scheme and host in upper case (both are case-blind), the
/// rest as given, without a trailing `/`.
pub fn qr_base(public_url: &str) -> String {
    let trimmed = public_url.trim_end_matches('/');
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("http", trimmed),
    };
    let (host, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    format!(
        "{}://{}{}",
        scheme.to_ascii_uppercase(),
        host.to_ascii_uppercase(),
        path
    )
}

/// The link of the QR code: `{BASE}/B/{code}/{number}/{CHECK}/{DIGEST}`.
pub fn qr_url(public_url: &str, id: &BillId, check: &CheckCode, digest: &str) -> String {
    format!(
        "{}/B/{}/{}/{}/{}",
        qr_base(public_url),
        id.code,
        id.number,
        check.as_str().to_ascii_uppercase(),
        digest
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_eight_base32_chars_and_changes_with_the_bill() {
        let a = crate::dev::sample_bill(1, 1250, 0);
        let mut b = a.clone();
        b.total = crate::Fen(1251);
        let da = bill_digest(&a);
        assert_eq!(da.len(), DIGEST_CHARS);
        assert_eq!(parse_digest(&da.to_ascii_lowercase()), Some(da.clone()));
        assert_ne!(da, bill_digest(&b));
        assert_eq!(parse_digest("ABCDEFG1"), None);
        assert_eq!(parse_digest("ABC"), None);
    }

    #[test]
    fn the_link_is_alphanumeric_mode_text() {
        let bill = crate::dev::sample_bill(7, 100, 0);
        let check = CheckCode::derive(&crate::Signature([3; 64]));
        let url = qr_url(
            "http://127.0.0.1:8080/",
            &bill.id(),
            &check,
            &bill_digest(&bill),
        );
        assert!(url.starts_with("HTTP://127.0.0.1:8080/B/"), "{url}");
        const ALNUM: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        assert!(url.chars().all(|c| ALNUM.contains(c)), "{url}");
        assert_eq!(
            qr_base("https://fp.example.cn/ebill"),
            "HTTPS://FP.EXAMPLE.CN/ebill"
        );
    }
}
