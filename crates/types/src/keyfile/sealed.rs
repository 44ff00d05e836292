//! `ebill-key-sealed/v1`: a key file whose seed is sealed with a passphrase (Argon2id,
//! then XChaCha20-Poly1305). The byte-level format is in the [parent module's
//! docs](super).

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut as _, KeyInit as _, Nonce, Tag};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeyFileError;
use crate::codec::Encoder;
use crate::credit_code::CreditCode;
use crate::hexfmt;
use crate::keys::{Keypair, PublicKey};

/// The `type` value of a sealed key file.
pub const SEALED_KEY_FILE_TYPE: &str = "ebill-key-sealed/v1";
/// Bytes of the Argon2 salt (RFC 9106 recommends 128 bits).
pub const SALT_BYTES: usize = 16;
/// Bytes of the XChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 24;
/// Bytes of the seed.
const SEED_BYTES: usize = 32;
/// Bytes of the Poly1305 tag.
const TAG_BYTES: usize = 16;
/// Bytes of `ciphertext`: the encrypted seed, then the tag.
pub const SEALED_CIPHERTEXT_BYTES: usize = SEED_BYTES + TAG_BYTES;
/// Most bytes of a sealed file's `role`.
pub const MAX_ROLE_BYTES: usize = 64;

/// The name of the KDF in the associated data (and `kdf.alg`).
const ARGON2ID_NAME: &str = "argon2id";
/// The name of the AEAD in the associated data (and `aead.alg`).
const XCHACHA20POLY1305_NAME: &str = "xchacha20poly1305";

/// Argon2id's cost: memory, passes over it, and lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Memory in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over the memory (`t`).
    pub passes: u32,
    /// Lanes (`p`, the degree of parallelism; computed one after another here).
    pub lanes: u32,
}

impl KdfCost {
    /// What `ebill keygen --encrypt` uses: RFC 9106's second recommended option
    /// (64 MiB, 3 passes, 4 lanes), for machines where 2 GiB per derivation is too much.
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 4,
    };
    /// Most memory a file may ask for: 1 GiB.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Most passes a file may ask for.
    pub const MAX_PASSES: u32 = 32;
    /// Most lanes a file may ask for.
    pub const MAX_LANES: u32 = 16;
    /// Most memory × passes a file may ask for (4 GiB of block passes, about 21 times
    /// [`Self::DEFAULT`]), which bounds the time of one opening.
    pub const MAX_WORK_KIB: u64 = 4 * 1024 * 1024;

    /// Checks the bounds (Argon2's own lower ones, this crate's upper ones), so that a
    /// hostile file is refused before anything is allocated or derived.
    pub fn check(&self) -> Result<(), KeyFileError> {
        bound("lanes (p)", self.lanes, 1, Self::MAX_LANES)?;
        bound(
            "memory (m_kib, KiB)",
            self.memory_kib,
            // Argon2 needs 8 blocks of 1 KiB per lane.
            8 * self.lanes,
            Self::MAX_MEMORY_KIB,
        )?;
        bound("passes (t)", self.passes, 1, Self::MAX_PASSES)?;
        let work_kib = u64::from(self.memory_kib) * u64::from(self.passes);
        if work_kib > Self::MAX_WORK_KIB {
            return Err(KeyFileError::KdfOutOfBounds {
                what: "work (m_kib × t, KiB)",
                value: work_kib,
                min: 8,
                max: Self::MAX_WORK_KIB,
            });
        }
        Ok(())
    }
}

fn bound(what: &'static str, value: u32, min: u32, max: u32) -> Result<(), KeyFileError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(KeyFileError::KdfOutOfBounds {
            what,
            value: value.into(),
            min: min.into(),
            max: max.into(),
        })
    }
}

/// The KDF of a sealed file. There is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KdfAlg {
    /// Argon2id, version 0x13 (RFC 9106).
    #[serde(rename = "argon2id")]
    Argon2id,
}

/// The AEAD of a sealed file. There is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AeadAlg {
    /// XChaCha20-Poly1305 (24-byte nonce, 16-byte tag).
    #[serde(rename = "xchacha20poly1305")]
    XChaCha20Poly1305,
}

/// `kdf`: how the passphrase becomes the AEAD key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfSpec {
    /// Always Argon2id.
    pub alg: KdfAlg,
    /// Memory in KiB.
    #[serde(rename = "m_kib")]
    pub memory_kib: u32,
    /// Passes.
    #[serde(rename = "t")]
    pub passes: u32,
    /// Lanes.
    #[serde(rename = "p")]
    pub lanes: u32,
    /// The salt, hex.
    #[serde(with = "hexfmt::serde_fixed")]
    pub salt: [u8; SALT_BYTES],
}

impl KdfSpec {
    /// The cost part.
    pub fn cost(&self) -> KdfCost {
        KdfCost {
            memory_kib: self.memory_kib,
            passes: self.passes,
            lanes: self.lanes,
        }
    }
}

/// `aead`: the cipher and its nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeadSpec {
    /// Always XChaCha20-Poly1305.
    pub alg: AeadAlg,
    /// The nonce, hex.
    #[serde(with = "hexfmt::serde_fixed")]
    pub nonce: [u8; NONCE_BYTES],
}

/// A sealed key file's contents. Everything but the seed is readable without the
/// passphrase, and all of it is authenticated by the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedKeyFile {
    /// Always `ebill-key-sealed/v1`.
    #[serde(rename = "type")]
    pub file_type: String,
    /// The public key of the sealed seed.
    pub public_key: PublicKey,
    /// The unit this key signs for, if it is a unit's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_code: Option<CreditCode>,
    /// What the key is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The key derivation.
    pub kdf: KdfSpec,
    /// The cipher.
    pub aead: AeadSpec,
    /// The encrypted seed and the tag, hex.
    #[serde(with = "hexfmt::serde_fixed")]
    pub ciphertext: [u8; SEALED_CIPHERTEXT_BYTES],
}

impl SealedKeyFile {
    /// Seals `key`'s seed with `passphrase`. `salt` and `nonce` must be fresh random
    /// bytes for every file (the caller draws them); `cost` must pass
    /// [`KdfCost::check`].
    pub fn seal(
        key: &Keypair,
        credit_code: Option<CreditCode>,
        role: Option<&str>,
        passphrase: &[u8],
        cost: KdfCost,
        salt: [u8; SALT_BYTES],
        nonce: [u8; NONCE_BYTES],
    ) -> Result<Self, KeyFileError> {
        let mut file = Self {
            file_type: SEALED_KEY_FILE_TYPE.to_owned(),
            public_key: key.public(),
            credit_code,
            role: role.map(str::to_owned),
            kdf: KdfSpec {
                alg: KdfAlg::Argon2id,
                memory_kib: cost.memory_kib,
                passes: cost.passes,
                lanes: cost.lanes,
                salt,
            },
            aead: AeadSpec {
                alg: AeadAlg::XChaCha20Poly1305,
                nonce,
            },
            ciphertext: [0; SEALED_CIPHERTEXT_BYTES],
        };
        file.check()?;
        let cipher = file.cipher(passphrase)?;
        let mut seed = Zeroizing::new(key.seed());
        let tag = cipher
            .encrypt_inout_detached(
                &Nonce::<XChaCha20Poly1305>::from(nonce),
                &file.associated_data(),
                seed.as_mut_slice().into(),
            )
            // Only a message over 256 GiB is refused.
            .map_err(|_| KeyFileError::Kdf("the cipher refused a 32-byte seed".to_owned()))?;
        file.ciphertext[..SEED_BYTES].copy_from_slice(seed.as_slice());
        file.ciphertext[SEED_BYTES..].copy_from_slice(tag.as_slice());
        Ok(file)
    }

    /// Parses JSON text and checks the type, the bounds of the KDF parameters and the
    /// role, without deriving anything.
    pub fn from_json(text: &str) -> Result<Self, KeyFileError> {
        let f: Self =
            serde_json::from_str(text).map_err(|e| KeyFileError::Format(e.to_string()))?;
        f.check()?;
        Ok(f)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a sealed key file always serialises: {e}"))
    }

    /// The checks of [`Self::from_json`].
    pub fn check(&self) -> Result<(), KeyFileError> {
        if self.file_type != SEALED_KEY_FILE_TYPE {
            return Err(KeyFileError::WrongType {
                found: self.file_type.clone(),
                expected: SEALED_KEY_FILE_TYPE,
            });
        }
        if let Some(role) = &self.role
            && role.len() > MAX_ROLE_BYTES
        {
            return Err(KeyFileError::RoleTooLong(role.len()));
        }
        self.kdf.cost().check()
    }

    /// Opens the file with `passphrase`: checks it (refusing costly parameters before
    /// any work), derives the key, verifies the tag over the associated data and
    /// decrypts the seed, whose public key must be `public_key`.
    pub fn open(&self, passphrase: &[u8]) -> Result<Keypair, KeyFileError> {
        self.check()?;
        let cipher = self.cipher(passphrase)?;
        let mut seed = Zeroizing::new([0u8; SEED_BYTES]);
        seed.copy_from_slice(&self.ciphertext[..SEED_BYTES]);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&self.ciphertext[SEED_BYTES..]);
        cipher
            .decrypt_inout_detached(
                &Nonce::<XChaCha20Poly1305>::from(self.aead.nonce),
                &self.associated_data(),
                seed.as_mut_slice().into(),
                &Tag::<XChaCha20Poly1305>::from(tag),
            )
            .map_err(|_| KeyFileError::WrongPassphraseOrDamaged)?;
        let key = Keypair::from_seed(*seed);
        if key.public() != self.public_key {
            return Err(KeyFileError::KeyMismatch {
                given: self.public_key,
                derived: key.public(),
            });
        }
        Ok(key)
    }

    /// The associated data: every field but `ciphertext`, canonically encoded (the
    /// table in the [module docs](super)).
    pub fn associated_data(&self) -> Vec<u8> {
        let mut enc = Encoder::with_domain(SEALED_KEY_FILE_TYPE);
        enc.fixed(&self.public_key.0)
            .option(self.credit_code.as_ref(), |e, c| {
                e.str(c.as_str());
            })
            .option(self.role.as_ref(), |e, r| {
                e.str(r);
            })
            .str(ARGON2ID_NAME)
            .u32(self.kdf.memory_kib)
            .u32(self.kdf.passes)
            .u32(self.kdf.lanes)
            .fixed(&self.kdf.salt)
            .str(XCHACHA20POLY1305_NAME)
            .fixed(&self.aead.nonce);
        enc.finish()
    }

    /// The cipher keyed with Argon2id of `passphrase`. Call only after [`Self::check`].
    fn cipher(&self, passphrase: &[u8]) -> Result<XChaCha20Poly1305, KeyFileError> {
        let params = Params::new(
            self.kdf.memory_kib,
            self.kdf.passes,
            self.kdf.lanes,
            Some(SEED_BYTES),
        )
        .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, &self.kdf.salt, key.as_mut_slice())
            .map_err(|e| KeyFileError::Kdf(e.to_string()))?;
        XChaCha20Poly1305::new_from_slice(key.as_slice())
            .map_err(|_| KeyFileError::Kdf("the derived key is not 32 bytes".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Small enough that a test derives in milliseconds.
    const TEST_COST: KdfCost = KdfCost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };
    const PASSPHRASE: &[u8] = b"correct horse battery staple";

    fn sealed() -> (Keypair, SealedKeyFile) {
        let key = Keypair::from_seed([9; 32]);
        let code = crate::dev::dev_issuer_code();
        let f = SealedKeyFile::seal(
            &key,
            Some(code),
            Some("issuer"),
            PASSPHRASE,
            TEST_COST,
            [0x11; SALT_BYTES],
            [0x22; NONCE_BYTES],
        )
        .unwrap();
        (key, f)
    }

    /// Flips one bit of a hex field of the JSON form, then reads and opens it.
    fn open_tampered(f: &SealedKeyFile, edit: impl FnOnce(&mut serde_json::Value)) -> KeyFileError {
        let mut v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        edit(&mut v);
        match SealedKeyFile::from_json(&v.to_string()) {
            Err(e) => e,
            Ok(t) => t.open(PASSPHRASE).map(|_| ()).unwrap_err(),
        }
    }

    fn flip_hex(v: &mut serde_json::Value) {
        let s = v.as_str().unwrap();
        let mut bytes = hex::decode(s).unwrap();
        bytes[0] ^= 1;
        *v = serde_json::Value::String(hex::encode(bytes));
    }

    #[test]
    fn seals_and_opens_and_keeps_the_metadata_readable() {
        let (key, f) = sealed();
        let read = SealedKeyFile::from_json(&f.to_json()).unwrap();
        assert_eq!(read, f);
        assert_eq!(read.public_key, key.public());
        assert_eq!(read.role.as_deref(), Some("issuer"));
        assert_eq!(read.open(PASSPHRASE).unwrap().seed(), key.seed());
        // The seed is nowhere in the clear.
        assert!(!f.to_json().contains(&hex::encode(key.seed())));
    }

    #[test]
    fn a_wrong_passphrase_is_refused() {
        let (_, f) = sealed();
        assert_eq!(
            f.open(b"correct horse battery stapl").unwrap_err(),
            KeyFileError::WrongPassphraseOrDamaged
        );
        assert_eq!(
            f.open(b"").unwrap_err(),
            KeyFileError::WrongPassphraseOrDamaged
        );
        assert_eq!(
            KeyFileError::WrongPassphraseOrDamaged.to_string(),
            "wrong passphrase or damaged file"
        );
    }

    #[test]
    fn every_field_is_authenticated() {
        let (_, f) = sealed();
        let other_key = Keypair::from_seed([10; 32]).public().to_hex();
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "public_key",
                Box::new(move |v| v["public_key"] = other_key.into()),
            ),
            (
                "credit_code",
                Box::new(|v| {
                    v["credit_code"] = crate::dev::dev_reimburser_code().as_str().into();
                }),
            ),
            (
                "credit_code removed",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("credit_code");
                }),
            ),
            ("role", Box::new(|v| v["role"] = "regulator".into())),
            (
                "role removed",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("role");
                }),
            ),
            ("ciphertext", Box::new(|v| flip_hex(&mut v["ciphertext"]))),
            (
                "tag",
                Box::new(|v| {
                    let s = v["ciphertext"].as_str().unwrap().to_owned();
                    let mut b = hex::decode(s).unwrap();
                    b[SEALED_CIPHERTEXT_BYTES - 1] ^= 0x80;
                    v["ciphertext"] = hex::encode(b).into();
                }),
            ),
            ("nonce", Box::new(|v| flip_hex(&mut v["aead"]["nonce"]))),
            ("salt", Box::new(|v| flip_hex(&mut v["kdf"]["salt"]))),
            ("m_kib", Box::new(|v| v["kdf"]["m_kib"] = 72.into())),
            ("t", Box::new(|v| v["kdf"]["t"] = 2.into())),
            ("p", Box::new(|v| v["kdf"]["p"] = 2.into())),
        ];
        for (name, edit) in cases {
            assert_eq!(
                open_tampered(&f, edit),
                KeyFileError::WrongPassphraseOrDamaged,
                "tampered {name}"
            );
        }
    }

    #[test]
    fn the_associated_data_is_the_documented_encoding() {
        let (_, f) = sealed();
        let ad = f.associated_data();
        let mut expected = Vec::new();
        expected.extend_from_slice(&19u32.to_be_bytes());
        expected.extend_from_slice(b"ebill-key-sealed/v1");
        expected.extend_from_slice(&f.public_key.0);
        expected.push(1);
        expected.extend_from_slice(&18u32.to_be_bytes());
        expected.extend_from_slice(crate::dev::dev_issuer_code().as_str().as_bytes());
        expected.push(1);
        expected.extend_from_slice(&6u32.to_be_bytes());
        expected.extend_from_slice(b"issuer");
        expected.extend_from_slice(&8u32.to_be_bytes());
        expected.extend_from_slice(b"argon2id");
        for n in [64u32, 1, 1] {
            expected.extend_from_slice(&n.to_be_bytes());
        }
        expected.extend_from_slice(&[0x11; SALT_BYTES]);
        expected.extend_from_slice(&17u32.to_be_bytes());
        expected.extend_from_slice(b"xchacha20poly1305");
        expected.extend_from_slice(&[0x22; NONCE_BYTES]);
        assert_eq!(ad, expected);
    }

    #[test]
    fn costly_kdf_parameters_are_refused_before_any_work() {
        let (_, f) = sealed();
        // 100 GiB, 1000 passes, 1000 lanes, and a work product over the bound.
        let hostile = [
            (100 * 1024 * 1024, 1, 1, "memory (m_kib, KiB)"),
            (64, 1000, 1, "passes (t)"),
            (8000, 1, 1000, "lanes (p)"),
            (KdfCost::MAX_MEMORY_KIB, 5, 1, "work (m_kib × t, KiB)"),
            (7, 1, 1, "memory (m_kib, KiB)"),
            (64, 0, 1, "passes (t)"),
            (64, 1, 0, "lanes (p)"),
        ];
        for (m, t, p, what) in hostile {
            let mut v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
            v["kdf"]["m_kib"] = m.into();
            v["kdf"]["t"] = t.into();
            v["kdf"]["p"] = p.into();
            match SealedKeyFile::from_json(&v.to_string()) {
                Err(KeyFileError::KdfOutOfBounds { what: w, .. }) => assert_eq!(w, what),
                other => panic!("m={m} t={t} p={p}: {other:?}"),
            }
            // A value built in code is checked by `open` too, before deriving: were it
            // not, 100 GiB would be allocated here.
            let mut built = f.clone();
            built.kdf.memory_kib = m;
            built.kdf.passes = t;
            built.kdf.lanes = p;
            assert!(matches!(
                built.open(PASSPHRASE),
                Err(KeyFileError::KdfOutOfBounds { .. })
            ));
        }
        assert!(matches!(
            SealedKeyFile::seal(
                &Keypair::from_seed([1; 32]),
                None,
                None,
                PASSPHRASE,
                KdfCost {
                    memory_kib: u32::MAX,
                    passes: 1,
                    lanes: 1
                },
                [0; SALT_BYTES],
                [0; NONCE_BYTES],
            ),
            Err(KeyFileError::KdfOutOfBounds { .. })
        ));
        assert_eq!(KdfCost::DEFAULT.check(), Ok(()));
        let message = KeyFileError::KdfOutOfBounds {
            what: "memory (m_kib, KiB)",
            value: 104_857_600,
            min: 8,
            max: 1_048_576,
        }
        .to_string();
        assert_eq!(
            message,
            "the key file's argon2id memory (m_kib, KiB) is 104857600, outside the accepted \
             8..=1048576"
        );
    }

    #[test]
    fn decoding_is_strict() {
        let (_, f) = sealed();
        let text = f.to_json();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let edits: Vec<(&str, serde_json::Value)> = vec![
            ("unknown top-level field", {
                let mut v = v.clone();
                v["seed"] = "00".into();
                v
            }),
            ("unknown kdf field", {
                let mut v = v.clone();
                v["kdf"]["secret"] = "00".into();
                v
            }),
            ("unknown aead field", {
                let mut v = v.clone();
                v["aead"]["tag"] = "00".into();
                v
            }),
            ("other kdf", {
                let mut v = v.clone();
                v["kdf"]["alg"] = "scrypt".into();
                v
            }),
            ("other aead", {
                let mut v = v.clone();
                v["aead"]["alg"] = "aes256gcm".into();
                v
            }),
            ("short salt", {
                let mut v = v.clone();
                v["kdf"]["salt"] = "1111".into();
                v
            }),
            ("upper-case hex", {
                let mut v = v.clone();
                v["aead"]["nonce"] = "AA".repeat(NONCE_BYTES).into();
                v
            }),
            ("short ciphertext", {
                let mut v = v.clone();
                v["ciphertext"] = "00".repeat(SEED_BYTES).into();
                v
            }),
            ("m_kib over u32", {
                let mut v = v.clone();
                v["kdf"]["m_kib"] = (u64::from(u32::MAX) + 1).into();
                v
            }),
            ("negative t", {
                let mut v = v.clone();
                v["kdf"]["t"] = (-1).into();
                v
            }),
        ];
        for (name, v) in edits {
            assert!(
                matches!(
                    SealedKeyFile::from_json(&v.to_string()),
                    Err(KeyFileError::Format(_))
                ),
                "{name}"
            );
        }
        let mut v2 = v.clone();
        v2["type"] = "ebill-key/v1".into();
        assert!(matches!(
            SealedKeyFile::from_json(&v2.to_string()),
            Err(KeyFileError::WrongType { .. })
        ));
        let mut v3 = v;
        v3["role"] = "r".repeat(MAX_ROLE_BYTES + 1).into();
        assert_eq!(
            SealedKeyFile::from_json(&v3.to_string()).unwrap_err(),
            KeyFileError::RoleTooLong(MAX_ROLE_BYTES + 1)
        );
    }
}
