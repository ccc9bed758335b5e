//! Which commit protocol keeps a whole document safe on a given filesystem,
//! and one place that dispatches to it.
//!
//! | filesystem | rename-over crash-atomic | whole documents | records |
//! |---|---|---|---|
//! | ext4, xfs, btrfs, f2fs, ubifs, jffs2, tmpfs | yes | [`Protocol::Replace`] | Journal |
//! | vfat, exfat | no | [`Protocol::Slots`] | Slots (whole state per update) |
//!
//! [`Protocol::Auto`] asks the directory ([`Dir::capabilities`]) at each
//! call, so the same firmware picks Replace on the internal ext4 and Slots
//! on a FAT-formatted SD card.

use crate::Mode;
use crate::error::{CommitError, LoadError};
use crate::fs::{Capabilities, Dir};
use crate::machine::Progress;
use crate::{history, replace, slots};

/// How a whole document is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// Replace where rename-over is crash-atomic, Slots where it is not.
    #[default]
    Auto,
    /// Temporary file, flush, rename, flush directory ([`crate::replace`]).
    Replace,
    /// Two preallocated slots overwritten in place ([`crate::slots`]).
    Slots,
    /// A snapshot plus a log of records ([`crate::journal`]); it keeps
    /// records, not whole documents, so [`commit`] and [`read`] refuse it.
    Journal,
}

impl Protocol {
    /// The concrete protocol for a filesystem with `caps`: `Auto` becomes
    /// `Replace` or `Slots`; the others stay as they are.
    ///
    /// ```
    /// use fsatomic::{Capabilities, protocol::Protocol};
    /// let fat = Capabilities::new(false, "vfat");
    /// assert_eq!(Protocol::Auto.resolve(fat), Protocol::Slots);
    /// assert_eq!(Protocol::Replace.resolve(fat), Protocol::Replace);
    /// ```
    pub const fn resolve(self, caps: Capabilities) -> Protocol {
        match self {
            Protocol::Auto if caps.atomic_replace => Protocol::Replace,
            Protocol::Auto => Protocol::Slots,
            other => other,
        }
    }

    /// The protocol's name, as `fsatomic check` prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Replace => "replace",
            Protocol::Slots => "slots",
            Protocol::Journal => "journal",
        }
    }

    /// The protocol named `text` (`auto`, `replace`, `journal`, `slots`),
    /// as the CLI's `--protocol` takes it.
    pub fn parse(text: &str) -> Option<Protocol> {
        [
            Protocol::Auto,
            Protocol::Replace,
            Protocol::Journal,
            Protocol::Slots,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    /// Flush barriers per commit once set up: 2 for Replace, 1 for Slots
    /// and for a journal append.
    pub const fn flushes_per_commit(self) -> u32 {
        match self {
            Protocol::Slots | Protocol::Journal => 1,
            _ => 2,
        }
    }
}

impl core::fmt::Display for Protocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One whole-document commit with the protocol a state is on — Replace or
/// Slots — driven one step at a time: what [`commit`] and
/// [`crate::Store::save`] run, and what a bare-metal board steps between
/// its own work (and cuts power between).
// Only one lives at a time, often on a board with no heap to box into.
#[allow(clippy::large_enum_variant)]
pub enum Commit<'a, D: Dir> {
    /// A Replace commit.
    Replace(replace::Replace<'a, D>),
    /// A Slots commit.
    Slots(slots::Slots<'a, D>),
}

impl<'a, D: Dir> Commit<'a, D> {
    /// Prepare a commit of `data` to `name` with `protocol` resolved
    /// against `caps`; slot files created get room for `max_document`
    /// bytes. Touches nothing. [`Protocol::Journal`] is refused
    /// ([`CommitError::WrongProtocol`]): a journal takes records.
    pub fn new(
        caps: Capabilities,
        name: &'a str,
        data: &'a [u8],
        mode: Mode,
        protocol: Protocol,
        max_document: usize,
    ) -> Result<Self, CommitError<D::Error>> {
        match protocol.resolve(caps) {
            Protocol::Slots => Ok(Commit::Slots(slots::Slots::new(
                name,
                data,
                mode,
                max_document,
            )?)),
            Protocol::Journal => Err(CommitError::WrongProtocol {
                file: crate::name::owned(name),
                protocol,
            }),
            _ => Ok(Commit::Replace(replace::Replace::new(name, data, mode)?)),
        }
    }

    /// The same commit, keeping the version it replaces where the protocol
    /// does not anyway: Replace as `NAME.prev` ([`crate::history`]); Slots
    /// always keeps it in its other slot.
    pub fn keep_previous(self, keep: bool) -> Self {
        match self {
            Commit::Replace(m) => Commit::Replace(m.keep_previous(keep)),
            other => other,
        }
    }

    /// Perform one step (one filesystem operation) of the commit.
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, CommitError<D::Error>> {
        match self {
            Commit::Replace(m) => m.step(dir),
            Commit::Slots(m) => m.step(dir),
        }
    }

    /// Drive the commit to the end; the document is durable on return.
    pub fn run(mut self, dir: &mut D) -> Result<(), CommitError<D::Error>> {
        while self.step(dir)? == Progress::Pending {}
        Ok(())
    }
}

/// Commit the document `data` to `name` with `protocol` (resolved against
/// `dir`), blocking until it is durable. Slot files created by this commit
/// get room for `max_document` bytes. Takes no lock.
pub fn commit<D: Dir>(
    dir: &mut D,
    name: &str,
    data: &[u8],
    mode: Mode,
    protocol: Protocol,
    max_document: usize,
) -> Result<(), CommitError<D::Error>> {
    Commit::new(dir.capabilities(), name, data, mode, protocol, max_document)?.run(dir)
}

/// Read the document `name` as `protocol` (resolved against `dir`) stores
/// it into the front of `buf`: its length, or `Ok(None)` if absent.
/// Checks framing and checksums, not the JSON.
pub fn read<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
    protocol: Protocol,
) -> Result<Option<usize>, LoadError<D::Error>> {
    match protocol.resolve(dir.capabilities()) {
        Protocol::Slots => slots::load(dir, name, buf),
        Protocol::Journal => Err(LoadError::WrongProtocol {
            file: crate::name::owned(name),
            protocol,
        }),
        _ => history::read_current(dir, name, buf),
    }
}

/// Read the previous version of the document `name` as `protocol`
/// (resolved against `dir`) keeps it into the front of `buf`: its length,
/// or `Ok(None)` if there is none. Replace keeps it where asked
/// ([`history`]), Slots always (the other slot); a journal's is
/// [`crate::JournalStore::read_previous`]. Never the current version.
pub fn read_previous<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
    protocol: Protocol,
) -> Result<Option<usize>, LoadError<D::Error>> {
    match protocol.resolve(dir.capabilities()) {
        Protocol::Slots => slots::load_previous(dir, name, buf),
        Protocol::Journal => Err(LoadError::WrongProtocol {
            file: crate::name::owned(name),
            protocol,
        }),
        _ => history::read_previous(dir, name, buf),
    }
}
