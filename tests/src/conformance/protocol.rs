//! The core's protocols on the adapter: Replace, `Store`, recovery.

use std::collections::BTreeSet;

use fsatomic::{CommitError, Dir, Mode, Protocol, Store, replace};

use super::{
    Adapter, BUF, Counter, Fixture, append_hit, bump, encoded, hits_journal, load_of, mode_of,
    plant_file, save_at, set,
};
use crate::wrap::{Call, Counting};

/// This area's checks, in order: [`conformance_tests!`](crate::conformance_tests)
/// makes one test of each. A check not listed here never runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_protocol {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)* [
            replace_creates_then_replaces,
            replace_refuses_an_empty_document_before_io,
            store_round_trips,
            store_update_starts_from_default,
            store_load_only_reads,
            store_save_leaves_orphans_to_recover,
            recover_sweeps_only_its_own_orphans,
            slots_store_round_trips_with_one_flush_per_commit,
            journal_store_round_trips_with_one_flush_per_append,
            adapter_counts_two_flushes_per_replace_and_one_per_slot_commit,
            the_previous_version_and_a_tentative_one_on_real_files,
        ] }
    };
}

/// A Replace commit creates the file, a second one replaces it (a new
/// inode), each with exactly the mode asked, and leaves no temporary file.
pub fn replace_creates_then_replaces<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    replace::commit(&mut dir, "doc.json", b"{\"v\": 1}\n", Mode::PUBLIC_READ).expect("commit 1");
    assert_eq!(fx.read("doc.json"), b"{\"v\": 1}\n");
    assert_eq!(fx.mode("doc.json"), 0o644);
    let first = fx.snap("doc.json").inode;
    replace::commit(&mut dir, "doc.json", b"{\"v\": 2}\n", Mode::PRIVATE).expect("commit 2");
    assert_eq!(fx.read("doc.json"), b"{\"v\": 2}\n");
    assert_eq!(fx.mode("doc.json"), 0o600);
    assert_ne!(fx.snap("doc.json").inode, first, "written in place");
    assert_eq!(fx.names(), set(["doc.json"]));
}

/// An empty document is refused before any I/O: an empty file on disk
/// always means a torn write.
pub fn replace_refuses_an_empty_document_before_io<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    let err = replace::commit(&mut dir, "doc.json", b"", Mode::PRIVATE).unwrap_err();
    assert!(matches!(err, CommitError::EmptyDocument { .. }), "{err:?}");
    assert!(log.is_empty(), "I/O before refusing: {:?}", log.summary());
    assert!(fx.names().is_empty());
}

/// `Store`: absent loads as `None`; `save` then `load` round-trips; the
/// file is the indented JSON the codec makes, with exactly the store's
/// mode; `update` reads, modifies and writes.
pub fn store_round_trips<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    let store: Store<Counter> = Store::new("counter.json", Mode::new(0o640).expect("mode"));
    assert_eq!(load_of(&store, &mut dir), None);
    save_at(&store, &mut dir, 41);
    assert_eq!(fx.read("counter.json"), encoded(&Counter::at(41)));
    assert!(encoded(&Counter::at(41)).ends_with(b"}\n"));
    assert_eq!(fx.mode("counter.json"), 0o640);
    assert_eq!(load_of(&store, &mut dir), Some(Counter::at(41)));
    let hits = bump(&store, &mut dir);
    assert_eq!(hits, 42);
    assert_eq!(load_of(&store, &mut dir), Some(Counter::at(42)));
    assert_eq!(fx.mode("counter.json"), 0o640);
    assert_eq!(fx.names(), set(["counter.json", "counter.json.lock"]));
    // Only the owner may write a 0640 state: only the owner may open its
    // lock file (an open lock file can be held forever).
    assert_eq!(fx.mode("counter.json.lock"), 0o600);
}

/// `update` of an absent file starts from `Default`.
pub fn store_update_starts_from_default<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    let store: Store<Counter> = Store::new("fresh.json", Mode::PRIVATE);
    let mut buf = [0u8; BUF];
    let seen = store
        .update(&mut dir, &mut buf, |c| {
            let seen = c.clone();
            c.bump();
            seen
        })
        .expect("update");
    assert_eq!(seen, Counter::default());
    assert_eq!(fx.read("fresh.json"), encoded(&Counter::at(1)));
}

/// A load opens and reads, nothing else: no lock, no create, no remove —
/// in particular it never removes a temporary file (the Go package's
/// reader deleted the writer's in-flight temp file).
pub fn store_load_only_reads<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let store: Store<Counter> = Store::new("counter.json", Mode::PRIVATE);
    save_at(&store, &mut fx.open::<A>(), 7);
    let orphan = ".counter.json.00000000deadbeef.tmp";
    plant_file(&fx.path(orphan), b"in flight", 0o600);
    let before = fx.names();
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    for _ in 0..3 {
        assert_eq!(load_of(&store, &mut dir), Some(Counter::at(7)));
    }
    let calls: BTreeSet<Call> = log.calls().into_iter().collect();
    assert!(
        calls.is_subset(&BTreeSet::from([Call::OpenRead, Call::Read, Call::Seek])),
        "a load did more than read: {:?}",
        log.summary()
    );
    assert_eq!(fx.names(), before);
    assert_eq!(fx.read(orphan), b"in flight");
}

/// `save` does not list the directory (its cost must not grow with it):
/// an orphan a crash left stays until boot-time `recover`, which removes
/// it under the writers' lock.
pub fn store_save_leaves_orphans_to_recover<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let orphan = ".counter.json.0123456789abcdef.tmp";
    plant_file(&fx.path(orphan), b"torn", 0o600);
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    let store: Store<Counter> = Store::new("counter.json", Mode::PRIVATE);
    save_at(&store, &mut dir, 1);
    assert!(
        !log.events().iter().any(|e| e.call == Call::List),
        "save listed the directory: {:?}",
        log.summary()
    );
    assert!(fx.path(orphan).exists());
    let events_before = log.events().len();
    fsatomic::recover::recover(&mut dir, "counter.json", Mode::PRIVATE).expect("recover");
    let events: Vec<_> = log.events().into_iter().skip(events_before).collect();
    let pos = |call: Call, name: &str| {
        events
            .iter()
            .position(|e| e.call == call && e.name == name)
            .unwrap_or_else(|| panic!("no {call} {name} in {:?}", log.summary()))
    };
    let lock = pos(Call::Lock, "counter.json.lock");
    let sweep = pos(Call::Remove, orphan);
    let unlock = pos(Call::Unlock, "counter.json.lock");
    assert!(lock < sweep && sweep < unlock, "{:?}", log.summary());
    assert!(!fx.path(orphan).exists());
}

/// `recover` removes exactly the orphans of its own name — the
/// `.NAME.<16 hex>.tmp` pattern — and nothing else: not another store's
/// orphans, not the Go package's fixed `NAME.tmp`, not the lock, not the
/// file itself.
pub fn recover_sweeps_only_its_own_orphans<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    let mine = [
        ".a.json.0123456789abcdef.tmp",
        ".a.json.ffffffffffffffff.tmp",
        ".a.json.0000000000000000.tmp",
    ];
    let others = [
        "a.json",
        "a.json.tmp",
        ".a.json.tmp",
        ".a.json.0123456789ABCDEF.tmp",
        ".a.json.0123.tmp",
        ".b.json.0123456789abcdef.tmp",
        ".x.a.json.0123456789abcdef.tmp",
    ];
    for name in mine.iter().chain(&others) {
        plant_file(&fx.path(name), b"x", 0o600);
    }
    let removed = fsatomic::recover::recover(&mut dir, "a.json", Mode::PRIVATE)
        .expect("recover")
        .orphans;
    assert_eq!(removed, mine.len());
    let mut expected: BTreeSet<String> = others.iter().map(|s| (*s).to_owned()).collect();
    expected.insert("a.json.lock".to_owned());
    assert_eq!(fx.names(), expected);
}

/// `Store` with the Slots protocol on the adapter: two preallocated slot
/// files with exactly the store's mode, round trips through save, load and
/// update, and once set up one flush per commit, no rename, no create, and
/// no change of a slot file's size or inode.
pub fn slots_store_round_trips_with_one_flush_per_commit<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let store: Store<Counter> =
        Store::new("slots.json", Mode::PRIVATE).with_protocol(Protocol::Slots);
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    assert_eq!(load_of(&store, &mut dir), None);
    save_at(&store, &mut dir, 1);
    assert_eq!(load_of(&store, &mut dir), Some(Counter::at(1)));
    let slots = [fx.path("slots.json.a"), fx.path("slots.json.b")];
    for slot in &slots {
        assert_eq!(mode_of(slot), 0o600, "{}", slot.display());
    }
    let shape = |p: &std::path::Path| {
        let s = super::Snapshot::of(p);
        (s.inode, s.size)
    };
    let before: Vec<_> = slots.iter().map(|p| shape(p)).collect();
    for i in 2..=5 {
        log.clear();
        let hits = bump(&store, &mut dir);
        assert_eq!(hits, i);
        assert_eq!(
            log.count(Call::is_flush),
            Protocol::Slots.flushes_per_commit() as usize,
            "{:?}",
            log.summary()
        );
        assert_eq!(log.count(|c| matches!(c, Call::Rename | Call::Create)), 0);
        let after: Vec<_> = slots.iter().map(|p| shape(p)).collect();
        assert_eq!(after, before, "a slot file changed size or inode");
    }
    println!("{} Slots update: {:?}", A::NAME, log.summary());
    assert_eq!(load_of(&store, &mut fx.open::<A>()), Some(Counter::at(5)));
    assert!(!fx.path("slots.json").exists());
}

/// `JournalStore` on the adapter: appends are durable with one flush each,
/// the journal file keeps the store's mode, another handle replays the same
/// state, and compaction keeps it.
pub fn journal_store_round_trips_with_one_flush_per_append<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let mut buf = [0u8; BUF];
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    let mut store = hits_journal(Mode::PRIVATE).compact_after(1 << 20);
    store.open(&mut dir, &mut buf).expect("open");
    for ip in 0..50 {
        log.clear();
        append_hit(&mut store, &mut dir, ip);
        assert_eq!(log.count(Call::is_flush), 1, "{:?}", log.summary());
        assert_eq!(log.count(|c| c == Call::Rename), 0);
    }
    println!("{} Journal append: {:?}", A::NAME, log.summary());
    assert!(store.state().is(0..50), "{:?}", store.state());
    assert_eq!(fx.mode("hits.json.journal"), 0o600);
    let mut other = fx.open::<A>();
    let reader = hits_journal(Mode::PRIVATE);
    let read = reader.read(&mut other, &mut buf).expect("read");
    assert!(read.is(0..50), "{read:?}");
    store.compact(&mut dir, &mut buf).expect("compact");
    append_hit(&mut store, &mut dir, 50);
    let read = reader.read(&mut other, &mut buf).expect("read");
    assert!(read.is(0..51), "{read:?}");
    let mut reopened = hits_journal(Mode::PRIVATE);
    reopened.open(&mut other, &mut buf).expect("reopen");
    assert!(reopened.state().is(0..51), "{:?}", reopened.state());
    assert_eq!(fx.mode("hits.json"), 0o600);
    assert!(fx.temp_names().is_empty());
}

/// The flush barriers the adapter itself counts ([`Adapter::flush_count`]),
/// as opposed to the trait calls the `Counting` wrapper sees: two per
/// Replace commit, one per Slots commit once set up, none for a load.
pub fn adapter_counts_two_flushes_per_replace_and_one_per_slot_commit<A: Adapter>(test: &str) {
    let (_fx, mut dir) = Fixture::with::<A>(test);
    let replace: Store<Counter> = Store::new("replace.json", Mode::PRIVATE);
    let start = A::flush_count(&dir);
    for i in 1..=10 {
        save_at(&replace, &mut dir, i);
        assert_eq!(
            A::flush_count(&dir) - start,
            2 * i,
            "after {i} Replace commits"
        );
    }
    let before = A::flush_count(&dir);
    for _ in 0..10 {
        load_of(&replace, &mut dir);
    }
    assert_eq!(A::flush_count(&dir), before, "a load flushed");
    let slots: Store<Counter> =
        Store::new("slots.json", Mode::PRIVATE).with_protocol(Protocol::Slots);
    save_at(&slots, &mut dir, 0);
    let before = A::flush_count(&dir);
    for i in 1..=10 {
        save_at(&slots, &mut dir, i);
        assert_eq!(A::flush_count(&dir) - before, i, "after {i} Slots commits");
    }
}

/// A Replace state that keeps its previous version, and commit-confirmed,
/// on the adapter's real files: `NAME.prev` holds the replaced version with
/// the same exact mode, no second name is left behind, a commit costs the
/// flushes the filesystem needs (2 where name changes land in order, 4
/// elsewhere), and recovery rolls back a tentative version that was not
/// confirmed.
pub fn the_previous_version_and_a_tentative_one_on_real_files<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    let mut buf = [0u8; BUF];
    let store: Store<Counter> = Store::new("net.json", Mode::PUBLIC_READ).with_previous();
    save_at(&store, &mut dir, 1);
    let before = A::flush_count(&dir);
    save_at(&store, &mut dir, 2);
    let flushes = if dir.capabilities().ordered_names {
        2
    } else {
        4
    };
    assert_eq!(
        A::flush_count(&dir) - before,
        flushes,
        "flushes of a commit"
    );
    assert_eq!(
        store.load_previous(&mut dir, &mut buf).expect("previous"),
        Some(Counter::at(1))
    );
    assert_eq!(fx.read("net.json.prev"), encoded(&Counter::at(1)));
    assert_eq!(fx.mode("net.json.prev"), 0o644);
    store
        .save_tentative(&mut dir, &mut buf, &Counter::at(3))
        .expect("tentative");
    assert_eq!(fx.mode("net.json.tentative"), 0o644);
    assert_eq!(load_of(&store, &mut dir), Some(Counter::at(3)));
    let done =
        fsatomic::recover::recover(&mut dir, "net.json", Mode::PUBLIC_READ).expect("recover");
    assert!(done.rolled_back);
    assert_eq!(load_of(&store, &mut dir), Some(Counter::at(2)));
    store
        .save_tentative(&mut dir, &mut buf, &Counter::at(4))
        .expect("tentative");
    assert!(store.confirm(&mut dir).expect("confirm"));
    assert_eq!(
        store.load_previous(&mut dir, &mut buf).expect("previous"),
        Some(Counter::at(2))
    );
    assert_eq!(
        fx.names(),
        set(["net.json", "net.json.lock", "net.json.prev"])
    );
}
