//! Hard limits on every variable-length field. They bound what a decoder will read and
//! what a node will store; changing one is a protocol change.

/// Bytes of a name (unit, payer, item): 100 CJK characters.
pub const MAX_NAME_BYTES: usize = 300;
/// Bytes of a person's id number.
pub const MAX_PAYER_ID_BYTES: usize = 32;
/// Bytes of an item code.
pub const MAX_ITEM_CODE_BYTES: usize = 32;
/// Bytes of an item's unit.
pub const MAX_UNIT_BYTES: usize = 30;
/// Items on one bill.
pub const MAX_ITEMS: usize = 200;
/// The most a genesis may allow for one amount (`params.max_amount_fen`): 10^15 fen, so
/// that the sum of `MAX_ITEMS` amounts stays far inside a `u64`.
pub const MAX_AMOUNT_FEN_CEILING: u64 = 1_000_000_000_000_000;
/// The most a genesis may allow for one item's quantity (`params.max_item_quantity`),
/// in whole units of the item.
pub const MAX_ITEM_QUANTITY_CEILING: u64 = 1_000_000_000;
/// Bytes of a bill's remark.
pub const MAX_REMARK_BYTES: usize = 600;
/// Bytes of a red-reversal or revocation reason.
pub const MAX_REASON_BYTES: usize = 600;
/// Bytes of a chain id.
pub const MAX_CHAIN_ID_BYTES: usize = 64;
/// Code prefixes one issuer may be registered for.
pub const MAX_CODE_PREFIXES: usize = 64;
/// Regulators in a genesis.
pub const MAX_REGULATORS: usize = 64;
/// Observers in a genesis.
pub const MAX_OBSERVERS: usize = 256;
/// Validators in a validator set.
pub const MAX_VALIDATORS: usize = 256;
/// Units registered in a genesis file.
pub const MAX_GENESIS_UNITS: usize = 10_000;
/// Transactions in one block, whatever the genesis says.
pub const MAX_BLOCK_TXS: usize = 100_000;
/// Bytes of one signed transaction, whatever the genesis says.
pub const MAX_TX_BYTES: usize = 256 * 1024;
/// Lifecycle changes recorded for one bill after its issue (lock, unlock, ...): beyond
/// this a bill takes no more changes, so that its record stays bounded.
pub const MAX_BILL_HISTORY: usize = 64;
/// Most blocks a proposal may stay open: its last height is at most this far after the
/// block that holds the `Propose`.
pub const MAX_PROPOSAL_BLOCKS: u64 = 10_000_000;
