//! Zero-copy packet views and emitters.
//!
//! Views borrow the caller's bytes and never panic on any input: every accessor that
//! could read past the end is behind a length check done once in `new_checked`.
//! Emitters write into a caller's buffer and allocate nothing.

#![forbid(unsafe_code)]

pub mod vxlan;

/// Why bytes cannot be read as the expected header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header needs.
    Truncated,
    /// A field has a value the format forbids.
    Malformed,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated header",
            WireError::Malformed => "malformed header",
        })
    }
}

impl std::error::Error for WireError {}
