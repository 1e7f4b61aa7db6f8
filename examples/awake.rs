//! A thread that spins so that no CPU of the VM halts while something is measured.
//!
//! On a VM whose idle CPUs halt, waking a halted CPU costs far more than the request that
//! woke it, and whether a loop's thread finds its reply before its CPU halts decides its
//! rate (the same loop ran at 24 and at 130 µs per cycle in one run); with every CPU kept
//! busy, every loop runs in the same state and the ratios show what the code costs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// A spinning thread, stopped when dropped.
pub struct Awake {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Awake {
    /// One thread at normal priority: for a loop on one thread, which leaves the other CPU
    /// to the server. (For the cross-process run (c), with four worker processes and the
    /// server on two CPUs, neither this nor one thread per CPU under `SCHED_IDLE` made the
    /// handoffs' p99 steadier: tried, not kept.)
    pub fn start() -> Awake {
        let stop = Arc::new(AtomicBool::new(false));
        let spinning = stop.clone();
        let thread = std::thread::spawn(move || {
            while !spinning.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        Awake {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
