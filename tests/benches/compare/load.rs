//! Loading the seven stores of the NAS daemon at realistic sizes: the time
//! from opening a store to holding its state (documents: open + load;
//! journaled stores: open, which locks, recovers and replays snapshot and
//! journal). Beside each, the original package's way: one JSON file of the
//! same state, read and parsed with `serde_json` (the Go package's
//! `LoadJSON`, without its unconditional removal of `path.tmp`).
//!
//! The page cache is warm (the files were just written): this measures the
//! CPU cost of loading, not the disk.

use std::any::Any;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fsatomic::Mode;
use fsatomic::store::Fold;
use fsatomic_linux::nas::{
    DocStore, FirstBoot, Hit, Journaled, NasPaths, RateLimit, SessionEvent, Sessions, Share,
    Shares, SnapDb, Transaction, UpdateEntry, UpdatesIndex, Users,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
use crate::commit::{DIR_MODE, indented, open_journal, user};
use crate::growth::transaction;
use crate::stats::Samples;

// How many of each the stores hold, as on a busy appliance: accounts,
// live sessions, rate-limit hits within the window, updates in the index,
// snapshot transactions, shares.
const USERS: usize = 50;
const SESSIONS: usize = 1_000;
const HITS: usize = 10_000;
const UPDATES: usize = 100;
const TRANSACTIONS: usize = 5_000;
const SHARES: usize = 200;

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

/// A timed load; what it returns is dropped after the clock stops.
type Loader = Box<dyn Fn() -> Result<Box<dyn Any>>>;

/// The stores being set up, each with its two loaders (ours, original).
struct Stores {
    /// The directory of the original's files.
    original: PathBuf,
    out: Vec<(StoreLoad, Loader, Loader)>,
}

impl Stores {
    /// Add `store`, whose `files` `ours` loads, beside the original's file
    /// of the same `state` (indented JSON, as `SaveJSON` wrote it) read and
    /// parsed.
    fn add<T: Serialize + DeserializeOwned + 'static>(
        &mut self,
        (store, holds, protocol): (&'static str, String, &'static str),
        files: &[&Path],
        ours: Loader,
        state: &T,
    ) -> Result<()> {
        let path = self.original.join(files[0].file_name().expect("a file"));
        let data = indented(state);
        fs::write(&path, &data)?;
        let original: Loader =
            Box::new(move || Ok(Box::new(serde_json::from_slice::<T>(&fs::read(&path)?)?)));
        let bytes = files
            .iter()
            .filter_map(|p| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let load = StoreLoad {
            store,
            holds,
            protocol,
            bytes,
            ours: Samples::default(),
            original: Samples::default(),
            original_bytes: data.len() as u64,
        };
        self.out.push((load, ours, original));
        Ok(())
    }

    /// A document store at `path` holding `state`.
    fn doc<T: Serialize + DeserializeOwned + Default + 'static>(
        &mut self,
        (store, holds): (&'static str, String),
        path: &Path,
        mode: Mode,
        state: &T,
    ) -> Result<()> {
        DocStore::<T>::open(path.into(), mode, DIR_MODE).and_then(|s| s.save(state))?;
        let p = path.to_path_buf();
        let ours: Loader = Box::new(move || {
            let store = DocStore::<T>::open(p.clone(), mode, DIR_MODE)?;
            Ok(Box::new(store.load()?))
        });
        self.add((store, holds, "replace"), &[path], ours, state)
    }

    /// A journaled store at `path` filled with `records` in batches of 64,
    /// as a daemon that ran for a while leaves it (compactions fall where
    /// they fall); returns its state.
    fn journal<S, R>(
        &mut self,
        (store, holds): (&'static str, String),
        path: &Path,
        mode: Mode,
        records: &[R],
    ) -> Result<S>
    where
        S: Fold<R> + Serialize + DeserializeOwned + Default + Clone + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let dir = path.parent().expect("parent");
        fs::create_dir_all(dir)?;
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let mut buf = vec![0u8; 8 << 20];
        let (mut d, mut journal) = open_journal::<S, R>(dir, name, mode, &mut buf)?;
        for chunk in records.chunks(64) {
            journal.append_batch(&mut d, &mut buf, chunk)?;
        }
        let p = path.to_path_buf();
        let ours: Loader = Box::new(move || {
            let store = Journaled::<S, R>::open(p.clone(), mode, DIR_MODE)?;
            Ok(Box::new(store))
        });
        let state = journal.state().clone();
        let mut journal_path = path.as_os_str().to_owned();
        journal_path.push(".journal");
        let files = [path, Path::new(&journal_path)];
        self.add((store, holds, "journal"), &files, ours, &state)?;
        Ok(state)
    }
}

/// Populate the seven stores under `root`, then load each `rounds` times,
/// interleaved.
pub fn run(root: &Path, rounds: usize) -> Result<Vec<StoreLoad>> {
    let paths = NasPaths::with_shares(root.join("nas"), None);
    let mut s = Stores {
        original: root.join("nas-original"),
        out: Vec::new(),
    };
    fs::create_dir_all(&s.original)?;
    let (private, public) = (Mode::PRIVATE, Mode::PUBLIC_READ);
    let now = 1_700_000_000u64;

    let users = Users {
        users: (0..USERS).map(user).collect(),
    };
    let holds = format!("{USERS} accounts");
    s.doc(("users", holds), &paths.users, private, &users)?;
    let firstboot = FirstBoot {
        completed: true,
        completed_at: Some(now),
    };
    s.doc(
        ("firstboot", "the flag".into()),
        &paths.firstboot,
        private,
        &firstboot,
    )?;
    let events: Vec<SessionEvent> = (0..SESSIONS)
        .map(|i| {
            SessionEvent::create(
                &format!("{i:08x}c0ffee{i:016x}deadbeef{i:08x}"),
                &format!("user{:04}", i % 50),
                now + i as u64,
                30 * 86_400,
            )
        })
        .collect();
    let holds = format!("{SESSIONS} live sessions");
    let sessions: Sessions = s.journal(("sessions", holds), &paths.sessions, private, &events)?;
    assert_eq!(sessions.sessions.len(), SESSIONS, "sessions filled");
    let hits: Vec<Hit> = (0..HITS)
        .map(|i| Hit {
            key: format!("login:10.0.{}.{}", (i / 256) % 256, i % 256),
            at: now + (i as u64) / 20,
        })
        .collect();
    let holds = format!("{HITS} hits");
    s.journal::<RateLimit, _>(("ratelimit", holds), &paths.ratelimit, private, &hits)?;
    let updates = UpdatesIndex {
        updates: (0..UPDATES)
            .map(|i| UpdateEntry {
                version: format!("4.{}.{}", i / 10, i % 10),
                channel: "stable".into(),
                state: if i + 1 == UPDATES {
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
    let holds = format!("{UPDATES} updates");
    s.doc(("updates index", holds), &paths.updates, public, &updates)?;
    let txs: Vec<Transaction> = (0..TRANSACTIONS).map(transaction).collect();
    let holds = format!("{TRANSACTIONS} transactions");
    let snapdb: SnapDb = s.journal(("snapshot db", holds), &paths.snapdb, public, &txs)?;
    assert_eq!(snapdb.transactions.len(), TRANSACTIONS, "snapdb filled");
    let shares = Shares {
        shares: (0..SHARES)
            .map(|i| Share {
                name: format!("share{i:03}"),
                path: format!("/tank/shares/share{i:03}"),
                protocols: vec![if i % 3 == 0 { "nfs" } else { "smb" }.into()],
                read_only: i % 5 == 0,
                users: (0..4).map(|u| format!("user{:04}", (i + u) % 50)).collect(),
            })
            .collect(),
    };
    let holds = format!("{SHARES} shares");
    s.doc(("shares", holds), &paths.shares, private, &shares)?;

    for round in 0..rounds {
        for (l, ours, original) in &mut s.out {
            for (samples, load) in [(&mut l.ours, &*ours), (&mut l.original, &*original)] {
                let t = Instant::now();
                let loaded = load()?;
                samples.push(round, t.elapsed());
                drop(loaded);
            }
        }
    }
    Ok(s.out.into_iter().map(|(l, _, _)| l).collect())
}
