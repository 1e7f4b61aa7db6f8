//! Owner tokens: 128 bits from the operating system's random source, per acquisition.
//!
//! Each token is drawn on its own with one `getrandom` call (a few hundred nanoseconds,
//! against the tens of microseconds of the round trip that uses it). Nothing is buffered:
//! a buffer of random bytes would be copied by `fork()`, and parent and child would then
//! hand out the same tokens.

use crate::util::error::LockError;

const TOKEN_BYTES: usize = 16;

/// A fresh owner token, as 32 lowercase hex digits.
pub(crate) fn new_token() -> Result<String, LockError> {
    let mut token = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut token).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex(&token))
}

/// A random id for one client instance in this process (used to recognise our own
/// release announcements).
pub(crate) fn new_instance_id() -> Result<String, LockError> {
    new_token()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn tokens_are_128_bit_hex_and_distinct() {
        let tokens: HashSet<String> = (0..1000).map(|_| super::new_token().unwrap()).collect();
        assert_eq!(tokens.len(), 1000, "no token repeats");
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|c| c.is_ascii_hexdigit()))
        );
    }

    /// A forked child must not repeat its parent's tokens: nothing random may live in
    /// memory that `fork()` copies.
    #[test]
    fn a_forked_child_draws_other_tokens_than_its_parent() {
        let first = super::new_token().unwrap();
        let (_, from_child) =
            crate::util::forked::output_of_forked_child(|| super::new_token().unwrap_or_default());
        let from_parent = super::new_token().unwrap();
        assert_eq!(from_child.len(), 32, "the child drew a token");
        assert_ne!(from_child, from_parent, "parent and child after fork");
        assert_ne!(from_child, first);
    }
}
