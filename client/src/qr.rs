//! `ebill qr`: the QR code of a bill's verification page, as the node's pages draw it
//! (the link of [`ebill_types::receipt_link::qr_url`], error correction level Q), in
//! the terminal, or written as SVG or PNG.
//!
//! The link carries a digest of the bill's canonical bytes, so the bill is read from
//! the node first: its proof bundle, whose IssueBill transaction holds the bill.

use std::path::Path;

use ebill_types::proof::ProofBundle;
use ebill_types::receipt_link::{bill_digest, qr_url};
use ebill_types::{Bill, BillId, CheckCode, TxBody};
use qrcode::render::{svg, unicode};
use qrcode::{Color, EcLevel, QrCode};

use crate::error::CliError;
use crate::http::Node;

/// Pixels per module of a PNG.
pub const PNG_MODULE_PX: u32 = 8;
/// Modules of quiet zone around a PNG's code.
pub const PNG_QUIET_MODULES: u32 = 4;

/// How to show the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrFormat {
    /// Unicode half blocks, for a terminal.
    Terminal,
    /// An SVG document.
    Svg,
    /// A PNG image, grey scale.
    Png,
}

impl QrFormat {
    /// The format of an output file, by its extension (`.svg` or `.png`).
    pub fn of_path(path: &Path) -> Result<Self, CliError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(QrFormat::Svg),
            Some("png") => Ok(QrFormat::Png),
            _ => Err(CliError::argument(format!(
                "{}: the QR code is written as .svg or .png",
                path.display()
            ))),
        }
    }
}

/// The bill `id` with check code `check`, from the node's proof bundle.
pub fn fetch_bill(node: &Node, id: &BillId, check: &CheckCode) -> Result<Bill, CliError> {
    let path = format!(
        "/v1/bills/{}/{}/proof?check_code={check}",
        id.code, id.number
    );
    let answer = node.get(&path)?;
    if !answer.is_success() {
        return Err(answer.error());
    }
    let bundle = ProofBundle::decode_any(&answer.body).map_err(|e| {
        CliError::new(
            "bad_answer",
            format!("the node's bundle does not decode: {e}"),
        )
    })?;
    bundle
        .entries
        .iter()
        .find_map(|e| match &e.tx.tx.body {
            TxBody::IssueBill(b) if b.id() == *id => Some(b.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            CliError::new(
                "bad_answer",
                format!("the node's bundle holds no IssueBill of bill {id}"),
            )
        })
}

/// The link of the bill's QR code under `public_url`.
pub fn link(public_url: &str, bill: &Bill, check: &CheckCode) -> String {
    qr_url(public_url, &bill.id(), check, &bill_digest(bill))
}

fn code(link: &str) -> Result<QrCode, CliError> {
    QrCode::with_error_correction_level(link.as_bytes(), EcLevel::Q)
        .map_err(|e| CliError::new("qr_too_long", format!("no QR code holds {link:?}: {e}")))
}

/// The code for a terminal: two modules a character, with its quiet zone.
pub fn terminal(link: &str) -> Result<String, CliError> {
    Ok(code(link)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// The code as an SVG document.
pub fn svg_document(link: &str) -> Result<String, CliError> {
    Ok(code(link)?
        .render::<svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

/// The code as a PNG: [`PNG_MODULE_PX`] pixels a module, [`PNG_QUIET_MODULES`] of
/// quiet zone, 8-bit grey.
pub fn png(link: &str) -> Result<Vec<u8>, CliError> {
    let code = code(link)?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * PNG_QUIET_MODULES) * PNG_MODULE_PX;
    let mut pixels = vec![255u8; (side * side) as usize];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let mx = i as u32 % modules + PNG_QUIET_MODULES;
        let my = i as u32 / modules + PNG_QUIET_MODULES;
        for dy in 0..PNG_MODULE_PX {
            let row = ((my * PNG_MODULE_PX + dy) * side) as usize;
            let start = row + (mx * PNG_MODULE_PX) as usize;
            pixels[start..start + PNG_MODULE_PX as usize].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| CliError::new("png", e.to_string()))?;
        w.write_image_data(&pixels)
            .map_err(|e| CliError::new("png", e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_form_draws_the_same_link() {
        let bill = ebill_types::dev::sample_bill(3, 1250, 0);
        let check = CheckCode::derive(&ebill_types::Signature([5; 64]));
        let l = link("http://127.0.0.1:8080", &bill, &check);
        assert!(l.starts_with("HTTP://127.0.0.1:8080/B/"));
        assert!(terminal(&l).unwrap().lines().count() > 10);
        assert!(svg_document(&l).unwrap().contains("<svg"));
        let png = png(&l).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(
            QrFormat::of_path(Path::new("a.PNG")).unwrap(),
            QrFormat::Png
        );
        assert!(QrFormat::of_path(Path::new("a.jpg")).is_err());
    }
}
