//! Secrets at rest: access-key secrets are stored sealed with AES-256-GCM under a master
//! key kept beside the data (`DATA_DIR/master.key`, mode 0600), so a copy of the store
//! alone does not give away a single key. The server unseals a secret when it checks a
//! signature; it never writes one out in the clear (only `tapwire access-key create`
//! prints it, once).
//!
//! Sealed form: Base64 of `nonce (12 bytes) || ciphertext || tag`, with the access key ID
//! as associated data, so a sealed secret moved to another key does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

/// Bytes of a master key.
pub const KEY_LEN: usize = 32;

/// Why a sealed secret does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed secret does not open with this master key")]
pub struct SealError;

/// The master key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// A box over `key`.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// Seals `secret` for `key_id`; `nonce` must be fresh random bytes.
    pub fn seal(&self, key_id: &str, secret: &str, nonce: [u8; 12]) -> String {
        let payload = Payload { msg: secret.as_bytes(), aad: key_id.as_bytes() };
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_else(|_| unreachable!("AES-GCM encrypts any message this short"));
        let mut out = nonce.to_vec();
        out.extend(sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Opens what [`SecretBox::seal`] sealed for `key_id`.
    pub fn open(&self, key_id: &str, sealed: &str) -> Result<String, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).map_err(|_| SealError)?;
        if bytes.len() < 12 {
            return Err(SealError);
        }
        let (nonce, body) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: key_id.as_bytes() })
            .map_err(|_| SealError)?;
        String::from_utf8(plain).map_err(|_| SealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_its_key() {
        let b = SecretBox::new(&[7; KEY_LEN]);
        let sealed = b.seal("TWAKA", "s3cret", [1; 12]);
        assert!(!sealed.contains("s3cret"));
        assert_eq!(b.open("TWAKA", &sealed).unwrap(), "s3cret");
        assert_eq!(b.open("TWAKB", &sealed), Err(SealError));
        assert_eq!(SecretBox::new(&[8; KEY_LEN]).open("TWAKA", &sealed), Err(SealError));
        assert_eq!(b.open("TWAKA", "!!"), Err(SealError));
    }
}
