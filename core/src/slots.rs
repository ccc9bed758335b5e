//! The Slots protocol: two preallocated slot files overwritten in place, for
//! media whose rename is not crash-atomic (FAT on USB sticks and SD cards,
//! raw flash partitions).
//!
//! ```text
//!  NAME.a  [header: magic, version, capacity, generation, length, CRC][document][zero padding]
//!  NAME.b  [header ...                                                ][document][zero padding]
//!
//!  Inspect a ──► Inspect b ──► (Format x ──► SyncFormat x)* ──► (SyncDir) ──► WriteSlot ──► SyncSlot ──► Done
//!                               only the first time, or after a         older      fdatasync
//!                               crash during the first time             slot
//! ```
//!
//! A commit writes the slot that does not hold the newest valid document —
//! the older one, or one that is torn or blank — with the next generation,
//! and flushes it: **one flush barrier per commit**, and no commit ever
//! changes a file's size, its allocation, or a directory entry (on FAT those
//! live in the directory entry and the allocation table, which a power cut
//! can tear). Load reads both slots and returns the valid one with the
//! highest generation; a torn slot fails its CRC and is passed over.
//!
//! The slot files are created once, zero-filled to their full size and
//! flushed, one after the other, before the first document is written; a
//! crash during that leaves no valid slot and no commit was acknowledged, so
//! the document reads as absent. After that, at least one slot always holds
//! the last acknowledged document: a commit only overwrites the other one.
//! `docs/design.md` gives the byte layout and the full argument.

use core::fmt;

use embedded_io::{Seek, SeekFrom, Write};

use crate::Mode;
use crate::bytes::{put, read_full, u32_le, u64_le};
use crate::crc::Crc32c;
use crate::error::{CommitError, Corrupt, CorruptKind, IoError, LoadError};
use crate::fs::{Dir, File, Op};
use crate::name::{self, FileName};

/// The first eight bytes of every slot file.
pub const MAGIC: [u8; 8] = *b"FSATSLOT";
/// The slot format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Size of a slot header in bytes.
pub const HEADER_LEN: usize = 32;
/// Slot files are sized in whole units of this many bytes (a FAT sector).
pub const SECTOR: usize = 512;
/// Suffixes of the two slot files: `NAME.a`, `NAME.b`.
pub const SUFFIXES: [&str; 2] = [".a", ".b"];

/// How many times a reader retries when a writer overwrote the slot it was
/// reading; each retry needs a whole commit to land during the read.
const READ_ATTEMPTS: usize = 8;

const ZEROS: [u8; SECTOR] = [0; SECTOR];

/// Slots are checked through a stack buffer this large: a 64 KiB slot costs
/// 64 reads, and the stack of a small board 1 KiB.
const CHECK_CHUNK: usize = 1024;

/// The name of slot `index` (0 or 1) of `name`.
pub fn slot_name(name: &str, index: usize) -> FileName {
    name::with_suffix(name, SUFFIXES.get(index).copied().unwrap_or(".b"))
}

/// The payload capacity of slot files that hold documents of up to
/// `max_document` bytes: header plus document, rounded up to whole sectors,
/// minus the header.
///
/// ```
/// assert_eq!(fsatomic::slots::capacity_for(100), 480);
/// assert_eq!(fsatomic::slots::capacity_for(480), 480);
/// assert_eq!(fsatomic::slots::capacity_for(481), 992);
/// ```
pub const fn capacity_for(max_document: usize) -> usize {
    let total = HEADER_LEN + max_document;
    total.div_ceil(SECTOR) * SECTOR - HEADER_LEN
}

/// What a slot file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotStatus {
    /// There is no such file.
    Missing,
    /// Never written: the header is all zeros.
    Blank,
    /// A complete document.
    Valid {
        /// Its generation: higher is newer.
        generation: u64,
        /// Its length in bytes.
        len: u32,
    },
    /// Torn or damaged: not a document.
    Invalid {
        /// Where reading went wrong.
        offset: u64,
        /// What was wrong there.
        kind: CorruptKind,
    },
}

/// A slot file as [`inspect`] found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// What it holds.
    pub status: SlotStatus,
    /// The file's size in bytes.
    pub size: u64,
}

impl SlotInfo {
    const MISSING: SlotInfo = SlotInfo {
        status: SlotStatus::Missing,
        size: 0,
    };

    fn generation(&self) -> Option<u64> {
        match self.status {
            SlotStatus::Valid { generation, .. } => Some(generation),
            _ => None,
        }
    }
}

/// The payload capacity of a slot file of `size` bytes: the size less the
/// header, capped at what the header's `u32` capacity field can say. A cast
/// instead would cut a slot file over 4 GiB to a smaller capacity in the
/// header than the length check allowed, and the slot would fail its own
/// inspection after an acknowledged commit.
fn slot_capacity(size: u64) -> usize {
    let capacity = size
        .saturating_sub(HEADER_LEN as u64)
        .min(u64::from(u32::MAX));
    usize::try_from(capacity).unwrap_or(usize::MAX)
}

fn encode_header(capacity: u32, generation: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    put(&mut h, 0, &MAGIC);
    put(&mut h, 8, &VERSION.to_le_bytes());
    put(&mut h, 12, &capacity.to_le_bytes());
    put(&mut h, 16, &generation.to_le_bytes());
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    put(&mut h, 24, &len.to_le_bytes());
    let mut crc = Crc32c::new();
    crc.update(h.get(..28).unwrap_or_default());
    crc.update(payload);
    put(&mut h, 28, &crc.finish().to_le_bytes());
    h
}

/// Read and check the slot in `file` (named `name`, for errors), streaming
/// the payload through the CRC without keeping it.
pub fn inspect<F: File>(file: &mut F, name: &str) -> Result<SlotInfo, IoError<F::Error>> {
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(|e| IoError::new(Op::Seek, name, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| IoError::new(Op::Seek, name, e))?;
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(file, &mut header).map_err(|e| IoError::new(Op::Read, name, e).at(0))?;
    let invalid = |offset: u64, kind| SlotInfo {
        status: SlotStatus::Invalid { offset, kind },
        size,
    };
    if header.iter().all(|&b| b == 0) {
        return Ok(SlotInfo {
            status: SlotStatus::Blank,
            size,
        });
    }
    if got < HEADER_LEN {
        return Ok(invalid(got as u64, CorruptKind::BadLength));
    }
    if header.get(..8) != Some(&MAGIC[..]) {
        return Ok(invalid(0, CorruptKind::BadMagic));
    }
    let version = u32_le(&header, 8) as u16;
    if version != VERSION {
        return Ok(invalid(8, CorruptKind::UnsupportedVersion(version)));
    }
    let capacity = u64::from(u32_le(&header, 12));
    if HEADER_LEN as u64 + capacity > size {
        return Ok(invalid(12, CorruptKind::BadLength));
    }
    let len = u32_le(&header, 24);
    if len == 0 || u64::from(len) > capacity {
        return Ok(invalid(24, CorruptKind::BadLength));
    }
    let mut crc = Crc32c::new();
    crc.update(header.get(..28).unwrap_or_default());
    let mut left = len as usize;
    let mut chunk = [0u8; CHECK_CHUNK];
    while left > 0 {
        let want = chunk.get_mut(..left.min(CHECK_CHUNK)).unwrap_or_default();
        let offset = (HEADER_LEN + len as usize - left) as u64;
        let got = read_full(file, want).map_err(|e| IoError::new(Op::Read, name, e).at(offset))?;
        if got == 0 {
            return Ok(invalid(offset, CorruptKind::BadLength));
        }
        crc.update(want.get(..got).unwrap_or_default());
        left -= got;
    }
    if crc.finish() != u32_le(&header, 28) {
        return Ok(invalid(28, CorruptKind::BadChecksum));
    }
    Ok(SlotInfo {
        status: SlotStatus::Valid {
            generation: u64_le(&header, 16),
            len,
        },
        size,
    })
}

/// Load the newest valid document of `name` into the front of `buf`;
/// return its length, or `Ok(None)` if no document was ever committed.
///
/// Read-only and lock-free. Absent means: no slot file, or no valid slot
/// while at least one slot is blank or missing (the first commit, or the
/// creation of the slot files, was cut short). Two slots that were both
/// written and are both invalid are [`CorruptKind::BadChecksum`] (or the
/// fault found in slot `a`).
pub fn load<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    name::validate(name).map_err(|error| LoadError::Name {
        file: name::owned(name),
        error,
    })?;
    let names = [slot_name(name, 0), slot_name(name, 1)];
    let mut last_fault = None;
    for _ in 0..READ_ATTEMPTS {
        let mut files: [Option<D::File>; 2] = [None, None];
        let mut infos = [SlotInfo::MISSING; 2];
        for i in 0..2 {
            let (Some(slot_name), Some(file), Some(info)) =
                (names.get(i), files.get_mut(i), infos.get_mut(i))
            else {
                return Err(LoadError::LogicBug("slot index"));
            };
            *file = dir
                .open_read(slot_name)
                .map_err(|e| IoError::new(Op::Open, slot_name, e))?;
            if let Some(f) = file.as_mut() {
                *info = inspect(f, slot_name)?;
            }
        }
        let order = newest_first(&infos);
        let Some(winner) = order.into_iter().flatten().next() else {
            let unwritten = infos
                .iter()
                .any(|i| matches!(i.status, SlotStatus::Missing | SlotStatus::Blank));
            if unwritten {
                return Ok(None);
            }
            let (i, offset, kind) = first_fault(&infos);
            let file = names.get(i).map(|n| n.as_str()).unwrap_or(name);
            return Err(Corrupt::new(file, offset, kind).into());
        };
        let (Some(file), Some(slot_name)) = (
            files.get_mut(winner).and_then(Option::as_mut),
            names.get(winner),
        ) else {
            return Err(LoadError::LogicBug("winning slot has no file"));
        };
        match read_payload(file, slot_name, buf)? {
            Some(len) => return Ok(Some(len)),
            // Overwritten while we read it: look again.
            None => last_fault = Some(winner),
        }
    }
    let i = last_fault.unwrap_or(0);
    let file = names.get(i).map(|n| n.as_str()).unwrap_or(name);
    Err(Corrupt::new(file, 28, CorruptKind::BadChecksum).into())
}

/// Indices of the valid slots, newest first.
fn newest_first(infos: &[SlotInfo; 2]) -> [Option<usize>; 2] {
    match (infos[0].generation(), infos[1].generation()) {
        (Some(a), Some(b)) if b > a => [Some(1), Some(0)],
        (Some(_), Some(_)) => [Some(0), Some(1)],
        (Some(_), None) => [Some(0), None],
        (None, Some(_)) => [Some(1), None],
        (None, None) => [None, None],
    }
}

fn first_fault(infos: &[SlotInfo; 2]) -> (usize, u64, CorruptKind) {
    for (i, info) in infos.iter().enumerate() {
        if let SlotStatus::Invalid { offset, kind } = info.status {
            return (i, offset, kind);
        }
    }
    (0, 0, CorruptKind::BadChecksum)
}

/// Read header and payload of a slot in one pass into `buf` and check them
/// together; `Ok(None)` if they no longer match (a writer got there).
fn read_payload<F: File>(
    file: &mut F,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<F::Error>> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| IoError::new(Op::Seek, name, e))?;
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(file, &mut header).map_err(|e| IoError::new(Op::Read, name, e).at(0))?;
    let len = u32_le(&header, 24) as usize;
    if got < HEADER_LEN || header.get(..8) != Some(&MAGIC[..]) || len == 0 {
        return Ok(None);
    }
    let capacity = buf.len();
    let Some(dst) = buf.get_mut(..len) else {
        return Err(LoadError::TooLarge {
            file: name::owned(name),
            size: len as u64,
            capacity,
        });
    };
    let got =
        read_full(file, dst).map_err(|e| IoError::new(Op::Read, name, e).at(HEADER_LEN as u64))?;
    let mut crc = Crc32c::new();
    crc.update(header.get(..28).unwrap_or_default());
    crc.update(dst.get(..got).unwrap_or_default());
    Ok((got == len && crc.finish() == u32_le(&header, 28)).then_some(len))
}

/// Where a [`Slots`] commit stands. The names are the words of
/// `docs/design.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Next: open and check slot `slot`.
    Inspect {
        /// 0 for `NAME.a`, 1 for `NAME.b`.
        slot: u8,
    },
    /// Next: create slot `slot` if missing, and zero-fill it to its full
    /// size; `written` bytes are done. Only before the first document.
    Format {
        /// The slot.
        slot: u8,
        /// Bytes zero-filled so far.
        written: u64,
    },
    /// Next: flush the formatted slot `slot`.
    SyncFormat {
        /// The slot.
        slot: u8,
    },
    /// Next: flush the directory, making created slot files' names durable.
    SyncDir,
    /// Next: write header and document into the target slot.
    WriteSlot {
        /// Bytes (header included) written so far.
        written: usize,
    },
    /// Next: flush the target slot (the one barrier of a commit).
    SyncSlot,
    /// The commit is durable.
    Done,
    /// A step failed; the error was returned by that step.
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Inspect { slot } => write!(f, "inspect({})", slot_letter(*slot)),
            State::Format { slot, written } => {
                write!(f, "format({}, {written})", slot_letter(*slot))
            }
            State::SyncFormat { slot } => write!(f, "sync-format({})", slot_letter(*slot)),
            State::SyncDir => f.write_str("sync-dir"),
            State::WriteSlot { written } => write!(f, "write-slot({written})"),
            State::SyncSlot => f.write_str("sync-slot"),
            State::Done => f.write_str("done"),
            State::Failed => f.write_str("failed"),
        }
    }
}

fn slot_letter(slot: u8) -> char {
    if slot == 0 { 'a' } else { 'b' }
}

pub use crate::replace::Progress;

/// One Slots commit of `data` to `name`, as a state machine. Each step does
/// at most one operation that changes the disk (plus the reads and seeks
/// that prepare it).
pub struct Slots<'a, D: Dir> {
    name: &'a str,
    data: &'a [u8],
    mode: Mode,
    capacity: usize,
    state: State,
    names: [FileName; 2],
    files: [Option<D::File>; 2],
    infos: [SlotInfo; 2],
    created: bool,
    target: usize,
    header: [u8; HEADER_LEN],
    /// A write to the target slot was attempted.
    touched: bool,
}

impl<'a, D: Dir> Slots<'a, D> {
    /// Prepare a commit of `data` to `name`. Slot files that must be
    /// created get room for `max_document` bytes (see [`capacity_for`]);
    /// existing slot files keep their size, and a document larger than the
    /// target slot's capacity is [`CommitError::TooLarge`].
    pub fn new(
        name: &'a str,
        data: &'a [u8],
        mode: Mode,
        max_document: usize,
    ) -> Result<Self, CommitError<D::Error>> {
        name::validate(name).map_err(|error| CommitError::Name {
            file: name::owned(name),
            error,
        })?;
        if data.is_empty() {
            return Err(CommitError::EmptyDocument {
                file: name::owned(name),
            });
        }
        let capacity = capacity_for(max_document.max(data.len()));
        if u32::try_from(capacity).is_err() {
            return Err(CommitError::TooLarge {
                file: name::owned(name),
                size: data.len(),
                capacity: u32::MAX as usize,
            });
        }
        Ok(Slots {
            name,
            data,
            mode,
            capacity,
            state: State::Inspect { slot: 0 },
            names: [slot_name(name, 0), slot_name(name, 1)],
            files: [None, None],
            infos: [SlotInfo::MISSING; 2],
            created: false,
            target: 0,
            header: [0; HEADER_LEN],
            touched: false,
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Drive the commit to the end; returns once the document is durable.
    /// On error the last acknowledged document is still in the other slot.
    pub fn run(mut self, dir: &mut D) -> Result<(), CommitError<D::Error>> {
        while self.step(dir)? == Progress::Pending {}
        Ok(())
    }

    /// Perform one step. After an error the machine is [`State::Failed`];
    /// if the target slot had been written to, its header has been zeroed
    /// (best effort; see "A failed commit blanks its slot" in
    /// `docs/design.md`).
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, CommitError<D::Error>> {
        match self.transition(dir) {
            Ok(next) => {
                crate::log::trace!("slots {}: {} => {}", self.name, self.state, next);
                self.state = next;
                Ok(if next == State::Done {
                    Progress::Done
                } else {
                    Progress::Pending
                })
            }
            Err(e) => {
                if self.touched {
                    self.blank_target();
                }
                self.files = [None, None];
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// After a failed write or flush of the target slot, best effort:
    /// zero its header. The slot may now hold the failed document in the
    /// page cache, whole and valid to a reader, yet not durable (after an
    /// `EIO` from `fdatasync` the kernel may have marked those pages clean).
    /// Left valid, it would be the newest slot, and the next commit would
    /// overwrite the *other* slot, the only durable copy of the last
    /// acknowledged document: a power cut during that commit would then
    /// leave neither. Blanked, readers keep to the other slot and the next
    /// commit rewrites this one. Nothing is flushed: on disk this slot may
    /// hold its old document, the failed one or a torn one, and the other
    /// slot still holds the last acknowledged document.
    fn blank_target(&mut self) {
        if let Some(Some(f)) = self.files.get_mut(self.target) {
            let _ = f
                .seek(SeekFrom::Start(0))
                .map(drop)
                .and_then(|()| f.write_all(&[0; HEADER_LEN]));
        }
    }

    /// The size every slot file must have: fixed by the valid slots once
    /// there are any (a commit never resizes a file that holds a
    /// document), else room for this store's largest document.
    fn file_len(&self) -> u64 {
        let valid = self
            .infos
            .iter()
            .filter(|i| matches!(i.status, SlotStatus::Valid { .. }))
            .map(|i| i.size)
            .max();
        valid.unwrap_or((HEADER_LEN + self.capacity) as u64)
    }

    /// A slot must be formatted if it is missing, or is not a valid
    /// document and is shorter than a slot file must be.
    fn needs_format(&self, slot: usize) -> bool {
        match self.infos.get(slot) {
            Some(SlotInfo {
                status: SlotStatus::Missing,
                ..
            }) => true,
            Some(SlotInfo {
                status: SlotStatus::Valid { .. },
                ..
            }) => false,
            Some(info) => info.size < self.file_len(),
            None => false,
        }
    }

    /// After inspecting and formatting: the first slot (from `from`) that
    /// needs formatting, else the write of the target slot.
    fn next_after(&mut self, from: usize) -> State {
        for slot in from..2 {
            if self.needs_format(slot) {
                return State::Format {
                    slot: slot as u8,
                    written: 0,
                };
            }
        }
        if self.created {
            return State::SyncDir;
        }
        self.choose_target();
        State::WriteSlot { written: 0 }
    }

    fn choose_target(&mut self) {
        let [a, b] = [self.infos[0].generation(), self.infos[1].generation()];
        self.target = match (a, b) {
            (None, _) => 0,
            (Some(_), None) => 1,
            (Some(a), Some(b)) => usize::from(b < a),
        };
        let generation = a.max(b).map_or(1, |g| g.saturating_add(1));
        self.header = encode_header(self.capacity_of_target() as u32, generation, self.data);
    }

    fn capacity_of_target(&self) -> usize {
        slot_capacity(self.infos.get(self.target).map_or(0, |i| i.size))
    }

    fn transition(&mut self, dir: &mut D) -> Result<State, CommitError<D::Error>> {
        match self.state {
            State::Inspect { slot } => {
                let i = usize::from(slot);
                let slot_name = self
                    .names
                    .get(i)
                    .ok_or(CommitError::LogicBug("slot index"))?;
                let mut file = dir
                    .open_write(slot_name)
                    .map_err(|e| IoError::new(Op::Open, slot_name, e))?;
                let info = match file.as_mut() {
                    Some(f) => inspect(f, slot_name)?,
                    None => SlotInfo::MISSING,
                };
                if let (Some(dst_file), Some(dst_info)) =
                    (self.files.get_mut(i), self.infos.get_mut(i))
                {
                    *dst_file = file;
                    *dst_info = info;
                }
                Ok(if slot == 0 {
                    State::Inspect { slot: 1 }
                } else {
                    self.next_after(0)
                })
            }
            State::Format { slot, written } => {
                let i = usize::from(slot);
                let slot_name = self
                    .names
                    .get(i)
                    .ok_or(CommitError::LogicBug("slot index"))?
                    .clone();
                let mode = self.mode;
                let total = self.file_len();
                let file = self
                    .files
                    .get_mut(i)
                    .ok_or(CommitError::LogicBug("slot index"))?;
                if file.is_none() {
                    let created = dir
                        .create_new(&slot_name, mode)
                        .map_err(|e| IoError::new(Op::Create, &slot_name, e))?;
                    *file = Some(created);
                    self.created = true;
                }
                let f = file.as_mut().ok_or(CommitError::LogicBug("no slot file"))?;
                if written == 0 {
                    f.seek(SeekFrom::Start(0))
                        .map_err(|e| IoError::new(Op::Seek, &slot_name, e))?;
                }
                let chunk = (total - written).min(SECTOR as u64) as usize;
                let n = f
                    .write(ZEROS.get(..chunk).unwrap_or_default())
                    .map_err(|e| IoError::new(Op::Write, &slot_name, e).at(written))?;
                if n == 0 {
                    return Err(CommitError::LogicBug("write accepted zero bytes"));
                }
                let written = written + n as u64;
                Ok(if written >= total {
                    State::SyncFormat { slot }
                } else {
                    State::Format { slot, written }
                })
            }
            State::SyncFormat { slot } => {
                let i = usize::from(slot);
                let (slot_name, f) = open_slot(&self.names, &mut self.files, i)?;
                f.sync_all()
                    .map_err(|e| IoError::new(Op::SyncFile, slot_name, e))?;
                let size = self.file_len();
                if let Some(info) = self.infos.get_mut(i) {
                    *info = SlotInfo {
                        status: SlotStatus::Blank,
                        size,
                    };
                }
                Ok(self.next_after(i + 1))
            }
            State::SyncDir => {
                dir.sync_dir()
                    .map_err(|e| IoError::new(Op::SyncDir, self.name, e))?;
                self.created = false;
                Ok(self.next_after(2))
            }
            State::WriteSlot { written } => {
                let i = self.target;
                let capacity = self.capacity_of_target();
                if self.data.len() > capacity {
                    return Err(CommitError::TooLarge {
                        file: name::owned(self.name),
                        size: self.data.len(),
                        capacity,
                    });
                }
                let (slot_name, f) = open_slot(&self.names, &mut self.files, i)?;
                if written == 0 {
                    f.seek(SeekFrom::Start(0))
                        .map_err(|e| IoError::new(Op::Seek, slot_name, e))?;
                }
                let rest = if written < HEADER_LEN {
                    self.header.get(written..).unwrap_or_default()
                } else {
                    self.data.get(written - HEADER_LEN..).unwrap_or_default()
                };
                self.touched = true;
                let n = f
                    .write(rest)
                    .map_err(|e| IoError::new(Op::Write, slot_name, e).at(written as u64))?;
                if n == 0 {
                    return Err(CommitError::LogicBug("write accepted zero bytes"));
                }
                let written = written + n;
                Ok(if written >= HEADER_LEN + self.data.len() {
                    State::SyncSlot
                } else {
                    State::WriteSlot { written }
                })
            }
            State::SyncSlot => {
                let i = self.target;
                let (slot_name, f) = open_slot(&self.names, &mut self.files, i)?;
                f.sync_data()
                    .map_err(|e| IoError::new(Op::SyncFile, slot_name, e))?;
                self.files = [None, None];
                Ok(State::Done)
            }
            State::Done | State::Failed => Err(CommitError::LogicBug("step after the end")),
        }
    }
}

/// The name and open file of slot `i`.
fn open_slot<'s, F, E>(
    names: &'s [FileName; 2],
    files: &'s mut [Option<F>; 2],
    i: usize,
) -> Result<(&'s str, &'s mut F), CommitError<E>> {
    match (names.get(i), files.get_mut(i).and_then(Option::as_mut)) {
        (Some(name), Some(file)) => Ok((name.as_str(), file)),
        _ => Err(CommitError::LogicBug("no open slot file")),
    }
}

impl<D: Dir> fmt::Debug for Slots<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slots")
            .field("name", &self.name)
            .field("len", &self.data.len())
            .field("capacity", &self.capacity)
            .field("state", &self.state)
            .field("target", &self.target)
            .finish()
    }
}

/// Commit `data` to `name` with Slots, blocking until it is durable.
pub fn commit<D: Dir>(
    dir: &mut D,
    name: &str,
    data: &[u8],
    mode: Mode,
    max_document: usize,
) -> Result<(), CommitError<D::Error>> {
    Slots::<D>::new(name, data, mode, max_document)?.run(dir)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::test_dir::MemDir;
    use std::vec::Vec;

    fn load_str(dir: &mut MemDir) -> Result<Option<Vec<u8>>, LoadError<embedded_io::ErrorKind>> {
        let mut buf = [0u8; 512];
        Ok(load(dir, "cfg.json", &mut buf)?.map(|n| buf[..n].to_vec()))
    }

    #[test]
    fn commits_alternate_slots_with_one_flush_and_fixed_sizes() {
        let mut dir = MemDir {
            fat: true,
            ..MemDir::default()
        };
        assert_eq!(load_str(&mut dir).unwrap(), None);
        commit(&mut dir, "cfg.json", b"1\n", Mode::PRIVATE, 100).unwrap();
        assert_eq!(dir.get("cfg.json.a").unwrap().len(), SECTOR);
        assert_eq!(dir.get("cfg.json.b").unwrap().len(), SECTOR);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"1\n");
        for (i, doc) in [&b"22\n"[..], b"333\n", b"4\n"].iter().enumerate() {
            let a = dir.get("cfg.json.a").unwrap();
            let b = dir.get("cfg.json.b").unwrap();
            let syncs = *dir.syncs.borrow();
            commit(&mut dir, "cfg.json", doc, Mode::PRIVATE, 100).unwrap();
            assert_eq!(*dir.syncs.borrow() - syncs, 1, "one flush per commit");
            assert_eq!(load_str(&mut dir).unwrap().unwrap(), *doc);
            // Exactly the older slot changed; sizes never change.
            let (changed, kept) = if i % 2 == 0 {
                ("cfg.json.b", a)
            } else {
                ("cfg.json.a", b)
            };
            let kept_name = if changed == "cfg.json.a" {
                "cfg.json.b"
            } else {
                "cfg.json.a"
            };
            assert_eq!(dir.get(kept_name).unwrap(), kept);
            assert_eq!(dir.get(changed).unwrap().len(), SECTOR);
        }
    }

    #[test]
    fn a_torn_newest_slot_falls_back_to_the_older() {
        let mut dir = MemDir::default();
        commit(&mut dir, "cfg.json", b"old\n", Mode::PRIVATE, 100).unwrap();
        commit(&mut dir, "cfg.json", b"new\n", Mode::PRIVATE, 100).unwrap();
        let mut b = dir.get("cfg.json.b").unwrap();
        b[HEADER_LEN + 1] ^= 0xFF;
        dir.set("cfg.json.b", &b);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"old\n");
        // The next commit overwrites the torn slot, not the only good one.
        commit(&mut dir, "cfg.json", b"next\n", Mode::PRIVATE, 100).unwrap();
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"next\n");
        let mut a = dir.get("cfg.json.a").unwrap();
        a[HEADER_LEN] ^= 0xFF;
        dir.set("cfg.json.a", &a);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"next\n");
    }

    #[test]
    fn absent_until_a_first_commit_lands_then_corrupt_if_both_break() {
        let mut dir = MemDir::default();
        // First commit torn: slot a garbage, slot b blank.
        dir.set("cfg.json.a", &[0xA5; SECTOR]);
        dir.set("cfg.json.b", &[0; SECTOR]);
        assert_eq!(load_str(&mut dir).unwrap(), None);
        // Creation cut short: only slot a exists, garbage.
        let mut dir = MemDir::default();
        dir.set("cfg.json.a", &[0xA5; 100]);
        assert_eq!(load_str(&mut dir).unwrap(), None);
        commit(&mut dir, "cfg.json", b"1\n", Mode::PRIVATE, 100).unwrap();
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"1\n");
        commit(&mut dir, "cfg.json", b"2\n", Mode::PRIVATE, 100).unwrap();
        // Both written, both damaged: corrupt, never absent.
        for n in ["cfg.json.a", "cfg.json.b"] {
            let mut s = dir.get(n).unwrap();
            s[29] ^= 1;
            dir.set(n, &s);
        }
        let a = dir.get("cfg.json.a").unwrap();
        match load_str(&mut dir) {
            Err(LoadError::Corrupt(c)) => {
                assert_eq!(c.file.as_str(), "cfg.json.a");
                assert_eq!(c.kind, CorruptKind::BadChecksum);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(dir.get("cfg.json.a").unwrap(), a);
    }

    #[test]
    fn documents_larger_than_the_slot_are_refused_before_writing() {
        let mut dir = MemDir::default();
        commit(&mut dir, "cfg.json", b"1\n", Mode::PRIVATE, 10).unwrap();
        let a = dir.get("cfg.json.a").unwrap();
        let big = [b'7'; SECTOR];
        assert!(matches!(
            commit(&mut dir, "cfg.json", &big, Mode::PRIVATE, 10),
            Err(CommitError::TooLarge { capacity: 480, .. })
        ));
        assert_eq!(dir.get("cfg.json.a").unwrap(), a);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"1\n");
    }

    #[test]
    fn slot_capacity_is_capped_at_what_the_header_can_say() {
        assert_eq!(slot_capacity(512), 480);
        assert_eq!(slot_capacity(10), 0);
        // A slot file over 4 GiB: the capacity must not wrap to 100 bytes,
        // on 64 bits (header cast) or on 32 (size cast).
        let huge = (1u64 << 32) + HEADER_LEN as u64 + 100;
        assert_eq!(slot_capacity(huge) as u64, u64::from(u32::MAX));
    }
}
