//! Mutation check: wrappers that break a directory's durability promises
//! on purpose. A crash suite that stays green while its filesystem skips
//! a flush proves nothing; `tests/tests/mutation.rs` asserts that the
//! explorer reports a violation of the Replace protocol under each one.
//!
//! - [`Mutation::SkipFileFlush`]: `sync_data`/`sync_all` return `Ok`
//!   without flushing.
//! - [`Mutation::SkipDirFlush`]: `sync_dir` returns `Ok` without flushing.
//! - [`Mutation::RenameBeforeFlush`]: a file flush is held back until the
//!   next rename has been issued, as if the two were reordered.
//! - [`Mutation::SkipTempFlush`], [`Mutation::SkipJournalFlush`],
//!   [`Mutation::SkipSlotFlush`]: one protocol's flush only (of a
//!   temporary file before its rename, of the journal after an append, of
//!   a slot after its write), told apart by the core's protocol model.
//! - [`Mutation::ResetBeforeSnapshot`]: once a journal exists, a Replace
//!   commit of the document (a compaction's snapshot) renames only after
//!   the next rename of the journal — compaction's two commits reordered.
//! - [`Mutation::SkipLinkFlush`], [`Mutation::SkipPromoteFlush`]: the
//!   directory flush after keeping the replaced version (`NAME.replaced`)
//!   and after promoting it to `NAME.prev` does nothing.
//! - [`Mutation::LinkAfterRename`]: the link that keeps the replaced
//!   version happens only after the rename that replaces it.
//! - [`Mutation::SkipRollback`]: removing a tentative version (recovery's
//!   rollback) does nothing.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use fsatomic::layout::{self, Role};
use fsatomic::{Dir, File};

use crate::explorer::Wrap;

/// Every permission bit allowed: a held-back flush must not change a mode.
const ANY_MODE: fsatomic::Mode = match fsatomic::Mode::new(0o7777) {
    Some(mode) => mode,
    None => fsatomic::Mode::PRIVATE,
};
use crate::sim::SimFs;
use crate::wrap::{Call, Hook, Intercept, Verdict};

/// A way to break a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// File flushes do nothing.
    SkipFileFlush,
    /// Directory flushes do nothing.
    SkipDirFlush,
    /// A file flush happens only after the next rename.
    RenameBeforeFlush,
    /// Flushes of temporary files (Replace's, before the rename) do
    /// nothing.
    SkipTempFlush,
    /// Flushes of `NAME.journal` (an append's barrier, a cut tail) do
    /// nothing.
    SkipJournalFlush,
    /// Flushes of slot files do nothing.
    SkipSlotFlush,
    /// A compaction's snapshot lands after its journal reset.
    ResetBeforeSnapshot,
    /// The directory flush after a hard link does nothing.
    SkipLinkFlush,
    /// The directory flush after `NAME.replaced` became `NAME.prev` does
    /// nothing.
    SkipPromoteFlush,
    /// A hard link is made only after the next rename.
    LinkAfterRename,
    /// Removing a tentative version does nothing.
    SkipRollback,
}

impl Mutation {
    /// The mutations of every file and directory flush, as the Replace
    /// protocol is checked against them.
    pub const ALL: [Mutation; 3] = [
        Mutation::SkipFileFlush,
        Mutation::SkipDirFlush,
        Mutation::RenameBeforeFlush,
    ];
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mutation::SkipFileFlush => "skip-file-flush",
            Mutation::SkipDirFlush => "skip-dir-flush",
            Mutation::RenameBeforeFlush => "rename-before-flush",
            Mutation::SkipTempFlush => "skip-temp-flush",
            Mutation::SkipJournalFlush => "skip-journal-flush",
            Mutation::SkipSlotFlush => "skip-slot-flush",
            Mutation::ResetBeforeSnapshot => "reset-before-snapshot",
            Mutation::SkipLinkFlush => "skip-link-flush",
            Mutation::SkipPromoteFlush => "skip-promote-flush",
            Mutation::LinkAfterRename => "link-after-rename",
            Mutation::SkipRollback => "skip-rollback",
        })
    }
}

impl Wrap for Mutation {
    type Dir = Intercept<SimFs, Mutant>;

    fn wrap(&self, fs: SimFs) -> Intercept<SimFs, Mutant> {
        Intercept::with(
            fs,
            Mutant {
                mutation: *self,
                deferred: Rc::default(),
                renames: Rc::default(),
                armed: Rc::default(),
                links: Rc::default(),
            },
        )
    }

    fn label(&self) -> String {
        self.to_string()
    }
}

/// The hook that breaks a directory by a [`Mutation`].
#[derive(Clone, Debug)]
pub struct Mutant {
    mutation: Mutation,
    /// Files whose flush [`Mutation::RenameBeforeFlush`] holds back.
    deferred: Rc<RefCell<Vec<String>>>,
    /// [`Mutation::ResetBeforeSnapshot`]: whether a journal was seen, and
    /// the snapshot renames held back.
    renames: Rc<RefCell<HeldRenames>>,
    /// [`Mutation::SkipLinkFlush`], [`Mutation::SkipPromoteFlush`]: the
    /// next directory flush is to be skipped.
    armed: Rc<std::cell::Cell<bool>>,
    /// [`Mutation::LinkAfterRename`]: the links held back.
    links: Rc<RefCell<Vec<String>>>,
}

/// Whether a journal was seen, and the renames (temporary file, target)
/// held back.
type HeldRenames = (bool, Vec<(String, String)>);

/// The role the core's protocol model gives `name`.
fn role(name: &str) -> Option<Role> {
    layout::owner(name).map(|(_, role)| role)
}

impl<D: Dir> Hook<D> for Mutant {
    fn before(&self, call: Call, name: &str) -> Verdict<D::Error> {
        match (self.mutation, call) {
            (Mutation::SkipFileFlush, Call::SyncData | Call::SyncAll) => Verdict::Skip,
            (Mutation::SkipDirFlush, Call::SyncDir) => Verdict::Skip,
            (Mutation::RenameBeforeFlush, Call::SyncData | Call::SyncAll) => {
                self.deferred.borrow_mut().push(name.to_owned());
                Verdict::Skip
            }
            (m, Call::SyncData | Call::SyncAll) => match (m, role(name)) {
                (Mutation::SkipTempFlush, Some(Role::Temp { .. }))
                | (Mutation::SkipJournalFlush, Some(Role::Journal))
                | (Mutation::SkipSlotFlush, Some(Role::Slot(_))) => Verdict::Skip,
                _ => Verdict::Go,
            },
            (Mutation::SkipLinkFlush | Mutation::SkipPromoteFlush, Call::SyncDir)
                if self.armed.replace(false) =>
            {
                Verdict::Skip
            }
            (Mutation::LinkAfterRename, Call::Link) => {
                self.links.borrow_mut().push(name.to_owned());
                Verdict::Skip
            }
            (Mutation::SkipRollback, Call::Remove) if role(name) == Some(Role::Tentative) => {
                Verdict::Skip
            }
            (Mutation::ResetBeforeSnapshot, Call::Rename) => {
                let mut renames = self.renames.borrow_mut();
                match role(name) {
                    Some(Role::Temp { journal: false }) if renames.0 => {
                        let to = layout::owner(name).map_or("", |(state, _)| state);
                        renames.1.push((name.to_owned(), to.to_owned()));
                        Verdict::Skip
                    }
                    _ => Verdict::Go,
                }
            }
            _ => Verdict::Go,
        }
    }

    fn after(&self, call: Call, name: &str, _to: Option<&str>, ok: bool) {
        let arm = match (self.mutation, call) {
            (Mutation::SkipLinkFlush, Call::Link) => true,
            (Mutation::SkipPromoteFlush, Call::Rename) => role(name) == Some(Role::Replaced),
            _ => false,
        };
        if arm && ok {
            self.armed.set(true);
        }
        // A journal exists once one was renamed into place.
        if self.mutation == Mutation::ResetBeforeSnapshot
            && ok
            && call == Call::Rename
            && role(name) == Some(Role::Temp { journal: true })
        {
            self.renames.borrow_mut().0 = true;
        }
    }

    /// The held-back flushes happen after the next rename, or before a
    /// directory flush if no rename comes first.
    fn around(
        &self,
        dir: &mut D,
        call: Call,
        from: &str,
        to: Option<&str>,
        done: bool,
    ) -> Result<(), D::Error> {
        if self.mutation == Mutation::LinkAfterRename {
            // The held-back links land right after the next rename: the
            // second name goes to whatever the first names by then.
            if call == Call::Rename && done {
                let held: Vec<String> = self.links.borrow_mut().drain(..).collect();
                for from in held {
                    let to = layout::file_name(&from, Role::Replaced);
                    dir.link(&from, &to)?;
                }
            }
            return Ok(());
        }
        if self.mutation == Mutation::ResetBeforeSnapshot {
            // The held-back snapshot lands right after the journal's reset.
            if call == Call::Rename && done && role(from) == Some(Role::Temp { journal: true }) {
                let held: Vec<(String, String)> = self.renames.borrow_mut().1.drain(..).collect();
                for (temp, to) in held {
                    dir.rename(&temp, &to)?;
                }
            }
            return Ok(());
        }
        match (call, done) {
            (Call::Rename, true) => {
                for name in self.deferred.borrow_mut().iter_mut() {
                    if *name == from {
                        *name = to.unwrap_or(from).to_owned();
                    }
                }
            }
            (Call::SyncDir, false) => {}
            _ => return Ok(()),
        }
        let names: Vec<String> = self.deferred.borrow_mut().drain(..).collect();
        for name in names {
            if let Some(mut f) = dir.open_write(&name, ANY_MODE)? {
                f.sync_all()?;
            }
        }
        Ok(())
    }
}
