//! Group commit: concurrent appenders in one process share one flush.
//!
//! A journal append costs one flush barrier, and a flush takes the same
//! time for one record as for sixty. [`GroupJournal`] lets the threads of a
//! daemon append at the same time: whoever finds no flush in progress
//! becomes the leader, takes every record queued so far (up to
//! [`crate::store::MAX_BATCH`]), appends them as one batch with one
//! flush, and hands each appender its sequence number. Appenders that
//! arrive meanwhile queue up for the next batch. Every appender returns only
//! once its own record is durable.
//!
//! Waiting appenders are parked, and a finished batch wakes only the
//! threads it holds results for, plus the first one in line to lead the
//! next batch: a condition variable's `notify_all` would wake every
//! queued thread for nothing at every batch, and on a machine whose flush
//! costs as little as a few context switches those wake-ups, not the
//! flushes, set the pace (8 appenders: 1.7× the throughput of the
//! `notify_all` version in one benchmark run).
//!
//! Batches are pipelined: once a leader has written its batch it lets the
//! next leader write the next one while it flushes its own, so the flush
//! device does not wait for the CPU work between two flushes. The steps
//! are those of a [`Pipeline`], which a single thread can drive too (the
//! crash explorer does): [`Pipeline::write`] a batch under the writers'
//! lock, [`Batch::sync`] it with no lock of the process held, and
//! [`Pipeline::finish`] the batches in the order they were written —
//! folding each into the state only once it and every batch before it are
//! durable. A batch is acknowledged only then; if a flush fails, that
//! batch and every batch written after it fail with its error (their
//! records follow the failed ones in the file), are cut off, and the next
//! batch recovers the journal first.
//!
//! Appenders in other processes are serialised by the writers' lock: the
//! pipeline takes it for its first batch and holds it until no batch is in
//! flight, so another process never reads records that are not yet
//! durable, and never appends after them.
//!
//! Group commit needs threads, not an operating system: it lives in the
//! core behind the additive `std` feature, so that every adapter (the
//! Linux one, the std one) uses the same code without depending on
//! another. The directory can be any [`Dir`]; threads need it to be `Send`.
//!
//! ```no_run
//! use fsatomic::{Mode, JournalStore, store::Fold, group::GroupJournal};
//! use fsatomic_std::StdDir;
//! # #[derive(serde::Serialize, serde::Deserialize, Default)] struct Hits { n: u64 }
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Hit { ip: u32 }
//! # impl Fold<Hit> for Hits { fn apply(&mut self, _: u64, _: &Hit) { self.n += 1 } }
//! let dir = StdDir::open("/var/lib/nos")?;
//! let store = JournalStore::<Hits, Hit>::new("ratelimit.json", Mode::PRIVATE).unwrap();
//! let journal = std::sync::Arc::new(GroupJournal::open(store, dir, 64 * 1024)?);
//! std::thread::scope(|s| {
//!     for ip in 0..8 {
//!         let journal = journal.clone();
//!         s.spawn(move || journal.append(Hit { ip }));
//!     }
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// A poisoned journal panics by design (see `GroupJournal::append`).
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::Thread;
use std::vec;
use std::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::LoadError;
use crate::journal::{MAX_UNFLUSHED, Unsynced};
use crate::store::{Fold, MAX_BATCH};
use crate::{CommitError, Dir, JournalStore, StoreError};

/// The largest working buffer a [`GroupJournal`] grows to.
pub const MAX_BUFFER: usize = 64 << 20;

/// The outcome an appender receives: its sequence number, or the error of
/// the batch it was in (shared by every appender of that batch).
pub type AppendResult<E> = Result<u64, Arc<StoreError<E>>>;

/// The sequential core of group commit: a [`JournalStore`] whose batches
/// are written, flushed and finished as three separate steps, so that a
/// batch can be written while the one before it is flushed.
///
/// Order of calls: [`Pipeline::write`] batches one after another; for each,
/// [`Batch::sync`] (from any thread, holding nothing of the pipeline); then
/// [`Pipeline::finish`] them in the order they were written, each with the
/// result of its `sync`. [`GroupJournal`] drives it from many threads; the
/// crash explorer drives it from one, with a second batch written before
/// the first is flushed.
pub struct Pipeline<'a, S, R, D: Dir> {
    store: JournalStore<'a, S, R>,
    dir: D,
    buf: Vec<u8>,
    /// The writers' lock, held from the first batch written until no
    /// batch is in flight.
    lock: Option<D::Lock>,
    /// Batches written and not yet finished.
    in_flight: u64,
    /// Their records.
    unflushed: usize,
    /// The number the next batch written gets.
    next_write: u64,
    /// The number of the batch to finish next.
    next_finish: u64,
    /// The error of a flush that failed while batches were in flight:
    /// every batch finished after it fails with it.
    failed: Option<Arc<StoreError<D::Error>>>,
}

/// A batch written by [`Pipeline::write`] and not yet finished.
pub struct Batch<F> {
    number: u64,
    records: usize,
    written: Unsynced<F>,
}

impl<F: crate::File> Batch<F> {
    /// Flush the batch's journal: its one barrier. Call it holding nothing
    /// of the pipeline, so that the next batch can be written meanwhile,
    /// and hand the result to [`Pipeline::finish`]. A power cut during the
    /// call leaves any part of the batches not yet durable as a torn tail,
    /// which recovery cuts; none of them was acknowledged.
    pub fn sync(&mut self) -> Result<(), CommitError<F::Error>> {
        self.written.sync()
    }

    /// The sequence number of the batch's first record.
    pub fn first(&self) -> u64 {
        self.written.start().next_seq
    }

    /// Its place in the pipeline: batches are finished in this order.
    pub fn number(&self) -> u64 {
        self.number
    }
}

impl<'a, S, R, D> Pipeline<'a, S, R, D>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
    D: Dir,
{
    /// Open `store` in `dir` (lock, recover, replay) with a working buffer
    /// of `buf_len` bytes, which grows (doubling, up to [`MAX_BUFFER`])
    /// where a state, snapshot or batch does not fit.
    pub fn open(
        store: JournalStore<'a, S, R>,
        dir: D,
        buf_len: usize,
    ) -> Result<Self, StoreError<D::Error>> {
        let mut p = Pipeline {
            store,
            dir,
            buf: vec![0u8; buf_len],
            lock: None,
            in_flight: 0,
            unflushed: 0,
            next_write: 0,
            next_finish: 0,
            failed: None,
        };
        // Recovery is idempotent: where the buffer is too small, grow it
        // and start again.
        p.growing(|store, dir, buf| store.open(dir, buf))?;
        Ok(p)
    }

    /// Run `f` on the store; where it fails only because the buffer is
    /// too small (nothing was written), grow the buffer (doubling, up to
    /// [`MAX_BUFFER`]) and run it again.
    fn growing<T>(
        &mut self,
        mut f: impl FnMut(
            &mut JournalStore<'a, S, R>,
            &mut D,
            &mut [u8],
        ) -> Result<T, StoreError<D::Error>>,
    ) -> Result<T, StoreError<D::Error>> {
        loop {
            match f(&mut self.store, &mut self.dir, &mut self.buf) {
                Err(e) if e.is_buffer_too_small() && self.buf.len() < MAX_BUFFER => {
                    let len = (self.buf.len() * 2).clamp(4096, MAX_BUFFER);
                    self.buf.resize(len, 0);
                }
                other => return other,
            }
        }
    }

    /// Write `records` (up to [`MAX_BATCH`]) as the next batch, after
    /// every batch written before, without flushing it. Takes the writers'
    /// lock if no batch is in flight; compacts first when the journal is
    /// due and none is. A power cut during the call leaves the batch whole,
    /// in part or not at all, as a torn tail that recovery cuts.
    ///
    /// After a flush failed, and until every batch in flight is finished,
    /// fails with that flush's error and writes nothing: the journal's
    /// end is known again only once it has been recovered.
    pub fn write(&mut self, records: &[R]) -> Result<Batch<D::File>, Arc<StoreError<D::Error>>> {
        if let Some(earlier) = &self.failed {
            return Err(earlier.clone());
        }
        if self.lock.is_none() {
            let lock = self.store.lock(&mut self.dir).map_err(Arc::new)?;
            self.lock = Some(lock);
        }
        let unflushed = self.unflushed;
        match self.growing(|store, dir, buf| store.write_batch(dir, buf, records, unflushed)) {
            Ok(written) => {
                let number = self.next_write;
                self.next_write += 1;
                self.in_flight += 1;
                self.unflushed += records.len();
                Ok(Batch {
                    number,
                    records: records.len(),
                    written,
                })
            }
            Err(e) => {
                if self.in_flight == 0 {
                    self.lock = None;
                }
                Err(Arc::new(e))
            }
        }
    }

    /// Whether a batch of `records` records may be written now: the
    /// records of the batches in flight and these together must not
    /// exceed [`MAX_UNFLUSHED`] (their index in the journal counts them);
    /// otherwise finish the oldest batch first.
    ///
    /// Also false while batches are in flight after a write failed: the
    /// journal's end is unknown until it is recovered, which waits until
    /// no batch is in flight.
    pub fn can_write(&self, records: usize) -> bool {
        self.unflushed + records <= MAX_UNFLUSHED
            && (self.in_flight == 0 || self.store.tail().is_some())
    }

    /// The number of the batch [`Pipeline::finish`] takes next.
    pub fn next_to_finish(&self) -> u64 {
        self.next_finish
    }

    /// Finish `batch`, the oldest unfinished one, with the result of its
    /// [`Batch::sync`]: fold its `records` into the state and return the
    /// first one's sequence number — or, if its flush or an earlier
    /// batch's flush failed, cut it off and return that error. Releases
    /// the writers' lock when no batch is left in flight. Nothing here
    /// touches the disk but that cut (best effort; a power cut during it
    /// leaves the batch cut or not, and it was not acknowledged either
    /// way).
    pub fn finish(
        &mut self,
        batch: Batch<D::File>,
        synced: Result<(), CommitError<D::Error>>,
        records: &[R],
    ) -> AppendResult<D::Error> {
        if batch.number != self.next_finish || self.in_flight == 0 {
            return Err(Arc::new(StoreError::Load(LoadError::LogicBug(
                "pipelined batches finished out of order",
            ))));
        }
        self.next_finish += 1;
        self.in_flight -= 1;
        self.unflushed = self.unflushed.saturating_sub(batch.records);
        let first = batch.first();
        let result = match (synced, &self.failed) {
            (Ok(()), None) => {
                self.store.fold_batch(first, records);
                Ok(first)
            }
            // An earlier batch's flush failed and cut the journal off at
            // its start, this batch's records (written after it) with it.
            (_, Some(earlier)) => Err(earlier.clone()),
            (Err(e), None) => {
                self.store.abandon_batch(batch.written);
                let e = Arc::new(StoreError::from(e));
                self.failed = Some(e.clone());
                Err(e)
            }
        };
        if self.in_flight == 0 {
            self.lock = None;
            self.failed = None;
        }
        result
    }

    /// The state: every finished batch folded in.
    pub fn state(&self) -> &S {
        self.store.state()
    }

    /// Compact now (prune, snapshot, empty journal), under the lock.
    /// Refused while batches are in flight (their records are not in the
    /// state yet).
    pub fn compact(&mut self) -> Result<(), StoreError<D::Error>> {
        if self.in_flight > 0 {
            return Err(StoreError::Load(LoadError::LogicBug(
                "compaction while batches are in flight",
            )));
        }
        self.growing(|store, dir, buf| store.compact(dir, buf))
    }

    /// The directory.
    pub fn dir(&self) -> &D {
        &self.dir
    }

    /// Take back the store and the directory.
    pub fn into_inner(self) -> (JournalStore<'a, S, R>, D) {
        (self.store, self.dir)
    }
}

struct Pending<R> {
    ticket: u64,
    record: R,
    thread: Thread,
}

struct Queue<R, E> {
    pending: Vec<Pending<R>>,
    next_ticket: u64,
    leader: bool,
    done: HashMap<u64, AppendResult<E>>,
    batches: u64,
}

const POISONED: &str = "GroupJournal: an appender panicked while writing a batch \
     (in the store's Fold or Serialize), so the state in memory may be \
     inconsistent; reopen the store";

/// Held by a leader while it writes, flushes and finishes a batch. If the
/// leader unwinds (its guard of the pipeline has poisoned that mutex by
/// then), clears the leader flag and wakes every parked appender, of this
/// batch and queued for the next, and every leader waiting for its turn to
/// finish, which then see the poisoned pipeline and panic too instead of
/// sleeping forever.
struct Unwinding<'g, R, E> {
    queue: &'g Mutex<Queue<R, E>>,
    turn: &'g Condvar,
    waiters: &'g [(u64, Thread)],
}

impl<R, E> Drop for Unwinding<'_, R, E> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut queue = lock(self.queue);
        queue.leader = false;
        let mut sleepers: Vec<Thread> = queue.pending.iter().map(|p| p.thread.clone()).collect();
        drop(queue);
        sleepers.extend(self.waiters.iter().map(|(_, t)| t.clone()));
        for t in sleepers {
            t.unpark();
        }
        self.turn.notify_all();
    }
}

/// A [`JournalStore`] shared by the threads of a process, whose concurrent
/// appends share flushes, one batch written while the previous one is
/// flushed.
pub struct GroupJournal<'a, S, R, D: Dir> {
    queue: Mutex<Queue<R, D::Error>>,
    pipeline: Mutex<Pipeline<'a, S, R, D>>,
    /// Signalled when a batch is finished: the leader of the next one may
    /// be waiting for its turn.
    turn: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<'a, S, R, D> GroupJournal<'a, S, R, D>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
    D: Dir,
{
    /// Open `store` in `dir` (lock, recover, replay) with a working buffer
    /// of `buf_len` bytes. The buffer must hold the snapshot and a batch of
    /// encoded records; where it does not, it grows (doubling, up to
    /// [`MAX_BUFFER`]) and the open or append is retried.
    pub fn open(
        store: JournalStore<'a, S, R>,
        dir: D,
        buf_len: usize,
    ) -> Result<Self, StoreError<D::Error>> {
        Ok(GroupJournal {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                next_ticket: 0,
                leader: false,
                done: HashMap::new(),
                batches: 0,
            }),
            pipeline: Mutex::new(Pipeline::open(store, dir, buf_len)?),
            turn: Condvar::new(),
        })
    }

    /// Append `record`; return once it is durable, with its sequence
    /// number.
    ///
    /// # Panics
    ///
    /// If an appender panicked while writing a batch (in the state's
    /// [`Fold`] or a record's `Serialize`): every appender of that batch,
    /// every one waiting for the next, and every later call panic too,
    /// rather than wait forever or go on from a state that may hold part
    /// of that batch. Reopen the store to go on.
    pub fn append(&self, record: R) -> AppendResult<D::Error> {
        let mut queue = lock(&self.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.pending.push(Pending {
            ticket,
            record,
            thread: std::thread::current(),
        });
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            if self.pipeline.is_poisoned() {
                drop(queue);
                panic!("{POISONED}");
            }
            if queue.leader {
                // Woken (unparked) when our batch is done, or when we are
                // the first in line for the next one. A spurious wake-up
                // just looks again.
                drop(queue);
                std::thread::park();
                queue = lock(&self.queue);
                continue;
            }
            queue.leader = true;
            // Appenders of the batch that just finished were woken a moment
            // ago and are about to queue again; give them that moment, or
            // the batches settle into two halves that take turns (N/2
            // records per flush instead of N).
            drop(queue);
            std::thread::yield_now();
            queue = lock(&self.queue);
            let take = queue.pending.len().min(MAX_BATCH);
            let batch: Vec<Pending<R>> = queue.pending.drain(..take).collect();
            drop(queue);
            let (records, waiters): (Vec<R>, Vec<(u64, Thread)>) = batch
                .into_iter()
                .map(|p| (p.record, (p.ticket, p.thread)))
                .unzip();
            let unwinding = Unwinding {
                queue: &self.queue,
                turn: &self.turn,
                waiters: &waiters,
            };
            let written = {
                let mut pipeline = self.pipeline();
                while !pipeline.can_write(records.len()) {
                    pipeline = self.turn.wait(pipeline).expect(POISONED);
                }
                pipeline.write(&records)
            };
            // Written: the next leader may write the next batch while this
            // one is flushed.
            queue = lock(&self.queue);
            queue.leader = false;
            if written.is_ok() {
                queue.batches += 1;
            }
            let next = queue.pending.first().map(|p| p.thread.clone());
            drop(queue);
            if let Some(thread) = next {
                thread.unpark();
            }
            let result = match written {
                Err(e) => Err(e),
                Ok(mut batch) => {
                    let synced = batch.sync();
                    let mut pipeline = self.pipeline();
                    while pipeline.next_to_finish() != batch.number() {
                        pipeline = self.turn.wait(pipeline).expect(POISONED);
                    }
                    let result = pipeline.finish(batch, synced, &records);
                    drop(pipeline);
                    self.turn.notify_all();
                    result
                }
            };
            drop(unwinding);
            queue = lock(&self.queue);
            for (i, (t, _)) in waiters.iter().enumerate() {
                let r = match &result {
                    Ok(first) => Ok(first + i as u64),
                    Err(e) => Err(e.clone()),
                };
                queue.done.insert(*t, r);
            }
            drop(queue);
            // Wake exactly who has a result; the rest sleep on.
            for (t, thread) in waiters {
                if t != ticket {
                    thread.unpark();
                }
            }
            queue = lock(&self.queue);
        }
    }

    /// Run `f` on the state (every acknowledged record folded in).
    ///
    /// # Panics
    ///
    /// If the journal is poisoned (see [`GroupJournal::append`]).
    pub fn with_state<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(self.pipeline().state())
    }

    /// The pipeline, unless a leader panicked while holding it.
    fn pipeline(&self) -> MutexGuard<'_, Pipeline<'a, S, R, D>> {
        self.pipeline.lock().expect(POISONED)
    }

    /// Run `f` on the directory (to read its telemetry, say).
    pub fn with_dir<T>(&self, f: impl FnOnce(&D) -> T) -> T {
        f(lock(&self.pipeline).dir())
    }

    /// How many batches (and so flushes, for appends) were written.
    pub fn batches(&self) -> u64 {
        lock(&self.queue).batches
    }

    /// Compact now (prune, snapshot, empty journal), under the lock,
    /// growing the buffer as [`GroupJournal::append`] does; waits until no
    /// batch is in flight.
    ///
    /// # Panics
    ///
    /// If the journal is poisoned (see [`GroupJournal::append`]).
    pub fn compact(&self) -> Result<(), StoreError<D::Error>> {
        let mut pipeline = self.pipeline();
        while pipeline.in_flight > 0 {
            pipeline = self.turn.wait(pipeline).expect(POISONED);
        }
        pipeline.compact()
    }

    /// Take back the store and the directory.
    pub fn into_inner(self) -> (JournalStore<'a, S, R>, D) {
        self.pipeline
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .into_inner()
    }
}
