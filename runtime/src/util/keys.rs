//! The Redis keys of a lock: where its name goes, so that every key of one lock shares a
//! Redis Cluster hash slot, for any name.
//!
//! Redis Cluster hashes only a key's hash tag: the text between its first `{` and the next
//! `}`, when that text is not empty; otherwise the whole key. A lock lives in
//! `<prefix>{<name>}` and its fencing counter in `<prefix>{<name>}:fence`: the prefix has
//! no braces (checked at registration), so the tag starts right after it and both keys
//! have the same one. The tag is the name, or the name up to its first `}` (names like
//! `{a}b` or `a}{b` still give one slot to both keys). Only a name that starts with `}`
//! gives an empty tag: the two keys would be hashed whole, land in different slots, and
//! every script on them would fail with `CROSSSLOT`. Such a name gets its own layout,
//! `<prefix>}{<hash>}<name>}`: the tag is a hash of the name (so those locks still spread
//! over the cluster), and the `}` after the prefix keeps these keys apart from every
//! `<prefix>{...}` key. Both layouts end with `}`, which fencing counters never do.

/// Why a key prefix is refused, if it is: braces in it would make the hash tag part of the
/// prefix (one slot for every lock, or an empty tag and `CROSSSLOT`).
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['{', '}']) {
        return Err(format!(
            "the key prefix {prefix:?} must not contain '{{' or '}}': each lock's name is its \
             keys' Redis Cluster hash tag"
        ));
    }
    Ok(())
}

/// The key of lock `name` under `prefix` (a prefix [`check_prefix`] accepts).
pub(crate) fn lock_key(prefix: &str, name: &str) -> String {
    if name.starts_with('}') {
        format!("{prefix}}}{{{:016x}}}{name}}}", fnv1a(name))
    } else {
        // Not `format!`, which would start this string empty and grow it: this runs on
        // every call.
        let mut key = String::with_capacity(prefix.len() + name.len() + 2);
        key.push_str(prefix);
        key.push('{');
        key.push_str(name);
        key.push('}');
        key
    }
}

/// The lock name in a key that [`lock_key`] made with `prefix`.
pub(crate) fn name_of<'k>(prefix: &str, key: &'k str) -> &'k str {
    let rest = key.strip_prefix(prefix).unwrap_or(key);
    let rest = rest.strip_suffix('}').unwrap_or(rest);
    match rest.strip_prefix('{') {
        Some(name) => name,
        // `}{<16 hex digits>}<name>`
        None => rest.get(2 + 16 + 1..).unwrap_or(rest),
    }
}

/// FNV-1a, 64 bits: a stable hash (the same in every process and version), so every
/// process puts a name's keys in the same place.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text Redis Cluster hashes for `key`.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{')
            && let Some(len) = key[open + 1..].find('}')
            && len > 0
        {
            return &key[open + 1..open + 1 + len];
        }
        key
    }

    #[test]
    fn a_lock_and_its_fence_share_a_non_empty_hash_tag_for_any_name() {
        for name in [
            "invoice:42",
            "}x",
            "}",
            "}}",
            "{a}b",
            "a}{b",
            "{",
            "{}",
            "}{}",
            "a}",
        ] {
            let key = lock_key("lock:", name);
            let fence = crate::protocol::scripts::fence_key(&key);
            assert_ne!(hash_tag(&key), key, "{name:?} -> {key}");
            assert_eq!(hash_tag(&key), hash_tag(&fence), "{name:?} -> {key}");
            assert!(key.ends_with('}') && !fence.ends_with('}'));
            assert_eq!(name_of("lock:", &key), name, "{key}");
        }
        assert_eq!(lock_key("lock:", "invoice:42"), "lock:{invoice:42}");
        assert_eq!(lock_key("lock:", "{a}b"), "lock:{{a}b}");
    }

    #[test]
    fn names_starting_with_a_brace_get_keys_no_other_name_has() {
        let escaped = lock_key("lock:", "}x");
        assert!(escaped.starts_with("lock:}{"), "{escaped}");
        // What an ordinary name would need to produce the same key.
        let inner = &escaped["lock:".len()..];
        assert_ne!(lock_key("lock:", inner), escaped);
        assert_ne!(lock_key("lock:", "}y"), escaped);
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(check_prefix("lock:").is_ok());
        assert!(check_prefix("").is_ok());
        for prefix in ["app{}:", "app:{x}:", "}", "{"] {
            assert!(check_prefix(prefix).is_err(), "{prefix}");
        }
    }
}
