//! QR codes of the result pages: the page's link ([`ebill_types::receipt_link::qr_url`])
//! at error correction level Q, which the `qrcode` crate writes in alphanumeric mode
//! where the text allows (the link is written for it).

use qrcode::render::svg;
use qrcode::types::QrError;
use qrcode::{EcLevel, QrCode, Version};

/// The largest QR version a link of a node with a public URL of up to
/// [`MAX_SHORT_BASE_CHARS`] characters takes: 37×37 modules, easy to scan from paper.
pub const MAX_VERSION: i16 = 5;
/// Public URLs up to this long give a QR code of at most [`MAX_VERSION`].
pub const MAX_SHORT_BASE_CHARS: usize = 40;

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
}
