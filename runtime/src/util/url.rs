//! Redis URLs: parsed into the `redis` crate's connection settings, checked, and shown
//! with their passwords hidden.

use crate::util::error::LockError;

fn unusable(url: &str, e: redis::RedisError) -> LockError {
    let url = redact_url(url);
    // `host:port` alone parses as a URL whose scheme is the host: say what was meant.
    if !url.contains("://") {
        return LockError::invalid(format!(
            "`{url}` is not a Redis URL (it has no scheme): did you mean `redis://{url}`?"
        ));
    }
    LockError::invalid(format!("`{url}` is not a usable Redis URL: {e}"))
}

/// A URL's connection settings, checked.
/// [`connection_info`] for `what` (sentinels, cluster nodes), which must be TCP servers.
pub(crate) fn tcp_connection_info(
    url: &str,
    what: &str,
) -> Result<redis::ConnectionInfo, LockError> {
    let info = connection_info(url)?;
    match info.addr() {
        redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::TcpTls { .. } => Ok(info),
        _ => Err(LockError::invalid(format!(
            "`{}`: {what} must be reached over TCP (redis:// or rediss://)",
            redact_url(url)
        ))),
    }
}

pub(crate) fn connection_info(url: &str) -> Result<redis::ConnectionInfo, LockError> {
    #[cfg(not(feature = "tls"))]
    if url
        .get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
    {
        return Err(tls_not_enabled(&redact_url(url)));
    }
    let info =
        redis::IntoConnectionInfo::into_connection_info(url).map_err(|e| unusable(url, e))?;
    // A cluster's connections would send `CLIENT SETINFO` (ignoring its failure): skip
    // it, so a lock user's ACL needs no CLIENT right beyond `client|setname` (see the
    // README's "Security").
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Ok(info.set_redis_settings(settings))
}

/// The URL with its password replaced by `***`, for messages: `redis://user:***@host`,
/// and `unix:///path?pass=***`. Works on malformed URLs too.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The user information ends at the last `@` (a password may hold `@` or `/`).
    let rest = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, host) = rest.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => rest.to_string(),
            }
        }
        None => rest.to_string(),
    };
    // unix:// URLs carry credentials as query parameters.
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("pass") || k.eq_ignore_ascii_case("password") =>
                    {
                        format!("{k}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => rest,
    };
    format!("{scheme}{rest}")
}

/// The error for a `rediss://` URL when the crate was built without TLS.
#[cfg(not(feature = "tls"))]
pub(crate) fn tls_not_enabled(url: &str) -> LockError {
    LockError::invalid(format!(
        "`{url}` asks for TLS, but redis-locked was built without its `tls` feature: \
         enable it (`redis-locked = {{ version = \"...\", features = [\"tls\"] }}`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[cfg(not(feature = "tls"))]
    #[test]
    fn rediss_without_the_tls_feature_says_to_enable_it() {
        let e = crate::ClientBuilder::new("rediss://:s3cret@127.0.0.1:6380")
            .register("rediss-without-tls")
            .unwrap_err();
        let message = e.to_string();
        assert!(
            matches!(e, crate::LockError::InvalidConfig { .. })
                && message.contains("`tls` feature"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("redis://user:s3cret@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(redact_url("redis://:s3cret@host"), "redis://:***@host");
        assert_eq!(redact_url("rediss://u:a@b/c@host"), "rediss://u:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
        assert_eq!(
            redact_url("unix:///tmp/r.sock?db=1&pass=s3cret&user=me"),
            "unix:///tmp/r.sock?db=1&pass=***&user=me"
        );
        assert_eq!(redact_url("u:s3cret@host"), "u:***@host");
    }
}
