//! RFC 3986 percent-encoding as every signature here wants it: unreserved characters
//! (`A-Z a-z 0-9 - . _ ~`) stay, every other byte of the UTF-8 is `%XX` (upper-case hex).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but the unreserved characters.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `text` with every byte outside the unreserved set percent-encoded.
pub fn rfc3986(text: &str) -> String {
    utf8_percent_encode(text, RESERVED).to_string()
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(rfc3986("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(rfc3986("a b*c/d=é"), "a%20b%2Ac%2Fd%3D%C3%A9");
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
