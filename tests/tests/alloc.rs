//! The core allocates nothing: every commit and load path, counted by a
//! global allocator, makes zero heap allocations.
//!
//! The directory the paths run on must not allocate either, or the count
//! would measure it: core's RAM directory (`fsatomic::ram`) keeps a fixed
//! number of fixed-size files in one block allocated before counting
//! starts, and its handles share that block by reference.
//!
//! Counting is per thread (the test harness runs tests on several threads
//! and allocates for itself): a test arms its own thread around exactly the
//! calls under test. Each test prints `alloc: <path>: <n> allocations`,
//! which `tests/benches/report.sh` copies into `docs/performance.md`.
//! Nothing here depends on timing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};

use fsatomic::journal::{Entry, Journal, Tail};
use fsatomic::store::Fold;
use fsatomic::{JournalStore, Mode, Store, load, recover, replace, slots};
use serde::{Deserialize, Serialize};

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
        let dir = ram_dir();
        let _other = dir;
    });
    assert_eq!(n, 1, "a RAM disk is one block, and handles share it");
}

// Core's fixed-capacity RAM directory: it never allocates.

type RamDir = fsatomic::ram::RamDir<'static, 16, 96, 4096>;

/// A directory of its own disk, allocated (and leaked) before counting
/// starts.
fn ram_dir() -> RamDir {
    RamDir::new(Box::leak(Box::new(
        RefCell::new(fsatomic::ram::Disk::new()),
    )))
}

/// File and directory flushes so far.
fn flushes(dir: &RamDir) -> u32 {
    let stats = dir.disk().borrow().stats();
    stats.file_syncs + stats.dir_syncs
}

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

/// A hit from `ip` at one fixed time.
fn hit(ip: u32) -> Hit {
    Hit {
        ip,
        at: 1_700_000_000,
    }
}

const DOC: &[u8] = b"{\n  \"users\": [\n    {\n      \"username\": \"admin\",\n      \"role\": \"admin\"\n    }\n  ]\n}\n";

// The paths.

#[test]
fn replace_commit_and_load_allocate_nothing() {
    let mut dir = ram_dir();
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
    assert_eq!(flushes(&dir), 4, "two flushes per Replace commit");
}

#[test]
fn slots_commit_and_load_allocate_nothing() {
    let mut dir = ram_dir();
    let mut buf = [0u8; 512];
    assert_no_alloc("slots::commit (first, formats both slots)", || {
        slots::commit(&mut dir, "cfg.json", DOC, Mode::PRIVATE, 400).unwrap()
    });
    let before = flushes(&dir);
    assert_no_alloc("slots::commit (steady state)", || {
        for _ in 0..3 {
            slots::commit(&mut dir, "cfg.json", DOC, Mode::PRIVATE, 400).unwrap();
        }
    });
    assert_eq!(flushes(&dir) - before, 3, "one flush per Slots commit");
    let n = assert_no_alloc("slots::load", || {
        slots::load(&mut dir, "cfg.json", &mut buf).unwrap()
    });
    assert_eq!(n.map(|n| &buf[..n]), Some(DOC));
}

#[test]
fn typed_store_save_update_load_allocate_nothing() {
    let mut dir = ram_dir();
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
    // A state is never moved silently: Slots is another state (or a
    // `convert::convert`, checked below).
    let slots =
        Store::<Users>::new("cfg.json", Mode::PRIVATE).with_protocol(fsatomic::Protocol::Slots);
    assert_no_alloc("Store::save with Slots", || {
        slots.save(&mut dir, &mut buf, &value).unwrap()
    });
    let loaded = assert_no_alloc("Store::load with Slots", || {
        slots.load(&mut dir, &mut buf).unwrap()
    });
    assert_eq!(loaded, Some(value));
    assert_no_alloc("convert::convert", || {
        fsatomic::convert::convert(
            &mut dir,
            "users.json",
            fsatomic::Protocol::Slots,
            Mode::PRIVATE,
            &mut buf,
            1024,
        )
        .unwrap()
    });
    assert!(store.load(&mut dir, &mut buf).unwrap().is_some());
}

#[test]
fn journal_append_replay_compact_allocate_nothing() {
    let mut dir = ram_dir();
    let mut buf = [0u8; 1024];
    let mut store = JournalStore::<Hits, Hit>::new("hits.json", Mode::PRIVATE)
        .unwrap()
        .compact_after(600);
    assert_no_alloc("JournalStore::open (creates the journal)", || {
        store.open(&mut dir, &mut buf).unwrap()
    });
    let before = flushes(&dir);
    assert_no_alloc("JournalStore::append", || {
        for ip in 0..10 {
            store.append(&mut dir, &mut buf, &hit(ip)).unwrap();
        }
    });
    assert_eq!(flushes(&dir) - before, 10, "one flush per append");
    assert_no_alloc("JournalStore::append (through compactions)", || {
        for ip in 10..60 {
            store.append(&mut dir, &mut buf, &hit(ip)).unwrap();
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
    let mut dir = ram_dir();
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
