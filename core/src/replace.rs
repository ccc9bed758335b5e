//! The Replace protocol: the default commit of a whole document.
//!
//! ```text
//!  CreateTemp ──► WriteTemp ──► SyncTemp ──► Rename ──► SyncDir ──► Done
//!  .NAME.<tok>.tmp   data…      fsync(tmp)   tmp → NAME  fsync(dir)
//!  O_EXCL|O_NOFOLLOW,
//!  exact mode
//!
//!  a journal file (Replace::sidecar) where Capabilities::inline_data,
//!  between CreateTemp and WriteTemp:
//!  GrowTemp ──► TrimTemp       ftruncate(tmp, 4096), ftruncate(tmp, 0)
//!
//!  keeping the previous version (Replace::keep_previous), around Rename:
//!  SyncTemp ──► Settle ──► (SyncSettle) ──► LinkReplaced ──► (SyncLink) ──► Rename ──► SyncDir ──► Promote ──► (SyncPromote) ──► Done
//!               finish a                    link(NAME →                                             rename(NAME.replaced
//!               cut one                     NAME.replaced)                                            → NAME.prev)
//!  (Sync…): fsync(dir), only where names may land out of order (Capabilities::ordered_names)
//! ```
//!
//! Two flush barriers per commit. The file flush before the rename makes
//! the new bytes durable before any name points at them; the directory
//! flush after the rename makes the new name durable before the commit is
//! acknowledged. A directory flush *before* the rename (the original Go
//! package's third barrier) buys nothing: the temporary file lives in the
//! same directory, and whether its own name survives a power cut does not
//! matter — if the rename is lost, the old file is still in place; if the
//! rename survives, it carries the (flushed) inode with it. `docs/design.md`
//! gives the full argument; the crash explorer in `tests/` checks it.
//!
//! The machine does one filesystem call per [`Replace::step`], so the same
//! code runs blocking ([`Replace::run`]), cooperatively on a bare-metal
//! board, and under the crash explorer, which cuts power between any two
//! steps.
//!
//! Replace is crash-atomic only where renaming over a name is
//! ([`crate::Capabilities::atomic_replace`]); on FAT use the Slots protocol.
//! It does not lock: a caller that reads, modifies and writes takes the lock
//! around it ([`crate::Store::update`] does).

use core::fmt;

use embedded_io::{Error as _, ErrorKind};

use crate::Mode;
use crate::error::{CommitError, IoError};
use crate::fs::{Dir, File, Op};
use crate::layout::{self, Role};
use crate::machine::{self, Machine};
use crate::name::{self, FileName};

/// How many unique temporary names to try before giving up: with 64-bit
/// tokens, a second collision means somebody plants names on purpose.
const CREATE_ATTEMPTS: u8 = 4;

/// Where a [`Replace`] commit stands. The names are the words of
/// `docs/design.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Next: create the temporary file exclusively, with the final mode.
    CreateTemp,
    /// Next (journal files, where [`crate::Capabilities::inline_data`]):
    /// extend the empty temporary file past [`OUT_OF_INODE`] bytes, so that
    /// no filesystem keeps its data inside the inode (`docs/design.md`, 6).
    GrowTemp,
    /// Next (journal files only): cut it back to empty.
    TrimTemp,
    /// Next: write the document into the temporary file; `written` bytes
    /// are already written.
    WriteTemp {
        /// Bytes written so far.
        written: usize,
    },
    /// Next: flush the temporary file (first barrier).
    SyncTemp,
    /// Next (keeping the previous version): finish what a power cut left
    /// of an earlier commit's `NAME.replaced` ([`crate::history::settle`]).
    Settle,
    /// Next (where names may land out of order, after `Settle` changed
    /// something): flush the directory, so that `NAME.replaced` is gone
    /// for good before it names another version.
    SyncSettle,
    /// Next (keeping the previous version): give the version about to be
    /// replaced the second name `NAME.replaced`.
    LinkReplaced,
    /// Next (keeping the previous version, where names may land out of
    /// order): flush the directory, so that `NAME.replaced` is durable
    /// before the rename that replaces `NAME`.
    SyncLink,
    /// Next: rename the temporary file over the target.
    Rename,
    /// Next: flush the directory (second barrier).
    SyncDir,
    /// Next (keeping the previous version): rename `NAME.replaced` to
    /// `NAME.prev`. Until it lands, `NAME.replaced` is the previous
    /// version.
    Promote,
    /// Next (where names may land out of order): flush the directory, so
    /// that the promotion lands before the next commit links
    /// `NAME.replaced` again (a link that overtook it would take the
    /// previous version's name).
    SyncPromote,
    /// The commit is durable.
    Done,
    /// A step failed; the error was returned by that step.
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::CreateTemp => f.write_str("create-temp"),
            State::GrowTemp => f.write_str("grow-temp"),
            State::TrimTemp => f.write_str("trim-temp"),
            State::WriteTemp { written } => write!(f, "write-temp({written})"),
            State::SyncTemp => f.write_str("sync-temp"),
            State::Settle => f.write_str("settle"),
            State::SyncSettle => f.write_str("sync-settle"),
            State::LinkReplaced => f.write_str("link-replaced"),
            State::SyncLink => f.write_str("sync-link"),
            State::Rename => f.write_str("rename"),
            State::SyncDir => f.write_str("sync-dir"),
            State::Promote => f.write_str("promote"),
            State::SyncPromote => f.write_str("sync-promote"),
            State::Done => f.write_str("done"),
            State::Failed => f.write_str("failed"),
        }
    }
}

pub use crate::machine::Progress;

/// The size of a header a commit can hold by value (a journal header).
const HEADER: usize = crate::journal::HEADER_LEN;

/// A size past which no filesystem keeps a file's data inside its inode:
/// f2fs's inline data holds at most 3,488 bytes of a 4 KiB inode block,
/// btrfs's inline extents 2,048 by default (`max_inline`).
pub const OUT_OF_INODE: u64 = 4096;

/// What a commit writes: the caller's bytes, or a header held by value.
enum Data<'a> {
    Borrowed(&'a [u8]),
    Header([u8; HEADER]),
}

/// One Replace commit of `data` to the file `name`, as a state machine.
///
/// ```
/// # fn demo<D: fsatomic::Dir>(dir: &mut D) -> Result<(), fsatomic::CommitError<D::Error>> {
/// use fsatomic::{Mode, replace::Replace};
/// Replace::<D>::new("firstboot.json", b"{\n  \"done\": true\n}\n", Mode::PRIVATE)?.run(dir)?;
/// # Ok(()) }
/// ```
pub struct Replace<'a, D: Dir> {
    name: &'a str,
    data: Data<'a>,
    mode: Mode,
    state: State,
    temp: FileName,
    file: Option<D::File>,
    attempts: u8,
    /// Grow and trim the temporary file before writing (journal files).
    out_of_inode: bool,
    /// Keep the replaced version as `NAME.prev`.
    keep_previous: bool,
    /// `NAME.replaced` was linked by this commit.
    linked: bool,
    /// The file renamed over `NAME` is the caller's (a tentative version
    /// being confirmed), not a temporary file of this commit: never
    /// removed on failure.
    borrowed: bool,
}

impl<'a, D: Dir> Replace<'a, D> {
    /// Prepare a commit of `data` to `name` with permissions `mode`. Checks
    /// the name; touches nothing.
    pub fn new(name: &'a str, data: &'a [u8], mode: Mode) -> Result<Self, CommitError<D::Error>> {
        Self::checked(name, data, mode, name::validate)
    }

    /// A commit of a file a protocol derives from a state's name (the
    /// journal's `NAME.journal`), which [`name::validate`] refuses to
    /// callers.
    ///
    /// A journal is appended in place, so it must never move bytes it
    /// already holds. f2fs keeps a small file's data inside its inode and
    /// moves it to a data block when the file outgrows that: one write of
    /// the block and one of the inode, unordered before the next flush, so
    /// a disk cache that keeps the inode and drops the block loses every
    /// acknowledged record (the write-cache run of `boards/powercut` shows
    /// it). Extending the new, still unnamed file past [`OUT_OF_INODE`] and
    /// cutting it back takes it out of the inode for good, before it holds
    /// anything: two calls, no flush, nothing on disk changes
    /// (`docs/design.md`, 6) — where the directory says files may live
    /// inline ([`crate::Capabilities::inline_data`]; not a RAM directory).
    pub(crate) fn sidecar(
        name: &'a str,
        data: &'a [u8],
        mode: Mode,
    ) -> Result<Self, CommitError<D::Error>> {
        let mut r = Self::checked(name, data, mode, name::validate_file)?;
        r.out_of_inode = true;
        Ok(r)
    }

    /// A commit of a companion file of a state's document (its tentative
    /// version, `NAME.tentative`), which [`name::validate`] refuses to
    /// callers.
    pub(crate) fn companion(
        name: &'a str,
        data: &'a [u8],
        mode: Mode,
    ) -> Result<Self, CommitError<D::Error>> {
        Self::checked(name, data, mode, name::validate_file)
    }

    /// A commit of a journal header (held by value, so that a machine that
    /// steps this one need not lend it a buffer) to the file `name` a
    /// protocol derives from a state's name.
    pub(crate) fn sidecar_header(
        name: &'a str,
        header: [u8; HEADER],
        mode: Mode,
    ) -> Result<Self, CommitError<D::Error>> {
        let mut r = Self::sidecar(name, &[0], mode)?;
        r.data = Data::Header(header);
        Ok(r)
    }

    fn checked(
        name: &'a str,
        data: &'a [u8],
        mode: Mode,
        check: fn(&str) -> Result<(), name::NameError>,
    ) -> Result<Self, CommitError<D::Error>> {
        check(name).map_err(|error| CommitError::Name {
            file: name::owned(name),
            error,
        })?;
        if data.is_empty() {
            return Err(CommitError::EmptyDocument {
                file: name::owned(name),
            });
        }
        Ok(Replace {
            name,
            data: Data::Borrowed(data),
            mode,
            state: State::CreateTemp,
            temp: FileName::new(),
            file: None,
            attempts: 0,
            out_of_inode: false,
            keep_previous: false,
            linked: false,
            borrowed: false,
        })
    }

    /// The same commit, keeping the version it replaces as `NAME.prev`
    /// when `keep` ([`crate::history`]): one hard link and one rename
    /// more, and a directory flush more where names may land out of order
    /// ([`crate::Capabilities::ordered_names`]).
    pub fn keep_previous(mut self, keep: bool) -> Self {
        self.keep_previous = keep;
        self
    }

    /// A commit that renames the existing file `from` (a tentative
    /// version, already durable) over `name`: the confirmation of
    /// [`crate::history`]. Starts at the rename; `from` is never removed.
    pub(crate) fn adopt(
        name: &'a str,
        from: &str,
        mode: Mode,
        keep_previous: bool,
    ) -> Result<Self, CommitError<D::Error>> {
        let mut r = Self::new(name, &[0], mode)?.keep_previous(keep_previous);
        r.temp = name::owned(from);
        r.borrowed = true;
        r.state = if keep_previous {
            State::Settle
        } else {
            State::Rename
        };
        Ok(r)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The temporary file's name, once one was created.
    pub fn temp_name(&self) -> Option<&str> {
        (!self.temp.is_empty()).then_some(self.temp.as_str())
    }

    /// Drive the commit to the end. Returns once the new content is durable.
    ///
    /// On error the file keeps its old content (or stays absent), except
    /// after a failed directory flush (see [`CommitError::Io`]); the
    /// temporary file is removed on a best-effort basis and otherwise left
    /// for the next writer's orphan sweep.
    pub fn run(mut self, dir: &mut D) -> Result<(), CommitError<D::Error>> {
        machine::run(&mut self, dir)
    }

    /// Perform exactly one filesystem operation and advance.
    ///
    /// After an error the machine is [`State::Failed`] and further steps
    /// return [`CommitError::LogicBug`].
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, CommitError<D::Error>> {
        machine::step(self, dir)
    }

    fn file_mut(&mut self) -> Result<&mut D::File, CommitError<D::Error>> {
        self.file
            .as_mut()
            .ok_or(CommitError::LogicBug("no open temporary file"))
    }
}

impl<D: Dir> Machine<D> for Replace<'_, D> {
    type Error = CommitError<D::Error>;
    crate::machine::basics!(State, "replace", |m| m.name);

    /// The transition function: one operation, the next state.
    fn transition(&mut self, dir: &mut D) -> Result<State, CommitError<D::Error>> {
        match self.state {
            State::CreateTemp => {
                let token = dir
                    .unique_token()
                    .map_err(|e| IoError::new(Op::Token, self.name, e))?;
                let temp = name::temp_name(self.name, token);
                self.attempts += 1;
                match dir.create_new(&temp, self.mode) {
                    Ok(file) => {
                        self.temp = temp;
                        self.file = Some(file);
                        Ok(if self.out_of_inode && dir.capabilities().inline_data {
                            State::GrowTemp
                        } else {
                            State::WriteTemp { written: 0 }
                        })
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        if self.attempts < CREATE_ATTEMPTS {
                            Ok(State::CreateTemp)
                        } else {
                            Err(CommitError::TempNameCollision {
                                file: name::owned(self.name),
                            })
                        }
                    }
                    Err(e) => Err(IoError::new(Op::Create, &temp, e).into()),
                }
            }
            State::WriteTemp { written } => {
                let data: &[u8] = match &self.data {
                    Data::Borrowed(d) => d,
                    Data::Header(h) => h,
                };
                let file = self
                    .file
                    .as_mut()
                    .ok_or(CommitError::LogicBug("no open temporary file"))?;
                let written = machine::write_rest(file, &self.temp, 0, data, written)?;
                Ok(if written >= data.len() {
                    State::SyncTemp
                } else {
                    State::WriteTemp { written }
                })
            }
            State::GrowTemp | State::TrimTemp => {
                let grow = self.state == State::GrowTemp;
                let file = self.file_mut()?;
                file.set_len(if grow { OUT_OF_INODE } else { 0 })
                    .map_err(|e| IoError::new(Op::Truncate, &self.temp, e))?;
                Ok(if grow {
                    State::TrimTemp
                } else {
                    State::WriteTemp { written: 0 }
                })
            }
            State::SyncTemp => {
                let file = self.file_mut()?;
                file.sync_all()
                    .map_err(|e| IoError::new(Op::SyncFile, &self.temp, e))?;
                Ok(if self.keep_previous {
                    State::Settle
                } else {
                    State::Rename
                })
            }
            State::Settle => {
                let changed = crate::history::settle(dir, self.name)?;
                Ok(if changed && !dir.capabilities().ordered_names {
                    State::SyncSettle
                } else {
                    State::LinkReplaced
                })
            }
            State::LinkReplaced => {
                let replaced = layout::file_name(self.name, Role::Replaced);
                match dir.link(self.name, &replaced) {
                    Ok(()) => {
                        self.linked = true;
                        Ok(if dir.capabilities().ordered_names {
                            State::Rename
                        } else {
                            State::SyncLink
                        })
                    }
                    // The first version: nothing to keep.
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(State::Rename),
                    Err(e) => Err(IoError::new(Op::Link, &replaced, e).into()),
                }
            }
            State::SyncSettle | State::SyncLink | State::SyncPromote => {
                dir.sync_dir()
                    .map_err(|e| IoError::new(Op::SyncDir, self.name, e))?;
                Ok(match self.state {
                    State::SyncSettle => State::LinkReplaced,
                    State::SyncLink => State::Rename,
                    _ => State::Done,
                })
            }
            State::Rename => {
                // Close first: Windows cannot rename an open file.
                self.file = None;
                dir.rename(&self.temp, self.name)
                    .map_err(|e| IoError::new(Op::Rename, &self.temp, e))?;
                self.temp.clear();
                Ok(State::SyncDir)
            }
            State::SyncDir => {
                dir.sync_dir()
                    .map_err(|e| IoError::new(Op::SyncDir, self.name, e))?;
                Ok(if self.linked {
                    State::Promote
                } else {
                    State::Done
                })
            }
            State::Promote => {
                let replaced = layout::file_name(self.name, Role::Replaced);
                let previous = layout::file_name(self.name, Role::Previous);
                dir.rename(&replaced, &previous)
                    .map_err(|e| IoError::new(Op::Rename, &replaced, e))?;
                Ok(if dir.capabilities().ordered_names {
                    State::Done
                } else {
                    State::SyncPromote
                })
            }
            State::Done | State::Failed => Err(CommitError::LogicBug("step after the end")),
        }
    }

    /// After a failure: close and remove our temporary file, if any. Best
    /// effort; an orphan left behind is swept by the next writer.
    fn abandon(&mut self, dir: &mut D) {
        self.file = None;
        if !self.temp.is_empty() && !self.borrowed {
            let _ = dir.remove(&self.temp);
            self.temp.clear();
        }
    }
}

impl<D: Dir> fmt::Debug for Replace<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replace")
            .field("name", &self.name)
            .field(
                "len",
                &match &self.data {
                    Data::Borrowed(d) => d.len(),
                    Data::Header(h) => h.len(),
                },
            )
            .field("mode", &self.mode)
            .field("state", &self.state)
            .field("temp", &self.temp)
            .finish()
    }
}

/// Commit `data` to `name` with Replace, blocking until it is durable.
pub fn commit<D: Dir>(
    dir: &mut D,
    name: &str,
    data: &[u8],
    mode: Mode,
) -> Result<(), CommitError<D::Error>> {
    Replace::<D>::new(name, data, mode)?.run(dir)
}
