//! Loading the seven stores of the NAS daemon at realistic sizes: the time
//! from opening a store to holding its state (documents: open + load;
//! journaled stores: open, which locks, recovers and replays snapshot and
//! journal). Beside each, the original package's way: one JSON file of the
//! same state, read and parsed with `serde_json` (the Go package's
//! `LoadJSON`, without its unconditional removal of `path.tmp`).
//!
//! The page cache is warm (the files were just written): this measures the
//! CPU cost of loading, not the disk.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Instant;

use fsatomic::store::Fold;
use fsatomic::{JournalStore, Mode};
use fsatomic_linux::LinuxDir;
use fsatomic_linux::nas::{
    DocStore, FirstBoot, Hit, Journaled, NasPaths, RateLimit, SessionEvent, Sessions, Share,
    Shares, SnapDb, Transaction, UpdateEntry, UpdatesIndex, Users,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::commit::user;
use crate::growth::transaction;
use crate::stats::Samples;

/// How many of each the stores hold.
pub struct Sizes {
    /// Accounts.
    pub users: usize,
    /// Live sessions.
    pub sessions: usize,
    /// Rate-limit hits within the window.
    pub hits: usize,
    /// Updates in the index.
    pub updates: usize,
    /// Snapshot transactions.
    pub transactions: usize,
    /// Shares.
    pub shares: usize,
}

/// The sizes of a busy appliance.
pub const REALISTIC: Sizes = Sizes {
    users: 50,
    sessions: 1_000,
    hits: 10_000,
    updates: 100,
    transactions: 5_000,
    shares: 200,
};

/// One store's load measurements.
pub struct StoreLoad {
    /// Store name.
    pub store: &'static str,
    /// What it holds.
    pub holds: String,
    /// Protocol.
    pub protocol: &'static str,
    /// Bytes on disk (snapshot + journal, or the document).
    pub bytes: u64,
    /// fsatomic: open + load.
    pub ours: Samples,
    /// The original: read + parse one JSON file of the same state.
    pub original: Samples,
    /// The original's file size.
    pub original_bytes: u64,
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn size_of(paths: &[&Path]) -> u64 {
    paths
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn journal_path(p: &Path) -> std::path::PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".journal");
    s.into()
}

/// Fill a journaled store with `records` in batches of 64, as a daemon
/// that ran for a while leaves it (compactions fall where they fall).
fn fill_journal<S, R>(path: &Path, mode: Mode, records: &[R]) -> io::Result<()>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
{
    let dir = path.parent().expect("parent");
    let (mut d, _) = LinuxDir::create_all(dir, Mode::new(0o755).expect("mode"))?;
    let name: &'static str = Box::leak(
        path.file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned()
            .into_boxed_str(),
    );
    let mut buf = vec![0u8; 8 << 20];
    let mut store = JournalStore::<S, R>::new(name, mode).map_err(err)?;
    store.open(&mut d, &mut buf).map_err(err)?;
    for chunk in records.chunks(64) {
        store.append_batch(&mut d, &mut buf, chunk).map_err(err)?;
    }
    Ok(())
}

/// The original's file of `state`: indented JSON, as `SaveJSON` wrote it.
fn original_file<T: Serialize>(
    dir: &Path,
    name: &str,
    state: &T,
) -> io::Result<(std::path::PathBuf, u64)> {
    let path = dir.join(name);
    let mut data = serde_json::to_vec_pretty(state).map_err(err)?;
    data.push(b'\n');
    fs::write(&path, &data)?;
    Ok((path, data.len() as u64))
}

fn original_load<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let b = fs::read(path)?;
    serde_json::from_slice(&b).map_err(err)
}

/// Populate the seven stores under `root` at `sizes`, then load each
/// `rounds` times, interleaved.
pub fn run(root: &Path, sizes: &Sizes, rounds: usize) -> io::Result<Vec<StoreLoad>> {
    let nas_root = root.join("nas");
    let orig = root.join("nas-original");
    fs::create_dir_all(&orig)?;
    let paths = NasPaths::with_shares(&nas_root, None);
    let private = Mode::PRIVATE;
    let dir_mode = Mode::new(0o755).expect("mode");
    let now = 1_700_000_000u64;

    // Documents.
    let users = Users {
        users: (0..sizes.users).map(user).collect(),
    };
    DocStore::<Users>::open(paths.users.clone(), private, dir_mode)
        .and_then(|s| s.save(&users))
        .map_err(err)?;
    let firstboot = FirstBoot {
        completed: true,
        completed_at: Some(now),
    };
    DocStore::<FirstBoot>::open(paths.firstboot.clone(), private, dir_mode)
        .and_then(|s| s.save(&firstboot))
        .map_err(err)?;
    let updates = UpdatesIndex {
        updates: (0..sizes.updates)
            .map(|i| UpdateEntry {
                version: format!("4.{}.{}", i / 10, i % 10),
                channel: "stable".into(),
                state: if i + 1 == sizes.updates {
                    "staged"
                } else {
                    "installed"
                }
                .into(),
                at: now + 86_400 * i as u64,
                snapshot_tx: Some(format!("tx-{i:06}")),
            })
            .collect(),
    };
    DocStore::<UpdatesIndex>::open(paths.updates.clone(), Mode::PUBLIC_READ, dir_mode)
        .and_then(|s| s.save(&updates))
        .map_err(err)?;
    let shares = Shares {
        shares: (0..sizes.shares)
            .map(|i| Share {
                name: format!("share{i:03}"),
                path: format!("/tank/shares/share{i:03}"),
                protocols: vec![if i % 3 == 0 { "nfs" } else { "smb" }.into()],
                read_only: i % 5 == 0,
                users: (0..4).map(|u| format!("user{:04}", (i + u) % 50)).collect(),
            })
            .collect(),
    };
    DocStore::<Shares>::open(paths.shares.clone(), private, dir_mode)
        .and_then(|s| s.save(&shares))
        .map_err(err)?;

    // Journals.
    let events: Vec<SessionEvent> = (0..sizes.sessions)
        .map(|i| {
            SessionEvent::create(
                &format!("{i:08x}c0ffee{i:016x}deadbeef{i:08x}"),
                &format!("user{:04}", i % 50),
                now + i as u64,
                30 * 86_400,
            )
        })
        .collect();
    fill_journal::<Sessions, SessionEvent>(&paths.sessions, private, &events)?;
    let hits: Vec<Hit> = (0..sizes.hits)
        .map(|i| Hit {
            key: format!("login:10.0.{}.{}", (i / 256) % 256, i % 256),
            at: now + (i as u64) / 20,
        })
        .collect();
    fill_journal::<RateLimit, Hit>(&paths.ratelimit, private, &hits)?;
    let txs: Vec<Transaction> = (0..sizes.transactions).map(transaction).collect();
    fill_journal::<SnapDb, Transaction>(&paths.snapdb, Mode::PUBLIC_READ, &txs)?;

    // The same states as the original's single JSON files.
    let sessions_state =
        Journaled::<Sessions, SessionEvent>::open(paths.sessions.clone(), private, dir_mode)
            .and_then(|j| j.with_state(|s| s.clone()))
            .map_err(err)?;
    let ratelimit_state =
        Journaled::<RateLimit, Hit>::open(paths.ratelimit.clone(), private, dir_mode)
            .and_then(|j| j.with_state(|s| s.clone()))
            .map_err(err)?;
    let snapdb_state =
        Journaled::<SnapDb, Transaction>::open(paths.snapdb.clone(), Mode::PUBLIC_READ, dir_mode)
            .and_then(|j| j.with_state(|s| s.clone()))
            .map_err(err)?;
    assert_eq!(
        sessions_state.sessions.len(),
        sizes.sessions,
        "sessions filled"
    );
    assert_eq!(
        snapdb_state.transactions.len(),
        sizes.transactions,
        "snapdb filled"
    );

    let mut out = Vec::new();
    let mut add =
        |store, holds: String, protocol, bytes, (opath, obytes): (std::path::PathBuf, u64)| {
            out.push(StoreLoad {
                store,
                holds,
                protocol,
                bytes,
                ours: Samples::default(),
                original: Samples::default(),
                original_bytes: obytes,
            });
            opath
        };
    let doc = |p: &Path| size_of(&[p]);
    let jr = |p: &Path| size_of(&[p, &journal_path(p)]);
    let o_users = add(
        "users",
        format!("{} accounts", sizes.users),
        "replace",
        doc(&paths.users),
        original_file(&orig, "users.json", &users)?,
    );
    let o_first = add(
        "firstboot",
        "the flag".into(),
        "replace",
        doc(&paths.firstboot),
        original_file(&orig, "firstboot.json", &firstboot)?,
    );
    let o_sess = add(
        "sessions",
        format!("{} live sessions", sizes.sessions),
        "journal",
        jr(&paths.sessions),
        original_file(&orig, "sessions.json", &sessions_state)?,
    );
    let o_rate = add(
        "ratelimit",
        format!("{} hits", sizes.hits),
        "journal",
        jr(&paths.ratelimit),
        original_file(&orig, "ratelimit.json", &ratelimit_state)?,
    );
    let o_upd = add(
        "updates index",
        format!("{} updates", sizes.updates),
        "replace",
        doc(&paths.updates),
        original_file(&orig, "index.json", &updates)?,
    );
    let o_snap = add(
        "snapshot db",
        format!("{} transactions", sizes.transactions),
        "journal",
        jr(&paths.snapdb),
        original_file(&orig, "snapdb.json", &snapdb_state)?,
    );
    let o_shares = add(
        "shares",
        format!("{} shares", sizes.shares),
        "replace",
        doc(&paths.shares),
        original_file(&orig, "shares.json", &shares)?,
    );

    fn time<T>(s: &mut Samples, round: usize, f: impl FnOnce() -> io::Result<T>) -> io::Result<()> {
        let t = Instant::now();
        let v = f()?;
        s.push(round, t.elapsed());
        drop(v);
        Ok(())
    }
    for round in 0..rounds {
        let [users_l, first_l, sess_l, rate_l, upd_l, snap_l, shares_l] = &mut out[..] else {
            unreachable!("seven stores")
        };
        time(&mut users_l.ours, round, || {
            DocStore::<Users>::open(paths.users.clone(), private, dir_mode)
                .map_err(err)?
                .load()
                .map_err(err)
        })?;
        time(&mut users_l.original, round, || {
            original_load::<Users>(&o_users)
        })?;
        time(&mut first_l.ours, round, || {
            DocStore::<FirstBoot>::open(paths.firstboot.clone(), private, dir_mode)
                .map_err(err)?
                .load()
                .map_err(err)
        })?;
        time(&mut first_l.original, round, || {
            original_load::<FirstBoot>(&o_first)
        })?;
        time(&mut sess_l.ours, round, || {
            Journaled::<Sessions, SessionEvent>::open(paths.sessions.clone(), private, dir_mode)
                .map_err(err)
        })?;
        time(&mut sess_l.original, round, || {
            original_load::<Sessions>(&o_sess)
        })?;
        time(&mut rate_l.ours, round, || {
            Journaled::<RateLimit, Hit>::open(paths.ratelimit.clone(), private, dir_mode)
                .map_err(err)
        })?;
        time(&mut rate_l.original, round, || {
            original_load::<RateLimit>(&o_rate)
        })?;
        time(&mut upd_l.ours, round, || {
            DocStore::<UpdatesIndex>::open(paths.updates.clone(), Mode::PUBLIC_READ, dir_mode)
                .map_err(err)?
                .load()
                .map_err(err)
        })?;
        time(&mut upd_l.original, round, || {
            original_load::<UpdatesIndex>(&o_upd)
        })?;
        time(&mut snap_l.ours, round, || {
            Journaled::<SnapDb, Transaction>::open(
                paths.snapdb.clone(),
                Mode::PUBLIC_READ,
                dir_mode,
            )
            .map_err(err)
        })?;
        time(&mut snap_l.original, round, || {
            original_load::<SnapDb>(&o_snap)
        })?;
        time(&mut shares_l.ours, round, || {
            DocStore::<Shares>::open(paths.shares.clone(), private, dir_mode)
                .map_err(err)?
                .load()
                .map_err(err)
        })?;
        time(&mut shares_l.original, round, || {
            original_load::<Shares>(&o_shares)
        })?;
    }
    Ok(out)
}
