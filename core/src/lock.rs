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
