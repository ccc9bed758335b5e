//! Group commit (`fsatomic::group::GroupJournal`, feature `std`) against
//! the std adapter: shared flushes, no lost or doubled sequence numbers, a
//! failed flush's error reaching every appender of its batch and of the
//! batches written after it (and no one else), and the pipeline's steps
//! driven one by one.
#![cfg(unix)]

use std::sync::{Arc, Barrier};

use fsatomic::fs::Op;
use fsatomic::group::{AppendResult, GroupJournal, Pipeline};
use fsatomic::{CommitError, JournalStore, Mode, StoreError};
use fsatomic_std::StdDir;
use fsatomic_testkit::conformance::{Fixture, Hit, Hits};
use fsatomic_testkit::wrap::{FaultPoint, Faulty};

const THREADS: usize = 8;
const PER_THREAD: u32 = 40;

fn store() -> JournalStore<'static, Hits, Hit> {
    JournalStore::new("hits.json", Mode::PRIVATE).expect("name")
}

/// What one appender was told, per hit it appended.
type Outcomes<E> = Vec<(u32, AppendResult<E>)>;

/// `THREADS` threads append `PER_THREAD` hits each, all released at once;
/// every thread's results, in order.
fn hammer<D: fsatomic::Dir + Send>(
    journal: &GroupJournal<'static, Hits, Hit, D>,
) -> Vec<Outcomes<D::Error>>
where
    D::Error: Send + Sync,
    D::File: Send,
    D::Lock: Send,
{
    let start = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS as u32)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    (0..PER_THREAD)
                        .map(|i| {
                            let ip = t * PER_THREAD + i;
                            (ip, journal.append(Hit { ip }))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("appender panicked"))
            .collect()
    })
}

#[test]
fn concurrent_appenders_share_flushes_and_get_consecutive_sequence_numbers() {
    let fx = Fixture::new::<Std>("group-share");
    let dir = fx.open::<Std>();
    let journal = GroupJournal::open(store(), dir, 4096).expect("open journal");
    let flushes_before = journal.with_dir(StdDir::flush_count);
    let results = hammer(&journal);
    let appends = u64::from(THREADS as u32 * PER_THREAD);
    let flushes = journal.with_dir(StdDir::flush_count) - flushes_before;
    println!(
        "group commit: {appends} appends from {THREADS} threads, {flushes} flushes, {} batches",
        journal.batches()
    );
    assert!(flushes < appends, "no flush was shared: {flushes}");
    assert_eq!(journal.batches(), flushes, "one flush per batch");
    let mut seqs: Vec<u64> = Vec::new();
    for thread in &results {
        let mine: Vec<u64> = thread
            .iter()
            .map(|(ip, r)| *r.as_ref().unwrap_or_else(|e| panic!("hit {ip}: {e}")))
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "a thread's appends were acknowledged out of order: {mine:?}"
        );
        seqs.extend(mine);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=appends).collect::<Vec<_>>(), "lost or doubled");
    let total_ips: u64 = (0..THREADS as u32 * PER_THREAD).map(u64::from).sum();
    journal.with_state(|h| assert_eq!((h.count, h.sum, h.gaps), (appends, total_ips, 0)));
    let (store, mut dir) = journal.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    let on_disk = store.read(&mut dir, &mut buf).expect("read");
    assert_eq!(
        (on_disk.count, on_disk.sum, on_disk.gaps),
        (appends, total_ips, 0)
    );
}

#[test]
fn a_failed_flush_fails_its_batch_and_those_written_after_it_and_the_journal_goes_on() {
    let fx = Fixture::new::<Std>("group-eio");
    // The fifth flush fails: a batch somewhere in the middle of the run.
    let dir = Faulty::eio(fx.open::<Std>(), FaultPoint::SyncFile, 5);
    let journal = GroupJournal::open(store(), dir, 4096).expect("open journal");
    let results = hammer(&journal);
    assert!(journal.with_dir(Faulty::fired), "the fault never fired");
    let mut failed = Vec::new();
    let mut seqs = Vec::new();
    let mut acked_ips = 0u64;
    let mut first_error: Option<Arc<StoreError<std::io::Error>>> = None;
    for (ip, r) in results.into_iter().flatten() {
        match r {
            Ok(seq) => {
                seqs.push(seq);
                acked_ips += u64::from(ip);
            }
            Err(e) => {
                assert!(
                    matches!(&*e, StoreError::Commit(CommitError::Io(io)) if io.op == Op::SyncFile && io.source.raw_os_error() == Some(5)),
                    "hit {ip}: {e:?}"
                );
                // One flush failed: its batch, and any batch written while
                // it was in flight, share its one error.
                if let Some(first) = &first_error {
                    assert!(Arc::ptr_eq(first, &e), "failures from two batches");
                }
                first_error = Some(e);
                failed.push(ip);
            }
        }
    }
    println!(
        "one failed batch of {} appends; {} acknowledged",
        failed.len(),
        seqs.len()
    );
    assert!(!failed.is_empty(), "the failed flush reached no appender");
    seqs.sort_unstable();
    let acked = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=acked).collect::<Vec<_>>(),
        "the failed batch left a gap or a doubled number"
    );
    journal.with_state(|h| assert_eq!((h.count, h.sum, h.gaps), (acked, acked_ips, 0)));
    let (store, dir) = journal.into_inner();
    let mut dir = dir.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    let on_disk = store.read(&mut dir, &mut buf).expect("read");
    assert_eq!(
        (on_disk.count, on_disk.sum, on_disk.gaps),
        (acked, acked_ips, 0),
        "the failed batch's records are on disk"
    );
}

#[test]
fn a_pipeline_writes_the_next_batch_before_the_first_is_flushed() {
    let fx = Fixture::new::<Std>("group-pipeline");
    let mut p = Pipeline::open(store(), fx.open::<Std>(), 64).expect("open");
    let hits = |from: u32, n: u32| (from..from + n).map(|ip| Hit { ip }).collect::<Vec<_>>();
    let (ra, rb) = (hits(10, 3), hits(20, 2));
    let mut a = p.write(&ra).expect("write a");
    let mut b = p.write(&rb).expect("write b while a is not flushed");
    assert_eq!((a.first(), b.first()), (1, 4), "b goes after a");
    let sb = b.sync();
    // Finishing b before a is refused: the state folds in order.
    let sa = a.sync();
    assert_eq!(p.finish(a, sa, &ra).expect("finish a"), 1);
    assert_eq!(p.state().count, 3, "only a is folded");
    assert_eq!(p.finish(b, sb, &rb).expect("finish b"), 4);
    assert_eq!(
        (p.state().count, p.state().sum),
        (5, 10 + 11 + 12 + 20 + 21)
    );
    let c = p.write(&hits(30, 1)).expect("write c");
    let d = p.write(&hits(40, 1)).expect("write d");
    let sd = Ok(());
    let err = p.finish(d, sd, &hits(40, 1)).expect_err("d before c");
    assert!(err.to_string().contains("out of order"), "{err}");
    drop(c);
    let (store, mut dir) = p.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    assert_eq!(store.read(&mut dir, &mut buf).expect("read").count, 7);
}

#[test]
fn a_failed_flush_in_the_pipeline_cuts_off_the_batches_written_after_it() {
    let fx = Fixture::new::<Std>("group-pipeline-eio");
    // The open creates the journal (one file flush); the next is a's.
    let dir = Faulty::eio(fx.open::<Std>(), FaultPoint::SyncFile, 2);
    let mut p = Pipeline::open(store(), dir, 4096).expect("open");
    let (ra, rb) = (vec![Hit { ip: 1 }], vec![Hit { ip: 2 }, Hit { ip: 3 }]);
    let mut a = p.write(&ra).expect("write a");
    let mut b = p.write(&rb).expect("write b");
    let sa = a.sync();
    assert!(sa.is_err(), "the fault did not fire on a's flush");
    let sb = b.sync();
    let ea = p.finish(a, sa, &ra).expect_err("a's flush failed");
    // b was written after a: its records follow a's in the file, so it
    // fails with a's error even though its own flush went through.
    assert!(sb.is_ok());
    let eb = p.finish(b, sb, &rb).expect_err("b follows a failed batch");
    assert!(Arc::ptr_eq(&ea, &eb), "b's error is not a's: {eb}");
    assert_eq!(p.state().count, 0, "a failed batch was folded");
    // The pipeline recovers the journal and goes on where it ends.
    let rc = vec![Hit { ip: 7 }];
    let mut c = p.write(&rc).expect("write c after the failure");
    assert_eq!(c.first(), 1, "c does not follow the cut-off batches");
    let sc = c.sync();
    assert_eq!(p.finish(c, sc, &rc).expect("finish c"), 1);
    let (store, dir) = p.into_inner();
    let mut dir = dir.into_inner();
    let mut buf = vec![0u8; 1 << 16];
    let on_disk = store.read(&mut dir, &mut buf).expect("read");
    assert_eq!(
        (on_disk.count, on_disk.sum),
        (1, 7),
        "a or b reached the disk"
    );
}

#[test]
fn a_failed_write_in_the_pipeline_waits_for_the_batches_in_flight() {
    let fx = Fixture::new::<Std>("group-pipeline-write");
    // The open writes the new journal's header (one write); a's batch is
    // the next write, b's the one after: it fails.
    let dir = Faulty::eio(fx.open::<Std>(), FaultPoint::Write, 3);
    let mut p = Pipeline::open(store(), dir, 4096).expect("open");
    let (ra, rb, rc) = (
        vec![Hit { ip: 1 }],
        vec![Hit { ip: 2 }],
        vec![Hit { ip: 3 }],
    );
    let mut a = p.write(&ra).expect("write a");
    assert!(p.write(&rb).is_err(), "the fault did not fire on b's write");
    // The journal's end is unknown, and a is in flight: no write now.
    assert!(!p.can_write(1));
    let sa = a.sync();
    assert_eq!(p.finish(a, sa, &ra).expect("a is intact"), 1);
    assert!(p.can_write(1));
    let mut c = p.write(&rc).expect("write c: recovers first");
    assert_eq!(c.first(), 2, "c follows a; b left nothing");
    let sc = c.sync();
    assert_eq!(p.finish(c, sc, &rc).expect("finish c"), 2);
    assert_eq!((p.state().count, p.state().sum), (2, 4));
}

/// A state that grows with every record, unlike [`Hits`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Every {
    ips: Vec<u32>,
}

impl fsatomic::store::Fold<Hit> for Every {
    fn apply(&mut self, _seq: u64, hit: &Hit) {
        self.ips.push(hit.ip);
    }
}

#[test]
fn open_appends_and_compaction_grow_a_small_buffer() {
    let fx = Fixture::new::<Std>("group-grow");
    let store = JournalStore::<Every, Hit>::new("every.json", Mode::PRIVATE).expect("name");
    let journal = GroupJournal::open(store, fx.open::<Std>(), 16).expect("open");
    let n = 2000u32;
    for ip in 0..n {
        journal.append(Hit { ip: ip + 100_000 }).expect("append");
    }
    // The snapshot of every hit is larger than what the appends needed.
    journal.compact().expect("compaction grows the buffer");
    let (store, dir) = journal.into_inner();
    let journal = GroupJournal::open(store, dir, 16).expect("reopen with a small buffer");
    journal.with_state(|e| assert_eq!(e.ips.len(), n as usize));
}

/// A state whose `Fold` panics on one record: a bug in the caller's code.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Fragile {
    count: u64,
}

const BOMB: u32 = 13;

impl fsatomic::store::Fold<Hit> for Fragile {
    fn apply(&mut self, _seq: u64, hit: &Hit) {
        assert_ne!(hit.ip, BOMB, "the Fold's own bug");
        self.count += 1;
    }
}

#[test]
fn a_panicking_fold_fails_every_appender_instead_of_leaving_them_asleep() {
    let fx = Fixture::new::<Std>("group-panic");
    let store = JournalStore::<Fragile, Hit>::new("fragile.json", Mode::PRIVATE).expect("name");
    let journal = Arc::new(GroupJournal::open(store, fx.open::<Std>(), 4096).expect("open"));
    // The appenders run in threads of their own, watched from here: a bug
    // that leaves them parked fails the test after 60 s instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..THREADS as u32)
        .map(|t| {
            let journal = journal.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    for i in 0..PER_THREAD {
                        let _ = journal.append(Hit {
                            ip: t * PER_THREAD + i,
                        });
                    }
                }));
                let _ = tx.send(outcome.is_err());
            })
        })
        .collect();
    drop(tx);
    let mut panicked = 0;
    for _ in 0..THREADS {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(p) => panicked += usize::from(p),
            Err(e) => panic!(
                "appenders still waiting after 60 s ({e}): a panicked leader left them asleep"
            ),
        }
    }
    for h in handles {
        h.join().expect("thread");
    }
    // The thread that appended the bomb never got past it, and every other
    // thread appends until it meets the poisoned journal.
    assert!(panicked >= 1, "no appender saw the panic");
    let later = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        journal.append(Hit { ip: 1 })
    }));
    let message = later.expect_err("an append after the panic went on");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("panicked while writing a batch"), "{text}");
    assert!(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || journal.with_state(|s| s.count)
        ))
        .is_err(),
        "with_state showed a state that may hold part of the failed batch"
    );
}

/// `fsatomic_std::StdDir` as the conformance fixtures see it.
struct Std;

impl fsatomic_testkit::conformance::Adapter for Std {
    type Dir = StdDir;
    const NAME: &'static str = "std";

    fn open(path: &std::path::Path) -> std::io::Result<StdDir> {
        StdDir::open(path)
    }

    fn create_all(
        path: &std::path::Path,
        mode: Mode,
    ) -> std::io::Result<(StdDir, Vec<std::path::PathBuf>)> {
        StdDir::create_all(path, mode)
    }

    fn flush_count(dir: &StdDir) -> u64 {
        dir.flush_count()
    }
    fn set_lock_timeout(dir: &mut StdDir, limit: Option<std::time::Duration>) {
        dir.set_lock_timeout(limit);
    }
    fn set_owner(dir: &mut StdDir, owner: fsatomic::Owner) -> std::io::Result<()> {
        dir.set_owner(owner)
    }
}
