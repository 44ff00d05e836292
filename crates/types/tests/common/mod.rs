//! Fixed keys, units and a realistic bill shared by the integration tests.
//!
//! Every value here is a constant of the golden vectors: changing one changes the files
//! in `tests/vectors/`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ebill_types::bill::Currency;
use ebill_types::{
    Bill, BillCode, BillId, BillKind, BillNumber, CreditCode, Fen, Item, Keypair, Payer, PayerType,
    PublicKey, Quantity, Timestamp,
};

/// The chain id of every vector.
pub const CHAIN_ID: &str = "ebill-golden";

/// Seed of the issuing unit's key.
pub const ISSUER_SEED: [u8; 32] = [1; 32];
/// Seed of the reimbursing unit's key.
pub const REIMBURSER_SEED: [u8; 32] = [2; 32];
/// Seeds of the three regulators (threshold 2).
pub const REGULATOR_SEEDS: [[u8; 32]; 3] = [[3; 32], [4; 32], [5; 32]];
/// Seed of the key a unit rotates to.
pub const ROTATED_SEED: [u8; 32] = [6; 32];
/// Seed of a newly registered issuer.
pub const NEW_ISSUER_SEED: [u8; 32] = [7; 32];
/// Seed of a newly registered reimburser.
pub const NEW_REIMBURSER_SEED: [u8; 32] = [8; 32];
/// Seeds of the four validators.
pub const VALIDATOR_SEEDS: [[u8; 32]; 4] = [[10; 32], [11; 32], [12; 32], [13; 32]];
/// Seed of the one observer node.
pub const OBSERVER_SEED: [u8; 32] = [20; 32];

pub fn key(seed: [u8; 32]) -> Keypair {
    Keypair::from_seed(seed)
}

pub fn public(seed: [u8; 32]) -> PublicKey {
    Keypair::from_seed(seed).public()
}

pub fn regulator_keys() -> Vec<Keypair> {
    REGULATOR_SEEDS.iter().map(|s| key(*s)).collect()
}

pub fn validator_keys() -> Vec<Keypair> {
    VALIDATOR_SEEDS.iter().map(|s| key(*s)).collect()
}

fn credit(first17: &str) -> CreditCode {
    let code = CreditCode::complete(first17).expect("valid credit code body");
    // The completed code must pass the full check on its own.
    assert_eq!(CreditCode::parse(code.as_str()), Ok(code));
    code
}

/// 杭州市某医院: the issuing unit (institution, 12 + region 330100).
pub fn issuer_code() -> CreditCode {
    credit("12330100MB0000001")
}

/// The reimbursing unit (an insurer: enterprise, 91 + region 330106).
pub fn reimburser_code() -> CreditCode {
    credit("91330106MA2B00001")
}

/// A unit registered by the RegisterIssuer vector.
pub fn new_issuer_code() -> CreditCode {
    credit("12330200MB0000003")
}

/// A unit registered by the RegisterReimburser vector.
pub fn new_reimburser_code() -> CreditCode {
    credit("91330200MA2C00004")
}

/// The design's example bill: 门诊, 张三, one item 西药费 1 × 12.50.
pub fn example_bill() -> Bill {
    Bill {
        code: BillCode::parse("33010126").unwrap(),
        number: BillNumber::parse("0000000001").unwrap(),
        kind: BillKind::MedicalOutpatient,
        issuer: issuer_code(),
        issued_at: Timestamp::parse("2026-11-29T10:15:00+08:00").unwrap(),
        payer: Payer {
            payer_type: PayerType::Person,
            name: "张三".into(),
            id: "330102199001011234".into(),
        },
        items: vec![Item {
            code: "001".into(),
            name: "西药费".into(),
            quantity: Quantity::parse("1").unwrap(),
            unit: "次".into(),
            unit_price: Fen::parse("12.50").unwrap(),
            amount: Fen::parse("12.50").unwrap(),
        }],
        total: Fen::parse("12.50").unwrap(),
        currency: Currency::Cny,
        remark: String::new(),
        related: None,
    }
}

pub fn example_bill_id() -> BillId {
    example_bill().id()
}

/// Proptest settings with `cases` cases and a fixed seed, so that every run tries the
/// same inputs (tests are deterministic); set `PROPTEST_RNG_SEED` to explore others.
pub fn deterministic(cases: u32) -> proptest::test_runner::Config {
    let base = proptest::test_runner::Config {
        cases,
        ..proptest::test_runner::Config::default()
    };
    let rng_seed = if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
        base.rng_seed
    } else {
        proptest::test_runner::RngSeed::Fixed(0x0eb1_11ed)
    };
    proptest::test_runner::Config { rng_seed, ..base }
}
