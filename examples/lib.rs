//! Shared helpers of the examples.

pub mod awake;
pub mod axum_service;
pub mod locks_cli;
pub mod on_all;
pub mod process_time;
