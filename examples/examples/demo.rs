//! Three processes with two tasks each take turns on one lock; watch it pass from one
//! holder to the next. Uses `REDIS_URL` if set, else starts a throwaway redis-server.
//!
//! ```text
//! bash examples/demo.sh
//! ```

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis_locked::{LockError, redis_lock};

/// Only one task in all processes at a time may print on the shared "printer".
#[redis_lock(name = "printer:{printer}", expire = 5, timeout = 30)]
async fn print_job(printer: &str, who: &str, job: u32, epoch: u128) -> Result<(), LockError> {
    println!(
        "{:>6} ms  {who} has {printer} (job {job})",
        now_ms() - epoch
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    println!("{:>6} ms  {who} releases {printer}", now_ms() - epoch);
    Ok(())
}

/// Wall-clock milliseconds: one clock for all the demo's processes.
fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn worker(process: u32, epoch: u128) -> Result<(), LockError> {
    let tasks: Vec<_> = (1..=2)
        .map(|task| {
            tokio::spawn(async move {
                let who = format!("process {process} task {task}");
                for job in 1..=2 {
                    print_job("printer-1", &who, job, epoch).await?;
                }
                Ok::<_, LockError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked")?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        redis_locked::init(&std::env::var("REDIS_URL")?)?;
        let runtime = tokio::runtime::Runtime::new()?;
        return Ok(runtime.block_on(worker(args[2].parse()?, args[3].parse()?))?);
    }

    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = redis_locked_tests::RedisServer::start();
            println!("started a throwaway redis-server at {}", server.url());
            (server.url(), Some(server))
        }
    };
    println!("3 processes x 2 tasks, 2 jobs each, one lock: `printer:printer-1`\n");
    let epoch = now_ms().to_string();
    let children = (1..=3)
        .map(|p| {
            Command::new(std::env::current_exe()?)
                .args(["worker", &p.to_string(), &epoch])
                .env("REDIS_URL", &url)
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut child in children {
        assert!(child.wait()?.success(), "a worker failed");
    }
    println!("\nall 12 jobs ran one at a time; the lock passed between processes and tasks.");
    Ok(())
}
