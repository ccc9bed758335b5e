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
use std::path::Path;
use std::time::Instant;

use fsatomic::{JournalStore, Mode};
use fsatomic_linux::LinuxDir;
use fsatomic_linux::nas::{Journaled, SnapDb, Transaction};

use crate::commit::Original;
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

/// The original pattern's file and lock, with its flush counter.
struct OriginalDb {
    original: Original,
    next: usize,
}

impl OriginalDb {
    /// `WithLock(path, func() { LoadJSON; append; SaveJSON })`.
    fn append(&mut self, tx: &Transaction) -> io::Result<()> {
        let dir = self.original.dir.clone();
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
            Ok(b) if !b.is_empty() => serde_json::from_slice(&b).map_err(io::Error::other)?,
            Ok(_) => Vec::new(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        all.push(tx.clone());
        let mut data = serde_json::to_vec_pretty(&all).map_err(io::Error::other)?;
        data.push(b'\n');
        self.original.save("index.json", &data)?;
        drop(lock);
        Ok(())
    }
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

/// Run the growth comparison in `root`: `rounds` rounds, each making
/// `per_round` appends per size and pattern (interleaved) and one
/// compaction.
pub fn run(root: &Path, sizes: &[usize], rounds: usize, per_round: usize) -> io::Result<Growth> {
    let mut originals = Vec::new();
    let mut ours = Vec::new();
    let mut g = Growth {
        sizes: sizes.to_vec(),
        appends: rounds * per_round,
        original: vec![Samples::default(); sizes.len()],
        original_bytes: Vec::new(),
        ours: vec![Samples::default(); sizes.len()],
        ours_flushes: Vec::new(),
        compaction: vec![Samples::default(); sizes.len()],
        snapshot_bytes: Vec::new(),
        appends_per_compaction: Vec::new(),
        db: vec![vec![Samples::default(); sizes.len()]; Engine::ALL.len()],
        ours_load: vec![Samples::default(); sizes.len()],
        db_load: vec![vec![Samples::default(); sizes.len()]; Engine::ALL.len()],
    };
    let mut dbs: Vec<Vec<Db>> = Engine::ALL.iter().map(|_| Vec::new()).collect();
    for &n in sizes {
        // The original: one file of n transactions, written as it would be.
        let dir = root.join(format!("growth-original-{n}"));
        fs::create_dir_all(&dir)?;
        let history: Vec<Transaction> = (0..n).map(transaction).collect();
        let mut data = serde_json::to_vec_pretty(&history).map_err(io::Error::other)?;
        data.push(b'\n');
        let mut original = Original {
            dir: dir.clone(),
            flushes: 0,
        };
        original.save("index.json", &data)?;
        g.original_bytes.push(data.len() as u64);
        originals.push(OriginalDb { original, next: n });

        // Ours: the same history through the journal, in batches of 64,
        // then compacted, as a daemon that ran for a while leaves it.
        let dir = root.join(format!("growth-ours-{n}"));
        fs::create_dir_all(&dir)?;
        {
            let mut d = LinuxDir::open(&dir)?;
            let mut buf = vec![0u8; 4 * data.len() + (1 << 20)];
            let mut store =
                JournalStore::<SnapDb, Transaction>::new("snapdb.json", Mode::PUBLIC_READ)
                    .map_err(io::Error::other)?;
            store.open(&mut d, &mut buf).map_err(io::Error::other)?;
            for chunk in history.chunks(64) {
                store
                    .append_batch(&mut d, &mut buf, chunk)
                    .map_err(io::Error::other)?;
            }
            store.compact(&mut d, &mut buf).map_err(io::Error::other)?;
        }
        let path = dir.join("snapdb.json");
        let store = Journaled::<SnapDb, Transaction>::open(
            path.clone(),
            Mode::PUBLIC_READ,
            Mode::new(0o755).expect("mode"),
        )
        .map_err(io::Error::other)?;
        let snapshot = fs::metadata(&path)?.len();
        g.snapshot_bytes.push(snapshot);
        let record = 20
            + serde_json::to_vec(&transaction(n))
                .map_err(io::Error::other)?
                .len();
        g.appends_per_compaction
            .push((snapshot.max(64 * 1024)) as f64 / record as f64);
        ours.push((store, n, 0u64));

        // The databases: the same history, 64 events per transaction.
        let bodies: Vec<Vec<u8>> = history
            .iter()
            .map(|t| serde_json::to_vec(t).map_err(io::Error::other))
            .collect::<io::Result<_>>()?;
        for (e, engine) in Engine::ALL.into_iter().enumerate() {
            let mut db = Db::open(engine, &db_dir(root, engine, n))?;
            for chunk in bodies.chunks(64) {
                let chunk: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                db.append_all(&chunk)?;
            }
            dbs[e].push(db);
        }
    }
    // A rewrite of a large file leaves work behind it (freed blocks are
    // discarded, on a `discard` mount, after the old inode goes): pause
    // briefly after each batch, outside the timed region, and alternate
    // which pattern goes first, so that neither pays for the other.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(30));
    for round in 0..rounds {
        for i in 0..sizes.len() {
            for pattern in [round % 2, 1 - round % 2] {
                if pattern == 0 {
                    let o = &mut originals[i];
                    for _ in 0..per_round {
                        let tx = transaction(o.next);
                        o.next += 1;
                        let t = Instant::now();
                        o.append(&tx)?;
                        g.original[i].push(round, t.elapsed());
                    }
                } else {
                    let (store, next, flushes) = &mut ours[i];
                    for _ in 0..per_round {
                        let tx = transaction(*next);
                        *next += 1;
                        let before = store.flush_count();
                        let t = Instant::now();
                        store.append(tx).map_err(io::Error::other)?;
                        g.ours[i].push(round, t.elapsed());
                        *flushes += store.flush_count() - before;
                    }
                }
                settle();
            }
            let store = &ours[i].0;
            let t = Instant::now();
            store.compact().map_err(io::Error::other)?;
            g.compaction[i].push(round, t.elapsed());
            settle();
            for (e, samples) in g.db.iter_mut().enumerate() {
                let db = &mut dbs[e][i];
                for k in 0..per_round {
                    let body = serde_json::to_vec(&transaction(sizes[i] + round * per_round + k))
                        .map_err(io::Error::other)?;
                    let t = Instant::now();
                    db.append(&body)?;
                    samples[i].push(round, t.elapsed());
                }
                settle();
            }
        }
    }
    for (_, _, flushes) in &ours {
        g.ours_flushes.push(*flushes as f64 / g.appends as f64);
    }

    // Loads, each state closed first (redb allows one open handle).
    drop(ours);
    drop(dbs);
    let expected: Vec<usize> = sizes.iter().map(|n| n + g.appends).collect();
    let mut buf = vec![0u8; 16 << 20];
    for round in 0..rounds {
        for (i, &n) in sizes.iter().enumerate() {
            let dir = root.join(format!("growth-ours-{n}"));
            let t = Instant::now();
            let mut d = LinuxDir::open(&dir)?;
            let mut store =
                JournalStore::<SnapDb, Transaction>::new("snapdb.json", Mode::PUBLIC_READ)
                    .map_err(io::Error::other)?;
            store.open(&mut d, &mut buf).map_err(io::Error::other)?;
            g.ours_load[i].push(round, t.elapsed());
            check_count("fsatomic", n, store.state().transactions.len(), expected[i])?;
            for (e, engine) in Engine::ALL.into_iter().enumerate() {
                let t = Instant::now();
                let mut db = Db::open(engine, &db_dir(root, engine, n))?;
                let events: Vec<Transaction> = db
                    .events()?
                    .iter()
                    .map(|b| serde_json::from_slice(b).map_err(io::Error::other))
                    .collect::<io::Result<_>>()?;
                g.db_load[e][i].push(round, t.elapsed());
                check_count(engine.label(), n, events.len(), expected[i])?;
            }
        }
    }
    Ok(g)
}

fn db_dir(root: &Path, engine: Engine, n: usize) -> std::path::PathBuf {
    root.join(format!("growth-{engine:?}-{n}"))
}

/// A load that does not hold every event appended is a broken
/// configuration, not a result.
fn check_count(who: &str, n: usize, got: usize, want: usize) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{who}: the history of {n} loaded {got} events, not {want}"
        )))
    }
}
