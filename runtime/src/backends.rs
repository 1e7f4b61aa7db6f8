//! Where locks live: the one enum of backend kinds with one arm per kind in every operation, the
//! Redlock quorum, replica acknowledgement on a cluster, key scans, and the release that keeps
//! a lock taken for the rest of its minimum hold.

pub(crate) mod attempt;
pub(crate) mod backend;
pub(crate) mod counted;
pub(crate) mod keep;
pub(crate) mod one_server;
pub(crate) mod redlock;
pub(crate) mod release_reply;
pub(crate) mod replicas;
pub(crate) mod routes;
pub(crate) mod scan;
