//! Who holds a lock, written into the lock's key next to the owner token, for operators.
//!
//! A lock key holds its owner's value: `<token> <since> <pid> <host> <taken by>`, that is the
//! acquisition's owner token (32 hex digits, 128 random bits, see `token.rs`), then when the
//! holder took the lock (Unix time in milliseconds, by the holder's clock), its process id,
//! its host name, and what took it: `fn:<name template>` for a `#[redis_lock]` function,
//! `api` for the programmatic API. The template comes last, so it may hold spaces.
//!
//! The holder always knows the whole value it wrote, so the owner-checked scripts compare
//! the whole value exactly as they would the token alone: no script reads the description,
//! and it costs no round trip, only the bytes of one `SET`. Inspection splits it again.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::forks;

/// Who holds a lock, as the holder described itself when it took it: part of
/// [`LockInfo`](crate::LockInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The host name of the holder's machine.
    pub host: String,
    /// The holder's process id on that machine.
    pub pid: u32,
    /// The `name` template of the `#[redis_lock]` function that took the lock, as written
    /// (`"invoice:{order_id}"`); `None` when it was taken through [`Lock`](crate::Lock).
    pub template: Option<String>,
    /// When the holder's acquisition began, by the holder's clock: for a holder that
    /// waited, when it started to wait (mind the clocks' skew when comparing it with
    /// another machine's time).
    pub since: SystemTime,
}

impl std::fmt::Display for Holder {
    /// `host:pid, fn invoice:{order_id}` or `host:pid, programmatic`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}, ", self.host, self.pid)?;
        match &self.template {
            Some(template) => write!(f, "fn {template}"),
            None => f.write_str("programmatic"),
        }
    }
}

/// The value an acquisition under `token` writes: for a `#[redis_lock]` function with name
/// template `template`, or the programmatic API. Its time is when the acquisition began
/// (it may have waited before getting the lock): the value stays the same for the whole
/// acquisition, handover included, because an attempt or handover whose reply was lost is
/// settled by finding this very value in the key.
pub(crate) fn owner_value(token: &str, template: Option<&str>) -> String {
    let (since, pid, host) = (now_millis(), pid(), &*HOST);
    // One allocation: this runs on every call, and `format!` would start this string
    // empty (its pattern starts with an argument) and grow it four or five times.
    // `<token> <since> <pid> <host> <taken by>`: a u64 has at most 20 digits, a u32 10;
    // `api` or `fn:` and the template.
    let taken_by = template.map_or("api".len(), |template| "fn:".len() + template.len());
    let mut value = String::with_capacity(token.len() + 20 + 10 + host.len() + taken_by + 4);
    value.push_str(token);
    // itoa, not `write!`: the formatting machinery took twice the instructions of the
    // rest of this function.
    let mut digits = itoa::Buffer::new();
    value.push(' ');
    value.push_str(digits.format(since));
    value.push(' ');
    value.push_str(digits.format(pid));
    value.push(' ');
    value.push_str(host);
    match template {
        Some(template) => {
            value.push_str(" fn:");
            value.push_str(template);
        }
        None => value.push_str(" api"),
    }
    value
}

/// The owner token at the start of a lock key's value (all of it, for a value that does
/// not describe its holder).
pub(crate) fn token_of(value: &str) -> &str {
    value.split_once(' ').map_or(value, |(token, _)| token)
}

/// A lock key's value as its owner token and holder; no holder when the value does not
/// describe one in this format (written by someone else, or by an older version).
pub(crate) fn parse(value: &str) -> (&str, Option<Holder>) {
    let token = token_of(value);
    let holder = (|| {
        let mut fields = value.splitn(5, ' ').skip(1);
        let since: u64 = fields.next()?.parse().ok()?;
        let pid = fields.next()?.parse().ok()?;
        let host = fields.next()?.to_string();
        let template = match fields.next()? {
            "api" => None,
            taken_by => Some(taken_by.strip_prefix("fn:")?.to_string()),
        };
        Some(Holder {
            host,
            pid,
            template,
            since: UNIX_EPOCH + Duration::from_millis(since),
        })
    })();
    (token, holder)
}

/// As `u64`: formatting a `u128` costs several times as much, on every call.
fn now_millis() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// This process's id, asked of the system once (`getpid` is a system call, and this runs on
/// every call) and again in a child after `fork()` (see `forks.rs`): a child otherwise
/// describes its locks with its parent's id. Kept with the fork generation it was asked
/// in, the generation in the high half; 0 until known.
static PID: AtomicU64 = AtomicU64::new(0);

fn pid() -> u32 {
    let generation = forks::generation() as u32;
    let known = PID.load(Ordering::Relaxed);
    if known != 0 && (known >> 32) as u32 == generation {
        return known as u32;
    }
    let pid = std::process::id();
    PID.store(
        u64::from(generation) << 32 | u64::from(pid),
        Ordering::Relaxed,
    );
    pid
}

/// This machine's host name, without spaces (which separate the value's fields) or other
/// characters a terminal would not show as they are; `unknown` if the system has none.
static HOST: LazyLock<String> = LazyLock::new(|| {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and gethostname writes at
    // most that many.
    let failed = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let host: String = String::from_utf8_lossy(&buf[..len])
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if failed || host.is_empty() {
        "unknown".to_string()
    } else {
        host
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    /// A child forked after the parent described a lock describes its own with its own
    /// process id.
    #[test]
    fn a_forked_child_describes_its_locks_with_its_own_pid() {
        let parent = parse(&owner_value(TOKEN, None)).1.expect("described").pid;
        assert_eq!(parent, std::process::id());
        let (child, line) = crate::util::forked::output_of_forked_child(|| {
            let described = parse(&owner_value(TOKEN, None)).1.map_or(0, |h| h.pid);
            format!("{described} {}", std::process::id())
        });
        assert_eq!(line, format!("{child} {child}"), "the child's description");
        let again = parse(&owner_value(TOKEN, None)).1.expect("described").pid;
        assert_eq!(again, parent, "the parent's stays its own");
    }

    #[test]
    fn a_value_starts_with_its_token_and_describes_its_holder() {
        let before = SystemTime::now() - Duration::from_millis(1);
        let value = owner_value(TOKEN, Some("invoice:{order id}"));
        assert!(value.starts_with(&format!("{TOKEN} ")), "{value}");
        let (token, holder) = parse(&value);
        assert_eq!(token, TOKEN);
        let holder = holder.expect("described");
        assert_eq!(holder.template.as_deref(), Some("invoice:{order id}"));
        assert_eq!(holder.pid, std::process::id());
        assert!(!holder.host.is_empty() && !holder.host.contains(' '));
        assert!(holder.since >= before && holder.since <= SystemTime::now());

        let programmatic = owner_value(TOKEN, None);
        let (token, holder) = parse(&programmatic);
        assert_eq!(token, TOKEN);
        assert_eq!(holder.expect("described").template, None);
    }

    #[test]
    fn values_of_other_writers_are_their_own_owner_without_holder() {
        for value in [
            "someone",
            TOKEN,
            "a b c",
            "t 1 2 host other",
            "t x 2 host api",
        ] {
            let (token, holder) = parse(value);
            assert_eq!(holder, None, "{value}");
            assert_eq!(token, token_of(value));
        }
        assert_eq!(token_of("someone"), "someone");
    }
}
