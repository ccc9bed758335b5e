//! The Journal protocol: a snapshot plus an append-only log of framed
//! records, for high-frequency or append-only state (sessions, rate-limit
//! hits, the snapshot database).
//!
//! ```text
//!  NAME          {"seq": S, "state": ...}        indented JSON, written with Replace
//!  NAME.journal  [header: magic, version, base, epoch, CRC]
//!                [record: len, seq, payload CRC, header CRC][payload] ...
//!
//!  append:   Open ──► WriteRecord(i) ... ──► SyncJournal ──► Done      one barrier per batch
//!  compact:  Replace(NAME ← {"seq": last, "state": folded}) ──► Replace(NAME.journal ← header base last+1)
//! ```
//!
//! An append writes whole records after the last one and flushes the
//! journal once (`fdatasync`) — **one flush barrier per acknowledged append**
//! (or per batch, which is how group commit shares one flush between
//! concurrent appenders). Its cost does not depend on the length of the
//! history: the writer remembers where the journal ends ([`Tail`]) and
//! checks that with one header read and one seek.
//!
//! Every record carries its sequence number. The snapshot says the sequence
//! number of the last record folded into it, and replay skips records at or
//! below it; so a power cut in the middle of compaction (new snapshot
//! written, old journal still in place) replays nothing twice.
//!
//! A power cut during an append leaves at most one torn record at the end of
//! the journal: nothing is written after a record until it is durable. A
//! record that fails its checks with nothing valid after it is that torn
//! tail: readers ignore it, and the next writer (holding the lock) cuts it
//! off. A record that fails its checks with a valid record after it is
//! damage, not a torn write: [`CorruptKind::BadChecksum`], never skipped.
//!
//! The journal needs crash-atomic rename (compaction and creation use
//! Replace); on FAT, keep such state with Slots instead.

use core::fmt;
use core::ops::Range;

use embedded_io::{Seek, SeekFrom, Write};

use crate::Mode;
use crate::bytes::{put, read_full, u32_le, u64_le};
use crate::crc::crc32c;
use crate::error::{CommitError, Corrupt, CorruptKind, IoError, LoadError, RecoverError};
use crate::fs::{Dir, File, Op};
use crate::json;
use crate::machine::Progress;
use crate::name::{self, FileName, NameError};
use crate::replace;

/// The first eight bytes of every journal file.
pub const MAGIC: [u8; 8] = *b"FSATJRNL";
/// The journal format version this build writes. It reads version 1 too
/// (the same layout, written before records carried their index in a
/// batch, and before [`FLAG_PLAIN`]).
pub const VERSION: u16 = 2;
/// Size of the journal file header.
pub const HEADER_LEN: usize = 32;
/// Size of a record header.
pub const RECORD_HEADER_LEN: usize = 20;
/// The largest record payload, in bytes.
pub const MAX_RECORD: usize = 16 << 20;
/// The most records that may be written between two completed flushes:
/// each carries its index among them (8 bits), which is what lets
/// recovery tell a torn tail from damage (see `torn_or_damaged`).
pub const MAX_UNFLUSHED: usize = 256;
/// Suffix of the journal file: `NAME.journal`.
pub const SUFFIX: &str = crate::layout::JOURNAL_SUFFIX;

/// Records are staged in a stack buffer this large, to be written with one
/// call.
const STAGE: usize = 512;

/// How many times a lock-free reader re-reads when a compaction replaced
/// the files between its reads of the snapshot and the journal.
const READ_ATTEMPTS: usize = 8;

/// Where a journal ends, as its writer last saw it. Kept between appends so
/// that an append costs the same at any length of history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The journal file's epoch (a unique token chosen when the file was
    /// created); a new epoch means compaction replaced the file.
    pub epoch: u64,
    /// Offset just past the last whole record.
    pub end: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// The sequence number of the last record folded into the snapshot.
    pub snapshot_seq: u64,
    /// The size of the snapshot file in bytes (0 if there is none): a
    /// writer compacts when the journal outgrows it, so that the cost of
    /// compaction per record stays constant as the state grows.
    pub snapshot_bytes: u64,
}

impl Tail {
    /// The tail of an empty journal of epoch `epoch` after a snapshot
    /// through `snapshot_seq`, `snapshot_bytes` long: what a reset writes.
    const fn empty(epoch: u64, snapshot_seq: u64, snapshot_bytes: u64) -> Tail {
        Tail {
            epoch,
            end: HEADER_LEN as u64,
            next_seq: snapshot_seq + 1,
            snapshot_seq,
            snapshot_bytes,
        }
    }
}

/// One step of a replay, in order: the snapshot (if there is one), then
/// every record after it.
#[derive(Debug)]
pub enum Entry<'a> {
    /// The snapshot: the JSON `state` member of `NAME`, which holds every
    /// record up to `seq`.
    Snapshot {
        /// The last sequence number folded into the snapshot.
        seq: u64,
        /// The state, as indented JSON.
        state: &'a [u8],
    },
    /// A record after the snapshot.
    Record {
        /// Its sequence number.
        seq: u64,
        /// Offset of its header in the journal file.
        offset: u64,
        /// Its payload (compact JSON when written by [`crate::JournalStore`]).
        payload: &'a [u8],
        /// Its index among the records written since the last completed
        /// flush: 0 starts what one flush made durable (an append, a
        /// batch), so a reader can tell versions apart.
        index: u64,
    },
}

/// What a replay found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Where the journal ends, for a writer.
    pub tail: Tail,
    /// Records replayed after the snapshot.
    pub records: u64,
    /// Offset of a torn record at the end of the journal, if any (the
    /// reader ignored it; a writer cut it off).
    pub torn_at: Option<u64>,
}

/// The visitor of a replay: gets each [`Entry`] and the unused rest of the
/// buffer (scratch space for unescaping strings while decoding). An error
/// stops the replay and is returned as [`LoadError::Corrupt`] or
/// [`LoadError::TooLarge`].
pub type Visitor<'v> = dyn FnMut(Entry<'_>, &mut [u8]) -> Result<(), VisitError> + 'v;

/// Why a replay's visitor stopped it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VisitError {
    /// The entry is not what the visitor reads: the file is corrupt.
    Corrupt(Corrupt),
    /// The entry is valid but holds what this library does not support
    /// (JSON nested too deep, written by another tool): not corrupt.
    Unsupported {
        /// The file.
        file: FileName,
        /// Where the unsupported part starts.
        offset: u64,
        /// What is not supported.
        what: crate::error::Unsupported,
    },
    /// The entry does not fit the scratch space: give a larger buffer.
    TooLarge {
        /// The file.
        file: FileName,
        /// The entry's size in bytes (an upper bound of what it needs).
        size: u64,
        /// The scratch space's size in bytes.
        capacity: usize,
    },
}

impl From<Corrupt> for VisitError {
    fn from(c: Corrupt) -> Self {
        VisitError::Corrupt(c)
    }
}

impl<E> From<VisitError> for LoadError<E> {
    fn from(e: VisitError) -> Self {
        match e {
            VisitError::Corrupt(c) => LoadError::Corrupt(c),
            VisitError::Unsupported { file, offset, what } => {
                LoadError::Unsupported { file, offset, what }
            }
            VisitError::TooLarge {
                file,
                size,
                capacity,
            } => LoadError::TooLarge {
                file,
                size,
                capacity,
            },
        }
    }
}

/// Header flag (bytes 10–11): the snapshot `NAME` is a plain document —
/// the state itself as of record `base - 1`, not wrapped in `{"seq": S,
/// "state": ...}` — unless it parses as that wrapper (then a compaction
/// has written it and not yet reset the journal). Set by [`Journal::convert`],
/// cleared by the first compaction.
pub const FLAG_PLAIN: u16 = 1;

/// The largest sequence number a journal continues from. A snapshot or a
/// header beyond it is corrupt: appends one at a time never get there, and
/// every `+ 1` below it is safe.
pub const MAX_SEQ: u64 = 1 << 62;

/// The journal file header for records starting at `base`.
pub fn encode_header(base: u64, epoch: u64) -> [u8; HEADER_LEN] {
    encode_header_flags(base, epoch, 0)
}

/// The journal file header for records starting at `base`, with `flags`
/// ([`FLAG_PLAIN`]).
pub fn encode_header_flags(base: u64, epoch: u64, flags: u16) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    put(&mut h, 0, &MAGIC);
    put(&mut h, 8, &VERSION.to_le_bytes());
    put(&mut h, 10, &flags.to_le_bytes());
    put(&mut h, 12, &base.to_le_bytes());
    put(&mut h, 20, &epoch.to_le_bytes());
    let crc = crc32c(h.get(..28).unwrap_or_default());
    put(&mut h, 28, &crc.to_le_bytes());
    h
}

/// The header of a record with sequence number `seq` and `payload`, the
/// first (or only) record of its batch.
pub fn encode_record_header(seq: u64, payload: &[u8]) -> [u8; RECORD_HEADER_LEN] {
    encode_batch_record_header(seq, 0, payload)
}

/// The header of the record at `index` in a batch written with one flush:
/// bytes 0–3 hold the payload length in the low 24 bits and the index
/// (capped at 255) in the high 8, so that a reader can tell a torn record
/// of the last, unacknowledged batch from damage (`docs/design.md` §6,
/// "Torn tail").
pub fn encode_batch_record_header(
    seq: u64,
    index: usize,
    payload: &[u8],
) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX) & 0x00ff_ffff;
    let index = u32::try_from(index.min(255)).unwrap_or(255);
    put(&mut h, 0, &(len | (index << 24)).to_le_bytes());
    put(&mut h, 4, &seq.to_le_bytes());
    put(&mut h, 12, &crc32c(payload).to_le_bytes());
    let crc = crc32c(h.get(..16).unwrap_or_default());
    put(&mut h, 16, &crc.to_le_bytes());
    h
}

/// A record header whose own CRC holds: (payload length, seq, payload
/// CRC, index in its batch).
fn decode_record_header(h: &[u8]) -> Option<(usize, u64, u32, u64)> {
    if h.len() < RECORD_HEADER_LEN || crc32c(h.get(..16)?) != u32_le(h, 16) {
        return None;
    }
    let word = u32_le(h, 0);
    let len = (word & 0x00ff_ffff) as usize;
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    Some((len, u64_le(h, 4), u32_le(h, 12), u64::from(word >> 24)))
}

/// A journaled document: the snapshot `NAME` and the log `NAME.journal`.
///
/// Everything but [`Journal::replay`] must run under `NAME`'s writers' lock
/// ([`crate::lock::lock`]); [`crate::JournalStore`] does that for you.
#[derive(Debug, Clone)]
pub struct Journal<'a> {
    name: &'a str,
    mode: Mode,
    journal: FileName,
}

/// How the scan of the records ended.
struct Scanned {
    end: u64,
    next_seq: u64,
    records: u64,
    torn_at: Option<u64>,
}

impl<'a> Journal<'a> {
    /// The journal of `name`, whose files get permissions `mode`.
    pub fn new(name: &'a str, mode: Mode) -> Result<Self, NameError> {
        name::validate(name)?;
        Ok(Journal {
            name,
            mode,
            journal: name::with_suffix(name, SUFFIX),
        })
    }

    /// The snapshot's name, `NAME`.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The journal file's name, `NAME.journal`.
    pub fn journal_name(&self) -> &str {
        &self.journal
    }

    /// The permissions of both files.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Read the snapshot and every record after it, lock-free, changing
    /// nothing on disk. A torn record at the end is ignored (it was never
    /// acknowledged). If a compaction replaced the files between the reads
    /// of the snapshot and the journal, the replay starts over (the visitor
    /// then sees the snapshot again: reset your state on
    /// [`Entry::Snapshot`]).
    ///
    /// `buf` must hold the snapshot file and, separately, the largest record.
    pub fn replay<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        visit: &mut Visitor<'_>,
    ) -> Result<Replay, LoadError<D::Error>> {
        let mut last = None;
        for _ in 0..READ_ATTEMPTS {
            // A compaction between the reads of the snapshot and of the
            // journal shows as a sequence gap, or as a snapshot the new
            // journal does not describe: read again. Real damage stays
            // and is returned after the last attempt.
            match self.read_all(dir, buf, visit).map(|(replay, _)| replay) {
                Err(LoadError::Corrupt(c)) => {
                    last = Some(c);
                }
                other => return other,
            }
        }
        Err(last.map_or(LoadError::LogicBug("replay retries"), LoadError::Corrupt))
    }

    /// Under the writers' lock: bring the files to a clean state and replay
    /// them. Cuts off a torn tail (durably), finishes a compaction that a
    /// power cut interrupted, and creates the journal if it is missing
    /// (with Replace, so it appears whole). Returns the [`Tail`] to append
    /// at.
    pub fn recover<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        visit: &mut Visitor<'_>,
    ) -> Result<Replay, RecoverError<D::Error>> {
        Recover::<D>::new(self, buf, visit).run(dir)
    }

    /// Under the writers' lock: read the records appended since `tail` (by
    /// other processes) through `visit`, and move `tail` past them.
    /// Returns `Ok(false)` if the journal was replaced since (a compaction
    /// by someone else): the caller must start over with
    /// [`Journal::recover`] and a fresh state.
    pub fn catch_up<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        tail: &mut Tail,
        visit: &mut Visitor<'_>,
    ) -> Result<bool, RecoverError<D::Error>> {
        let jname = self.journal.as_str();
        let Some(mut file) = crate::fs::open_in_place(dir, jname, self.mode)? else {
            return Ok(false);
        };
        let (_, epoch, _) = read_header(&mut file, jname)?;
        if epoch != tail.epoch {
            return Ok(false);
        }
        let scanned = scan(
            &mut file,
            jname,
            tail.end,
            tail.next_seq,
            tail.snapshot_seq,
            buf,
            visit,
        )?;
        if let Some(at) = scanned.torn_at {
            cut_tail(&mut file, jname, at)?;
        }
        tail.end = scanned.end;
        tail.next_seq = scanned.next_seq;
        Ok(true)
    }

    /// Under the writers' lock: append `payloads` as consecutive records
    /// with one flush barrier, and move `tail` past them. Returns the
    /// sequence number of the first.
    ///
    /// Fails with [`CommitError::Stale`] (having written nothing) if the
    /// journal is not where `tail` says it ends: call
    /// [`Journal::catch_up`] and retry.
    pub fn append<D: Dir>(
        &self,
        dir: &mut D,
        tail: &mut Tail,
        payloads: &[&[u8]],
    ) -> Result<u64, CommitError<D::Error>> {
        let first = tail.next_seq;
        *tail = Append::<D>::new(self, *tail, payloads)?.run(dir)?;
        Ok(first)
    }

    /// Under the writers' lock, after folding every record up to
    /// `tail.next_seq - 1` into a state: write that state (the JSON in
    /// `buf[..state_len]`) as the new snapshot, then start a new, empty
    /// journal. Both with Replace; a power cut between them is harmless
    /// (the records left in the old journal are at or below the snapshot's
    /// sequence number and are skipped).
    pub fn compact<D: Dir>(
        &self,
        dir: &mut D,
        tail: &mut Tail,
        buf: &mut [u8],
        state_len: usize,
    ) -> Result<(), CommitError<D::Error>> {
        let epoch = dir
            .unique_token()
            .map_err(|e| IoError::new(Op::Token, &self.journal, e))?;
        *tail = Compact::<D>::new(self, *tail, buf, state_len, epoch)?.run(dir)?;
        Ok(())
    }

    /// Replace the journal by an empty one whose first record will be
    /// `snapshot_seq + 1`.
    fn reset<D: Dir>(
        &self,
        dir: &mut D,
        snapshot_seq: u64,
        snapshot_bytes: u64,
    ) -> Result<Tail, CommitError<D::Error>> {
        let epoch = dir
            .unique_token()
            .map_err(|e| IoError::new(Op::Token, &self.journal, e))?;
        let header = encode_header(snapshot_seq + 1, epoch);
        replace::Replace::<D>::sidecar(&self.journal, &header, self.mode)?.run(dir)?;
        Ok(Tail::empty(epoch, snapshot_seq, snapshot_bytes))
    }

    /// Snapshot, then journal (read-only), and what a writer must repair.
    fn read_all<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        visit: &mut Visitor<'_>,
    ) -> Result<(Replay, Repair), LoadError<D::Error>> {
        let document = crate::load::read(dir, self.name, buf)?;
        let jname = self.journal.as_str();
        let opened = dir
            .open_read(jname)
            .map_err(|e| IoError::new(Op::Open, jname, e))?;
        let Some(mut file) = opened else {
            let (seq, snapshot_bytes) = match document {
                None => (0, 0),
                Some(len) => (self.visit_snapshot(buf, len, None, visit)?, len as u64),
            };
            let tail = Tail {
                epoch: 0,
                end: 0,
                next_seq: seq + 1,
                snapshot_seq: seq,
                snapshot_bytes,
            };
            let replay = Replay {
                tail,
                records: 0,
                torn_at: None,
            };
            return Ok((replay, Repair::Reset));
        };
        let (base, epoch, flags) = read_header(&mut file, jname)?;
        let plain = flags & FLAG_PLAIN != 0;
        let (snapshot_seq, snapshot_bytes) = match document {
            Some(len) => {
                let plain_seq = plain.then(|| base - 1);
                (self.visit_snapshot(buf, len, plain_seq, visit)?, len as u64)
            }
            None if plain => {
                return Err(Corrupt::new(
                    jname,
                    10,
                    CorruptKind::Shape(
                        "the journal was converted from a plain document, and that document is missing",
                    ),
                )
                .into());
            }
            None => (0, 0),
        };
        if base > snapshot_seq + 1 {
            return Err(Corrupt::new(
                jname,
                12,
                CorruptKind::SequenceGap {
                    expected: snapshot_seq + 1,
                    found: base,
                },
            )
            .into());
        }
        let scanned = scan(
            &mut file,
            jname,
            HEADER_LEN as u64,
            base,
            snapshot_seq,
            buf,
            visit,
        )?;
        let tail = Tail {
            epoch,
            end: scanned.end,
            next_seq: scanned.next_seq,
            snapshot_seq,
            snapshot_bytes,
        };
        let repair = if base <= snapshot_seq && scanned.next_seq <= snapshot_seq + 1 {
            // Every record is already in the snapshot: a compaction was
            // cut short after writing it. Finish it, so that the next
            // record is numbered after the snapshot.
            Repair::Reset
        } else {
            scanned.torn_at.map_or(Repair::Nothing, Repair::Cut)
        };
        let replay = Replay {
            tail,
            records: scanned.records,
            torn_at: scanned.torn_at,
        };
        Ok((replay, repair))
    }

    /// Pass the snapshot in `buf[..len]` to `visit`; return its sequence
    /// number. With `plain_seq` (the journal's [`FLAG_PLAIN`]), a document
    /// that is not a snapshot wrapper is the state itself at that number.
    fn visit_snapshot(
        &self,
        buf: &mut [u8],
        len: usize,
        plain_seq: Option<u64>,
        visit: &mut Visitor<'_>,
    ) -> Result<u64, VisitError> {
        let (text, scratch) = buf.split_at_mut_checked(len).ok_or(Corrupt::new(
            self.name,
            0,
            CorruptKind::Shape("snapshot length"),
        ))?;
        if let Err(e) = json::validate(text)
            && let Some(what) = crate::error::Unsupported::from_json(e.kind)
        {
            return Err(VisitError::Unsupported {
                file: name::owned(self.name),
                offset: e.offset as u64,
                what,
            });
        }
        let (seq, state) = match (parse_snapshot(self.name, text), plain_seq) {
            (Ok(parsed), _) => parsed,
            (Err(_), Some(seq)) => {
                crate::load::check_json(self.name, text)?;
                (seq, 0..len)
            }
            (Err(e), None) => return Err(e.into()),
        };
        visit(
            Entry::Snapshot {
                seq,
                state: text.get(state).unwrap_or_default(),
            },
            scratch,
        )?;
        Ok(seq)
    }

    /// Under the writers' lock: turn the plain document `NAME` (a Replace
    /// state: no journal yet) into a journaled state whose snapshot is that
    /// document, unchanged, and whose journal is empty. One Replace commit
    /// of `NAME.journal` with [`FLAG_PLAIN`] is the whole conversion, so a
    /// power cut leaves the plain document or the journaled state with the
    /// same content — nothing in between. `NAME` is rewritten only by the
    /// first compaction.
    ///
    /// A `NAME` that already has the snapshot's shape (`{"seq": S, "state":
    /// ...}`, left by an older version whose conversion was cut short) is
    /// adopted as a snapshot at `S`. `buf` must hold `NAME`. Returns what
    /// was done.
    pub fn convert<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<Conversion, RecoverError<D::Error>> {
        let jname = self.journal.as_str();
        if dir
            .exists(jname)
            .map_err(|e| IoError::new(Op::Open, jname, e))?
        {
            return Ok(Conversion::AlreadyJournal);
        }
        let Some(len) = crate::load::read(dir, self.name, buf)? else {
            return Ok(Conversion::NoDocument);
        };
        let text = buf.get(..len).unwrap_or_default();
        crate::load::check_json(self.name, text)?;
        if let Ok((seq, _)) = parse_snapshot(self.name, text) {
            self.reset(dir, seq, len as u64)
                .map_err(commit_to_recover)?;
            return Ok(Conversion::Adopted { seq });
        }
        let epoch = dir
            .unique_token()
            .map_err(|e| IoError::new(Op::Token, jname, e))?;
        let header = encode_header_flags(1, epoch, FLAG_PLAIN);
        replace::Replace::<D>::sidecar(jname, &header, self.mode)
            .and_then(|r| r.run(dir))
            .map_err(commit_to_recover)?;
        Ok(Conversion::Converted)
    }
}

/// What [`Journal::convert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conversion {
    /// The plain document is now the snapshot of an empty journal.
    Converted,
    /// `NAME` already had the snapshot's shape; a journal starting after
    /// `seq` was created.
    Adopted {
        /// The snapshot's sequence number.
        seq: u64,
    },
    /// The state already had a journal; nothing was done.
    AlreadyJournal,
    /// There is no `NAME`; nothing was done.
    NoDocument,
}

fn commit_to_recover<E>(e: CommitError<E>) -> RecoverError<E> {
    match e {
        CommitError::Io(e) => RecoverError::Io(e),
        CommitError::Name { file, error } => RecoverError::Name { file, error },
        _ => RecoverError::LogicBug("journal creation failed"),
    }
}

/// Cut the journal at `at` and make the cut durable.
fn cut_tail<F: File>(file: &mut F, jname: &str, at: u64) -> Result<(), RecoverError<F::Error>> {
    file.set_len(at)
        .map_err(|e| IoError::new(Op::Truncate, jname, e).at(at))?;
    file.sync_data()
        .map_err(|e| IoError::new(Op::SyncFile, jname, e))?;
    Ok(())
}

/// Check the journal header; return (base, epoch).
/// Open the journal for writing, positioned at its end, after checking
/// that it ends where `tail` says (same epoch, same length); else
/// [`CommitError::Stale`], having written nothing.
fn open_at_tail<D: Dir>(
    dir: &mut D,
    jname: &str,
    mode: Mode,
    tail: &Tail,
) -> Result<D::File, CommitError<D::Error>> {
    let stale = || CommitError::Stale {
        file: name::owned(jname),
    };
    // Checked (ours, one link) and narrowed to this call's mode before a
    // record is written.
    let Some(mut file) = crate::fs::open_in_place(dir, jname, mode)? else {
        return Err(stale());
    };
    let (_, epoch, _) = read_header(&mut file, jname).map_err(|e| match e {
        LoadError::Io(e) => CommitError::Io(e),
        _ => stale(),
    })?;
    let end = file
        .seek(SeekFrom::End(0))
        .map_err(|e| IoError::new(Op::Seek, jname, e))?;
    if epoch != tail.epoch || end != tail.end {
        return Err(stale());
    }
    Ok(file)
}

/// Check the header of a journal file just opened (positioned at 0);
/// return (base, epoch, flags).
fn read_header<F: File>(file: &mut F, jname: &str) -> Result<(u64, u64, u16), LoadError<F::Error>> {
    let mut h = [0u8; HEADER_LEN];
    let got = read_full(file, &mut h).map_err(|e| IoError::new(Op::Read, jname, e).at(0))?;
    if got == 0 {
        return Err(Corrupt::new(jname, 0, CorruptKind::Empty).into());
    }
    if got < HEADER_LEN {
        return Err(Corrupt::new(jname, got as u64, CorruptKind::BadLength).into());
    }
    if h.get(..8) != Some(&MAGIC[..]) {
        return Err(Corrupt::new(jname, 0, CorruptKind::BadMagic).into());
    }
    let version = u32_le(&h, 8) as u16;
    if version != VERSION && version != 1 {
        return Err(Corrupt::new(jname, 8, CorruptKind::UnsupportedVersion(version)).into());
    }
    if crc32c(h.get(..28).unwrap_or_default()) != u32_le(&h, 28) {
        return Err(Corrupt::new(jname, 28, CorruptKind::BadChecksum).into());
    }
    let flags = (u32_le(&h, 8) >> 16) as u16;
    if flags & !FLAG_PLAIN != 0 {
        return Err(Corrupt::new(
            jname,
            10,
            CorruptKind::Shape("unknown journal header flags"),
        )
        .into());
    }
    let base = u64_le(&h, 12);
    if base == 0 || base > MAX_SEQ {
        return Err(Corrupt::new(
            jname,
            12,
            CorruptKind::Shape("the first sequence number is 0 or too large to continue"),
        )
        .into());
    }
    Ok((base, u64_le(&h, 20), flags))
}

/// Read records from `pos` on, expecting sequence number `expected`, and
/// pass those above `snapshot_seq` to `visit`.
fn scan<F: File>(
    file: &mut F,
    jname: &str,
    mut pos: u64,
    mut expected: u64,
    snapshot_seq: u64,
    buf: &mut [u8],
    visit: &mut Visitor<'_>,
) -> Result<Scanned, LoadError<F::Error>> {
    let mut records = 0;
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(|e| IoError::new(Op::Seek, jname, e))?;
    file.seek(SeekFrom::Start(pos))
        .map_err(|e| IoError::new(Op::Seek, jname, e))?;
    loop {
        if pos >= size {
            return Ok(Scanned {
                end: pos,
                next_seq: expected,
                records,
                torn_at: None,
            });
        }
        let mut h = [0u8; RECORD_HEADER_LEN];
        let got = read_full(file, &mut h).map_err(|e| IoError::new(Op::Read, jname, e).at(pos))?;
        let header = (got == RECORD_HEADER_LEN)
            .then(|| decode_record_header(&h))
            .flatten();
        let fits = header.is_some_and(|(len, ..)| pos + (RECORD_HEADER_LEN + len) as u64 <= size);
        let (len, seq, payload_crc, index) = match header {
            Some(fields) if fits => fields,
            _ => return torn_or_damaged(file, jname, pos, size, expected, buf, records),
        };
        let capacity = buf.len();
        let Some(payload) = buf.get_mut(..len) else {
            return Err(LoadError::TooLarge {
                file: name::owned(jname),
                size: len as u64,
                capacity,
            });
        };
        let body = pos + RECORD_HEADER_LEN as u64;
        let got =
            read_full(file, payload).map_err(|e| IoError::new(Op::Read, jname, e).at(body))?;
        if got != len || crc32c(payload) != payload_crc {
            return torn_or_damaged(file, jname, pos, size, expected, buf, records);
        }
        if seq != expected {
            return Err(Corrupt::new(
                jname,
                pos + 4,
                CorruptKind::SequenceGap {
                    expected,
                    found: seq,
                },
            )
            .into());
        }
        if seq > snapshot_seq {
            let (payload, scratch) = buf.split_at_mut(len);
            visit(
                Entry::Record {
                    seq,
                    payload,
                    offset: pos,
                    index,
                },
                scratch,
            )?;
            records += 1;
        }
        pos = body + len as u64;
        expected += 1;
    }
}

/// The record at `pos` is bad. If any valid record header follows, the
/// journal is damaged there; if nothing does, it is the torn tail of an
/// append that a power cut interrupted.
fn torn_or_damaged<F: File>(
    file: &mut F,
    jname: &str,
    pos: u64,
    size: u64,
    expected: u64,
    buf: &mut [u8],
    records: u64,
) -> Result<Scanned, LoadError<F::Error>> {
    let window = buf.len().max(RECORD_HEADER_LEN);
    let mut stack = [0u8; 256];
    let buf: &mut [u8] = if buf.len() >= RECORD_HEADER_LEN {
        buf
    } else {
        &mut stack
    };
    let mut at = pos + 1;
    while at + RECORD_HEADER_LEN as u64 <= size {
        file.seek(SeekFrom::Start(at))
            .map_err(|e| IoError::new(Op::Seek, jname, e))?;
        let want = buf.get_mut(..window.min(buf.len())).unwrap_or_default();
        let got = read_full(file, want).map_err(|e| IoError::new(Op::Read, jname, e).at(at))?;
        let data = want.get(..got).unwrap_or_default();
        for candidate in data.windows(RECORD_HEADER_LEN) {
            // A whole record after the bad one is damage — unless it is
            // of the same batch as the bad one (its batch began at or
            // before `expected`): the batch was written with one flush at
            // its end, so a power cut may have kept any of its records and
            // torn others, and none of them was acknowledged.
            if let Some((_, seq, _, index)) = decode_record_header(candidate)
                && seq >= expected
                && seq.saturating_sub(index) > expected
            {
                return Err(Corrupt::new(jname, pos, CorruptKind::BadChecksum).into());
            }
        }
        if got < RECORD_HEADER_LEN {
            break;
        }
        at += (got - RECORD_HEADER_LEN + 1) as u64;
    }
    Ok(Scanned {
        end: pos,
        next_seq: expected,
        records,
        torn_at: Some(pos),
    })
}

/// Parse the snapshot `{"seq": S, "state": ...}`: (S, range of the state).
pub fn parse_snapshot(file: &str, text: &[u8]) -> Result<(u64, Range<usize>), Corrupt> {
    crate::load::check_json(file, text)?;
    let mut seq = None;
    let mut state = None;
    let mut bad_seq = None;
    json::for_each_member(text, |key, value| match key {
        b"seq" => match parse_u64(text.get(value.clone()).unwrap_or_default()) {
            Some(n) => seq = Some(n),
            None => bad_seq = Some(value.start),
        },
        b"state" => state = Some(value),
        _ => {}
    })
    .map_err(|e| Corrupt::new(file, e.offset as u64, CorruptKind::Json(e.kind)))?;
    if let Some(at) = bad_seq {
        return Err(Corrupt::new(
            file,
            at as u64,
            CorruptKind::Shape("\"seq\" is not a whole number"),
        ));
    }
    match (seq, state) {
        (Some(seq), Some(_)) if seq >= MAX_SEQ => Err(Corrupt::new(
            file,
            0,
            CorruptKind::Shape("\"seq\" is too large to continue"),
        )),
        (Some(seq), Some(state)) => Ok((seq, state)),
        _ => Err(Corrupt::new(
            file,
            0,
            CorruptKind::Shape("a journal snapshot is {\"seq\": N, \"state\": ...}"),
        )),
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// Turn the JSON state in `buf[..state_len]` into the indented snapshot
/// `{"seq": seq, "state": ...}` in `buf[..n]`; return `n`.
pub fn wrap_snapshot<E>(
    file: &str,
    buf: &mut [u8],
    state_len: usize,
    seq: u64,
) -> Result<usize, CommitError<E>> {
    let capacity = buf.len();
    let too_large = |size| CommitError::TooLarge {
        file: name::owned(file),
        size,
        capacity,
    };
    let compact =
        json::compact_in_place(buf, state_len).map_err(|error| CommitError::InvalidDocument {
            file: name::owned(file),
            error,
        })?;
    let mut prefix = heapless::String::<48>::new();
    fmt::write(&mut prefix, format_args!("{{\"seq\":{seq},\"state\":"))
        .map_err(|_| CommitError::LogicBug("snapshot prefix"))?;
    let total = prefix.len() + compact + 1;
    if total > capacity {
        return Err(too_large(total));
    }
    buf.copy_within(..compact, prefix.len());
    put(buf, 0, prefix.as_bytes());
    put(buf, prefix.len() + compact, b"}");
    json::pretty_from_front(buf, total).map_err(|e| match e {
        json::PrettyError::BufferTooSmall { needed, .. } => too_large(needed),
        json::PrettyError::Json(error) => CommitError::InvalidDocument {
            file: name::owned(file),
            error,
        },
    })
}

/// What recovery must do after a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repair {
    /// The files are clean.
    Nothing,
    /// Cut a torn tail at this offset.
    Cut(u64),
    /// Replace the journal by an empty one after the snapshot: it is
    /// missing, or a compaction was cut after writing the snapshot.
    Reset,
}

/// Where a [`Recover`] stands. The names are the words of `docs/design.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoverState {
    /// Next: replay the snapshot and the journal (reads only).
    Replay,
    /// Next: cut the torn tail off.
    CutTail,
    /// Next: flush the cut.
    SyncTail,
    /// Replacing the journal by an empty one after the snapshot (a
    /// [`replace::Replace`], one step of it per step).
    ResetJournal,
    /// The files are clean.
    Done,
    /// A step failed.
    Failed,
}

impl fmt::Display for RecoverState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecoverState::Replay => "replay",
            RecoverState::CutTail => "cut-tail",
            RecoverState::SyncTail => "sync-tail",
            RecoverState::ResetJournal => "reset-journal",
            RecoverState::Done => "done",
            RecoverState::Failed => "failed",
        })
    }
}

/// A writer's recovery of a journal, under the lock, as a state machine:
/// replay (every entry through the visitor), then, if needed, cut a torn
/// tail (truncate, flush) or finish an interrupted compaction / create a
/// missing journal (a Replace commit of an empty journal, stepped). A cut
/// at any step leaves the files as a recovery could find them again.
pub struct Recover<'a, D: Dir> {
    journal: &'a Journal<'a>,
    buf: &'a mut [u8],
    visit: &'a mut Visitor<'a>,
    state: RecoverState,
    replay: Option<Replay>,
    cut_at: u64,
    file: Option<D::File>,
    inner: Option<replace::Replace<'a, D>>,
    epoch: u64,
}

impl<'a, D: Dir> Recover<'a, D> {
    /// Prepare the recovery of `journal`; `buf` must hold the snapshot file
    /// and, apart, the largest record. Touches nothing.
    pub fn new(journal: &'a Journal<'a>, buf: &'a mut [u8], visit: &'a mut Visitor<'a>) -> Self {
        Recover {
            journal,
            buf,
            visit,
            state: RecoverState::Replay,
            replay: None,
            cut_at: 0,
            file: None,
            inner: None,
            epoch: 0,
        }
    }

    /// Perform one step.
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, RecoverError<D::Error>> {
        crate::machine::step(self, dir)
    }

    /// Drive the recovery to the end; return what the replay found, with
    /// the tail to append at.
    pub fn run(mut self, dir: &mut D) -> Result<Replay, RecoverError<D::Error>> {
        crate::machine::run(&mut self, dir)?;
        self.replay
            .ok_or(RecoverError::LogicBug("recovery without a replay"))
    }
}

impl<D: Dir> crate::machine::Machine<D> for Recover<'_, D> {
    type Error = RecoverError<D::Error>;
    crate::machine::basics!(RecoverState, "recover", |m| m.journal.name);

    fn transition(&mut self, dir: &mut D) -> Result<RecoverState, RecoverError<D::Error>> {
        let jname = self.journal.journal.as_str();
        match self.state {
            RecoverState::Replay => {
                let (replay, repair) = self.journal.read_all(dir, self.buf, self.visit)?;
                self.replay = Some(replay);
                Ok(match repair {
                    Repair::Nothing => RecoverState::Done,
                    Repair::Cut(at) => {
                        self.cut_at = at;
                        RecoverState::CutTail
                    }
                    Repair::Reset => {
                        let seq = replay.tail.snapshot_seq;
                        self.epoch = dir
                            .unique_token()
                            .map_err(|e| IoError::new(Op::Token, jname, e))?;
                        let header = encode_header(seq + 1, self.epoch);
                        self.inner = Some(
                            replace::Replace::sidecar_header(
                                &self.journal.journal,
                                header,
                                self.journal.mode,
                            )
                            .map_err(commit_to_recover)?,
                        );
                        RecoverState::ResetJournal
                    }
                })
            }
            RecoverState::CutTail => {
                let at = self.cut_at;
                let mut file = crate::fs::open_in_place(dir, jname, self.journal.mode)?.ok_or(
                    RecoverError::LogicBug("the journal vanished under the lock"),
                )?;
                file.set_len(at)
                    .map_err(|e| IoError::new(Op::Truncate, jname, e).at(at))?;
                self.file = Some(file);
                Ok(RecoverState::SyncTail)
            }
            RecoverState::SyncTail => {
                let file = self
                    .file
                    .as_mut()
                    .ok_or(RecoverError::LogicBug("no journal to flush"))?;
                file.sync_data()
                    .map_err(|e| IoError::new(Op::SyncFile, jname, e))?;
                self.file = None;
                Ok(RecoverState::Done)
            }
            RecoverState::ResetJournal => {
                let inner = self
                    .inner
                    .as_mut()
                    .ok_or(RecoverError::LogicBug("reset without its commit"))?;
                match inner.step(dir).map_err(commit_to_recover)? {
                    Progress::Pending => Ok(RecoverState::ResetJournal),
                    Progress::Done => {
                        self.inner = None;
                        if let Some(r) = self.replay.as_mut() {
                            let t = r.tail;
                            r.tail = Tail::empty(self.epoch, t.snapshot_seq, t.snapshot_bytes);
                        }
                        Ok(RecoverState::Done)
                    }
                }
            }
            RecoverState::Done | RecoverState::Failed => {
                Err(RecoverError::LogicBug("step after the end"))
            }
        }
    }

    fn abandon(&mut self, _dir: &mut D) {
        self.inner = None;
        self.file = None;
    }
}

/// Where a [`Compact`] stands. The names are the words of `docs/design.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactState {
    /// Next: check that the journal still ends at the writer's tail (a
    /// snapshot folded from a stale view would drop records).
    CheckTail,
    /// Replacing `NAME` with the snapshot (a [`replace::Replace`], one
    /// step of it per step).
    WriteSnapshot,
    /// Replacing `NAME.journal` with an empty journal after the snapshot
    /// (a [`replace::Replace`]).
    ResetJournal,
    /// The compaction is durable.
    Done,
    /// A step failed.
    Failed,
}

impl fmt::Display for CompactState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompactState::CheckTail => "check-tail",
            CompactState::WriteSnapshot => "write-snapshot",
            CompactState::ResetJournal => "reset-journal",
            CompactState::Done => "done",
            CompactState::Failed => "failed",
        })
    }
}

/// One compaction, as a state machine: the snapshot `{"seq": S, "state":
/// ...}` replaces `NAME`, then an empty journal starting at `S + 1`
/// replaces `NAME.journal` — each a Replace commit, stepped one operation
/// at a time, so a board or the crash explorer can cut between any two.
/// A cut between the two commits leaves a snapshot that already holds
/// every record of the old journal: replay skips them by sequence number,
/// and recovery finishes the reset.
pub struct Compact<'a, D: Dir> {
    journal: &'a Journal<'a>,
    state: CompactState,
    start: Tail,
    snapshot: &'a [u8],
    epoch: u64,
    inner: Option<replace::Replace<'a, D>>,
}

impl<'a, D: Dir> Compact<'a, D> {
    /// Prepare the compaction of `journal` at `tail`, whose folded state is
    /// the JSON in `buf[..state_len]`; the new journal gets the unique
    /// token `epoch`. Wraps and indents the snapshot in `buf` (which must
    /// hold it, else [`CommitError::TooLarge`]); touches nothing on disk.
    pub fn new(
        journal: &'a Journal<'a>,
        tail: Tail,
        buf: &'a mut [u8],
        state_len: usize,
        epoch: u64,
    ) -> Result<Self, CommitError<D::Error>> {
        let seq = tail.next_seq.saturating_sub(1);
        let len = wrap_snapshot(journal.name, buf, state_len, seq)?;
        let snapshot: &'a [u8] = buf.get(..len).unwrap_or_default();
        Ok(Compact {
            journal,
            state: CompactState::CheckTail,
            start: tail,
            snapshot,
            epoch,
            inner: None,
        })
    }

    /// Perform one step.
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, CommitError<D::Error>> {
        crate::machine::step(self, dir)
    }

    /// Drive the compaction to the end; return the new tail.
    pub fn run(mut self, dir: &mut D) -> Result<Tail, CommitError<D::Error>> {
        crate::machine::run(&mut self, dir)?;
        let seq = self.start.next_seq.saturating_sub(1);
        Ok(Tail::empty(self.epoch, seq, self.snapshot.len() as u64))
    }

    /// Step the inner Replace commit; `next` once it is done.
    fn step_inner(
        &mut self,
        dir: &mut D,
        next: CompactState,
    ) -> Result<CompactState, CommitError<D::Error>> {
        let inner = self
            .inner
            .as_mut()
            .ok_or(CommitError::LogicBug("compaction without its commit"))?;
        match inner.step(dir)? {
            Progress::Pending => Ok(self.state),
            Progress::Done => {
                self.inner = None;
                Ok(next)
            }
        }
    }
}

impl<D: Dir> crate::machine::Machine<D> for Compact<'_, D> {
    type Error = CommitError<D::Error>;
    crate::machine::basics!(CompactState, "compact", |m| m.journal.name);

    fn transition(&mut self, dir: &mut D) -> Result<CompactState, CommitError<D::Error>> {
        match self.state {
            CompactState::CheckTail => {
                open_at_tail(dir, &self.journal.journal, self.journal.mode, &self.start)?;
                self.inner = Some(replace::Replace::new(
                    self.journal.name,
                    self.snapshot,
                    self.journal.mode,
                )?);
                Ok(CompactState::WriteSnapshot)
            }
            CompactState::WriteSnapshot => {
                let next = self.step_inner(dir, CompactState::ResetJournal)?;
                if next == CompactState::ResetJournal {
                    let seq = self.start.next_seq.saturating_sub(1);
                    self.inner = Some(replace::Replace::sidecar_header(
                        &self.journal.journal,
                        encode_header(seq + 1, self.epoch),
                        self.journal.mode,
                    )?);
                }
                Ok(next)
            }
            CompactState::ResetJournal => self.step_inner(dir, CompactState::Done),
            CompactState::Done | CompactState::Failed => {
                Err(CommitError::LogicBug("step after the end"))
            }
        }
    }

    fn abandon(&mut self, _dir: &mut D) {
        self.inner = None;
    }
}

/// Where an [`Append`] stands. The names are the words of `docs/design.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Next: open the journal and check that it ends where the tail says.
    Open,
    /// Next: write record `index` (header and payload); `written` bytes of
    /// it are written.
    WriteRecord {
        /// Index of the record in the batch.
        index: usize,
        /// Bytes of this record (header included) written so far.
        written: usize,
    },
    /// Next: flush the journal (the one barrier of the batch).
    SyncJournal,
    /// The batch is durable.
    Done,
    /// A step failed; the error was returned by that step.
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Open => f.write_str("open"),
            State::WriteRecord { index, written } => write!(f, "write-record({index}, {written})"),
            State::SyncJournal => f.write_str("sync-journal"),
            State::Done => f.write_str("done"),
            State::Failed => f.write_str("failed"),
        }
    }
}

/// One append of a batch of records, as a state machine.
pub struct Append<'a, D: Dir> {
    journal: FileName,
    mode: Mode,
    payloads: &'a [&'a [u8]],
    state: State,
    file: Option<D::File>,
    header: [u8; RECORD_HEADER_LEN],
    start: Tail,
    tail: Tail,
    /// The index of the first record among those written since the last
    /// completed flush.
    base: usize,
}

impl<'a, D: Dir> Append<'a, D> {
    /// Prepare an append of `payloads` to `journal` at `tail`. Each payload
    /// must be 1 to [`MAX_RECORD`] bytes.
    pub fn new(
        journal: &Journal<'_>,
        tail: Tail,
        payloads: &'a [&'a [u8]],
    ) -> Result<Self, CommitError<D::Error>> {
        for p in payloads {
            if p.is_empty() {
                return Err(CommitError::EmptyDocument {
                    file: name::owned(journal.journal_name()),
                });
            }
            if p.len() > MAX_RECORD {
                return Err(CommitError::TooLarge {
                    file: name::owned(journal.journal_name()),
                    size: p.len(),
                    capacity: MAX_RECORD,
                });
            }
        }
        Ok(Append {
            journal: name::owned(journal.journal_name()),
            mode: journal.mode,
            payloads,
            state: State::Open,
            file: None,
            header: [0; RECORD_HEADER_LEN],
            start: tail,
            tail,
            base: 0,
        })
    }

    /// Number the records from `base`: the records of batches written
    /// before this one and not yet flushed (pipelined group commit) come
    /// first, and a power cut may tear any of them and keep any of these,
    /// so recovery must see them all as one unflushed group. `base` plus
    /// the batch's length must not exceed [`MAX_UNFLUSHED`].
    pub fn after(mut self, base: usize) -> Result<Self, CommitError<D::Error>> {
        if base + self.payloads.len() > MAX_UNFLUSHED {
            return Err(CommitError::LogicBug(
                "more records between two flushes than their index can count",
            ));
        }
        self.base = base;
        Ok(self)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The tail after the records acknowledged so far.
    pub fn tail(&self) -> Tail {
        self.tail
    }

    /// Perform one step. After an error the machine is [`State::Failed`],
    /// and a partly written record has been cut off (best effort; the next
    /// writer cuts it off otherwise).
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, CommitError<D::Error>> {
        crate::machine::step(self, dir)
    }

    /// Drive the append to the end: the batch is durable on return.
    pub fn run(mut self, dir: &mut D) -> Result<Tail, CommitError<D::Error>> {
        crate::machine::run(&mut self, dir)?;
        Ok(self.tail)
    }

    /// Drive the append up to its flush and stop there: every record is
    /// written, none is durable yet, and the journal is left open in the
    /// returned [`Unsynced`], whose [`Unsynced::sync`] is the batch's one
    /// barrier. For pipelined group commit (`group::Pipeline`, feature
    /// `std`), which flushes one batch while it writes the next. A power cut
    /// before that flush returns may leave the batch whole, in part or not
    /// at all: a torn tail, which recovery cuts.
    pub fn write(mut self, dir: &mut D) -> Result<Unsynced<D::File>, CommitError<D::Error>> {
        while self.state != State::SyncJournal {
            if crate::machine::step(&mut self, dir)? == crate::machine::Progress::Done {
                return Err(CommitError::LogicBug("an append ended before its flush"));
            }
        }
        let file = self
            .file
            .take()
            .ok_or(CommitError::LogicBug("journal not open"))?;
        Ok(Unsynced {
            file,
            journal: self.journal,
            start: self.start,
            tail: self.tail,
        })
    }

    fn advance(&mut self, dir: &mut D) -> Result<State, CommitError<D::Error>> {
        let journal = self.journal.clone();
        let jname = journal.as_str();
        match self.state {
            State::Open => {
                let file = open_at_tail(dir, jname, self.mode, &self.start)?;
                self.file = Some(file);
                Ok(self.next_record(0))
            }
            State::WriteRecord { index, written } => {
                if written == 0
                    && let Some(next) = self.write_staged(index)?
                {
                    return Ok(next);
                }
                let payload = self
                    .payloads
                    .get(index)
                    .ok_or(CommitError::LogicBug("record index"))?;
                let at = self.tail.end;
                let header = self.header;
                let file = self
                    .file
                    .as_mut()
                    .ok_or(CommitError::LogicBug("journal not open"))?;
                let written = if written < RECORD_HEADER_LEN {
                    crate::machine::write_rest(file, jname, at, &header, written)?
                } else {
                    let body = at + RECORD_HEADER_LEN as u64;
                    let done = written - RECORD_HEADER_LEN;
                    RECORD_HEADER_LEN
                        + crate::machine::write_rest(file, jname, body, payload, done)?
                };
                if written < RECORD_HEADER_LEN + payload.len() {
                    return Ok(State::WriteRecord { index, written });
                }
                self.tail.end += written as u64;
                self.tail.next_seq += 1;
                Ok(self.next_record(index + 1))
            }
            State::SyncJournal => {
                let file = self
                    .file
                    .as_mut()
                    .ok_or(CommitError::LogicBug("journal not open"))?;
                file.sync_data()
                    .map_err(|e| IoError::new(Op::SyncFile, jname, e))?;
                self.file = None;
                Ok(State::Done)
            }
            State::Done | State::Failed => Err(CommitError::LogicBug("step after the end")),
        }
    }

    /// Write as many whole records from `index` on as fit in a small stack
    /// buffer, headers and payloads together, in one write: small records
    /// (sessions, hits) then cost one `write` each batch instead of two per
    /// record. `Ok(None)` if even the first record does not fit; it is then
    /// streamed header first.
    fn write_staged(&mut self, index: usize) -> Result<Option<State>, CommitError<D::Error>> {
        let mut stage = [0u8; STAGE];
        let mut len = 0;
        let mut count = 0;
        let mut seq = self.tail.next_seq;
        for payload in self.payloads.get(index..).unwrap_or_default() {
            let end = len + RECORD_HEADER_LEN + payload.len();
            if end > STAGE {
                break;
            }
            put(
                &mut stage,
                len,
                &encode_batch_record_header(seq, self.base + index + count, payload),
            );
            put(&mut stage, len + RECORD_HEADER_LEN, payload);
            len = end;
            count += 1;
            seq += 1;
        }
        if count == 0 {
            return Ok(None);
        }
        let jname = self.journal.as_str();
        let at = self.tail.end;
        let file = self
            .file
            .as_mut()
            .ok_or(CommitError::LogicBug("journal not open"))?;
        file.write_all(stage.get(..len).unwrap_or_default())
            .map_err(|e| IoError::new(Op::Write, jname, e).at(at))?;
        self.tail.end += len as u64;
        self.tail.next_seq = seq;
        Ok(Some(self.next_record(index + count)))
    }

    /// Prepare record `index`, or the flush after the last one.
    fn next_record(&mut self, index: usize) -> State {
        match self.payloads.get(index) {
            Some(payload) => {
                self.header =
                    encode_batch_record_header(self.tail.next_seq, self.base + index, payload);
                State::WriteRecord { index, written: 0 }
            }
            None => State::SyncJournal,
        }
    }
}

impl<D: Dir> crate::machine::Machine<D> for Append<'_, D> {
    type Error = CommitError<D::Error>;
    crate::machine::basics!(State, "journal", |m| &m.journal);

    fn transition(&mut self, dir: &mut D) -> Result<State, CommitError<D::Error>> {
        self.advance(dir)
    }

    /// A failed write or flush cuts the batch off (best effort; the next
    /// writer cuts a torn tail otherwise; see "A failed append is cut off
    /// at once" in `docs/design.md`).
    fn abandon(&mut self, _dir: &mut D) {
        if let (Some(file), State::WriteRecord { .. } | State::SyncJournal) =
            (self.file.as_mut(), self.state)
        {
            let _ = file.set_len(self.start.end);
        }
        self.file = None;
        self.tail = self.start;
    }
}

/// A batch of records written to the journal and not yet flushed
/// ([`Append::write`]).
#[derive(Debug)]
pub struct Unsynced<F> {
    file: F,
    journal: FileName,
    start: Tail,
    tail: Tail,
}

impl<F: File> Unsynced<F> {
    /// The tail before the batch.
    pub fn start(&self) -> Tail {
        self.start
    }

    /// The tail after the batch.
    pub fn tail(&self) -> Tail {
        self.tail
    }

    /// Flush the journal: the batch (and everything written to the file
    /// before it) is durable once this returns `Ok`. A power cut during
    /// the call leaves any part of what was not yet durable, as a torn
    /// tail that recovery cuts.
    pub fn sync(&mut self) -> Result<(), CommitError<F::Error>> {
        self.file
            .sync_data()
            .map_err(|e| IoError::new(Op::SyncFile, &self.journal, e).into())
    }

    /// After a failed [`Unsynced::sync`]: cut the batch, and whatever was
    /// written after it, off the journal (best effort, as a failed append
    /// does; see "A failed append is cut off at once" in
    /// `docs/design.md`). A power cut during the call leaves the journal
    /// cut or not.
    pub fn abandon(mut self) {
        let _ = self.file.set_len(self.start.end);
    }
}

impl<D: Dir> fmt::Debug for Append<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Append")
            .field("journal", &self.journal)
            .field("records", &self.payloads.len())
            .field("state", &self.state)
            .field("tail", &self.tail)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::test_dir::MemDir;
    use std::vec::Vec;

    fn journal() -> Journal<'static> {
        Journal::new("hits.json", Mode::PRIVATE).unwrap()
    }

    /// Recover, visiting nothing.
    fn recover(dir: &mut MemDir) -> Result<Replay, RecoverError<embedded_io::ErrorKind>> {
        let mut buf = [0u8; 256];
        journal().recover(dir, &mut buf, &mut |_, _| Ok(()))
    }

    /// Recover, then append each payload as its own batch.
    fn setup(dir: &mut MemDir, payloads: &[&[u8]]) -> Tail {
        let mut tail = recover(dir).unwrap().tail;
        for p in payloads {
            journal().append(dir, &mut tail, &[p]).unwrap();
        }
        tail
    }

    type Seen = Vec<(u64, Vec<u8>)>;

    fn replay(dir: &mut MemDir) -> Result<(Seen, Replay), LoadError<embedded_io::ErrorKind>> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        let r = journal().replay(dir, &mut buf, &mut |e, _| {
            match e {
                Entry::Snapshot { seq, state } => {
                    seen.clear();
                    seen.push((seq, state.to_vec()));
                }
                Entry::Record { seq, payload, .. } => seen.push((seq, payload.to_vec())),
            }
            Ok(())
        })?;
        Ok((seen, r))
    }

    /// A journal is born out of its inode: its temporary file grows past
    /// `OUT_OF_INODE` and is cut back before the header goes in (f2fs would
    /// otherwise keep it inline and move it out, unordered, on a later
    /// append: `boards/powercut/run --cache f2fs/journal`). A document's
    /// Replace does not pay for it.
    #[test]
    fn a_journal_file_is_taken_out_of_its_inode_before_it_holds_anything() {
        use crate::replace::{Progress, Replace, State};
        fn states(mut r: Replace<'_, MemDir>, dir: &mut MemDir) -> std::vec::Vec<State> {
            let mut seen = std::vec![r.state()];
            while r.step(dir).unwrap() == Progress::Pending {
                seen.push(r.state());
            }
            seen
        }
        let mut dir = MemDir::default();
        let header = encode_header(1, 7);
        let journal = states(
            Replace::sidecar_header("s.json.journal", header, Mode::PRIVATE).unwrap(),
            &mut dir,
        );
        assert_eq!(
            &journal[..4],
            &[
                State::CreateTemp,
                State::GrowTemp,
                State::TrimTemp,
                State::WriteTemp { written: 0 }
            ]
        );
        assert_eq!(dir.get("s.json.journal").unwrap(), header);
        let document = states(
            Replace::new("s.json", b"{}", Mode::PRIVATE).unwrap(),
            &mut dir,
        );
        assert_eq!(document[1], State::WriteTemp { written: 0 });
    }

    #[test]
    fn appends_replay_in_order_with_one_flush_each() {
        let mut dir = MemDir::default();
        let tail = setup(&mut dir, &[]);
        assert_eq!(tail.next_seq, 1);
        let syncs = *dir.syncs.borrow();
        let tail = {
            let mut t = tail;
            for p in [&b"1"[..], b"2", b"3"] {
                journal().append(&mut dir, &mut t, &[p]).unwrap();
            }
            t
        };
        assert_eq!(*dir.syncs.borrow() - syncs, 3, "one flush per append");
        assert_eq!(tail.next_seq, 4);
        let (seen, r) = replay(&mut dir).unwrap();
        assert_eq!(
            seen,
            [(1, b"1".to_vec()), (2, b"2".to_vec()), (3, b"3".to_vec())]
        );
        assert_eq!(r.tail, tail);
        // A batch shares one flush.
        let syncs = *dir.syncs.borrow();
        let mut t = tail;
        journal()
            .append(&mut dir, &mut t, &[b"4", b"5", b"6"])
            .unwrap();
        assert_eq!(*dir.syncs.borrow() - syncs, 1);
        assert_eq!(t.next_seq, 7);
    }

    #[test]
    fn torn_tail_is_ignored_by_readers_and_cut_by_recovery() {
        let mut dir = MemDir::default();
        let tail = setup(&mut dir, &[b"\"a\"", b"\"b\""]);
        let clean = dir.get("hits.json.journal").unwrap();
        for torn in [
            &b"\x09\x00"[..],                         // half a length
            &encode_record_header(3, b"\"ccc\"")[..], // header, no payload
            &[0u8; 40][..],                           // zeros (size landed, data did not)
        ] {
            let mut bytes = clean.clone();
            bytes.extend_from_slice(torn);
            dir.set("hits.json.journal", &bytes);
            let (seen, r) = replay(&mut dir).unwrap();
            assert_eq!(seen.len(), 2);
            assert_eq!(r.torn_at, Some(clean.len() as u64));
            assert_eq!(
                dir.get("hits.json.journal").unwrap(),
                bytes,
                "readers change nothing"
            );
            let r = recover(&mut dir).unwrap();
            assert_eq!(
                dir.get("hits.json.journal").unwrap(),
                clean,
                "recovery cuts the tail"
            );
            assert_eq!(r.tail.next_seq, 3);
            assert_eq!(r.tail.end, tail.end);
        }
    }

    #[test]
    fn a_bad_record_with_valid_records_after_it_is_corrupt() {
        let mut dir = MemDir::default();
        setup(&mut dir, &[b"\"first\"", b"\"second\"", b"\"third\""]);
        let mut bytes = dir.get("hits.json.journal").unwrap();
        let second = HEADER_LEN + RECORD_HEADER_LEN + 7;
        bytes[second + RECORD_HEADER_LEN + 2] ^= 0x01; // a bit flip in the payload
        dir.set("hits.json.journal", &bytes);
        match replay(&mut dir) {
            Err(LoadError::Corrupt(c)) => {
                assert_eq!(c.file.as_str(), "hits.json.journal");
                assert_eq!(c.offset, second as u64);
                assert_eq!(c.kind, CorruptKind::BadChecksum);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(matches!(recover(&mut dir), Err(RecoverError::Corrupt(_))));
        assert_eq!(
            dir.get("hits.json.journal").unwrap(),
            bytes,
            "never repaired behind the caller's back"
        );
    }

    #[test]
    fn conversion_keeps_the_plain_document_and_every_cut_reads_old_or_new() {
        let mut dir = MemDir::default();
        dir.set("hits.json", b"[1, 2]\n");
        let j = journal();
        let mut buf = [0u8; 256];
        assert_eq!(
            j.convert(&mut dir, &mut buf).unwrap(),
            Conversion::Converted
        );
        // One commit, of the journal: the document is the snapshot as is.
        assert_eq!(dir.get("hits.json").unwrap(), b"[1, 2]\n");
        let (seen, r) = replay(&mut dir).unwrap();
        assert_eq!(seen, [(0, b"[1, 2]\n".to_vec())]);
        assert_eq!(r.tail.next_seq, 1);
        assert_eq!(
            j.convert(&mut dir, &mut buf).unwrap(),
            Conversion::AlreadyJournal
        );
        let mut tail = r.tail;
        j.append(&mut dir, &mut tail, &[b"3"]).unwrap();
        let flagged = dir.get("hits.json.journal").unwrap();
        // A compaction cut after its snapshot, before the journal's reset:
        // the flagged journal beside a wrapped snapshot reads the snapshot.
        buf[..7].copy_from_slice(b"[1,2,3]");
        let mut t = tail;
        j.compact(&mut dir, &mut t, &mut buf, 7).unwrap();
        assert_eq!(dir.get("hits.json.journal").unwrap().len(), HEADER_LEN);
        dir.set("hits.json.journal", &flagged);
        let (seen, _) = replay(&mut dir).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, 1);
        assert_eq!(recover(&mut dir).unwrap().tail.next_seq, 2);
        // A flagged journal whose document vanished is corrupt, not empty.
        dir.set("hits.json.journal", &flagged);
        dir.files.borrow_mut().remove("hits.json");
        assert!(matches!(replay(&mut dir), Err(LoadError::Corrupt(_))));
    }

    #[test]
    fn sequence_numbers_that_cannot_continue_are_corrupt() {
        let mut dir = MemDir::default();
        let text = std::format!("{{\"seq\": {}, \"state\": 1}}", u64::MAX);
        dir.set("hits.json", text.as_bytes());
        let r = recover(&mut dir);
        assert!(matches!(r, Err(RecoverError::Corrupt(_))), "{r:?}");
        let mut dir = MemDir::default();
        dir.set("hits.json.journal", &encode_header(u64::MAX, 7));
        assert!(matches!(replay(&mut dir), Err(LoadError::Corrupt(_))));
    }

    #[test]
    fn interrupted_compaction_replays_nothing_twice() {
        let mut dir = MemDir::default();
        let tail = setup(&mut dir, &[b"1", b"2", b"3"]);
        let old_journal = dir.get("hits.json.journal").unwrap();
        // Compaction wrote the snapshot (through seq 3), then power failed
        // before the journal was reset.
        let mut t = tail;
        let mut buf = [0u8; 256];
        buf[..7].copy_from_slice(b"[1,2,3]");
        journal().compact(&mut dir, &mut t, &mut buf, 7).unwrap();
        dir.set("hits.json.journal", &old_journal);
        let (seen, r) = replay(&mut dir).unwrap();
        assert_eq!(seen.len(), 1, "only the snapshot: {seen:?}");
        assert_eq!(seen[0].0, 3);
        assert_eq!(r.records, 0);
        // Recovery finishes the compaction; appends continue at 4.
        let mut tail = recover(&mut dir).unwrap().tail;
        assert_eq!(tail.next_seq, 4);
        assert_eq!(dir.get("hits.json.journal").unwrap().len(), HEADER_LEN);
        journal().append(&mut dir, &mut tail, &[b"4"]).unwrap();
        let (seen, _) = replay(&mut dir).unwrap();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 4]);
        let snapshot = std::string::String::from_utf8(dir.get("hits.json").unwrap()).unwrap();
        assert_eq!(
            snapshot,
            "{\n  \"seq\": 3,\n  \"state\": [\n    1,\n    2,\n    3\n  ]\n}\n"
        );
    }

    #[test]
    fn compaction_from_a_stale_view_is_refused() {
        let mut dir = MemDir::default();
        let tail = setup(&mut dir, &[b"1"]);
        let mut other = tail;
        journal().append(&mut dir, &mut other, &[b"2"]).unwrap();
        let mut stale = tail;
        let mut buf = [0u8; 128];
        buf[..3].copy_from_slice(b"[1]");
        assert!(matches!(
            journal().compact(&mut dir, &mut stale, &mut buf, 3),
            Err(CommitError::Stale { .. })
        ));
        assert!(dir.get("hits.json").is_none(), "no snapshot was written");
        let (seen, _) = replay(&mut dir).unwrap();
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_journal_that_skips_sequence_numbers_is_corrupt() {
        let mut dir = MemDir::default();
        setup(&mut dir, &[b"1"]);
        let mut bytes = dir.get("hits.json.journal").unwrap();
        bytes.extend_from_slice(&encode_record_header(3, b"3"));
        bytes.extend_from_slice(b"3");
        dir.set("hits.json.journal", &bytes);
        assert!(matches!(
            replay(&mut dir),
            Err(LoadError::Corrupt(Corrupt {
                kind: CorruptKind::SequenceGap {
                    expected: 2,
                    found: 3
                },
                ..
            }))
        ));
    }

    #[test]
    fn a_stale_tail_writes_nothing() {
        let mut dir = MemDir::default();
        let tail = setup(&mut dir, &[b"1"]);
        let mut other = tail;
        journal().append(&mut dir, &mut other, &[b"2"]).unwrap();
        let before = dir.get("hits.json.journal").unwrap();
        let mut mine = tail;
        assert!(matches!(
            journal().append(&mut dir, &mut mine, &[b"x"]),
            Err(CommitError::Stale { .. })
        ));
        assert_eq!(dir.get("hits.json.journal").unwrap(), before);
        let mut buf = [0u8; 64];
        let mut seen = Vec::new();
        assert!(
            journal()
                .catch_up(&mut dir, &mut buf, &mut mine, &mut |e, _| {
                    if let Entry::Record { seq, .. } = e {
                        seen.push(seq);
                    }
                    Ok(())
                })
                .unwrap()
        );
        assert_eq!(seen, [2]);
        assert_eq!(mine, other);
    }

    #[test]
    fn snapshot_wrapper_parses_and_rejects() {
        let (seq, state) = parse_snapshot("s", b"{\"state\": {\"a\": 1}, \"seq\": 42}\n").unwrap();
        assert_eq!(seq, 42);
        assert_eq!(state, 10..18);
        assert!(parse_snapshot("s", b"{\"seq\": -1, \"state\": 1}").is_err());
        assert!(parse_snapshot("s", b"{\"seq\": 1}").is_err());
        assert!(parse_snapshot("s", b"[1]").is_err());
        assert_eq!(
            parse_snapshot("s", b"").unwrap_err().kind,
            CorruptKind::Empty
        );
    }
}
