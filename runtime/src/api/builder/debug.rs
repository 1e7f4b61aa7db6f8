//! How a [`ClientBuilder`] shows itself: its settings, never a password or a key.

use super::{ClientBuilder, TargetConfig};

/// Shows the URL with its password replaced by `***`.
impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("ClientBuilder");
        match &self.target {
            TargetConfig::Url(url) => {
                s.field("url", &crate::util::url::redact_url(url));
            }
            TargetConfig::Info(info) => {
                s.field("address", &info.addr().to_string());
            }
            TargetConfig::Sentinel {
                master,
                sentinel_urls,
                credentials,
            } => {
                let urls: Vec<String> = sentinel_urls
                    .iter()
                    .map(|u| crate::util::url::redact_url(u))
                    .collect();
                s.field("sentinel_master", master)
                    .field("sentinel_urls", &urls)
                    .field(
                        "master_user",
                        &credentials.as_ref().map(|(user, _)| user.as_str()),
                    );
            }
            TargetConfig::Redlock(urls) => {
                let urls: Vec<String> = urls
                    .iter()
                    .map(|u| crate::util::url::redact_url(u))
                    .collect();
                s.field("redlock_urls", &urls);
            }
            TargetConfig::Cluster { seed_urls } => {
                let urls: Vec<String> = seed_urls
                    .iter()
                    .map(|u| crate::util::url::redact_url(u))
                    .collect();
                s.field("cluster_seed_urls", &urls)
                    .field("min_replicas", &self.min_replicas);
            }
            TargetConfig::Memory => {
                s.field("in_memory", &true);
            }
        }
        s.field(
            "tls_root_certificate",
            &self.tls.root_certificate.as_ref().map(|_| "<PEM>"),
        )
        .field(
            "tls_client_certificate",
            &self.tls.client_certificate.as_ref().map(|_| "<PEM>"),
        );
        s.field("prefix", &self.prefix)
            .field("default_lease", &self.default_lease)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}
