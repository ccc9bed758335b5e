//! The writers' lock: an exclusive lock on the sidecar file `NAME.lock`.
//!
//! Every writer of `NAME` — [`crate::Store::save`], [`crate::Store::update`],
//! [`crate::recover::recover`], the CLI — holds this lock while it commits, so
//! two read-modify-write cycles never interleave and an orphan sweep never
//! removes a commit in flight. Readers take no lock. The lock file is never
//! replaced or written (a lock on a replaced file would lock nothing), and
//! its name is the one the original Go package used, so old and new daemons
//! exclude each other during a migration.

use crate::Mode;
use crate::error::IoError;
use crate::fs::{Dir, Op};
use crate::name::{self, FileName, LOCK_SUFFIX};

/// The lock file's name for `name`: `NAME.lock`.
pub fn lock_name(name: &str) -> FileName {
    name::with_suffix(name, LOCK_SUFFIX)
}

/// Take the exclusive writers' lock of `name`, waiting for other holders.
/// The lock file is created, if missing, with [`Mode::lock_mode`] of `mode`.
///
/// `name` must already be valid ([`name::validate`]).
pub fn lock<D: Dir>(dir: &mut D, name: &str, mode: Mode) -> Result<D::Lock, IoError<D::Error>> {
    let lock = lock_name(name);
    dir.lock(&lock, mode.lock_mode())
        .map_err(|e| IoError::new(Op::Lock, &lock, e))
}

/// How an adapter waits for a lock another holder keeps, given a bound
/// (`set_lock_timeout` of the Linux and std adapters): `try_once` attempts
/// the lock without waiting (`Ok(true)`: taken); `block` waits for as long
/// as it takes. `None` blocks; `Some(limit)` tries until `limit` has passed
/// (`Duration::ZERO`: once), sleeping 1 ms, 2 ms, … up to 50 ms between
/// tries, then fails with [`std::io::ErrorKind::TimedOut`] saying how long
/// it waited ([`crate::IoError::is_lock_busy`]; the caller's
/// [`IoError`] names the lock file).
#[cfg(feature = "std")]
pub fn wait_bounded(
    limit: Option<core::time::Duration>,
    mut try_once: impl FnMut() -> std::io::Result<bool>,
    block: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
    use core::time::Duration;
    use std::time::Instant;
    let Some(limit) = limit else {
        return block();
    };
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if try_once()? {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= limit {
            let message = if limit.is_zero() {
                std::string::String::from("held by another writer (one try, no wait)")
            } else {
                std::format!(
                    "held by another writer; gave up after {:.3} s",
                    limit.as_secs_f64()
                )
            };
            return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message));
        }
        std::thread::sleep(pause.min(limit - waited));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
