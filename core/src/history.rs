//! What a Replace state keeps besides its current version: the previous
//! version, and a tentative version waiting for its confirmation.
//!
//! ```text
//!  NAME            the current (confirmed) version
//!  NAME.prev       the previous version, where it is kept
//!  NAME.replaced   the version a commit in flight replaces (a hard link to it)
//!  NAME.tentative  a tentative version: current until confirmed or rolled back
//! ```
//!
//! # The previous version
//!
//! A commit that keeps it ([`crate::replace::Replace::keep_previous`])
//! gives the version it is about to replace a second name before its
//! rename, and renames that name to `NAME.prev` after its directory flush:
//!
//! ```text
//!  link(NAME → NAME.replaced)  [fsync(dir) unless names land in order]
//!  rename(tmp → NAME)  fsync(dir)  rename(NAME.replaced → NAME.prev)
//! ```
//!
//! One hard link and one rename more than a plain commit, and no flush
//! more where the filesystem commits name changes in order
//! ([`crate::Capabilities::ordered_names`]: ext4, xfs, btrfs, f2fs, ubifs,
//! jffs2). Elsewhere two directory flushes more: one so that
//! `NAME.replaced` is durable before the rename that replaces `NAME`, one
//! so that the promotion is durable before the next commit links
//! `NAME.replaced` again (the crash explorer's `posix-worst` profile finds
//! the old version lost without either). The previous version is then, at
//! every instant and after any power cut:
//!
//! - `NAME.replaced`, if it exists and differs from `NAME` (the rename
//!   landed, the promotion did not);
//! - else `NAME.prev` (`NAME.replaced` equal to `NAME`: the rename did not
//!   land, and `NAME.prev` still holds the version before);
//! - never a version equal to the current one ([`read_previous`] reports
//!   none rather than the current version twice).
//!
//! Whoever writes next under the writers' lock finishes a cut commit's
//! last step first ([`settle`]): the commit itself, and recovery.
//!
//! Once `NAME.prev` exists every commit keeps it ([`crate::Store::save`]
//! looks): a commit that did not would leave it two versions behind.
//!
//! # Tentative versions (commit-confirmed)
//!
//! [`commit_tentative`] commits a version to `NAME.tentative` with Replace
//! (two flushes): readers see it as current at once, and `NAME` — the
//! confirmed version — is untouched. [`confirm`] renames it over `NAME`
//! (keeping the previous version as above) and flushes the directory;
//! [`rollback`] removes it and flushes the directory. Recovery at boot
//! ([`crate::recover::recover`]) rolls back every tentative version that
//! was not confirmed. Each of the three changes one name, so after any
//! power cut the state is the old confirmed version, the tentative one, or
//! the newly confirmed one, never a mix; and the tentative commit costs one
//! flush more than a plain one (the confirmation's).
//!
//! FAT keeps states with Slots, which cannot rename: there a tentative
//! commit is refused ([`crate::CommitError::Tentative`]), and the previous
//! version is the other slot ([`crate::slots::load_previous`]).

use crate::Mode;
use crate::bytes::read_full;
use crate::error::{CommitError, IoError, LoadError};
use crate::fs::{Dir, Op};
use crate::layout::{self, Role};
use crate::load::read_to_end;
use crate::name;
use crate::replace::Replace;

/// Compare files in chunks this large (two on the stack).
const CHUNK: usize = 64;

/// Whether the files `a` and `b` both exist and hold the same bytes.
fn same_files<D: Dir>(dir: &mut D, a: &str, b: &str) -> Result<bool, IoError<D::Error>> {
    let open = |dir: &mut D, name: &str| {
        dir.open_read(name)
            .map_err(|e| IoError::new(Op::Open, name, e))
    };
    let (Some(mut fa), Some(mut fb)) = (open(dir, a)?, open(dir, b)?) else {
        return Ok(false);
    };
    let (mut ca, mut cb) = ([0u8; CHUNK], [0u8; CHUNK]);
    let mut at = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ca).map_err(|e| IoError::new(Op::Read, a, e).at(at))?;
        let nb = read_full(&mut fb, &mut cb).map_err(|e| IoError::new(Op::Read, b, e).at(at))?;
        if na != nb || ca.get(..na) != cb.get(..nb) {
            return Ok(false);
        }
        if na < CHUNK {
            return Ok(true);
        }
        at += CHUNK as u64;
    }
}

/// Under the writers' lock: finish what a power cut left of a commit that
/// keeps the previous version. `NAME.replaced` equal to `NAME` (the rename
/// did not land) is removed; one that differs (it did) becomes
/// `NAME.prev`. Neither is flushed: until they land, [`read_previous`]
/// finds the same version either way. Returns whether there was anything
/// to finish.
///
/// **Power cut during the call:** `NAME.replaced` may still exist, or
/// `NAME.prev` be the version it named; either reads the same.
pub fn settle<D: Dir>(dir: &mut D, name: &str) -> Result<bool, IoError<D::Error>> {
    let replaced = layout::file_name(name, Role::Replaced);
    if !dir
        .exists(&replaced)
        .map_err(|e| IoError::new(Op::Open, &replaced, e))?
    {
        return Ok(false);
    }
    if same_files(dir, &replaced, name)? {
        dir.remove(&replaced)
            .map_err(|e| IoError::new(Op::Remove, &replaced, e))?;
    } else {
        let previous = layout::file_name(name, Role::Previous);
        dir.rename(&replaced, &previous)
            .map_err(|e| IoError::new(Op::Rename, &replaced, e))?;
    }
    Ok(true)
}

/// Under the writers' lock, before a commit of the confirmed version of
/// the state `name` whose files are `files`: whether it keeps the previous
/// version (asked, or kept already: a commit that did not would leave
/// `NAME.prev` two versions behind). Refused while a tentative version
/// waits: the commit would hide under it, and its confirmation would drop
/// this one.
pub fn plan<E>(
    name: &str,
    files: &layout::Files,
    keep_previous: bool,
) -> Result<bool, CommitError<E>> {
    if files.tentative {
        return Err(CommitError::Tentative {
            file: name::owned(name),
            why: "a tentative version waits for its confirmation: confirm it (Store::confirm, `fsatomic confirm`) or roll it back (Store::rollback, `fsatomic rollback`) first",
        });
    }
    Ok(keep_previous || files.previous)
}

/// Read the whole companion file `file` into `buf`: its length, or `None`.
fn read_file<D: Dir>(
    dir: &mut D,
    file: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    match dir.open_read(file) {
        Ok(Some(mut f)) => read_to_end(&mut f, file, buf).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(IoError::new(Op::Open, file, e).into()),
    }
}

/// Read the current version of the Replace state `name` into `buf`: the
/// tentative version if one waits, else `NAME`. Its length, or `None` if
/// the state has neither. Checks nothing about the content.
pub fn read_current<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    Ok(read_current_file(dir, name, buf)?.map(|(len, _)| len))
}

/// [`read_current`], saying which file it read: whether the length is
/// the tentative version's (for errors that name the file).
pub(crate) fn read_current_file<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<(usize, bool)>, LoadError<D::Error>> {
    name::checked::<LoadError<_>>(name)?;
    let tentative = layout::file_name(name, Role::Tentative);
    if let Some(n) = read_file(dir, &tentative, buf)? {
        return Ok(Some((n, true)));
    }
    Ok(read_file(dir, name, buf)?.map(|n| (n, false)))
}

/// Read the previous version of the Replace state `name` into `buf`: the
/// confirmed `NAME` while a tentative version waits; else the version the
/// last commit replaced, where it is kept. Its length, or `None` if there
/// is none (never kept, the first version, or equal to the current one).
/// Takes no lock and changes nothing.
pub fn read_previous<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    name::checked::<LoadError<_>>(name)?;
    let tentative = layout::file_name(name, Role::Tentative);
    if pending(dir, name)? && !same_files(dir, &tentative, name)? {
        // (Equal to `NAME`: a confirmation's rename landed and its source
        // survived; `NAME` is then current, its previous version below.)
        return read_file(dir, name, buf);
    }
    let replaced = layout::file_name(name, Role::Replaced);
    let previous = layout::file_name(name, Role::Previous);
    let candidate = if dir
        .exists(&replaced)
        .map_err(|e| IoError::new(Op::Open, &replaced, e))?
        && !same_files(dir, &replaced, name)?
    {
        replaced
    } else {
        previous
    };
    if same_files(dir, &candidate, name)? {
        return Ok(None);
    }
    read_file(dir, &candidate, buf)
}

/// Whether a tentative version of `name` waits for its confirmation.
pub fn pending<D: Dir>(dir: &mut D, name: &str) -> Result<bool, IoError<D::Error>> {
    let tentative = layout::file_name(name, Role::Tentative);
    dir.exists(&tentative)
        .map_err(|e| IoError::new(Op::Open, &tentative, e))
}

/// Under the writers' lock: commit `data` as the tentative version of the
/// Replace state `name` (Replace onto `NAME.tentative`, two flushes). It
/// is current once this returns, and stays so until [`confirm`] makes it
/// the confirmed version or [`rollback`] (or recovery at boot) drops it.
/// A tentative version already waiting is replaced.
///
/// With a `deadline` (seconds on a clock that does not restart with the
/// board, which the caller keeps), recovery leaves it waiting while the
/// clock it is given reads earlier ([`crate::recover::recover_at`]): the
/// deadline is committed first, as `NAME.deadline` (two flushes more), and
/// names the tentative document by its CRC-32C, so a deadline that
/// outlived its version never applies to another.
///
/// **Power cut during the call:** the state is the version that was
/// current before (confirmed or tentative) or this one; a tentative
/// version visible after the cut has its deadline, or none (rolled back at
/// the next recovery: the safe side).
pub fn commit_tentative<D: Dir>(
    dir: &mut D,
    name: &str,
    data: &[u8],
    mode: Mode,
    deadline: Option<u64>,
) -> Result<(), CommitError<D::Error>> {
    name::checked::<CommitError<_>>(name)?;
    let file = layout::file_name(name, Role::Deadline);
    match deadline {
        Some(until) => {
            let mut text = heapless::String::<64>::new();
            let _ = core::fmt::write(
                &mut text,
                format_args!(
                    "{{\"until\": {until}, \"crc32c\": {}}}\n",
                    crate::crc::crc32c(data)
                ),
            );
            Replace::<D>::companion(&file, text.as_bytes(), mode)?.run(dir)?;
        }
        None if dir
            .exists(&file)
            .map_err(|e| IoError::new(Op::Open, &file, e))? =>
        {
            // A deadline left by an earlier tentative version: gone for
            // good before this one appears.
            dir.remove(&file)
                .map_err(|e| IoError::new(Op::Remove, &file, e))?;
            dir.sync_dir()
                .map_err(|e| IoError::new(Op::SyncDir, &file, e))?;
        }
        None => {}
    }
    let tentative = layout::file_name(name, Role::Tentative);
    Replace::<D>::companion(&tentative, data, mode)?.run(dir)
}

/// The deadline of the tentative version of `name`: `Some(until)` if
/// `NAME.deadline` exists, parses, and names the document `NAME.tentative`
/// holds now (its CRC-32C); `None` otherwise (no deadline: recovery rolls
/// the tentative version back).
pub fn deadline<D: Dir>(dir: &mut D, name: &str) -> Result<Option<u64>, IoError<D::Error>> {
    let file = layout::file_name(name, Role::Deadline);
    let mut text = [0u8; 64];
    let Some(mut f) = dir
        .open_read(&file)
        .map_err(|e| IoError::new(Op::Open, &file, e))?
    else {
        return Ok(None);
    };
    let n = read_full(&mut f, &mut text).map_err(|e| IoError::new(Op::Read, &file, e))?;
    let text = text.get(..n).unwrap_or_default();
    let number = |range: core::ops::Range<usize>| {
        core::str::from_utf8(text.get(range)?)
            .ok()?
            .parse::<u64>()
            .ok()
    };
    let (mut until, mut crc) = (None, None);
    let _ = crate::json::for_each_member(text, |key, range| match key {
        b"until" => until = number(range),
        b"crc32c" => crc = number(range),
        _ => {}
    });
    let (Some(until), Some(crc)) = (until, crc) else {
        return Ok(None);
    };
    let tentative = layout::file_name(name, Role::Tentative);
    let Some(mut f) = dir
        .open_read(&tentative)
        .map_err(|e| IoError::new(Op::Open, &tentative, e))?
    else {
        return Ok(None);
    };
    let mut sum = crate::crc::Crc32c::new();
    let mut chunk = [0u8; CHUNK];
    loop {
        let n = read_full(&mut f, &mut chunk).map_err(|e| IoError::new(Op::Read, &tentative, e))?;
        sum.update(chunk.get(..n).unwrap_or_default());
        if n < CHUNK {
            break;
        }
    }
    Ok((u64::from(sum.finish()) == crc).then_some(until))
}

/// Under the writers' lock: make the tentative version of `name` the
/// confirmed one (rename over `NAME`, directory flush), keeping the
/// version it replaces as `NAME.prev` when `keep_previous` or when
/// `NAME.prev` exists. `Ok(false)` if no tentative version waits.
///
/// **Power cut during the call:** the state is the tentative version or
/// the confirmed one, which are the same document.
pub fn confirm<D: Dir>(
    dir: &mut D,
    name: &str,
    mode: Mode,
    keep_previous: bool,
) -> Result<bool, CommitError<D::Error>> {
    name::checked::<CommitError<_>>(name)?;
    if !pending(dir, name)? {
        return Ok(false);
    }
    let keep = keep_previous || keeps_previous(dir, name)?;
    let tentative = layout::file_name(name, Role::Tentative);
    Replace::<D>::adopt(name, &tentative, mode, keep)?.run(dir)?;
    drop_deadline(dir, name)?;
    Ok(true)
}

/// Under the writers' lock: drop the tentative version of `name` (remove,
/// directory flush), so that the confirmed version is current again, and
/// its deadline (not flushed: a deadline never applies to another
/// document). `Ok(false)` if no tentative version waits.
///
/// **Power cut during the call:** the state is the tentative version or
/// the confirmed one.
pub fn rollback<D: Dir>(dir: &mut D, name: &str) -> Result<bool, IoError<D::Error>> {
    if !pending(dir, name)? {
        return Ok(false);
    }
    let tentative = layout::file_name(name, Role::Tentative);
    dir.remove(&tentative)
        .map_err(|e| IoError::new(Op::Remove, &tentative, e))?;
    dir.sync_dir()
        .map_err(|e| IoError::new(Op::SyncDir, &tentative, e))?;
    drop_deadline(dir, name)?;
    Ok(true)
}

/// Remove `NAME.deadline`, not flushed.
fn drop_deadline<D: Dir>(dir: &mut D, name: &str) -> Result<(), IoError<D::Error>> {
    let file = layout::file_name(name, Role::Deadline);
    dir.remove(&file)
        .map_err(|e| IoError::new(Op::Remove, &file, e))
}

/// Whether the state `name` keeps its previous version: `NAME.prev` or
/// `NAME.replaced` exists, so every commit must go on keeping it.
pub fn keeps_previous<D: Dir>(dir: &mut D, name: &str) -> Result<bool, IoError<D::Error>> {
    for role in [Role::Previous, Role::Replaced] {
        let file = layout::file_name(name, role);
        if dir
            .exists(&file)
            .map_err(|e| IoError::new(Op::Open, &file, e))?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::test_dir::MemDir;
    use crate::{Protocol, Store, StoreError};

    fn names(dir: &MemDir) -> Vec<std::string::String> {
        let mut n = dir.names();
        n.retain(|n| !n.ends_with(".lock"));
        n.sort();
        n
    }

    #[test]
    fn the_previous_version_follows_every_commit_once_kept() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 128];
        let store: Store<u32> = Store::new("n.json", Mode::PRIVATE).with_previous();
        store.save(&mut dir, &mut buf, &1).unwrap();
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), None);
        for v in 2..5 {
            store.save(&mut dir, &mut buf, &v).unwrap();
            assert_eq!(
                store.load_previous(&mut dir, &mut buf).unwrap(),
                Some(v - 1)
            );
        }
        assert_eq!(names(&dir), ["n.json", "n.json.prev"]);
        // A store that did not ask keeps it too: NAME.prev exists.
        let plain: Store<u32> = Store::new("n.json", Mode::PRIVATE);
        plain.update(&mut dir, &mut buf, |v| *v += 10).unwrap();
        assert_eq!(plain.load_previous(&mut dir, &mut buf).unwrap(), Some(4));
        assert_eq!(plain.load(&mut dir, &mut buf).unwrap(), Some(14));
        // The same bytes again: the previous version is never the current.
        plain.save(&mut dir, &mut buf, &14).unwrap();
        assert_eq!(plain.load_previous(&mut dir, &mut buf).unwrap(), None);
    }

    #[test]
    fn a_cut_commit_is_finished_by_whoever_comes_next() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 128];
        let store: Store<u32> = Store::new("n.json", Mode::PRIVATE).with_previous();
        store.save(&mut dir, &mut buf, &1).unwrap();
        store.save(&mut dir, &mut buf, &2).unwrap();
        // The rename did not land: NAME.replaced is NAME.
        dir.link("n.json", "n.json.replaced").unwrap();
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(1));
        assert!(settle(&mut dir, "n.json").unwrap());
        assert_eq!(names(&dir), ["n.json", "n.json.prev"]);
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(1));
        // The rename landed, the promotion did not: NAME.replaced differs.
        Replace::<MemDir>::companion("n.json.replaced", b"2\n", Mode::PRIVATE)
            .unwrap()
            .run(&mut dir)
            .unwrap();
        Replace::<MemDir>::new("n.json", b"3\n", Mode::PRIVATE)
            .unwrap()
            .run(&mut dir)
            .unwrap();
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(2));
        store.save(&mut dir, &mut buf, &4).unwrap();
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(3));
        assert_eq!(names(&dir), ["n.json", "n.json.prev"]);
    }

    #[test]
    fn a_tentative_version_is_current_until_rolled_back_or_confirmed() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 128];
        let store: Store<u32> = Store::new("net.json", Mode::PRIVATE).with_previous();
        store.save(&mut dir, &mut buf, &1).unwrap();
        store.save_tentative(&mut dir, &mut buf, &2).unwrap();
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(2));
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(1));
        let refused = store.save(&mut dir, &mut buf, &9).unwrap_err();
        assert!(
            matches!(refused, StoreError::Commit(CommitError::Tentative { .. })),
            "{refused}"
        );
        // A reboot: the store's open (boot-time recovery) rolls it back.
        assert_eq!(
            store
                .open(&mut dir, &mut buf, |_| Err("no schema"))
                .unwrap(),
            Some(1)
        );
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(1));
        assert!(!store.confirm(&mut dir).unwrap(), "nothing to confirm");
        // Confirmed before the reboot: it stays.
        store.save_tentative(&mut dir, &mut buf, &3).unwrap();
        assert!(store.confirm(&mut dir).unwrap());
        let done = crate::recover::recover(&mut dir, "net.json", Mode::PRIVATE).unwrap();
        assert!(!done.rolled_back);
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(3));
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(1));
        assert_eq!(names(&dir), ["net.json", "net.json.prev"]);
        // A first version may be tentative too.
        let fresh: Store<u32> = Store::new("new.json", Mode::PRIVATE);
        fresh.save_tentative(&mut dir, &mut buf, &7).unwrap();
        assert_eq!(fresh.load(&mut dir, &mut buf).unwrap(), Some(7));
        assert!(fresh.rollback(&mut dir).unwrap());
        assert_eq!(fresh.load(&mut dir, &mut buf).unwrap(), None);
    }

    #[test]
    fn a_deadline_keeps_a_tentative_version_waiting_until_it_comes() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 128];
        let store: Store<u32> = Store::new("net.json", Mode::PRIVATE);
        store.save(&mut dir, &mut buf, &1).unwrap();
        store
            .save_tentative_until(&mut dir, &mut buf, &2, Some(100))
            .unwrap();
        assert_eq!(deadline(&mut dir, "net.json").unwrap(), Some(100));
        let at = |dir: &mut MemDir, now| {
            crate::recover::recover_at(dir, "net.json", Mode::PRIVATE, now)
                .unwrap()
                .rolled_back
        };
        assert!(!at(&mut dir, Some(99)), "before the deadline it waits");
        let clocked = store.with_clock(99);
        assert_eq!(
            clocked
                .open(&mut dir, &mut buf, |_| Err("no schema"))
                .unwrap(),
            Some(2)
        );
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(2));
        assert!(at(&mut dir, Some(100)), "from the deadline on it goes");
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(1));
        assert_eq!(names(&dir), ["net.json"]);
        // Without a clock, or without a deadline, recovery rolls back.
        store
            .save_tentative_until(&mut dir, &mut buf, &3, Some(100))
            .unwrap();
        assert!(at(&mut dir, None));
        store.save_tentative(&mut dir, &mut buf, &4).unwrap();
        assert!(at(&mut dir, Some(0)));
        // A deadline never applies to another document: one left behind
        // by a cut names the document it was written for.
        store
            .save_tentative_until(&mut dir, &mut buf, &5, Some(100))
            .unwrap();
        Replace::<MemDir>::companion("net.json.tentative", b"6\n", Mode::PRIVATE)
            .unwrap()
            .run(&mut dir)
            .unwrap();
        assert_eq!(deadline(&mut dir, "net.json").unwrap(), None);
        assert!(at(&mut dir, Some(0)));
        // A tentative commit without a deadline removes an old one first.
        store
            .save_tentative_until(&mut dir, &mut buf, &7, Some(100))
            .unwrap();
        store.confirm(&mut dir).unwrap();
        assert_eq!(names(&dir), ["net.json"]);
    }

    #[test]
    fn slots_refuse_tentative_versions_and_keep_the_previous_one() {
        let mut dir = MemDir {
            fat: true,
            ..MemDir::default()
        };
        let mut buf = [0u8; 128];
        let store: Store<u32> = Store::new("c.json", Mode::PRIVATE);
        store.save(&mut dir, &mut buf, &1).unwrap();
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), None);
        store.save(&mut dir, &mut buf, &2).unwrap();
        store.save(&mut dir, &mut buf, &3).unwrap();
        assert_eq!(store.load_previous(&mut dir, &mut buf).unwrap(), Some(2));
        let refused = store.save_tentative(&mut dir, &mut buf, &4).unwrap_err();
        assert!(
            matches!(refused, StoreError::Commit(CommitError::Tentative { .. })),
            "{refused}"
        );
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(3));
        let _ = Protocol::Slots;
    }
}
