//! Errors, one enum per operation, generic over the adapter's error `E`.
//!
//! Three kinds of failure are kept apart everywhere:
//!
//! - **I/O** ([`IoError`]): the filesystem refused or failed; it says which
//!   operation ([`Op`]), on which file, and at which offset when there is one.
//! - **Corrupt** ([`Corrupt`]): the data on disk is not what a commit writes;
//!   it names the file and the byte offset where reading went wrong. The file
//!   is left exactly as it was found.
//! - **Unsupported** ([`Unsupported`]): the data on disk is well-formed but
//!   beyond what this library handles (JSON nested deeper than
//!   [`json::MAX_DEPTH`](crate::json::MAX_DEPTH), written by another tool). It
//!   is not corrupt, and it is left exactly as it was found.
//! - **LogicBug**: a state the library should never reach, reported instead
//!   of a panic.

use core::fmt;

use crate::fs::Op;
use crate::json::JsonErrorKind;
use crate::name::{FileName, NameError};

/// An operation of the filesystem failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError<E> {
    /// The operation that failed.
    pub op: Op,
    /// The file it was applied to (for [`Op::SyncDir`] and [`Op::List`],
    /// the name whose commit needed it).
    pub file: FileName,
    /// The byte offset in the file, for reads and writes.
    pub offset: Option<u64>,
    /// The adapter's error.
    pub source: E,
}

impl<E> IoError<E> {
    pub(crate) fn new(op: Op, file: &str, source: E) -> Self {
        IoError {
            op,
            file: crate::name::owned(file),
            offset: None,
            source,
        }
    }

    pub(crate) fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl<E: embedded_io::Error> IoError<E> {
    /// Whether this is a [`Op::Lock`] that gave up: another writer held
    /// the lock past the wait the directory allows (an adapter's lock
    /// timeout, or a single try), reported with
    /// [`embedded_io::ErrorKind::TimedOut`] as [`crate::Dir::lock`] says.
    /// The operation took nothing and wrote nothing; retry later.
    pub fn is_lock_busy(&self) -> bool {
        self.op == Op::Lock && self.source.kind() == embedded_io::ErrorKind::TimedOut
    }
}

impl<E: fmt::Display> fmt::Display for IoError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} failed", self.op, self.file)?;
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        write!(f, ": {}", self.source)
    }
}

impl<E: core::error::Error + 'static> core::error::Error for IoError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What is wrong with a corrupt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptKind {
    /// The file is empty: no commit ever writes an empty file, so this is
    /// the mark of a torn write (or of a tool that truncated it).
    Empty,
    /// The bytes are not one well-formed JSON value.
    Json(JsonErrorKind),
    /// Well-formed JSON that does not have the shape of the stored type.
    Shape(&'static str),
    /// A binary header or record does not start with the expected magic.
    BadMagic,
    /// The format version is one this build cannot read.
    UnsupportedVersion(u16),
    /// A length field points outside the file or its limits.
    BadLength,
    /// A checksum does not match its bytes.
    BadChecksum,
    /// Record sequence numbers are not consecutive.
    SequenceGap {
        /// The sequence number that was expected.
        expected: u64,
        /// The sequence number found.
        found: u64,
    },
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptKind::Empty => f.write_str("the file is empty (a torn write?)"),
            CorruptKind::Json(kind) => write!(f, "invalid JSON: {kind}"),
            CorruptKind::Shape(what) => write!(f, "JSON of the wrong shape: {what}"),
            CorruptKind::BadMagic => f.write_str("bad magic number"),
            CorruptKind::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            CorruptKind::BadLength => f.write_str("length field out of range"),
            CorruptKind::BadChecksum => f.write_str("checksum mismatch"),
            CorruptKind::SequenceGap { expected, found } => {
                write!(f, "sequence number {found} where {expected} was expected")
            }
        }
    }
}

/// A file's content is not what any commit writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    /// The corrupt file.
    pub file: FileName,
    /// The byte offset at which reading went wrong.
    pub offset: u64,
    /// What is wrong there.
    pub kind: CorruptKind,
}

impl Corrupt {
    /// A corruption of `file` at `offset`.
    pub fn new(file: &str, offset: u64, kind: CorruptKind) -> Corrupt {
        Corrupt {
            file: crate::name::owned(file),
            offset,
            kind,
        }
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is corrupt at byte {}: {}",
            self.file, self.offset, self.kind
        )
    }
}

impl core::error::Error for Corrupt {}

/// What a well-formed file holds that this library does not support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// Valid JSON whose arrays and objects nest deeper than
    /// [`json::MAX_DEPTH`](crate::json::MAX_DEPTH) levels. No commit of this
    /// library writes one (every commit validates first), so another tool
    /// did; the validator has no recursion and a fixed nesting stack, and
    /// stops at that depth.
    TooDeep,
    /// A document of a newer schema than the store knows
    /// ([`crate::schema`]): written by a newer program; left untouched so
    /// that an older one never overwrites it.
    NewerSchema {
        /// The document's schema.
        found: u64,
        /// The newest schema the store knows.
        known: u32,
    },
    /// A document of an older schema than the store's, read without
    /// migrating it: [`crate::Store::open`] migrates it.
    OlderSchema {
        /// The document's schema.
        found: u64,
        /// The store's schema.
        known: u32,
    },
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::TooDeep => write!(
                f,
                "JSON nested deeper than {} levels, which fsatomic does not support (not corruption: no fsatomic commit writes it)",
                crate::json::MAX_DEPTH
            ),
            Unsupported::NewerSchema { found, known } => write!(
                f,
                "a document of schema {found}, newer than the {known} this program knows (written by a newer version of it)"
            ),
            Unsupported::OlderSchema { found, known } => write!(
                f,
                "a document of schema {found}, older than the store's {known}; opening the store (Store::open) migrates it"
            ),
        }
    }
}

impl Unsupported {
    /// The unsupported case a JSON error `kind` stands for, if it is one
    /// (a depth beyond [`json::MAX_DEPTH`](crate::json::MAX_DEPTH)), rather
    /// than malformed JSON.
    pub const fn from_json(kind: JsonErrorKind) -> Option<Unsupported> {
        match kind {
            JsonErrorKind::TooDeep => Some(Unsupported::TooDeep),
            _ => None,
        }
    }
}

/// An error with a `Name` variant: a name refused before any I/O
/// ([`crate::name::checked`] makes it).
pub(crate) trait NameRefused {
    fn name_refused(file: FileName, error: NameError) -> Self;
}

macro_rules! error_common {
    ($ty:ident, |$f:ident| { $($extra:tt)* }) => {
        impl<E> NameRefused for $ty<E> {
            fn name_refused(file: FileName, error: NameError) -> Self {
                $ty::Name { file, error }
            }
        }

        impl<E: fmt::Display> fmt::Display for $ty<E> {
            fn fmt(&self, $f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let f = &mut *$f;
                match self {
                    $ty::Name { file, error } => write!(f, "refused name {file:?}: {error}"),
                    $ty::Io(e) => e.fmt(f),
                    $ty::LogicBug(what) => write!(f, "internal error (please report): {what}"),
                    $($extra)*
                }
            }
        }

        impl<E> From<IoError<E>> for $ty<E> {
            fn from(e: IoError<E>) -> Self {
                $ty::Io(e)
            }
        }
    };
}

/// Loading a file failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The name was refused before any I/O.
    Name {
        /// The refused name.
        file: FileName,
        /// Why.
        error: NameError,
    },
    /// The filesystem failed.
    Io(IoError<E>),
    /// The file is corrupt; it was left untouched.
    Corrupt(Corrupt),
    /// The file is well-formed but holds what this library does not
    /// support (see [`Unsupported`]); it is not corrupt, and was left
    /// untouched.
    Unsupported {
        /// The file.
        file: FileName,
        /// The byte offset where the unsupported part starts.
        offset: u64,
        /// What is not supported.
        what: Unsupported,
    },
    /// The file is larger than the caller's buffer; nothing was decoded.
    TooLarge {
        /// The file.
        file: FileName,
        /// Its size in bytes.
        size: u64,
        /// The buffer's size in bytes.
        capacity: usize,
    },
    /// The call reads whole documents, and the state is on a protocol that
    /// keeps something else (a journal keeps records): a caller's mistake.
    WrongProtocol {
        /// The state.
        file: FileName,
        /// The protocol asked for.
        protocol: crate::Protocol,
    },
    /// A state the library should never reach.
    LogicBug(&'static str),
}

error_common!(LoadError, |f| {
    LoadError::WrongProtocol { file, protocol } => write!(
        f,
        "{file}: the {protocol} protocol does not keep a whole document; read it as a journal (JournalStore, or `fsatomic load`)"
    ),
    LoadError::Corrupt(c) => c.fmt(f),
    LoadError::Unsupported { file, offset, what } => {
        write!(f, "{file} holds {what}, at byte {offset}; it was left untouched")
    }
    LoadError::TooLarge { file, size, capacity } => write!(
        f,
        "{file} is {size} bytes, larger than the {capacity}-byte buffer; give a larger buffer"
    ),
});

impl<E> From<Corrupt> for LoadError<E> {
    fn from(c: Corrupt) -> Self {
        LoadError::Corrupt(c)
    }
}

impl<E: core::error::Error + 'static> core::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            LoadError::Name { error, .. } => Some(error),
            LoadError::Io(e) => Some(e),
            LoadError::Corrupt(c) => Some(c),
            _ => None,
        }
    }
}

/// A commit failed. Unless the variant says otherwise, the file still has
/// its old content (or is still absent).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitError<E> {
    /// The name was refused before any I/O.
    Name {
        /// The refused name.
        file: FileName,
        /// Why.
        error: NameError,
    },
    /// The filesystem failed. If [`IoError::op`] is [`Op::SyncDir`], the
    /// new content is in place but may not survive a power cut; every other
    /// operation failed before the file was replaced.
    Io(IoError<E>),
    /// Every unique temporary name tried was taken: something is planting
    /// names in the directory.
    TempNameCollision {
        /// The file being committed.
        file: FileName,
    },
    /// The document does not fit the protocol's limits (a slot's size, a
    /// journal record's length).
    TooLarge {
        /// The file being committed.
        file: FileName,
        /// The document's size in bytes.
        size: usize,
        /// The limit in bytes.
        capacity: usize,
    },
    /// The document is empty. No commit writes an empty file, so that an
    /// empty file on disk always means a torn write.
    EmptyDocument {
        /// The file being committed.
        file: FileName,
    },
    /// The document handed to the commit is not well-formed JSON.
    InvalidDocument {
        /// The file being committed.
        file: FileName,
        /// Where the document breaks.
        error: crate::json::JsonError,
    },
    /// The journal changed since its writer last read it (another process
    /// appended or compacted); nothing was written. Catch up and retry.
    Stale {
        /// The journal file.
        file: FileName,
    },
    /// The call commits whole documents, and the protocol asked for keeps
    /// something else (a journal keeps records), or the state is on
    /// another protocol than the one asked for: a caller's mistake;
    /// nothing was written.
    WrongProtocol {
        /// The state.
        file: FileName,
        /// The protocol asked for.
        protocol: crate::Protocol,
    },
    /// A tentative version is in the way, or cannot be kept
    /// ([`crate::history`]): a caller's mistake; nothing was written.
    Tentative {
        /// The state.
        file: FileName,
        /// Why, and what to do.
        why: &'static str,
    },
    /// Storage laid out in a way the protocol cannot use (NOR regions that
    /// are not whole erase sectors inside the flash, a write unit it
    /// cannot stage): a caller's mistake; nothing was written.
    Layout {
        /// What is wrong.
        why: &'static str,
    },
    /// A state the library should never reach.
    LogicBug(&'static str),
}

error_common!(CommitError, |f| {
    CommitError::Layout { why } => write!(f, "unusable storage layout: {why}; nothing was written"),
    CommitError::Tentative { file, why } => write!(f, "{file}: {why}; nothing was written"),
    CommitError::WrongProtocol { file, protocol } => write!(
        f,
        "{file}: refused to commit a whole document with the {protocol} protocol; a journal takes records (JournalStore::append, `fsatomic append`); nothing was written"
    ),
    CommitError::InvalidDocument { file, error } => write!(
        f,
        "refused to commit {file}: the document is not valid JSON ({error})"
    ),
    CommitError::Stale { file } => write!(
        f,
        "{file} changed since it was last read; catch up and retry"
    ),
    CommitError::EmptyDocument { file } => write!(
        f,
        "refused to commit an empty document to {file}; an empty file reads as a torn write"
    ),
    CommitError::TempNameCollision { file } => write!(
        f,
        "every temporary name tried for {file} was taken; check the directory for planted files"
    ),
    CommitError::TooLarge { file, size, capacity } => write!(
        f,
        "{file}: the document is {size} bytes, over the limit of {capacity} bytes"
    ),
});

impl<E: core::error::Error + 'static> core::error::Error for CommitError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CommitError::Name { error, .. } => Some(error),
            CommitError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Recovering a file after a crash failed: the same cases as a load
/// (a recovery reads, then repairs with commits whose failures it reports
/// as I/O), so the same type — one road to each error.
pub type RecoverError<E> = LoadError<E>;

/// Encoding a value to JSON failed, before anything touched the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded document does not fit the buffer.
    BufferTooSmall {
        /// Bytes needed, when known (the indented size; the compact size is
        /// not known when even that did not fit).
        needed: Option<usize>,
        /// The buffer's size in bytes.
        capacity: usize,
    },
    /// The serializer produced something that is not JSON (a type whose
    /// `Serialize` writes raw bytes, say); nothing was written.
    NotJson(crate::json::JsonError),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall {
                needed: Some(n),
                capacity,
            } => write!(
                f,
                "the document needs {n} bytes but the buffer holds {capacity}; nothing was written"
            ),
            EncodeError::BufferTooSmall {
                needed: None,
                capacity,
            } => write!(
                f,
                "the document does not fit the {capacity}-byte buffer; nothing was written"
            ),
            EncodeError::NotJson(e) => write!(
                f,
                "the encoder produced invalid JSON ({e}); nothing was written"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// A typed store operation ([`crate::Store`]) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError<E> {
    /// Loading the current document failed.
    Load(LoadError<E>),
    /// Committing the new document failed.
    Commit(CommitError<E>),
    /// The value could not be encoded; nothing touched the disk.
    Encode {
        /// The store's file.
        file: FileName,
        /// Why.
        error: EncodeError,
    },
    /// Recovering a journal (cutting a torn tail, finishing a
    /// compaction) failed.
    Recover(RecoverError<E>),
    /// Taking the lock or sweeping orphaned temporary files failed.
    Io(IoError<E>),
    /// The store's name was refused before any I/O: the caller's mistake.
    Name {
        /// The refused name.
        file: FileName,
        /// Why.
        error: NameError,
    },
    /// The caller's migration refused a document of an older schema
    /// ([`crate::Store::open`]); it was left untouched.
    Migrate {
        /// The store's file.
        file: FileName,
        /// The document's schema.
        from: u64,
        /// The migration's reason.
        why: &'static str,
    },
    /// More records than one batch takes ([`crate::store::MAX_BATCH`]):
    /// the caller's mistake; nothing was written.
    TooManyRecords {
        /// The store's file.
        file: FileName,
        /// The records given.
        given: usize,
        /// The most one batch takes.
        max: usize,
    },
}

impl<E: fmt::Display> fmt::Display for StoreError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Name { file, error } => write!(f, "refused name {file:?}: {error}"),
            StoreError::TooManyRecords { file, given, max } => write!(
                f,
                "{file}: {given} records in one batch, more than the {max} a batch takes; nothing was written"
            ),
            StoreError::Migrate { file, from, why } => write!(
                f,
                "{file}: migrating its document from schema {from} failed: {why}; it was left untouched"
            ),
            StoreError::Load(e) => e.fmt(f),
            StoreError::Commit(e) => e.fmt(f),
            StoreError::Encode { file, error } => write!(f, "encoding {file}: {error}"),
            StoreError::Recover(e) => e.fmt(f),
            StoreError::Io(e) => e.fmt(f),
        }
    }
}

impl<E: core::error::Error + 'static> core::error::Error for StoreError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            StoreError::Load(e) => Some(e),
            StoreError::Commit(e) => Some(e),
            StoreError::Encode { error, .. } => Some(error),
            StoreError::Recover(e) => Some(e),
            StoreError::Io(e) => Some(e),
            StoreError::Name { error, .. } => Some(error),
            StoreError::TooManyRecords { .. } | StoreError::Migrate { .. } => None,
        }
    }
}

impl<E> StoreError<E> {
    /// Whether the error means only that the caller's buffer was too small
    /// (for the document, a record, or the snapshot), with nothing written.
    /// Callers that can allocate retry with a larger buffer.
    pub fn is_buffer_too_small(&self) -> bool {
        matches!(
            self,
            StoreError::Encode { .. }
                | StoreError::Load(LoadError::TooLarge { .. })
                | StoreError::Recover(RecoverError::TooLarge { .. })
        )
    }
}

impl<E> NameRefused for StoreError<E> {
    fn name_refused(file: FileName, error: NameError) -> Self {
        StoreError::Name { file, error }
    }
}

impl<E> From<LoadError<E>> for StoreError<E> {
    fn from(e: LoadError<E>) -> Self {
        StoreError::Load(e)
    }
}

impl<E> From<CommitError<E>> for StoreError<E> {
    fn from(e: CommitError<E>) -> Self {
        StoreError::Commit(e)
    }
}

impl<E> From<IoError<E>> for StoreError<E> {
    fn from(e: IoError<E>) -> Self {
        StoreError::Io(e)
    }
}

/// Every error of the crate in one flat enum, as redb's `Error` is: a
/// caller matches [`Error::Corrupt`], [`Error::TooLarge`] or [`Error::Io`]
/// once, whichever operation failed and however deeply its own error
/// nested them. Each per-operation error converts into it (`?` or
/// `Error::from`).
///
/// ```
/// use fsatomic::error::{Error, LoadError, StoreError};
/// use fsatomic::{Corrupt, CorruptKind};
/// let nested: StoreError<()> =
///     StoreError::Load(LoadError::Corrupt(Corrupt::new("a.json", 3, CorruptKind::Empty)));
/// assert!(matches!(Error::from(nested), Error::Corrupt(c) if c.offset == 3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// A name was refused before any I/O (the caller's mistake).
    Name {
        /// The refused name.
        file: FileName,
        /// Why.
        error: NameError,
    },
    /// The filesystem failed.
    Io(IoError<E>),
    /// A file is corrupt; it was left untouched.
    Corrupt(Corrupt),
    /// A file is well-formed but holds what this library does not support;
    /// it was left untouched.
    Unsupported {
        /// The file.
        file: FileName,
        /// Where the unsupported part starts.
        offset: u64,
        /// What is not supported.
        what: Unsupported,
    },
    /// A document, record or value does not fit the caller's buffer or the
    /// protocol's limit; nothing was written. A larger buffer may do.
    TooLarge {
        /// The file.
        file: FileName,
        /// The size that did not fit, if known.
        size: Option<u64>,
        /// The buffer's or limit's size in bytes.
        capacity: usize,
    },
    /// A commit was refused for what it was given (an empty or invalid
    /// document, a whole document for a journal, too many records): the
    /// caller's mistake; nothing was written.
    Refused {
        /// The file.
        file: FileName,
        /// Why, in a few words.
        why: &'static str,
    },
    /// Something other than this library keeps changing the directory
    /// (every temporary name taken, a journal changing under the lock).
    Interference {
        /// The file.
        file: FileName,
    },
    /// A state the library should never reach.
    LogicBug(&'static str),
}

error_common!(Error, |f| {
    Error::Corrupt(c) => c.fmt(f),
    Error::Unsupported { file, offset, what } => {
        write!(f, "{file} holds {what}, at byte {offset}; it was left untouched")
    }
    Error::TooLarge {
        file,
        size: Some(size),
        capacity,
    } => write!(
        f,
        "{file}: {size} bytes do not fit {capacity}; give a larger buffer"
    ),
    Error::TooLarge { file, capacity, .. } => write!(
        f,
        "{file}: the value does not fit {capacity} bytes; give a larger buffer"
    ),
    Error::Refused { file, why } => write!(f, "refused to commit {file}: {why}"),
    Error::Interference { file } => write!(
        f,
        "{file} kept changing under the writers' lock; check what else writes in the directory"
    ),
});

impl<E: core::error::Error + 'static> core::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Name { error, .. } => Some(error),
            Error::Io(e) => Some(e),
            Error::Corrupt(c) => Some(c),
            _ => None,
        }
    }
}

impl<E> Error<E> {
    /// Whether only the caller's buffer was too small, with nothing
    /// written: retry with a larger one.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Error::TooLarge { .. })
    }
}

impl<E: embedded_io::Error> Error<E> {
    /// Whether another writer held the writers' lock past the wait the
    /// directory allows (see [`IoError::is_lock_busy`]); nothing was read
    /// for writing and nothing was written.
    pub fn is_lock_busy(&self) -> bool {
        matches!(self, Error::Io(e) if e.is_lock_busy())
    }
}

impl<E> From<Corrupt> for Error<E> {
    fn from(c: Corrupt) -> Self {
        Error::Corrupt(c)
    }
}

impl<E> From<LoadError<E>> for Error<E> {
    fn from(e: LoadError<E>) -> Self {
        match e {
            LoadError::Name { file, error } => Error::Name { file, error },
            LoadError::Io(e) => Error::Io(e),
            LoadError::Corrupt(c) => Error::Corrupt(c),
            LoadError::Unsupported { file, offset, what } => {
                Error::Unsupported { file, offset, what }
            }
            LoadError::TooLarge {
                file,
                size,
                capacity,
            } => Error::TooLarge {
                file,
                size: Some(size),
                capacity,
            },
            LoadError::WrongProtocol { file, .. } => Error::Refused {
                file,
                why: "the state is a journal, not a whole document",
            },
            LoadError::LogicBug(s) => Error::LogicBug(s),
        }
    }
}

impl<E> From<CommitError<E>> for Error<E> {
    fn from(e: CommitError<E>) -> Self {
        match e {
            CommitError::Name { file, error } => Error::Name { file, error },
            CommitError::Io(e) => Error::Io(e),
            CommitError::TempNameCollision { file } | CommitError::Stale { file } => {
                Error::Interference { file }
            }
            CommitError::TooLarge {
                file,
                size,
                capacity,
            } => Error::TooLarge {
                file,
                size: Some(size as u64),
                capacity,
            },
            CommitError::EmptyDocument { file } => Error::Refused {
                file,
                why: "the document is empty",
            },
            CommitError::InvalidDocument { file, .. } => Error::Refused {
                file,
                why: "the document is not valid JSON",
            },
            CommitError::WrongProtocol { file, .. } => Error::Refused {
                file,
                why: "a journal takes records, not a whole document",
            },
            CommitError::Tentative { file, why } => Error::Refused { file, why },
            CommitError::Layout { why } => Error::Refused {
                file: crate::name::owned("storage"),
                why,
            },
            CommitError::LogicBug(s) => Error::LogicBug(s),
        }
    }
}

impl<E> From<StoreError<E>> for Error<E> {
    fn from(e: StoreError<E>) -> Self {
        match e {
            StoreError::Load(e) => e.into(),
            StoreError::Commit(e) => e.into(),
            StoreError::Recover(e) => e.into(),
            StoreError::Io(e) => Error::Io(e),
            StoreError::Name { file, error } => Error::Name { file, error },
            StoreError::Encode {
                file,
                error: EncodeError::BufferTooSmall { needed, capacity },
            } => Error::TooLarge {
                file,
                size: needed.map(|n| n as u64),
                capacity,
            },
            StoreError::Encode { file, .. } => Error::Refused {
                file,
                why: "the value does not encode as JSON",
            },
            StoreError::TooManyRecords { file, .. } => Error::Refused {
                file,
                why: "more records than one batch takes",
            },
            StoreError::Migrate { file, why, .. } => Error::Refused { file, why },
        }
    }
}
