//! Channel settings sealed at rest: XChaCha20-Poly1305 (the `chacha20poly1305` crate, a
//! RustCrypto AEAD) under a key that lives outside the database, in `HERALD_SECRET_KEY` or
//! the data folder's `secret.key`. A stolen database file or dump holds no usable token.
//!
//! A sealed value is `sealed:v2:<key id>:` and the base64 of a random 24-byte nonce followed
//! by the ciphertext. The ciphertext is bound to what it belongs to (associated data such as
//! `channel:7:telegram`), so a value copied onto another channel, or a channel's kind changed
//! in the database, does not open. The key id (a hash of the key) says which key sealed it.
//!
//! Older values (`sealed:v1:`, without associated data, and settings in clear from before
//! sealing) are opened only by [`Sealer::open_legacy`], which startup uses to seal them again;
//! everything else refuses them.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const PREFIX: &str = "sealed:v2:";
const LEGACY_PREFIX: &str = "sealed:v1:";
const NONCE: usize = 24;
/// The environment variable that holds the key (base64 of 32 bytes), instead of the file.
pub const KEY_VAR: &str = "HERALD_SECRET_KEY";
/// The key file's name in the data folder.
pub const KEY_FILE: &str = "secret.key";

/// Seals and opens stored secrets with one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// Which key this is (8 hex digits of a hash of it), written into every sealed value.
    key_id: String,
    /// The key file was created by this [`Sealer::load`] (no key existed before).
    created: bool,
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
    #[error(
        "a stored setting is not sealed (it was written around Herald); connect the channel again"
    )]
    NotSealed,
}

fn key_id(key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"herald sealing key id\0")
        .chain_update(key)
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl Sealer {
    /// A sealer with a new random key, known only to this process: for tests and tools whose
    /// database lives no longer than they do.
    pub fn ephemeral() -> Sealer {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Sealer {
            cipher: XChaCha20Poly1305::new(&key),
            key_id: key_id(&key),
            created: false,
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
            key_id: key_id(&bytes),
            created: false,
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
                let created = write_new_key(&path, &B64.encode(key)).map_err(failed)?;
                // Whoever won a race to create it, its key is the one.
                let text = std::fs::read_to_string(&path).map_err(failed)?;
                let mut sealer = Self::from_base64(&text)?;
                sealer.created = created;
                Ok(sealer)
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// Whether this sealer's key file was just created (no key existed before this start).
    pub fn was_just_created(&self) -> bool {
        self.created
    }

    /// Forgets that the key was just created (once the database proved to hold nothing sealed).
    pub fn settled(mut self) -> Sealer {
        self.created = false;
        self
    }

    /// `plain`, sealed and bound to `context` (what it belongs to, e.g. `channel:7:telegram`).
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: context.as_bytes(),
        };
        let sealed = self
            .cipher
            .encrypt(&nonce, payload)
            .expect("XChaCha20-Poly1305 encrypts any length Herald stores");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", self.key_id, B64.encode(bytes))
    }

    /// A value sealed for `context`, opened: refused if it was changed, sealed under another
    /// key or for something else, or is not sealed at all.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Err(SealError::NotSealed);
        };
        let (id, text) = rest.split_once(':').ok_or(SealError::WrongKey)?;
        if id != self.key_id {
            return Err(SealError::WrongKey);
        }
        self.decrypt(text, context.as_bytes())
    }

    /// A value as an older Herald stored it: in clear, or sealed without associated data.
    /// Current values open as [`Sealer::open`] does.
    pub fn open_legacy(&self, stored: &str, context: &str) -> Result<String, SealError> {
        match stored.strip_prefix(LEGACY_PREFIX) {
            Some(text) => self.decrypt(text, b""),
            None if Self::is_sealed(stored) => self.open(stored, context),
            None => Ok(stored.to_string()),
        }
    }

    fn decrypt(&self, text: &str, aad: &[u8]) -> Result<String, SealError> {
        let bytes = B64.decode(text).map_err(|_| SealError::WrongKey)?;
        if bytes.len() < NONCE {
            return Err(SealError::WrongKey);
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let payload = Payload { msg: sealed, aad };
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::WrongKey)
    }

    /// Whether `stored` is sealed the current way.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

/// Writes a new key file that only its owner can read; an existing one is left alone.
/// Whether this call created it.
fn write_new_key(path: &Path, key: &str) -> std::io::Result<bool> {
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
            file.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "channel:7:telegram";

    #[test]
    fn sealed_values_open_with_their_key_and_context_only_and_hide_the_text() {
        let a = Sealer::ephemeral();
        let sealed = a.seal(r#"{"bot_token":"123:SECRET"}"#, AT);
        assert!(
            Sealer::is_sealed(&sealed) && !sealed.contains("SECRET"),
            "{sealed}"
        );
        assert!(
            sealed.starts_with(&format!("sealed:v2:{}:", a.key_id)),
            "{sealed}"
        );
        assert_ne!(
            sealed,
            a.seal(r#"{"bot_token":"123:SECRET"}"#, AT),
            "a fresh nonce each time"
        );
        assert_eq!(
            a.open(&sealed, AT).unwrap(),
            r#"{"bot_token":"123:SECRET"}"#
        );
        assert!(matches!(
            Sealer::ephemeral().open(&sealed, AT),
            Err(SealError::WrongKey)
        ));
        // Copied onto another channel, or its kind changed: refused.
        assert!(matches!(
            a.open(&sealed, "channel:8:telegram"),
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            a.open(&sealed, "channel:7:webhook"),
            Err(SealError::WrongKey)
        ));
        // A changed byte is refused, not decrypted into something else.
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(a.open(&String::from_utf8(tampered).unwrap(), AT).is_err());
        // A value in clear is refused by everything but the upgrade.
        assert!(matches!(a.open("{}", AT), Err(SealError::NotSealed)));
        assert_eq!(a.open_legacy("{}", AT).unwrap(), "{}");
        assert_eq!(
            a.open_legacy(&sealed, AT).unwrap(),
            r#"{"bot_token":"123:SECRET"}"#
        );
    }

    #[test]
    fn values_an_older_herald_sealed_open_only_for_the_upgrade() {
        let a = Sealer::ephemeral();
        // `sealed:v1:`: nonce and ciphertext without associated data.
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut bytes = nonce.to_vec();
        bytes.extend(a.cipher.encrypt(&nonce, b"{\"old\":1}".as_slice()).unwrap());
        let v1 = format!("{LEGACY_PREFIX}{}", B64.encode(bytes));
        assert!(!Sealer::is_sealed(&v1));
        assert!(matches!(a.open(&v1, AT), Err(SealError::NotSealed)));
        assert_eq!(a.open_legacy(&v1, AT).unwrap(), "{\"old\":1}");
        assert!(Sealer::ephemeral().open_legacy(&v1, AT).is_err());
    }

    #[test]
    fn the_key_file_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sealer::load(dir.path()).unwrap();
        assert!(first.was_just_created());
        let sealed = first.seal("x", AT);
        let again = Sealer::load(dir.path()).unwrap();
        assert!(!again.was_just_created());
        assert_eq!(again.open(&sealed, AT).unwrap(), "x");
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
