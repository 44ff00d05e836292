//! The bundle verifier on structured mutations of the reference bundle: the fuzzer picks
//! up to 8 edits (drop, duplicate, swap or insert entries, including genuine entries of
//! other bills; change any field of a transaction, header, inclusion proof or
//! certificate; take headers, proofs or certificates from other entries; drop, repeat,
//! reorder or alter precommits; edit the canonical bytes of a part or of the whole
//! bundle). A mutant that verifies must be justified by the reference chain
//! (`ebill_fuzz::oracle`): any other difference that verifies is a false verification.
#![no_main]

use ebill_fuzz::oracle::assert_justified;
use ebill_fuzz::reference::Reference;
use ebill_types::codec::Canonical;
use ebill_types::proof::{BUNDLE_VERSION, ProofBundle, StateEvidence, verify_bundle};
use ebill_types::{CommitCertificate, Hash32, Header, SignedTx};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// A change of canonical bytes at a position (taken modulo the length).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ByteEdit {
    Set(u32, u8),
    Xor(u32, u8),
    Insert(u32, u8),
    Remove(u32),
    Truncate(u32),
}

impl ByteEdit {
    fn apply(self, bytes: &mut Vec<u8>) {
        let at = |p: u32, len: usize| if len == 0 { 0 } else { p as usize % len };
        match self {
            ByteEdit::Set(p, v) if !bytes.is_empty() => {
                let i = at(p, bytes.len());
                bytes[i] = v;
            }
            ByteEdit::Xor(p, v) if !bytes.is_empty() => {
                let i = at(p, bytes.len());
                bytes[i] ^= v.max(1);
            }
            ByteEdit::Insert(p, v) => {
                let i = at(p, bytes.len() + 1);
                bytes.insert(i, v);
            }
            ByteEdit::Remove(p) if !bytes.is_empty() => {
                let i = at(p, bytes.len());
                bytes.remove(i);
            }
            ByteEdit::Truncate(p) => {
                let i = at(p, bytes.len() + 1);
                bytes.truncate(i);
            }
            _ => {}
        }
    }
}

/// Which header field to set.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum HeaderField {
    Height(u64),
    PrevHash(u8),
    Time(u64),
    Proposer(u32),
    TxRoot(u8),
    TxCount(u32),
    ValidatorSetHash(u8),
    StateRoot(u8),
    ChainId(u8),
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    DropEntry(u8),
    DuplicateEntry(u8),
    SwapEntries(u8, u8),
    /// A genuine entry of the chain (any block, any transaction) at a position.
    InsertGenuine {
        at: u8,
        block: u8,
        tx: u8,
    },
    /// Prove another bill of the chain.
    SetBill(u8),
    SetVersion(u32),
    SetChainId(u8),
    FlipGenesisHash(u8),
    TxBytes(u8, ByteEdit),
    TxNonce(u8, u64),
    /// Another transaction of the chain in this entry (its proof and header unchanged).
    TxFrom {
        entry: u8,
        block: u8,
        tx: u8,
    },
    HeaderSet(u8, HeaderField),
    HeaderBytes(u8, ByteEdit),
    HeaderFrom {
        entry: u8,
        block: u8,
    },
    ProofLeafIndex(u8, u64),
    ProofTreeSize(u8, u64),
    ProofPathDrop(u8, u8),
    ProofPathPush(u8, u8),
    ProofPathFlip(u8, u8, u8),
    ProofPathSwap(u8, u8, u8),
    ProofFrom {
        entry: u8,
        block: u8,
        tx: u8,
    },
    CertFrom {
        entry: u8,
        block: u8,
    },
    CertDropSig(u8, u8),
    CertDupSig(u8, u8),
    CertSwapSigs(u8, u8, u8),
    CertSigValidator(u8, u8, u32),
    CertSigFlip(u8, u8, u8),
    /// A precommit of another block's certificate.
    CertAddSigFrom {
        entry: u8,
        block: u8,
        sig: u8,
    },
    CertRound(u8, u32),
    CertHeight(u8, u64),
    CertBlock(u8, u8),
    CertBytes(u8, ByteEdit),
    BundleBytes(ByteEdit),
    /// Make it a version 2 bundle with a state proof on a genuine header and
    /// certificate, record and path bytes chosen by the fuzzer (or the golden bill's
    /// record): the reference chain has no state, so this never verifies.
    AddState {
        block: u8,
        golden_record: bool,
        record: Vec<u8>,
        proof: Vec<u8>,
    },
    DropState,
}

/// The canonical record of the golden bill in the ledger's state tree form.
fn golden_bill_state() -> Option<Vec<u8>> {
    let ledger = ebill_fuzz::ledger::Ledger::get();
    let rec = ledger.state().bills.values().next()?;
    Some(ebill_ledger::bill_state(rec).to_canonical_bytes())
}

/// Some hash: one of the chain's block hashes, tx roots, or a fixed pattern.
fn some_hash(r: &Reference, k: u8) -> Hash32 {
    let n = r.blocks.len();
    let i = usize::from(k);
    match i % 4 {
        0 => r.blocks[(i / 4) % n].header.hash(),
        1 => r.blocks[(i / 4) % n].header.tx_root,
        2 => r.genesis_hash,
        _ => Hash32([k; 32]),
    }
}

fn pick(len: usize, k: u8) -> Option<usize> {
    (len > 0).then(|| usize::from(k) % len)
}

fn edit_canonical<T: Canonical>(value: &mut T, edit: ByteEdit) -> bool {
    let mut bytes = value.to_canonical_bytes();
    edit.apply(&mut bytes);
    match T::from_canonical_bytes(&bytes) {
        Ok(v) => {
            *value = v;
            true
        }
        Err(_) => false,
    }
}

/// Applies `op` to `m`; `false` if the mutant is no longer a bundle (stop there).
fn apply(r: &Reference, m: &mut ProofBundle, op: Op) -> bool {
    let n = m.entries.len();
    let entry = |m: &mut ProofBundle, k: u8| -> Option<usize> { pick(m.entries.len(), k) };
    match op {
        Op::DropEntry(k) => {
            if let Some(i) = pick(n, k) {
                m.entries.remove(i);
            }
        }
        Op::DuplicateEntry(k) => {
            if let Some(i) = pick(n, k) {
                let e = m.entries[i].clone();
                m.entries.insert(i, e);
            }
        }
        Op::SwapEntries(a, b) => {
            if let (Some(i), Some(j)) = (pick(n, a), pick(n, b)) {
                m.entries.swap(i, j);
            }
        }
        Op::InsertGenuine { at, block, tx } => {
            let i = usize::from(at) % (n + 1);
            m.entries
                .insert(i, r.entry(usize::from(block), usize::from(tx)));
        }
        Op::SetBill(k) => {
            let ids = r.bill_ids();
            if let Some(i) = pick(ids.len(), k) {
                m.bill = ids[i];
            }
        }
        Op::SetVersion(v) => m.version = v,
        Op::SetChainId(k) => {
            m.chain_id = match k % 4 {
                0 => String::new(),
                1 => format!("{}x", r.genesis.chain_id),
                2 => r.genesis.chain_id.to_uppercase(),
                _ => "ebill-golden".into(),
            }
        }
        Op::FlipGenesisHash(k) => m.genesis_hash.0[usize::from(k) % 32] ^= 1 << (k % 8),
        Op::TxBytes(k, edit) => {
            if let Some(i) = entry(m, k) {
                let mut tx: SignedTx = m.entries[i].tx.clone();
                if edit_canonical(&mut tx, edit) {
                    m.entries[i].tx = tx;
                }
            }
        }
        Op::TxNonce(k, v) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].tx.tx.nonce = v;
            }
        }
        Op::TxFrom {
            entry: k,
            block,
            tx,
        } => {
            if let Some(i) = entry(m, k) {
                m.entries[i].tx = r.entry(usize::from(block), usize::from(tx)).tx;
            }
        }
        Op::HeaderSet(k, f) => {
            if let Some(i) = entry(m, k) {
                let h: &mut Header = &mut m.entries[i].header;
                match f {
                    HeaderField::Height(v) => h.height = v,
                    HeaderField::PrevHash(x) => h.prev_hash = some_hash(r, x),
                    HeaderField::Time(v) => h.time_ms = v,
                    HeaderField::Proposer(v) => h.proposer = v,
                    HeaderField::TxRoot(x) => h.tx_root = some_hash(r, x),
                    HeaderField::TxCount(v) => h.tx_count = v,
                    HeaderField::ValidatorSetHash(x) => h.validator_set_hash = some_hash(r, x),
                    HeaderField::StateRoot(x) => h.state_root = some_hash(r, x),
                    HeaderField::ChainId(x) => h.chain_id = format!("{}{x}", h.chain_id),
                }
            }
        }
        Op::HeaderBytes(k, edit) => {
            if let Some(i) = entry(m, k) {
                let mut h = m.entries[i].header.clone();
                if edit_canonical(&mut h, edit) {
                    m.entries[i].header = h;
                }
            }
        }
        Op::HeaderFrom { entry: k, block } => {
            if let Some(i) = entry(m, k) {
                m.entries[i].header = r.blocks[usize::from(block) % r.blocks.len()].header.clone();
            }
        }
        Op::ProofLeafIndex(k, v) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].proof.leaf_index = v;
            }
        }
        Op::ProofTreeSize(k, v) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].proof.tree_size = v;
            }
        }
        Op::ProofPathDrop(k, p) => {
            if let Some(i) = entry(m, k) {
                let path = &mut m.entries[i].proof.path;
                if let Some(j) = pick(path.len(), p) {
                    path.remove(j);
                }
            }
        }
        Op::ProofPathPush(k, x) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].proof.path.push(some_hash(r, x));
            }
        }
        Op::ProofPathFlip(k, p, bit) => {
            if let Some(i) = entry(m, k) {
                let path = &mut m.entries[i].proof.path;
                if let Some(j) = pick(path.len(), p) {
                    path[j].0[usize::from(bit) % 32] ^= 1 << (bit % 8);
                }
            }
        }
        Op::ProofPathSwap(k, a, b) => {
            if let Some(i) = entry(m, k) {
                let path = &mut m.entries[i].proof.path;
                if let (Some(x), Some(y)) = (pick(path.len(), a), pick(path.len(), b)) {
                    path.swap(x, y);
                }
            }
        }
        Op::ProofFrom {
            entry: k,
            block,
            tx,
        } => {
            if let Some(i) = entry(m, k) {
                m.entries[i].proof = r.entry(usize::from(block), usize::from(tx)).proof;
            }
        }
        Op::CertFrom { entry: k, block } => {
            if let Some(i) = entry(m, k) {
                m.entries[i].certificate = r.certs[usize::from(block) % r.certs.len()].clone();
            }
        }
        Op::CertDropSig(k, s) => {
            if let Some(i) = entry(m, k) {
                let sigs = &mut m.entries[i].certificate.signatures;
                if let Some(j) = pick(sigs.len(), s) {
                    sigs.remove(j);
                }
            }
        }
        Op::CertDupSig(k, s) => {
            if let Some(i) = entry(m, k) {
                let sigs = &mut m.entries[i].certificate.signatures;
                if let Some(j) = pick(sigs.len(), s) {
                    let x = sigs[j];
                    sigs.insert(j, x);
                }
            }
        }
        Op::CertSwapSigs(k, a, b) => {
            if let Some(i) = entry(m, k) {
                let sigs = &mut m.entries[i].certificate.signatures;
                if let (Some(x), Some(y)) = (pick(sigs.len(), a), pick(sigs.len(), b)) {
                    sigs.swap(x, y);
                }
            }
        }
        Op::CertSigValidator(k, s, v) => {
            if let Some(i) = entry(m, k) {
                let sigs = &mut m.entries[i].certificate.signatures;
                if let Some(j) = pick(sigs.len(), s) {
                    sigs[j].validator = v;
                }
            }
        }
        Op::CertSigFlip(k, s, bit) => {
            if let Some(i) = entry(m, k) {
                let sigs = &mut m.entries[i].certificate.signatures;
                if let Some(j) = pick(sigs.len(), s) {
                    sigs[j].signature.0[usize::from(bit) % 64] ^= 1 << (bit % 8);
                }
            }
        }
        Op::CertAddSigFrom {
            entry: k,
            block,
            sig,
        } => {
            if let Some(i) = entry(m, k) {
                let from = &r.certs[usize::from(block) % r.certs.len()];
                if let Some(j) = pick(from.signatures.len(), sig) {
                    let s = from.signatures[j];
                    let sigs = &mut m.entries[i].certificate.signatures;
                    let at = sigs.partition_point(|x| x.validator < s.validator);
                    sigs.insert(at, s);
                }
            }
        }
        Op::CertRound(k, v) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].certificate.round = v;
            }
        }
        Op::CertHeight(k, v) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].certificate.height = v;
            }
        }
        Op::CertBlock(k, x) => {
            if let Some(i) = entry(m, k) {
                m.entries[i].certificate.block = some_hash(r, x);
            }
        }
        Op::CertBytes(k, edit) => {
            if let Some(i) = entry(m, k) {
                let mut c: CommitCertificate = m.entries[i].certificate.clone();
                if edit_canonical(&mut c, edit) {
                    m.entries[i].certificate = c;
                }
            }
        }
        Op::AddState {
            block,
            golden_record,
            record,
            proof,
        } => {
            let b = usize::from(block) % r.blocks.len();
            let record = match (golden_record, golden_bill_state()) {
                (true, Some(g)) => g,
                _ => record,
            };
            m.version = BUNDLE_VERSION;
            m.state = Some(StateEvidence {
                header: r.blocks[b].header.clone(),
                certificate: r.certs[b].clone(),
                record,
                proof,
            });
        }
        Op::DropState => m.state = None,
        Op::BundleBytes(edit) => {
            let mut bytes = m.to_bytes();
            edit.apply(&mut bytes);
            match ProofBundle::from_bytes(&bytes) {
                Ok(b) => *m = b,
                Err(_) => return false,
            }
        }
    }
    true
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// 0: the whole reference bundle; else one of the smaller ones.
    start: u8,
    ops: Vec<Op>,
}

fuzz_target!(
    init: {
        Reference::get();
        golden_bill_state();
    },
    |input: Input| {
        let r = Reference::get();
        let mut m = match usize::from(input.start) % (1 + r.other_bundles.len()) {
            0 => r.bundle.clone(),
            i => r.other_bundles[i - 1].clone(),
        };
        for op in input.ops.iter().take(8) {
            if !apply(r, &mut m, op.clone()) {
                return;
            }
        }
        if let Ok(v) = verify_bundle(&m, &r.genesis) {
            assert_justified(r, &m, &v);
        }
    }
);
