//! Shared helpers of the examples.

pub mod locks_cli;
