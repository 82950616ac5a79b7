//! Channel settings sealed at rest: XChaCha20-Poly1305 (the `chacha20poly1305` crate, a
//! RustCrypto AEAD) under a key that lives outside the database, in `HERALD_SECRET_KEY` or
//! the data folder's `secret.key`. A stolen database file or dump holds no usable token.
//!
//! A sealed value is `sealed:v1:` and the base64 of a random 24-byte nonce followed by the
//! ciphertext. Values without that prefix were stored before sealing existed and are read as
//! they are; startup seals them.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const PREFIX: &str = "sealed:v1:";
const NONCE: usize = 24;
/// The environment variable that holds the key (base64 of 32 bytes), instead of the file.
pub const KEY_VAR: &str = "HERALD_SECRET_KEY";
/// The key file's name in the data folder.
pub const KEY_FILE: &str = "secret.key";

/// Seals and opens stored secrets with one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

/// Why secrets could not be sealed or opened; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("{KEY_VAR} must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "a stored channel setting cannot be opened with this key: was {KEY_VAR} or data/{KEY_FILE} replaced? Restore the key the channels were saved with, or connect them again"
    )]
    WrongKey,
}

impl Sealer {
    /// A sealer with a new random key, known only to this process: for tests and tools whose
    /// database lives no longer than they do.
    pub fn ephemeral() -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(&XChaCha20Poly1305::generate_key(&mut OsRng)),
        }
    }

    /// A sealer with the key `text` (the base64 of 32 bytes, as in `HERALD_SECRET_KEY`).
    pub fn from_base64(text: &str) -> Result<Sealer, SealError> {
        let bytes = B64.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Ok(Sealer {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// The operator's key: `HERALD_SECRET_KEY` if set, else `data_dir/secret.key`, created
    /// (readable by this user only) with a random key on first start.
    pub fn load(data_dir: &Path) -> Result<Sealer, SealError> {
        if let Ok(text) = std::env::var(KEY_VAR)
            && !text.trim().is_empty()
        {
            return Self::from_base64(&text);
        }
        let path = data_dir.join(KEY_FILE);
        let failed = |source: std::io::Error| SealError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(failed)?;
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                write_new_key(&path, &B64.encode(key)).map_err(failed)?;
                // Whoever won a race to create it, its key is the one.
                let text = std::fs::read_to_string(&path).map_err(failed)?;
                Self::from_base64(&text)
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// `plain`, sealed.
    pub fn seal(&self, plain: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .expect("XChaCha20-Poly1305 encrypts any length Herald stores");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(bytes))
    }

    /// A stored value opened: sealed ones decrypted (refused if they were changed or sealed
    /// under another key), older plain ones as they are.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(text) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = B64.decode(text).map_err(|_| SealError::WrongKey)?;
        if bytes.len() < NONCE {
            return Err(SealError::WrongKey);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::WrongKey)
    }

    /// Whether `stored` is sealed already.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

/// Writes a new key file that only its owner can read; an existing one is left alone.
fn write_new_key(path: &Path, key: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(key.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only_and_hide_the_text() {
        let a = Sealer::ephemeral();
        let sealed = a.seal(r#"{"bot_token":"123:SECRET"}"#);
        assert!(
            Sealer::is_sealed(&sealed) && !sealed.contains("SECRET"),
            "{sealed}"
        );
        assert_ne!(
            sealed,
            a.seal(r#"{"bot_token":"123:SECRET"}"#),
            "a fresh nonce each time"
        );
        assert_eq!(a.open(&sealed).unwrap(), r#"{"bot_token":"123:SECRET"}"#);
        assert!(matches!(
            Sealer::ephemeral().open(&sealed),
            Err(SealError::WrongKey)
        ));
        // A changed byte is refused, not decrypted into something else.
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(a.open(&String::from_utf8(tampered).unwrap()).is_err());
        // Values stored before sealing read as they are.
        assert_eq!(a.open("{}").unwrap(), "{}");
    }

    #[test]
    fn the_key_file_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = Sealer::load(dir.path()).unwrap().seal("x");
        let again = Sealer::load(dir.path()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        assert!(matches!(Sealer::load(dir.path()), Err(SealError::BadKey)));
    }
}
