//! Every other canonical decoder (the parts of transactions, blocks and bundles, and the
//! ledger's stored records), chosen by the first byte: no panic; strict.
#![no_main]

use ebill_fuzz::seeds::{self, MISC_TYPES};
use ebill_fuzz::strict;
use ebill_ledger::{BillRecord, UnitRecord};
use ebill_types::absence::{AbsenceProof, verify_absence};
use ebill_types::bill::{BillKind, BillNumber, Item, Payer};
use ebill_types::merkle::InclusionProof;
use ebill_types::proof::ProvedTx;
use ebill_types::proof::StateEvidence;
use ebill_types::state_tree::{BillState, StateProof, TreeNode};
use ebill_types::tx::TxKind;
use ebill_types::{
    Auth, Bill, BillCode, BillId, BillStatus, CheckCode, CodePrefix, CreditCode, Hash32, Header,
    PublicKey, Signature, Timestamp, Tx, TxBody,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        seeds::write_for("decode_misc");
    },
    |data: &[u8]| {
        let Some((&sel, rest)) = data.split_first() else {
            return;
        };
        let name = MISC_TYPES[usize::from(sel) % MISC_TYPES.len()];
        match name {
            "Header" => { strict::<Header>(name, rest); }
            "Bill" => {
                if let Some(b) = strict::<Bill>(name, rest) {
                    let _ = b.validate(&ebill_types::Params::default());
                    let _ = b.issued_at.to_rfc3339();
                    let _ = b.payer.masked();
                }
            }
            "Tx" => { strict::<Tx>(name, rest); }
            "TxBody" => { strict::<TxBody>(name, rest); }
            "Auth" => { strict::<Auth>(name, rest); }
            "InclusionProof" => {
                if let Some(p) = strict::<InclusionProof>(name, rest) {
                    let _ = p.verify(&Hash32::ZERO, &Hash32::ZERO);
                }
            }
            "ProvedTx" => { strict::<ProvedTx>(name, rest); }
            "Timestamp" => {
                if let Some(t) = strict::<Timestamp>(name, rest) {
                    // What decodes has a text form, and the text reads back the same.
                    let text = t.to_rfc3339().unwrap_or_else(|e| panic!("{t:?} decoded but has no text: {e}"));
                    assert_eq!(Timestamp::parse(&text).ok(), Some(t), "{text} reads back otherwise");
                }
            }
            "BillId" => { strict::<BillId>(name, rest); }
            "CreditCode" => { strict::<CreditCode>(name, rest); }
            "CheckCode" => { strict::<CheckCode>(name, rest); }
            "CodePrefix" => { strict::<CodePrefix>(name, rest); }
            "PublicKey" => {
                if let Some(k) = strict::<PublicKey>(name, rest) {
                    let _ = k.check_registrable();
                }
            }
            "Signature" => { strict::<Signature>(name, rest); }
            "Hash32" => { strict::<Hash32>(name, rest); }
            "BillStatus" => { strict::<BillStatus>(name, rest); }
            "Payer" => { strict::<Payer>(name, rest); }
            "Item" => { strict::<Item>(name, rest); }
            "BillRecord" => { strict::<BillRecord>(name, rest); }
            "UnitRecord" => { strict::<UnitRecord>(name, rest); }
            "BillCode" => { strict::<BillCode>(name, rest); }
            "BillNumber" => { strict::<BillNumber>(name, rest); }
            "TxKind" => { strict::<TxKind>(name, rest); }
            "BillKind" => { strict::<BillKind>(name, rest); }
            "StateEvidence" => { strict::<StateEvidence>(name, rest); }
            "BillState" => { strict::<BillState>(name, rest); }
            "TreeNode" => {
                if let Some(n) = strict::<TreeNode>(name, rest) {
                    let _ = n.hash();
                }
            }
            "StateProof" => {
                if let Some(p) = strict::<StateProof>(name, rest) {
                    let key = Hash32([7; 32]);
                    let _ = p.verify_member(&Hash32::ZERO, &key, &Hash32::ZERO);
                    let _ = p.verify_absent(&Hash32::ZERO, &key);
                }
            }
            "AbsenceProof" => {
                if let Some(p) = strict::<AbsenceProof>(name, rest) {
                    let r = ebill_fuzz::reference::Reference::get();
                    let _ = verify_absence(&p, &r.genesis);
                    let _ = p.to_json();
                }
            }
            other => unreachable!("no decoder for {other}"),
        }
    }
);
