//! The Slots protocol: two preallocated slot files overwritten in place, for
//! media whose rename is not crash-atomic (FAT on USB sticks and SD cards,
//! raw flash partitions).
//!
//! ```text
//!  NAME.a  [header: magic, version, capacity, generation, length, CRC][document][zero padding]
//!  NAME.b  [header ...                                                ][document][zero padding]
//!
//!  Inspect a ──► Inspect b ──► (Format x ──► SyncFormat x)* ──► (SyncDir) ──► WriteSlot ──► SyncSlot ──► Done
//!                               only the first time, or after a         older      fdatasync  │
//!                               crash during the first time             slot                  │
//!                                                   no slot was valid: then WriteSlot b ──► SyncSlot b
//! ```
//!
//! A commit writes the slot that does not hold the newest valid document —
//! the older one, or one that is torn or blank — with the next generation,
//! and flushes it: **one flush barrier per commit**, and no commit ever
//! changes a file's size, its allocation, or a directory entry (on FAT those
//! live in the directory entry and the allocation table, which a power cut
//! can tear). Load reads both slots and returns the valid one with the
//! newest generation (compared with wrapping arithmetic, see
//! [`compare_generations`]); a torn slot fails its CRC and is passed over.
//!
//! The slot files are created once, zero-filled to their full size and
//! flushed, one after the other, before the first document is written. A
//! commit that finds no valid slot (the first one) then writes the document
//! into *both* slots, `a` then `b`, each flushed: until it is acknowledged
//! one slot stays entirely zero (or missing), and that is what "absent"
//! means; once it is acknowledged both slots hold a document, and every
//! later commit overwrites only the older one. So after any acknowledged
//! commit one slot always holds the last acknowledged document, and a
//! damaged slot is never taken for "never written": with the other slot
//! valid it reads as the other slot's document, with no valid slot at all
//! it is [`LoadError::Corrupt`]. `docs/design.md` gives the byte layout and
//! the full argument, including what bytes cannot tell apart.

use core::cmp::Ordering;
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

/// Slots are checked through a stack buffer this large. On bare metal
/// (`target_os = "none"`) 1 KiB, which a small board's stack can spare (a
/// 64 KiB slot then costs 64 reads); elsewhere 8 KiB (8 reads, and a
/// thread's stack is measured in megabytes).
#[cfg(target_os = "none")]
const CHECK_CHUNK: usize = 1024;
/// See the bare-metal definition.
#[cfg(not(target_os = "none"))]
const CHECK_CHUNK: usize = 8192;

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

/// Compare two slot generations as serial numbers (RFC 1982; littlefs's
/// `lfs_scmp`): `a` is newer than `b` when `a - b`, wrapping, is positive as
/// a signed number. Generations count on past `u64::MAX` through 0, and a
/// commit's next generation is the newest plus one, wrapping, so the two
/// slots of a correct history always differ by one and always compare.
///
/// `None` when the two cannot be ordered: exactly 2^63 apart, where each is
/// "older" than the other. Equal generations are `Some(Equal)`; two valid
/// slots never hold the same generation, and [`load`] reports either case
/// as [`LoadError::Corrupt`] at offset 16 of `NAME.b`.
///
/// ```
/// use core::cmp::Ordering::*;
/// use fsatomic::slots::compare_generations;
/// assert_eq!(compare_generations(2, 1), Some(Greater));
/// assert_eq!(compare_generations(0, u64::MAX), Some(Greater));
/// assert_eq!(compare_generations(u64::MAX, 0), Some(Less));
/// assert_eq!(compare_generations(7, 7), Some(Equal));
/// assert_eq!(compare_generations(1 << 63, 0), None);
/// ```
pub const fn compare_generations(a: u64, b: u64) -> Option<Ordering> {
    let d = a.wrapping_sub(b).cast_signed();
    if d == i64::MIN {
        None
    } else if d > 0 {
        Some(Ordering::Greater)
    } else if d < 0 {
        Some(Ordering::Less)
    } else {
        Some(Ordering::Equal)
    }
}

/// The byte offset of the generation in a slot header.
const GENERATION_OFFSET: u64 = 16;

/// What a slot file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotStatus {
    /// There is no such file.
    Missing,
    /// Never written: every byte of the file is zero (as formatting leaves
    /// it). A slot whose header is zero but which holds other bytes (a
    /// failed commit zeroes the header of the slot it wrote) is
    /// [`SlotStatus::Invalid`] at offset 0, [`CorruptKind::BadMagic`].
    Blank,
    /// A complete document.
    Valid {
        /// Its generation: newer by [`compare_generations`].
        generation: u64,
        /// Its length in bytes.
        len: u32,
    },
    /// Not a document: a commit cut short, or damage; the bytes cannot
    /// always tell which (see "Interrupted or damaged" in
    /// `docs/design.md`).
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

    /// What [`peek`] says of a header it cannot vouch for.
    const UNKNOWN: SlotInfo = SlotInfo {
        status: SlotStatus::Invalid {
            offset: 0,
            kind: CorruptKind::BadMagic,
        },
        size: 0,
    };

    fn generation(&self) -> Option<u64> {
        match self.status {
            SlotStatus::Valid { generation, .. } => Some(generation),
            _ => None,
        }
    }

    /// Never written: missing, or all zeros.
    fn is_empty(&self) -> bool {
        matches!(self.status, SlotStatus::Missing | SlotStatus::Blank)
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

pub(crate) fn encode_header(capacity: u32, generation: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
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

/// The size of the slot file `file` (named `name`, for errors), its first
/// [`HEADER_LEN`] bytes, and how many of them it has (fewer if it is
/// shorter); the file is left just after them.
fn read_header<F: File>(
    file: &mut F,
    name: &str,
) -> Result<(u64, [u8; HEADER_LEN], usize), IoError<F::Error>> {
    let size = file
        .seek(SeekFrom::End(0))
        .map_err(|e| IoError::new(Op::Seek, name, e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| IoError::new(Op::Seek, name, e))?;
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(file, &mut header).map_err(|e| IoError::new(Op::Read, name, e).at(0))?;
    Ok((size, header, got))
}

/// Read and check the slot in `file` (named `name`, for errors), streaming
/// the payload through the CRC without keeping it.
pub fn inspect<F: File>(file: &mut F, name: &str) -> Result<SlotInfo, IoError<F::Error>> {
    let (size, header, got) = read_header(file, name)?;
    let invalid = |offset: u64, kind| SlotInfo {
        status: SlotStatus::Invalid { offset, kind },
        size,
    };
    if header.iter().all(|&b| b == 0) {
        // Blank only if the rest is zero too: a failed commit zeroes the
        // header of a slot that holds a document's bytes, and such a slot
        // must not count as never written (see `load`).
        let mut chunk = [0u8; CHECK_CHUNK];
        let mut offset = got as u64;
        loop {
            let n = read_full(file, &mut chunk)
                .map_err(|e| IoError::new(Op::Read, name, e).at(offset))?;
            if n == 0 {
                break;
            }
            if chunk.get(..n).unwrap_or_default().iter().any(|&b| b != 0) {
                return Ok(invalid(0, CorruptKind::BadMagic));
            }
            offset += n as u64;
        }
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
/// Read-only and lock-free. The verdicts (argued in `docs/design.md`,
/// "Interrupted or damaged"):
///
/// - one valid slot: its document, whatever the other slot holds (a
///   commit in flight or cut short there, or damage — bytes cannot tell);
/// - two valid slots: the newer by [`compare_generations`]; equal or
///   unorderable generations are [`LoadError::Corrupt`] naming `NAME.b`
///   at offset 16 ([`CorruptKind::SequenceGap`]);
/// - no valid slot, and a slot missing or entirely zero: absent — the
///   slot files' creation or the first commit was cut short, as the first
///   commit fills both slots before it returns;
/// - no valid slot otherwise: [`LoadError::Corrupt`] with the fault found
///   in slot `a` (else `b`): both slots were written and both are damaged.
pub fn load<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    name::checked::<LoadError<_>>(name)?;
    let names = [slot_name(name, 0), slot_name(name, 1)];
    if let Some(len) = load_newest(dir, &names, buf)? {
        return Ok(Some(len));
    }
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
        let order = match newest_first(&infos) {
            Ok(order) => order,
            Err((i, found, expected)) => {
                let file = names.get(i).map(|n| n.as_str()).unwrap_or(name);
                let kind = CorruptKind::SequenceGap { expected, found };
                return Err(Corrupt::new(file, GENERATION_OFFSET, kind).into());
            }
        };
        let Some(winner) = order.into_iter().flatten().next() else {
            if infos.iter().any(SlotInfo::is_empty) {
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

/// Load the previous version of `name` — the document of the older of two
/// valid slots — into the front of `buf`; its length, or `Ok(None)` when
/// there is none: fewer than two valid slots (a commit cut short tears the
/// slot it overwrites, which held the previous version), or the older slot
/// holding the same document as the newer one (the first commit writes
/// both). Read-only and lock-free.
pub fn load_previous<D: Dir>(
    dir: &mut D,
    name: &str,
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    name::checked::<LoadError<_>>(name)?;
    let names = [slot_name(name, 0), slot_name(name, 1)];
    for _ in 0..READ_ATTEMPTS {
        let mut files: [Option<D::File>; 2] = [None, None];
        let mut infos = [SlotInfo::MISSING; 2];
        for ((slot_name, file), info) in names.iter().zip(&mut files).zip(&mut infos) {
            *file = dir
                .open_read(slot_name)
                .map_err(|e| IoError::new(Op::Open, slot_name, e))?;
            if let Some(f) = file.as_mut() {
                *info = inspect(f, slot_name)?;
            }
        }
        let order = newest_first(&infos).map_err(|(i, found, expected)| {
            let file = names.get(i).map(|n| n.as_str()).unwrap_or(name);
            Corrupt::new(
                file,
                GENERATION_OFFSET,
                CorruptKind::SequenceGap { expected, found },
            )
        })?;
        let [Some(newer), Some(older)] = order else {
            return Ok(None);
        };
        let [a, b] = &mut files;
        let (newer_file, older_file) = if newer == 0 { (a, b) } else { (b, a) };
        let (Some(newer_file), Some(older_file), Some(older_name)) =
            (newer_file.as_mut(), older_file.as_mut(), names.get(older))
        else {
            return Err(LoadError::LogicBug("valid slot has no file"));
        };
        let Some(len) = read_payload(older_file, older_name, buf)? else {
            continue; // overwritten while we read it: look again
        };
        let newer_name = names.get(newer).map(|n| n.as_str()).unwrap_or(name);
        let same = match infos.get(newer).map(|i| i.status) {
            Some(SlotStatus::Valid { len: n, .. }) if n as usize == len => {
                same_payload(newer_file, newer_name, buf.get(..len).unwrap_or_default())?
            }
            _ => false,
        };
        return Ok((!same).then_some(len));
    }
    Ok(None)
}

/// Whether the payload of the slot in `file` is `bytes` (its length
/// already compared).
fn same_payload<F: File>(
    file: &mut F,
    name: &str,
    bytes: &[u8],
) -> Result<bool, IoError<F::Error>> {
    file.seek(SeekFrom::Start(HEADER_LEN as u64))
        .map_err(|e| IoError::new(Op::Seek, name, e))?;
    let mut chunk = [0u8; 64];
    for (i, want) in bytes.chunks(chunk.len()).enumerate() {
        let dst = chunk.get_mut(..want.len()).unwrap_or_default();
        let offset = (HEADER_LEN + i * 64) as u64;
        let got = read_full(file, dst).map_err(|e| IoError::new(Op::Read, name, e).at(offset))?;
        if got != want.len() || dst != want {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The fast road of [`load`]: read both headers, and the payload of the
/// slot whose header is newer, straight into `buf`; if that slot checks
/// out, it is the verdict `load` would reach by checking both (the newest
/// valid slot, whatever the older one holds). `Ok(None)` sends `load` down
/// its full road: a slot missing or without a plausible header,
/// generations that do not order, the newer slot damaged or overwritten
/// while read, or a document larger than `buf` (whose error the full road
/// names).
fn load_newest<D: Dir>(
    dir: &mut D,
    names: &[FileName; 2],
    buf: &mut [u8],
) -> Result<Option<usize>, LoadError<D::Error>> {
    let mut files: [Option<D::File>; 2] = [None, None];
    let mut generations = [0u64; 2];
    for ((slot_name, file), generation) in names.iter().zip(&mut files).zip(&mut generations) {
        let Some(mut f) = dir
            .open_read(slot_name)
            .map_err(|e| IoError::new(Op::Open, slot_name, e))?
        else {
            return Ok(None);
        };
        let Some(g) = peek(&mut f, slot_name)?.generation() else {
            return Ok(None);
        };
        *generation = g;
        *file = Some(f);
    }
    let Some(newer) = newer_of(generations) else {
        return Ok(None);
    };
    let (Some(Some(file)), Some(slot_name)) = (files.get_mut(newer), names.get(newer)) else {
        return Ok(None);
    };
    match read_payload(file, slot_name, buf) {
        Ok(found) => Ok(found),
        Err(LoadError::TooLarge { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Which of two generations is newer (0 or 1); `None` if they do not
/// order (equal, or 2^63 apart).
fn newer_of([a, b]: [u64; 2]) -> Option<usize> {
    match compare_generations(b, a) {
        Some(Ordering::Greater) => Some(1),
        Some(Ordering::Less) => Some(0),
        Some(Ordering::Equal) | None => None,
    }
}

/// Check the header of the slot in `file` as [`inspect`] does before the
/// checksum: magic, version, capacity within the file, length within the
/// capacity. A slot that passes is [`SlotStatus::Valid`] *as far as its
/// header tells* — its payload unchecked; one that does not is
/// [`SlotInfo::UNKNOWN`], for [`inspect`] to judge.
fn peek<F: File>(file: &mut F, name: &str) -> Result<SlotInfo, IoError<F::Error>> {
    let (size, header, got) = read_header(file, name)?;
    let capacity = u64::from(u32_le(&header, 12));
    let len = u32_le(&header, 24);
    if got < HEADER_LEN
        || header.get(..8) != Some(&MAGIC[..])
        || u32_le(&header, 8) as u16 != VERSION
        || HEADER_LEN as u64 + capacity > size
        || len == 0
        || u64::from(len) > capacity
    {
        return Ok(SlotInfo::UNKNOWN);
    }
    Ok(SlotInfo {
        status: SlotStatus::Valid {
            generation: u64_le(&header, 16),
            len,
        },
        size,
    })
}

/// Indices of the valid slots, newest first; or, when both are valid and
/// their generations cannot be ordered (equal, or 2^63 apart), the slot
/// to blame (`b`), its generation and the one it should have had.
fn newest_first(infos: &[SlotInfo; 2]) -> Result<[Option<usize>; 2], (usize, u64, u64)> {
    let [a, b] = infos;
    Ok(match (a.generation(), b.generation()) {
        (Some(a), Some(b)) => match compare_generations(b, a) {
            Some(Ordering::Greater) => [Some(1), Some(0)],
            Some(Ordering::Less) => [Some(0), Some(1)],
            Some(Ordering::Equal) | None => return Err((1, b, a.wrapping_add(1))),
        },
        (Some(_), None) => [Some(0), None],
        (None, Some(_)) => [Some(1), None],
        (None, None) => [None, None],
    })
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
    /// Next: flush the target slot (the one barrier of a commit; a commit
    /// that found no valid slot writes and flushes `a`, then `b`).
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
    /// No slot was valid: after the target, write the other slot too.
    both: bool,
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
        name::checked::<CommitError<_>>(name)?;
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
            both: false,
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Drive the commit to the end; returns once the document is durable.
    /// On error the last acknowledged document is still in the other slot.
    pub fn run(mut self, dir: &mut D) -> Result<(), CommitError<D::Error>> {
        crate::machine::run(&mut self, dir)
    }

    /// Perform one step. After an error the machine is [`State::Failed`];
    /// if the target slot had been written to, its header has been zeroed
    /// (best effort; see "A failed commit blanks its slot" in
    /// `docs/design.md`).
    pub fn step(&mut self, dir: &mut D) -> Result<Progress, CommitError<D::Error>> {
        crate::machine::step(self, dir)
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

    /// Whether no slot holds a valid document (the first commit, or one
    /// over two damaged slots).
    fn none_valid(&self) -> bool {
        self.infos.iter().all(|i| i.generation().is_none())
    }

    /// A slot must be formatted if it is missing, or is not a valid
    /// document and is shorter than a slot file must be. While no slot is
    /// valid, also if it is not blank and the other slot is empty (missing
    /// or blank): the bytes of a write cut short before any commit landed
    /// must not stay beside a slot that later becomes non-empty, or a cut
    /// would leave two written, invalid slots — which reads as corrupt,
    /// not absent.
    fn needs_format(&self, slot: usize) -> bool {
        let Some(info) = self.infos.get(slot) else {
            return false;
        };
        let other_empty = self.infos.get(slot ^ 1).is_some_and(SlotInfo::is_empty);
        match info.status {
            SlotStatus::Missing => true,
            SlotStatus::Valid { .. } => false,
            SlotStatus::Blank => info.size < self.file_len(),
            SlotStatus::Invalid { .. } => {
                info.size < self.file_len() || (self.none_valid() && other_empty)
            }
        }
    }

    /// After inspecting and formatting: the next slot that needs
    /// formatting, else the write of the target slot. A written slot is
    /// formatted before an empty one is created or filled, so that until
    /// the first commit lands one slot is empty.
    fn next_after(&mut self) -> State {
        let [a, b] = &self.infos;
        let order = if a.is_empty() && !b.is_empty() {
            [1, 0]
        } else {
            [0, 1]
        };
        for slot in order {
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

    /// The slot to write and its header: the slot that does not hold the
    /// newest valid document, with the newest generation plus one
    /// (wrapping). With no valid slot: `a` with generation 0, and `b`
    /// after it. Two valid slots whose generations
    /// do not order (which [`load`] reports as corrupt in `b`): `b`, after
    /// `a`'s generation, which settles the order.
    fn choose_target(&mut self) {
        let [a, b] = &self.infos;
        let (target, newest) = match (a.generation(), b.generation()) {
            (None, None) => (0, None),
            (None, Some(b)) => (0, Some(b)),
            (Some(a), None) => (1, Some(a)),
            (Some(a), Some(b)) => match compare_generations(b, a) {
                Some(Ordering::Greater) => (0, Some(b)),
                Some(Ordering::Less | Ordering::Equal) | None => (1, Some(a)),
            },
        };
        self.both = newest.is_none();
        self.target = target;
        let generation = newest.map_or(0, |g| g.wrapping_add(1));
        self.header = encode_header(self.capacity_of_target() as u32, generation, self.data);
    }

    /// With both slots open: what each holds, as far as this commit's
    /// choices need. The slot whose header is newer is checked in full
    /// first; if it is valid and the other's header is plausible and
    /// older (and its file no shorter, so that it needs no formatting),
    /// the other's payload is not read: valid or damaged, that slot is the
    /// one to overwrite, so the choices ([`Commit::next_after`]) are
    /// those a full check of both would make. Anything else — a header
    /// that does not tell, generations that do not order, the newer slot
    /// damaged — checks both in full.
    fn check_slots(&mut self) -> Result<(), CommitError<D::Error>> {
        let mut peeked = [SlotInfo::MISSING; 2];
        for (i, info) in peeked.iter_mut().enumerate() {
            if let (Some(Some(f)), Some(slot_name)) = (self.files.get_mut(i), self.names.get(i)) {
                *info = peek(f, slot_name)?;
            }
        }
        let [a, b] = peeked;
        let (Some(ga), Some(gb)) = (a.generation(), b.generation()) else {
            return self.inspect_both();
        };
        let Some(newer) = newer_of([ga, gb]) else {
            return self.inspect_both();
        };
        let older = newer ^ 1;
        let full = self.inspect_slot(newer)?;
        let peeked_older = if newer == 0 { b } else { a };
        // Were the older slot damaged, a full check would format it if it
        // were shorter than the valid one (`file_len`); so only one at least
        // as long is taken on its header's word.
        let older_info = if full.generation().is_some() && peeked_older.size >= full.size {
            peeked_older
        } else {
            self.inspect_slot(older)?
        };
        if let Some(info) = self.infos.get_mut(newer) {
            *info = full;
        }
        if let Some(info) = self.infos.get_mut(older) {
            *info = older_info;
        }
        Ok(())
    }

    /// Both slots checked in full.
    fn inspect_both(&mut self) -> Result<(), CommitError<D::Error>> {
        for i in 0..2 {
            let info = self.inspect_slot(i)?;
            if let Some(dst) = self.infos.get_mut(i) {
                *dst = info;
            }
        }
        Ok(())
    }

    /// [`inspect`] slot `i`, or [`SlotInfo::MISSING`] if it has no file.
    fn inspect_slot(&mut self, i: usize) -> Result<SlotInfo, CommitError<D::Error>> {
        match (self.files.get_mut(i), self.names.get(i)) {
            (Some(Some(f)), Some(slot_name)) => Ok(inspect(f, slot_name)?),
            _ => Ok(SlotInfo::MISSING),
        }
    }

    fn capacity_of_target(&self) -> usize {
        slot_capacity(self.infos.get(self.target).map_or(0, |i| i.size))
    }

    fn advance(&mut self, dir: &mut D) -> Result<State, CommitError<D::Error>> {
        match self.state {
            State::Inspect { slot } => {
                let i = usize::from(slot);
                let slot_name = self
                    .names
                    .get(i)
                    .ok_or(CommitError::LogicBug("slot index"))?;
                // Both slots hold the state (the older copy too): each is
                // checked and narrowed to this call's mode before anything
                // is written.
                let file = crate::fs::open_in_place(dir, slot_name, self.mode)?;
                if let Some(dst_file) = self.files.get_mut(i) {
                    *dst_file = file;
                }
                if slot == 0 {
                    return Ok(State::Inspect { slot: 1 });
                }
                self.check_slots()?;
                Ok(self.next_after())
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
                Ok(self.next_after())
            }
            State::SyncDir => {
                dir.sync_dir()
                    .map_err(|e| IoError::new(Op::SyncDir, self.name, e))?;
                self.created = false;
                Ok(self.next_after())
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
                self.touched = true;
                let written = if written < HEADER_LEN {
                    crate::machine::write_rest(f, slot_name, 0, &self.header, written)?
                } else {
                    let done = written - HEADER_LEN;
                    HEADER_LEN
                        + crate::machine::write_rest(
                            f,
                            slot_name,
                            HEADER_LEN as u64,
                            self.data,
                            done,
                        )?
                };
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
                if self.both {
                    // The first commit: slot `a` is durable; now `b`, so
                    // that once this commit returns no slot is empty.
                    self.both = false;
                    let generation = u64_le(&self.header, 16).wrapping_add(1);
                    self.target ^= 1;
                    self.header =
                        encode_header(self.capacity_of_target() as u32, generation, self.data);
                    return Ok(State::WriteSlot { written: 0 });
                }
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

impl<D: Dir> crate::machine::Machine<D> for Slots<'_, D> {
    type Error = CommitError<D::Error>;
    crate::machine::basics!(State, "slots", |m| m.name);

    fn transition(&mut self, dir: &mut D) -> Result<State, CommitError<D::Error>> {
        self.advance(dir)
    }

    /// A failed write or flush blanks the target slot (best effort; see
    /// "A failed commit blanks its slot" in `docs/design.md`).
    fn abandon(&mut self, _dir: &mut D) {
        if self.touched {
            self.blank_target();
        }
        self.files = [None, None];
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
            // Exactly the older slot changed; sizes never change. The
            // first commit filled both, `a` then `b`: `a` is older.
            let (changed, kept_name, kept) = if i % 2 == 0 {
                ("cfg.json.a", "cfg.json.b", b)
            } else {
                ("cfg.json.b", "cfg.json.a", a)
            };
            assert_eq!(dir.get(kept_name).unwrap(), kept);
            assert_eq!(dir.get(changed).unwrap().len(), SECTOR);
        }
    }

    #[test]
    fn a_torn_newest_slot_falls_back_to_the_older() {
        let mut dir = MemDir::default();
        commit(&mut dir, "cfg.json", b"old\n", Mode::PRIVATE, 100).unwrap();
        // The first commit filled both slots; this one overwrites `a`.
        commit(&mut dir, "cfg.json", b"new\n", Mode::PRIVATE, 100).unwrap();
        let mut a = dir.get("cfg.json.a").unwrap();
        a[HEADER_LEN + 1] ^= 0xFF;
        dir.set("cfg.json.a", &a);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"old\n");
        // The next commit overwrites the torn slot, not the only good one.
        let b = dir.get("cfg.json.b").unwrap();
        commit(&mut dir, "cfg.json", b"next\n", Mode::PRIVATE, 100).unwrap();
        assert_eq!(dir.get("cfg.json.b").unwrap(), b);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"next\n");
        let mut b = dir.get("cfg.json.b").unwrap();
        b[HEADER_LEN] ^= 0xFF;
        dir.set("cfg.json.b", &b);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"next\n");
    }

    #[test]
    fn the_fast_load_takes_only_what_the_full_check_calls_valid() {
        // The newer slot (`a`) intact up to its document but cut short
        // below its capacity: `inspect` calls it BadLength, so the load
        // must give the older document, on the fast road as on the full.
        let mut dir = MemDir::default();
        commit(&mut dir, "cfg.json", b"old\n", Mode::PRIVATE, 100).unwrap();
        commit(&mut dir, "cfg.json", b"new\n", Mode::PRIVATE, 100).unwrap();
        let a = dir.get("cfg.json.a").unwrap();
        dir.set("cfg.json.a", &a[..HEADER_LEN + 8]);
        assert!(matches!(
            status(&mut dir, "cfg.json.a"),
            SlotStatus::Invalid {
                kind: CorruptKind::BadLength,
                ..
            }
        ));
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"old\n");
        // Whole again, it is the newer and wins.
        dir.set("cfg.json.a", &a);
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"new\n");
        // Equal generations are the full road's verdict: corrupt.
        let b = dir.get("cfg.json.b").unwrap();
        dir.set("cfg.json.a", &b);
        assert!(matches!(
            load_str(&mut dir),
            Err(LoadError::Corrupt(Corrupt {
                kind: CorruptKind::SequenceGap { .. },
                ..
            }))
        ));
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

    /// A slot of `SECTOR` bytes holding `doc` with `generation`.
    fn slot_bytes(generation: u64, doc: &[u8]) -> Vec<u8> {
        let mut out = encode_header(capacity_for(100) as u32, generation, doc).to_vec();
        out.extend_from_slice(doc);
        out.resize(SECTOR, 0);
        out
    }

    /// `name` holds `doc` with `generation`: its header and document.
    fn assert_slot(dir: &MemDir, name: &str, generation: u64, doc: &[u8]) {
        let n = HEADER_LEN + doc.len();
        assert_eq!(
            dir.get(name).unwrap()[..n],
            slot_bytes(generation, doc)[..n]
        );
    }

    /// What `inspect` says of the slot file `name`.
    fn status(dir: &mut MemDir, name: &str) -> SlotStatus {
        let mut f = dir.open_read(name).unwrap().unwrap();
        inspect(&mut f, name).unwrap().status
    }

    fn flip(dir: &MemDir, name: &str, at: usize) {
        let mut s = dir.get(name).unwrap();
        s[at] ^= 0x20;
        dir.set(name, &s);
    }

    fn corrupt_at(
        r: Result<Option<Vec<u8>>, LoadError<embedded_io::ErrorKind>>,
    ) -> (std::string::String, u64, CorruptKind) {
        match r {
            Err(LoadError::Corrupt(c)) => (c.file.as_str().into(), c.offset, c.kind),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_damaged_slot_after_the_first_commit_never_reads_as_absent() {
        // The first commit fills both slots, so one flipped byte in either
        // leaves the document readable (issue: it read as absent).
        for (damaged, kept) in [("cfg.json.a", "cfg.json.b"), ("cfg.json.b", "cfg.json.a")] {
            let mut dir = MemDir::default();
            commit(&mut dir, "cfg.json", b"1\n", Mode::PRIVATE, 100).unwrap();
            flip(&dir, damaged, HEADER_LEN);
            assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"1\n");
            // The next commit overwrites the damaged slot, not the good one.
            let good = dir.get(kept).unwrap();
            commit(&mut dir, "cfg.json", b"2\n", Mode::PRIVATE, 100).unwrap();
            assert_eq!(dir.get(kept).unwrap(), good);
            assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"2\n");
        }
        // Both damaged: corrupt, loud, never absent.
        let mut dir = MemDir::default();
        commit(&mut dir, "cfg.json", b"1\n", Mode::PRIVATE, 100).unwrap();
        flip(&dir, "cfg.json.a", HEADER_LEN);
        flip(&dir, "cfg.json.b", 20);
        let (file, offset, kind) = corrupt_at(load_str(&mut dir));
        assert_eq!(
            (file.as_str(), offset, kind),
            ("cfg.json.a", 28, CorruptKind::BadChecksum)
        );
    }

    #[test]
    fn a_zeroed_header_over_a_document_is_not_blank() {
        // What a failed commit leaves (its header zeroed, its document
        // there), beside a damaged slot: corrupt, not "never written".
        let mut dir = MemDir::default();
        commit(&mut dir, "cfg.json", b"1\n", Mode::PRIVATE, 100).unwrap();
        let mut a = dir.get("cfg.json.a").unwrap();
        a[..HEADER_LEN].fill(0);
        dir.set("cfg.json.a", &a);
        assert_eq!(
            status(&mut dir, "cfg.json.a"),
            SlotStatus::Invalid {
                offset: 0,
                kind: CorruptKind::BadMagic
            }
        );
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"1\n");
        flip(&dir, "cfg.json.b", HEADER_LEN);
        let (file, offset, kind) = corrupt_at(load_str(&mut dir));
        assert_eq!(
            (file.as_str(), offset, kind),
            ("cfg.json.a", 0, CorruptKind::BadMagic)
        );
        // A slot of zeros only is blank.
        dir.set("cfg.json.a", &[0; SECTOR]);
        assert_eq!(status(&mut dir, "cfg.json.a"), SlotStatus::Blank);
    }

    /// Step a commit and load after every step: nothing acknowledged, so
    /// each load must be absent or the new document, never corrupt — also
    /// with the slot whose write is not yet flushed turned to garbage (a
    /// cut can land unflushed bytes as anything).
    fn step_and_load(dir: &mut MemDir, doc: &[u8]) {
        let mut m = Slots::<MemDir>::new("cfg.json", doc, Mode::PRIVATE, 1500).unwrap();
        loop {
            let unflushed = match m.state() {
                State::Format { slot, .. } | State::SyncFormat { slot } => Some(usize::from(slot)),
                State::WriteSlot { .. } | State::SyncSlot => Some(m.target),
                _ => None,
            };
            let mut images = std::vec![dir.clone()];
            if let Some(slot) = unflushed {
                let name = slot_name("cfg.json", slot);
                let image = MemDir::default();
                for n in dir.names() {
                    image.set(&n, &dir.get(&n).unwrap());
                }
                if let Some(bytes) = dir.get(&name) {
                    image.set(&name, &std::vec![0xA5; bytes.len()]);
                }
                images.push(image);
            }
            for image in &mut images {
                match load_str(image) {
                    Ok(None) => {}
                    Ok(Some(d)) => assert_eq!(d, doc, "at {}", m.state()),
                    Err(e) => panic!("at {}: {e:?}", m.state()),
                }
            }
            if m.step(dir).unwrap() == Progress::Done {
                break;
            }
        }
        assert_eq!(load_str(dir).unwrap().unwrap(), doc);
        assert_eq!(dir.get("cfg.json.a").unwrap().len(), 1536);
        assert_eq!(dir.get("cfg.json.b").unwrap().len(), 1536);
    }

    #[test]
    fn a_retried_first_commit_keeps_one_slot_empty_until_it_lands() {
        // A first commit cut short while formatting `a`, its bytes landed
        // as garbage: `a` is written, `b` missing. Before `b` is created,
        // `a` must be zeroed, or `b`'s own formatting would sit beside it.
        let mut dir = MemDir::default();
        dir.set("cfg.json.a", &[0xA5; 1536]);
        step_and_load(&mut dir, b"first\n");
        // Generations 0 and 1: the newest counts the acknowledged commits.
        assert!(matches!(
            status(&mut dir, "cfg.json.b"),
            SlotStatus::Valid { generation: 1, .. }
        ));
        // Cut short while formatting `b`, `a`'s name lost: format `b`
        // before creating `a`.
        let mut dir = MemDir::default();
        dir.set("cfg.json.b", &[0xA5; 700]);
        step_and_load(&mut dir, b"first\n");
        // Cut short writing `a`: `b` blank, `a` torn.
        let mut dir = MemDir::default();
        dir.set("cfg.json.a", &[0xA5; 1536]);
        dir.set("cfg.json.b", &[0; 1536]);
        step_and_load(&mut dir, b"first\n");
    }

    #[test]
    fn generations_wrap_past_u64_max() {
        let mut dir = MemDir::default();
        dir.set("cfg.json.a", &slot_bytes(u64::MAX - 1, b"old\n"));
        dir.set("cfg.json.b", &slot_bytes(u64::MAX, b"newest\n"));
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"newest\n");
        let b = dir.get("cfg.json.b").unwrap();
        commit(&mut dir, "cfg.json", b"wrapped\n", Mode::PRIVATE, 100).unwrap();
        // The older slot was written, with generation 0, newer than MAX.
        assert_eq!(dir.get("cfg.json.b").unwrap(), b);
        assert_slot(&dir, "cfg.json.a", 0, b"wrapped\n");
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"wrapped\n");
        let a = dir.get("cfg.json.a").unwrap();
        commit(&mut dir, "cfg.json", b"on\n", Mode::PRIVATE, 100).unwrap();
        assert_eq!(dir.get("cfg.json.a").unwrap(), a);
        assert_slot(&dir, "cfg.json.b", 1, b"on\n");
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"on\n");
    }

    #[test]
    fn equal_generations_are_corrupt_and_a_commit_settles_them() {
        let mut dir = MemDir::default();
        dir.set("cfg.json.a", &slot_bytes(u64::MAX, b"one\n"));
        dir.set("cfg.json.b", &slot_bytes(u64::MAX, b"two\n"));
        let (file, offset, kind) = corrupt_at(load_str(&mut dir));
        assert_eq!(file, "cfg.json.b");
        assert_eq!(offset, 16);
        assert_eq!(
            kind,
            CorruptKind::SequenceGap {
                expected: 0,
                found: u64::MAX
            }
        );
        // 2^63 apart: no order either.
        dir.set("cfg.json.b", &slot_bytes((1 << 63) - 1, b"two\n"));
        assert_eq!(corrupt_at(load_str(&mut dir)).1, 16);
        // A commit keeps `a` and writes `b` after it.
        let a = dir.get("cfg.json.a").unwrap();
        commit(&mut dir, "cfg.json", b"three\n", Mode::PRIVATE, 100).unwrap();
        assert_eq!(dir.get("cfg.json.a").unwrap(), a);
        assert_slot(&dir, "cfg.json.b", 0, b"three\n");
        assert_eq!(load_str(&mut dir).unwrap().unwrap(), b"three\n");
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
