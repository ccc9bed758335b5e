//! Concurrency: writers in threads and in processes lose nothing, readers
//! never break a writer, and a lock dies with its process.

use std::collections::BTreeSet;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use fsatomic::{Dir, Mode};

use super::{
    Adapter, BUF, COUNTER, Counter, Fixture, Hit, bump, child_done, child_role, finish_child,
    hits_journal, load_of, run_children, spawn_child, wait_for,
};
use crate::wrap::{Call, Counting};

/// This area's checks, in order: [`conformance_tests!`](crate::conformance_tests)
/// makes one test of each. A check not listed here never runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_concurrency {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)* [
            threads_updating_one_counter_lose_nothing,
            reader_threads_never_break_a_writer,
            processes_updating_one_counter_lose_nothing,
            processes_appending_to_one_journal_lose_nothing,
            a_reader_process_never_breaks_a_writer,
            a_lock_dies_with_its_process,
            a_lock_wait_gives_up_at_its_limit,
        ] }
    };
}

/// Updates per writer.
pub const UPDATES: u64 = 200;

/// The longest a parent waits for a child's marker before calling the
/// child hung.
const HUNG: Duration = Duration::from_secs(120);

fn update_many<A: Adapter>(fx: &Fixture, n: u64) {
    let mut dir = fx.open::<A>();
    let mut buf = [0u8; BUF];
    for i in 0..n {
        COUNTER
            .update(&mut dir, &mut buf, Counter::bump)
            .unwrap_or_else(|e| panic!("update {i}: {e}"));
    }
}

fn final_count<A: Adapter>(fx: &Fixture) -> Counter {
    load_of(&COUNTER, &mut fx.open::<A>()).expect("present")
}

/// Two threads, each with its own directory handle, each updating one
/// counter [`UPDATES`] times through `Store::update`, end exactly at twice
/// that: the lock excludes handles of one process.
pub fn threads_updating_one_counter_lose_nothing<A: Adapter>(test: &str) {
    let fx = Arc::new(Fixture::new::<A>(test));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let fx = fx.clone();
            thread::spawn(move || update_many::<A>(&fx, UPDATES))
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread");
    }
    let end = final_count::<A>(&fx);
    assert!(end.is_whole());
    assert_eq!(end.hits, 2 * UPDATES);
    assert!(fx.temp_names().is_empty());
    assert_eq!(fx.mode("counter.json"), 0o600);
}

/// Load in a tight loop until `stop`; every load must see a whole document
/// that never goes backwards. Returns the number of loads.
fn read_until<D: Dir<Error = std::io::Error>>(dir: &mut D, stop: &dyn Fn() -> bool) -> u64 {
    let mut buf = [0u8; BUF];
    let mut last = 0;
    let mut loads = 0;
    loop {
        // Check the flag before the load, so the last load happens after
        // the writer finished.
        let stopping = stop();
        let doc = COUNTER
            .load(dir, &mut buf)
            .unwrap_or_else(|e| panic!("load {loads}: {e}"))
            .unwrap_or_else(|| panic!("load {loads}: the file was missing"));
        assert!(doc.is_whole(), "load {loads}: a torn document {doc:?}");
        assert!(
            doc.hits >= last,
            "load {loads}: went back from {last} to {}",
            doc.hits
        );
        last = doc.hits;
        loads += 1;
        if stopping {
            return loads;
        }
    }
}

/// Two reader threads load the counter in a tight loop while a writer
/// updates it [`UPDATES`] times: every write succeeds, every load sees a
/// whole document, and the readers call nothing but open and read.
pub fn reader_threads_never_break_a_writer<A: Adapter>(test: &str) {
    let fx = Arc::new(Fixture::new::<A>(test));
    update_many::<A>(&fx, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (fx, stop) = (fx.clone(), stop.clone());
            thread::spawn(move || {
                let mut dir = Counting::new(fx.open::<A>());
                let log = dir.log();
                let loads = read_until(&mut dir, &|| stop.load(Ordering::SeqCst));
                let calls: BTreeSet<Call> = log.calls().into_iter().collect();
                (loads, calls)
            })
        })
        .collect();
    update_many::<A>(&fx, UPDATES);
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        let (loads, calls) = r.join().expect("reader thread");
        assert!(
            calls.is_subset(&BTreeSet::from([Call::OpenRead, Call::Read, Call::Seek])),
            "a reader did more than read: {calls:?}"
        );
        println!("{}: a reader thread loaded {loads} times", A::NAME);
    }
    assert_eq!(final_count::<A>(&fx).hits, 1 + UPDATES);
    assert!(fx.temp_names().is_empty());
}

/// Two child processes, each updating one counter [`UPDATES`] times
/// through `Store::update`, end exactly at twice that.
pub fn processes_updating_one_counter_lose_nothing<A: Adapter>(test: &str) {
    if let Some((role, fx)) = child_role(test) {
        update_many::<A>(&fx, UPDATES);
        child_done(&fx, &role, "ok");
        return;
    }
    let fx = Fixture::new::<A>(test);
    run_children(test, ["writer-1", "writer-2"], &fx);
    let end = final_count::<A>(&fx);
    assert!(end.is_whole());
    assert_eq!(end.hits, 2 * UPDATES);
    assert!(fx.temp_names().is_empty());
}

/// Two child processes, each appending [`UPDATES`] records to one journal
/// (small compaction threshold, so compactions interleave with the other
/// process's appends), end with every record folded in exactly once, in
/// sequence.
pub fn processes_appending_to_one_journal_lose_nothing<A: Adapter>(test: &str) {
    let journal = || hits_journal(Mode::PRIVATE).compact_after(2048);
    if let Some((role, fx)) = child_role(test) {
        let base: u32 = if role == "appender-1" { 0 } else { 1_000_000 };
        let mut dir = fx.open::<A>();
        let mut buf = [0u8; BUF];
        let mut store = journal();
        store.open(&mut dir, &mut buf).expect("open");
        for i in 0..UPDATES as u32 {
            store
                .append(&mut dir, &mut buf, &Hit { ip: base + i })
                .unwrap_or_else(|e| panic!("append {i}: {e}"));
        }
        child_done(&fx, &role, "ok");
        return;
    }
    let fx = Fixture::new::<A>(test);
    run_children(test, ["appender-1", "appender-2"], &fx);
    let state = journal()
        .read(&mut fx.open::<A>(), &mut [0u8; BUF])
        .expect("read");
    let n = UPDATES as u32;
    let expected_sum: u64 = (0..n).chain(1_000_000..1_000_000 + n).map(u64::from).sum();
    assert_eq!(
        (state.count, state.sum, state.gaps),
        (2 * UPDATES, expected_sum, 0),
        "{state:?}"
    );
    assert!(
        fx.path("hits.json").exists(),
        "no compaction happened: the check did not test one"
    );
    assert!(fx.temp_names().is_empty());
}

/// A child process loads the counter in a tight loop while this process
/// (and a reader thread here) updates it [`UPDATES`] times: every write
/// succeeds and every load in both sees a whole document.
pub fn a_reader_process_never_breaks_a_writer<A: Adapter>(test: &str) {
    if let Some((role, fx)) = child_role(test) {
        let stop = fx.root().join("stop");
        let mut dir = fx.open::<A>();
        // One load before "ready", so the loop is known to be running.
        let first = read_until(&mut dir, &|| true);
        fs::write(fx.root().join("ready"), b"").expect("ready marker");
        let loads = first + read_until(&mut dir, &|| stop.exists());
        child_done(&fx, &role, &loads.to_string());
        return;
    }
    let fx = Arc::new(Fixture::new::<A>(test));
    update_many::<A>(&fx, 1);
    let child = spawn_child(test, "reader", &fx, None);
    wait_for(&fx.root().join("ready"), HUNG);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (fx, stop) = (fx.clone(), stop.clone());
        thread::spawn(move || read_until(&mut fx.open::<A>(), &|| stop.load(Ordering::SeqCst)))
    };
    update_many::<A>(&fx, UPDATES);
    stop.store(true, Ordering::SeqCst);
    fs::write(fx.root().join("stop"), b"").expect("stop marker");
    let thread_loads = reader.join().expect("reader thread");
    let child_loads = finish_child(child, "reader", &fx);
    println!(
        "{}: the reader process loaded {child_loads} times, the reader thread {thread_loads} times, during {UPDATES} commits",
        A::NAME
    );
    assert_eq!(final_count::<A>(&fx).hits, 1 + UPDATES);
    assert!(fx.temp_names().is_empty());
}

/// A lock held by a process that dies (killed, as by a power cut of the
/// process) is released: `try_lock` from outside and the adapter's own lock
/// both get it at once.
pub fn a_lock_dies_with_its_process<A: Adapter>(test: &str) {
    if let Some((_role, fx)) = child_role(test) {
        hold_the_lock_until_killed::<A>(&fx);
    }
    let fx = Fixture::new::<A>(test);
    let mut child = spawn_child(test, "holder", &fx, None);
    wait_for(&fx.root().join("locked"), HUNG);
    let probe = fs::File::open(fx.path("counter.json.lock")).expect("lock file");
    assert!(
        matches!(probe.try_lock(), Err(fs::TryLockError::WouldBlock)),
        "the child does not hold the lock"
    );
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    probe.try_lock().expect("the lock outlived its process");
    probe.unlock().expect("unlock");
    let lock = fx
        .open::<A>()
        .lock("counter.json.lock", Mode::PRIVATE)
        .expect("lock after the holder died");
    drop(lock);
}

/// A lock another process holds: a bounded wait gives up after its limit
/// (at once for a single try) with an error `is_lock_busy` tells apart, and
/// an update that cannot take the lock fails before it writes anything.
/// Once the holder is gone, the same bounded wait takes the lock.
pub fn a_lock_wait_gives_up_at_its_limit<A: Adapter>(test: &str) {
    use std::time::Instant;
    if let Some((_role, fx)) = child_role(test) {
        hold_the_lock_until_killed::<A>(&fx);
    }
    let fx = Fixture::new::<A>(test);
    update_many::<A>(&fx, 1);
    let mut child = spawn_child(test, "holder", &fx, None);
    wait_for(&fx.root().join("locked"), HUNG);
    let mut dir = fx.open::<A>();
    let limit = Duration::from_millis(300);
    for limit in [Duration::ZERO, limit] {
        A::set_lock_timeout(&mut dir, Some(limit));
        let start = Instant::now();
        let Err(error) = dir.lock("counter.json.lock", Mode::PRIVATE) else {
            panic!("a lock another process holds was taken");
        };
        let waited = start.elapsed();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut, "{error}");
        assert!(
            waited >= limit && waited < HUNG,
            "gave up after {waited:?}, limit {limit:?}"
        );
        let before = fs::read(fx.path("counter.json")).expect("counter");
        let Err(error) = COUNTER.update(&mut dir, &mut [0u8; BUF], Counter::bump) else {
            panic!("an update took a lock another process holds");
        };
        let error = fsatomic::Error::from(error);
        assert!(error.is_lock_busy(), "not a busy lock: {error}");
        assert_eq!(
            fs::read(fx.path("counter.json")).expect("counter"),
            before,
            "a refused update changed the file"
        );
    }
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    bump(&COUNTER, &mut dir);
    assert_eq!(final_count::<A>(&fx).hits, 2);
}

/// In a child: take the counter's lock, leave the marker `locked`, and
/// hold the lock until killed.
fn hold_the_lock_until_killed<A: Adapter>(fx: &Fixture) -> ! {
    let mut dir = fx.open::<A>();
    let _lock = dir
        .lock("counter.json.lock", Mode::PRIVATE)
        .expect("child lock");
    fs::write(fx.root().join("locked"), b"").expect("locked marker");
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}
