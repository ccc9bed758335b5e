//! The shipped code above the core's stores, as [`Protocol`]s the explorer
//! drives: group commit ([`fsatomic::group::GroupJournal`]) and the seven
//! state stores of the NAS daemon ([`fsatomic_linux::nas`]), through the
//! calls the daemon makes.
//!
//! Those types own their directory, and the explorer lends one for the
//! length of a call ([`Protocol::commit`] takes `&mut D`), so each call
//! builds the store over a [`Lent`] directory, as a process starting up
//! would: a commit opens the store (recovering), commits, and drops it;
//! `recover` opens it (what the daemon does at start); `load` is the
//! daemon's lock-free read (`DocStore::load`; for a journal, the core's
//! [`fsatomic::JournalStore::read`], since opening a journal recovers it).
//!
//! Values map onto each store's own types ([`Kept`], [`JournalKept`]):
//! the scenario value `{"v": n, "pad": "..."}` becomes a user, a share, a
//! session, a rate-limit hit, a snapshot transaction, an update entry or
//! the first-boot flag, and `load` turns the newest one back into the
//! value, so the oracle compares bytes as for every other protocol.

use std::fmt;
use std::ops::ControlFlow;
use std::path::PathBuf;

use fsatomic::group::{GroupJournal, Pipeline};
use fsatomic::store::Fold;
use fsatomic::{Capabilities, Dir, JournalStore, Mode, StoreError};
use fsatomic_linux::nas::{self, DocStore, Journaled, NasError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{Doc, Failure, Last, Loaded, Protocol, other};

/// A directory error flattened to its kind and text: `Send + Sync +
/// 'static` whatever the lent directory's error is, as the NAS stores'
/// errors require.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flat {
    /// The error's kind (`NotFound`, `AlreadyExists` steer the protocols).
    pub kind: embedded_io::ErrorKind,
    /// The error's text.
    pub text: String,
}

impl fmt::Display for Flat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Flat {}

impl embedded_io::Error for Flat {
    fn kind(&self) -> embedded_io::ErrorKind {
        self.kind
    }
}

fn flat<E: embedded_io::Error>(e: E) -> Flat {
    Flat {
        kind: e.kind(),
        text: e.to_string(),
    }
}

/// A directory lent for one call: the stores that own their directory
/// (`GroupJournal`, `DocStore`, `Journaled`) run on the explorer's
/// simulator, or on a mutant of it, through this. Every method forwards.
pub struct Lent<'a, D>(pub &'a mut D);

/// A file of a [`Lent`] directory.
pub struct LentFile<F>(F);

/// Methods that forward to the wrapped value, flattening its error.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {$(
        fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Flat> {
            self.0.$name($($arg),*).map_err(flat)
        }
    )*};
}

impl<F> embedded_io::ErrorType for LentFile<F> {
    type Error = Flat;
}

impl<F: fsatomic::File> embedded_io::Read for LentFile<F> {
    forward!(read(buf: &mut [u8]) -> usize;);
}

impl<F: fsatomic::File> embedded_io::Write for LentFile<F> {
    forward!(write(buf: &[u8]) -> usize; flush() -> (););
}

impl<F: fsatomic::File> embedded_io::Seek for LentFile<F> {
    forward!(seek(pos: embedded_io::SeekFrom) -> u64;);
}

impl<F: fsatomic::File> fsatomic::File for LentFile<F> {
    forward!(sync_data() -> (); sync_all() -> (); set_len(len: u64) -> (););
}

impl<D: Dir> Dir for Lent<'_, D> {
    type Error = Flat;
    type File = LentFile<D::File>;
    type Lock = D::Lock;

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<Self::File, Flat> {
        self.0.create_new(name, mode).map(LentFile).map_err(flat)
    }

    fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, Flat> {
        self.0
            .open_read(name)
            .map(|f| f.map(LentFile))
            .map_err(flat)
    }

    fn open_write(&mut self, name: &str, mode: Mode) -> Result<Option<Self::File>, Flat> {
        self.0
            .open_write(name, mode)
            .map(|f| f.map(LentFile))
            .map_err(flat)
    }

    forward! {
        unique_token() -> u64;
        exists(name: &str) -> bool;
        rename(from: &str, to: &str) -> ();
        remove(name: &str) -> ();
        link(from: &str, to: &str) -> ();
        sync_dir() -> ();
        for_each_entry(visit: &mut dyn FnMut(&str) -> ControlFlow<()>) -> ();
        lock(name: &str, mode: Mode) -> D::Lock;
    }
}

/// A NAS store's error as the oracle sees it: a corrupt file stays
/// [`Failure::Corrupt`].
fn nas_failure(e: NasError) -> Failure {
    match e.error.downcast::<StoreError<Flat>>() {
        Ok(store) => Failure::from(*store),
        Err(other) => match other.downcast::<fsatomic::RecoverError<Flat>>() {
            Ok(recover) => Failure::from(*recover),
            Err(other) => Failure::Io(format!("{}: {other}", e.path.display())),
        },
    }
}

/// Whether a commit of `doc` also compacts a journal: every even value,
/// so that the scenario compacts twice and the fresh value after recovery
/// compacts too (decided by the value, not by a counter, so that it is
/// the same in every crash state).
fn compacts(doc: &Doc) -> bool {
    doc.v.is_multiple_of(2)
}

/// Group commit as the daemon uses it: each commit opens a
/// [`GroupJournal`] (lock, recover, replay) with a small working buffer
/// that the open and the batches must grow, appends the value twice
/// (`append`, a leader writing its batch through
/// [`fsatomic::JournalStore::append_batch`], the second one at the
/// remembered tail), and drops it; the journal compacts past
/// `compact_after` bytes inside the batch path. Single-threaded: the
/// explorer's runs must be deterministic, so each batch holds the one
/// record of its leader; the concurrent batching itself is
/// `core/tests/group.rs`'s.
#[derive(Clone, Copy, Debug)]
pub struct Group {
    /// The snapshot's name.
    pub file: &'static str,
    /// The files' mode.
    pub mode: Mode,
    /// Compact past this many bytes (and the snapshot).
    pub compact_after: u64,
    /// The working buffer the journal opens with.
    pub buf_len: usize,
    /// Drive the pipeline ([`Pipeline`]) a step at a time instead: the
    /// second batch written before the first is flushed, then each
    /// flushed and finished in turn — the interleaving `GroupJournal`'s
    /// threads produce, made deterministic.
    pub pipelined: bool,
}

impl Default for Group {
    fn default() -> Group {
        Group {
            file: "hits.json",
            mode: Mode::PRIVATE,
            compact_after: 600,
            buf_len: 256,
            pipelined: false,
        }
    }
}

impl Group {
    fn store(&self) -> Result<JournalStore<'static, Last, Doc>, Failure> {
        let store = JournalStore::new(self.file, self.mode).map_err(|e| other("", e))?;
        Ok(store.compact_after(self.compact_after))
    }

    fn open<'d, D: Dir>(
        &self,
        dir: &'d mut D,
    ) -> Result<GroupJournal<'static, Last, Doc, Lent<'d, D>>, Failure> {
        Ok(GroupJournal::open(self.store()?, Lent(dir), self.buf_len)?)
    }
}

impl Protocol for Group {
    fn name(&self) -> &'static str {
        if self.pipelined {
            "group-pipeline"
        } else {
            "group-commit"
        }
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        fn io<E: core::fmt::Display>(e: std::sync::Arc<E>) -> Failure {
            Failure::Io(e.to_string())
        }
        let doc = Doc::parse(value)?;
        if self.pipelined {
            let mut p = Pipeline::open(self.store()?, Lent(dir), self.buf_len)?;
            let records = [doc];
            let mut a = p.write(&records).map_err(io)?;
            let mut b = p.write(&records).map_err(io)?;
            let synced = a.sync();
            let first = p.finish(a, synced, &records).map_err(io)?;
            let synced = b.sync();
            let second = p.finish(b, synced, &records).map_err(io)?;
            return consecutive(first, second);
        }
        let journal = self.open(dir)?;
        let first = journal.append(doc.clone()).map_err(io)?;
        let second = journal.append(doc).map_err(io)?;
        consecutive(first, second)
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        let mut buf = vec![0u8; 16 * 1024];
        Doc::bytes_of(self.store()?.read(dir, &mut buf)?.last)
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        self.open(dir)?;
        Ok(())
    }
}

/// `Ok` if the sequence number `second` follows `first`.
fn consecutive(first: u64, second: u64) -> Result<(), Failure> {
    match second == first + 1 {
        true => Ok(()),
        false => Err(other("sequence numbers ", format!("{first} then {second}"))),
    }
}

/// A whole-document NAS state as a scenario value.
pub trait Kept: Serialize + DeserializeOwned + Default {
    /// Put `doc` into the state: replace the document (a `save`) or add
    /// an entry to it (an `update`).
    fn put(&mut self, doc: &Doc);
    /// The newest value the state holds.
    fn newest(&self) -> Option<Doc>;
    /// The store as the daemon builds it (versioned, for the shares).
    fn daemon<D: Dir>(doc: DocStore<Self, Lent<'_, D>>) -> DocStore<Self, Lent<'_, D>> {
        doc
    }
}

/// The padding [`crate::oracle::value`] gives value `n` with a pad of
/// `len` bytes: for states with no text field to hold it.
fn pad_of(n: u64, len: usize) -> Doc {
    let mut pad = heapless::String::new();
    for i in 0..len as u64 {
        let c = b'a' + ((i.wrapping_mul(7).wrapping_add(n.wrapping_mul(11))) % 26) as u8;
        let _ = pad.push(char::from(c));
    }
    Doc { v: n, pad }
}

/// The value `v` with the padding `pad`, from a state's text field.
fn doc(v: u64, pad: &str) -> Doc {
    let mut text = heapless::String::new();
    let _ = text.push_str(pad);
    Doc { v, pad: text }
}

impl Kept for nas::Users {
    fn put(&mut self, doc: &Doc) {
        self.users.push(nas::User {
            username: format!("user{}", doc.v),
            password_hash: doc.pad.to_string(),
            role: "admin".into(),
            created_at: doc.v,
        });
    }

    fn newest(&self) -> Option<Doc> {
        let u = self.users.last()?;
        Some(doc(u.created_at, &u.password_hash))
    }
}

impl Kept for nas::FirstBoot {
    fn put(&mut self, doc: &Doc) {
        // No text to hold the padding: its length rides in the time.
        self.completed = true;
        self.completed_at = Some(doc.v * 1_000_000 + doc.pad.len() as u64);
    }

    fn newest(&self) -> Option<Doc> {
        let at = self.completed_at.filter(|_| self.completed)?;
        Some(pad_of(at / 1_000_000, (at % 1_000_000) as usize))
    }
}

impl Kept for nas::UpdatesIndex {
    fn put(&mut self, doc: &Doc) {
        self.updates.push(nas::UpdateEntry {
            version: doc.pad.to_string(),
            channel: "stable".into(),
            state: "installed".into(),
            at: doc.v,
            snapshot_tx: Some(format!("tx{}", doc.v)),
        });
    }

    fn newest(&self) -> Option<Doc> {
        let u = self.updates.last()?;
        Some(doc(u.at, &u.version))
    }
}

impl Kept for nas::Shares {
    fn put(&mut self, doc: &Doc) {
        self.shares = vec![nas::Share {
            name: format!("share{}", doc.v),
            path: doc.pad.to_string(),
            protocols: vec!["smb".into()],
            read_only: false,
            users: vec!["admin".into()],
        }];
    }

    fn daemon<D: Dir>(doc: DocStore<Self, Lent<'_, D>>) -> DocStore<Self, Lent<'_, D>> {
        doc.versioned()
    }

    fn newest(&self) -> Option<Doc> {
        let s = self.shares.last()?;
        Some(doc(s.name.strip_prefix("share")?.parse().ok()?, &s.path))
    }
}

/// Which [`DocStore`] call commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `DocStore::save` of the whole document.
    Save,
    /// `DocStore::update`, adding an entry.
    Update,
}

/// A NAS whole-document store ([`DocStore`]): `commit` is the daemon's
/// `save` or `update`, `load` its `load`, `recover` what `Nas::open` does
/// at start ([`DocStore::start`]: recovery, and a migration for the
/// versioned shares).
#[derive(Debug)]
pub struct NasDoc<T> {
    /// The store's name in reports.
    pub label: &'static str,
    /// The file's name.
    pub file: &'static str,
    /// The file's mode.
    pub mode: Mode,
    /// How the daemon commits this state.
    pub call: Call,
    _state: std::marker::PhantomData<fn() -> T>,
}

impl<T> NasDoc<T> {
    const fn new(label: &'static str, file: &'static str, mode: Mode, call: Call) -> Self {
        NasDoc {
            label,
            file,
            mode,
            call,
            _state: std::marker::PhantomData,
        }
    }
}

impl<T: Kept> NasDoc<T> {
    fn store<'d, D: Dir>(&self, dir: &'d mut D) -> DocStore<T, Lent<'d, D>> {
        T::daemon(DocStore::in_dir(
            PathBuf::from(self.file),
            Lent(dir),
            self.file,
            self.mode,
        ))
    }
}

impl<T: Kept> Protocol for NasDoc<T> {
    fn name(&self) -> &'static str {
        self.label
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let doc = Doc::parse(value)?;
        let store = self.store(dir);
        match self.call {
            Call::Save => {
                let mut state = T::default();
                state.put(&doc);
                store.save(&state)
            }
            Call::Update => store.update(|state| state.put(&doc)),
        }
        .map_err(nas_failure)
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        let state = self.store(dir).load().map_err(nas_failure)?;
        Doc::bytes_of(state.and_then(|s| s.newest()))
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        self.store(dir).start().map_err(nas_failure)
    }
}

/// A journaled NAS state as scenario values.
pub trait JournalKept<R>: Fold<R> + Serialize + DeserializeOwned + Default {
    /// The record that makes `doc` the newest value.
    fn record(doc: &Doc) -> R;
    /// The newest value the state holds.
    fn newest(&self) -> Option<Doc>;
}

/// Sessions live long enough to survive every compaction of a scenario.
const SESSION_TTL: u64 = 1 << 30;

impl JournalKept<nas::SessionEvent> for nas::Sessions {
    fn record(doc: &Doc) -> nas::SessionEvent {
        nas::SessionEvent::create(&format!("tok{}", doc.v), &doc.pad, doc.v, SESSION_TTL)
    }

    fn newest(&self) -> Option<Doc> {
        let s = self.sessions.values().max_by_key(|s| s.created_at)?;
        Some(doc(s.created_at, &s.user))
    }
}

impl JournalKept<nas::Hit> for nas::RateLimit {
    fn record(doc: &Doc) -> nas::Hit {
        nas::Hit {
            key: doc.pad.to_string(),
            at: doc.v,
        }
    }

    fn newest(&self) -> Option<Doc> {
        let (key, at) = self
            .hits
            .iter()
            .filter_map(|(k, times)| Some((k, *times.iter().max()?)))
            .max_by_key(|(_, at)| *at)?;
        Some(doc(at, &key.0))
    }
}

impl JournalKept<nas::Transaction> for nas::SnapDb {
    fn record(doc: &Doc) -> nas::Transaction {
        nas::Transaction {
            tx: format!("tx{}", doc.v),
            at: doc.v,
            kind: "manual".into(),
            snapshots: vec![doc.pad.to_string()],
        }
    }

    fn newest(&self) -> Option<Doc> {
        let t = self.transactions.last()?;
        Some(doc(t.at, t.snapshots.first()?))
    }
}

/// A NAS journaled store ([`Journaled`], group commit inside): `commit`
/// opens it as the daemon does at start (recovering), appends the value's
/// record twice (the second at the remembered tail) and, for every even
/// value, compacts, as the daemon's housekeeping does; `recover` opens it;
/// `load` is the lock-free [`fsatomic::JournalStore::read`].
#[derive(Debug)]
pub struct NasJournal<S, R> {
    /// The store's name in reports.
    pub label: &'static str,
    /// The snapshot's name.
    pub file: &'static str,
    /// The files' mode.
    pub mode: Mode,
    _state: std::marker::PhantomData<fn() -> (S, R)>,
}

impl<S, R> NasJournal<S, R> {
    const fn new(label: &'static str, file: &'static str, mode: Mode) -> Self {
        NasJournal {
            label,
            file,
            mode,
            _state: std::marker::PhantomData,
        }
    }
}

/// The working buffer a journaled store opens with in the scenarios:
/// small, so that opens and appends grow it.
const NAS_BUFFER: usize = 512;

impl<S, R> NasJournal<S, R>
where
    S: JournalKept<R>,
    R: Serialize + DeserializeOwned + 'static,
{
    fn open<'d, D: Dir>(&self, dir: &'d mut D) -> Result<Journaled<S, R, Lent<'d, D>>, Failure> {
        Journaled::in_dir(
            PathBuf::from(self.file),
            Lent(dir),
            self.file,
            self.mode,
            NAS_BUFFER,
        )
        .map_err(nas_failure)
    }
}

impl<S, R> Protocol for NasJournal<S, R>
where
    S: JournalKept<R>,
    R: Serialize + DeserializeOwned + 'static,
{
    fn name(&self) -> &'static str {
        self.label
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let doc = Doc::parse(value)?;
        let store = self.open(dir)?;
        store.append(S::record(&doc)).map_err(nas_failure)?;
        store.append(S::record(&doc)).map_err(nas_failure)?;
        if compacts(&doc) {
            store.compact().map_err(nas_failure)?;
        }
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        let mut buf = vec![0u8; 16 * 1024];
        let store = JournalStore::<S, R>::new(self.file, self.mode).map_err(|e| other("", e))?;
        Doc::bytes_of(store.read(dir, &mut buf)?.newest())
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        self.open(dir)?;
        Ok(())
    }
}

/// The seven stores of [`fsatomic_linux::nas::Nas`], with the files,
/// modes and calls the daemon uses.
pub mod stores {
    use super::{Call, NasDoc, NasJournal};
    use fsatomic::Mode;
    use fsatomic_linux::nas;

    /// `etc/nos/users.json`: Replace, 0600, an account added by `update`.
    pub fn users() -> NasDoc<nas::Users> {
        NasDoc::new("nas-users", "users.json", Mode::PRIVATE, Call::Update)
    }

    /// `var/lib/nos/state/firstboot.json`: Replace, 0600, `save`.
    pub fn firstboot() -> NasDoc<nas::FirstBoot> {
        NasDoc::new("nas-firstboot", "firstboot.json", Mode::PRIVATE, Call::Save)
    }

    /// `var/lib/nos/snapshots/index.json`: Replace, 0644, an entry added
    /// by `update`.
    pub fn updates() -> NasDoc<nas::UpdatesIndex> {
        NasDoc::new("nas-updates", "index.json", Mode::PUBLIC_READ, Call::Update)
    }

    /// The shares file: Replace, 0600, `save`.
    pub fn shares() -> NasDoc<nas::Shares> {
        NasDoc::new("nas-shares", "shares.json", Mode::PRIVATE, Call::Save)
    }

    /// `var/lib/nos/sessions.json`: Journal, 0600.
    pub fn sessions() -> NasJournal<nas::Sessions, nas::SessionEvent> {
        NasJournal::new("nas-sessions", "sessions.json", Mode::PRIVATE)
    }

    /// `var/lib/nos/ratelimit.json`: Journal, 0600.
    pub fn ratelimit() -> NasJournal<nas::RateLimit, nas::Hit> {
        NasJournal::new("nas-ratelimit", "ratelimit.json", Mode::PRIVATE)
    }

    /// `var/lib/nos/snapshots/snapdb.json`: Journal, 0644.
    pub fn snapdb() -> NasJournal<nas::SnapDb, nas::Transaction> {
        NasJournal::new("nas-snapdb", "snapdb.json", Mode::PUBLIC_READ)
    }
}
