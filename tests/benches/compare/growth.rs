//! The snapshot-database pattern: append one transaction to a history of
//! 10 … 10,000. The original reads the whole JSON array, appends, and
//! rewrites the file with its three-flush `SaveJSON`, under `flock`; ours
//! appends one journal record (`nas::Journaled<SnapDb, Transaction>`, the
//! store the daemon uses) with one `fdatasync`.
//!
//! Beside them, SQLite (WAL and rollback journal) and redb append one row
//! per event, one durable transaction each, to the same history. After the
//! appends, each state is loaded (opened and parsed into its events) and
//! timed.
//!
//! Histories are filled outside the timed region. Our store also compacts
//! (snapshot + new journal) once the journal outgrows both 64 KiB and the
//! snapshot; that cost is measured apart, once per round, and spread over
//! the appends between two compactions.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fsatomic::Mode;
use fsatomic_linux::nas::{Journaled, SnapDb, Transaction};

use crate::Result;
use crate::commit::{DIR_MODE, indented, open_journal, save_json};
use crate::db::{Db, Engine};
use crate::stats::Samples;

/// A plausible snapshot transaction.
pub fn transaction(i: usize) -> Transaction {
    Transaction {
        tx: format!("tx-{i:06}"),
        at: 1_700_000_000 + 3600 * i as u64,
        kind: ["scheduled", "manual", "pre-update"][i % 3].into(),
        snapshots: vec![
            format!("tank/data@auto-{i:06}"),
            format!("tank/home@auto-{i:06}"),
        ],
    }
}

/// The original pattern: `WithLock(path, func() { LoadJSON; append;
/// SaveJSON })` on `dir/index.json`.
fn original_append(dir: &Path, tx: &Transaction) -> Result<()> {
    let lock = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join("index.json.lock"))?;
    lock.lock()?;
    // LoadJSON removes the temporary file, then reads and parses.
    let _ = fs::remove_file(dir.join("index.json.tmp"));
    let mut all: Vec<Transaction> = match fs::read(dir.join("index.json")) {
        Ok(b) if !b.is_empty() => serde_json::from_slice(&b)?,
        Ok(_) => Vec::new(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    all.push(tx.clone());
    save_json(dir, "index.json", &indented(&all))
}

/// What the growth run measured, one entry per history size.
pub struct Growth {
    /// History sizes.
    pub sizes: Vec<usize>,
    /// Appends measured per size and pattern.
    pub appends: usize,
    /// Original pattern: latency of one append.
    pub original: Vec<Samples>,
    /// Original pattern: its file's size at the start.
    pub original_bytes: Vec<u64>,
    /// Ours: latency of one append.
    pub ours: Vec<Samples>,
    /// Ours: flushes per append (counted by the adapter).
    pub ours_flushes: Vec<f64>,
    /// Ours: latency of one compaction.
    pub compaction: Vec<Samples>,
    /// Ours: snapshot size at the start.
    pub snapshot_bytes: Vec<u64>,
    /// Ours: appends between two compactions at this size.
    pub appends_per_compaction: Vec<f64>,
    /// The databases ([`Engine::ALL`] order): latency of one append, per
    /// size.
    pub db: Vec<Vec<Samples>>,
    /// Ours: time to open the store and hold its state (every event
    /// folded), per size, after the appends.
    pub ours_load: Vec<Samples>,
    /// The databases: time to open and read every event, parsed, per
    /// size.
    pub db_load: Vec<Vec<Samples>>,
}

impl Growth {
    /// Our cost per append with compaction spread over the appends it
    /// covers, at size index `i`, in seconds.
    pub fn ours_total(&self, i: usize) -> f64 {
        self.ours[i].median() + self.compaction[i].median() / self.appends_per_compaction[i]
    }
}

const SNAPDB: &str = "snapdb.json";

/// Run the growth comparison in `root`: `rounds` rounds, each making
/// `per_round` appends per size and pattern (interleaved) and one
/// compaction.
pub fn run(root: &Path, sizes: &[usize], rounds: usize, per_round: usize) -> Result<Growth> {
    let blank = vec![Samples::default(); sizes.len()];
    let mut g = Growth {
        sizes: sizes.to_vec(),
        appends: rounds * per_round,
        original: blank.clone(),
        original_bytes: Vec::new(),
        ours: blank.clone(),
        ours_flushes: Vec::new(),
        compaction: blank.clone(),
        snapshot_bytes: Vec::new(),
        appends_per_compaction: Vec::new(),
        db: vec![blank.clone(); Engine::ALL.len()],
        ours_load: blank.clone(),
        db_load: vec![blank; Engine::ALL.len()],
    };
    // Per size: the original's directory, ours (store, flushes), the
    // databases.
    let mut originals = Vec::new();
    let mut ours = Vec::new();
    let mut dbs: Vec<Vec<Db>> = Vec::new();
    for &n in sizes {
        // The original: one file of n transactions, written as it would be.
        let dir = history_dir(root, "original", n);
        let history: Vec<Transaction> = (0..n).map(transaction).collect();
        let data = indented(&history);
        save_json(&dir, "index.json", &data)?;
        g.original_bytes.push(data.len() as u64);
        originals.push(dir);

        // Ours: the same history through the journal, in batches of 64,
        // then compacted, as a daemon that ran for a while leaves it.
        let dir = history_dir(root, "ours", n);
        fs::create_dir_all(&dir)?;
        let mut buf = vec![0u8; 4 * data.len() + (1 << 20)];
        let (mut d, mut store) =
            open_journal::<SnapDb, Transaction>(&dir, SNAPDB, Mode::PUBLIC_READ, &mut buf)?;
        for chunk in history.chunks(64) {
            store.append_batch(&mut d, &mut buf, chunk)?;
        }
        store.compact(&mut d, &mut buf)?;
        drop((d, store));
        let path = dir.join(SNAPDB);
        let store =
            Journaled::<SnapDb, Transaction>::open(path.clone(), Mode::PUBLIC_READ, DIR_MODE)?;
        let snapshot = fs::metadata(&path)?.len();
        g.snapshot_bytes.push(snapshot);
        let record = 20 + serde_json::to_vec(&transaction(n))?.len();
        g.appends_per_compaction
            .push((snapshot.max(64 * 1024)) as f64 / record as f64);
        ours.push((store, 0u64));

        // The databases: the same history, 64 events per transaction.
        let bodies: Vec<Vec<u8>> = history
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<_, _>>()?;
        let mut each = Vec::new();
        for engine in Engine::ALL {
            let mut db = Db::open(engine, &history_dir(root, &format!("{engine:?}"), n))?;
            for chunk in bodies.chunks(64) {
                let chunk: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                db.append_all(&chunk)?;
            }
            each.push(db);
        }
        dbs.push(each);
    }
    // A rewrite of a large file leaves work behind it (freed blocks are
    // discarded, on a `discard` mount, after the old inode goes): pause
    // briefly after each batch, outside the timed region, and alternate
    // which pattern goes first, so that neither pays for the other.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(30));
    for round in 0..rounds {
        for (i, &n) in sizes.iter().enumerate() {
            // The next transaction of every pattern: the same sequence.
            let next = |k: usize| transaction(n + round * per_round + k);
            for pattern in [round % 2, 1 - round % 2] {
                for k in 0..per_round {
                    let tx = next(k);
                    if pattern == 0 {
                        let t = Instant::now();
                        original_append(&originals[i], &tx)?;
                        g.original[i].push(round, t.elapsed());
                    } else {
                        let (store, flushes) = &mut ours[i];
                        let before = store.flush_count();
                        let t = Instant::now();
                        store.append(tx)?;
                        g.ours[i].push(round, t.elapsed());
                        *flushes += store.flush_count() - before;
                    }
                }
                settle();
            }
            let t = Instant::now();
            ours[i].0.compact()?;
            g.compaction[i].push(round, t.elapsed());
            settle();
            for (db, samples) in dbs[i].iter_mut().zip(&mut g.db) {
                for k in 0..per_round {
                    let body = serde_json::to_vec(&next(k))?;
                    let t = Instant::now();
                    db.append(&body)?;
                    samples[i].push(round, t.elapsed());
                }
                settle();
            }
        }
    }
    for (_, flushes) in &ours {
        g.ours_flushes.push(*flushes as f64 / g.appends as f64);
    }

    // Loads, each state closed first (redb allows one open handle).
    drop(ours);
    drop(dbs);
    let mut buf = vec![0u8; 16 << 20];
    for round in 0..rounds {
        for (i, &n) in sizes.iter().enumerate() {
            let want = n + g.appends;
            let t = Instant::now();
            let (_dir, store) = open_journal::<SnapDb, Transaction>(
                &history_dir(root, "ours", n),
                SNAPDB,
                Mode::PUBLIC_READ,
                &mut buf,
            )?;
            g.ours_load[i].push(round, t.elapsed());
            check_count("fsatomic", n, store.state().transactions.len(), want)?;
            for (e, engine) in Engine::ALL.into_iter().enumerate() {
                let t = Instant::now();
                let mut db = Db::open(engine, &history_dir(root, &format!("{engine:?}"), n))?;
                let events: Vec<Transaction> = db
                    .events()?
                    .iter()
                    .map(|b| serde_json::from_slice(b))
                    .collect::<Result<_, _>>()?;
                g.db_load[e][i].push(round, t.elapsed());
                check_count(engine.label(), n, events.len(), want)?;
            }
        }
    }
    Ok(g)
}

/// The directory of `who`'s history of `n` (a pattern, or an [`Engine`]).
fn history_dir(root: &Path, who: &str, n: usize) -> PathBuf {
    root.join(format!("growth-{who}-{n}"))
}

/// A load that does not hold every event appended is a broken
/// configuration, not a result.
fn check_count(who: &str, n: usize, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{who}: the history of {n} loaded {got} events, not {want}").into())
    }
}
