//! Signing keys at rest: opening a key file of either form (asking for the passphrase
//! only when it is sealed, warning when a plaintext one is readable by others) and
//! writing sealed ones.

use std::path::Path;

use ebill_types::keyfile::{
    AnyKeyFile, KdfCost, KeyFileError, NONCE_BYTES, SALT_BYTES, SealedKeyFile,
};
use ebill_types::{CreditCode, Keypair};
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::files;
use crate::passphrase::{self, Passphrase};

/// A key file opened: the key and what the file says about it.
#[derive(Debug)]
pub struct OpenedKey {
    /// The signing key.
    pub keypair: Keypair,
    /// The unit it signs for, if the file names one.
    pub credit_code: Option<CreditCode>,
    /// What it is for, if the file says.
    pub role: Option<String>,
    /// Whether the file was sealed with a passphrase.
    pub sealed: bool,
    /// A warning to print (a plaintext file others can read), if any.
    pub warning: Option<String>,
}

/// Opens the key file at `path`. A sealed file takes its passphrase from `source`; a
/// plaintext one needs none, and gets a warning when its mode lets its group or others
/// read it.
pub fn open_key_file(path: &Path, source: &passphrase::Source) -> Result<OpenedKey, CliError> {
    let text = files::read_text(path)?;
    let file = AnyKeyFile::from_json(&text).map_err(|e| key_file_error(path, &e))?;
    let credit_code = file.credit_code();
    let role = file.role().map(str::to_owned);
    match file {
        AnyKeyFile::Plain(plain) => {
            let keypair = plain.keypair().map_err(|e| key_file_error(path, &e))?;
            Ok(OpenedKey {
                keypair,
                credit_code,
                role,
                sealed: false,
                warning: loose_mode_warning(path)?,
            })
        }
        AnyKeyFile::Sealed(sealed) => {
            let pass = source.read(path)?;
            let keypair = sealed
                .open(pass.as_bytes())
                .map_err(|e| key_file_error(path, &e))?;
            Ok(OpenedKey {
                keypair,
                credit_code,
                role,
                sealed: true,
                warning: None,
            })
        }
    }
}

/// Seals `key` with `passphrase` at `cost` (fresh random salt and nonce) and writes it
/// to `path`, mode 0600, refusing an existing file unless `force`.
pub fn write_sealed_key_file(
    path: &Path,
    key: &Keypair,
    credit_code: Option<CreditCode>,
    role: Option<&str>,
    passphrase: &Passphrase,
    cost: KdfCost,
    force: bool,
) -> Result<SealedKeyFile, CliError> {
    let mut salt = [0u8; SALT_BYTES];
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut salt)
        .and_then(|()| getrandom::fill(&mut nonce))
        .map_err(|e| CliError::new("io", format!("no OS randomness: {e}")))?;
    let sealed = SealedKeyFile::seal(
        key,
        credit_code,
        role,
        passphrase.as_bytes(),
        cost,
        salt,
        nonce,
    )
    .map_err(|e| CliError::argument(e.to_string()))?;
    let mut text = sealed.to_json();
    text.push('\n');
    files::write_secret(path, text.as_bytes(), force)?;
    Ok(sealed)
}

/// A fresh seed from the OS, zeroed when dropped.
pub fn random_seed() -> Result<Zeroizing<[u8; 32]>, CliError> {
    files::random_seed().map(Zeroizing::new)
}

/// The error of a key file that did not open: `wrong_passphrase` when the tag did not
/// verify, `invalid_key_file` otherwise.
fn key_file_error(path: &Path, e: &KeyFileError) -> CliError {
    let code = match e {
        KeyFileError::WrongPassphraseOrDamaged => "wrong_passphrase",
        _ => "invalid_key_file",
    };
    CliError::new(code, format!("{}: {e}", path.display()))
}

/// The warning for a plaintext key file whose group or other permission bits are set.
#[cfg(unix)]
fn loose_mode_warning(path: &Path) -> Result<Option<String>, CliError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|e| CliError::io(path, &e))?
        .permissions()
        .mode()
        & 0o777;
    Ok((mode & 0o077 != 0).then(|| {
        format!(
            "key file {} has mode {mode:04o}: users other than its owner may read the key; run \
             `chmod 600 {}`, or keep keys sealed with a passphrase (`ebill keygen --encrypt`)",
            path.display(),
            path.display()
        )
    }))
}

/// No permission bits to check on this OS.
#[cfg(not(unix))]
fn loose_mode_warning(_path: &Path) -> Result<Option<String>, CliError> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::os::unix::fs::PermissionsExt as _;

    use ebill_types::keyfile::KeyFile;

    use super::*;

    const TEST_COST: KdfCost = KdfCost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };

    fn pass_file(dir: &Path, text: &str) -> passphrase::Source {
        let path = dir.join("pass");
        std::fs::write(&path, format!("{text}\n")).unwrap();
        passphrase::Source::File(path)
    }

    #[test]
    fn a_sealed_file_opens_with_its_passphrase_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = Keypair::from_seed([4; 32]);
        let code = ebill_types::dev::dev_issuer_code();
        let pass = Zeroizing::new("open sesame".to_owned());
        write_sealed_key_file(
            &path,
            &key,
            Some(code),
            Some("issuer"),
            &pass,
            TEST_COST,
            false,
        )
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let opened = open_key_file(&path, &pass_file(dir.path(), "open sesame")).unwrap();
        assert_eq!(opened.keypair.public(), key.public());
        assert_eq!(opened.credit_code, Some(code));
        assert_eq!(opened.role.as_deref(), Some("issuer"));
        assert!(opened.sealed);
        assert_eq!(opened.warning, None);

        let err = open_key_file(&path, &pass_file(dir.path(), "open sesame!")).unwrap_err();
        assert_eq!(err.code, "wrong_passphrase");
        assert!(
            err.message.contains("wrong passphrase or damaged file"),
            "{err}"
        );

        // The plaintext reader of the node and of `dev-keys` refuses it, saying why.
        let err = files::read_key_file(&path).unwrap_err();
        assert_eq!(err.code, "invalid_key_file");
        assert!(err.message.contains("sealed with a passphrase"), "{err}");
        // And it is never silently replaced.
        assert_eq!(
            write_sealed_key_file(&path, &key, None, None, &pass, TEST_COST, false)
                .unwrap_err()
                .code,
            "file_exists"
        );
    }

    #[test]
    fn a_plaintext_file_needs_no_passphrase_and_is_warned_about_when_others_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = Keypair::from_seed([5; 32]);
        files::write_key_file(&path, &KeyFile::new(&key, None, Some("validator")), false).unwrap();
        // The terminal is never asked: a test has none, and this would fail if it were.
        let opened = open_key_file(&path, &passphrase::Source::Terminal).unwrap();
        assert_eq!(opened.keypair.public(), key.public());
        assert!(!opened.sealed);
        assert_eq!(opened.warning, None);

        for mode in [0o640, 0o604, 0o644, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let warning = open_key_file(&path, &passphrase::Source::Terminal)
                .unwrap()
                .warning
                .unwrap();
            assert!(warning.contains(&path.display().to_string()), "{warning}");
            assert!(warning.contains(&format!("{mode:04o}")), "{warning}");
            assert!(warning.contains("chmod 600"), "{warning}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(
            open_key_file(&path, &passphrase::Source::Terminal)
                .unwrap()
                .warning,
            None
        );
    }

    #[test]
    fn a_sealed_file_without_a_terminal_fails_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let pass = Zeroizing::new("pw".to_owned());
        write_sealed_key_file(
            &path,
            &Keypair::from_seed([6; 32]),
            None,
            None,
            &pass,
            TEST_COST,
            false,
        )
        .unwrap();
        // Test harnesses give no terminal on standard input.
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return;
        }
        let err = open_key_file(&path, &passphrase::Source::Terminal).unwrap_err();
        assert_eq!(err.code, "no_passphrase");
        assert!(err.message.contains("--passphrase-file"), "{err}");
    }
}
