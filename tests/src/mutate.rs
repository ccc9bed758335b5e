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
use std::ops::ControlFlow;
use std::rc::Rc;

use embedded_io::{ErrorType, Read, Seek, SeekFrom, Write};
use fsatomic::{Capabilities, Dir, File, Mode};

use crate::explorer::Wrap;
use crate::sim::SimFs;

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
    type Dir = MutantDir<SimFs>;

    fn wrap(&self, fs: SimFs) -> MutantDir<SimFs> {
        MutantDir::new(fs, *self)
    }

    fn label(&self) -> String {
        self.to_string()
    }
}

type Deferred<F> = Rc<RefCell<Vec<Rc<RefCell<F>>>>>;

/// A directory `D` broken by a [`Mutation`].
pub struct MutantDir<D: Dir> {
    inner: D,
    mutation: Mutation,
    deferred: Deferred<D::File>,
}

impl<D: Dir> MutantDir<D> {
    /// Wrap `inner`.
    pub fn new(inner: D, mutation: Mutation) -> MutantDir<D> {
        MutantDir {
            inner,
            mutation,
            deferred: Rc::new(RefCell::new(Vec::new())),
        }
    }

    fn file(&self, inner: D::File) -> MutantFile<D> {
        MutantFile {
            inner: Rc::new(RefCell::new(inner)),
            mutation: self.mutation,
            deferred: self.deferred.clone(),
        }
    }

    fn run_deferred(&mut self) -> Result<(), D::Error> {
        let files: Vec<_> = self.deferred.borrow_mut().drain(..).collect();
        for f in files {
            f.borrow_mut().sync_all()?;
        }
        Ok(())
    }
}

/// A file of a [`MutantDir`].
pub struct MutantFile<D: Dir> {
    inner: Rc<RefCell<D::File>>,
    mutation: Mutation,
    deferred: Deferred<D::File>,
}

impl<D: Dir> ErrorType for MutantFile<D> {
    type Error = D::Error;
}

impl<D: Dir> Read for MutantFile<D> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, D::Error> {
        self.inner.borrow_mut().read(buf)
    }
}

impl<D: Dir> Write for MutantFile<D> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, D::Error> {
        self.inner.borrow_mut().write(buf)
    }

    fn flush(&mut self) -> Result<(), D::Error> {
        self.inner.borrow_mut().flush()
    }
}

impl<D: Dir> Seek for MutantFile<D> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, D::Error> {
        self.inner.borrow_mut().seek(pos)
    }
}

impl<D: Dir> MutantFile<D> {
    fn sync(&mut self, all: bool) -> Result<(), D::Error> {
        match self.mutation {
            Mutation::SkipFileFlush => Ok(()),
            Mutation::RenameBeforeFlush => {
                self.deferred.borrow_mut().push(self.inner.clone());
                Ok(())
            }
            Mutation::SkipDirFlush if all => self.inner.borrow_mut().sync_all(),
            Mutation::SkipDirFlush => self.inner.borrow_mut().sync_data(),
        }
    }
}

impl<D: Dir> File for MutantFile<D> {
    fn sync_data(&mut self) -> Result<(), D::Error> {
        self.sync(false)
    }

    fn sync_all(&mut self) -> Result<(), D::Error> {
        self.sync(true)
    }

    fn set_len(&mut self, len: u64) -> Result<(), D::Error> {
        self.inner.borrow_mut().set_len(len)
    }
}

impl<D: Dir> Dir for MutantDir<D> {
    type Error = D::Error;
    type File = MutantFile<D>;
    type Lock = D::Lock;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn unique_token(&mut self) -> Result<u64, D::Error> {
        self.inner.unique_token()
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<MutantFile<D>, D::Error> {
        let f = self.inner.create_new(name, mode)?;
        Ok(self.file(f))
    }

    fn open_read(&mut self, name: &str) -> Result<Option<MutantFile<D>>, D::Error> {
        Ok(self.inner.open_read(name)?.map(|f| self.file(f)))
    }

    fn open_write(&mut self, name: &str) -> Result<Option<MutantFile<D>>, D::Error> {
        Ok(self.inner.open_write(name)?.map(|f| self.file(f)))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), D::Error> {
        self.inner.rename(from, to)?;
        self.run_deferred()
    }

    fn remove(&mut self, name: &str) -> Result<(), D::Error> {
        self.inner.remove(name)
    }

    fn sync_dir(&mut self) -> Result<(), D::Error> {
        match self.mutation {
            Mutation::SkipDirFlush => Ok(()),
            _ => {
                // A flush held back by RenameBeforeFlush with no rename
                // after it still happens before the directory flush.
                self.run_deferred()?;
                self.inner.sync_dir()
            }
        }
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), D::Error> {
        self.inner.for_each_entry(visit)
    }

    fn lock(&mut self, name: &str, mode: Mode) -> Result<D::Lock, D::Error> {
        self.inner.lock(name, mode)
    }
}
