//! The electronic bill (docs/design.md §2; bytes in docs/spec/bill.md): its identity, its fields and their rules, the
//! check code, and the signed bill file that a payer receives.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::credit_code::CreditCode;
use crate::genesis::Params;
use crate::keys::Signature;
use crate::limits;
use crate::money::{Fen, Quantity};
use crate::text::check_text;
use crate::timestamp::Timestamp;

/// Why a bill was refused. `code()` is the stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BillError {
    /// A field broke its rule.
    #[error("{field}: {reason}")]
    Field {
        /// The field, as named in the JSON form.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The item amounts do not add up to the total.
    #[error("items add up to {items_sum}, but the total is {total}")]
    TotalMismatch {
        /// Sum of the item amounts.
        items_sum: Fen,
        /// The declared total.
        total: Fen,
    },
}

impl BillError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            BillError::Field { .. } => "invalid_bill",
            BillError::TotalMismatch { .. } => "amounts_inconsistent",
        }
    }
}

pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> BillError {
    BillError::Field {
        field,
        reason: reason.into(),
    }
}

macro_rules! digit_string {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Validates exactly the right number of ASCII digits.
            pub fn parse(s: &str) -> Result<Self, BillError> {
                let b = s.as_bytes();
                if b.len() != $len || !b.iter().all(u8::is_ascii_digit) {
                    return Err(field($what, format!("must be {} digits, got {:?}", $len, s)));
                }
                let mut out = [0u8; $len];
                out.copy_from_slice(b);
                Ok(Self(out))
            }

            /// The digits as text.
            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).unwrap_or_else(|_| unreachable!("digits are ASCII"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl Canonical for $name {
            fn encode_to(&self, enc: &mut Encoder) {
                enc.fixed(&self.0);
            }
            fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                let raw: [u8; $len] = dec.array($what)?;
                let s = std::str::from_utf8(&raw).map_err(|_| DecodeError::BadUtf8($what))?;
                Self::parse(s).map_err(|e| DecodeError::Invalid { what: $what, reason: e.to_string() })
            }
        }
    };
}

digit_string!(
    /// The bill code (票据代码): region(2) + category(2) + kind(2) + year(2).
    BillCode, 8, "code"
);
digit_string!(
    /// The bill number (票据号码), ten digits.
    BillNumber, 10, "number"
);

impl BillCode {
    /// True if the code starts with `prefix` (one of the issuer's registered prefixes).
    pub fn has_prefix(&self, prefix: &CodePrefix) -> bool {
        self.as_str().starts_with(prefix.as_str())
    }
}

/// A prefix of bill codes an issuer may use: 1 to 8 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodePrefix(String);

impl CodePrefix {
    /// Validates 1 to 8 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, BillError> {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field(
                "code_prefixes",
                format!("a prefix is 1 to 8 digits, got {s:?}"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CodePrefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CodePrefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Canonical for CodePrefix {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.str(&self.0);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let s = dec.str("code prefix", 8)?;
        Self::parse(s).map_err(|e| DecodeError::Invalid {
            what: "code prefix",
            reason: e.to_string(),
        })
    }
}

/// A bill's identity for all time: (code, number).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillId {
    /// The bill code.
    pub code: BillCode,
    /// The bill number.
    pub number: BillNumber,
}

impl BillId {
    /// The 18-byte key: code digits then number digits.
    pub fn key(&self) -> [u8; 18] {
        let mut k = [0u8; 18];
        k[..8].copy_from_slice(&self.code.0);
        k[8..].copy_from_slice(&self.number.0);
        k
    }
}

impl fmt::Display for BillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.code, self.number)
    }
}

impl fmt::Debug for BillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BillId({self})")
    }
}

impl Canonical for BillId {
    fn encode_to(&self, enc: &mut Encoder) {
        self.code.encode_to(enc);
        self.number.encode_to(enc);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            code: BillCode::decode_from(dec)?,
            number: BillNumber::decode_from(dec)?,
        })
    }
}

/// Declares a closed enum with a stable wire byte and a snake_case JSON name per variant.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $what:expr, { $($(#[$vdoc:meta])* $variant:ident = $tag:expr, $json:expr;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $json)] $variant,)+
        }

        impl $name {
            /// Every variant, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire byte.
            pub fn tag(self) -> u8 {
                match self { $($name::$variant => $tag,)+ }
            }

            /// The JSON name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $json,)+ }
            }
        }

        impl Canonical for $name {
            fn encode_to(&self, enc: &mut Encoder) {
                enc.u8(self.tag());
            }
            fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                match dec.u8($what)? {
                    $($tag => Ok($name::$variant),)+
                    v => Err(DecodeError::InvalidTag { what: $what, value: u64::from(v) }),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// The kind of bill: the fiscal kinds and the medical ones.
    BillKind, "bill kind", {
        /// 非税收入一般缴款书
        NonTaxPayment = 1, "non_tax_payment";
        /// 非税收入通用票据
        NonTaxGeneral = 2, "non_tax_general";
        /// 非税收入专用票据
        NonTaxSpecial = 3, "non_tax_special";
        /// 行政事业单位资金往来结算票据
        FundSettlement = 4, "fund_settlement";
        /// 公益事业捐赠票据
        Donation = 5, "donation";
        /// 社会团体会费票据
        MembershipFee = 6, "membership_fee";
        /// 医疗收费票据(门诊)
        MedicalOutpatient = 7, "medical_outpatient";
        /// 医疗收费票据(住院)
        MedicalInpatient = 8, "medical_inpatient";
        /// 医疗收费票据(体检等其他)
        MedicalOther = 9, "medical_other";
    }
);

wire_enum!(
    /// Whether the payer is a person or a unit.
    PayerType, "payer type", {
        /// A natural person.
        Person = 1, "person";
        /// An organisation.
        Unit = 2, "unit";
    }
);

/// Who paid.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    /// Person or unit.
    #[serde(rename = "type")]
    pub payer_type: PayerType,
    /// Name (personal data: masked in public answers).
    pub name: String,
    /// Identity number of a person, or the credit code of a unit.
    pub id: String,
}

impl Payer {
    fn validate(&self) -> Result<(), BillError> {
        check_text("payer.name", &self.name, limits::MAX_NAME_BYTES, false)?;
        match self.payer_type {
            PayerType::Person => {
                if self.id.is_empty()
                    || self.id.len() > limits::MAX_PAYER_ID_BYTES
                    || !self
                        .id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(field(
                        "payer.id",
                        format!(
                            "a person's id is 1 to {} letters, digits or '-'",
                            limits::MAX_PAYER_ID_BYTES
                        ),
                    ));
                }
            }
            PayerType::Unit => {
                CreditCode::parse(&self.id).map_err(|e| field("payer.id", e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The payer as shown to the public: name and id masked.
    pub fn masked(&self) -> Payer {
        let mask = |s: &str, keep_front: usize, keep_back: usize| -> String {
            let chars: Vec<char> = s.chars().collect();
            if chars.len() <= keep_front + keep_back {
                return "*".repeat(chars.len().max(1));
            }
            let mut out: String = chars[..keep_front].iter().collect();
            out.push_str(&"*".repeat(chars.len() - keep_front - keep_back));
            out.extend(&chars[chars.len() - keep_back..]);
            out
        };
        Payer {
            payer_type: self.payer_type,
            name: match self.payer_type {
                PayerType::Person => mask(&self.name, 1, 0),
                PayerType::Unit => self.name.clone(),
            },
            id: mask(&self.id, 4, 4),
        }
    }
}

impl Canonical for Payer {
    fn encode_to(&self, enc: &mut Encoder) {
        self.payer_type.encode_to(enc);
        enc.str(&self.name).str(&self.id);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            payer_type: PayerType::decode_from(dec)?,
            name: dec.str("payer name", limits::MAX_NAME_BYTES)?.to_owned(),
            id: dec
                .str("payer id", limits::MAX_PAYER_ID_BYTES.max(18))?
                .to_owned(),
        })
    }
}

/// One line of a bill.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The charge item's code.
    pub code: String,
    /// The charge item's name.
    pub name: String,
    /// How many.
    pub quantity: Quantity,
    /// The unit of quantity (次, 盒, ...).
    pub unit: String,
    /// Price of one unit.
    pub unit_price: Fen,
    /// quantity × unit_price, rounded half up to the fen.
    pub amount: Fen,
}

/// Checks that the amount `value` of the field `what` is within the chain's
/// `params.max_amount_fen`.
fn check_amount(
    what: &'static str,
    at: &str,
    value: Fen,
    params: &Params,
) -> Result<(), BillError> {
    if value.0 > params.max_amount_fen {
        return Err(field(
            what,
            format!(
                "{at}{value} yuan is over the chain's limit of {} yuan (params.max_amount_fen)",
                Fen(params.max_amount_fen)
            ),
        ));
    }
    Ok(())
}

impl Item {
    fn validate(&self, index: usize, params: &Params) -> Result<(), BillError> {
        check_text("items.code", &self.code, limits::MAX_ITEM_CODE_BYTES, false)?;
        check_text("items.name", &self.name, limits::MAX_NAME_BYTES, false)?;
        check_text("items.unit", &self.unit, limits::MAX_UNIT_BYTES, true)?;
        let at = format!("item {index}: ");
        if self.quantity.0 > params.max_item_quantity.saturating_mul(Quantity::SCALE) {
            return Err(field(
                "items.quantity",
                format!(
                    "{at}{} is over the chain's limit of {} (params.max_item_quantity)",
                    self.quantity, params.max_item_quantity
                ),
            ));
        }
        check_amount("items.unit_price", &at, self.unit_price, params)?;
        check_amount("items.amount", &at, self.amount, params)?;
        match self.quantity.times(self.unit_price) {
            Some(expected) if expected == self.amount => Ok(()),
            Some(expected) => Err(field(
                "items.amount",
                format!(
                    "item {index}: {} × {} is {expected}, not {}",
                    self.quantity, self.unit_price, self.amount
                ),
            )),
            None => Err(field(
                "items.amount",
                format!("item {index}: amount overflows"),
            )),
        }
    }
}

impl Canonical for Item {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.str(&self.code)
            .str(&self.name)
            .u64(self.quantity.0)
            .str(&self.unit)
            .u64(self.unit_price.0)
            .u64(self.amount.0);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            code: dec
                .str("item code", limits::MAX_ITEM_CODE_BYTES)?
                .to_owned(),
            name: dec.str("item name", limits::MAX_NAME_BYTES)?.to_owned(),
            quantity: Quantity(dec.u64("quantity")?),
            unit: dec.str("item unit", limits::MAX_UNIT_BYTES)?.to_owned(),
            unit_price: Fen(dec.u64("unit price")?),
            amount: Fen(dec.u64("amount")?),
        })
    }
}

/// The only currency.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub enum Currency {
    /// Renminbi.
    #[default]
    #[serde(rename = "CNY")]
    Cny,
}

/// A bill as its issuing unit hands it in (docs/design.md §2). Unknown JSON fields are
/// refused.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bill {
    /// 票据代码.
    pub code: BillCode,
    /// 票据号码.
    pub number: BillNumber,
    /// The kind of bill.
    pub kind: BillKind,
    /// The issuing unit's credit code.
    pub issuer: CreditCode,
    /// When it was issued, with the issuer's offset.
    pub issued_at: Timestamp,
    /// Who paid.
    pub payer: Payer,
    /// The lines, at least one.
    pub items: Vec<Item>,
    /// The sum of the item amounts; more than zero.
    pub total: Fen,
    /// Always CNY.
    pub currency: Currency,
    /// Free text.
    #[serde(default)]
    pub remark: String,
    /// A related bill (for example the one this replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<BillId>,
}

impl Bill {
    /// The bill id.
    pub fn id(&self) -> BillId {
        BillId {
            code: self.code,
            number: self.number,
        }
    }

    /// Checks every rule that needs no ledger state: texts, items, amounts, total, and
    /// the chain's bounds on amounts and quantities (`params`, from the genesis).
    pub fn validate(&self, params: &Params) -> Result<(), BillError> {
        self.payer.validate()?;
        if self.items.is_empty() {
            return Err(field("items", "a bill has at least one item"));
        }
        if self.items.len() > limits::MAX_ITEMS {
            return Err(field(
                "items",
                format!(
                    "{} items, over the limit of {}",
                    self.items.len(),
                    limits::MAX_ITEMS
                ),
            ));
        }
        let mut sum = Fen(0);
        for (i, item) in self.items.iter().enumerate() {
            item.validate(i, params)?;
            sum = sum
                .checked_add(item.amount)
                .ok_or_else(|| field("items", "amounts overflow"))?;
        }
        if self.total.0 == 0 {
            return Err(field("total", "must be more than zero"));
        }
        check_amount("total", "", self.total, params)?;
        if sum != self.total {
            return Err(BillError::TotalMismatch {
                items_sum: sum,
                total: self.total,
            });
        }
        check_text("remark", &self.remark, limits::MAX_REMARK_BYTES, true)?;
        if self.related == Some(self.id()) {
            return Err(field("related", "a bill cannot be related to itself"));
        }
        Ok(())
    }
}

impl Canonical for Bill {
    fn encode_to(&self, enc: &mut Encoder) {
        self.code.encode_to(enc);
        self.number.encode_to(enc);
        self.kind.encode_to(enc);
        self.issuer.encode_to(enc);
        self.issued_at.encode_to(enc);
        self.payer.encode_to(enc);
        enc.seq(&self.items, |e, item| item.encode_to(e));
        enc.u64(self.total.0);
        enc.u8(1); // currency: CNY is the only one
        enc.str(&self.remark);
        enc.option(self.related.as_ref(), |e, r| r.encode_to(e));
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let code = BillCode::decode_from(dec)?;
        let number = BillNumber::decode_from(dec)?;
        let kind = BillKind::decode_from(dec)?;
        let issuer = CreditCode::decode_from(dec)?;
        let issued_at = Timestamp::decode_from(dec)?;
        let payer = Payer::decode_from(dec)?;
        let items = dec.seq("items", limits::MAX_ITEMS, Item::decode_from)?;
        let total = Fen(dec.u64("total")?);
        match dec.u8("currency")? {
            1 => {}
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "currency",
                    value: u64::from(v),
                });
            }
        }
        let remark = dec.str("remark", limits::MAX_REMARK_BYTES)?.to_owned();
        let related = dec.option("related bill", BillId::decode_from)?;
        Ok(Self {
            code,
            number,
            kind,
            issuer,
            issued_at,
            payer,
            items,
            total,
            currency: Currency::Cny,
            remark,
            related,
        })
    }
}

/// The check code (校验码): six characters of `[0-9a-z]` derived from the issuer's
/// signature, so that only a holder of the signed bill knows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckCode([u8; 6]);

impl CheckCode {
    /// Domain tag of the derivation.
    pub const DOMAIN: &'static [u8] = b"ebill/check-code/v1";
    const ALPHABET: &'static [u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

    /// Derives the check code: the first 8 bytes of SHA-256(domain || signature) as a
    /// big-endian integer, modulo 36^6, written as 6 base-36 digits.
    pub fn derive(signature: &Signature) -> Self {
        let mut h = Sha256::new();
        h.update(Self::DOMAIN);
        h.update(signature.0);
        let digest = h.finalize();
        let mut first8 = [0u8; 8];
        first8.copy_from_slice(&digest[..8]);
        let mut v = u64::from_be_bytes(first8) % 36u64.pow(6);
        let mut out = [b'0'; 6];
        for slot in out.iter_mut().rev() {
            *slot = Self::ALPHABET[(v % 36) as usize];
            v /= 36;
        }
        Self(out)
    }

    /// Parses six characters of `[0-9a-z]`.
    pub fn parse(s: &str) -> Result<Self, BillError> {
        let b = s.as_bytes();
        if b.len() != 6
            || !b
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        {
            return Err(field("check_code", "must be 6 characters of 0-9 and a-z"));
        }
        let mut out = [0u8; 6];
        out.copy_from_slice(b);
        Ok(Self(out))
    }

    /// As text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_else(|_| unreachable!("check code is ASCII"))
    }

    /// Compares in constant time, so that a query's timing says nothing about how many
    /// characters were right.
    pub fn ct_eq(&self, other: &CheckCode) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Display for CheckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CheckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckCode({})", self.as_str())
    }
}

impl Serialize for CheckCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Canonical for CheckCode {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.fixed(&self.0);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let raw: [u8; 6] = dec.array("check code")?;
        let s = std::str::from_utf8(&raw).map_err(|_| DecodeError::BadUtf8("check code"))?;
        Self::parse(s).map_err(|e| DecodeError::Invalid {
            what: "check code",
            reason: e.to_string(),
        })
    }
}

/// The signed bill file a payer receives: the bill, the issuer's signature over its
/// IssueBill transaction, and the check code derived from that signature. In JSON it is
/// the bill's object with two more fields, `signature` and `check_code`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedBill {
    /// The bill.
    pub bill: Bill,
    /// The issuer's signature over the IssueBill transaction.
    pub signature: Signature,
    /// The check code derived from the signature.
    pub check_code: CheckCode,
}

impl Serialize for SignedBill {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.bill).map_err(serde::ser::Error::custom)?;
        if let serde_json::Value::Object(map) = &mut v {
            map.insert("signature".into(), self.signature.to_hex().into());
            map.insert("check_code".into(), self.check_code.as_str().into());
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SignedBill {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = match StrictJson::deserialize(d)?.0 {
            serde_json::Value::Object(map) => map,
            _ => return Err(D::Error::custom("a signed bill is a JSON object")),
        };
        let signature = map
            .remove("signature")
            .ok_or_else(|| D::Error::missing_field("signature"))?;
        let check_code = map
            .remove("check_code")
            .ok_or_else(|| D::Error::missing_field("check_code"))?;
        let signature: Signature = serde_json::from_value(signature).map_err(D::Error::custom)?;
        let check_code: CheckCode = serde_json::from_value(check_code).map_err(D::Error::custom)?;
        let bill: Bill =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(Self {
            bill,
            signature,
            check_code,
        })
    }
}

/// Any JSON value, refusing an object that names the same key twice at any depth: such
/// a document means different things to different parsers, and the typed forms (`Bill`
/// and its parts) refuse it too. `serde_json::Value` alone would keep the last one.
struct StrictJson(serde_json::Value);

impl<'de> Deserialize<'de> for StrictJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictJsonVisitor).map(StrictJson)
    }
}

struct StrictJsonVisitor;

impl<'de> serde::de::Visitor<'de> for StrictJsonVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        StrictJson::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictJson(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(serde_json::Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictJson(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field `{key}`"
                )));
            }
            out.insert(key, v);
        }
        Ok(serde_json::Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_code_is_six_base36_chars_and_deterministic() {
        let a = CheckCode::derive(&Signature([1; 64]));
        let b = CheckCode::derive(&Signature([1; 64]));
        let c = CheckCode::derive(&Signature([2; 64]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 6);
        assert!(CheckCode::parse(a.as_str()).is_ok());
        assert!(CheckCode::parse("ABCDEF").is_err());
        assert!(a.ct_eq(&b) && !a.ct_eq(&c));
    }

    #[test]
    fn a_bill_with_invisible_text_is_invalid() {
        for name in ["张\u{202E}三", "张\u{200B}三", "Jose\u{0301}"] {
            let mut bill = crate::dev::sample_bill(1, 100, 0);
            bill.payer.name = name.into();
            assert!(bill.validate(&Params::default()).is_err(), "{name:?}");
        }
    }

    #[test]
    fn masking_hides_personal_data() {
        let p = Payer {
            payer_type: PayerType::Person,
            name: "张三丰".into(),
            id: "330102199001011234".into(),
        };
        let m = p.masked();
        assert_eq!(m.name, "张**");
        assert_eq!(m.id, "3301**********1234");
    }
}
