//! Slots on raw NOR flash (feature `nor`): a state's two newest versions
//! in two regions of whole erase sectors, through `embedded-storage`'s
//! [`NorFlash`] — no filesystem, no names.
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
//! Each region is `region_len` bytes of whole erase sectors, laid out as
//! a slot file ([`crate::slots`]) is:
//!
//! ```text
//!  [header: 32 bytes, as a slot's][0xFF to H][payload][0xFF ...]
//!   H = 32 rounded up to the flash's write and read sizes; capacity = region_len - H
//! ```
//!
//! The header is a slot header byte for byte (magic `FSATSLOT`, version 1,
//! capacity, generation, length, CRC-32C over the header's first 28 bytes
//! and the payload). An erased header (all `0xFF`) or an all-zero one is
//! blank: never written.
//!
//! # Commit
//!
//! ```text
//!  Inspect ──► Erase ──► ProgramBody ──► ProgramTail ──► ProgramHeader ──► Done
//!  both headers  the region   the payload's     its last partial   the header,
//!  and payloads  not holding  whole write       write unit,        generation
//!                the newest   units             0xFF-padded        newest + 1
//! ```
//!
//! One erase and one program pass per commit, no flush (a NOR program is
//! durable when it returns). A cut anywhere leaves the other region — the
//! newest acknowledged version — untouched, and the region being written
//! fails its CRC until the header's last word is programmed: erased,
//! half-erased, half-programmed or unstable bits all read as a header or
//! payload whose CRC does not match (a reader checks the CRC over the one
//! copy it read, so an unstable bit cannot pass one read and change in
//! the next). The payload goes first so that the header is the commit
//! point, but the argument does not rest on that order: the CRC covers
//! the payload (the explorer's `header-first` mutant confirms it).
//!
//! A unit whose program was cut may read either value, differently at
//! each read. A reader inspects each region twice and takes one that
//! reads two ways for what it is — a commit cut short, invalid — so it is
//! never the newest version one moment and gone the next, and the next
//! commit erases it rather than the region that holds the last
//! acknowledged version.
//!
//! Load takes the valid region with the newest generation; none valid and
//! one blank is absent (the first commit was cut short); none valid and
//! none blank is [`CorruptKind`] damage.

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
/// last unit are staged on the stack in one.
pub const MAX_UNIT: usize = 64;

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

/// What a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    Blank,
    /// `body`: the CRC-32C of the payload alone, to tell two regions that
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

/// Both regions, and the indices of the valid ones, newest first.
type Survey = ([Region; 2], [Option<usize>; 2]);

/// A state kept in two regions of a NOR flash.
pub struct NorSlots<F> {
    flash: F,
    base: u32,
    region_len: u32,
}

impl<F: NorFlash> NorSlots<F> {
    /// The offset of the payload in a region.
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
                why: "a flash write or read unit over 64 bytes",
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

    /// Read region `i`'s header and check its payload: read into `into`
    /// when given (a valid payload is left there), else streamed through
    /// a small buffer. A reader checks the one copy it keeps, so a cell
    /// that reads differently each time cannot pass and then change.
    fn inspect(&mut self, i: usize, into: Option<&mut [u8]>) -> Result<Region, Fault<F::Error>> {
        let read = |offset: usize| Self::fault(Op::Read, i, offset);
        let mut h = [0u8; MAX_UNIT];
        let head = h.get_mut(..Self::BODY.min(MAX_UNIT)).unwrap_or_default();
        self.flash.read(self.start(i), head).map_err(read(0))?;
        let header = head.get(..HEADER_LEN).unwrap_or_default();
        if header.iter().all(|&b| b == 0xff) || header.iter().all(|&b| b == 0) {
            return Ok(Region::Blank);
        }
        let invalid = |offset, kind| Ok(Region::Invalid { offset, kind });
        if header.get(..8) != Some(&MAGIC[..]) {
            return invalid(0, CorruptKind::BadMagic);
        }
        let version = u32_le(header, 8) as u16;
        if version != VERSION {
            return invalid(8, CorruptKind::UnsupportedVersion(version));
        }
        let len = u32_le(header, 24) as usize;
        if u32_le(header, 12) as usize != self.capacity() || len == 0 || len > self.capacity() {
            return invalid(24, CorruptKind::BadLength);
        }
        let mut crc = Crc32c::new();
        crc.update(header.get(..28).unwrap_or_default());
        let (generation, stored) = (u64_le(header, 16), u32_le(header, 28));
        let mut body = Crc32c::new();
        let unit = F::READ_SIZE.max(1);
        let at = self.start(i) + Self::BODY as u32;
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
                self.flash.read(at, dst).map_err(read(Self::BODY))?;
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
                        .read(at + done as u32, dst)
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

    /// Region `i`, read twice: a region that reads two ways holds a unit
    /// whose program a power cut interrupted (its cells read either
    /// value), so it is a commit cut short — invalid, whatever one read
    /// said — and the next commit erases it.
    fn stable(&mut self, i: usize) -> Result<Region, Fault<F::Error>> {
        let first = self.inspect(i, None)?;
        if first == Region::Blank || first == self.inspect(i, None)? {
            return Ok(first);
        }
        Ok(Region::Invalid {
            offset: 28,
            kind: CorruptKind::BadChecksum,
        })
    }

    /// Both regions, and the valid ones newest first.
    fn survey(&mut self) -> Result<Survey, Fault<F::Error>> {
        let regions = [self.stable(0)?, self.stable(1)?];
        let generation = |r: &Region| match r {
            Region::Valid { generation, .. } => Some(*generation),
            _ => None,
        };
        let order = match (generation(&regions[0]), generation(&regions[1])) {
            (Some(a), Some(b)) => match compare_generations(b, a) {
                Some(Ordering::Greater) => [Some(1), Some(0)],
                Some(Ordering::Less) => [Some(0), Some(1)],
                _ => {
                    let kind = CorruptKind::SequenceGap {
                        expected: a.wrapping_add(1),
                        found: b,
                    };
                    return Err(Fault::Corrupt {
                        region: 1,
                        offset: 16,
                        kind,
                    });
                }
            },
            (Some(_), None) => [Some(0), None],
            (None, Some(_)) => [Some(1), None],
            (None, None) => [None, None],
        };
        Ok((regions, order))
    }

    /// Load the newest valid version into the front of `buf`: its length,
    /// or `Ok(None)` if none was ever committed. `buf` must hold the
    /// document rounded up to the read size.
    pub fn load(&mut self, buf: &mut [u8]) -> Result<Option<usize>, LoadError<Flash<F::Error>>> {
        self.nth(buf, 0).map_err(Fault::load)
    }

    /// Load the previous version (the older valid region), as
    /// [`crate::slots::load_previous`]: `Ok(None)` if there is none (a cut
    /// commit was overwriting it), or if it is the same document as the
    /// newest.
    pub fn load_previous(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<usize>, LoadError<Flash<F::Error>>> {
        let (regions, order) = self.survey().map_err(Fault::load)?;
        let [Some(_), Some(_)] = order else {
            return Ok(None);
        };
        let same = match (regions[0], regions[1]) {
            (
                Region::Valid {
                    len: a, body: x, ..
                },
                Region::Valid {
                    len: b, body: y, ..
                },
            ) => a == b && x == y,
            _ => false,
        };
        if same {
            return Ok(None);
        }
        self.nth(buf, 1).map_err(Fault::load)
    }

    fn nth(&mut self, buf: &mut [u8], n: usize) -> Result<Option<usize>, Fault<F::Error>> {
        let (regions, order) = self.survey()?;
        let Some(Some(i)) = order.get(n).copied() else {
            if n == 0 && !regions.contains(&Region::Blank) {
                let (i, offset, kind) = match regions {
                    [Region::Invalid { offset, kind }, _] => (0, offset, kind),
                    [_, Region::Invalid { offset, kind }] => (1, offset, kind),
                    _ => (0, 0, CorruptKind::BadChecksum),
                };
                return Err(Fault::Corrupt {
                    region: i,
                    offset,
                    kind,
                });
            }
            return Ok(None);
        };
        // Read it again into `buf`, checking the copy it keeps against
        // what the survey found.
        match self.inspect(i, Some(buf))? {
            Region::Valid { len, .. } if Some(&self.inspect(i, None)?) == regions.get(i) => {
                Ok(Some(len))
            }
            // Read another way than twice before: an unstable cell after
            // all (a draw can repeat).
            _ => Err(Fault::Corrupt {
                region: i,
                offset: 28,
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
        Ok(self.commit(buf.get(..len).unwrap_or_default())?)
    }

    /// Load and decode the newest version: `Ok(None)` if none was ever
    /// committed. `buf` holds the document and, after it, room to unescape
    /// its longest string. The CRC vouches for the bytes; a document that
    /// does not decode as `T` is [`CorruptKind::Shape`].
    pub fn load_value<T: serde::de::DeserializeOwned>(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<T>, crate::StoreError<Flash<F::Error>>> {
        let Some(len) = self.load(buf)? else {
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
        let start = slots.start(self.target);
        let whole = self.data.len() / w * w;
        match self.state {
            State::Inspect => {
                if self.data.len() > slots.capacity() {
                    return Err(Fault::Document {
                        size: self.data.len(),
                        capacity: slots.capacity(),
                    });
                }
                let generation = |r: Region| match r {
                    Region::Valid { generation, .. } => Some(generation),
                    _ => None,
                };
                let (a, b) = (generation(slots.stable(0)?), generation(slots.stable(1)?));
                // Overwrite the region that does not hold the newest valid
                // version; two that do not order (damage) lose `b`, as a
                // load blames it.
                (self.target, self.generation) = match (a, b) {
                    (Some(a), Some(b)) if compare_generations(a, b) == Some(Ordering::Less) => {
                        (0, b.wrapping_add(1))
                    }
                    (Some(a), _) => (1, a.wrapping_add(1)),
                    (None, Some(b)) => (0, b.wrapping_add(1)),
                    (None, None) => (0, 0),
                };
                Ok(State::Erase)
            }
            State::Erase => {
                slots
                    .flash
                    .erase(start, start + slots.region_len)
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
                            NorSlots::<F>::BODY,
                        ))?;
                }
                Ok(if whole < self.data.len() {
                    State::ProgramTail
                } else {
                    State::ProgramHeader
                })
            }
            State::ProgramTail => {
                let mut unit = [0xffu8; MAX_UNIT];
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
                        NorSlots::<F>::BODY + whole,
                    ))?;
                Ok(State::ProgramHeader)
            }
            State::ProgramHeader => {
                let capacity = u32::try_from(slots.capacity()).unwrap_or(u32::MAX);
                let mut unit = [0xffu8; MAX_UNIT];
                if let Some(dst) = unit.get_mut(..HEADER_LEN) {
                    dst.copy_from_slice(&encode_header(capacity, self.generation, self.data));
                }
                let len = round_up(HEADER_LEN, w);
                slots
                    .flash
                    .write(start, unit.get(..len).unwrap_or_default())
                    .map_err(NorSlots::<F>::fault(Op::Write, self.target, 0))?;
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
        // Per commit: the erase, the body, the tail (9 and 10 bytes are
        // not whole 4-byte units; 4 is), the header.
        assert_eq!(slots.into_inner().ops(), 4 + 4 + 3);
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
