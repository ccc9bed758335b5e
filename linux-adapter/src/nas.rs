//! The seven state stores of the NAS daemon, each on the protocol that is
//! right for it, rooted at a configurable directory.
//!
//! | store | file (under the root) | protocol | mode |
//! |---|---|---|---|
//! | users | `etc/nos/users.json` | Replace | 0600 |
//! | first boot | `var/lib/nos/state/firstboot.json` | Replace | 0600 |
//! | sessions | `var/lib/nos/sessions.json` | Journal, expired sessions dropped at compaction | 0600 |
//! | rate limit | `var/lib/nos/ratelimit.json` | Journal, every hit durable | 0600 |
//! | updates index | `var/lib/nos/snapshots/index.json` | Replace | 0644 |
//! | snapshot database | `var/lib/nos/snapshots/snapdb.json` | Journal append | 0644 |
//! | shares | `$NOS_SHARES_PATH`, else `var/lib/nos/shares.json` | Replace, schema 2 (migrated from 1 at start) | 0600 |
//!
//! The original daemon kept the snapshot database in the updates index
//! file; here it has its own journal beside it, because an append-only
//! history and a small rewritten index want different protocols.
//!
//! On a filesystem whose rename is not crash-atomic (vfat, exfat), every
//! store uses Slots instead: whole documents in two preallocated slots, and
//! the journaled stores rewrite their whole state per update.
//!
//! ```no_run
//! use fsatomic_linux::nas::{Nas, SessionEvent};
//! let nas = Nas::open("/")?;  // the real paths; tests and demos use a scratch root
//! nas.sessions.append(SessionEvent::create("tok-1", "admin", 1_700_000_000, 3600))?;
//! nas.ratelimit.append(fsatomic_linux::nas::Hit { key: "login:10.0.0.7".into(), at: 1_700_000_000 })?;
//! # Ok::<(), fsatomic_linux::nas::NasError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use fsatomic::group::GroupJournal;
use fsatomic::store::Fold;
use fsatomic::{Dir, JournalStore, Mode, Protocol, Store, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::LinuxDir;

/// The largest buffer a store grows to (a document or snapshot larger than
/// this is refused).
pub const MAX_BUFFER: usize = 64 << 20;

/// An error of a NAS store, naming the file.
#[derive(Debug)]
pub struct NasError {
    /// The store's file.
    pub path: PathBuf,
    /// What went wrong.
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for NasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for NasError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.error)
    }
}

fn nas_err(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> NasError {
    NasError {
        path: path.to_path_buf(),
        error: Box::new(e),
    }
}

/// Open (creating with its parents, durably) the directory of `path`, and
/// return it with the file name.
fn open_parent(path: &Path, dir_mode: Mode) -> Result<(LinuxDir, &'static str), NasError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        nas_err(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        )
    })?;
    let (dir, _made) = LinuxDir::create_all(parent, dir_mode).map_err(|e| nas_err(parent, e))?;
    // The stores live as long as the daemon: their names are leaked once.
    Ok((dir, Box::leak(name.to_owned().into_boxed_str())))
}

/// A whole document of type `T` in one file of the directory `D` (the
/// daemon's is a [`LinuxDir`]; the crash explorer runs the same code over
/// its simulator).
pub struct DocStore<T, D: Dir = LinuxDir> {
    path: PathBuf,
    dir: std::sync::Mutex<(D, Vec<u8>)>,
    store: Store<'static, T>,
    /// The migration of older documents, for a versioned document.
    migrate: Option<Migration<T>>,
}

/// How a versioned document brings an older one up to date.
pub type Migration<T> = fn(fsatomic::schema::Old<'_>) -> Result<T, &'static str>;

/// A document type with a schema version ([`fsatomic::schema`]), and the
/// migration of documents of older ones.
pub trait Versioned: Sized {
    /// The schema this program writes.
    const SCHEMA: u32;
    /// Bring a document of an older schema up to [`Versioned::SCHEMA`].
    fn migrate(old: fsatomic::schema::Old<'_>) -> Result<Self, &'static str>;
}

impl<T: Serialize + DeserializeOwned + Default> DocStore<T> {
    /// The document at `path`, with permissions `mode`, committed with
    /// Replace (Slots where rename is not crash-atomic).
    pub fn open(path: PathBuf, mode: Mode, dir_mode: Mode) -> Result<Self, NasError> {
        let (dir, name) = open_parent(&path, dir_mode)?;
        let doc = DocStore::in_dir(path, dir, name, mode);
        doc.start()?;
        Ok(doc)
    }

    /// [`DocStore::open`] for a versioned document: its documents are kept
    /// with `T`'s schema, and an older one is migrated at the start (the
    /// pre-migration document kept as the previous version).
    pub fn open_versioned(path: PathBuf, mode: Mode, dir_mode: Mode) -> Result<Self, NasError>
    where
        T: Versioned,
    {
        let (dir, name) = open_parent(&path, dir_mode)?;
        let doc = DocStore::in_dir(path, dir, name, mode).versioned();
        doc.start()?;
        Ok(doc)
    }

    /// Flush barriers through this store so far.
    pub fn flush_count(&self) -> u64 {
        self.guard().0.flush_count()
    }
}

impl<T, D> DocStore<T, D>
where
    T: Serialize + DeserializeOwned + Default,
    D: Dir,
    D::Error: std::error::Error + Send + Sync + 'static,
{
    /// The document `name` in `dir` (`path` names it in errors), with
    /// permissions `mode`. Touches nothing on disk; [`DocStore::open`]
    /// also recovers.
    pub fn in_dir(path: PathBuf, dir: D, name: &'static str, mode: Mode) -> Self {
        DocStore {
            path,
            dir: std::sync::Mutex::new((dir, vec![0; 64 * 1024])),
            store: Store::new(name, mode),
            migrate: None,
        }
    }

    /// The same store for a versioned document ([`Versioned`]).
    pub fn versioned(mut self) -> Self
    where
        T: Versioned,
    {
        self.store = self.store.with_schema(T::SCHEMA);
        self.migrate = Some(T::migrate);
        self
    }

    /// What the daemon does at start: [`DocStore::recover`], then, for a
    /// versioned document, migrate one of an older schema
    /// ([`fsatomic::Store::open`]).
    pub fn start(&self) -> Result<(), NasError> {
        self.recover()?;
        if let Some(migrate) = self.migrate {
            self.with_buffer(|dir, buf| self.store.open(dir, buf, migrate))?;
        }
        Ok(())
    }

    /// Recover as the daemon does at start ([`fsatomic::recover::recover`]):
    /// under the writers' lock, sweep the temporary files that a commit cut
    /// by a power failure left behind, finish a commit that keeps the
    /// previous version, roll back a tentative version nobody confirmed.
    pub fn recover(&self) -> Result<fsatomic::recover::Recovered, NasError> {
        fsatomic::recover::recover(&mut self.guard().0, self.store.name(), self.store.mode())
            .map_err(|e| nas_err(&self.path, e))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The protocol in use.
    pub fn protocol(&self) -> Protocol {
        self.store.protocol().resolve(self.guard().0.capabilities())
    }

    /// The permissions of the file.
    pub fn mode(&self) -> Mode {
        self.store.mode()
    }

    /// The directory and the buffer; a panic of another holder is ignored.
    fn guard(&self) -> std::sync::MutexGuard<'_, (D, Vec<u8>)> {
        self.dir.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_buffer<R>(
        &self,
        mut f: impl FnMut(&mut D, &mut [u8]) -> Result<R, StoreError<D::Error>>,
    ) -> Result<R, NasError> {
        let mut guard = self.guard();
        let (dir, buf) = &mut *guard;
        loop {
            match f(dir, buf) {
                Err(e) if e.is_buffer_too_small() && buf.len() < MAX_BUFFER => {
                    let len = buf.len() * 2;
                    buf.resize(len, 0);
                }
                other => return other.map_err(|e| nas_err(&self.path, e)),
            }
        }
    }

    /// The document, or `None` if it was never written.
    pub fn load(&self) -> Result<Option<T>, NasError> {
        self.with_buffer(|dir, buf| self.store.load(dir, buf))
    }

    /// Replace the document, durably.
    pub fn save(&self, value: &T) -> Result<(), NasError> {
        self.with_buffer(|dir, buf| self.store.save(dir, buf, value))
    }

    /// Read, modify and write under the lock; returns what `f` returned.
    pub fn update<R>(&self, mut f: impl FnMut(&mut T) -> R) -> Result<R, NasError> {
        self.with_buffer(|dir, buf| self.store.update(dir, buf, &mut f))
    }

    /// Take back the directory.
    pub fn into_dir(self) -> D {
        self.dir.into_inner().unwrap_or_else(|p| p.into_inner()).0
    }
}

/// A state `S` changed by records `R`: a group-committed journal, or (where
/// rename is not crash-atomic) a whole document rewritten per record.
pub enum Journaled<S, R: 'static, D: Dir = LinuxDir> {
    /// Snapshot + journal; concurrent appends share flushes.
    Journal {
        /// The snapshot's path.
        path: PathBuf,
        /// The journal.
        journal: Box<GroupJournal<'static, S, R, D>>,
    },
    /// The whole state per update, with Slots.
    Whole(DocStore<S, D>),
}

impl<S, R> Journaled<S, R>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
{
    /// Open the journaled state at `path`.
    pub fn open(path: PathBuf, mode: Mode, dir_mode: Mode) -> Result<Self, NasError> {
        let (dir, name) = open_parent(&path, dir_mode)?;
        // Room for the snapshot (read whole), the state encoded again at
        // compaction (it grows), and a batch of records: sized from the
        // files so that opening a large store reads it once.
        let journal = fsatomic::layout::file_name(name, fsatomic::layout::Role::Journal);
        let on_disk = [path.clone(), path.with_file_name(journal.as_str())]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| usize::try_from(m.len()).unwrap_or(MAX_BUFFER))
            .sum::<usize>();
        let len = (2 * on_disk + 64 * 1024).clamp(256 * 1024, MAX_BUFFER);
        Journaled::in_dir(path, dir, name, mode, len)
    }

    /// Flush barriers through this store so far.
    pub fn flush_count(&self) -> u64 {
        match self {
            Journaled::Journal { journal, .. } => journal.with_dir(|d| d.flush_count()),
            Journaled::Whole(doc) => doc.flush_count(),
        }
    }
}

impl<S, R, D> Journaled<S, R, D>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
    D: Dir,
    D::Error: std::error::Error + Send + Sync + 'static,
{
    /// The journaled state `name` in `dir` (`path` names it in errors),
    /// with permissions `mode` and a working buffer of `buf_len` bytes to
    /// start with (it grows as needed). Opening recovers: under the
    /// writers' lock, cuts a torn tail, finishes an interrupted
    /// compaction, sweeps temporary files, and replays the state. Where
    /// rename is not crash-atomic, the whole state is one document in
    /// Slots instead.
    pub fn in_dir(
        path: PathBuf,
        dir: D,
        name: &'static str,
        mode: Mode,
        buf_len: usize,
    ) -> Result<Self, NasError> {
        if !dir.capabilities().atomic_replace {
            let doc = DocStore::in_dir(path, dir, name, mode);
            doc.recover()?;
            return Ok(Journaled::Whole(doc));
        }
        let store = JournalStore::new(name, mode).map_err(|e| nas_err(&path, e))?;
        let journal = GroupJournal::open(store, dir, buf_len).map_err(|e| nas_err(&path, e))?;
        Ok(Journaled::Journal {
            path,
            journal: Box::new(journal),
        })
    }

    /// The snapshot's path.
    pub fn path(&self) -> &Path {
        match self {
            Journaled::Journal { path, .. } => path,
            Journaled::Whole(doc) => doc.path(),
        }
    }

    /// `"journal"` or the whole-document protocol in use.
    pub fn protocol_name(&self) -> &'static str {
        match self {
            Journaled::Journal { .. } => "journal",
            Journaled::Whole(doc) => doc.protocol().as_str(),
        }
    }

    /// Append `record` durably; returns its sequence number (0 for whole
    /// documents, which have none).
    pub fn append(&self, record: R) -> Result<u64, NasError> {
        match self {
            Journaled::Journal { path, journal } => journal
                .append(record)
                .map_err(|e| nas_err(path, io::Error::other(e.to_string()))),
            Journaled::Whole(doc) => doc.update(|s| s.apply(0, &record)).map(|()| 0),
        }
    }

    /// Compact now: prune (drop expired entries), write the snapshot, start
    /// an empty journal. A no-op for whole documents.
    pub fn compact(&self) -> Result<(), NasError> {
        match self {
            Journaled::Journal { path, journal } => journal.compact().map_err(|e| nas_err(path, e)),
            Journaled::Whole(_) => Ok(()),
        }
    }

    /// Run `f` on the current state.
    pub fn with_state<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, NasError> {
        match self {
            Journaled::Journal { journal, .. } => Ok(journal.with_state(f)),
            Journaled::Whole(doc) => Ok(f(&doc.load()?.unwrap_or_default())),
        }
    }

    /// Take back the directory.
    pub fn into_dir(self) -> D {
        match self {
            Journaled::Journal { journal, .. } => journal.into_inner().1,
            Journaled::Whole(doc) => doc.into_dir(),
        }
    }
}

/// A map key. `serde-json-core` 0.7 reads map keys only through
/// `deserialize_str` (a `String` key reaches an `unreachable!()` in it), so
/// maps in these stores are keyed by this newtype, which asks for a `str`.
#[derive(Serialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct Key(pub String);

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key(s.to_owned())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// One account.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Password hash (the daemon's format; never the password).
    pub password_hash: String,
    /// `"admin"` or `"user"`.
    pub role: String,
    /// Unix time of creation.
    pub created_at: u64,
}

/// `etc/nos/users.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Users {
    /// Every account.
    pub users: Vec<User>,
}

/// `var/lib/nos/state/firstboot.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct FirstBoot {
    /// Whether first-boot setup has completed.
    pub completed: bool,
    /// When it completed (Unix time).
    pub completed_at: Option<u64>,
}

/// A logged-in session.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account.
    pub user: String,
    /// Unix time of login.
    pub created_at: u64,
    /// Unix time after which the session is void.
    pub expires_at: u64,
}

/// What happened to a session.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SessionOp {
    /// Login.
    Create,
    /// Logout or revocation.
    Revoke,
}

/// A record of the sessions journal.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    /// Create or revoke.
    pub op: SessionOp,
    /// The session token (or its hash).
    pub token: String,
    /// The account (for `create`).
    pub user: Option<String>,
    /// Unix time of the event.
    pub at: u64,
    /// Unix time of expiry (for `create`).
    pub expires_at: Option<u64>,
}

impl SessionEvent {
    /// A login of `user` at `at`, valid for `ttl` seconds.
    pub fn create(token: &str, user: &str, at: u64, ttl: u64) -> Self {
        SessionEvent {
            op: SessionOp::Create,
            token: token.into(),
            user: Some(user.into()),
            at,
            expires_at: Some(at + ttl),
        }
    }

    /// The revocation of `token` at `at`.
    pub fn revoke(token: &str, at: u64) -> Self {
        SessionEvent {
            op: SessionOp::Revoke,
            token: token.into(),
            user: None,
            at,
            expires_at: None,
        }
    }
}

/// `var/lib/nos/sessions.json`: live sessions by token.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Sessions {
    /// Sessions by token.
    pub sessions: BTreeMap<Key, Session>,
    /// The latest event time seen: the journal's own clock, so that expiry
    /// at compaction does not depend on the machine's clock.
    pub clock: u64,
}

impl Sessions {
    /// The session of `token` if it exists and has not expired at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<&Session> {
        self.sessions.get(token).filter(|s| s.expires_at > now)
    }
}

impl Fold<SessionEvent> for Sessions {
    fn apply(&mut self, _seq: u64, e: &SessionEvent) {
        self.clock = self.clock.max(e.at);
        match e.op {
            SessionOp::Create => {
                self.sessions.insert(
                    Key(e.token.clone()),
                    Session {
                        user: e.user.clone().unwrap_or_default(),
                        created_at: e.at,
                        expires_at: e.expires_at.unwrap_or(e.at),
                    },
                );
            }
            SessionOp::Revoke => {
                self.sessions.remove(e.token.as_str());
            }
        }
    }

    fn prune(&mut self) {
        let clock = self.clock;
        self.sessions.retain(|_, s| s.expires_at > clock);
    }
}

/// One rate-limited attempt.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What is limited (`"login:10.0.0.7"`).
    pub key: String,
    /// Unix time of the attempt.
    pub at: u64,
}

/// How long the rate limiter remembers a hit, in seconds.
pub const RATE_WINDOW: u64 = 15 * 60;

/// `var/lib/nos/ratelimit.json`: recent hits per key. Every hit is durable
/// before it counts (the original daemon persisted every 10th).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Times of the hits in the last [`RATE_WINDOW`], per key.
    pub hits: BTreeMap<Key, Vec<u64>>,
    /// The latest hit time seen.
    pub clock: u64,
}

impl RateLimit {
    /// Hits of `key` within the window before `now`.
    pub fn count(&self, key: &str, now: u64) -> usize {
        self.hits
            .get(key)
            .map_or(0, |h| h.iter().filter(|&&t| t + RATE_WINDOW > now).count())
    }
}

impl Fold<Hit> for RateLimit {
    fn apply(&mut self, _seq: u64, hit: &Hit) {
        self.clock = self.clock.max(hit.at);
        self.hits
            .entry(Key(hit.key.clone()))
            .or_default()
            .push(hit.at);
    }

    fn prune(&mut self) {
        let clock = self.clock;
        for times in self.hits.values_mut() {
            times.retain(|&t| t + RATE_WINDOW > clock);
        }
        self.hits.retain(|_, t| !t.is_empty());
    }
}

/// One installed or staged update.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct UpdateEntry {
    /// Version string.
    pub version: String,
    /// Release channel.
    pub channel: String,
    /// `"staged"`, `"installed"`, `"rolled-back"`.
    pub state: String,
    /// Unix time.
    pub at: u64,
    /// The pre-update snapshot's transaction id.
    pub snapshot_tx: Option<String>,
}

/// `var/lib/nos/snapshots/index.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdatesIndex {
    /// Updates, oldest first.
    pub updates: Vec<UpdateEntry>,
}

/// One snapshot transaction.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Transaction id.
    pub tx: String,
    /// Unix time.
    pub at: u64,
    /// `"pre-update"`, `"scheduled"`, `"manual"`.
    pub kind: String,
    /// Snapshot names taken in this transaction.
    pub snapshots: Vec<String>,
}

/// `var/lib/nos/snapshots/snapdb.json`: the history of snapshot
/// transactions, appended one record per transaction.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapDb {
    /// Every transaction, oldest first.
    pub transactions: Vec<Transaction>,
}

impl SnapDb {
    /// The transaction `tx`.
    pub fn find(&self, tx: &str) -> Option<&Transaction> {
        self.transactions.iter().rev().find(|t| t.tx == tx)
    }

    /// The `n` most recent transactions, newest first.
    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Transaction> {
        self.transactions.iter().rev().take(n)
    }
}

impl Fold<Transaction> for SnapDb {
    fn apply(&mut self, _seq: u64, t: &Transaction) {
        self.transactions.push(t.clone());
    }
}

/// One share.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Share name.
    pub name: String,
    /// Exported path.
    pub path: String,
    /// `"smb"`, `"nfs"`, or both (schema 2; schema 1 had one `protocol`).
    pub protocols: Vec<String>,
    /// Exported read-only.
    pub read_only: bool,
    /// Accounts with access.
    pub users: Vec<String>,
}

/// The shares file, schema 2: `{"schema": 2, "value": {"shares": [...]}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Shares {
    /// Every share.
    pub shares: Vec<Share>,
}

/// A share as schema 1 kept it: one protocol per share.
#[derive(Deserialize)]
struct ShareV1 {
    name: String,
    path: String,
    protocol: String,
    read_only: bool,
    users: Vec<String>,
}

/// The shares file of schema 1 (written before the store had a schema,
/// so read as schema 0): a plain `{"shares": [...]}`.
#[derive(Deserialize)]
struct SharesV1 {
    shares: Vec<ShareV1>,
}

impl Versioned for Shares {
    const SCHEMA: u32 = 2;

    fn migrate(mut old: fsatomic::schema::Old<'_>) -> Result<Shares, &'static str> {
        let v1: SharesV1 = old
            .decode()
            .map_err(|_| "not a schema-1 shares file ({\"shares\": [{\"protocol\": ...}]})")?;
        Ok(Shares {
            shares: v1
                .shares
                .into_iter()
                .map(|s| Share {
                    name: s.name,
                    path: s.path,
                    protocols: vec![s.protocol],
                    read_only: s.read_only,
                    users: s.users,
                })
                .collect(),
        })
    }
}

/// Where each store lives under a root.
#[derive(Debug, Clone)]
pub struct NasPaths {
    /// `etc/nos/users.json`.
    pub users: PathBuf,
    /// `var/lib/nos/state/firstboot.json`.
    pub firstboot: PathBuf,
    /// `var/lib/nos/sessions.json`.
    pub sessions: PathBuf,
    /// `var/lib/nos/ratelimit.json`.
    pub ratelimit: PathBuf,
    /// `var/lib/nos/snapshots/index.json`.
    pub updates: PathBuf,
    /// `var/lib/nos/snapshots/snapdb.json`.
    pub snapdb: PathBuf,
    /// `$NOS_SHARES_PATH` (relative paths are taken under the root), else
    /// `var/lib/nos/shares.json`.
    pub shares: PathBuf,
}

impl NasPaths {
    /// The paths under `root`, reading `NOS_SHARES_PATH` from the
    /// environment.
    pub fn under(root: impl AsRef<Path>) -> NasPaths {
        let shares = std::env::var_os("NOS_SHARES_PATH").map(PathBuf::from);
        NasPaths::with_shares(root, shares)
    }

    /// The paths under `root`, with the shares file at `shares` if given.
    pub fn with_shares(root: impl AsRef<Path>, shares: Option<PathBuf>) -> NasPaths {
        let root = root.as_ref();
        let lib = root.join("var/lib/nos");
        NasPaths {
            users: root.join("etc/nos/users.json"),
            firstboot: lib.join("state/firstboot.json"),
            sessions: lib.join("sessions.json"),
            ratelimit: lib.join("ratelimit.json"),
            updates: lib.join("snapshots/index.json"),
            snapdb: lib.join("snapshots/snapdb.json"),
            shares: match shares {
                Some(p) if p.is_absolute() => p,
                Some(p) => root.join(p),
                None => lib.join("shares.json"),
            },
        }
    }
}

/// The daemon's seven stores.
pub struct Nas {
    /// Accounts (Replace, 0600).
    pub users: DocStore<Users>,
    /// First-boot flag (Replace, 0600).
    pub firstboot: DocStore<FirstBoot>,
    /// Sessions (Journal, 0600).
    pub sessions: Journaled<Sessions, SessionEvent>,
    /// Rate-limit hits (Journal, 0600).
    pub ratelimit: Journaled<RateLimit, Hit>,
    /// Updates index (Replace, 0644).
    pub updates: DocStore<UpdatesIndex>,
    /// Snapshot database (Journal, 0644).
    pub snapdb: Journaled<SnapDb, Transaction>,
    /// Shares (Replace, 0600).
    pub shares: DocStore<Shares>,
}

/// Permissions of the directories the stores create: `etc/nos` is private.
const PRIVATE_DIR: Mode = Mode::new(0o700).unwrap();
const PUBLIC_DIR: Mode = Mode::new(0o755).unwrap();

impl Nas {
    /// Open every store under `root` (creating directories durably), with
    /// the shares path from `NOS_SHARES_PATH`.
    pub fn open(root: impl AsRef<Path>) -> Result<Nas, NasError> {
        Nas::open_paths(&NasPaths::under(root))
    }

    /// Open every store at `paths`.
    pub fn open_paths(paths: &NasPaths) -> Result<Nas, NasError> {
        Ok(Nas {
            users: DocStore::open(paths.users.clone(), Mode::PRIVATE, PRIVATE_DIR)?,
            firstboot: DocStore::open(paths.firstboot.clone(), Mode::PRIVATE, PUBLIC_DIR)?,
            sessions: Journaled::open(paths.sessions.clone(), Mode::PRIVATE, PUBLIC_DIR)?,
            ratelimit: Journaled::open(paths.ratelimit.clone(), Mode::PRIVATE, PUBLIC_DIR)?,
            updates: DocStore::open(paths.updates.clone(), Mode::PUBLIC_READ, PUBLIC_DIR)?,
            snapdb: Journaled::open(paths.snapdb.clone(), Mode::PUBLIC_READ, PUBLIC_DIR)?,
            shares: DocStore::open_versioned(paths.shares.clone(), Mode::PRIVATE, PUBLIC_DIR)?,
        })
    }
}
