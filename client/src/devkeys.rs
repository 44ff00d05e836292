//! `ebill dev-keys`: the dev chain's well-known keys (`ebill_types::dev`) as key files.
//! Anyone can sign with these keys: they are for a dev chain on one machine only.

use std::path::{Path, PathBuf};

use ebill_types::keyfile::KeyFile;
use ebill_types::{CodePrefix, CreditCode, Keypair, PublicKey, dev};
use serde::Serialize;

use crate::error::CliError;
use crate::files;

/// A unit's key file written.
#[derive(Clone, Debug, Serialize)]
pub struct UnitKey {
    /// The unit's credit code.
    pub credit_code: CreditCode,
    /// Its public key.
    pub public_key: PublicKey,
    /// Code prefixes (issuers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_prefixes: Option<Vec<CodePrefix>>,
    /// The key file.
    pub key_file: PathBuf,
}

/// A key file of a regulator or node.
#[derive(Clone, Debug, Serialize)]
pub struct PlainKey {
    /// The public key.
    pub public_key: PublicKey,
    /// The key file.
    pub key_file: PathBuf,
}

/// What `dev-keys` wrote (its `--json` output).
#[derive(Clone, Debug, Serialize)]
pub struct DevKeys {
    /// The dev issuer.
    pub issuer: UnitKey,
    /// The dev reimbursing unit.
    pub reimburser: UnitKey,
    /// The three dev regulators (threshold 2).
    pub regulators: Vec<PlainKey>,
    /// The dev validator.
    pub validator: PlainKey,
}

/// Writes a key file unless the same one is there already; a different file at the
/// path is refused unless `force`.
fn write_idempotent(path: &Path, file: &KeyFile, force: bool) -> Result<(), CliError> {
    if !force
        && path.exists()
        && let Ok((existing, _)) = files::read_key_file(path)
        && existing.seed == file.seed
        && existing.credit_code == file.credit_code
    {
        return Ok(());
    }
    files::write_key_file(path, file, force)
}

/// Writes the dev keys into `dir` (created if missing): `issuer.key`,
/// `reimburser.key`, `regulator-0.key` .. `regulator-2.key`, `validator.key`.
pub fn write_dev_keys(dir: &Path, force: bool) -> Result<DevKeys, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, &e))?;
    let unit = |name: &str,
                key: &Keypair,
                code: CreditCode,
                prefixes: Option<Vec<CodePrefix>>|
     -> Result<UnitKey, CliError> {
        let path = dir.join(format!("{name}.key"));
        write_idempotent(&path, &KeyFile::new(key, Some(code), Some(name)), force)?;
        Ok(UnitKey {
            credit_code: code,
            public_key: key.public(),
            code_prefixes: prefixes,
            key_file: path,
        })
    };
    let genesis = dev::dev_genesis();
    let prefixes = genesis
        .issuers
        .first()
        .map(|i| i.code_prefixes.clone())
        .unwrap_or_default();
    let issuer = unit(
        "issuer",
        &dev::dev_issuer_key(),
        dev::dev_issuer_code(),
        Some(prefixes),
    )?;
    let reimburser = unit(
        "reimburser",
        &dev::dev_reimburser_key(),
        dev::dev_reimburser_code(),
        None,
    )?;
    let mut regulators = Vec::new();
    for (i, key) in dev::dev_regulator_keys().iter().enumerate() {
        let path = dir.join(format!("regulator-{i}.key"));
        write_idempotent(&path, &KeyFile::new(key, None, Some("regulator")), force)?;
        regulators.push(PlainKey {
            public_key: key.public(),
            key_file: path,
        });
    }
    let key = dev::dev_validator_key();
    let path = dir.join("validator.key");
    write_idempotent(&path, &KeyFile::new(&key, None, Some("validator")), force)?;
    Ok(DevKeys {
        issuer,
        reimburser,
        regulators,
        validator: PlainKey {
            public_key: key.public(),
            key_file: path,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn dev_keys_match_the_dev_chain() {
        let dir = tempfile::tempdir().unwrap();
        let out = write_dev_keys(dir.path(), false).unwrap();
        let g = dev::dev_genesis();
        let (issuer, key) = files::read_key_file(&out.issuer.key_file).unwrap();
        assert_eq!(issuer.credit_code, Some(g.issuers[0].credit_code));
        assert_eq!(key.public(), g.issuers[0].public_key);
        assert_eq!(
            out.issuer.code_prefixes.as_deref(),
            Some(&g.issuers[0].code_prefixes[..])
        );
        let (reimburser, key) = files::read_key_file(&out.reimburser.key_file).unwrap();
        assert_eq!(reimburser.credit_code, Some(g.reimbursers[0].credit_code));
        assert_eq!(key.public(), g.reimbursers[0].public_key);
        assert_eq!(out.regulators.len(), g.regulators.keys.len());
        for (r, expected) in out.regulators.iter().zip(&g.regulators.keys) {
            assert_eq!(
                files::read_key_file(&r.key_file).unwrap().1.public(),
                expected.public_key
            );
        }
        assert_eq!(
            files::read_key_file(&out.validator.key_file)
                .unwrap()
                .1
                .public(),
            g.validators[0].public_key
        );

        // The JSON output has the documented shape.
        let v = serde_json::to_value(&out).unwrap();
        for key in ["credit_code", "public_key", "code_prefixes", "key_file"] {
            assert!(v["issuer"].get(key).is_some(), "issuer.{key}");
        }
        assert!(v["reimburser"].get("code_prefixes").is_none());
        assert_eq!(v["regulators"].as_array().unwrap().len(), 3);
        assert!(v["validator"]["public_key"].is_string());

        // Writing them again is a no-op; a different file in the way is refused.
        write_dev_keys(dir.path(), false).unwrap();
        std::fs::write(dir.path().join("validator.key"), "{}").unwrap();
        assert_eq!(
            write_dev_keys(dir.path(), false).unwrap_err().code,
            "file_exists"
        );
        write_dev_keys(dir.path(), true).unwrap();
    }
}
