//! How many callers may hold one lock at once: one (exclusive), N (a semaphore), or any
//! number of shared holders while nobody holds it exclusively.

/// A lock's kind: what `#[redis_lock(permits = N)]`, `shared`, [`Lock::permits`] and
/// [`Lock::shared`] ask for.
///
/// [`Lock::permits`]: crate::Lock::permits
/// [`Lock::shared`]: crate::Lock::shared
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// One holder at a time: the plain lock.
    #[default]
    Exclusive,
    /// At most this many holders at once (at least 2: one permit is the plain lock).
    Permits(u32),
    /// Any number of shared holders, while no exclusive one holds it.
    Shared,
}

impl LockKind {
    /// `permits = n`: the plain lock for one.
    pub(crate) fn permits(n: u32) -> LockKind {
        match n {
            1 => LockKind::Exclusive,
            n => LockKind::Permits(n),
        }
    }

    /// Whether several may hold it at once: its holders live in a hash (see `counted.rs`).
    pub(crate) fn is_counted(self) -> bool {
        !matches!(self, LockKind::Exclusive)
    }

    /// How the scripts and errors name it: `exclusive`, `shared`, or the number of permits
    /// (the hash's `#kind`).
    pub(crate) fn word(self) -> String {
        match self {
            LockKind::Exclusive => "exclusive".to_owned(),
            LockKind::Permits(n) => n.to_string(),
            LockKind::Shared => "shared".to_owned(),
        }
    }
}
