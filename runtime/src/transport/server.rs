//! One Redis server as our connections reach it, and the server a request goes to now.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::endpoint::Endpoint;
use crate::transport::tls::TlsSettings;
use crate::util::error::LockError;

/// One Redis server: how our connections reach it.
pub(crate) struct Server {
    pub(crate) endpoint: Endpoint,
}

impl Server {
    /// The server of a `redis://`, `rediss://` or `unix://` URL, for the client registered
    /// as `client`.
    pub(crate) fn from_url(
        client: &str,
        url: &str,
        tls: &TlsSettings,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Server, LockError> {
        let info = crate::util::url::connection_info(url)?;
        Server::from_connection_info(client, &info, tls, connect_timeout, response_timeout)
    }

    /// The server of an application's own connection settings.
    pub(crate) fn from_connection_info(
        client: &str,
        info: &redis::ConnectionInfo,
        tls: &TlsSettings,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Server, LockError> {
        let endpoint = Endpoint::new(client, info, tls, connect_timeout, response_timeout)?;
        Ok(Server { endpoint })
    }
}

/// The server a request goes to: a client's fixed one, or the master found last.
pub(crate) enum Current<'a> {
    Fixed(&'a Server),
    Resolved(Arc<Server>),
}

impl Deref for Current<'_> {
    type Target = Server;

    fn deref(&self) -> &Server {
        match self {
            Current::Fixed(server) => server,
            Current::Resolved(server) => server,
        }
    }
}
