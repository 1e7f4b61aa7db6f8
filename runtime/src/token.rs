//! Owner tokens: 128 bits from the operating system's random source, per acquisition.
//!
//! Random bytes are drawn a page at a time into a per-thread buffer: one `getrandom`
//! system call serves 256 tokens, so the hot path pays for randomness almost nothing,
//! and every token still consists of fresh OS randomness, never of a derived sequence.

use std::cell::RefCell;

use crate::error::LockError;

const TOKEN_BYTES: usize = 16;
const BATCH: usize = 256 * TOKEN_BYTES;

struct RandomBuffer {
    bytes: [u8; BATCH],
    /// Bytes from here on are unused.
    next: usize,
}

thread_local! {
    static RANDOM: RefCell<RandomBuffer> = const {
        RefCell::new(RandomBuffer { bytes: [0; BATCH], next: BATCH })
    };
}

/// A fresh owner token, as 32 lowercase hex digits.
pub(crate) fn new_token() -> Result<String, LockError> {
    let mut token = [0u8; TOKEN_BYTES];
    RANDOM.with_borrow_mut(|random| {
        if random.next == BATCH {
            getrandom::fill(&mut random.bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
            random.next = 0;
        }
        let taken = random.next..random.next + TOKEN_BYTES;
        token.copy_from_slice(&random.bytes[taken.clone()]);
        // Never hand out the same bytes twice.
        random.bytes[taken].fill(0);
        random.next += TOKEN_BYTES;
        Ok::<_, LockError>(())
    })?;
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
    fn tokens_are_128_bit_hex_and_distinct_across_batches() {
        let tokens: HashSet<String> = (0..1000).map(|_| super::new_token().unwrap()).collect();
        assert_eq!(tokens.len(), 1000, "no token repeats, also across refills");
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|c| c.is_ascii_hexdigit()))
        );
    }
}
