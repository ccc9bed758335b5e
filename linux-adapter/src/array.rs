//! A JSON array kept as a journal: what `fsatomic append` and `fsatomic
//! load` do with an appended array, as library calls over any [`Dir`], so
//! that the crash explorer drives exactly the code the command runs.
//!
//! The array's elements are the snapshot's elements followed by one
//! journal record per appended value ([`fsatomic::journal`]). A plain
//! array file (written by `save`, or by the old daemon) becomes a journal
//! through the core's [`Journal::convert`] on its first append: one commit,
//! so a power cut leaves the plain array or the journaled one, with the
//! same elements. The journal is compacted into the snapshot when it
//! outgrows both [`COMPACT_AFTER`] and the snapshot, which keeps the cost
//! of compaction per record constant as the array grows.

use std::fmt;

use fsatomic::journal::{Conversion, Entry, Journal, RECORD_HEADER_LEN, Replay, VisitError};
use fsatomic::layout::{Files, Role};
use fsatomic::{
    CommitError, Corrupt, CorruptKind, Dir, IoError, Mode, RecoverError, json, recover,
};

/// The journal is compacted when it is larger than this and than the
/// snapshot — the threshold of the core's `JournalStore`.
pub const COMPACT_AFTER: u64 = 64 * 1024;

/// How many times a read grows its buffer for a file that keeps growing.
const GROW_ATTEMPTS: usize = 8;

/// Why an array operation failed. Nothing was appended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// Reading or recovering the files failed (I/O, corrupt, a refused
    /// name).
    Recover(RecoverError<E>),
    /// Writing failed (the conversion, a compaction or the append).
    Commit(CommitError<E>),
    /// The document is valid JSON but not an array (`kind` says what it
    /// is); append adds to arrays only.
    NotArray {
        /// "an object", "a string", ...
        kind: &'static str,
    },
    /// The files kept growing faster than the buffer could follow, or no
    /// memory was to be had for the buffer.
    NoBuffer {
        /// The size last asked for.
        size: u64,
    },
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Recover(e) => e.fmt(f),
            Error::Commit(e) => e.fmt(f),
            Error::NotArray { kind } => write!(f, "the state holds {kind}, not an array"),
            Error::NoBuffer { size } => {
                write!(
                    f,
                    "could not get a buffer of {size} bytes to read the state"
                )
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for Error<E> {}

impl<E> From<RecoverError<E>> for Error<E> {
    fn from(e: RecoverError<E>) -> Self {
        Error::Recover(e)
    }
}

impl<E> From<CommitError<E>> for Error<E> {
    fn from(e: CommitError<E>) -> Self {
        Error::Commit(e)
    }
}

impl<E> From<IoError<E>> for Error<E> {
    fn from(e: IoError<E>) -> Self {
        Error::Recover(RecoverError::Io(e))
    }
}

/// A journaled state as a replay found it.
#[derive(Debug)]
pub struct JournalState {
    /// The snapshot: its sequence number and its `state` (JSON).
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// Every record after the snapshot, in order (each one JSON value).
    pub records: Vec<Vec<u8>>,
    /// The index in `records` where the last append (or batch) starts.
    pub last_append: usize,
    /// Where the journal ends, and a torn tail if there was one.
    pub replay: Replay,
}

impl JournalState {
    /// The previous version: the state before the last append (or batch).
    /// `None` if there is none: no append since the last compaction (which
    /// keeps no history), or only one since the state began.
    pub fn previous(&self) -> Option<JournalState> {
        if self.records.is_empty() || (self.last_append == 0 && self.snapshot.is_none()) {
            return None;
        }
        Some(JournalState {
            snapshot: self.snapshot.clone(),
            records: self.records.get(..self.last_append)?.to_vec(),
            last_append: 0,
            replay: self.replay,
        })
    }

    /// The state as one compact JSON array: the snapshot's elements, then
    /// every record. `None` if the snapshot's state is not an array (a
    /// journal kept by a daemon's typed store, not by `fsatomic append`).
    pub fn array(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(
            2 + self.snapshot.as_ref().map_or(0, |(_, s)| s.len())
                + self.records.iter().map(|r| r.len() + 1).sum::<usize>(),
        );
        out.push(b'[');
        if let Some((_, state)) = &self.snapshot {
            json::for_each_element(state, |range| {
                if out.len() > 1 {
                    out.push(b',');
                }
                out.extend_from_slice(state.get(range).unwrap_or_default());
            })
            .ok()?;
        }
        for record in &self.records {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(record);
        }
        out.push(b']');
        Some(out)
    }

    /// The state as `{"seq": S, "state": ..., "records": [...]}`: the
    /// snapshot and the records after it, for journals whose state is not
    /// an array.
    pub fn parts(&self) -> Vec<u8> {
        let (seq, state) = match &self.snapshot {
            Some((seq, state)) => (*seq, state.as_slice()),
            None => (0, &b"null"[..]),
        };
        let mut out = format!("{{\"seq\":{seq},\"state\":").into_bytes();
        out.extend_from_slice(state);
        out.extend_from_slice(b",\"records\":[");
        for (i, record) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(record);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// A zeroed buffer of `len` bytes, or [`Error::NoBuffer`].
fn buffer<E>(len: usize) -> Result<Vec<u8>, Error<E>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| Error::NoBuffer { size: len as u64 })?;
    buf.resize(len, 0);
    Ok(buf)
}

/// Replay the journal of `name`: lock-free and read-only, or, with
/// `repair` (the caller holds the writers' lock), through the core's
/// recovery, which cuts a torn tail, finishes an interrupted compaction
/// and creates a missing journal. Every record must be one JSON value.
/// `hint` is a first guess of the buffer size (the files' sizes); the
/// buffer grows while a record or the snapshot does not fit.
///
/// With `repair`, the journal is written as by a writer of
/// [`Mode::PRIVATE`]: a missing one is created 0600, and one whose mode is
/// wider is narrowed to it ([`fsatomic::Dir::open_write`]). A writer with
/// another mode (the state's own, to keep it) uses [`read_journal_as`].
pub fn read_journal<D: Dir>(
    dir: &mut D,
    name: &str,
    repair: bool,
    hint: u64,
) -> Result<JournalState, Error<D::Error>> {
    read_journal_as(dir, name, repair, hint, Mode::PRIVATE)
}

/// [`read_journal`] for a writer of mode `mode`: with `repair`, a missing
/// journal is created with `mode`, and an existing one is checked and
/// narrowed to `mode` ([`fsatomic::Dir::open_write`]) before anything is
/// written to it.
pub fn read_journal_as<D: Dir>(
    dir: &mut D,
    name: &str,
    repair: bool,
    hint: u64,
    mode: Mode,
) -> Result<JournalState, Error<D::Error>> {
    let journal = Journal::new(name, mode).map_err(|error| {
        Error::Recover(RecoverError::Name {
            file: fsatomic::name::owned(name),
            error,
        })
    })?;
    let jname = journal.journal_name().to_string();
    let mut capacity = usize::try_from(hint)
        .unwrap_or(usize::MAX)
        .saturating_add(4096);
    for _ in 0..GROW_ATTEMPTS {
        let mut buf = buffer(capacity)?;
        let mut snapshot = None;
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut last_append = 0;
        let mut last_seq = None;
        let mut visit = |entry: Entry<'_>, _scratch: &mut [u8]| -> Result<(), VisitError> {
            match entry {
                Entry::Snapshot { seq, state } => {
                    snapshot = Some((seq, state.to_vec()));
                    records.clear();
                    last_append = 0;
                    last_seq = None;
                }
                Entry::Record {
                    seq,
                    offset,
                    payload,
                    index,
                } => {
                    // A replay that starts over (a compaction replaced the
                    // files meanwhile) without a snapshot starts afresh.
                    if last_seq.is_some_and(|last| seq <= last) {
                        records.clear();
                        last_append = 0;
                    }
                    if index == 0 {
                        last_append = records.len();
                    }
                    last_seq = Some(seq);
                    json::validate(payload).map_err(|e| {
                        let at = offset + (RECORD_HEADER_LEN + e.offset) as u64;
                        match fsatomic::error::Unsupported::from_json(e.kind) {
                            Some(what) => VisitError::Unsupported {
                                file: fsatomic::name::owned(&jname),
                                offset: at,
                                what,
                            },
                            None => Corrupt::new(&jname, at, CorruptKind::Json(e.kind)).into(),
                        }
                    })?;
                    records.push(payload.to_vec());
                }
            }
            Ok(())
        };
        let result = if repair {
            journal.recover(dir, &mut buf, &mut visit)
        } else {
            journal.replay(dir, &mut buf, &mut visit)
        };
        match result {
            Ok(replay) => {
                return Ok(JournalState {
                    snapshot,
                    records,
                    last_append,
                    replay,
                });
            }
            Err(RecoverError::TooLarge { size, .. }) => {
                capacity = usize::try_from(size)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(2)
                    .max(capacity.saturating_mul(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::NoBuffer {
        size: capacity as u64,
    })
}

/// What kind of JSON value `text` (valid JSON) is, for messages.
pub fn kind_of(text: &[u8]) -> &'static str {
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// What [`append`] did besides appending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// The sequence number of the new record.
    pub seq: u64,
    /// A plain array of this many elements became a journal first.
    pub converted: Option<usize>,
    /// The journal was compacted into the snapshot first.
    pub compacted: bool,
}

/// Under the writers' lock of `name` (the caller holds it): append the
/// compact JSON `value` to the journaled array `name` with one flush.
///
/// A plain array file is converted to a journal first ([`Journal::convert`]);
/// a state that is neither (absent) becomes an empty journaled array. The
/// journal is recovered (torn tail cut, interrupted compaction finished)
/// and, when it has outgrown [`COMPACT_AFTER`] and the snapshot, compacted
/// before the append. `mode` is given to files this call creates.
pub fn append<D: Dir>(
    dir: &mut D,
    name: &str,
    value: &[u8],
    mode: Mode,
) -> Result<Appended, Error<D::Error>> {
    append_with(dir, name, value, mode, COMPACT_AFTER)
}

/// [`append`], compacting past `compact_after` bytes instead of
/// [`COMPACT_AFTER`] (the crash explorer uses small documents).
pub fn append_with<D: Dir>(
    dir: &mut D,
    name: &str,
    value: &[u8],
    mode: Mode,
    compact_after: u64,
) -> Result<Appended, Error<D::Error>> {
    let journal = Journal::new(name, mode).map_err(|error| {
        Error::Recover(RecoverError::Name {
            file: fsatomic::name::owned(name),
            error,
        })
    })?;
    recover::sweep_orphans(dir, Some(name))?;
    let mut done = Appended::default();
    let files = Files::probe(dir, name)?;
    if files.document && !files.journal {
        done.converted = convert(dir, &journal)?;
    }
    let state = read_journal_as(dir, name, true, 0, mode)?;
    let Some(array) = state.array() else {
        return Err(Error::NotArray {
            kind: state
                .snapshot
                .as_ref()
                .map_or("an object", |(_, s)| kind_of(s)),
        });
    };
    let mut tail = state.replay.tail;
    drop(state);
    if tail.end > compact_after.max(tail.snapshot_bytes) {
        // The snapshot is the array wrapped in {"seq": S, "state": ...}
        // and indented one level deeper: size the buffer for that.
        let seq = tail.next_seq.saturating_sub(1);
        let mut wrapped = format!("{{\"seq\":{seq},\"state\":").into_bytes();
        wrapped.extend_from_slice(&array);
        wrapped.push(b'}');
        let needed = json::pretty_len(&wrapped)
            .map_err(|_| Error::Commit(CommitError::LogicBug("the folded array is not JSON")))?;
        drop(wrapped);
        let mut buf = buffer(needed.max(array.len()) + fsatomic::journal::HEADER_LEN)?;
        buf.get_mut(..array.len())
            .ok_or(Error::Commit(CommitError::LogicBug("compaction buffer")))?
            .copy_from_slice(&array);
        journal.compact(dir, &mut tail, &mut buf, array.len())?;
        done.compacted = true;
    }
    done.seq = journal.append(dir, &mut tail, &[value])?;
    Ok(done)
}

/// Convert the plain document `name` into a journaled array; return how
/// many elements it had, if it was converted (not adopted as an older
/// version's snapshot). A document that is not an array is refused.
fn convert<D: Dir>(dir: &mut D, journal: &Journal<'_>) -> Result<Option<usize>, Error<D::Error>> {
    let name = journal.name();
    let mut capacity = 4096;
    let (text, len) = loop {
        let mut buf = buffer(capacity)?;
        match fsatomic::load::read(dir, name, &mut buf) {
            Ok(Some(len)) => break (buf, len),
            Ok(None) => return Ok(None),
            Err(fsatomic::LoadError::TooLarge { size, .. }) if capacity < (1 << 30) => {
                capacity = usize::try_from(size)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1);
            }
            Err(e) => return Err(RecoverError::from(e).into()),
        }
    };
    let doc = text.get(..len).unwrap_or_default();
    fsatomic::load::check_document(name, doc)?;
    let mut elements = 0usize;
    let is_array = json::for_each_element(doc, |_| elements += 1).is_ok();
    let is_snapshot = fsatomic::journal::parse_snapshot(name, doc).is_ok_and(|(_, state)| {
        json::for_each_element(doc.get(state).unwrap_or_default(), |_| ()).is_ok()
    });
    if !is_array && !is_snapshot {
        return Err(Error::NotArray { kind: kind_of(doc) });
    }
    let mut buf = text;
    buf.push(0);
    match journal.convert(dir, &mut buf)? {
        Conversion::Converted => Ok(Some(elements)),
        _ => Ok(None),
    }
}

/// The file that carries a state's mode: the journal for a journal, a slot
/// for slots, the document otherwise.
pub fn mode_file(name: &str, files: &Files) -> fsatomic::name::FileName {
    let role = match files.protocol() {
        Ok(Some(fsatomic::Protocol::Journal)) => Role::Journal,
        Ok(Some(fsatomic::Protocol::Slots)) if files.slots[0] => Role::Slot(0),
        Ok(Some(fsatomic::Protocol::Slots)) => Role::Slot(1),
        _ => Role::Document,
    };
    fsatomic::layout::file_name(name, role)
}
