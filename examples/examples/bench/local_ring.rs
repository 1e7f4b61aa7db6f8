//! The baselines of (a) and (b): a token passed around as many tasks of one runtime, or
//! threads of one process, through channels. A task or thread that gets the token records
//! it as acquired, makes one request to Redis (a `PING`, as a handover inside a process
//! makes one, the script that gives the key to the next holder), sends the token to the
//! next and records itself released: a handover that is one request and waking the next
//! holder, nothing to decide.

use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc as tokio_mpsc;

use super::clock::now_ns;
use super::stats::{Contention, Record, gather};
use super::{Res, Sizes, runtime};

/// `workers` tokio tasks of one runtime (the bench's, as in (a)), sharing one multiplexed
/// connection as (a)'s tasks do.
pub fn tasks(url: &str, workers: u32, sizes: &Sizes) -> Res<Contention> {
    let rounds = sizes.contended_warmup + sizes.per_worker;
    let warmup = sizes.contended_warmup;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers)
        .map(|_| tokio_mpsc::unbounded_channel::<()>())
        .unzip();
    let rt = runtime()?;
    let records = rt.block_on(async {
        let conn = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        let passes: Vec<_> = receivers
            .into_iter()
            .enumerate()
            .map(|(at, mut token)| {
                let next = senders[(at + 1) % senders.len()].clone();
                let mut conn = conn.clone();
                tokio::spawn(async move {
                    let mut records = Vec::with_capacity(rounds);
                    for round in 0..rounds {
                        let called = now_ns();
                        // The first task starts the token on its way.
                        if round > 0 || at > 0 {
                            token.recv().await.ok_or("the ring broke")?;
                        }
                        let acquired = now_ns();
                        let _: () = redis::cmd("PING")
                            .query_async(&mut conn)
                            .await
                            .map_err(|_| "PING failed")?;
                        // The last pass finds the first task done: nobody to send to.
                        let _ = next.send(());
                        records.push(Record::returned_now(at as u32, called, acquired));
                    }
                    Ok::<_, &'static str>(records.split_off(warmup))
                })
            })
            .collect();
        gather(passes).await
    })?;
    Ok(Contention::from_records(records))
}

/// `workers` OS threads (as in (b)), each with a blocking connection of its own.
pub fn threads(url: &str, workers: u32, sizes: &Sizes) -> Res<Contention> {
    let rounds = sizes.contended_warmup + sizes.per_worker;
    let warmup = sizes.contended_warmup;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| std_mpsc::channel::<()>()).unzip();
    let passes: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(at, token)| {
            let next = senders[(at + 1) % senders.len()].clone();
            let conn = redis::Client::open(url).and_then(|c| c.get_connection());
            std::thread::spawn(move || {
                let mut conn = conn.map_err(|_| "no connection")?;
                let mut records = Vec::with_capacity(rounds);
                for round in 0..rounds {
                    let called = now_ns();
                    if round > 0 || at > 0 {
                        token.recv().map_err(|_| "the ring broke")?;
                    }
                    let acquired = now_ns();
                    let _: () = redis::cmd("PING")
                        .query(&mut conn)
                        .map_err(|_| "PING failed")?;
                    let _ = next.send(());
                    records.push(Record::returned_now(at as u32, called, acquired));
                }
                Ok::<_, &'static str>(records.split_off(warmup))
            })
        })
        .collect();
    drop(senders);
    let mut all = Vec::new();
    for pass in passes {
        all.extend(pass.join().map_err(|_| "a ring thread panicked")??);
    }
    Ok(Contention::from_records(all))
}
