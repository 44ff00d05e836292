//! QR codes of the result pages: the page's link ([`ebill_types::receipt_link::qr_url`])
//! at error correction level Q, which the `qrcode` crate writes in alphanumeric mode
//! where the text allows (the link is written for it).
//!
//! Drawing a code costs most of a millisecond (the crate scores all eight masks and
//! keeps the best, as the standard asks), many times the rest of a result page. So a
//! page does not inline its code: it links `qr.svg?d=DIGEST&t=TOKEN`, where the token
//! is a keyed hash of the link under a secret of this process ([`QrImages`]); with a
//! valid token the route draws the code of that link without a lookup (it reads
//! nothing, so it tells nothing), and keeps recent codes in a bounded cache, so a page
//! reloaded or printed draws its code once.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use qrcode::render::svg;
use qrcode::types::QrError;
use qrcode::{EcLevel, QrCode, Version};

/// The largest QR version a link of a node with a public URL of up to
/// [`MAX_SHORT_BASE_CHARS`] characters takes: 37×37 modules, easy to scan from paper.
pub const MAX_VERSION: i16 = 5;
/// Public URLs up to this long give a QR code of at most [`MAX_VERSION`].
pub const MAX_SHORT_BASE_CHARS: usize = 40;

/// Codes kept by [`QrImages`].
pub const QR_CACHE_ENTRIES: usize = 4096;

/// Tokens of page links and a bounded cache of drawn codes.
#[derive(Debug)]
pub struct QrImages {
    secret: [u8; 32],
    cache: Mutex<lru::LruCache<String, Arc<String>>>,
}

impl Default for QrImages {
    fn default() -> Self {
        Self::new()
    }
}

impl QrImages {
    /// A new secret from the OS (or, if it has none to give, from the clock: a token
    /// only spares a lookup of what the token's page already showed).
    pub fn new() -> Self {
        let mut secret = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut secret) {
            tracing::warn!(error = %e, "no OS randomness for QR tokens; using the clock");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            secret = Sha256::digest(nanos.to_be_bytes()).into();
        }
        Self {
            secret,
            cache: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(QR_CACHE_ENTRIES)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
        }
    }

    /// The token of `url`: 128 bits of SHA-256(domain ‖ secret ‖ url), hex.
    pub fn token(&self, url: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"ebill/qr-token/v1");
        h.update(self.secret);
        h.update(url.as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// True if `token` is `url`'s (compared in constant time).
    pub fn verify(&self, url: &str, token: &str) -> bool {
        let want = self.token(url);
        want.len() == token.len()
            && want
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The SVG of `url`, drawn once while it stays in the cache.
    pub fn svg(&self, url: &str) -> Result<Arc<String>, QrError> {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = lock().get(url) {
            return Ok(Arc::clone(s));
        }
        let drawn = Arc::new(svg(url)?);
        lock().put(url.to_owned(), Arc::clone(&drawn));
        Ok(drawn)
    }
}

/// The QR code of `url` at level Q.
pub fn code(url: &str) -> Result<QrCode, QrError> {
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::Q)
}

/// The version of `url`'s QR code (1 to 40).
pub fn version(url: &str) -> Result<i16, QrError> {
    Ok(match code(url)?.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    })
}

/// The QR code as an SVG document, without an XML declaration (so that it can also be
/// inlined in a page), at least `min_px` wide, with its quiet zone.
pub fn svg_sized(url: &str, min_px: u32) -> Result<String, QrError> {
    let text = code(url)?
        .render::<svg::Color<'_>>()
        .min_dimensions(min_px, min_px)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    Ok(match text.find("<svg") {
        Some(i) => text[i..].to_owned(),
        None => text,
    })
}

/// The QR code as an SVG document, 240 px or more.
pub fn svg(url: &str) -> Result<String, QrError> {
    svg_sized(url, 240)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ebill_types::receipt_link::{bill_digest, qr_url};
    use ebill_types::{CheckCode, Signature};

    use super::*;

    #[test]
    fn a_page_link_is_version_5_or_less_at_level_q() {
        let bill = ebill_types::dev::sample_bill(9_999_999_999, 1250, 0);
        let check = CheckCode::derive(&Signature([7; 64]));
        for base in [
            "http://127.0.0.1:65535",
            "https://fp.example-bureau.gov.cn",
            &format!("https://{}", "x".repeat(MAX_SHORT_BASE_CHARS - 8)),
        ] {
            let url = qr_url(base, &bill.id(), &check, &bill_digest(&bill));
            let code = code(&url).unwrap();
            assert_eq!(code.error_correction_level(), EcLevel::Q);
            let v = version(&url).unwrap();
            assert!(v <= MAX_VERSION, "{url}: version {v}");
        }
        let svg = svg(&qr_url("http://a", &bill.id(), &check, "AAAAAAAA")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    }

    #[test]
    fn tokens_are_per_link_and_per_process() {
        let a = QrImages::new();
        let b = QrImages::new();
        let t = a.token("HTTP://X/B/1");
        assert!(a.verify("HTTP://X/B/1", &t));
        assert!(!a.verify("HTTP://X/B/2", &t));
        assert!(!b.verify("HTTP://X/B/1", &t));
        assert!(!a.verify("HTTP://X/B/1", ""));
        let s1 = a.svg("HTTP://X/B/1").unwrap();
        let s2 = a.svg("HTTP://X/B/1").unwrap();
        assert!(Arc::ptr_eq(&s1, &s2), "drawn once");
    }
}
