//! The baselines of (c): a token passed from process to process by pub/sub, hand-written on
//! the `redis` crate, in as many processes and tasks as (c) has.
//!
//! Each task subscribes to a channel of its own on a RESP3 connection, and the tasks stand
//! in a ring ordered so that every pass crosses to another process. A task that gets the
//! token records it as acquired, publishes it to the next task and records itself released
//! when that `PUBLISH` answers: a cross-process handover that is nothing but one
//! notification, with nothing to decide on the server and no lock to free.
//!
//! [`Delivery::Direct`]: the subscription's connection runs on the task's own runtime, so
//! the message wakes the task's thread and nothing else. [`Delivery::ThroughThread`]: the
//! subscriptions run on a thread of their own (a current-thread runtime, one per process)
//! that passes each message to the waiting task, as the crate's subscriber does from its
//! background thread: one more thread to wake per handover.

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::clock::now_ns;
use super::contended::{Measured, print_records, run_children};
use super::server::Inspector;
use super::stats::{Record, gather};
use super::{PROCESSES, Res, Sizes, TASKS_PER_PROCESS, runtime};

/// Where a subscription's messages are read.
#[derive(Clone, Copy)]
pub enum Delivery {
    Direct,
    ThroughThread,
}

impl Delivery {
    fn arg(self) -> &'static str {
        match self {
            Delivery::Direct => "direct",
            Delivery::ThroughThread => "through-thread",
        }
    }
}

/// The ring over (c)'s processes: [`PROCESSES`] copies of this program
/// (`bench ring-worker ...`) of [`TASKS_PER_PROCESS`] tasks each, as many passes per task as
/// (c) has acquisitions per task.
pub fn processes(
    inspector: &mut Inspector,
    url: &str,
    sizes: &Sizes,
    delivery: Delivery,
) -> Res<Measured> {
    let (processes, tasks_each) = (PROCESSES, TASKS_PER_PROCESS);
    let children = (0..processes).map(|process| {
        vec![
            "ring-worker".to_string(),
            url.to_string(),
            delivery.arg().to_string(),
            process.to_string(),
            processes.to_string(),
            tasks_each.to_string(),
            sizes.contended_warmup.to_string(),
            sizes.per_worker.to_string(),
        ]
    });
    run_children(inspector, children.collect())
}

/// The channel of the task at `position` in the ring.
fn channel(position: u32) -> String {
    format!("bench:ring:{position}")
}

/// The child's side: subscribes, says `ready`, waits for `go`, passes the token `warm-up` +
/// `count` times per task and prints the records of the last `count`.
pub fn worker_main(args: &[String]) -> Res<()> {
    let [url, delivery, process, processes, tasks, warmup, count] = args else {
        return Err(format!(
            "usage: bench ring-worker <url> direct|through-thread <process> <processes> <tasks> <warmup> <count>, not {args:?}"
        )
        .into());
    };
    let through_thread = delivery == Delivery::ThroughThread.arg();
    let (process, processes, tasks): (u32, u32, u32) =
        (process.parse()?, processes.parse()?, tasks.parse()?);
    let (warmup, count): (usize, usize) = (warmup.parse()?, count.parse()?);
    let ring = processes * tasks;
    let client = redis::Client::open(format!("{url}?protocol=resp3"))?;
    // The subscriptions' own thread, for `through-thread`.
    let relay = through_thread.then(relay_thread).transpose()?;
    let rt = runtime()?;
    let records = rt.block_on(async {
        let publisher = client.get_multiplexed_async_connection().await?;
        let mut members = Vec::new();
        for task in 0..tasks {
            // Consecutive positions are in consecutive processes.
            let position = task * processes + process;
            let (client, channel) = (client.clone(), channel(position));
            members.push(match &relay {
                Some(relay) => (position, subscribe_through(relay, client, channel).await?),
                None => (position, subscribe(client, channel).await?),
            });
        }
        println!("ready");
        tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await??;
        let passes: Vec<_> = members
            .into_iter()
            .map(|(position, (connection, mut pushes))| {
                let mut publisher = publisher.clone();
                tokio::spawn(async move {
                    let _subscribed = connection;
                    let next = channel((position + 1) % ring);
                    let mut records = Vec::with_capacity(count);
                    for round in 0..warmup + count {
                        let called = now_ns();
                        // The first task starts the token on its way.
                        if round > 0 || position > 0 {
                            loop {
                                let push = pushes.recv().await.ok_or("the subscription ended")?;
                                if push.kind == PushKind::Message {
                                    break;
                                }
                            }
                        }
                        let acquired = now_ns();
                        let _: i64 = publisher.publish(&next, "token").await?;
                        if round >= warmup {
                            records.push(Record::returned_now(position, called, acquired));
                        }
                    }
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(records)
                })
            })
            .collect();
        gather(passes).await
    })?;
    print_records(records)
}

/// A connection subscribed to `channel`, and what the server pushes on it (the
/// subscription's confirmation, then the messages).
async fn subscribe(
    client: redis::Client,
    channel: String,
) -> redis::RedisResult<(MultiplexedConnection, UnboundedReceiver<PushInfo>)> {
    let (pushes_to, pushes) = unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(pushes_to);
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    connection.subscribe(channel).await?;
    Ok((connection, pushes))
}

/// [`subscribe`] on the relay thread, whose task passes every push on.
async fn subscribe_through(
    relay: &tokio::runtime::Handle,
    client: redis::Client,
    channel: String,
) -> Res<(MultiplexedConnection, UnboundedReceiver<PushInfo>)> {
    let (connection, mut pushes) = relay.spawn(subscribe(client, channel)).await??;
    let (relayed_to, relayed) = unbounded_channel();
    relay.spawn(async move {
        while let Some(push) = pushes.recv().await {
            if relayed_to.send(push).is_err() {
                return;
            }
        }
    });
    Ok((connection, relayed))
}

/// A thread running a current-thread runtime until the process ends; its handle.
fn relay_thread() -> Res<tokio::runtime::Handle> {
    let relay = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = relay.handle().clone();
    std::thread::spawn(move || relay.block_on(std::future::pending::<()>()));
    Ok(handle)
}
