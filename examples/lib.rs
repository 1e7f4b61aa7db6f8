//! Shared helpers of the examples.

pub mod awake;
pub mod axum_service;
pub mod locks_cli;
pub mod process_time;
