//! `SimFs`: an in-memory [`fsatomic::Dir`] that keeps what is durable apart
//! from what is merely written, so that a power cut can be simulated at any
//! instant with any legal outcome.
//!
//! # The model
//!
//! The simulator holds three things (after ALICE, OSDI'14, Table 2):
//!
//! - the **durable image** ([`Image`]): names and file contents that survive
//!   any power cut;
//! - the **log** of unflushed micro-operations ([`Entry`], [`MicroOp`]) in
//!   the order they were issued;
//! - the **live image**: what the running program sees, always equal to the
//!   durable image with the whole log applied.
//!
//! Every call of the [`Dir`]/[`File`] traits that changes something appends
//! micro-operations to the log:
//!
//! | call | micro-operations |
//! |---|---|
//! | `create_new`, first `lock` | link `name → new inode` |
//! | `write` | per chunk of the write granularity: set-size (if the chunk extends the file), then the chunk's bytes |
//! | `set_len` | set-size |
//! | `rename(from, to)` | unlink `to` (if it existed), link `to → inode`, unlink `from` |
//! | `link(from, to)` | link `to → inode` |
//! | `remove` | unlink |
//!
//! A flush moves micro-operations from the log into the durable image: a
//! file flush (`sync_data`, `sync_all`) those of that file's data and size,
//! **not its name**; a directory flush those of every name. The
//! [`Profile`] decides what else a flush carries along (ext4's journal
//! commits every earlier metadata operation with a file flush, for
//! example) and which micro-operations depend on which.
//!
//! A **crash state** is the durable image with a dependency-closed subset
//! of the log applied, each landed write chunk as its data, as zeros or as
//! garbage where the profile allows ([`crate::profile::CrashSpace`]
//! enumerates them). Locks are volatile: a crash image holds none.
//!
//! # Crash points
//!
//! Each call that changes the durable image or the log is a *crash point*.
//! With [`SimFs::record`] the simulator keeps a [`Snapshot`] after each one,
//! so that one run of a scenario yields every crash point at once; with
//! [`SimFs::cut_after`] it instead cuts the power after a given number of
//! such calls, and every later call fails as a dead disk would.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::ControlFlow;
use std::rc::Rc;

use embedded_io::{ErrorKind, ErrorType, Read, Seek, SeekFrom, Write};
use fsatomic::{Capabilities, Dir, File, Mode};

use crate::profile::{CrashSpace, Profile};
use crate::rng::{SplitMix64, mix};

/// One file: its blocks, its size and its mode.
///
/// The blocks may hold bytes beyond the size: a write chunk that reached
/// the disk before the set-size that covers it. They become visible if a
/// later set-size lands, as on a real disk, and are dropped when the image
/// boots ([`Image::collect_garbage`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Inode {
    data: Vec<u8>,
    size: usize,
    /// Permission bits.
    pub mode: u32,
}

impl Inode {
    fn empty(mode: u32) -> Inode {
        Inode {
            data: Vec::new(),
            size: 0,
            mode,
        }
    }

    /// The file's content (its first `size` bytes).
    pub fn content(&self) -> &[u8] {
        &self.data[..self.size]
    }

    fn set_size(&mut self, size: usize) {
        if size < self.size {
            // A shrink discards the blocks beyond: a later extension reads
            // zeros.
            self.data.truncate(size);
        }
        // An extension reveals chunks that landed beyond the old size.
        if self.data.len() < size {
            self.data.resize(size, 0);
        }
        self.size = size;
    }

    fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset..end].copy_from_slice(bytes);
    }
}

/// A directory's state: names pointing at inodes, and the inodes.
///
/// Used for the durable state, the live state and every crash state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    names: BTreeMap<String, u64>,
    inodes: BTreeMap<u64, Inode>,
}

impl Image {
    /// An empty directory.
    pub fn new() -> Image {
        Image::default()
    }

    /// This image with one more file `name` holding `data` (replacing any
    /// file of that name). For setting up tests and fuzz inputs.
    pub fn with_file(mut self, name: &str, data: &[u8], mode: u32) -> Image {
        let ino = self.next_ino();
        self.inodes.insert(
            ino,
            Inode {
                data: data.to_vec(),
                size: data.len(),
                mode,
            },
        );
        self.names.insert(name.to_owned(), ino);
        self
    }

    /// The names in the directory, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The content of the file `name`, if it exists.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let ino = self.names.get(name)?;
        self.inodes.get(ino).map(Inode::content)
    }

    /// A byte string that identifies this image up to the numbering of its
    /// inodes: two images with equal keys are indistinguishable to any
    /// program. Unreachable inodes are ignored.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut order: BTreeMap<u64, u32> = BTreeMap::new();
        let mut inodes = Vec::new();
        for (name, ino) in &self.names {
            let next = order.len() as u32;
            let id = *order.entry(*ino).or_insert_with(|| {
                inodes.push(*ino);
                next
            });
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.extend_from_slice(&id.to_le_bytes());
        }
        out.push(0xff);
        for ino in inodes {
            if let Some(inode) = self.inodes.get(&ino) {
                out.extend_from_slice(&inode.mode.to_le_bytes());
                out.extend_from_slice(&(inode.size as u64).to_le_bytes());
                out.extend_from_slice(inode.content());
            }
        }
        out
    }

    /// Boot the image: drop inodes no name points at (what `fsck` does
    /// after a crash) and blocks beyond each file's size (a later extension
    /// reads zeros).
    pub fn collect_garbage(&mut self) {
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        self.inodes.retain(|ino, _| live.contains(ino));
        for inode in self.inodes.values_mut() {
            inode.data.truncate(inode.size);
        }
    }

    fn inode_mut(&mut self, ino: u64, modes: &BTreeMap<u64, u32>) -> &mut Inode {
        self.inodes
            .entry(ino)
            .or_insert_with(|| Inode::empty(modes.get(&ino).copied().unwrap_or(0o600)))
    }

    fn next_ino(&self) -> u64 {
        self.inodes.keys().next_back().map_or(1, |i| i + 1)
    }

    /// Apply one micro-operation, landed as `landing`.
    pub(crate) fn apply(&mut self, entry: &Entry, landing: Landing, modes: &BTreeMap<u64, u32>) {
        match &entry.op {
            MicroOp::Link { name, ino } => {
                self.inode_mut(*ino, modes);
                self.names.insert(name.clone(), *ino);
            }
            MicroOp::Unlink { name } => {
                self.names.remove(name);
            }
            MicroOp::SetSize { ino, size } => {
                self.inode_mut(*ino, modes).set_size(*size as usize);
            }
            MicroOp::Write { ino, offset, data } => {
                // The chunk goes to the file's blocks; it is visible where
                // the size covers it (now, or once a later set-size lands).
                let bytes: Vec<u8> = match landing {
                    Landing::Data => data.clone(),
                    Landing::Zeros => vec![0; data.len()],
                    Landing::Garbage => (0..data.len() as u64)
                        .map(|i| garbage_byte(*ino, offset + i, entry.call))
                        .collect(),
                };
                self.inode_mut(*ino, modes)
                    .write_at(*offset as usize, &bytes);
            }
        }
    }
}

/// The byte a write chunk that landed as garbage shows at `offset`:
/// deterministic, so that a crash state replays exactly.
fn garbage_byte(ino: u64, offset: u64, call: u64) -> u8 {
    (mix(ino.wrapping_mul(0x1_0000_0001) ^ offset ^ (call << 40)) >> 24) as u8
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            return f.write_str("(empty directory)");
        }
        for (i, (name, ino)) in self.names.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let data = self.inodes.get(ino).map_or(&[][..], Inode::content);
            write!(f, "{name} [ino {ino}, {} B", data.len())?;
            if !data.is_empty() {
                let head = &data[..data.len().min(24)];
                write!(f, ", {:?}", String::from_utf8_lossy(head))?;
                if data.len() > head.len() {
                    f.write_str("…")?;
                }
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// How a write chunk that reached the disk looks after the power cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Landing {
    /// The bytes that were written.
    Data,
    /// Zeros (the block was allocated, its content never written).
    Zeros,
    /// Garbage (a torn sector, stale blocks reused).
    Garbage,
}

impl fmt::Display for Landing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Landing::Data => "data",
            Landing::Zeros => "zeros",
            Landing::Garbage => "garbage",
        })
    }
}

/// One micro-operation of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MicroOp {
    /// Create (or replace) the directory entry `name → ino`.
    Link {
        /// The name.
        name: String,
        /// The inode it points at.
        ino: u64,
    },
    /// Delete the directory entry `name`.
    Unlink {
        /// The name.
        name: String,
    },
    /// Change the size of inode `ino` (extending with zeros).
    SetSize {
        /// The inode.
        ino: u64,
        /// The new size in bytes.
        size: u64,
    },
    /// Write one chunk (at most one granule) of data.
    Write {
        /// The inode.
        ino: u64,
        /// Byte offset of the chunk.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// Which call a micro-operation came from, and which part of it it is:
/// the profiles' dependency rules are stated in these terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `create_new`.
    Create,
    /// The creation of a lock file by `lock`.
    LockFile,
    /// `write` (a set-size that extends the file, or a data chunk).
    Write,
    /// `set_len`.
    SetLen,
    /// `rename`: removing the old destination entry.
    RenameUnlinkDst,
    /// `rename`: creating the destination entry.
    RenameLinkDst,
    /// `rename`: removing the source entry.
    RenameUnlinkSrc,
    /// `remove`.
    Remove,
    /// `link`: the new name.
    Link,
}

/// A micro-operation in the log, with the call it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The operation.
    pub op: MicroOp,
    /// The number of the filesystem call that issued it (micro-operations
    /// of one call share it).
    pub call: u64,
    /// The kind of call and the part of it.
    pub origin: Origin,
}

impl Entry {
    /// Whether the entry changes a name (link or unlink) rather than data.
    pub fn is_name_op(&self) -> bool {
        matches!(self.op, MicroOp::Link { .. } | MicroOp::Unlink { .. })
    }

    /// The inode whose data or size the entry changes, if it is not a name
    /// operation.
    pub fn data_ino(&self) -> Option<u64> {
        match self.op {
            MicroOp::SetSize { ino, .. } | MicroOp::Write { ino, .. } => Some(ino),
            _ => None,
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            MicroOp::Link { name, ino } => write!(f, "link {name} → ino {ino}"),
            MicroOp::Unlink { name } => write!(f, "unlink {name}"),
            MicroOp::SetSize { ino, size } => write!(f, "set-size ino {ino} = {size}"),
            MicroOp::Write { ino, offset, data } => {
                write!(
                    f,
                    "write ino {ino} [{offset}..{})",
                    offset + data.len() as u64
                )
            }
        }
    }
}

/// The durable image and the log at one crash point.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// What survives any power cut.
    pub durable: Image,
    /// The unflushed micro-operations, oldest first.
    pub log: Vec<Entry>,
    /// The mode of every inode ever created (a crash image may need to
    /// bring back an inode the durable image has not seen yet).
    pub modes: BTreeMap<u64, u32>,
    /// The call after which the snapshot was taken, for messages.
    pub label: String,
}

impl Snapshot {
    /// The crash states of this snapshot under `profile`.
    pub fn crash_space(&self, profile: Profile) -> CrashSpace<'_> {
        CrashSpace::new(self, profile)
    }
}

/// The error of every simulated call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimError {
    kind: ErrorKind,
    what: &'static str,
}

impl SimError {
    const fn new(kind: ErrorKind, what: &'static str) -> SimError {
        SimError { kind, what }
    }

    /// The error every call returns after [`SimFs::cut_after`] cut the power.
    pub const POWER_CUT: SimError = SimError::new(ErrorKind::Other, "the power was cut");

    /// The error of a file flush failed by [`SimFs::fail_file_flush`]: the
    /// kernel's `EIO` from a failed write-back.
    pub const FLUSH_FAILED: SimError =
        SimError::new(ErrorKind::Other, "I/O error (EIO): write-back failed");

    const EXISTS: SimError = SimError::new(ErrorKind::AlreadyExists, "the name exists");
    const NOT_FOUND: SimError = SimError::new(ErrorKind::NotFound, "no such file");

    /// Whether this is the error of a call after the power cut.
    pub fn is_power_cut(&self) -> bool {
        *self == SimError::POWER_CUT
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.what, self.kind)
    }
}

impl std::error::Error for SimError {}

impl embedded_io::Error for SimError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Counters of what a run did, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Calls that changed the durable image or the log (crash points).
    pub mutations: u64,
    /// File flushes (`sync_data`, `sync_all`).
    pub file_flushes: u64,
    /// Directory flushes.
    pub dir_flushes: u64,
}

#[derive(Debug)]
struct State {
    profile: Profile,
    granularity: u64,
    durable: Image,
    live: Image,
    log: Vec<Entry>,
    modes: BTreeMap<u64, u32>,
    next_ino: u64,
    next_call: u64,
    tokens: SplitMix64,
    locks: BTreeSet<String>,
    recording: Option<Vec<Snapshot>>,
    counters: Counters,
    fuse: Option<u64>,
    cut: bool,
    /// File flushes left until the one that fails (1: the next).
    flush_fault: Option<u64>,
}

impl State {
    fn snapshot(&self, label: String) -> Snapshot {
        Snapshot {
            durable: self.durable.clone(),
            log: self.log.clone(),
            modes: self.modes.clone(),
            label,
        }
    }

    fn alive(&self) -> Result<(), SimError> {
        if self.cut {
            Err(SimError::POWER_CUT)
        } else {
            Ok(())
        }
    }

    fn call(&mut self) -> u64 {
        self.next_call += 1;
        self.next_call
    }

    /// A call changed the durable image or the log: a crash point.
    fn mutated(&mut self, label: impl FnOnce() -> String) {
        self.counters.mutations += 1;
        if self.recording.is_some() {
            let snap = self.snapshot(label());
            if let Some(rec) = self.recording.as_mut() {
                rec.push(snap);
            }
        }
        if let Some(left) = self.fuse.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.cut = true;
                self.fuse = None;
            }
        }
    }

    fn push(&mut self, op: MicroOp, call: u64, origin: Origin) {
        self.log.push(Entry { op, call, origin });
    }

    fn push_link(&mut self, name: &str, ino: u64, call: u64, origin: Origin) {
        let name = name.to_owned();
        self.push(MicroOp::Link { name, ino }, call, origin);
    }

    fn push_unlink(&mut self, name: &str, call: u64, origin: Origin) {
        let name = name.to_owned();
        self.push(MicroOp::Unlink { name }, call, origin);
    }

    /// Narrow the mode of `ino` to `mode` if it is wider: in the live
    /// image, the durable one and the modes crash images bring back.
    fn narrow(&mut self, ino: u64, mode: Mode) {
        let narrowed = |bits: u32| bits & (mode.bits() | !0o7777);
        for image in [&mut self.live, &mut self.durable] {
            if let Some(inode) = image.inodes.get_mut(&ino) {
                inode.mode = narrowed(inode.mode);
            }
        }
        if let Some(bits) = self.modes.get_mut(&ino) {
            *bits = narrowed(*bits);
        }
    }

    fn link_new(&mut self, name: &str, mode: u32, origin: Origin) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.modes.insert(ino, mode);
        self.live.inodes.insert(ino, Inode::empty(mode));
        self.live.names.insert(name.to_owned(), ino);
        let call = self.call();
        self.push_link(name, ino, call, origin);
        ino
    }

    /// Make the log entries selected by `scope` durable, with everything
    /// they depend on.
    fn flush(&mut self, scope: Vec<bool>) {
        let chosen = self.profile.flush_closure(&self.log, scope);
        for (entry, &c) in self.log.iter().zip(&chosen) {
            if c {
                self.durable.apply(entry, Landing::Data, &self.modes);
            }
        }
        let mut i = 0;
        self.log.retain(|_| {
            i += 1;
            !chosen[i - 1]
        });
    }

    fn name_of(&self, ino: u64) -> String {
        self.live
            .names
            .iter()
            .find(|(_, i)| **i == ino)
            .map_or_else(|| format!("ino {ino}"), |(n, _)| n.clone())
    }
}

/// The simulated filesystem: one directory, shared by every handle cloned
/// from it. Implements [`fsatomic::Dir`].
///
/// Cloning a `SimFs` gives another handle to the same directory (as
/// opening the directory twice would); the explorer keeps one to take
/// snapshots while the protocol under test drives the other.
#[derive(Clone)]
pub struct SimFs {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("SimFs")
            .field("profile", &s.profile)
            .field("granularity", &s.granularity)
            .field("live", &format_args!("{}", s.live))
            .field("log", &s.log.len())
            .finish()
    }
}

impl SimFs {
    /// An empty directory under `profile`, writing in chunks of
    /// `granularity` bytes (raised to the profile's atomic unit, see
    /// [`Profile::effective_granularity`]), drawing unique tokens from
    /// `seed`.
    pub fn new(profile: Profile, granularity: u64, seed: u64) -> SimFs {
        SimFs::from_image(Image::new(), profile, granularity, seed)
    }

    /// A directory whose durable (and live) state is `image`: the machine
    /// after a reboot.
    pub fn from_image(image: Image, profile: Profile, granularity: u64, seed: u64) -> SimFs {
        let modes = image.inodes.iter().map(|(i, n)| (*i, n.mode)).collect();
        let next_ino = image.next_ino().max(1);
        SimFs {
            state: Rc::new(RefCell::new(State {
                profile,
                granularity: profile.effective_granularity(granularity),
                durable: image.clone(),
                live: image,
                log: Vec::new(),
                modes,
                next_ino,
                next_call: 0,
                tokens: SplitMix64::new(seed),
                locks: BTreeSet::new(),
                recording: None,
                counters: Counters::default(),
                fuse: None,
                cut: false,
                flush_fault: None,
            })),
        }
    }

    /// The crash-model profile.
    pub fn profile(&self) -> Profile {
        self.state.borrow().profile
    }

    /// The write granularity in bytes, after the profile's minimum.
    pub fn granularity(&self) -> u64 {
        self.state.borrow().granularity
    }

    /// What the running program sees now.
    pub fn live(&self) -> Image {
        self.state.borrow().live.clone()
    }

    /// What survives any power cut now.
    pub fn durable(&self) -> Image {
        self.state.borrow().durable.clone()
    }

    /// The number of unflushed micro-operations.
    pub fn log_len(&self) -> usize {
        self.state.borrow().log.len()
    }

    /// The durable image and the log now.
    pub fn snapshot(&self) -> Snapshot {
        self.state.borrow().snapshot("now".to_owned())
    }

    /// Start keeping a snapshot after every crash point; the first snapshot
    /// is the state now (crash point 0).
    pub fn record(&self) {
        let mut s = self.state.borrow_mut();
        let first = s.snapshot("start".to_owned());
        s.recording = Some(vec![first]);
    }

    /// Stop recording and return the snapshots taken.
    pub fn take_snapshots(&self) -> Vec<Snapshot> {
        self.state.borrow_mut().recording.take().unwrap_or_default()
    }

    /// The number of snapshots recorded so far (the index the next crash
    /// point will get).
    pub fn recorded(&self) -> usize {
        self.state.borrow().recording.as_ref().map_or(0, Vec::len)
    }

    /// What the run did so far.
    pub fn counters(&self) -> Counters {
        self.state.borrow().counters
    }

    /// How many locks are held now.
    pub fn locks_held(&self) -> usize {
        self.state.borrow().locks.len()
    }

    /// Make the whole log durable at once (a clean shutdown): for setting
    /// up the state a scenario starts from.
    pub fn settle(&self) {
        let mut s = self.state.borrow_mut();
        let log = std::mem::take(&mut s.log);
        let modes = s.modes.clone();
        for entry in &log {
            s.durable.apply(entry, Landing::Data, &modes);
        }
    }

    /// Cut the power after `n` more crash points: every later call fails
    /// with [`SimError::POWER_CUT`]. `n == 0` cuts it now.
    pub fn cut_after(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        if n == 0 {
            s.cut = true;
        } else {
            s.fuse = Some(n);
        }
    }

    /// Make the `n`-th file flush from now (1: the next) fail with
    /// [`SimError::FLUSH_FAILED`], the way a failed write-back fails
    /// `fsync` on Linux: the data it was to make durable is lost. Its
    /// writes and size changes of that file leave the log without reaching
    /// the durable image, so no crash state holds them, while the live
    /// image keeps them (the page cache still shows the data, its pages
    /// marked clean) and later flushes never write them. Names are not
    /// touched.
    pub fn fail_file_flush(&self, n: u64) {
        self.state.borrow_mut().flush_fault = Some(n.max(1));
    }

    /// Whether the power was cut.
    pub fn is_cut(&self) -> bool {
        self.state.borrow().cut
    }
}

/// A held lock of a [`SimFs`]; dropping it releases the lock. Locks are
/// volatile: a crash image holds none.
#[derive(Debug)]
pub struct SimLock {
    state: Rc<RefCell<State>>,
    name: String,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.state.borrow_mut().locks.remove(&self.name);
    }
}

/// An open file of a [`SimFs`]. Like a POSIX file descriptor it refers to
/// the inode, so it keeps working after the name is renamed or removed.
#[derive(Debug)]
pub struct SimFile {
    state: Rc<RefCell<State>>,
    ino: u64,
    pos: u64,
    writable: bool,
}

impl SimFs {
    /// The state, once every name of the call is checked and the power on.
    fn powered(&self, names: &[&str]) -> Result<std::cell::RefMut<'_, State>, SimError> {
        for name in names {
            check_name(name)?;
        }
        let s = self.state.borrow_mut();
        s.alive()?;
        Ok(s)
    }

    fn file(&self, ino: u64, writable: bool) -> SimFile {
        SimFile {
            state: self.state.clone(),
            ino,
            pos: 0,
            writable,
        }
    }
}

/// A call failing with `what`.
fn fail<T>(kind: ErrorKind, what: &'static str) -> Result<T, SimError> {
    Err(SimError::new(kind, what))
}

fn check_name(name: &str) -> Result<(), SimError> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || name.len() > 255
    {
        return fail(ErrorKind::InvalidInput, "not a plain file name");
    }
    Ok(())
}

impl ErrorType for SimFs {
    type Error = SimError;
}

impl Dir for SimFs {
    type Error = SimError;
    type File = SimFile;
    type Lock = SimLock;

    fn capabilities(&self) -> Capabilities {
        let p = self.profile();
        Capabilities::new(p.atomic_replace(), p.name()).with_ordered_names(p.ordered_names())
    }

    fn unique_token(&mut self) -> Result<u64, SimError> {
        Ok(self.powered(&[])?.tokens.next_u64())
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<SimFile, SimError> {
        let mut s = self.powered(&[name])?;
        if s.live.names.contains_key(name) {
            return Err(SimError::EXISTS);
        }
        let ino = s.link_new(name, mode.bits(), Origin::Create);
        s.mutated(|| format!("create {name}"));
        Ok(self.file(ino, true))
    }

    fn open_read(&mut self, name: &str) -> Result<Option<SimFile>, SimError> {
        let s = self.powered(&[name])?;
        Ok(s.live.names.get(name).map(|&ino| self.file(ino, false)))
    }

    /// Every file is the caller's own (the model has one user); a file
    /// with a second name is refused, and a mode wider than `mode` is
    /// narrowed at once, live and durable (the adapters `fsync` the
    /// narrowing before returning).
    fn open_write(&mut self, name: &str, mode: Mode) -> Result<Option<SimFile>, SimError> {
        let mut s = self.powered(&[name])?;
        let Some(&ino) = s.live.names.get(name) else {
            return Ok(None);
        };
        if s.live.names.values().filter(|&&i| i == ino).count() > 1 {
            return fail(
                ErrorKind::PermissionDenied,
                "the file has more than one hard link",
            );
        }
        s.narrow(ino, mode);
        Ok(Some(self.file(ino, true)))
    }

    fn link(&mut self, from: &str, to: &str) -> Result<(), SimError> {
        let mut s = self.powered(&[from, to])?;
        let Some(&ino) = s.live.names.get(from) else {
            return Err(SimError::NOT_FOUND);
        };
        if s.live.names.contains_key(to) {
            return Err(SimError::EXISTS);
        }
        s.live.names.insert(to.to_owned(), ino);
        let call = s.call();
        s.push_link(to, ino, call, Origin::Link);
        s.mutated(|| format!("link {from} → {to}"));
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), SimError> {
        let mut s = self.powered(&[from, to])?;
        let Some(&ino) = s.live.names.get(from) else {
            return Err(SimError::NOT_FOUND);
        };
        if from == to {
            return Ok(());
        }
        let replaced = s.live.names.contains_key(to);
        s.live.names.remove(from);
        s.live.names.insert(to.to_owned(), ino);
        let call = s.call();
        if replaced {
            s.push_unlink(to, call, Origin::RenameUnlinkDst);
        }
        s.push_link(to, ino, call, Origin::RenameLinkDst);
        s.push_unlink(from, call, Origin::RenameUnlinkSrc);
        s.mutated(|| format!("rename {from} → {to}"));
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), SimError> {
        let mut s = self.powered(&[name])?;
        if s.live.names.remove(name).is_some() {
            let call = s.call();
            s.push_unlink(name, call, Origin::Remove);
            s.mutated(|| format!("remove {name}"));
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), SimError> {
        let mut s = self.powered(&[])?;
        let scope = s.profile.dir_flush_scope(&s.log);
        s.flush(scope);
        s.counters.dir_flushes += 1;
        s.mutated(|| "fsync(dir)".to_owned());
        Ok(())
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), SimError> {
        let names: Vec<String> = self.powered(&[])?.live.names.keys().cloned().collect();
        for name in &names {
            if visit(name).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn lock(&mut self, name: &str, mode: Mode) -> Result<SimLock, SimError> {
        let mut s = self.powered(&[name])?;
        if s.locks.contains(name) {
            // Single-threaded: waiting would never end.
            return fail(
                ErrorKind::Other,
                "the lock is held (a lock outlived its owner?)",
            );
        }
        match s.live.names.get(name) {
            None => {
                s.link_new(name, mode.bits(), Origin::LockFile);
                s.mutated(|| format!("create lock file {name}"));
            }
            Some(&ino) => {
                if s.live.names.values().filter(|&&i| i == ino).count() == 1 {
                    s.narrow(ino, mode);
                }
            }
        }
        s.locks.insert(name.to_owned());
        Ok(SimLock {
            state: self.state.clone(),
            name: name.to_owned(),
        })
    }
}

impl ErrorType for SimFile {
    type Error = SimError;
}

impl Read for SimFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SimError> {
        let s = self.state.borrow();
        s.alive()?;
        let data = s.live.inodes.get(&self.ino).map_or(&[][..], Inode::content);
        let start = (self.pos as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for SimFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, SimError> {
        self.writable()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.state.borrow_mut();
        s.alive()?;
        let g = s.granularity;
        let start = self.pos;
        let end = start + buf.len() as u64;
        let ino = self.ino;
        let call = s.call();
        let mut size = s.live.inodes.get(&ino).map_or(0, |i| i.size as u64);
        let mut off = start;
        while off < end {
            let chunk_end = end.min((off / g + 1) * g);
            if chunk_end > size {
                size = chunk_end;
                s.push(MicroOp::SetSize { ino, size }, call, Origin::Write);
            }
            let data = buf[(off - start) as usize..(chunk_end - start) as usize].to_vec();
            let offset = off;
            s.push(MicroOp::Write { ino, offset, data }, call, Origin::Write);
            off = chunk_end;
        }
        let modes = s.modes.clone();
        let inode = s.live.inode_mut(ino, &modes);
        if inode.size < end as usize {
            inode.set_size(end as usize);
        }
        inode.write_at(start as usize, buf);
        self.pos = end;
        let name = s.name_of(ino);
        s.mutated(|| format!("write {name} [{start}..{end})"));
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), SimError> {
        self.state.borrow().alive()
    }
}

impl Seek for SimFile {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, SimError> {
        let s = self.state.borrow();
        s.alive()?;
        let len = s.live.inodes.get(&self.ino).map_or(0, |i| i.size) as i128;
        let target = match pos {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return fail(ErrorKind::InvalidInput, "seek before the start");
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}

impl SimFile {
    fn writable(&self) -> Result<(), SimError> {
        match self.writable {
            true => Ok(()),
            false => fail(ErrorKind::PermissionDenied, "opened for reading"),
        }
    }

    fn sync(&mut self) -> Result<(), SimError> {
        let mut s = self.state.borrow_mut();
        s.alive()?;
        if let Some(left) = s.flush_fault {
            if left <= 1 {
                s.flush_fault = None;
                let ino = self.ino;
                s.log.retain(|e| e.data_ino() != Some(ino));
                let name = s.name_of(ino);
                s.mutated(|| format!("fsync {name} fails (EIO): its unflushed data is lost"));
                return Err(SimError::FLUSH_FAILED);
            }
            s.flush_fault = Some(left - 1);
        }
        let scope = s.profile.file_flush_scope(&s.log, self.ino);
        s.flush(scope);
        s.counters.file_flushes += 1;
        let name = s.name_of(self.ino);
        s.mutated(|| format!("fsync {name}"));
        Ok(())
    }
}

impl File for SimFile {
    fn sync_data(&mut self) -> Result<(), SimError> {
        self.sync()
    }

    fn sync_all(&mut self) -> Result<(), SimError> {
        self.sync()
    }

    fn set_len(&mut self, len: u64) -> Result<(), SimError> {
        self.writable()?;
        let mut s = self.state.borrow_mut();
        s.alive()?;
        let call = s.call();
        let ino = self.ino;
        s.push(MicroOp::SetSize { ino, size: len }, call, Origin::SetLen);
        let modes = s.modes.clone();
        s.live.inode_mut(self.ino, &modes).set_size(len as usize);
        let name = s.name_of(self.ino);
        s.mutated(|| format!("set_len {name} = {len}"));
        Ok(())
    }
}
