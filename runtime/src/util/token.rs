//! Owner tokens: 128 bits from the operating system's random source, per acquisition.
//!
//! Each thread draws 64 tokens' worth of bytes with one `getrandom` call and hands them out
//! one token at a time: a `getrandom` call per token cost about 300 ns here, a system call
//! on every lock call. A byte handed out is wiped from the buffer. The buffer is copied by
//! `fork()`, so a thread that finds itself in a forked child (see `forks.rs`) throws away
//! what it drew before and draws again: parent and child never hand out the same token.

use std::cell::RefCell;

use crate::util::error::LockError;
use crate::util::forks;

const TOKEN_BYTES: usize = 16;

/// How many tokens one `getrandom` call draws for.
const TOKENS_AHEAD: usize = 64;

/// A thread's random bytes drawn ahead, from `used` on, in the fork generation `generation`.
struct DrawnAhead {
    bytes: [u8; TOKEN_BYTES * TOKENS_AHEAD],
    used: usize,
    generation: u64,
}

thread_local! {
    static DRAWN_AHEAD: RefCell<DrawnAhead> = const {
        RefCell::new(DrawnAhead {
            bytes: [0; TOKEN_BYTES * TOKENS_AHEAD],
            used: TOKEN_BYTES * TOKENS_AHEAD,
            generation: 0,
        })
    };
}

/// A fresh owner token, as 32 lowercase hex digits.
pub(crate) fn new_token() -> Result<String, LockError> {
    let generation = forks::generation();
    DRAWN_AHEAD.with_borrow_mut(|drawn| {
        if drawn.used == drawn.bytes.len() || drawn.generation != generation {
            getrandom::fill(&mut drawn.bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
            drawn.used = 0;
            drawn.generation = generation;
        }
        let token = &mut drawn.bytes[drawn.used..drawn.used + TOKEN_BYTES];
        let hex = hex(token);
        token.fill(0);
        drawn.used += TOKEN_BYTES;
        Ok(hex)
    })
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
        // Several threads, each through several of its drawings ahead.
        let tokens: HashSet<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..1000)
                            .map(|_| super::new_token().unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        assert_eq!(tokens.len(), 4000, "no token repeats");
        assert!(
            tokens
                .iter()
                .all(|t| t.len() == 32 && t.bytes().all(|c| c.is_ascii_hexdigit()))
        );
    }

    /// The bytes of the tokens handed out do not stay behind in the thread's buffer.
    #[test]
    fn a_token_handed_out_is_wiped_from_the_buffer() {
        for _ in 0..3 {
            let token = super::new_token().unwrap();
            let left = super::DRAWN_AHEAD.with_borrow(|drawn| {
                let handed_out = &drawn.bytes[..drawn.used];
                assert!(!handed_out.is_empty());
                handed_out.iter().all(|&byte| byte == 0)
            });
            assert!(left, "a token's bytes stayed in the buffer after {token}");
        }
    }

    /// A forked child must not repeat its parent's tokens, although it starts with a copy
    /// of the bytes its parent drew ahead.
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
