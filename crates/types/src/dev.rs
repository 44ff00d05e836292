//! The dev chain's well-known keys and genesis (`ebill-node --dev`), and sample bills.
//!
//! Every key here is derived from a public seed: anyone can sign as these units. They
//! exist for a one-machine dev chain, tests and the simulator, never for a real network.

use crate::bill::{
    Bill, BillCode, BillKind, BillNumber, CodePrefix, Currency, Item, Payer, PayerType,
};
use crate::block::{CommitCertificate, CommitSignature, Validator, Vote, VoteKind};
use crate::credit_code::CreditCode;
use crate::genesis::{Genesis, IssuerEntry, Params, Regulator, Regulators, ReimburserEntry};
use crate::hash::Hash32;
use crate::keys::Keypair;
use crate::money::{Fen, Quantity};
use crate::timestamp::Timestamp;

/// The dev chain id.
pub const DEV_CHAIN_ID: &str = "ebill-dev";
/// Start of the dev chain: 2026-01-01T00:00:00+08:00.
pub const DEV_GENESIS_TIME_MS: i64 = 1_767_196_800_000;
/// First 17 characters of the dev issuer's credit code (a hospital).
const DEV_ISSUER_CODE17: &str = "12330100MB0000001";
/// First 17 characters of the dev reimbursing unit's credit code (an insurer).
const DEV_REIMBURSER_CODE17: &str = "91330100MA0000002";
/// The code prefix the dev issuer may issue under.
pub const DEV_CODE_PREFIX: &str = "3301";

/// A key from a public seed: SHA-256 of `ebill-dev/<role>/<index>`.
pub fn dev_key(role: &str, index: u32) -> Keypair {
    Keypair::from_seed(Hash32::digest(format!("ebill-dev/{role}/{index}").as_bytes()).0)
}

/// A valid credit code for test unit `index` of a role letter (`'B'` issuer, `'A'` reimburser).
pub fn test_credit_code(kind: char, index: u32) -> CreditCode {
    let first17 = format!("91330100M{kind}{index:07}");
    CreditCode::complete(&first17)
        .unwrap_or_else(|e| unreachable!("test credit codes are well formed: {e}"))
}

/// The dev issuer's credit code.
pub fn dev_issuer_code() -> CreditCode {
    CreditCode::complete(DEV_ISSUER_CODE17)
        .unwrap_or_else(|e| unreachable!("dev issuer code is well formed: {e}"))
}

/// The dev reimbursing unit's credit code.
pub fn dev_reimburser_code() -> CreditCode {
    CreditCode::complete(DEV_REIMBURSER_CODE17)
        .unwrap_or_else(|e| unreachable!("dev reimburser code is well formed: {e}"))
}

/// The dev validator's key.
pub fn dev_validator_key() -> Keypair {
    dev_key("validator", 0)
}

/// The commit certificate of block `hash` at `height`, round 0, signed by the dev
/// validator alone: enough for a genesis of one dev validator (the dev chain's), for
/// tests and benchmarks that commit blocks to a store without running consensus.
pub fn dev_certificate(chain_id: &str, height: u64, hash: Hash32) -> CommitCertificate {
    let vote = Vote {
        kind: VoteKind::Precommit,
        height,
        round: 0,
        block: Some(hash),
        validator: 0,
    }
    .sign(chain_id, &dev_validator_key());
    CommitCertificate {
        height,
        round: 0,
        block: hash,
        signatures: vec![CommitSignature {
            validator: 0,
            signature: vote.signature,
        }],
    }
}

/// The dev issuer's key.
pub fn dev_issuer_key() -> Keypair {
    dev_key("issuer", 0)
}

/// The dev reimbursing unit's key.
pub fn dev_reimburser_key() -> Keypair {
    dev_key("reimburser", 0)
}

/// The three dev regulators' keys (threshold 2).
pub fn dev_regulator_keys() -> Vec<Keypair> {
    (0..3).map(|i| dev_key("regulator", i)).collect()
}

fn prefix(s: &str) -> CodePrefix {
    CodePrefix::parse(s).unwrap_or_else(|e| unreachable!("dev prefix is well formed: {e}"))
}

/// The far qualification date of the dev units: 2099-12-31T23:59:59.999+08:00.
pub fn dev_valid_until() -> Timestamp {
    Timestamp {
        unix_ms: 4_102_415_999_999,
        offset_min: 480,
    }
}

/// A genesis with `validators` validators from the dev seeds, the dev units and
/// regulators; `validators == 1` is the dev chain itself.
pub fn dev_genesis_with(chain_id: &str, validators: u32) -> Genesis {
    Genesis {
        chain_id: chain_id.to_owned(),
        genesis_time: Timestamp {
            unix_ms: DEV_GENESIS_TIME_MS,
            offset_min: 480,
        },
        params: Params::default(),
        validators: (0..validators)
            .map(|i| Validator {
                name: format!("validator-{i}"),
                public_key: dev_key("validator", i).public(),
            })
            .collect(),
        observers: Vec::new(),
        regulators: Regulators {
            threshold: 2,
            keys: dev_regulator_keys()
                .iter()
                .enumerate()
                .map(|(i, k)| Regulator {
                    name: format!("regulator-{i}"),
                    public_key: k.public(),
                })
                .collect(),
        },
        issuers: vec![IssuerEntry {
            credit_code: dev_issuer_code(),
            name: "杭州市第一人民医院 (dev)".to_owned(),
            public_key: dev_issuer_key().public(),
            code_prefixes: vec![prefix(DEV_CODE_PREFIX)],
            valid_until: Some(dev_valid_until()),
        }],
        reimbursers: vec![ReimburserEntry {
            credit_code: dev_reimburser_code(),
            name: "浙江医保报销中心 (dev)".to_owned(),
            public_key: dev_reimburser_key().public(),
            valid_until: Some(dev_valid_until()),
        }],
    }
}

/// The dev chain's genesis (chain id `ebill-dev`, one validator).
pub fn dev_genesis() -> Genesis {
    dev_genesis_with(DEV_CHAIN_ID, 1)
}

/// A valid sample bill of the dev issuer: code `33010126`, the given number, one item of
/// `amount_fen`, issued at `issued_at_ms` (+08:00).
pub fn sample_bill(number: u64, amount_fen: u64, issued_at_ms: i64) -> Bill {
    Bill {
        code: BillCode::parse("33010126").unwrap_or_else(|e| unreachable!("{e}")),
        number: BillNumber::parse(&format!("{:010}", number % 10_000_000_000))
            .unwrap_or_else(|e| unreachable!("{e}")),
        kind: BillKind::MedicalOutpatient,
        issuer: dev_issuer_code(),
        issued_at: Timestamp {
            unix_ms: issued_at_ms,
            offset_min: 480,
        },
        payer: Payer {
            payer_type: PayerType::Person,
            name: "张三".to_owned(),
            id: "330102199001011234".to_owned(),
        },
        items: vec![Item {
            code: "001".to_owned(),
            name: "西药费".to_owned(),
            quantity: Quantity(Quantity::SCALE),
            unit: "次".to_owned(),
            unit_price: Fen(amount_fen),
            amount: Fen(amount_fen),
        }],
        total: Fen(amount_fen),
        currency: Currency::Cny,
        remark: String::new(),
        related: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_is_valid_and_its_sample_bill_too() {
        let g = dev_genesis();
        assert_eq!(g.validate(), Ok(()));
        assert_eq!(
            sample_bill(1, 1250, DEV_GENESIS_TIME_MS).validate(&g.params),
            Ok(())
        );
        assert_eq!(dev_genesis_with("ebill-sim", 7).validate(), Ok(()));
        assert!(
            test_credit_code('B', 3)
                .to_string()
                .starts_with("91330100MB")
        );
    }
}
