//! Lists, shows and force-releases the locks of a Redis server (see
//! `redis_locked_examples::locks_cli`).
//!
//! ```text
//! cargo run -p redis-locked-examples --example locks -- [--url URL] [--prefix PREFIX] list | show NAME | release NAME
//! ```

use std::process::ExitCode;

use redis_locked_examples::locks_cli;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let redis_url = std::env::var("REDIS_URL").ok();
    ExitCode::from(locks_cli::run(
        &args,
        redis_url.as_deref(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ))
}
