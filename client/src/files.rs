//! Reading and writing files: bounded reads, key files written mode 0600, no silent
//! overwrites.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use ebill_types::keyfile::KeyFile;
use ebill_types::{Genesis, Keypair};

use crate::error::CliError;

/// Most bytes read from a genesis, key, bill or bundle file.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a whole file of at most [`MAX_FILE_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, CliError> {
    read_at_most(path, MAX_FILE_BYTES, "invalid_input")
}

/// Reads a whole file of at most `max_bytes`; a larger one is refused with `code`.
pub fn read_at_most(path: &Path, max_bytes: u64, code: &'static str) -> Result<Vec<u8>, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| CliError::io(path, &e))?;
    if meta.len() > max_bytes {
        return Err(CliError::new(
            code,
            format!(
                "{} is {} bytes, over the limit of {max_bytes}",
                path.display(),
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| CliError::io(path, &e))
}

/// Reads a whole UTF-8 text file of at most [`MAX_FILE_BYTES`].
pub fn read_text(path: &Path) -> Result<String, CliError> {
    String::from_utf8(read_bounded(path)?).map_err(|_| {
        CliError::new(
            "invalid_input",
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

/// Writes `bytes` to a new file readable and writable by its owner only (mode 0600).
/// An existing file is refused (`file_exists`) unless `force`, then replaced and its
/// mode set to 0600.
pub fn write_secret(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    write_with_mode(path, bytes, force, 0o600)
}

/// Refuses `path` if it exists and not `force` (`file_exists`): for a check before work
/// that would be wasted, such as asking for a passphrase. The write itself still
/// refuses an existing file.
pub fn refuse_existing(path: &Path, force: bool) -> Result<(), CliError> {
    if !force && std::fs::symlink_metadata(path).is_ok() {
        return Err(exists_error(path));
    }
    Ok(())
}

fn exists_error(path: &Path) -> CliError {
    CliError::new(
        "file_exists",
        format!(
            "{} exists already; give --force to replace it",
            path.display()
        ),
    )
}

/// Writes `bytes` to a file (mode 0644), refusing an existing one unless `force`.
pub fn write_public(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    write_with_mode(path, bytes, force, 0o644)
}

fn write_with_mode(path: &Path, bytes: &[u8], force: bool, mode: u32) -> Result<(), CliError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(mode);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut file = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            exists_error(path)
        } else {
            CliError::io(path, &e)
        }
    })?;
    // `mode` applies only to a file created now: set it on a replaced one too.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| CliError::io(path, &e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::io(path, &e))
}

/// Writes a key file, mode 0600.
pub fn write_key_file(path: &Path, key: &KeyFile, force: bool) -> Result<(), CliError> {
    let mut text = key.to_json();
    text.push('\n');
    write_secret(path, text.as_bytes(), force)
}

/// Reads a plaintext key file and checks that its public key is its seed's (a sealed
/// one is refused: [`crate::keystore::open_key_file`] reads both).
pub fn read_key_file(path: &Path) -> Result<(KeyFile, Keypair), CliError> {
    let text = read_text(path)?;
    let file = KeyFile::from_json(&text)
        .map_err(|e| CliError::new("invalid_key_file", format!("{}: {e}", path.display())))?;
    let key = file
        .keypair()
        .map_err(|e| CliError::new("invalid_key_file", format!("{}: {e}", path.display())))?;
    Ok((file, key))
}

/// Reads and validates a genesis file.
pub fn read_genesis(path: &Path) -> Result<Genesis, CliError> {
    let text = read_text(path)?;
    Genesis::from_json(&text)
        .map_err(|e| CliError::new("invalid_genesis", format!("{}: {e}", path.display())))
}

/// A fresh 32-byte seed from the operating system's randomness.
pub fn random_seed() -> Result<[u8; 32], CliError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| CliError::new("io", format!("no OS randomness: {e}")))?;
    Ok(seed)
}

/// A fresh random `u64` (transaction nonces).
pub fn random_u64() -> Result<u64, CliError> {
    getrandom::u64().map_err(|e| CliError::new("io", format!("no OS randomness: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn key_files_are_written_mode_0600_and_never_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = Keypair::from_seed([9; 32]);
        let file = KeyFile::new(&key, None, Some("issuer"));
        write_key_file(&path, &file, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (read, kp) = read_key_file(&path).unwrap();
        assert_eq!(kp.public(), key.public());
        assert_eq!(read.role.as_deref(), Some("issuer"));

        let err = write_key_file(&path, &file, false).unwrap_err();
        assert_eq!(err.code, "file_exists");

        // Forcing replaces it, and a looser mode is tightened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_key_file(
            &path,
            &KeyFile::new(&Keypair::from_seed([8; 32]), None, None),
            true,
        )
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            read_key_file(&path).unwrap().1.public(),
            Keypair::from_seed([8; 32]).public()
        );
    }

    #[test]
    fn a_key_file_with_a_foreign_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let mut file = KeyFile::new(&Keypair::from_seed([1; 32]), None, None);
        file.public_key = Keypair::from_seed([2; 32]).public();
        write_key_file(&path, &file, false).unwrap();
        assert_eq!(read_key_file(&path).unwrap_err().code, "invalid_key_file");
    }

    #[test]
    fn seeds_are_random() {
        assert_ne!(random_seed().unwrap(), random_seed().unwrap());
    }
}
