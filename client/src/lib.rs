//! # ebill-client
//!
//! The library behind the `ebill` command-line client (docs/design.md §9.2): reading bills
//! from JSON, JSON Lines and CSV files ([`input`]), key files and other files written
//! with care ([`files`]), signing keys at rest, plaintext or sealed with a passphrase
//! ([`keystore`], [`passphrase`]), the dev chain's keys ([`devkeys`]), a whole local
//! network's genesis, keys and node configs ([`network`]), and a small blocking HTTP
//! client of the node's API ([`http`]), the QR code of a bill's page ([`qr`]), and the
//! regulators' governance commands ([`gov`]) and audit commands ([`audit`]). The binary (`src/main.rs`) wires them to
//! the commands.

pub mod audit;
pub mod devkeys;
pub mod error;
pub mod export;
pub mod files;
pub mod gov;
pub mod http;
pub mod input;
pub mod keystore;
pub mod network;
pub mod passphrase;
pub mod qr;

pub use error::CliError;
