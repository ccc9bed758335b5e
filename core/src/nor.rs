//! Slots on raw NOR flash (feature `nor`): a state's versions appended
//! into two regions of whole erase sectors, taking turns, through
//! `embedded-storage`'s [`NorFlash`] — no filesystem, no names.
//!
//! The ten lines a firmware engineer needs to keep a settings struct in
//! two flash sectors:
//!
//! ```
//! # use embedded_storage::nor_flash::NorFlash;
//! # fn demo<F: NorFlash>(flash: F) -> Result<(), fsatomic::Error<fsatomic::nor::Flash<F::Error>>> {
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Settings { volume: u8, muted: bool }
//!
//! // Two 4 KiB sectors at 0x3e000 hold the settings: the newest version
//! // and the one before, whatever a power cut interrupts.
//! let mut flash = fsatomic::nor::NorSlots::new(flash, 0x3e000, 4096)?;
//! let mut buf = [0u8; 128];
//! let mut s: Settings = flash.load_value(&mut buf)?.unwrap_or_default();
//! s.volume += 1;
//! flash.save(&mut buf, &s)?; // durable on return
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Each region is `region_len` bytes of whole erase sectors holding a run
//! of records, each laid out as a slot file ([`crate::slots`]) is, the
//! next one starting where the last ends:
//!
//! ```text
//!  [header: 32 bytes, as a slot's][0xFF to H][payload][0xFF to a unit] [header][..]...[0xFF ...]
//!   H = 32 rounded up to the flash's write and read units (at most 32 bytes each)
//! ```
//!
//! The header is a slot header byte for byte (magic `FSATSLOT`, version 1,
//! capacity = `region_len - H`, generation, length, CRC-32C over the
//! header's first 28 bytes and the payload). An erased header (all `0xFF`)
//! ends a region's run; a region whose first header is erased, or all
//! zero, is blank.
//!
//! # Commit
//!
//! ```text
//!  Inspect ──► (Erase) ──► ProgramBody ──► ProgramTail ──► ProgramHeader ──► Done
//!  both          the other   the payload's    its last         the header,
//!  regions'      region,     whole write      partial unit,    generation
//!  records       when the    units            0xFF-padded      newest + 1
//!                newest's
//!                is full
//! ```
//!
//! A commit appends its record after the newest one, in the same region,
//! while the space there reads erased (twice); when the region is full, or
//! something other than erased bytes follows its last valid record (a
//! commit cut short), it erases the other region and starts it. One erase
//! per region-full of commits (for 200-byte documents in 4 KiB sectors,
//! one per 17), no flush (a NOR program is durable when it returns).
//!
//! A cut anywhere leaves every record written before untouched — appends
//! program only erased bytes after them, and the region erased is never
//! the one holding the newest record — and the record being written fails
//! its CRC until its last unit is programmed: half-erased, half-programmed
//! or unstable bits all read as a header or payload whose CRC does not
//! match (a reader checks the CRC over the one copy it read). The check
//! that the space to append to reads erased is load-bearing: a commit cut
//! after its payload and before its header leaves programmed bytes behind
//! an erased header, and programming over them would corrupt the next
//! record after its acknowledgement (the explorer finds 624 violations
//! without it). The payload goes first so that the header is the commit
//! point, but the argument does not rest on that order (the explorer's
//! `header-first` mutant confirms it).
//!
//! A unit whose program was cut may read either value, differently at
//! each read. A reader inspects each record twice and takes one that reads
//! two ways for what it is — a commit cut short, invalid — so it is never
//! the newest version one moment and gone the next, and nothing is ever
//! appended after it.
//!
//! Load takes the newest valid record of the two regions (the last of
//! each run, by generation); none valid and a region blank is absent (the
//! first commit was cut short); none valid and no region blank is
//! [`CorruptKind`] damage. The previous version is the record before it,
//! in its region or the other.

use core::cmp::Ordering;
use core::fmt;

use embedded_storage::nor_flash::{NorFlash, NorFlashError};

use crate::bytes::{u32_le, u64_le};
use crate::crc::Crc32c;
use crate::error::{CommitError, Corrupt, CorruptKind, IoError, LoadError};
use crate::fs::Op;
use crate::machine::{self, Machine, Progress};
use crate::slots::{HEADER_LEN, MAGIC, VERSION, compare_generations, encode_header};

/// The largest write or read unit supported: the header and a payload's
/// last unit are staged on the stack in one (internal flash programs 1 to
/// 32 bytes at a time).
pub const MAX_UNIT: usize = 32;

/// The names the errors give the two regions.
const REGIONS: [&str; 2] = ["nor region a", "nor region b"];

/// The name errors give region `i`.
fn region_name(i: usize) -> &'static str {
    REGIONS.get(i).copied().unwrap_or("nor")
}

/// A flash error, shown by its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flash<E>(pub E);

impl<E: NorFlashError> fmt::Display for Flash<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flash error: {:?}", self.0.kind())
    }
}

impl<E: NorFlashError> embedded_io::Error for Flash<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl<E: NorFlashError> core::error::Error for Flash<E> {}

/// A failure inside the NOR code, kept small: it travels up the frames of
/// a small stack, and becomes one of the crate's errors (which name the
/// region in a [`crate::name::FileName`] of 160 bytes) only at the public
/// calls ([`Fault::commit`], [`Fault::load`]). The [`Machine`] error of
/// [`NorCommit`].
#[derive(Clone, Copy, Debug)]
pub enum Fault<E> {
    /// The flash failed: `op` on region `region` at `offset`.
    Flash {
        /// What failed.
        op: Op,
        /// Which region (0 or 1).
        region: usize,
        /// Where in it.
        offset: u64,
        /// The driver's error.
        error: E,
    },
    /// Region `region` is damaged at `offset`.
    Corrupt {
        /// Which region.
        region: usize,
        /// Where in it.
        offset: u64,
        /// What is wrong.
        kind: CorruptKind,
    },
    /// The document of region `region` (`size` bytes) does not fit the
    /// caller's buffer.
    TooLarge {
        /// Which region.
        region: usize,
        /// The document's size, rounded up to the read unit.
        size: u64,
        /// The buffer's.
        capacity: usize,
    },
    /// A document larger than a region holds.
    Document {
        /// Its size.
        size: usize,
        /// What a region holds.
        capacity: usize,
    },
    /// An empty document (never committed: blank is absent).
    Empty,
    /// A state the code should never reach.
    Logic(&'static str),
}

impl<E> Fault<E> {
    /// As a commit's error. A region that reads as damaged is no error to
    /// a commit, which overwrites it.
    pub fn commit(self) -> CommitError<Flash<E>> {
        match self {
            Fault::Flash {
                op,
                region,
                offset,
                error,
            } => CommitError::Io(IoError::new(op, region_name(region), Flash(error)).at(offset)),
            Fault::Document { size, capacity } => CommitError::TooLarge {
                file: crate::name::owned("nor"),
                size,
                capacity,
            },
            Fault::Empty => CommitError::EmptyDocument {
                file: crate::name::owned("nor"),
            },
            Fault::Logic(what) => CommitError::LogicBug(what),
            Fault::Corrupt { .. } | Fault::TooLarge { .. } => {
                CommitError::LogicBug("a region check failed otherwise than by I/O")
            }
        }
    }

    /// As a load's error.
    pub fn load(self) -> LoadError<Flash<E>> {
        match self {
            Fault::Flash {
                op,
                region,
                offset,
                error,
            } => LoadError::Io(IoError::new(op, region_name(region), Flash(error)).at(offset)),
            Fault::Corrupt {
                region,
                offset,
                kind,
            } => Corrupt::new(region_name(region), offset, kind).into(),
            Fault::TooLarge {
                region,
                size,
                capacity,
            } => LoadError::TooLarge {
                file: crate::name::owned(region_name(region)),
                size,
                capacity,
            },
            Fault::Document { .. } | Fault::Empty => LoadError::LogicBug("a commit fault"),
            Fault::Logic(what) => LoadError::LogicBug(what),
        }
    }
}

/// What a record header holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// Erased (all `0xFF`), or, at a region's start, all zero.
    Blank,
    /// `body`: the CRC-32C of the payload alone, to tell two records that
    /// hold the same document.
    Valid {
        generation: u64,
        len: usize,
        body: u32,
    },
    Invalid {
        offset: u64,
        kind: CorruptKind,
    },
}

/// A valid record: where it starts in its region, and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    at: usize,
    generation: u64,
    len: usize,
    body: u32,
}

/// A region read from its start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Scan {
    /// Its newest valid record (the last one).
    last: Option<Record>,
    /// Where the record before it starts (read again when asked for: the
    /// scan stays small on a small stack).
    before: Option<usize>,
    /// Where its first erased header after the last valid record is; `None`
    /// when something else follows it (a commit cut short, damage) or the
    /// region is full.
    free: Option<usize>,
    /// Its first header is blank: nothing written since its erase.
    blank: bool,
    /// Where the first damage is (read again for the verdict).
    damage: Option<usize>,
}

/// The newest record and its region, and where the free space after it
/// starts.
type Newest = (Option<(usize, Record)>, Option<usize>);

/// Both regions, and the indices of those with a valid record, newest
/// first.
type Survey = ([Scan; 2], [Option<usize>; 2]);

/// A state kept in two regions of a NOR flash.
pub struct NorSlots<F> {
    flash: F,
    base: u32,
    region_len: u32,
}

impl<F: NorFlash> NorSlots<F> {
    /// The larger of the write and read units (both powers of two): a
    /// multiple of each.
    const UNIT: usize = if F::WRITE_SIZE > F::READ_SIZE {
        F::WRITE_SIZE
    } else if F::READ_SIZE == 0 {
        1
    } else {
        F::READ_SIZE
    };

    /// The offset of the payload in a record.
    const BODY: usize = round_up(
        round_up(HEADER_LEN, F::WRITE_SIZE),
        if F::READ_SIZE == 0 { 1 } else { F::READ_SIZE },
    );

    /// The state kept in the two regions of `region_len` bytes each at
    /// `base` and `base + region_len`. Both must be whole erase sectors
    /// inside the flash, with room for a header; write and read units
    /// larger than [`MAX_UNIT`] are refused. Touches nothing.
    pub fn new(flash: F, base: u32, region_len: u32) -> Result<Self, CommitError<Flash<F::Error>>> {
        let erase = u32::try_from(F::ERASE_SIZE).unwrap_or(u32::MAX).max(1);
        let end = u64::from(base) + 2 * u64::from(region_len);
        if F::WRITE_SIZE > MAX_UNIT || F::READ_SIZE > MAX_UNIT || F::WRITE_SIZE == 0 {
            return Err(CommitError::Layout {
                why: "a flash write or read unit over 32 bytes",
            });
        }
        if !base.is_multiple_of(erase)
            || !region_len.is_multiple_of(erase)
            || end > flash.capacity() as u64
        {
            return Err(CommitError::Layout {
                why: "the regions must be whole erase sectors inside the flash",
            });
        }
        if (region_len as usize) <= Self::BODY {
            return Err(CommitError::Layout {
                why: "a region has no room past its header",
            });
        }
        Ok(NorSlots {
            flash,
            base,
            region_len,
        })
    }

    /// The largest document a region holds.
    pub fn capacity(&self) -> usize {
        self.region_len as usize - Self::BODY
    }

    /// The bytes a record of a `len`-byte document takes in a region: its
    /// header and its payload, rounded up to the write and read units, so
    /// that the next record starts aligned.
    fn span(len: usize) -> usize {
        Self::BODY + round_up(len, Self::UNIT)
    }

    /// The flash.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// Take the flash back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    fn start(&self, i: usize) -> u32 {
        self.base + if i == 0 { 0 } else { self.region_len }
    }

    fn fault(op: Op, region: usize, offset: usize) -> impl FnOnce(F::Error) -> Fault<F::Error> {
        move |error| Fault::Flash {
            op,
            region,
            offset: offset as u64,
            error,
        }
    }

    /// Read the record header at `at` in region `i` and check its payload:
    /// read into `into` when given (a valid payload is left there), else
    /// streamed through a small buffer. A reader checks the one copy it
    /// keeps, so a cell that reads differently each time cannot pass and
    /// then change.
    // Not inlined: the callers run it one region, one record after the
    // other, and a small stack holds one frame of it at a time.
    #[inline(never)]
    fn inspect(
        &mut self,
        i: usize,
        at: usize,
        into: Option<&mut [u8]>,
    ) -> Result<Region, Fault<F::Error>> {
        let read = |offset: usize| Self::fault(Op::Read, i, at + offset);
        let mut h = [0u8; MAX_UNIT];
        let head = h.get_mut(..Self::BODY.min(MAX_UNIT)).unwrap_or_default();
        let base = self.start(i) + at as u32;
        self.flash.read(base, head).map_err(read(0))?;
        let header = head.get(..HEADER_LEN).unwrap_or_default();
        if header.iter().all(|&b| b == 0xff) || (at == 0 && header.iter().all(|&b| b == 0)) {
            return Ok(Region::Blank);
        }
        let invalid = |offset: u64, kind| Ok(Region::Invalid { offset, kind });
        if header.get(..8) != Some(&MAGIC[..]) {
            return invalid(0, CorruptKind::BadMagic);
        }
        let version = u32_le(header, 8) as u16;
        if version != VERSION {
            return invalid(8, CorruptKind::UnsupportedVersion(version));
        }
        let len = u32_le(header, 24) as usize;
        let room = (self.region_len as usize).saturating_sub(at + Self::BODY);
        if u32_le(header, 12) as usize != self.capacity() || len == 0 || len > room {
            return invalid(24, CorruptKind::BadLength);
        }
        let mut crc = Crc32c::new();
        crc.update(header.get(..28).unwrap_or_default());
        let (generation, stored) = (u64_le(header, 16), u32_le(header, 28));
        let mut body = Crc32c::new();
        let unit = F::READ_SIZE.max(1);
        let payload_at = base + Self::BODY as u32;
        match into {
            Some(buf) => {
                let padded = round_up(len, unit);
                let capacity = buf.len();
                let Some(dst) = buf.get_mut(..padded) else {
                    return Err(Fault::TooLarge {
                        region: i,
                        size: padded as u64,
                        capacity,
                    });
                };
                self.flash.read(payload_at, dst).map_err(read(Self::BODY))?;
                let payload = dst.get(..len).unwrap_or_default();
                crc.update(payload);
                body.update(payload);
            }
            None => {
                // The header is parsed: its buffer streams the payload.
                let chunk = &mut h;
                let step = MAX_UNIT / unit * unit;
                let mut done = 0;
                while done < len {
                    let n = step.min(round_up(len - done, unit));
                    let dst = chunk.get_mut(..n).unwrap_or_default();
                    self.flash
                        .read(payload_at + done as u32, dst)
                        .map_err(read(Self::BODY + done))?;
                    let part = dst.get(..n.min(len - done)).unwrap_or_default();
                    crc.update(part);
                    body.update(part);
                    done += n;
                }
            }
        }
        if crc.finish() != stored {
            return invalid(28, CorruptKind::BadChecksum);
        }
        Ok(Region::Valid {
            generation,
            len,
            body: body.finish(),
        })
    }

    /// The record at `at` in region `i`, read twice: one that reads two
    /// ways holds a unit whose program a power cut interrupted (its cells
    /// read either value), so it is a commit cut short — invalid, whatever
    /// one read said — and nothing is ever appended after it.
    fn stable(&mut self, i: usize, at: usize) -> Result<Region, Fault<F::Error>> {
        let first = self.inspect(i, at, None)?;
        if first == Region::Blank || first == self.inspect(i, at, None)? {
            return Ok(first);
        }
        Ok(Region::Invalid {
            offset: 28,
            kind: CorruptKind::BadChecksum,
        })
    }

    /// Region `i`, its records read from the start.
    // Not inlined: the callers run it one region, one record after the
    // other, and a small stack holds one frame of it at a time.
    #[inline(never)]
    fn scan(&mut self, i: usize) -> Result<Scan, Fault<F::Error>> {
        let mut scan = Scan::default();
        let mut at = 0;
        while at + Self::BODY < self.region_len as usize {
            match self.stable(i, at)? {
                Region::Blank => {
                    scan.blank = at == 0;
                    scan.free = Some(at);
                    break;
                }
                Region::Valid {
                    generation,
                    len,
                    body,
                } => {
                    scan.before = scan.last.map(|r| r.at);
                    scan.last = Some(Record {
                        at,
                        generation,
                        len,
                        body,
                    });
                    at += Self::span(len);
                }
                Region::Invalid { .. } => {
                    scan.damage = Some(at);
                    break;
                }
            }
        }
        Ok(scan)
    }

    /// Whether the `n` bytes at `at` in region `i` are all erased, read
    /// twice (a unit cut mid-program may read erased once).
    // Not inlined: the callers run it one region, one record after the
    // other, and a small stack holds one frame of it at a time.
    #[inline(never)]
    fn erased(&mut self, i: usize, at: usize, n: usize) -> Result<bool, Fault<F::Error>> {
        let unit = F::READ_SIZE.max(1);
        let step = MAX_UNIT / unit * unit;
        let mut chunk = [0u8; MAX_UNIT];
        for _ in 0..2 {
            let mut done = 0;
            while done < n {
                let len = step.min(round_up(n - done, unit));
                let dst = chunk.get_mut(..len).unwrap_or_default();
                let from = self.start(i) + (at + done) as u32;
                self.flash
                    .read(from, dst)
                    .map_err(Self::fault(Op::Read, i, at + done))?;
                if dst.iter().any(|&b| b != 0xff) {
                    return Ok(false);
                }
                done += len;
            }
        }
        Ok(true)
    }

    /// Both regions, and those with a valid record, newest first.
    #[inline(never)]
    fn survey(&mut self) -> Result<Survey, Fault<F::Error>> {
        let scans = [self.scan(0)?, self.scan(1)?];
        let generation = |s: &Scan| s.last.map(|r| r.generation);
        let order = match (generation(&scans[0]), generation(&scans[1])) {
            (Some(a), Some(b)) => match compare_generations(b, a) {
                Some(Ordering::Greater) => [Some(1), Some(0)],
                Some(Ordering::Less) => [Some(0), Some(1)],
                _ => {
                    let kind = CorruptKind::SequenceGap {
                        expected: a.wrapping_add(1),
                        found: b,
                    };
                    let at = scans[1].last.map_or(0, |r| r.at) as u64;
                    return Err(Fault::Corrupt {
                        region: 1,
                        offset: at + 16,
                        kind,
                    });
                }
            },
            (Some(_), None) => [Some(0), None],
            (None, Some(_)) => [Some(1), None],
            (None, None) => [None, None],
        };
        Ok((scans, order))
    }

    /// For a commit: the newest record and its region, and where the free
    /// space after it starts (`None`: none, or not erased). Two regions
    /// whose newest records do not order (damage) give region a's, so
    /// that the commit overwrites b, the one a load blames. Scans one
    /// region at a time, keeping only this much of each.
    #[inline(never)]
    fn newest(&mut self) -> Result<Newest, Fault<F::Error>> {
        let a = self.scan(0)?;
        let (a_last, a_free) = (a.last, a.free);
        let b = self.scan(1)?;
        Ok(match (a_last, b.last) {
            (Some(x), Some(y))
                if compare_generations(y.generation, x.generation) == Some(Ordering::Greater) =>
            {
                (Some((1, y)), b.free)
            }
            (Some(x), Some(y))
                if compare_generations(y.generation, x.generation) != Some(Ordering::Less) =>
            {
                // Unordered: overwrite b (its free space is not offered).
                (Some((0, x)), None)
            }
            (Some(x), _) => (Some((0, x)), a_free),
            (None, Some(y)) => (Some((1, y)), b.free),
            (None, None) => (None, None),
        })
    }

    /// The newest record (its region and where it is), and where the one
    /// before it is: in its region, or the other region's newest.
    fn versions(survey: &Survey) -> [Option<(usize, usize)>; 2] {
        let (scans, order) = survey;
        let Some(Some(r)) = order.first().copied() else {
            return [None, None];
        };
        let scan = scans.get(r).copied().unwrap_or_default();
        let newest = scan.last.map(|rec| (r, rec.at));
        let previous = match scan.before {
            Some(at) => Some((r, at)),
            None => order
                .get(1)
                .copied()
                .flatten()
                .and_then(|o| scans.get(o).and_then(|s| s.last).map(|rec| (o, rec.at))),
        };
        [newest, previous]
    }

    /// Load the newest valid version into the front of `buf`: its length,
    /// or `Ok(None)` if none was ever committed. `buf` must hold the
    /// document rounded up to the read size.
    pub fn load(&mut self, buf: &mut [u8]) -> Result<Option<usize>, LoadError<Flash<F::Error>>> {
        self.nth(buf, 0).map_err(Fault::load)
    }

    /// Load the previous version — the record before the newest, in its
    /// region or the other — as [`crate::slots::load_previous`]: `Ok(None)`
    /// if there is none (the first version, or a cut commit was erasing
    /// the region that held it), or if it is the same document as the
    /// newest.
    pub fn load_previous(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<usize>, LoadError<Flash<F::Error>>> {
        self.nth(buf, 1).map_err(Fault::load)
    }

    fn nth(&mut self, buf: &mut [u8], n: usize) -> Result<Option<usize>, Fault<F::Error>> {
        let (versions, verdict) = {
            let survey = self.survey()?;
            let blank = survey.0.iter().any(|s| s.blank);
            let damage = survey
                .0
                .iter()
                .enumerate()
                .find_map(|(i, s)| s.damage.map(|at| (i, at)));
            (Self::versions(&survey), (blank, damage))
        };
        let Some((i, at)) = versions.get(n).copied().flatten() else {
            if let (0, (false, Some((i, at)))) = (n, verdict) {
                // Damage, not a commit cut short: say what it is.
                let (offset, kind) = match self.stable(i, at)? {
                    Region::Invalid { offset, kind } => (offset, kind),
                    _ => (28, CorruptKind::BadChecksum),
                };
                return Err(Fault::Corrupt {
                    region: i,
                    offset: at as u64 + offset,
                    kind,
                });
            }
            return Ok(None);
        };
        let found = self.stable(i, at)?;
        if let (1, Some((j, newest))) = (n, versions[0])
            && let (
                Region::Valid { len, body, .. },
                Region::Valid {
                    len: l, body: b, ..
                },
            ) = (found, self.stable(j, newest)?)
            && len == l
            && body == b
        {
            return Ok(None);
        }
        // Read it again into `buf`, checking the copy it keeps against the
        // two reads before.
        match self.inspect(i, at, Some(buf))? {
            Region::Valid { len, .. } if self.inspect(i, at, Some(buf))? == found => Ok(Some(len)),
            // Read another way than before: an unstable cell after all (a
            // draw can repeat).
            _ => Err(Fault::Corrupt {
                region: i,
                offset: at as u64 + 28,
                kind: CorruptKind::BadChecksum,
            }),
        }
    }
}

impl<F: NorFlash> NorSlots<F> {
    /// Encode `value` into `buf` as compact JSON and commit it. Durable on
    /// return. (Compact, unlike [`crate::Store::save`]'s indented
    /// documents: a settings struct in flash is read by its firmware, and
    /// the indenter is code a small part pays for.)
    pub fn save<T: serde::Serialize>(
        &mut self,
        buf: &mut [u8],
        value: &T,
    ) -> Result<(), crate::StoreError<Flash<F::Error>>> {
        let capacity = buf.len();
        let len = serde_json_core::to_slice(value, buf).map_err(|_| crate::StoreError::Encode {
            file: crate::name::owned("nor"),
            error: crate::EncodeError::BufferTooSmall {
                needed: None,
                capacity,
            },
        })?;
        // Run the machine here rather than through `commit`: its small
        // fault becomes the big error only on the way out.
        let data = buf.get(..len).unwrap_or_default();
        let run = match NorCommit::new(data) {
            Ok(mut commit) => machine::run(&mut commit, self),
            Err(fault) => Err(fault),
        };
        run.map_err(|f| crate::StoreError::Commit(f.commit()))
    }

    /// Load and decode the newest version: `Ok(None)` if none was ever
    /// committed. `buf` holds the document and, after it, room to unescape
    /// its longest string. The CRC vouches for the bytes; a document that
    /// does not decode as `T` is [`CorruptKind::Shape`].
    pub fn load_value<T: serde::de::DeserializeOwned>(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<T>, crate::StoreError<Flash<F::Error>>> {
        let Some(len) = self
            .nth(buf, 0)
            .map_err(|f| crate::StoreError::Load(f.load()))?
        else {
            return Ok(None);
        };
        let capacity = buf.len();
        let (text, scratch) = buf.split_at_mut(len.min(capacity));
        match serde_json_core::from_slice_escaped::<T>(text, scratch) {
            Ok((value, _)) => Ok(Some(value)),
            Err(serde_json_core::de::Error::EscapedStringIsTooLong) => Err(LoadError::TooLarge {
                file: crate::name::owned("nor"),
                size: len as u64,
                capacity,
            }
            .into()),
            Err(_) => Err(LoadError::Corrupt(Corrupt::new(
                "nor",
                0,
                CorruptKind::Shape("the document does not match the stored type"),
            ))
            .into()),
        }
    }

    /// Commit `data` as the newest version: one erase and one program
    /// pass over the region that does not hold the newest valid version.
    /// Durable on return.
    ///
    /// **Power cut during the call:** the newest acknowledged version
    /// stays (the other region is never touched), and the region being
    /// written reads as invalid until its header's last unit is
    /// programmed.
    pub fn commit(&mut self, data: &[u8]) -> Result<(), CommitError<Flash<F::Error>>> {
        let run = match NorCommit::new(data) {
            Ok(mut commit) => machine::run(&mut commit, self),
            Err(fault) => Err(fault),
        };
        run.map_err(Fault::commit)
    }
}

/// Where a [`NorCommit`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Next: read both regions, pick the target and the generation.
    Inspect,
    /// Next: erase the target region.
    Erase,
    /// Next: program the payload's whole write units.
    ProgramBody,
    /// Next: program its last partial unit, padded with `0xFF`.
    ProgramTail,
    /// Next: program the header (the commit point).
    ProgramHeader,
    /// The commit is durable.
    Done,
    /// A step failed.
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Inspect => "inspect",
            State::Erase => "erase",
            State::ProgramBody => "program-body",
            State::ProgramTail => "program-tail",
            State::ProgramHeader => "program-header",
            State::Done => "done",
            State::Failed => "failed",
        })
    }
}

/// One commit to a [`NorSlots`], as a state machine (one erase or one
/// program per step), for a board that steps it between its own work.
#[derive(Debug)]
pub struct NorCommit<'a> {
    data: &'a [u8],
    state: State,
    target: usize,
    /// Where the record goes in the target region.
    at: usize,
    generation: u64,
}

impl<'a> NorCommit<'a> {
    /// A commit of `data` (not empty). Touches nothing.
    pub fn new<E>(data: &'a [u8]) -> Result<Self, Fault<E>> {
        if data.is_empty() {
            return Err(Fault::Empty);
        }
        Ok(NorCommit {
            data,
            state: State::Inspect,
            target: 0,
            at: 0,
            generation: 0,
        })
    }

    /// Perform one step.
    pub fn step<F: NorFlash>(
        &mut self,
        slots: &mut NorSlots<F>,
    ) -> Result<Progress, CommitError<Flash<F::Error>>> {
        machine::step(self, slots).map_err(Fault::commit)
    }
}

impl<F: NorFlash> Machine<NorSlots<F>> for NorCommit<'_> {
    type Error = Fault<F::Error>;
    crate::machine::basics!(State, "nor", |m| REGIONS
        .get(m.target)
        .copied()
        .unwrap_or("nor"));

    fn transition(&mut self, slots: &mut NorSlots<F>) -> Result<State, Self::Error> {
        let w = F::WRITE_SIZE.max(1);
        let region = slots.start(self.target);
        let start = region + self.at as u32;
        let whole = self.data.len() / w * w;
        // One staging unit for the tail and the header.
        let mut unit = [0xffu8; MAX_UNIT];
        match self.state {
            State::Inspect => {
                if self.data.len() > slots.capacity() {
                    return Err(Fault::Document {
                        size: self.data.len(),
                        capacity: slots.capacity(),
                    });
                }
                // The newest record, its region, and where the free space
                // after it starts.
                let (newest, free) = slots.newest()?;
                let last = newest.map(|(_, r)| r);
                self.generation = last.map_or(0, |r| r.generation.wrapping_add(1));
                let newest = newest.map(|(i, _)| i);
                // Append after the newest record while its region has room
                // that reads erased; else erase the other region and start
                // it.
                let need = NorSlots::<F>::span(self.data.len());
                if let (Some(r), Some(free), Some(_)) = (newest, free, last)
                    && free + need <= slots.region_len as usize
                    && slots.erased(r, free, need)?
                {
                    self.target = r;
                    self.at = free;
                    return Ok(State::ProgramBody);
                }
                self.target = newest.map_or(0, |r| 1 - r);
                self.at = 0;
                Ok(State::Erase)
            }
            State::Erase => {
                slots
                    .flash
                    .erase(region, region + slots.region_len)
                    .map_err(NorSlots::<F>::fault(Op::Erase, self.target, 0))?;
                Ok(State::ProgramBody)
            }
            State::ProgramBody => {
                if whole > 0 {
                    let body = self.data.get(..whole).unwrap_or_default();
                    slots
                        .flash
                        .write(start + NorSlots::<F>::BODY as u32, body)
                        .map_err(NorSlots::<F>::fault(
                            Op::Write,
                            self.target,
                            self.at + NorSlots::<F>::BODY,
                        ))?;
                }
                Ok(if whole < self.data.len() {
                    State::ProgramTail
                } else {
                    State::ProgramHeader
                })
            }
            State::ProgramTail => {
                let rest = self.data.get(whole..).unwrap_or_default();
                if let Some(dst) = unit.get_mut(..rest.len()) {
                    dst.copy_from_slice(rest);
                }
                let at = start + (NorSlots::<F>::BODY + whole) as u32;
                slots
                    .flash
                    .write(at, unit.get(..w).unwrap_or_default())
                    .map_err(NorSlots::<F>::fault(
                        Op::Write,
                        self.target,
                        self.at + NorSlots::<F>::BODY + whole,
                    ))?;
                Ok(State::ProgramHeader)
            }
            State::ProgramHeader => {
                let capacity = u32::try_from(slots.capacity()).unwrap_or(u32::MAX);
                if let Some(dst) = unit.get_mut(..HEADER_LEN) {
                    dst.copy_from_slice(&encode_header(capacity, self.generation, self.data));
                }
                let len = round_up(HEADER_LEN, w);
                slots
                    .flash
                    .write(start, unit.get(..len).unwrap_or_default())
                    .map_err(NorSlots::<F>::fault(Op::Write, self.target, self.at))?;
                Ok(State::Done)
            }
            State::Done | State::Failed => Err(Fault::Logic("step after the end")),
        }
    }
}

const fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
}

/// A NOR flash in RAM that obeys NOR rules, with power cuts (features
/// `nor` and `ram`): the medium of a board without flash driver in tests,
/// and of the crash explorer's NOR model.
///
/// - erase sets whole sectors to `0xFF`; programming only clears bits (a
///   program over programmed bytes ANDs them, as the cells do);
/// - a power cut during an erase leaves each write unit of the range old
///   or `0xFF`; during a program, a prefix of the units programmed and the
///   unit in flight with some of its bits cleared — and that unit reads
///   unstably (its partial and its full value, alternately) until erased;
/// - which of those a cut leaves is drawn from the cut's seed; seeds 0
///   and 1 are the extremes (nothing, everything but the last bit).
#[cfg(any(test, feature = "ram"))]
pub mod ram {
    use embedded_storage::nor_flash::{
        ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
    };

    /// Why a [`RamNor`] call failed.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum RamNorError {
        /// The power is cut (until [`RamNor::power_on`]).
        PowerCut,
        /// Offset or length not a multiple of the unit.
        NotAligned,
        /// Outside the flash.
        OutOfBounds,
    }

    impl NorFlashError for RamNorError {
        fn kind(&self) -> NorFlashErrorKind {
            match self {
                RamNorError::NotAligned => NorFlashErrorKind::NotAligned,
                RamNorError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
                RamNorError::PowerCut => NorFlashErrorKind::Other,
            }
        }
    }

    /// At most this many units read unstably at once.
    const UNSTABLE: usize = 8;

    /// `SIZE` bytes of NOR flash, programmed in units of `WRITE` bytes and
    /// erased in sectors of `ERASE` bytes; reads of any size.
    #[derive(Clone, Debug)]
    pub struct RamNor<const SIZE: usize, const WRITE: usize, const ERASE: usize> {
        bytes: [u8; SIZE],
        /// Units that read unstably: their offset, their other value, and
        /// how often they were read (each read gives the other value than
        /// the last).
        unstable: heapless::Vec<(u32, [u8; WRITE], u32), UNSTABLE>,
        ops: u32,
        erases: u32,
        programmed: u64,
        cut: Option<(u32, u64)>,
        dead: bool,
    }

    impl<const SIZE: usize, const WRITE: usize, const ERASE: usize> Default
        for RamNor<SIZE, WRITE, ERASE>
    {
        fn default() -> Self {
            RamNor {
                bytes: [0xff; SIZE],
                unstable: heapless::Vec::new(),
                ops: 0,
                erases: 0,
                programmed: 0,
                cut: None,
                dead: false,
            }
        }
    }

    impl<const SIZE: usize, const WRITE: usize, const ERASE: usize> RamNor<SIZE, WRITE, ERASE> {
        /// A flash whose cells all read `0`, as a `static` costs no image
        /// space (`.bss`); [`RamNor::erase_all`] before use. `Default`
        /// gives an erased one.
        pub const fn zeroed() -> Self {
            RamNor {
                bytes: [0; SIZE],
                unstable: heapless::Vec::new(),
                ops: 0,
                erases: 0,
                programmed: 0,
                cut: None,
                dead: false,
            }
        }

        /// Erase everything and forget every cut: a new part.
        pub fn erase_all(&mut self) {
            self.bytes.fill(0xff);
            self.unstable.clear();
            self.dead = false;
            self.cut = None;
        }

        /// Cut the power during operation number `op` (counting erases and
        /// programs from 0 since this flash was made), leaving what `seed`
        /// draws.
        pub fn cut_at(&mut self, op: u32, seed: u64) {
            self.cut = Some((op, seed));
        }

        /// Power back on: calls work again; what the cut left stays.
        pub fn power_on(&mut self) {
            self.dead = false;
            self.cut = None;
        }

        /// Erases and programs so far.
        pub fn ops(&self) -> u32 {
            self.ops
        }

        /// Sectors erased so far (wear), and bytes programmed.
        pub fn wear(&self) -> (u32, u64) {
            (self.erases, self.programmed)
        }

        /// The raw bytes.
        pub fn bytes(&self) -> &[u8] {
            &self.bytes
        }

        /// Whether this operation is the one cut, and its seed.
        fn begin(&mut self) -> Result<Option<u64>, RamNorError> {
            if self.dead {
                return Err(RamNorError::PowerCut);
            }
            let op = self.ops;
            self.ops += 1;
            Ok(match self.cut {
                Some((at, seed)) if at == op => {
                    self.dead = true;
                    Some(seed)
                }
                _ => None,
            })
        }

        fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, RamNorError> {
            let start = offset as usize;
            let end = start.checked_add(len).ok_or(RamNorError::OutOfBounds)?;
            if end > SIZE {
                return Err(RamNorError::OutOfBounds);
            }
            Ok(start..end)
        }
    }

    /// A seeded draw: splitmix64 of the seed and a counter.
    fn draw(seed: u64, n: u64) -> u64 {
        let mut z = seed
            .wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    impl<const SIZE: usize, const WRITE: usize, const ERASE: usize> ErrorType
        for RamNor<SIZE, WRITE, ERASE>
    {
        type Error = RamNorError;
    }

    impl<const SIZE: usize, const WRITE: usize, const ERASE: usize> ReadNorFlash
        for RamNor<SIZE, WRITE, ERASE>
    {
        const READ_SIZE: usize = 1;

        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamNorError> {
            if self.dead {
                return Err(RamNorError::PowerCut);
            }
            let range = self.range(offset, bytes.len())?;
            bytes.copy_from_slice(self.bytes.get(range.clone()).unwrap_or_default());
            for (at, other, reads) in &mut self.unstable {
                let unit = *at as usize..*at as usize + WRITE;
                if unit.start >= range.end || range.start >= unit.end {
                    continue;
                }
                *reads = reads.wrapping_add(1);
                if *reads % 2 == 1 {
                    for (i, b) in other.iter().enumerate() {
                        if let Some(dst) = (unit.start + i)
                            .checked_sub(range.start)
                            .and_then(|p| bytes.get_mut(p))
                        {
                            *dst = *b;
                        }
                    }
                }
            }
            Ok(())
        }

        fn capacity(&self) -> usize {
            SIZE
        }
    }

    impl<const SIZE: usize, const WRITE: usize, const ERASE: usize> NorFlash
        for RamNor<SIZE, WRITE, ERASE>
    {
        const WRITE_SIZE: usize = WRITE;
        const ERASE_SIZE: usize = ERASE;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), RamNorError> {
            let len = to.checked_sub(from).ok_or(RamNorError::OutOfBounds)? as usize;
            if !(from as usize).is_multiple_of(ERASE) || !len.is_multiple_of(ERASE) {
                return Err(RamNorError::NotAligned);
            }
            let range = self.range(from, len)?;
            let cut = self.begin()?;
            self.erases += (len / ERASE) as u32;
            self.unstable
                .retain(|(at, _, _)| !range.contains(&(*at as usize)));
            for (i, unit) in range.clone().step_by(WRITE.max(1)).enumerate() {
                let erased = match cut {
                    None | Some(1) => true,
                    Some(0) => false,
                    Some(seed) => draw(seed, i as u64) & 1 == 0,
                };
                if erased && let Some(dst) = self.bytes.get_mut(unit..unit + WRITE) {
                    dst.fill(0xff);
                }
            }
            if cut.is_some() {
                return Err(RamNorError::PowerCut);
            }
            Ok(())
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamNorError> {
            if !(offset as usize).is_multiple_of(WRITE) || !bytes.len().is_multiple_of(WRITE) {
                return Err(RamNorError::NotAligned);
            }
            let range = self.range(offset, bytes.len())?;
            let cut = self.begin()?;
            self.programmed += bytes.len() as u64;
            let units = bytes.len() / WRITE.max(1);
            // Units fully programmed, and the one in flight.
            let (done, flight) = match cut {
                None => (units, None),
                Some(0) => (0, Some(0)),
                Some(1) => (units.saturating_sub(1), units.checked_sub(1)),
                Some(seed) => {
                    let k = (draw(seed, 0) % (units as u64 + 1)) as usize;
                    (k, (k < units).then_some(k))
                }
            };
            for u in 0..done {
                let at = range.start + u * WRITE;
                for i in 0..WRITE {
                    if let (Some(dst), Some(b)) =
                        (self.bytes.get_mut(at + i), bytes.get(u * WRITE + i))
                    {
                        *dst &= *b;
                    }
                }
            }
            if let (Some(u), Some(seed)) = (flight, cut) {
                let at = range.start + u * WRITE;
                let mut full = [0u8; WRITE];
                for (i, f) in full.iter_mut().enumerate() {
                    let old = self.bytes.get(at + i).copied().unwrap_or(0xff);
                    let new = bytes.get(u * WRITE + i).copied().unwrap_or(0xff);
                    *f = old & new;
                    // A random subset of the bits to clear is cleared
                    // (none for seed 0, all but the last for seed 1).
                    let keep = match seed {
                        0 => 0xff,
                        1 if i + 1 == WRITE => 0x01 & !(old & new) & old,
                        1 => 0,
                        _ => draw(seed, 1 + i as u64) as u8,
                    };
                    if let Some(dst) = self.bytes.get_mut(at + i) {
                        *dst = (old & new) | (keep & old);
                    }
                }
                if self.unstable.is_full() {
                    self.unstable.remove(0);
                }
                let _ = self.unstable.push((at as u32, full, 0));
            }
            if cut.is_some() {
                return Err(RamNorError::PowerCut);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ram::RamNor;
    use super::*;

    type Flash8k = RamNor<8192, 4, 4096>;

    #[test]
    fn commits_load_back_with_their_previous_version() {
        let mut slots = NorSlots::new(Flash8k::default(), 0, 4096).unwrap();
        let mut buf = [0u8; 256];
        assert_eq!(slots.load(&mut buf).unwrap(), None);
        for v in [&b"{\"v\": 1}\n"[..], b"{\"v\": 22}\n", b"[3]\n"] {
            slots.commit(v).unwrap();
            let n = slots.load(&mut buf).unwrap().unwrap();
            assert_eq!(&buf[..n], v);
        }
        let n = slots.load_previous(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], b"{\"v\": 22}\n");
        // The first commit erases region a; the next two append after it:
        // the body, the tail (9 and 10 bytes are not whole 4-byte units; 4
        // is), the header.
        let flash = slots.into_inner();
        assert_eq!(flash.ops(), 4 + 3 + 2);
        assert_eq!(flash.wear().0, 1, "one erase for three commits");
    }

    #[test]
    fn a_cut_anywhere_leaves_the_old_or_the_new_version() {
        let (a, b) = (&b"{\"old\": true}\n"[..], &b"{\"new\": 1234567}\n"[..]);
        for op in 0..4 {
            for seed in 0..16 {
                let mut slots = NorSlots::new(Flash8k::default(), 0, 4096).unwrap();
                slots.commit(a).unwrap();
                slots.commit(b).unwrap();
                let mut flash = slots.into_inner();
                let base = flash.ops();
                flash.cut_at(base + op, seed);
                let mut slots = NorSlots::new(flash, 0, 4096).unwrap();
                let cut = slots.commit(a).is_err();
                let mut flash = slots.into_inner();
                flash.power_on();
                let mut slots = NorSlots::new(flash, 0, 4096).unwrap();
                let mut buf = [0u8; 64];
                // Twice: a unit cut mid-program reads unstably.
                for _ in 0..2 {
                    let n = slots.load(&mut buf).unwrap().unwrap();
                    let got = &buf[..n];
                    assert!(
                        got == a || (cut && got == b),
                        "op {op} seed {seed}: {got:?}"
                    );
                }
                slots.commit(b).unwrap();
                let n = slots.load(&mut buf).unwrap().unwrap();
                assert_eq!(&buf[..n], b);
            }
        }
    }

    #[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
    struct Settings {
        volume: u8,
        name: heapless::String<8>,
    }

    #[test]
    fn a_struct_round_trips_as_compact_json() {
        let mut slots = NorSlots::new(Flash8k::default(), 0, 4096).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(slots.load_value::<Settings>(&mut buf).unwrap(), None);
        let mut s = Settings {
            volume: 7,
            ..Settings::default()
        };
        let _ = s.name.push_str("a\"b");
        slots.save(&mut buf, &s).unwrap();
        assert_eq!(slots.load_value::<Settings>(&mut buf).unwrap(), Some(s));
        let n = slots.load(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..n], br#"{"volume":7,"name":"a\"b"}"#);
        // Another type's document is a shape error, not garbage.
        let err = slots.load_value::<u32>(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                crate::StoreError::Load(LoadError::Corrupt(Corrupt {
                    kind: CorruptKind::Shape(_),
                    ..
                }))
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_layout_the_flash_cannot_hold_is_refused() {
        assert!(matches!(
            NorSlots::new(Flash8k::default(), 100, 4096),
            Err(CommitError::<Flash<super::ram::RamNorError>>::Layout { .. })
        ));
        assert!(NorSlots::new(Flash8k::default(), 4096, 4096).is_err());
        let mut slots = NorSlots::new(Flash8k::default(), 0, 4096).unwrap();
        let big = [b' '; 5000];
        assert!(matches!(
            slots.commit(&big),
            Err(CommitError::TooLarge { capacity: 4064, .. })
        ));
        assert!(matches!(
            slots.commit(b""),
            Err(CommitError::EmptyDocument { .. })
        ));
    }
}
