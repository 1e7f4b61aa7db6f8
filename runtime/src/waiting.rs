//! In-process waiting: the wait table, a waiter's place, handovers, and the release announcements
//! that poke it.

pub(crate) mod cluster_pubsub;
pub(crate) mod handover;
pub(crate) mod listener;
pub(crate) mod subscriber;
pub(crate) mod ticket;
pub(crate) mod waiters;
