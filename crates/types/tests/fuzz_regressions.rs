//! Inputs the fuzz targets of `fuzz/` found (docs/fuzzing.md), each kept as a test that
//! failed before its fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ebill_types::codec::{Canonical, Encoder};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{Bill, Timestamp};

fn timestamp_bytes(unix_ms: i64, offset_min: i16) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.i64(unix_ms).i16(offset_min);
    enc.finish()
}

/// Found by `decode_misc`: the canonical decoder took offsets of 24:00 to 25:59, which
/// `time` can hold but RFC 3339 cannot write (its offset hours are 00 to 23). Such a
/// timestamp decoded, but had no text form: a bill carrying it (signed by a hostile
/// issuer, gossiped as bytes by a hostile peer, applied by the ledger, which checks
/// only the instant) could never be shown as JSON, and `ProofBundle::to_json` of its
/// bundle reached an `unreachable!`.
#[test]
fn a_timestamp_whose_offset_rfc3339_cannot_write_does_not_decode() {
    // The input the fuzzer found: offset +25:04.
    let found = [0x00, 0x00, 0x01, 0x01, 0x43, 0x15, 0x90, 0xa0, 0x05, 0xe0];
    assert!(Timestamp::from_canonical_bytes(&found).is_err());
    for offset_min in [24 * 60, 25 * 60 + 59, -24 * 60, -(25 * 60 + 4)] {
        let bytes = timestamp_bytes(DEV_GENESIS_TIME_MS, offset_min);
        assert!(
            Timestamp::from_canonical_bytes(&bytes).is_err(),
            "offset {offset_min} min decoded"
        );
    }
    // The widest offsets RFC 3339 writes still decode, and their text reads back.
    for offset_min in [23 * 60 + 59, -(23 * 60 + 59), 0, 480] {
        let bytes = timestamp_bytes(DEV_GENESIS_TIME_MS, offset_min);
        let ts = Timestamp::from_canonical_bytes(&bytes).unwrap();
        let text = ts.to_rfc3339().unwrap();
        assert_eq!(Timestamp::parse(&text), Ok(ts), "{text}");
    }
}

/// The same through a whole bill: one issued at +25:04 is refused by the decoder, so it
/// can reach no ledger, block or bundle.
#[test]
fn a_bill_issued_at_an_offset_without_text_does_not_decode() {
    let mut bill = dev::sample_bill(1, 1250, DEV_GENESIS_TIME_MS);
    bill.issued_at = Timestamp {
        unix_ms: DEV_GENESIS_TIME_MS,
        offset_min: 25 * 60 + 4,
    };
    assert!(bill.issued_at.to_rfc3339().is_err());
    assert!(Bill::from_canonical_bytes(&bill.to_canonical_bytes()).is_err());
}
