//! One caller taking and releasing a free lock through the attribute, back to back: the
//! figures of the rounds, each call measured beside what it is held to in paired.rs.

use super::paired::Paired;

/// Calls per second, the best of the rounds: of the functions that take no fencing token
/// (no guard bound) and of those that do.
pub struct Uncontended {
    pub async_calls: f64,
    pub sync_calls: f64,
    pub fenced_async_calls: f64,
    pub fenced_sync_calls: f64,
    /// Of the functions with `auto_renew`, one server only (0 for the other kinds).
    pub renewed_async_calls: f64,
    pub renewed_sync_calls: f64,
    /// Each round's ratio of those two (async, sync) to the same functions without
    /// `auto_renew`, measured beside them as the others are beside their loops.
    pub renewed_vs_plain: [Vec<f64>; 2],
    /// Each round's ratio of the four calls above (async, sync, fenced async, fenced sync)
    /// to the hand-written loop of their client kind, measured beside it in blocks taken in
    /// turn (the median of the round's pairs of blocks, see paired.rs): on a machine whose
    /// rates flip from round to round, the ratio of two best rounds is also the ratio of
    /// two loops' luck, and these are not.
    pub rounds_vs_hand: [Vec<f64>; 4],
}

impl Uncontended {
    /// Keeps the round's figures of call `at` (0 async, 1 sync, 2 fenced async, 3 fenced
    /// sync) against its loop.
    pub fn keep(&mut self, at: usize, paired: &Paired) {
        let best = match at {
            0 => &mut self.async_calls,
            1 => &mut self.sync_calls,
            2 => &mut self.fenced_async_calls,
            _ => &mut self.fenced_sync_calls,
        };
        *best = best.max(paired.ours);
        self.rounds_vs_hand[at].push(paired.median);
    }

    /// Keeps the round's figures of the call with `auto_renew` against the same without
    /// (`sync` or async).
    pub fn keep_renewed(&mut self, sync: bool, paired: &Paired) {
        let best = match sync {
            true => &mut self.renewed_sync_calls,
            false => &mut self.renewed_async_calls,
        };
        *best = best.max(paired.ours);
        self.renewed_vs_plain[usize::from(sync)].push(paired.median);
    }
}
