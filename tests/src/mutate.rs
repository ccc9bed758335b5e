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

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use fsatomic::{Dir, File};

use crate::explorer::Wrap;
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
}

impl Mutation {
    /// Every mutation.
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
        })
    }
}

impl Wrap for Mutation {
    type Dir = Intercept<SimFs, Mutant>;

    fn wrap(&self, fs: SimFs) -> Intercept<SimFs, Mutant> {
        let deferred = Rc::default();
        Intercept::with(
            fs,
            Mutant {
                mutation: *self,
                deferred,
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
            _ => Verdict::Go,
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
            if let Some(mut f) = dir.open_write(&name)? {
                f.sync_all()?;
            }
        }
        Ok(())
    }
}
