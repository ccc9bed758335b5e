//! The core allocates nothing: every commit and load path, counted by a
//! global allocator, makes zero heap allocations.
//!
//! The directory the paths run on must not allocate either, or the count
//! would measure it: [`RamDir`] below keeps a fixed number of fixed-size
//! files in one block allocated before counting starts, and its handles
//! share that block through an `Rc` (cloning one allocates nothing).
//!
//! Counting is per thread (the test harness runs tests on several threads
//! and allocates for itself): a test arms its own thread around exactly the
//! calls under test. Each test prints `alloc: <path>: <n> allocations`,
//! which `tests/benches/report.sh` copies into `docs/performance.md`.
//! Nothing here depends on timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::rc::Rc;

use embedded_io::{ErrorKind, ErrorType, Read, Seek, SeekFrom, Write};
use fsatomic::journal::{Entry, Journal, Tail};
use fsatomic::store::Fold;
use fsatomic::{Capabilities, Dir, File, JournalStore, Mode, Store, load, recover, replace, slots};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Counting allocator, armed per thread.

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: allocations during thread teardown are not ours to count.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping touches only const-initialised thread-locals without
// destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run `f` with this thread's allocations counted; return its result and
/// the count.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    (out, COUNT.with(Cell::get))
}

/// Assert that `f` allocates nothing, and say so for the report.
fn assert_no_alloc<T>(path: &str, f: impl FnOnce() -> T) -> T {
    let (out, n) = counted(f);
    println!("alloc: {path}: {n} allocations");
    assert_eq!(n, 0, "{path} allocated {n} times");
    out
}

#[test]
fn the_counter_counts() {
    let (v, n) = counted(|| vec![1u8; 10]);
    assert_eq!(v.len(), 10);
    assert_eq!(n, 1, "one Vec is one allocation");
    let (_, n) = counted(|| {
        let dir = RamDir::new();
        let _other = dir.clone();
    });
    assert_eq!(
        n, 1,
        "a RamDir allocates its block once, and clones share it"
    );
}

// ---------------------------------------------------------------------------
// A fixed-capacity RAM directory that never allocates after `RamDir::new`.

const MAX_FILES: usize = 16;
const FILE_CAPACITY: usize = 16 * 1024;
const NAME_CAPACITY: usize = 96;

#[derive(Clone, Copy)]
struct Inode {
    used: bool,
    links: u32,
    open: u32,
    len: usize,
    data: [u8; FILE_CAPACITY],
}

const FREE: Inode = Inode {
    used: false,
    links: 0,
    open: 0,
    len: 0,
    data: [0; FILE_CAPACITY],
};

#[derive(Clone, Copy)]
struct DirEntry {
    name: [u8; NAME_CAPACITY],
    name_len: usize,
    inode: Option<usize>,
}

impl DirEntry {
    fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.name_len]).unwrap_or("")
    }
}

const NO_ENTRY: DirEntry = DirEntry {
    name: [0; NAME_CAPACITY],
    name_len: 0,
    inode: None,
};

struct Disk {
    inodes: [Inode; MAX_FILES],
    entries: [DirEntry; MAX_FILES],
    token: u64,
    flushes: u64,
}

impl Disk {
    fn find(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.inode.is_some() && e.name() == name)
    }

    fn release(&mut self, inode: usize) {
        let i = &mut self.inodes[inode];
        if i.links == 0 && i.open == 0 {
            i.used = false;
            i.len = 0;
        }
    }

    fn unlink(&mut self, entry: usize) {
        if let Some(inode) = self.entries[entry].inode.take() {
            self.inodes[inode].links -= 1;
            self.release(inode);
        }
    }
}

/// The directory: a shared, fixed block of inodes and entries.
#[derive(Clone)]
struct RamDir(Rc<RefCell<Disk>>);

impl RamDir {
    fn new() -> RamDir {
        RamDir(Rc::new(RefCell::new(Disk {
            inodes: [FREE; MAX_FILES],
            entries: [NO_ENTRY; MAX_FILES],
            token: 0,
            flushes: 0,
        })))
    }

    fn flushes(&self) -> u64 {
        self.0.borrow().flushes
    }

    fn handle(&self, inode: usize, writable: bool) -> RamFile {
        self.0.borrow_mut().inodes[inode].open += 1;
        RamFile {
            disk: self.0.clone(),
            inode,
            pos: 0,
            writable,
        }
    }
}

struct RamFile {
    disk: Rc<RefCell<Disk>>,
    inode: usize,
    pos: usize,
    writable: bool,
}

impl Drop for RamFile {
    fn drop(&mut self) {
        let mut d = self.disk.borrow_mut();
        d.inodes[self.inode].open -= 1;
        d.release(self.inode);
    }
}

impl ErrorType for RamFile {
    type Error = ErrorKind;
}

impl Read for RamFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let d = self.disk.borrow();
        let i = &d.inodes[self.inode];
        let n = buf.len().min(i.len.saturating_sub(self.pos));
        buf[..n].copy_from_slice(&i.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for RamFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        if !self.writable {
            return Err(ErrorKind::PermissionDenied);
        }
        let mut d = self.disk.borrow_mut();
        let i = &mut d.inodes[self.inode];
        let end = self.pos + buf.len();
        if end > FILE_CAPACITY {
            return Err(ErrorKind::OutOfMemory);
        }
        if self.pos > i.len {
            i.data[i.len..self.pos].fill(0);
        }
        i.data[self.pos..end].copy_from_slice(buf);
        i.len = i.len.max(end);
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl Seek for RamFile {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, ErrorKind> {
        let len = self.disk.borrow().inodes[self.inode].len as i64;
        let to = match pos {
            SeekFrom::Start(n) => n as i64,
            SeekFrom::End(n) => len + n,
            SeekFrom::Current(n) => self.pos as i64 + n,
        };
        if to < 0 {
            return Err(ErrorKind::InvalidInput);
        }
        self.pos = to as usize;
        Ok(to as u64)
    }
}

impl File for RamFile {
    fn sync_data(&mut self) -> Result<(), ErrorKind> {
        self.disk.borrow_mut().flushes += 1;
        Ok(())
    }
    fn sync_all(&mut self) -> Result<(), ErrorKind> {
        self.sync_data()
    }
    fn set_len(&mut self, len: u64) -> Result<(), ErrorKind> {
        let len = len as usize;
        if len > FILE_CAPACITY {
            return Err(ErrorKind::OutOfMemory);
        }
        let mut d = self.disk.borrow_mut();
        let i = &mut d.inodes[self.inode];
        if len > i.len {
            i.data[i.len..len].fill(0);
        }
        i.len = len;
        Ok(())
    }
}

impl Dir for RamDir {
    type Error = ErrorKind;
    type File = RamFile;
    type Lock = ();

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, "ram")
    }

    fn unique_token(&mut self) -> Result<u64, ErrorKind> {
        let mut d = self.0.borrow_mut();
        d.token += 1;
        Ok(d.token.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn create_new(&mut self, name: &str, _mode: Mode) -> Result<RamFile, ErrorKind> {
        if name.len() > NAME_CAPACITY {
            return Err(ErrorKind::InvalidInput);
        }
        let inode = {
            let mut d = self.0.borrow_mut();
            if d.find(name).is_some() {
                return Err(ErrorKind::AlreadyExists);
            }
            let inode = d
                .inodes
                .iter()
                .position(|i| !i.used)
                .ok_or(ErrorKind::OutOfMemory)?;
            let entry = d
                .entries
                .iter()
                .position(|e| e.inode.is_none())
                .ok_or(ErrorKind::OutOfMemory)?;
            d.inodes[inode].used = true;
            d.inodes[inode].links = 1;
            d.inodes[inode].len = 0;
            let e = &mut d.entries[entry];
            e.name[..name.len()].copy_from_slice(name.as_bytes());
            e.name_len = name.len();
            e.inode = Some(inode);
            inode
        };
        Ok(self.handle(inode, true))
    }

    fn open_read(&mut self, name: &str) -> Result<Option<RamFile>, ErrorKind> {
        let found = {
            let d = self.0.borrow();
            d.find(name).and_then(|e| d.entries[e].inode)
        };
        Ok(found.map(|inode| self.handle(inode, false)))
    }

    fn open_write(&mut self, name: &str) -> Result<Option<RamFile>, ErrorKind> {
        let found = {
            let d = self.0.borrow();
            d.find(name).and_then(|e| d.entries[e].inode)
        };
        Ok(found.map(|inode| self.handle(inode, true)))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), ErrorKind> {
        let mut d = self.0.borrow_mut();
        let src = d.find(from).ok_or(ErrorKind::NotFound)?;
        if let Some(dst) = d.find(to) {
            d.unlink(dst);
        }
        let e = &mut d.entries[src];
        e.name[..to.len()].copy_from_slice(to.as_bytes());
        e.name_len = to.len();
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), ErrorKind> {
        let mut d = self.0.borrow_mut();
        if let Some(e) = d.find(name) {
            d.unlink(e);
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), ErrorKind> {
        self.0.borrow_mut().flushes += 1;
        Ok(())
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), ErrorKind> {
        let d = self.0.borrow();
        for e in d.entries.iter().filter(|e| e.inode.is_some()) {
            if visit(e.name()).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn lock(&mut self, _name: &str, _mode: Mode) -> Result<(), ErrorKind> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Types without heap: what firmware stores.

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
struct User {
    username: heapless::String<32>,
    password_hash: heapless::String<128>,
    role: heapless::String<8>,
    created_at: u64,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
struct Users {
    users: heapless::Vec<User, 4>,
}

fn users(n: usize) -> Users {
    let mut u = Users::default();
    for i in 0..n {
        let mut name = heapless::String::new();
        let _ = core::fmt::write(&mut name, format_args!("user{i}"));
        let _ = u.users.push(User {
            username: name,
            password_hash: heapless::String::try_from(
                "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$4bWr1l0gJxR9w2ZkQe3sT8yU7vPaHcNdXfM6oLiKjEs",
            )
            .unwrap(),
            role: heapless::String::try_from("admin").unwrap(),
            created_at: 1_700_000_000 + i as u64,
        });
    }
    u
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
struct Hit {
    ip: u32,
    at: u64,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
struct Hits {
    total: u64,
    recent: heapless::Vec<u32, 8>,
}

impl Fold<Hit> for Hits {
    fn apply(&mut self, _seq: u64, hit: &Hit) {
        self.total += 1;
        if self.recent.is_full() {
            self.recent.remove(0);
        }
        let _ = self.recent.push(hit.ip);
    }
    fn prune(&mut self) {
        self.recent.truncate(4);
    }
}

const DOC: &[u8] = b"{\n  \"users\": [\n    {\n      \"username\": \"admin\",\n      \"role\": \"admin\"\n    }\n  ]\n}\n";

// ---------------------------------------------------------------------------
// The paths.

#[test]
fn replace_commit_and_load_allocate_nothing() {
    let mut dir = RamDir::new();
    let mut buf = [0u8; 512];
    assert_no_alloc("replace::commit (first, creates the file)", || {
        replace::commit(&mut dir, "users.json", DOC, Mode::PRIVATE).unwrap()
    });
    assert_no_alloc("replace::commit (over an existing file)", || {
        replace::commit(&mut dir, "users.json", DOC, Mode::PRIVATE).unwrap()
    });
    let n = assert_no_alloc("load::read_json", || {
        load::read_json(&mut dir, "users.json", &mut buf).unwrap()
    });
    assert_eq!(n.map(|n| &buf[..n]), Some(DOC));
    assert_no_alloc("recover::recover (lock + orphan sweep)", || {
        recover::recover(&mut dir, "users.json", Mode::PRIVATE).unwrap()
    });
    assert_eq!(dir.flushes(), 4, "two flushes per Replace commit");
}

#[test]
fn slots_commit_and_load_allocate_nothing() {
    let mut dir = RamDir::new();
    let mut buf = [0u8; 512];
    assert_no_alloc("slots::commit (first, formats both slots)", || {
        slots::commit(&mut dir, "cfg.json", DOC, Mode::PRIVATE, 400).unwrap()
    });
    let before = dir.flushes();
    assert_no_alloc("slots::commit (steady state)", || {
        for _ in 0..3 {
            slots::commit(&mut dir, "cfg.json", DOC, Mode::PRIVATE, 400).unwrap();
        }
    });
    assert_eq!(dir.flushes() - before, 3, "one flush per Slots commit");
    let n = assert_no_alloc("slots::load", || {
        slots::load(&mut dir, "cfg.json", &mut buf).unwrap()
    });
    assert_eq!(n.map(|n| &buf[..n]), Some(DOC));
}

#[test]
fn typed_store_save_update_load_allocate_nothing() {
    let mut dir = RamDir::new();
    let mut buf = [0u8; 2048];
    let store: Store<Users> = Store::new("users.json", Mode::PRIVATE);
    let value = users(2);
    assert_no_alloc("Store::save", || {
        store.save(&mut dir, &mut buf, &value).unwrap()
    });
    assert_no_alloc("Store::update", || {
        store
            .update(&mut dir, &mut buf, |u| u.users[0].created_at += 1)
            .unwrap()
    });
    let loaded = assert_no_alloc("Store::load", || store.load(&mut dir, &mut buf).unwrap());
    assert_eq!(loaded.unwrap().users[0].created_at, 1_700_000_001);
    let slots = store.with_protocol(fsatomic::Protocol::Slots);
    assert_no_alloc("Store::save with Slots", || {
        slots.save(&mut dir, &mut buf, &value).unwrap()
    });
    let loaded = assert_no_alloc("Store::load with Slots", || {
        slots.load(&mut dir, &mut buf).unwrap()
    });
    assert_eq!(loaded, Some(value));
}

#[test]
fn journal_append_replay_compact_allocate_nothing() {
    let mut dir = RamDir::new();
    let mut buf = [0u8; 1024];
    let mut store = JournalStore::<Hits, Hit>::new("hits.json", Mode::PRIVATE)
        .unwrap()
        .compact_after(600);
    assert_no_alloc("JournalStore::open (creates the journal)", || {
        store.open(&mut dir, &mut buf).unwrap()
    });
    let before = dir.flushes();
    assert_no_alloc("JournalStore::append", || {
        for ip in 0..10 {
            store
                .append(
                    &mut dir,
                    &mut buf,
                    &Hit {
                        ip,
                        at: 1_700_000_000,
                    },
                )
                .unwrap();
        }
    });
    assert_eq!(dir.flushes() - before, 10, "one flush per append");
    assert_no_alloc("JournalStore::append (through compactions)", || {
        for ip in 10..60 {
            store
                .append(
                    &mut dir,
                    &mut buf,
                    &Hit {
                        ip,
                        at: 1_700_000_000,
                    },
                )
                .unwrap();
        }
    });
    assert_no_alloc("JournalStore::append_batch", || {
        let batch = [
            Hit { ip: 60, at: 1 },
            Hit { ip: 61, at: 2 },
            Hit { ip: 62, at: 3 },
        ];
        store.append_batch(&mut dir, &mut buf, &batch).unwrap()
    });
    assert_no_alloc("JournalStore::compact", || {
        store.compact(&mut dir, &mut buf).unwrap()
    });
    assert_no_alloc("JournalStore::append (after compaction)", || {
        store
            .append(&mut dir, &mut buf, &Hit { ip: 63, at: 4 })
            .unwrap()
    });
    let read = assert_no_alloc("JournalStore::read (lock-free replay)", || {
        store.read(&mut dir, &mut buf).unwrap()
    });
    assert_eq!(read.total, 64);
    let mut again = JournalStore::<Hits, Hit>::new("hits.json", Mode::PRIVATE).unwrap();
    assert_no_alloc("JournalStore::open (recover + replay)", || {
        again.open(&mut dir, &mut buf).unwrap()
    });
    assert_eq!(again.state().total, 64);
}

#[test]
fn raw_journal_append_and_replay_allocate_nothing() {
    let mut dir = RamDir::new();
    let mut buf = [0u8; 512];
    let journal = Journal::new("log.json", Mode::PRIVATE).unwrap();
    let mut records = 0u64;
    let replay = assert_no_alloc("Journal::recover (creates the journal)", || {
        journal
            .recover(&mut dir, &mut buf, &mut |_, _| Ok(()))
            .unwrap()
    });
    let mut tail: Tail = replay.tail;
    assert_no_alloc("Journal::append", || {
        for _ in 0..5 {
            journal
                .append(&mut dir, &mut tail, &[b"{\"ip\":1}", b"{\"ip\":2}"])
                .unwrap();
        }
    });
    assert_no_alloc("Journal::replay", || {
        journal
            .replay(&mut dir, &mut buf, &mut |entry, _| {
                if let Entry::Record { .. } = entry {
                    records += 1;
                }
                Ok(())
            })
            .unwrap()
    });
    assert_eq!(records, 10);
}
