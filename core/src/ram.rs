//! A fixed-capacity RAM directory that keeps durable and volatile state
//! apart, with power-cut injection: the [`Dir`] of a bare-metal board
//! without a filesystem, and of tests that must not allocate.
//!
//! Behind the `ram` feature. No heap: a [`Disk`] holds at most `FILES`
//! files (lock files included) of at most `BYTES` bytes, named in at most
//! `NAME` bytes; exceeding a capacity is an error, never a panic.
//!
//! Every file ("inode") holds two copies of its bytes: `live`, what running
//! code reads and writes, and `durable`, what survives a power cut. The
//! directory likewise holds two tables of names. The flushes move live
//! state to durable state, as the power-cut contract of [`Dir`] says:
//!
//! - [`File::sync_data`]/[`File::sync_all`] make that file's bytes and
//!   length durable — not its name;
//! - [`Dir::sync_dir`] makes the names (created, renamed, removed) durable.
//!
//! A power cut keeps of the unflushed state what a [`Cut`] says: nothing
//! (the worst case for durability), everything, only the names (metadata
//! written back before data, like ext4 `data=writeback`), only the data, or
//! the names and the first half of each file's unflushed bytes (a torn
//! write). Every one of them is allowed by the contract. Handles and locks
//! of the previous power cycle are dead afterwards.
//!
//! Power is cut either by the caller between two operations
//! ([`Disk::power_cut`]) or by the disk itself in the middle of a run
//! ([`Disk::cut_after`]), as sequential-storage's mock flash cuts after N
//! bytes: the operation that blows the fuse and every one after it fail
//! with [`ErrorKind::Interrupted`] until [`Disk::power_on`].
//!
//! ```
//! use core::cell::RefCell;
//! use fsatomic::ram::{Cut, Disk, RamDir};
//! use fsatomic::{Mode, load, replace};
//!
//! let disk: RefCell<Disk<8, 64, 512>> = RefCell::new(Disk::new());
//! let mut dir = RamDir::new(&disk);
//! replace::commit(&mut dir, "a.json", b"1\n", Mode::PRIVATE).unwrap();
//! disk.borrow_mut().cut_after(3, Cut::LoseAll);
//! assert!(replace::commit(&mut dir, "a.json", b"2\n", Mode::PRIVATE).is_err());
//! disk.borrow_mut().power_on();
//! let mut buf = [0; 16];
//! let n = load::read_json(&mut dir, "a.json", &mut buf).unwrap().unwrap();
//! assert_eq!(&buf[..n], b"1\n"); // the old content, never a mix
//! ```

use core::cell::RefCell;
use core::ops::ControlFlow;

use embedded_io::{ErrorKind, ErrorType, SeekFrom};

use crate::{Capabilities, Dir, File, Mode};

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

    /// A short word for reports (`"lose-all"`).
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

/// Counters of the operations that matter for cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// File flushes.
    pub file_syncs: u32,
    /// Directory flushes.
    pub dir_syncs: u32,
    /// `write` calls (pages programmed).
    pub writes: u32,
}

#[derive(Clone)]
struct Inode<const BYTES: usize> {
    in_use: bool,
    /// Open handles of the current power cycle.
    open: u8,
    live: heapless::Vec<u8, BYTES>,
    durable: heapless::Vec<u8, BYTES>,
}

impl<const BYTES: usize> Inode<BYTES> {
    const FREE: Self = Inode {
        in_use: false,
        open: 0,
        live: heapless::Vec::new(),
        durable: heapless::Vec::new(),
    };

    /// Make the first half of the unflushed bytes durable, and the length
    /// as far as that half reaches.
    fn tear(&mut self) {
        let (live, durable) = (&self.live, &mut self.durable);
        let end = live.len().max(durable.len());
        let Some(start) = (0..end).find(|&i| live.get(i) != durable.get(i)) else {
            return;
        };
        let landed = (start + (end - start).div_ceil(2)).min(live.len());
        if durable.len() < landed {
            let _ = durable.resize(landed, 0);
        }
        for i in start..landed {
            if let (Some(to), Some(from)) = (durable.get_mut(i), live.get(i)) {
                *to = *from;
            }
        }
    }
}

#[derive(Clone)]
struct Entry<const NAME: usize> {
    name: heapless::String<NAME>,
    inode: usize,
}

/// The whole medium: `FILES` inodes of up to `BYTES` bytes, the live and
/// the durable directory of names up to `NAME` bytes, the held locks, and
/// the boot counter. Share it between handles as `&RefCell<Disk>`.
#[derive(Clone)]
pub struct Disk<const FILES: usize, const NAME: usize, const BYTES: usize> {
    inodes: [Inode<BYTES>; FILES],
    live: heapless::Vec<Entry<NAME>, FILES>,
    durable: heapless::Vec<Entry<NAME>, FILES>,
    locks: heapless::Vec<heapless::String<NAME>, FILES>,
    /// Power cycles so far; handles carry the cycle they were opened in.
    epoch: u32,
    /// Durable boot counter: the high half of every unique token.
    boots: u32,
    /// Tokens handed out in this power cycle: the low half.
    tokens: u32,
    stats: Stats,
    /// Most bytes one `write` takes; 0 for no limit. Every field of a new
    /// disk is zero, so that a `static` disk costs no flash (`.bss`).
    page: usize,
    lying_flushes: bool,
    fuse: Option<u32>,
    fuse_cut: Cut,
    off: bool,
}

impl<const FILES: usize, const NAME: usize, const BYTES: usize> Disk<FILES, NAME, BYTES> {
    /// An empty, formatted medium whose writes take any length.
    pub const fn new() -> Self {
        Disk {
            inodes: [Inode::FREE; FILES],
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
            page: 0,
            lying_flushes: false,
            fuse: None,
            fuse_cut: Cut::LoseAll,
            off: false,
        }
    }

    /// Let one `write` call take at most `page` bytes (0: no limit), as a
    /// flash driver programs one page at a time, so that a cut can fall
    /// between the pages of one document.
    pub fn set_page(&mut self, page: usize) {
        self.page = page;
    }

    /// Break the disk on purpose, for litmus tests of crash checks: file
    /// flushes report success and keep nothing.
    pub fn set_lying_flushes(&mut self, lying: bool) {
        self.lying_flushes = lying;
    }

    /// Erase every file and name, in place, keeping the configuration
    /// ([`Disk::set_page`], [`Disk::set_lying_flushes`]).
    pub fn format(&mut self) {
        self.inodes.iter_mut().for_each(|i| *i = Inode::FREE);
        self.live.clear();
        self.durable.clear();
        self.locks.clear();
        self.epoch = self.epoch.wrapping_add(1);
        (self.boots, self.tokens, self.stats) = (0, 0, Stats::default());
        (self.fuse, self.off) = (None, false);
    }

    /// Cut the power and boot again, keeping of the unflushed state what
    /// `cut` says. Every open handle and held lock dies.
    pub fn power_cut(&mut self, cut: Cut) {
        for inode in self.inodes.iter_mut().filter(|i| i.in_use) {
            match cut {
                Cut::KeepAll | Cut::KeepData => inode.durable.clone_from(&inode.live),
                Cut::TornData => inode.tear(),
                Cut::LoseAll | Cut::KeepNames => {}
            }
        }
        if matches!(cut, Cut::KeepAll | Cut::KeepNames | Cut::TornData) {
            self.durable.clone_from(&self.live);
        }
        self.live.clone_from(&self.durable);
        for inode in &mut self.inodes {
            inode.live.clone_from(&inode.durable);
            inode.open = 0;
        }
        self.locks.clear();
        self.epoch = self.epoch.wrapping_add(1);
        self.boots = self.boots.wrapping_add(1);
        self.tokens = 0;
        self.collect();
    }

    /// Let `ops` more operations (directory and file calls alike) succeed,
    /// then cut the power with `cut` in the next one: it and every later
    /// operation fail with [`ErrorKind::Interrupted`] until
    /// [`Disk::power_on`].
    pub fn cut_after(&mut self, ops: u32, cut: Cut) {
        self.fuse = Some(ops);
        self.fuse_cut = cut;
    }

    /// Whether the power is off (a fuse set by [`Disk::cut_after`] blew).
    pub fn is_off(&self) -> bool {
        self.off
    }

    /// Boot again after a cut by [`Disk::cut_after`], and disarm the fuse
    /// if it has not blown.
    pub fn power_on(&mut self) {
        self.off = false;
        self.fuse = None;
    }

    /// Operation counters since the disk was made or formatted.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Call `f` with every name in the live directory.
    pub fn for_each_name(&self, mut f: impl FnMut(&str)) {
        self.live.iter().for_each(|e| f(&e.name));
    }

    /// The live content of the file `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let entry = self.live.get(self.find(name)?)?;
        Some(&self.inodes.get(entry.inode)?.live)
    }

    /// Make `name` a durable file holding `data` (a new file, or the same
    /// file with new content): set up a state, or damage one on purpose.
    pub fn set(&mut self, name: &str, data: &[u8]) -> Result<(), ErrorKind> {
        let inode = match self.find(name) {
            Some(entry) => self
                .live
                .get(entry)
                .map(|e| e.inode)
                .ok_or(ErrorKind::Other)?,
            None => self.create(name, 0)?,
        };
        let i = self.inodes.get_mut(inode).ok_or(ErrorKind::Other)?;
        i.live = heapless::Vec::from_slice(data).map_err(|_| ErrorKind::OutOfMemory)?;
        i.durable.clone_from(&i.live);
        self.durable.clone_from(&self.live);
        Ok(())
    }

    /// Remove `name` durably; whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(entry) = self.find(name) else {
            return false;
        };
        self.live.swap_remove(entry);
        self.durable.clone_from(&self.live);
        self.collect();
        true
    }

    /// Count one operation; fail it if the power is off or goes off now.
    fn begin(&mut self) -> Result<(), ErrorKind> {
        match self.fuse {
            _ if self.off => return Err(ErrorKind::Interrupted),
            Some(0) => {
                self.fuse = None;
                self.power_cut(self.fuse_cut);
                self.off = true;
                return Err(ErrorKind::Interrupted);
            }
            Some(left) => self.fuse = Some(left - 1),
            None => {}
        }
        Ok(())
    }

    /// Free every inode that no live name, durable name or open handle
    /// refers to.
    fn collect(&mut self) {
        for (index, inode) in self.inodes.iter_mut().enumerate() {
            let named = |entries: &heapless::Vec<Entry<NAME>, FILES>| {
                entries.iter().any(|e| e.inode == index)
            };
            if inode.in_use && inode.open == 0 && !named(&self.live) && !named(&self.durable) {
                *inode = Inode::FREE;
            }
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.live.iter().position(|e| e.name == name)
    }

    /// Make a new empty inode named `name` in the live directory, with
    /// `open` handles.
    fn create(&mut self, name: &str, open: u8) -> Result<usize, ErrorKind> {
        let name = heapless::String::try_from(name).map_err(|_| ErrorKind::InvalidInput)?;
        if self.find(&name).is_some() {
            return Err(ErrorKind::AlreadyExists);
        }
        let index = self.inodes.iter().position(|i| !i.in_use);
        let index = index.ok_or(ErrorKind::OutOfMemory)?;
        let entry = Entry { name, inode: index };
        self.live.push(entry).map_err(|_| ErrorKind::OutOfMemory)?;
        let inode = self.inodes.get_mut(index).ok_or(ErrorKind::Other)?;
        *inode = Inode {
            in_use: true,
            open,
            ..Inode::FREE
        };
        Ok(index)
    }
}

impl<const FILES: usize, const NAME: usize, const BYTES: usize> Default
    for Disk<FILES, NAME, BYTES>
{
    fn default() -> Self {
        Disk::new()
    }
}

/// The directory handle: a shared reference to a [`Disk`]. Copies are
/// handles of the same directory.
pub struct RamDir<'a, const FILES: usize, const NAME: usize, const BYTES: usize> {
    disk: &'a RefCell<Disk<FILES, NAME, BYTES>>,
}

impl<const F: usize, const N: usize, const B: usize> Clone for RamDir<'_, F, N, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<const F: usize, const N: usize, const B: usize> Copy for RamDir<'_, F, N, B> {}

impl<'a, const F: usize, const N: usize, const B: usize> RamDir<'a, F, N, B> {
    /// The directory of `disk`.
    pub fn new(disk: &'a RefCell<Disk<F, N, B>>) -> Self {
        RamDir { disk }
    }

    /// The disk under this directory.
    pub fn disk(&self) -> &'a RefCell<Disk<F, N, B>> {
        self.disk
    }

    fn open(
        &mut self,
        name: &str,
        writable: bool,
    ) -> Result<Option<RamFile<'a, F, N, B>>, ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        let Some(index) = disk
            .find(name)
            .and_then(|e| disk.live.get(e))
            .map(|e| e.inode)
        else {
            return Ok(None);
        };
        let epoch = disk.epoch;
        let inode = disk.inodes.get_mut(index).ok_or(ErrorKind::Other)?;
        inode.open = inode.open.checked_add(1).ok_or(ErrorKind::OutOfMemory)?;
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
pub struct RamFile<'a, const FILES: usize, const NAME: usize, const BYTES: usize> {
    disk: &'a RefCell<Disk<FILES, NAME, BYTES>>,
    inode: usize,
    epoch: u32,
    pos: usize,
    writable: bool,
}

impl<const F: usize, const N: usize, const B: usize> RamFile<'_, F, N, B> {
    /// Run `f` on this file's inode, if the handle and the power are alive.
    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut Inode<B>, &mut Stats, usize) -> Result<R, ErrorKind>,
    ) -> Result<R, ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        let disk = &mut *disk;
        disk.begin()?;
        let alive = disk.epoch == self.epoch;
        let inode = disk
            .inodes
            .get_mut(self.inode)
            .filter(|i| i.in_use && alive);
        f(
            inode.ok_or(ErrorKind::Interrupted)?,
            &mut disk.stats,
            disk.page,
        )
    }

    fn writable(&self) -> Result<(), ErrorKind> {
        match self.writable {
            true => Ok(()),
            false => Err(ErrorKind::PermissionDenied),
        }
    }
}

impl<const F: usize, const N: usize, const B: usize> Drop for RamFile<'_, F, N, B> {
    fn drop(&mut self) {
        if let Ok(mut disk) = self.disk.try_borrow_mut()
            && disk.epoch == self.epoch
        {
            if let Some(inode) = disk.inodes.get_mut(self.inode) {
                inode.open = inode.open.saturating_sub(1);
            }
            disk.collect();
        }
    }
}

impl<const F: usize, const N: usize, const B: usize> ErrorType for RamFile<'_, F, N, B> {
    type Error = ErrorKind;
}

impl<const F: usize, const N: usize, const B: usize> embedded_io::Read for RamFile<'_, F, N, B> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let pos = self.pos;
        let n = self.with(|inode, _, _| {
            let rest = inode.live.get(pos..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
                to.copy_from_slice(from);
            }
            Ok(n)
        })?;
        self.pos += n;
        Ok(n)
    }
}

impl<const F: usize, const N: usize, const B: usize> embedded_io::Write for RamFile<'_, F, N, B> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.writable()?;
        let pos = self.pos;
        let n = self.with(|inode, stats, page| {
            let page = if page == 0 { B } else { page };
            let n = buf.len().min(page).min(B.saturating_sub(pos));
            if n == 0 && !buf.is_empty() {
                return Err(ErrorKind::OutOfMemory);
            }
            if inode.live.len() < pos + n {
                let grown = inode.live.resize(pos + n, 0);
                grown.map_err(|_| ErrorKind::OutOfMemory)?;
            }
            if let (Some(to), Some(from)) = (inode.live.get_mut(pos..pos + n), buf.get(..n)) {
                to.copy_from_slice(from);
            }
            stats.writes += 1;
            Ok(n)
        })?;
        self.pos += n;
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl<const F: usize, const N: usize, const B: usize> embedded_io::Seek for RamFile<'_, F, N, B> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, ErrorKind> {
        let here = self.pos as i64;
        let len = self.with(|inode, _, _| Ok(inode.live.len()))? as i64;
        let new = match pos {
            SeekFrom::Start(n) => i64::try_from(n).ok(),
            SeekFrom::End(n) => len.checked_add(n),
            SeekFrom::Current(n) => here.checked_add(n),
        };
        let new = new.and_then(|n| u64::try_from(n).ok());
        let new = new.ok_or(ErrorKind::InvalidInput)?;
        self.pos = usize::try_from(new).map_err(|_| ErrorKind::InvalidInput)?;
        Ok(new)
    }
}

impl<const F: usize, const N: usize, const B: usize> File for RamFile<'_, F, N, B> {
    fn sync_data(&mut self) -> Result<(), ErrorKind> {
        let lying = self.disk.borrow().lying_flushes;
        self.with(|inode, stats, _| {
            if !lying {
                inode.durable.clone_from(&inode.live);
            }
            stats.file_syncs += 1;
            Ok(())
        })
    }

    fn sync_all(&mut self) -> Result<(), ErrorKind> {
        self.sync_data()
    }

    fn set_len(&mut self, len: u64) -> Result<(), ErrorKind> {
        self.writable()?;
        let len = usize::try_from(len).map_err(|_| ErrorKind::OutOfMemory)?;
        self.with(|inode, _, _| {
            inode
                .live
                .resize(len, 0)
                .map_err(|_| ErrorKind::OutOfMemory)
        })
    }
}

/// A held writers' lock; dropping it releases the lock. A power cut
/// releases every lock.
pub struct RamLock<'a, const FILES: usize, const NAME: usize, const BYTES: usize> {
    disk: &'a RefCell<Disk<FILES, NAME, BYTES>>,
    name: heapless::String<NAME>,
    epoch: u32,
}

impl<const F: usize, const N: usize, const B: usize> Drop for RamLock<'_, F, N, B> {
    fn drop(&mut self) {
        if let Ok(mut disk) = self.disk.try_borrow_mut()
            && disk.epoch == self.epoch
        {
            disk.locks.retain(|held| *held != self.name);
        }
    }
}

impl<'a, const F: usize, const N: usize, const B: usize> Dir for RamDir<'a, F, N, B> {
    type Error = ErrorKind;
    type File = RamFile<'a, F, N, B>;
    type Lock = RamLock<'a, F, N, B>;

    fn capabilities(&self) -> Capabilities {
        // A rename replaces the entry in one step: it is atomic. Files
        // never move, and may hold less than 4 KiB. A power cut keeps all
        // unflushed names or none: they land in order.
        Capabilities::new(true, "ram")
            .with_inline_data(false)
            .with_ordered_names(true)
    }

    fn unique_token(&mut self) -> Result<u64, ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        disk.tokens = disk.tokens.checked_add(1).ok_or(ErrorKind::OutOfMemory)?;
        Ok((u64::from(disk.boots) << 32) | u64::from(disk.tokens))
    }

    fn create_new(&mut self, name: &str, _mode: Mode) -> Result<Self::File, ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        let inode = disk.create(name, 1)?;
        Ok(RamFile {
            disk: self.disk,
            inode,
            epoch: disk.epoch,
            pos: 0,
            writable: true,
        })
    }

    fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, ErrorKind> {
        self.open(name, false)
    }

    /// A RAM directory has no owners and no permissions (like the flash
    /// filesystems of the boards it stands for), and only the hard links
    /// the library makes itself, to versions it never writes in place:
    /// every file is the caller's own and `mode` is ignored, as in
    /// [`Dir::create_new`].
    fn open_write(&mut self, name: &str, _mode: Mode) -> Result<Option<Self::File>, ErrorKind> {
        self.open(name, true)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        let source = disk.find(from).ok_or(ErrorKind::NotFound)?;
        let to_name = heapless::String::try_from(to).map_err(|_| ErrorKind::InvalidInput)?;
        // One step: the entry `from` takes the name `to`, and the entry that
        // had the name `to` goes. Never "remove `to`, then rename".
        let old = disk
            .live
            .iter()
            .enumerate()
            .position(|(i, e)| i != source && e.name == to);
        if let Some(entry) = disk.live.get_mut(source) {
            entry.name = to_name;
        }
        if let Some(old) = old {
            disk.live.swap_remove(old);
        }
        disk.collect();
        Ok(())
    }

    fn link(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        let source = disk.find(from).ok_or(ErrorKind::NotFound)?;
        if disk.find(to).is_some() {
            return Err(ErrorKind::AlreadyExists);
        }
        let name = heapless::String::try_from(to).map_err(|_| ErrorKind::InvalidInput)?;
        let inode = disk.live.get(source).ok_or(ErrorKind::Other)?.inode;
        disk.live
            .push(Entry { name, inode })
            .map_err(|_| ErrorKind::OutOfMemory)
    }

    fn remove(&mut self, name: &str) -> Result<(), ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        if let Some(entry) = disk.find(name) {
            disk.live.swap_remove(entry);
            disk.collect();
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        let disk = &mut *disk;
        disk.begin()?;
        disk.durable.clone_from(&disk.live);
        disk.stats.dir_syncs += 1;
        disk.collect();
        Ok(())
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), ErrorKind> {
        let names = {
            let mut disk = self.disk.borrow_mut();
            disk.begin()?;
            disk.live
                .iter()
                .map(|e| e.name.clone())
                .collect::<heapless::Vec<_, F>>()
        };
        // The disk is not borrowed while the visitor runs: it may call in.
        let _ = names.iter().try_for_each(|name| visit(name));
        Ok(())
    }

    fn lock(&mut self, name: &str, _mode: Mode) -> Result<Self::Lock, ErrorKind> {
        let mut disk = self.disk.borrow_mut();
        disk.begin()?;
        let name = heapless::String::try_from(name).map_err(|_| ErrorKind::InvalidInput)?;
        if disk.locks.contains(&name) {
            // A board has no one to wait for.
            return Err(ErrorKind::Other);
        }
        if disk.find(&name).is_none() {
            // Made once, never written: after a power cut it may exist,
            // empty, which is its normal state.
            disk.create(&name, 0)?;
        }
        disk.locks
            .push(name.clone())
            .map_err(|_| ErrorKind::OutOfMemory)?;
        let epoch = disk.epoch;
        Ok(RamLock {
            disk: self.disk,
            name,
            epoch,
        })
    }
}

/// The in-memory directory of the core's unit tests: a leaked [`Disk`]
/// with room for their largest files, and the inspection they use.
#[cfg(test)]
pub(crate) mod test {
    extern crate std;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use super::*;

    type TestDisk = Disk<16, 96, 8192>;

    /// A directory of its own disk; clones share it.
    #[derive(Clone)]
    pub struct MemDir {
        pub files: &'static RefCell<TestDisk>,
        /// Report the capabilities of FAT (no atomic rename).
        pub fat: bool,
        pub syncs: Syncs,
    }

    impl Default for MemDir {
        fn default() -> Self {
            let files = std::boxed::Box::leak(std::boxed::Box::new(RefCell::new(Disk::new())));
            MemDir {
                files,
                fat: false,
                syncs: Syncs(files),
            }
        }
    }

    /// The flushes (file and directory) made so far.
    #[derive(Clone)]
    pub struct Syncs(&'static RefCell<TestDisk>);

    impl Syncs {
        pub fn borrow(&self) -> std::boxed::Box<u32> {
            let stats = self.0.borrow().stats();
            std::boxed::Box::new(stats.file_syncs + stats.dir_syncs)
        }
    }

    impl MemDir {
        fn dir(&self) -> RamDir<'static, 16, 96, 8192> {
            RamDir::new(self.files)
        }

        pub fn get(&self, name: &str) -> Option<Vec<u8>> {
            self.files.borrow().get(name).map(<[u8]>::to_vec)
        }

        pub fn set(&self, name: &str, data: &[u8]) {
            self.files.borrow_mut().set(name, data).unwrap();
        }

        /// The names, sorted, lock files aside (the tests look at the
        /// files a protocol writes).
        pub fn names(&self) -> Vec<String> {
            let mut names = Vec::new();
            let disk = self.files.borrow();
            disk.for_each_name(|n| names.extend((!n.ends_with(".lock")).then(|| n.to_string())));
            names.sort();
            names
        }
    }

    impl Dir for MemDir {
        type Error = ErrorKind;
        type File = RamFile<'static, 16, 96, 8192>;
        type Lock = RamLock<'static, 16, 96, 8192>;

        fn capabilities(&self) -> Capabilities {
            Capabilities::new(!self.fat, if self.fat { "vfat" } else { "ram" })
        }
        fn unique_token(&mut self) -> Result<u64, ErrorKind> {
            self.dir().unique_token()
        }
        fn create_new(&mut self, name: &str, mode: Mode) -> Result<Self::File, ErrorKind> {
            self.dir().create_new(name, mode)
        }
        fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, ErrorKind> {
            self.dir().open_read(name)
        }
        fn open_write(&mut self, name: &str, mode: Mode) -> Result<Option<Self::File>, ErrorKind> {
            self.dir().open_write(name, mode)
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
            self.dir().rename(from, to)
        }
        fn remove(&mut self, name: &str) -> Result<(), ErrorKind> {
            self.dir().remove(name)
        }
        fn link(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
            self.dir().link(from, to)
        }
        fn sync_dir(&mut self) -> Result<(), ErrorKind> {
            self.dir().sync_dir()
        }
        fn for_each_entry(
            &mut self,
            visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
        ) -> Result<(), ErrorKind> {
            self.dir().for_each_entry(visit)
        }
        fn lock(&mut self, name: &str, mode: Mode) -> Result<Self::Lock, ErrorKind> {
            self.dir().lock(name, mode)
        }
    }

    /// Every commit cut after every number of operations, with every kind
    /// of cut, leaves the old document or the new one: the RAM directory
    /// keeps the power-cut contract the protocols are proven against.
    #[test]
    fn a_cut_anywhere_in_a_commit_leaves_old_or_new() {
        for protocol in [crate::Protocol::Replace, crate::Protocol::Slots] {
            for cut in Cut::ALL {
                for ops in 0.. {
                    let disk: RefCell<Disk<8, 64, 512>> = RefCell::new(Disk::new());
                    disk.borrow_mut().set_page(8);
                    let mut dir = RamDir::new(&disk);
                    let store =
                        crate::Store::<u32>::new("n.json", Mode::PRIVATE).with_protocol(protocol);
                    let mut buf = [0u8; 64];
                    store.save(&mut dir, &mut buf, &1).unwrap();
                    disk.borrow_mut().cut_after(ops, cut);
                    let done = store.save(&mut dir, &mut buf, &2).is_ok();
                    disk.borrow_mut().power_on();
                    crate::recover::recover(&mut dir, "n.json", Mode::PRIVATE).unwrap();
                    let now = store.load(&mut dir, &mut buf).unwrap();
                    assert!(now == Some(2) || (!done && now == Some(1)), "{ops} {cut:?}");
                    if done {
                        break;
                    }
                }
            }
        }
    }
}
