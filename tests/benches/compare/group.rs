//! Group commit: N threads appending to one journal at once. Grouped, they
//! go through `GroupJournal` (the `nas` rate-limit store), which gives one
//! flush to every batch of appends that queued while the previous flush
//! ran. Independent, each thread has its own `JournalStore` and directory
//! handle on the same files, so the writers' lock serialises them and every
//! append pays its own flush. SQLite in WAL mode (`synchronous=FULL`) is
//! the database beside them: one connection per thread on one database
//! file, one transaction per append.

use std::fs;
use std::path::Path;
use std::sync::Barrier;
use std::time::Instant;

use fsatomic::Mode;
use fsatomic_linux::nas::{Hit, Journaled, RateLimit};

use crate::commit::{DIR_MODE, open_journal};
use crate::db::{Db, Engine};
use crate::{Companion, Result};

fn hit(writer: usize, i: usize) -> Hit {
    Hit {
        key: format!("login:10.0.{}.{}", writer % 256, i % 256),
        at: 1_700_000_000 + i as u64,
    }
}

/// What the group-commit run measured, per writer count.
pub struct Group {
    /// Writer counts.
    pub writers: Vec<usize>,
    /// Appends per writer per round.
    pub per_writer: usize,
    /// Grouped: updates/s, one value per round.
    pub grouped: Vec<Vec<f64>>,
    /// Grouped: flushes per update.
    pub grouped_flushes: Vec<f64>,
    /// Grouped, with the companion paused (CPUs contended): updates/s per
    /// round; empty without a companion.
    pub grouped_contended: Vec<Vec<f64>>,
    /// Independent: updates/s, one value per round.
    pub independent: Vec<Vec<f64>>,
    /// Independent: flushes per update.
    pub independent_flushes: Vec<f64>,
    /// SQLite WAL, one connection per thread: updates/s per round.
    pub sqlite: Vec<Vec<f64>>,
}

/// One thread per element of `each`, released together, each calling
/// `f(its element, its index, k)` for `k` in `0..per_writer`; the seconds
/// from their common start to the last one's end.
fn timed<T: Send>(
    each: &mut [T],
    per_writer: usize,
    f: impl Fn(&mut T, usize, usize) -> Result<()> + Sync,
) -> Result<f64> {
    let barrier = Barrier::new(each.len() + 1);
    std::thread::scope(|s| -> Result<f64> {
        let handles: Vec<_> = each
            .iter_mut()
            .enumerate()
            .map(|(w, x)| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || -> Result<()> {
                    barrier.wait();
                    (0..per_writer).try_for_each(|k| f(x, w, k))
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for h in handles {
            h.join().expect("appender panicked")?;
        }
        Ok(t.elapsed().as_secs_f64())
    })
}

/// Run `rounds` rounds; in each, for every writer count, the grouped and
/// the independent appenders each make `per_writer` appends per writer.
pub fn run(
    root: &Path,
    writers: &[usize],
    rounds: usize,
    per_writer: usize,
    companion: &Companion,
) -> Result<Group> {
    let mut grouped = Vec::new();
    let mut independent = Vec::new();
    let mut sqlite = Vec::new();
    for &n in writers {
        let dir = root.join(format!("group-sqlite-{n}"));
        sqlite.push(
            (0..n)
                .map(|_| Db::open(Engine::SqliteWal, &dir))
                .collect::<Result<Vec<Db>>>()?,
        );
        let dir = root.join(format!("group-{n}"));
        fs::create_dir_all(&dir)?;
        let path = dir.join("ratelimit.json");
        grouped.push(Journaled::<RateLimit, Hit>::open(
            path,
            Mode::PRIVATE,
            DIR_MODE,
        )?);
        // Each independent appender: its directory handle, store and buffer.
        let dir = root.join(format!("independent-{n}"));
        fs::create_dir_all(&dir)?;
        let mut each = Vec::new();
        for _ in 0..n {
            let mut buf = vec![0u8; 1 << 20];
            let (d, store) =
                open_journal::<RateLimit, Hit>(&dir, "ratelimit.json", Mode::PRIVATE, &mut buf)?;
            each.push((d, store, buf));
        }
        independent.push(each);
    }
    let rates = vec![Vec::new(); writers.len()];
    let mut g = Group {
        writers: writers.to_vec(),
        per_writer,
        grouped: rates.clone(),
        grouped_flushes: Vec::new(),
        grouped_contended: rates.clone(),
        independent: rates.clone(),
        independent_flushes: Vec::new(),
        sqlite: rates,
    };
    let mut flushes = vec![(0u64, 0u64); writers.len()];
    for _ in 0..rounds {
        for (i, &n) in writers.iter().enumerate() {
            let per_second = |elapsed: f64| (n * per_writer) as f64 / elapsed;
            // `n` threads append `per_writer` records each through the
            // grouped store.
            let store = &grouped[i];
            let grouped_round = || {
                timed(&mut vec![(); n], per_writer, |_, w, k| {
                    store.append(hit(w, k))?;
                    Ok(())
                })
            };
            if companion.enabled() {
                companion.set(false);
                g.grouped_contended[i].push(per_second(grouped_round()?));
                companion.set(true);
            }
            let before = store.flush_count();
            g.grouped[i].push(per_second(grouped_round()?));
            flushes[i].0 += store.flush_count() - before;

            let each = &mut independent[i];
            let before: u64 = each.iter().map(|x| x.0.flush_count()).sum();
            let elapsed = timed(each, per_writer, |(dir, store, buf), w, k| {
                store.append(dir, buf, &hit(w, k))?;
                Ok(())
            })?;
            g.independent[i].push(per_second(elapsed));
            let after: u64 = each.iter().map(|x| x.0.flush_count()).sum();
            flushes[i].1 += after - before;

            let elapsed = timed(&mut sqlite[i], per_writer, |db, w, k| {
                db.append(&serde_json::to_vec(&hit(w, k))?)
            })?;
            g.sqlite[i].push(per_second(elapsed));
        }
    }
    for (&(grouped, independent), &n) in flushes.iter().zip(writers) {
        let updates = (rounds * n * per_writer) as f64;
        g.grouped_flushes.push(grouped as f64 / updates);
        g.independent_flushes.push(independent as f64 / updates);
    }
    Ok(g)
}
