//! Wildcard patterns as EC2 filters and IAM policies have them: `*` any run of characters,
//! `?` any one character, everything else itself (case-sensitive; callers fold case where
//! their language says so).

/// Whether `text` matches `pattern`.
///
/// Cost is linear in the text for patterns without `?` (each `*`-separated piece is found
/// with the standard library's substring search, leftmost first, which is enough for
/// `*`); a piece with `?` is tried at each position, so it costs its length times the text.
/// Nothing is allocated.
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = strip_piece(first, text) else {
        return false;
    };
    let mut pieces = pieces.peekable();
    if pieces.peek().is_none() {
        return rest.is_empty(); // no `*`: the whole text must be the piece
    }
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_none() {
            return ends_with_piece(piece, rest);
        }
        match find_piece(piece, rest) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    true
}

/// `text` without a leading match of `piece` (no `*`; `?` is one character).
fn strip_piece<'t>(piece: &str, text: &'t str) -> Option<&'t str> {
    let mut chars = text.char_indices();
    for p in piece.chars() {
        let (_, t) = chars.next()?;
        if p != '?' && p != t {
            return None;
        }
    }
    Some(chars.as_str())
}

/// Whether `text` ends with a match of `piece`.
fn ends_with_piece(piece: &str, text: &str) -> bool {
    let mut chars = text.chars().rev();
    piece.chars().rev().all(|p| chars.next().is_some_and(|t| p == '?' || p == t))
}

/// The text after the leftmost match of `piece`.
fn find_piece<'t>(piece: &str, text: &'t str) -> Option<&'t str> {
    if !piece.contains('?') {
        return text.find(piece).map(|at| &text[at + piece.len()..]);
    }
    text.char_indices().map(|(at, _)| &text[at..]).find_map(|from| strip_piece(piece, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_ec2() {
        assert!(matches("web*", "web-1"));
        assert!(matches("w?b", "web"));
        assert!(matches("*", ""));
        assert!(!matches("web", "Web"));
        assert!(!matches("a*c", "abd"));
        assert!(matches("a*c*", "abcbc"));
        assert!(matches("*b?d", "abcbxd") && !matches("*b?d", "abcbxde"));
        assert!(matches("é?*", "éa") && !matches("??", "é"));
        assert!(matches("a**b", "ab") && matches("*a*", "a") && !matches("a", "ab"));
    }
}
