//! Where the passphrase of a sealed key file comes from: the first line of a file, an
//! environment variable, or the terminal (without echo). Passphrases are kept in
//! memory that is zeroed when dropped.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::CliError;
use crate::files;

/// Most bytes read from a passphrase file (its first line is the passphrase).
pub const MAX_PASSPHRASE_FILE_BYTES: u64 = 64 * 1024;

/// A passphrase, zeroed when dropped.
pub type Passphrase = Zeroizing<String>;

/// Where to read a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The first line of this file (without its line ending).
    File(PathBuf),
    /// The value of the environment variable of this name.
    Env(String),
    /// Asked on the terminal; refused when standard input is not one.
    Terminal,
}

impl Source {
    /// From the `--passphrase-file` and `--passphrase-env` flags (at most one is given;
    /// a file wins if both are): the terminal when neither is.
    pub fn from_flags(file: Option<&Path>, env: Option<&str>) -> Self {
        match (file, env) {
            (Some(path), _) => Self::File(path.to_owned()),
            (None, Some(var)) => Self::Env(var.to_owned()),
            (None, None) => Self::Terminal,
        }
    }

    /// The passphrase that opens the sealed key file `key_file`.
    pub fn read(&self, key_file: &Path) -> Result<Passphrase, CliError> {
        match self {
            Self::File(path) => read_file(path),
            Self::Env(var) => read_env(var),
            Self::Terminal => {
                require_terminal(key_file)?;
                prompt(&format!("Passphrase for {}: ", key_file.display()))
            }
        }
    }

    /// A new passphrase to seal `key_file` with: on the terminal it is asked twice and
    /// must match.
    pub fn read_new(&self, key_file: &Path) -> Result<Passphrase, CliError> {
        match self {
            Self::File(_) | Self::Env(_) => self.read(key_file),
            Self::Terminal => {
                require_terminal(key_file)?;
                let first = prompt(&format!("New passphrase for {}: ", key_file.display()))?;
                let again = prompt("The same passphrase again: ")?;
                if *first != *again {
                    return Err(CliError::new(
                        "invalid_passphrase",
                        "the two passphrases differ; nothing was written",
                    ));
                }
                Ok(first)
            }
        }
    }
}

/// Refuses to wait for a passphrase nobody can type.
fn require_terminal(key_file: &Path) -> Result<(), CliError> {
    if std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(CliError::new(
            "no_passphrase",
            format!(
                "{} is sealed with a passphrase and standard input is not a terminal: give \
                 --passphrase-file PATH or --passphrase-env VAR",
                key_file.display()
            ),
        ))
    }
}

fn prompt(text: &str) -> Result<Passphrase, CliError> {
    let pass =
        Zeroizing::new(rpassword::prompt_password(text).map_err(|e| {
            CliError::new("no_passphrase", format!("cannot read the terminal: {e}"))
        })?);
    non_empty(pass, "the passphrase typed")
}

fn read_file(path: &Path) -> Result<Passphrase, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| CliError::io(path, &e))?;
    if meta.len() > MAX_PASSPHRASE_FILE_BYTES {
        return Err(CliError::new(
            "invalid_passphrase",
            format!(
                "passphrase file {} is {} bytes, over the limit of {MAX_PASSPHRASE_FILE_BYTES}",
                path.display(),
                meta.len()
            ),
        ));
    }
    let bytes = Zeroizing::new(files::read_bounded(path)?);
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| {
        CliError::new(
            "invalid_passphrase",
            format!("the first line of {} is not UTF-8", path.display()),
        )
    })?;
    non_empty(
        Zeroizing::new(text.to_owned()),
        &format!("the first line of {}", path.display()),
    )
}

fn read_env(var: &str) -> Result<Passphrase, CliError> {
    let value = std::env::var_os(var).ok_or_else(|| {
        CliError::new(
            "no_passphrase",
            format!("the environment variable {var} (named by --passphrase-env) is not set"),
        )
    })?;
    let text = value.into_string().map_err(|_| {
        CliError::new(
            "invalid_passphrase",
            format!("the environment variable {var} is not UTF-8"),
        )
    })?;
    non_empty(
        Zeroizing::new(text),
        &format!("the environment variable {var}"),
    )
}

fn non_empty(pass: Passphrase, what: &str) -> Result<Passphrase, CliError> {
    if pass.is_empty() {
        Err(CliError::new(
            "invalid_passphrase",
            format!("{what} is empty: a passphrase must have at least one character"),
        ))
    } else {
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_file_gives_its_first_line_without_the_line_ending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        let key = dir.path().join("k.key");
        for (content, expected) in [
            (&b"open sesame\n"[..], "open sesame"),
            (b"open sesame\r\nsecond line\n", "open sesame"),
            (b"open sesame", "open sesame"),
            (b" spaces kept \n", " spaces kept "),
            ("电子票据\n".as_bytes(), "电子票据"),
        ] {
            std::fs::write(&path, content).unwrap();
            let pass = Source::File(path.clone()).read(&key).unwrap();
            assert_eq!(pass.as_str(), expected);
        }
        for bad in [&b"\nsecond"[..], b"", b"\xff\xfe\n"] {
            std::fs::write(&path, bad).unwrap();
            let err = Source::File(path.clone()).read(&key).unwrap_err();
            assert_eq!(err.code, "invalid_passphrase", "{bad:?}");
        }
        let too_big = vec![b'a'; MAX_PASSPHRASE_FILE_BYTES as usize + 1];
        std::fs::write(&path, too_big).unwrap();
        assert_eq!(
            Source::File(path.clone()).read(&key).unwrap_err().code,
            "invalid_passphrase"
        );
        assert_eq!(
            Source::File(dir.path().join("missing"))
                .read(&key)
                .unwrap_err()
                .code,
            "io"
        );
    }

    #[test]
    fn an_unset_variable_is_a_clear_error() {
        let err = Source::Env("EBILL_TEST_SURELY_UNSET_VARIABLE".to_owned())
            .read(Path::new("k.key"))
            .unwrap_err();
        assert_eq!(err.code, "no_passphrase");
        assert!(err.message.contains("EBILL_TEST_SURELY_UNSET_VARIABLE"));
    }

    #[test]
    fn flags_choose_the_source() {
        assert_eq!(Source::from_flags(None, None), Source::Terminal);
        assert_eq!(
            Source::from_flags(Some(Path::new("p")), None),
            Source::File(PathBuf::from("p"))
        );
        assert_eq!(
            Source::from_flags(None, Some("V")),
            Source::Env("V".to_owned())
        );
    }
}
