//! Access key IDs and secrets, from random bytes the caller draws (this crate draws none).
//!
//! IDs are `TWAK` and 16 characters of the RFC 4648 Base32 alphabet (upper-case letters and
//! 2–7), like AWS's `AKIA…`; secrets are 40 characters of `A-Za-z0-9`, like both clouds'.

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The prefix of every access key ID.
pub const KEY_ID_PREFIX: &str = "TWAK";

/// An access key ID from 16 random bytes.
pub fn key_id(random: [u8; 16]) -> String {
    let body: String = random.iter().map(|b| char::from(BASE32[usize::from(b % 32)])).collect();
    format!("{KEY_ID_PREFIX}{body}")
}

/// A secret from 40 random bytes (the modulo bias of 256 over 62 is below 2 %, far
/// under what 238 bits of entropy need).
pub fn secret(random: [u8; 40]) -> String {
    random.iter().map(|b| char::from(ALNUM[usize::from(b % 62)])).collect()
}

/// Whether `text` has the shape of an access key ID.
pub fn is_key_id(text: &str) -> bool {
    text.strip_prefix(KEY_ID_PREFIX).is_some_and(|b| b.len() == 16 && b.bytes().all(|c| BASE32.contains(&c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = key_id([200; 16]);
        assert!(is_key_id(&id) && id.len() == 20);
        assert!(!is_key_id("AKIAIOSFODNN7EXAMPLE"));
        let s = secret([255; 40]);
        assert_eq!(s.len(), 40);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
