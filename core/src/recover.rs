//! Recovery after a crash: sweeping orphaned temporary files, finishing a
//! commit that keeps the previous version, rolling back a tentative one.
//!
//! A commit interrupted by a power cut may leave its temporary file
//! `.NAME.<token>.tmp` (or, for a journal, `.NAME.journal.<token>.tmp`)
//! behind. Orphans are recognised by that exact pattern
//! ([`crate::layout::orphan_of`]), never by a fixed name, and removed only
//! by a holder of `NAME`'s writers' lock — an explicit [`recover`] at boot,
//! [`crate::JournalStore::open`], a run of the `fsatomic` command — because
//! under that lock no commit of `NAME` can be in flight. Readers never
//! remove anything, and a commit does not sweep: a sweep lists the whole
//! directory, and orphans exist only after a crash, which boot-time
//! recovery follows (`docs/design.md` §9).
//!
//! Removing an orphan needs no flush: if the removal is lost in a power
//! cut, the orphan comes back and is swept again.

use core::ops::ControlFlow;

use crate::Mode;
use crate::error::{IoError, RecoverError};
use crate::fs::{Dir, Op};
use crate::name::{self, FileName};

/// The most orphans one sweep removes; a directory with more is being
/// filled by something other than crashed commits.
pub const MAX_SWEEP: usize = 1024;

/// Remove the orphaned temporary files of the state `target` (of its
/// document and of its journal; of every state if `None`) and return how
/// many were removed.
///
/// The caller must hold the writers' lock of every name it sweeps
/// ([`crate::lock::lock`]); with `None` that means it must know no writer
/// runs (boot time).
pub fn sweep_orphans<D: Dir>(
    dir: &mut D,
    target: Option<&str>,
) -> Result<usize, IoError<D::Error>> {
    let mut removed = 0;
    let mut last = FileName::new();
    while removed < MAX_SWEEP {
        let mut found = FileName::new();
        dir.for_each_entry(&mut |entry| match crate::layout::orphan_of(entry) {
            Some(t) if target.is_none_or(|want| want == t) && entry != last.as_str() => {
                found = name::owned(entry);
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })
        .map_err(|e| IoError::new(Op::List, target.unwrap_or("."), e))?;
        if found.is_empty() {
            break;
        }
        dir.remove(&found)
            .map_err(|e| IoError::new(Op::Remove, &found, e))?;
        removed += 1;
        last = found;
    }
    Ok(removed)
}

/// What boot-time recovery of a state did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Orphaned temporary files removed.
    pub orphans: usize,
    /// A commit keeping the previous version was finished
    /// ([`crate::history::settle`]).
    pub settled: bool,
    /// A tentative version that was never confirmed was rolled back
    /// ([`crate::history::rollback`]).
    pub rolled_back: bool,
}

/// Boot-time recovery of `name`: take its writers' lock, sweep its
/// orphaned temporary files, finish a commit that keeps the previous
/// version, and roll back a tentative version that was not confirmed
/// ([`crate::history`]).
///
/// Never touches the current document itself: a corrupt file stays for a
/// person to look at.
pub fn recover<D: Dir>(
    dir: &mut D,
    name: &str,
    mode: Mode,
) -> Result<Recovered, RecoverError<D::Error>> {
    recover_at(dir, name, mode, None)
}

/// [`recover`] with the time `now` on the clock a tentative version's
/// deadline was given in ([`crate::history::commit_tentative`]): a
/// tentative version whose deadline is later stays waiting. Without a
/// clock (`None`), or without a deadline, it is rolled back.
pub fn recover_at<D: Dir>(
    dir: &mut D,
    name: &str,
    mode: Mode,
    now: Option<u64>,
) -> Result<Recovered, RecoverError<D::Error>> {
    name::checked::<RecoverError<_>>(name)?;
    let _guard = crate::lock::lock(dir, name, mode)?;
    recover_locked(dir, name, now)
}

/// [`recover_at`] for a caller that already holds `name`'s writers' lock.
pub fn recover_locked<D: Dir>(
    dir: &mut D,
    name: &str,
    now: Option<u64>,
) -> Result<Recovered, RecoverError<D::Error>> {
    let orphans = sweep_orphans(dir, Some(name))?;
    let settled = crate::history::settle(dir, name)?;
    if settled {
        // Before the next commit links `NAME.replaced` again.
        dir.sync_dir()
            .map_err(|e| IoError::new(Op::SyncDir, name, e))?;
    }
    let waits = match now {
        Some(now) => crate::history::deadline(dir, name)?.is_some_and(|until| now < until),
        None => false,
    };
    let rolled_back = !waits && crate::history::rollback(dir, name)?;
    Ok(Recovered {
        orphans,
        settled,
        rolled_back,
    })
}
