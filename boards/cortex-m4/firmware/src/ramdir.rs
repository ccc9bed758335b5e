//! A RAM directory that keeps durable and volatile state apart: the
//! [`fsatomic::Dir`] of this board, and the power switch that cuts it.
//!
//! Every file ("inode") holds two copies of its bytes: `live`, what running
//! code reads and writes, and `durable`, what survives a power cut. The
//! directory likewise holds two tables of entries. The flushes move live
//! state to durable state, exactly as the trait's power-cut contract says:
//!
//! - [`File::sync_data`]/[`File::sync_all`] make that file's bytes and
//!   length durable — not its name;
//! - [`Dir::sync_dir`] makes the names (created, renamed, removed) durable.
//!
//! [`Disk::power_cut`] reboots the board. What it keeps of the volatile state
//! is chosen by a [`Cut`]: nothing (the worst case for durability), all of it
//! (everything happened to land), only the names (metadata written back
//! before data, like ext4 `data=writeback`), only the data, or the names and
//! the first half of each file's unflushed bytes (a torn write). Handles and
//! locks of the previous power cycle are dead afterwards.
//!
//! Writes take at most [`PAGE`] bytes per call, as a flash driver programs
//! one page at a time, so a commit of a few hundred bytes is several
//! `WriteTemp` steps of the Replace state machine, and a cut can fall
//! between any two of them.
//!
//! Capacities are fixed ([`MAX_FILES`] files of [`FILE_CAPACITY`] bytes,
//! names up to [`NAME_CAPACITY`] bytes); exceeding one is an error, never a
//! panic.

use core::cell::RefCell;
use core::fmt;
use core::ops::ControlFlow;

use embedded_io::{ErrorKind, ErrorType, SeekFrom};
use fsatomic::{Capabilities, Dir, File, Mode};

/// Most files (inodes) the disk holds, names and lock files included.
pub const MAX_FILES: usize = 8;
/// Largest file, in bytes.
pub const FILE_CAPACITY: usize = 512;
/// Longest name, in bytes (a temporary name of a 30-byte name fits).
pub const NAME_CAPACITY: usize = 64;
/// Most bytes one `write` call takes: one flash page.
pub const PAGE: usize = 64;
/// Most locks held at once.
const MAX_LOCKS: usize = 4;

type Data = heapless::Vec<u8, FILE_CAPACITY>;
type Name = heapless::String<NAME_CAPACITY>;

/// Errors of the RAM directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamError {
    /// No file has the name.
    NotFound,
    /// A file already has the name (exclusive create).
    AlreadyExists,
    /// No free inode, entry, lock slot or file space.
    NoSpace,
    /// The name is longer than [`NAME_CAPACITY`].
    NameTooLong,
    /// The handle belongs to a power cycle that has ended.
    PowerLost,
    /// A write through a handle opened for reading.
    ReadOnly,
    /// The lock is held by someone else (a board has no one to wait for).
    Busy,
    /// A seek before the start, or another invalid argument.
    Invalid,
}

impl fmt::Display for RamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RamError::NotFound => "no such file",
            RamError::AlreadyExists => "file exists",
            RamError::NoSpace => "RAM directory full",
            RamError::NameTooLong => "name too long for the RAM directory",
            RamError::PowerLost => "handle from before a power cut",
            RamError::ReadOnly => "file opened read-only",
            RamError::Busy => "lock held",
            RamError::Invalid => "invalid argument",
        })
    }
}

impl core::error::Error for RamError {}

impl embedded_io::Error for RamError {
    fn kind(&self) -> ErrorKind {
        match self {
            RamError::NotFound => ErrorKind::NotFound,
            RamError::AlreadyExists => ErrorKind::AlreadyExists,
            RamError::NoSpace => ErrorKind::OutOfMemory,
            RamError::NameTooLong | RamError::Invalid => ErrorKind::InvalidInput,
            RamError::ReadOnly => ErrorKind::PermissionDenied,
            RamError::PowerLost | RamError::Busy => ErrorKind::Other,
        }
    }
}

/// What a power cut keeps of the state that was not flushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nothing unflushed survives.
    LoseAll,
    /// Every unflushed write and name change landed.
    KeepAll,
    /// Unflushed name changes landed, unflushed data did not.
    KeepNames,
    /// Unflushed data landed, unflushed name changes did not.
    KeepData,
    /// Unflushed name changes landed; of each file's unflushed bytes, the
    /// first half landed and the rest did not (a torn write).
    TornData,
}

impl Cut {
    /// Every kind of cut, worst case first.
    pub const ALL: [Cut; 5] = [
        Cut::LoseAll,
        Cut::KeepNames,
        Cut::TornData,
        Cut::KeepData,
        Cut::KeepAll,
    ];

    /// A short word for the summary.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cut::LoseAll => "lose-all",
            Cut::KeepAll => "keep-all",
            Cut::KeepNames => "keep-names",
            Cut::KeepData => "keep-data",
            Cut::TornData => "torn-data",
        }
    }
}

#[derive(Clone)]
struct Inode {
    in_use: bool,
    /// Open handles of the current power cycle.
    open: u8,
    live: Data,
    durable: Data,
}

impl Inode {
    const FREE: Inode = Inode {
        in_use: false,
        open: 0,
        live: Data::new(),
        durable: Data::new(),
    };
}

#[derive(Clone)]
struct Entry {
    name: Name,
    inode: u8,
}

/// Make the first half of `inode`'s unflushed bytes durable, and the
/// length as far as that half reaches.
fn tear(inode: &mut Inode) {
    let (live, durable) = (&inode.live, &mut inode.durable);
    let end = live.len().max(durable.len());
    let Some(start) = (0..end).find(|&i| live.get(i) != durable.get(i)) else {
        return;
    };
    let mid = start + (end - start).div_ceil(2);
    let landed = mid.min(live.len());
    if durable.len() < landed {
        let _ = durable.resize(landed, 0);
    }
    for i in start..landed {
        if let (Some(to), Some(from)) = (durable.get_mut(i), live.get(i)) {
            *to = *from;
        }
    }
}

/// Counters of the operations that matter for cost: flush barriers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// File flushes.
    pub file_syncs: u32,
    /// Directory flushes.
    pub dir_syncs: u32,
    /// `write` calls (pages programmed).
    pub writes: u32,
}

/// The whole medium: inodes, the live and durable directory, and the
/// board's boot counter.
#[derive(Clone)]
pub struct Disk {
    inodes: [Inode; MAX_FILES],
    live: heapless::Vec<Entry, MAX_FILES>,
    durable: heapless::Vec<Entry, MAX_FILES>,
    locks: heapless::Vec<Name, MAX_LOCKS>,
    /// Power cycles so far; handles carry the cycle they were opened in.
    epoch: u32,
    /// Durable boot counter: the high half of every unique token.
    boots: u32,
    /// Tokens handed out in this power cycle: the low half.
    tokens: u32,
    stats: Stats,
}

impl Disk {
    /// An empty, formatted medium.
    pub const fn new() -> Disk {
        Disk {
            inodes: [Inode::FREE; MAX_FILES],
            live: heapless::Vec::new(),
            durable: heapless::Vec::new(),
            locks: heapless::Vec::new(),
            epoch: 0,
            boots: 0,
            tokens: 0,
            stats: Stats {
                file_syncs: 0,
                dir_syncs: 0,
                writes: 0,
            },
        }
    }

    /// Erase everything, in place: a new, formatted medium.
    pub fn format(&mut self) {
        for inode in &mut self.inodes {
            *inode = Inode::FREE;
        }
        self.live.clear();
        self.durable.clear();
        self.locks.clear();
        self.epoch = self.epoch.wrapping_add(1);
        self.boots = 0;
        self.tokens = 0;
        self.stats = Stats::default();
    }

    /// Cut the power and boot again, keeping of the unflushed state what
    /// `cut` says. Every open handle and held lock dies.
    pub fn power_cut(&mut self, cut: Cut) {
        if matches!(cut, Cut::KeepAll | Cut::KeepData) {
            for inode in self.inodes.iter_mut().filter(|i| i.in_use) {
                inode.durable.clone_from(&inode.live);
            }
        }
        if cut == Cut::TornData {
            for inode in self.inodes.iter_mut().filter(|i| i.in_use) {
                tear(inode);
            }
        }
        if matches!(cut, Cut::KeepAll | Cut::KeepNames | Cut::TornData) {
            self.durable.clone_from(&self.live);
        }
        self.live.clone_from(&self.durable);
        for inode in self.inodes.iter_mut() {
            inode.live.clone_from(&inode.durable);
            inode.open = 0;
        }
        self.locks.clear();
        self.epoch = self.epoch.wrapping_add(1);
        self.boots = self.boots.wrapping_add(1);
        self.tokens = 0;
        self.collect();
    }

    /// Flush counters since the disk was made.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Names in the live directory, for checks after recovery.
    pub fn for_each_name(&self, mut f: impl FnMut(&str)) {
        for entry in &self.live {
            f(&entry.name);
        }
    }

    /// Free every inode that no live name, durable name or open handle
    /// refers to.
    fn collect(&mut self) {
        for (index, inode) in self.inodes.iter_mut().enumerate() {
            let named = |entries: &heapless::Vec<Entry, MAX_FILES>| {
                entries.iter().any(|e| usize::from(e.inode) == index)
            };
            if inode.in_use && inode.open == 0 && !named(&self.live) && !named(&self.durable) {
                *inode = Inode::FREE;
            }
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.live.iter().position(|e| e.name == name)
    }

    fn inode(&mut self, index: u8) -> Result<&mut Inode, RamError> {
        self.inodes
            .get_mut(usize::from(index))
            .filter(|i| i.in_use)
            .ok_or(RamError::PowerLost)
    }

    /// Make a new empty inode named `name` in the live directory, opened.
    fn create(&mut self, name: &str) -> Result<u8, RamError> {
        let name: Name = name.try_into().map_err(|_| RamError::NameTooLong)?;
        if self.find(&name).is_some() {
            return Err(RamError::AlreadyExists);
        }
        let index = self
            .inodes
            .iter()
            .position(|i| !i.in_use)
            .ok_or(RamError::NoSpace)?;
        let index = u8::try_from(index).map_err(|_| RamError::NoSpace)?;
        self.live
            .push(Entry { name, inode: index })
            .map_err(|_| RamError::NoSpace)?;
        let inode = self.inode_slot(index)?;
        *inode = Inode::FREE;
        inode.in_use = true;
        inode.open = 1;
        Ok(index)
    }

    fn inode_slot(&mut self, index: u8) -> Result<&mut Inode, RamError> {
        self.inodes
            .get_mut(usize::from(index))
            .ok_or(RamError::Invalid)
    }
}

impl Default for Disk {
    fn default() -> Disk {
        Disk::new()
    }
}

/// The directory handle: a shared reference to the disk.
#[derive(Clone, Copy)]
pub struct RamDir<'a> {
    disk: &'a RefCell<Disk>,
}

impl<'a> RamDir<'a> {
    /// The directory of `disk`.
    pub fn new(disk: &'a RefCell<Disk>) -> RamDir<'a> {
        RamDir { disk }
    }

    fn open(&mut self, name: &str, writable: bool) -> Result<Option<RamFile<'a>>, RamError> {
        let mut disk = self.disk.borrow_mut();
        let Some(entry) = disk.find(name) else {
            return Ok(None);
        };
        let index = disk
            .live
            .get(entry)
            .map(|e| e.inode)
            .ok_or(RamError::Invalid)?;
        let epoch = disk.epoch;
        let inode = disk.inode(index)?;
        inode.open = inode.open.saturating_add(1);
        Ok(Some(RamFile {
            disk: self.disk,
            inode: index,
            epoch,
            pos: 0,
            writable,
        }))
    }
}

/// An open file of a [`RamDir`].
pub struct RamFile<'a> {
    disk: &'a RefCell<Disk>,
    inode: u8,
    epoch: u32,
    pos: usize,
    writable: bool,
}

impl RamFile<'_> {
    /// Run `f` on this file's inode, if the handle is still alive.
    fn with<R>(&mut self, f: impl FnOnce(&mut Inode, &mut Stats) -> R) -> Result<R, RamError> {
        let mut disk = self.disk.borrow_mut();
        if disk.epoch != self.epoch {
            return Err(RamError::PowerLost);
        }
        let disk = &mut *disk;
        let inode = disk
            .inodes
            .get_mut(usize::from(self.inode))
            .filter(|i| i.in_use)
            .ok_or(RamError::PowerLost)?;
        Ok(f(inode, &mut disk.stats))
    }
}

impl Drop for RamFile<'_> {
    fn drop(&mut self) {
        if let Ok(mut disk) = self.disk.try_borrow_mut()
            && disk.epoch == self.epoch
        {
            if let Some(inode) = disk.inodes.get_mut(usize::from(self.inode)) {
                inode.open = inode.open.saturating_sub(1);
            }
            disk.collect();
        }
    }
}

impl ErrorType for RamFile<'_> {
    type Error = RamError;
}

impl embedded_io::Read for RamFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, RamError> {
        let pos = self.pos;
        let n = self.with(|inode, _| {
            let rest = inode.live.get(pos..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
                to.copy_from_slice(from);
            }
            n
        })?;
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io::Write for RamFile<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, RamError> {
        if !self.writable {
            return Err(RamError::ReadOnly);
        }
        let pos = self.pos;
        let n = self.with(|inode, stats| {
            let n = buf.len().min(PAGE).min(FILE_CAPACITY.saturating_sub(pos));
            if n == 0 && !buf.is_empty() {
                return Err(RamError::NoSpace);
            }
            if inode.live.len() < pos + n {
                inode
                    .live
                    .resize(pos + n, 0)
                    .map_err(|_| RamError::NoSpace)?;
            }
            if let (Some(to), Some(from)) = (inode.live.get_mut(pos..pos + n), buf.get(..n)) {
                to.copy_from_slice(from);
            }
            stats.writes += 1;
            Ok(n)
        })??;
        self.pos += n;
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), RamError> {
        Ok(())
    }
}

impl embedded_io::Seek for RamFile<'_> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, RamError> {
        let here = self.pos as i64;
        let len = self.with(|inode, _| inode.live.len())? as i64;
        let new = match pos {
            SeekFrom::Start(n) => i64::try_from(n).map_err(|_| RamError::Invalid)?,
            SeekFrom::End(n) => len.checked_add(n).ok_or(RamError::Invalid)?,
            SeekFrom::Current(n) => here.checked_add(n).ok_or(RamError::Invalid)?,
        };
        self.pos = usize::try_from(new).map_err(|_| RamError::Invalid)?;
        Ok(new as u64)
    }
}

impl File for RamFile<'_> {
    fn sync_data(&mut self) -> Result<(), RamError> {
        self.with(|inode, stats| {
            // The litmus build breaks the contract on purpose: a flush that
            // reports success and keeps nothing (see Cargo.toml).
            if !cfg!(feature = "_litmus-lost-flush") {
                inode.durable.clone_from(&inode.live);
            }
            stats.file_syncs += 1;
        })
    }

    fn sync_all(&mut self) -> Result<(), RamError> {
        self.sync_data()
    }

    fn set_len(&mut self, len: u64) -> Result<(), RamError> {
        if !self.writable {
            return Err(RamError::ReadOnly);
        }
        let len = usize::try_from(len).map_err(|_| RamError::NoSpace)?;
        self.with(|inode, _| inode.live.resize(len, 0).map_err(|_| RamError::NoSpace))?
    }
}

/// A held writers' lock; dropping it releases the lock. A power cut
/// releases every lock.
pub struct RamLock<'a> {
    disk: &'a RefCell<Disk>,
    name: Name,
    epoch: u32,
}

impl Drop for RamLock<'_> {
    fn drop(&mut self) {
        if let Ok(mut disk) = self.disk.try_borrow_mut()
            && disk.epoch == self.epoch
        {
            disk.locks.retain(|held| *held != self.name);
        }
    }
}

impl<'a> Dir for RamDir<'a> {
    type Error = RamError;
    type File = RamFile<'a>;
    type Lock = RamLock<'a>;

    fn capabilities(&self) -> Capabilities {
        // Entries are replaced in one step of the RAM directory, so a
        // rename over a name is atomic.
        Capabilities::new(true, "ram")
    }

    fn unique_token(&mut self) -> Result<u64, RamError> {
        let mut disk = self.disk.borrow_mut();
        disk.tokens = disk.tokens.checked_add(1).ok_or(RamError::NoSpace)?;
        Ok((u64::from(disk.boots) << 32) | u64::from(disk.tokens))
    }

    fn create_new(&mut self, name: &str, _mode: Mode) -> Result<RamFile<'a>, RamError> {
        let mut disk = self.disk.borrow_mut();
        let inode = disk.create(name)?;
        Ok(RamFile {
            disk: self.disk,
            inode,
            epoch: disk.epoch,
            pos: 0,
            writable: true,
        })
    }

    fn open_read(&mut self, name: &str) -> Result<Option<RamFile<'a>>, RamError> {
        self.open(name, false)
    }

    fn open_write(&mut self, name: &str) -> Result<Option<RamFile<'a>>, RamError> {
        self.open(name, true)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), RamError> {
        let mut disk = self.disk.borrow_mut();
        let source = disk.find(from).ok_or(RamError::NotFound)?;
        let to_name: Name = to.try_into().map_err(|_| RamError::NameTooLong)?;
        // One step: the entry `from` takes the name `to`, and the entry that
        // had the name `to` goes. Never "remove `to`, then rename".
        if let Some(entry) = disk.live.get_mut(source) {
            entry.name = to_name;
        }
        if let Some(old) = disk
            .live
            .iter()
            .enumerate()
            .position(|(i, e)| i != source && e.name == to)
        {
            disk.live.swap_remove(old);
        }
        disk.collect();
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), RamError> {
        let mut disk = self.disk.borrow_mut();
        if let Some(entry) = disk.find(name) {
            disk.live.swap_remove(entry);
            disk.collect();
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), RamError> {
        let mut disk = self.disk.borrow_mut();
        let disk = &mut *disk;
        disk.durable.clone_from(&disk.live);
        disk.stats.dir_syncs += 1;
        disk.collect();
        Ok(())
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), RamError> {
        let disk = self.disk.borrow();
        for entry in &disk.live {
            if visit(&entry.name).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn lock(&mut self, name: &str, _mode: Mode) -> Result<RamLock<'a>, RamError> {
        let mut disk = self.disk.borrow_mut();
        let name: Name = name.try_into().map_err(|_| RamError::NameTooLong)?;
        if disk.locks.contains(&name) {
            return Err(RamError::Busy);
        }
        if disk.find(&name).is_none() {
            // The lock file is made once and never written: it may exist,
            // empty, after a power cut, which is its normal state.
            let inode = disk.create(&name)?;
            if let Ok(i) = disk.inode_slot(inode) {
                i.open = 0;
            }
        }
        disk.locks
            .push(name.clone())
            .map_err(|_| RamError::NoSpace)?;
        Ok(RamLock {
            disk: self.disk,
            name,
            epoch: disk.epoch,
        })
    }
}
