//! Walking a client's lock keys with `SCAN` (never `KEYS`, which blocks the server), for
//! `reset_all` and the listing of held locks.

use crate::client::LockClient;
use crate::error::LockError;
use crate::io::{Io, command};
use crate::resp::{Reply, unexpected};

/// The lock keys of one client, a page of `SCAN` at a time. A key present for the whole
/// walk is returned at least once; keys written during the walk may be missed.
pub(crate) struct LockKeys<'a> {
    client: &'a LockClient,
    /// `<prefix>{*`, the prefix's glob characters escaped.
    pattern: String,
    /// `None` once the server said the walk is over.
    cursor: Option<Vec<u8>>,
}

impl<'a> LockKeys<'a> {
    pub(crate) fn new(client: &'a LockClient) -> LockKeys<'a> {
        LockKeys {
            client,
            pattern: format!("{}{{*", glob_escape(&client.prefix)),
            cursor: Some(b"0".to_vec()),
        }
    }

    /// The lock keys of the next page (perhaps none), or `None` when the walk is over.
    /// Fencing counters (`<lock key>:fence`) are left out: lock keys end with the hash
    /// tag's `}`.
    pub(crate) async fn next_page<I: Io>(
        &mut self,
        io: &I,
    ) -> Result<Option<Vec<String>>, LockError> {
        let Some(cursor) = self.cursor.take() else {
            return Ok(None);
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(&cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(1000);
        let reply = command(io, self.client, &scan).await?;
        let Reply::Array(mut parts) = reply else {
            return Err(unexpected(&reply));
        };
        let (Some(Reply::Array(keys)), Some(Reply::Bulk(next))) = (parts.pop(), parts.pop()) else {
            return Err(unexpected(&Reply::Array(parts)));
        };
        if next != b"0" {
            self.cursor = Some(next);
        }
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| match key {
                    Reply::Bulk(key) if key.ends_with(b"}") => {
                        Some(String::from_utf8_lossy(&key).into_owned())
                    }
                    _ => None,
                })
                .collect(),
        ))
    }
}

/// `s` as a glob pattern that matches exactly `s`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn escapes_glob_characters() {
        assert_eq!(glob_escape("lock:"), "lock:");
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
    }
}
