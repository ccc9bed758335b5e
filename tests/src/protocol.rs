//! The commit protocols under test, behind one trait, so that one explorer
//! and one oracle cover them all.
//!
//! A [`Protocol`] keeps one *value* (a byte string) in a directory:
//! [`Protocol::commit`] makes a new value durable, [`Protocol::load`] reads
//! the current one back, [`Protocol::recover`] is what a board runs at boot
//! after a power cut. The oracle's whole contract is stated in those terms:
//! after `commit(v)` returned, `load` gives `v`; while it runs, the old
//! value or `v`; never anything else, never [`Failure::Corrupt`].
//!
//! # Adding a protocol
//!
//! Implement the trait over the protocol's public API, mapping its errors
//! with the `From` impls below (the core's error enums all convert). A
//! journal, whose state is a snapshot plus records, maps `commit(v)` to
//! "append a record holding `v`" (compacting every few commits, so that the
//! explorer also cuts compaction) and `load` to "replay, return the last
//! record". Slots, which preallocate their files, do so in
//! [`Protocol::setup`]. See [`Replace`] for the whole pattern.

use std::fmt;

use fsatomic::error::{CommitError, IoError, LoadError, RecoverError, StoreError};
use fsatomic::{Corrupt, Dir, Mode};

/// Why a protocol call failed, with the adapter's error flattened to text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The data on disk is not what any commit writes.
    Corrupt(Corrupt),
    /// A filesystem call failed (including the simulator's power cut).
    Io(String),
    /// Anything else: a refused name, a too-small buffer, a logic bug.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Corrupt(c) => write!(f, "Corrupt: {c}"),
            Failure::Io(e) => write!(f, "I/O error: {e}"),
            Failure::Other(e) => write!(f, "error: {e}"),
        }
    }
}

impl std::error::Error for Failure {}

impl<E: fmt::Display> From<IoError<E>> for Failure {
    fn from(e: IoError<E>) -> Failure {
        Failure::Io(e.to_string())
    }
}

impl<E: fmt::Display> From<LoadError<E>> for Failure {
    fn from(e: LoadError<E>) -> Failure {
        match e {
            LoadError::Corrupt(c) => Failure::Corrupt(c),
            LoadError::Io(e) => e.into(),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl<E: fmt::Display> From<CommitError<E>> for Failure {
    fn from(e: CommitError<E>) -> Failure {
        match e {
            CommitError::Io(e) => e.into(),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl<E: fmt::Display> From<RecoverError<E>> for Failure {
    fn from(e: RecoverError<E>) -> Failure {
        match e {
            RecoverError::Corrupt(c) => Failure::Corrupt(c),
            RecoverError::Io(e) => e.into(),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl<E: fmt::Display> From<StoreError<E>> for Failure {
    fn from(e: StoreError<E>) -> Failure {
        match e {
            StoreError::Load(e) => e.into(),
            StoreError::Commit(e) => e.into(),
            StoreError::Io(e) => e.into(),
            other => Failure::Other(other.to_string()),
        }
    }
}

/// A commit protocol keeping one value in a directory.
///
/// Every method is generic over the directory, so the explorer can run the
/// protocol over the simulator or over a wrapper that breaks it
/// ([`crate::mutate`]).
pub trait Protocol {
    /// A short name for reports (`"replace"`).
    fn name(&self) -> &'static str;

    /// Prepare an empty directory before the scenario starts (preallocate
    /// slot files, say). Runs without crash points; whatever it writes is
    /// made durable before the first one. The default does nothing.
    fn setup<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        let _ = dir;
        Ok(())
    }

    /// Make `value` the durable value; return once it is.
    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure>;

    /// The current value, or `None` if none was ever committed.
    fn load<D: Dir>(&self, dir: &mut D) -> Result<Option<Vec<u8>>, Failure>;

    /// What a board runs at boot after a power cut, before anything else.
    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure>;

    /// Whether `name` is one of the protocol's temporary files (counted by
    /// the oracle's leftover check). The default matches the core's
    /// `.NAME.<token>.tmp` pattern.
    fn is_temp(&self, name: &str) -> bool {
        fsatomic::name::temp_target(name).is_some()
    }

    /// How many temporary files may remain after recovery and after a
    /// commit that follows it.
    fn max_leftovers(&self) -> usize {
        0
    }
}

/// Buffer size for loads: the scenario values are a few hundred bytes.
const LOAD_BUFFER: usize = 64 * 1024;

/// The Replace protocol as a writer uses it through the core: take the
/// writers' lock, sweep orphaned temporary files, commit with
/// [`fsatomic::replace`]; load with [`fsatomic::load::read_json`]; recover
/// with [`fsatomic::recover::recover`]. (What [`fsatomic::Store::save`]
/// does, over bytes instead of a typed value.)
#[derive(Clone, Copy, Debug)]
pub struct Replace {
    /// The file's name.
    pub file: &'static str,
    /// The file's mode.
    pub mode: Mode,
}

impl Default for Replace {
    fn default() -> Replace {
        Replace {
            file: "state.json",
            mode: Mode::PRIVATE,
        }
    }
}

impl Protocol for Replace {
    fn name(&self) -> &'static str {
        "replace"
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
        fsatomic::recover::sweep_orphans(dir, Some(self.file))?;
        fsatomic::replace::commit(dir, self.file, value, self.mode)?;
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Result<Option<Vec<u8>>, Failure> {
        let mut buf = vec![0u8; LOAD_BUFFER];
        let len = fsatomic::load::read_json(dir, self.file, &mut buf)?;
        Ok(len.map(|n| buf[..n].to_vec()))
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        fsatomic::recover::recover(dir, self.file, self.mode)?;
        Ok(())
    }
}

/// The canonical indented form of the JSON `text` (compact, then
/// [`fsatomic::json::pretty`]): the form the scenario values have, so that
/// a value re-indented inside a journal snapshot compares equal.
fn canonical_json(text: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut compact = text.to_vec();
    let n = fsatomic::json::compact_in_place(&mut compact, text.len())
        .map_err(|e| Failure::Other(format!("state is not JSON: {e}")))?;
    let mut out = vec![0u8; n * 4 + 64];
    let m = fsatomic::json::pretty(&compact[..n], &mut out)
        .map_err(|e| Failure::Other(format!("re-indenting the state: {e}")))?;
    out.truncate(m);
    Ok(out)
}

/// The Journal protocol ([`fsatomic::journal`]): `commit(v)` appends a
/// record holding `v` (compact JSON), one flush; every
/// `compact_every` records the writer compacts (snapshot with Replace, then
/// a fresh journal with Replace), so the explorer cuts compactions too.
/// `load` replays lock-free and returns the last record (or the snapshot's
/// state), re-indented; `recover` takes the lock and runs the journal's
/// recovery (cut a torn tail, finish a compaction, create the journal).
#[derive(Clone, Copy, Debug)]
pub struct Journal {
    /// The snapshot's name (`NAME`; the journal is `NAME.journal`).
    pub file: &'static str,
    /// The files' mode.
    pub mode: Mode,
    /// Compact once this many records follow the snapshot.
    pub compact_every: u64,
}

impl Default for Journal {
    fn default() -> Journal {
        Journal {
            file: "sessions.json",
            mode: Mode::PRIVATE,
            compact_every: 2,
        }
    }
}

impl Journal {
    fn journal(&self) -> Result<fsatomic::journal::Journal<'static>, Failure> {
        fsatomic::journal::Journal::new(self.file, self.mode)
            .map_err(|e| Failure::Other(e.to_string()))
    }

    /// Replay (`repair`: under the lock, with recovery) and return the
    /// replay and the last state seen.
    fn replay<D: Dir>(
        &self,
        dir: &mut D,
        repair: bool,
    ) -> Result<(fsatomic::journal::Replay, Option<Vec<u8>>), Failure> {
        use fsatomic::journal::Entry;
        let journal = self.journal()?;
        let mut buf = vec![0u8; LOAD_BUFFER];
        let mut last: Option<Vec<u8>> = None;
        let mut visit = |entry: Entry<'_>, _: &mut [u8]| {
            last = Some(match entry {
                Entry::Snapshot { state, .. } => state.to_vec(),
                Entry::Record { payload, .. } => payload.to_vec(),
            });
            Ok(())
        };
        let replay = if repair {
            journal.recover(dir, &mut buf, &mut visit)?
        } else {
            journal.replay(dir, &mut buf, &mut visit)?
        };
        Ok((replay, last))
    }
}

impl Protocol for Journal {
    fn name(&self) -> &'static str {
        "journal"
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let journal = self.journal()?;
        let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
        fsatomic::recover::sweep_orphans(dir, Some(self.file))?;
        let (replay, _) = self.replay(dir, true)?;
        let mut tail = replay.tail;
        let mut record = value.to_vec();
        let n = fsatomic::json::compact_in_place(&mut record, value.len())
            .map_err(|e| Failure::Other(format!("value is not JSON: {e}")))?;
        journal.append(dir, &mut tail, &[&record[..n]])?;
        if tail.next_seq.saturating_sub(1) - tail.snapshot_seq >= self.compact_every {
            let mut buf = vec![0u8; LOAD_BUFFER];
            buf[..n].copy_from_slice(&record[..n]);
            journal.compact(dir, &mut tail, &mut buf, n)?;
        }
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Result<Option<Vec<u8>>, Failure> {
        let (_, last) = self.replay(dir, false)?;
        last.map(|s| canonical_json(&s)).transpose()
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
        fsatomic::recover::sweep_orphans(dir, Some(self.file))?;
        self.replay(dir, true)?;
        Ok(())
    }
}

/// The Slots protocol ([`fsatomic::slots`]): two preallocated slot files
/// overwritten in place, the older one per commit, one flush. The first
/// commit creates the slot files (and is explored like any other). `load`
/// is [`fsatomic::slots::load`]; `recover` only takes and drops the lock
/// (there is nothing to repair).
#[derive(Clone, Copy, Debug)]
pub struct Slots {
    /// The document's name (`NAME`; the slots are `NAME.a`, `NAME.b`).
    pub file: &'static str,
    /// The files' mode.
    pub mode: Mode,
    /// Room for documents of this many bytes in each slot.
    pub max_document: usize,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots {
            file: "config.json",
            mode: Mode::PRIVATE,
            max_document: 1024,
        }
    }
}

impl Protocol for Slots {
    fn name(&self) -> &'static str {
        "slots"
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
        fsatomic::slots::commit(dir, self.file, value, self.mode, self.max_document)?;
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Result<Option<Vec<u8>>, Failure> {
        let mut buf = vec![0u8; LOAD_BUFFER];
        let len = fsatomic::slots::load(dir, self.file, &mut buf)?;
        Ok(len.map(|n| buf[..n].to_vec()))
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
        Ok(())
    }
}
