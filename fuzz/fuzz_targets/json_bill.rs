//! Bills and signed bill files as JSON (what issuing units submit and payers hold): no
//! panic; what parses serialises and parses back equal; a bill that also validates
//! survives its canonical form (the bytes that are signed and hashed).
#![no_main]

use ebill_fuzz::{canonical_round_trip, json_round_trip, seeds};
use ebill_types::{Bill, Params, SignedBill};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("json_bill");
    },
    |data: &[u8]| {
        if let Ok(bill) = serde_json::from_slice::<Bill>(data) {
            json_round_trip("bill", &bill);
            if bill.validate(&Params::default()).is_ok() {
                canonical_round_trip("valid bill", &bill);
            }
        }
        if let Ok(signed) = serde_json::from_slice::<SignedBill>(data) {
            let text = serde_json::to_string(&signed)
                .unwrap_or_else(|e| panic!("signed bill {signed:?} does not serialise: {e}"));
            let back: SignedBill = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("signed bill {text} does not parse back: {e}"));
            assert_eq!(back, signed, "signed bill changes through JSON");
            // The signed bill's bill is a bill: the same text without the two fields.
            let plain = serde_json::to_string(&signed.bill)
                .unwrap_or_else(|e| panic!("bill does not serialise: {e}"));
            assert_eq!(serde_json::from_str::<Bill>(&plain).ok().as_ref(), Some(&signed.bill));
        }
    }
);
