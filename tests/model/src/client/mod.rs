//! The client side of the protocol, one concern a file.

pub mod acquire;
pub mod cleanup;
pub mod crash;
pub mod inbox;
pub mod pubsub;
pub mod release;
pub mod table;
