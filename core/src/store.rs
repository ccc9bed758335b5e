//! Typed stores: [`Store<T>`], one document committed whole (Replace or
//! Slots), and [`JournalStore<S, R>`], a state `S` kept as a snapshot plus a
//! journal of records `R`.
//!
//! ```
//! use fsatomic::{Dir, Mode, Store, StoreError};
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Counter { hits: u32 }
//!
//! fn hit<D: Dir>(dir: &mut D) -> Result<u32, StoreError<D::Error>> {
//!     let store: Store<Counter> = Store::new("counter.json", Mode::PRIVATE);
//!     let mut buf = [0u8; 256];
//!     // Lock, load (or Default if absent), modify, commit durably, unlock.
//!     store.update(dir, &mut buf, |c| { c.hits += 1; c.hits })
//! }
//! ```

use core::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Mode;
use crate::error::CommitError;
use crate::error::{Corrupt, CorruptKind, LoadError, StoreError};
use crate::fs::Dir;
use crate::journal::{Append, Entry, Journal, Tail, Unsynced, VisitError};
use crate::name::NameError;
use crate::protocol::{self, Protocol};
use crate::{codec, convert, layout, lock, name, recover, schema};

/// A typed document stored in the file `name` of a directory.
///
/// A `Store` holds no file and no buffer: every call takes the directory
/// and a caller-provided buffer, which must hold the whole indented
/// document (and, when loading, room for the longest string after it).
#[derive(Debug, Clone, Copy)]
pub struct Store<'a, T> {
    name: &'a str,
    mode: Mode,
    protocol: Protocol,
    keep_previous: bool,
    schema: Option<u32>,
    now: Option<u64>,
    _value: PhantomData<fn() -> T>,
}

impl<'a, T> Store<'a, T> {
    /// A store of `T` in the file `name`, written with permissions `mode`
    /// by [`Protocol::Auto`] (Replace, or Slots where rename is not
    /// crash-atomic). The name is checked at each call.
    pub const fn new(name: &'a str, mode: Mode) -> Self {
        Store {
            name,
            mode,
            protocol: Protocol::Auto,
            keep_previous: false,
            schema: None,
            now: None,
            _value: PhantomData,
        }
    }

    /// The same store, committed with `protocol`.
    pub const fn with_protocol(self, protocol: Protocol) -> Self {
        Store { protocol, ..self }
    }

    /// The same store, keeping the previous version of the document for
    /// [`Store::load_previous`]. Slots keeps it anyway (the other slot);
    /// Replace keeps it as `NAME.prev` at the cost of one hard link and
    /// one rename per commit, and one directory flush more where names may
    /// land out of order ([`crate::history`]). Once a state keeps it, every
    /// store committing it does, asked or not.
    ///
    /// ```
    /// # fn demo<D: fsatomic::Dir>(dir: &mut D) -> Result<(), fsatomic::StoreError<D::Error>> {
    /// use fsatomic::{Mode, Store};
    /// let store: Store<u32> = Store::new("counter.json", Mode::PRIVATE).with_previous();
    /// let mut buf = [0u8; 64];
    /// store.save(dir, &mut buf, &1)?;
    /// store.save(dir, &mut buf, &2)?;
    /// assert_eq!(store.load_previous(dir, &mut buf)?, Some(1));
    /// # Ok(()) }
    /// ```
    pub const fn with_previous(self) -> Self {
        Store {
            keep_previous: true,
            ..self
        }
    }

    /// The same store, keeping documents of schema `version` in an
    /// envelope (`{"schema": N, "value": ...}`, [`crate::schema`]):
    /// [`Store::open`] migrates older documents, and a newer one is an
    /// error that leaves it untouched.
    ///
    /// ```
    /// # fn demo<D: fsatomic::Dir>(dir: &mut D) -> Result<(), fsatomic::StoreError<D::Error>> {
    /// use fsatomic::{Mode, Store};
    /// #[derive(serde::Serialize, serde::Deserialize, Default)]
    /// struct Net { addresses: heapless::Vec<u32, 4> } // schema 2
    /// #[derive(serde::Deserialize)]
    /// struct NetV1 { address: u32 }                     // schema 1
    ///
    /// let store: Store<Net> = Store::new("net.json", Mode::PRIVATE).with_schema(2);
    /// let mut buf = [0u8; 256];
    /// let net = store.open(dir, &mut buf, |mut old| {
    ///     let v1: NetV1 = old.decode().map_err(|_| "not a schema-1 network")?;
    ///     let mut addresses = heapless::Vec::new();
    ///     let _ = addresses.push(v1.address);
    ///     Ok(Net { addresses })
    /// })?; // the schema-1 document is now the previous version
    /// # let _ = net; Ok(()) }
    /// ```
    pub const fn with_schema(self, version: u32) -> Self {
        Store {
            schema: Some(version),
            ..self
        }
    }

    /// The same store, told the time `now` on the clock tentative
    /// versions' deadlines are given in ([`Store::save_tentative_until`]):
    /// [`Store::open`]'s recovery leaves a tentative version waiting while
    /// its deadline is later. Without it, `open` rolls every unconfirmed
    /// tentative version back.
    pub const fn with_clock(self, now: u64) -> Self {
        Store {
            now: Some(now),
            ..self
        }
    }

    /// The protocol asked for (see [`Protocol::resolve`] for the one used).
    pub const fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The file's name.
    pub const fn name(&self) -> &'a str {
        self.name
    }

    /// The permissions every commit gives the file.
    pub const fn mode(&self) -> Mode {
        self.mode
    }
}

impl<T: Serialize + DeserializeOwned> Store<'_, T> {
    /// Load the document: `Ok(None)` if the file does not exist.
    ///
    /// Takes no lock and changes nothing on disk. An empty, cut-short or
    /// unparsable file is [`LoadError::Corrupt`] with the byte offset.
    pub fn load<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<Option<T>, StoreError<D::Error>> {
        self.check_name()?;
        let on_disk = convert::on_disk(dir, self.name, buf)?;
        let protocol = self.protocol_for(on_disk)?;
        self.read_with(dir, buf, protocol)
    }

    /// Load the previous version of the document: the last one committed
    /// before the current one (the confirmed one while a tentative version
    /// waits). `Ok(None)` if there is none: the state keeps none
    /// ([`Store::with_previous`]), has had one version only, or a power
    /// cut during a Slots commit tore the slot that held it. Never the
    /// current version. Takes no lock and changes nothing on disk.
    pub fn load_previous<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<Option<T>, StoreError<D::Error>> {
        self.check_name()?;
        let on_disk = convert::on_disk(dir, self.name, buf)?;
        let protocol = self.protocol_for(on_disk)?;
        let Some(len) = protocol::read_previous(dir, self.name, buf, protocol)? else {
            return Ok(None);
        };
        self.decode(buf, len).map(Some)
    }

    /// Read and decode the document with `protocol`, already decided.
    fn read_with<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        protocol: Protocol,
    ) -> Result<Option<T>, StoreError<D::Error>> {
        let Some(len) = protocol::read(dir, self.name, buf, protocol)? else {
            return Ok(None);
        };
        self.decode(buf, len).map(Some)
    }

    /// Decode the document in `buf[..len]`: the value of its envelope, of
    /// exactly the store's schema, for a store with one.
    fn decode<E>(&self, buf: &mut [u8], len: usize) -> Result<T, StoreError<E>> {
        let Some(known) = self.schema else {
            return Ok(codec::decode::<T, E>(self.name, buf, len)?);
        };
        let text = buf.get(..len).unwrap_or_default();
        let (found, value) = schema::peek(text);
        if found != u64::from(known) {
            return Err(StoreError::Load(if found > u64::from(known) {
                schema::newer(self.name, found, known, text)
            } else {
                LoadError::Unsupported {
                    file: name::owned(self.name),
                    offset: 0,
                    what: crate::error::Unsupported::OlderSchema { found, known },
                }
            }));
        }
        let n = value.len();
        buf.copy_within(value, 0);
        Ok(codec::decode::<T, E>(self.name, buf, n)?)
    }

    /// Open the store, as a program does at start: under the writers' lock,
    /// boot-time recovery ([`crate::recover::recover_locked`]: orphans
    /// swept, a cut commit that keeps the previous version finished, an
    /// unconfirmed tentative version rolled back — unless its deadline is
    /// later than [`Store::with_clock`]'s time), then read the document
    /// and, if it was written with an older schema than the store's
    /// ([`Store::with_schema`]; a document without one is schema 0), bring
    /// it up to date with `migrate` and commit the result, keeping the
    /// pre-migration document as the previous version
    /// ([`Store::load_previous`]). Returns the document, `Ok(None)` if
    /// there is none. A document of a newer schema is
    /// [`crate::error::Unsupported::NewerSchema`], and a migration that
    /// refuses is [`StoreError::Migrate`]: both leave the file untouched.
    /// Without a schema, this is [`Store::load`] under the lock.
    ///
    /// **Power cut during the call:** the migration is one commit that
    /// keeps the previous version: the old document stays current, or the
    /// migrated one is, with the old one as its previous version.
    pub fn open<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        migrate: impl FnOnce(schema::Old<'_>) -> Result<T, &'static str>,
    ) -> Result<Option<T>, StoreError<D::Error>> {
        let _guard = self.lock(dir)?;
        recover::recover_locked(dir, self.name, self.now)?;
        let settled = self.settle(dir, buf)?;
        let Some(len) = protocol::read(dir, self.name, buf, settled.protocol)? else {
            return Ok(None);
        };
        let text = buf.get(..len).unwrap_or_default();
        let (found, value) = schema::peek(text);
        match self.schema {
            Some(known) if found < u64::from(known) => {
                let keep = crate::history::plan(self.name, &settled.files, true)?;
                let n = value.len();
                buf.copy_within(value, 0);
                let migrated =
                    migrate(schema::Old::new(found, self.name, buf, n)).map_err(|why| {
                        StoreError::Migrate {
                            file: name::owned(self.name),
                            from: found,
                            why,
                        }
                    })?;
                let len = self.encode(&migrated, buf)?;
                self.commit(dir, buf, len, settled.protocol, keep)?;
                Ok(Some(migrated))
            }
            _ => self.decode(buf, len).map(Some),
        }
    }

    /// The protocol a call uses: the one the state is on, if it has files
    /// (a state is never moved silently: asking for another is
    /// [`CommitError::WrongProtocol`]), else the store's.
    fn protocol_for<E>(&self, on_disk: Option<Protocol>) -> Result<Protocol, StoreError<E>> {
        match on_disk {
            None => Ok(self.protocol),
            Some(p) if self.protocol == Protocol::Auto || self.protocol == p => Ok(p),
            Some(_) => Err(StoreError::Commit(CommitError::WrongProtocol {
                file: name::owned(self.name),
                protocol: self.protocol,
            })),
        }
    }

    /// Under the lock: the protocol to commit with, after finishing a move
    /// between Replace and Slots that a power cut interrupted (which uses
    /// `buf`: returns whether it did).
    fn settle<D: Dir>(&self, dir: &mut D, buf: &mut [u8]) -> Result<Settled, StoreError<D::Error>> {
        let files = layout::Files::probe(dir, self.name)?;
        let (protocol, used) = match files.protocol() {
            Ok(on_disk) => (self.protocol_for(on_disk)?, false),
            Err(_) => {
                let len = buf.len();
                let on_disk =
                    convert::convert(dir, self.name, Protocol::Auto, self.mode, buf, len)?;
                (self.protocol_for(on_disk)?, true)
            }
        };
        Ok(Settled {
            protocol,
            used,
            files,
        })
    }

    /// Replace the document with `value`, durably.
    ///
    /// The value is encoded into `buf` before anything touches the disk;
    /// then, under the writers' lock, the document is committed with the
    /// protocol the state is on. Orphaned temporary files a crash left are
    /// not swept here but by [`recover::recover`] at boot. Slot files created
    /// by the first Slots commit are sized for documents as large as `buf`.
    pub fn save<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        value: &T,
    ) -> Result<(), StoreError<D::Error>> {
        let mut len = self.encode(value, buf)?;
        let _guard = self.lock(dir)?;
        let settled = self.settle(dir, buf)?;
        let keep = crate::history::plan(self.name, &settled.files, self.keep_previous)?;
        if settled.used {
            len = self.encode(value, buf)?;
        }
        self.commit(dir, buf, len, settled.protocol, keep)
    }

    /// Commit `value` as a tentative version (commit-confirmed,
    /// [`crate::history`]): current for every reader once this returns,
    /// and rolled back to the confirmed version by the next boot-time
    /// recovery ([`crate::recover::recover`]) unless [`Store::confirm`]
    /// runs first. A tentative version already waiting is replaced.
    /// Replace only (Slots cannot rename: [`CommitError::Tentative`]).
    ///
    /// ```
    /// # fn demo<D: fsatomic::Dir>(dir: &mut D) -> Result<(), fsatomic::StoreError<D::Error>> {
    /// use fsatomic::{Mode, Store};
    /// let net: Store<u32> = Store::new("network.json", Mode::PRIVATE);
    /// let mut buf = [0u8; 64];
    /// net.save(dir, &mut buf, &1)?;
    /// net.save_tentative(dir, &mut buf, &2)?; // current now, until a reboot
    /// assert_eq!(net.load(dir, &mut buf)?, Some(2));
    /// // ... the box still answers on the new address:
    /// net.confirm(dir)?;
    /// # Ok(()) }
    /// ```
    pub fn save_tentative<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        value: &T,
    ) -> Result<(), StoreError<D::Error>> {
        self.save_tentative_until(dir, buf, value, None)
    }

    /// [`Store::save_tentative`] with a `deadline`, in seconds on a clock
    /// that does not restart with the board (an RTC, a network time the
    /// caller trusts): until then, recovery given that clock
    /// ([`crate::recover::recover_at`]) leaves the tentative version
    /// waiting — through reboots — for [`Store::confirm`]; from then on,
    /// or given no clock, it rolls it back. `None` is
    /// [`Store::save_tentative`].
    pub fn save_tentative_until<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        value: &T,
        deadline: Option<u64>,
    ) -> Result<(), StoreError<D::Error>> {
        let mut len = self.encode(value, buf)?;
        let _guard = self.lock(dir)?;
        let settled = self.settle(dir, buf)?;
        if settled.protocol.resolve(dir.capabilities()) != Protocol::Replace {
            return Err(StoreError::Commit(CommitError::Tentative {
                file: name::owned(self.name),
                why: "tentative versions need the Replace protocol (a crash-atomic rename); this state is not on it",
            }));
        }
        if settled.used {
            len = self.encode(value, buf)?;
        }
        let data = buf.get(..len).unwrap_or_default();
        Ok(crate::history::commit_tentative(
            dir, self.name, data, self.mode, deadline,
        )?)
    }

    /// Make the tentative version the confirmed one (one rename, one
    /// directory flush; the version it replaces kept as the previous one
    /// where the state keeps it). `Ok(false)` if none was waiting.
    pub fn confirm<D: Dir>(&self, dir: &mut D) -> Result<bool, StoreError<D::Error>> {
        let _guard = self.lock(dir)?;
        Ok(crate::history::confirm(
            dir,
            self.name,
            self.mode,
            self.keep_previous,
        )?)
    }

    /// Drop the tentative version, so that the confirmed one is current
    /// again (what boot-time recovery does). `Ok(false)` if none was
    /// waiting.
    pub fn rollback<D: Dir>(&self, dir: &mut D) -> Result<bool, StoreError<D::Error>> {
        let _guard = self.lock(dir)?;
        Ok(crate::history::rollback(dir, self.name)?)
    }

    /// Read, modify and write the document under the writers' lock.
    ///
    /// Takes the lock, loads the document (or
    /// `T::default()` if the file is absent), calls `f`, commits the result
    /// with the store's protocol, and
    /// releases the lock. Returns what `f` returned. A
    /// corrupt file fails the call before `f` runs and is left untouched.
    pub fn update<D: Dir, R>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, StoreError<D::Error>>
    where
        T: Default,
    {
        let _guard = self.lock(dir)?;
        // `settle` already looked at the files: read with what it found,
        // without probing them again.
        let settled = self.settle(dir, buf)?;
        let keep = crate::history::plan(self.name, &settled.files, self.keep_previous)?;
        let mut value = self
            .read_with(dir, buf, settled.protocol)?
            .unwrap_or_default();
        let out = f(&mut value);
        let len = self.encode(&value, buf)?;
        self.commit(dir, buf, len, settled.protocol, keep)?;
        Ok(out)
    }

    fn encode<E>(&self, value: &T, buf: &mut [u8]) -> Result<usize, StoreError<E>> {
        match self.schema {
            Some(schema) => codec::encode(&schema::Envelope { schema, value }, buf),
            None => codec::encode(value, buf),
        }
        .map_err(|error| StoreError::Encode {
            file: name::owned(self.name),
            error,
        })
    }

    /// A refused name is the caller's mistake: [`StoreError::Name`], from
    /// every call, before any I/O.
    fn check_name<E>(&self) -> Result<(), StoreError<E>> {
        name::checked(self.name)
    }

    /// Take the writers' lock, after checking the name.
    fn lock<D: Dir>(&self, dir: &mut D) -> Result<D::Lock, StoreError<D::Error>> {
        self.check_name()?;
        Ok(lock::lock(dir, self.name, self.mode)?)
    }

    /// Under the lock: commit `buf[..len]`. No orphan sweep: listing the
    /// directory on every commit made a commit's cost grow with the
    /// directory (3.5 ms beside 10,000 files against 0.34 ms alone), and
    /// orphans exist only after a crash, so they are swept where a crash
    /// is behind: [`recover::recover`] at boot, [`JournalStore::open`],
    /// `fsatomic check --repair` (`docs/design.md` §9).
    fn commit<D: Dir>(
        &self,
        dir: &mut D,
        buf: &[u8],
        len: usize,
        protocol: Protocol,
        keep_previous: bool,
    ) -> Result<(), StoreError<D::Error>> {
        let data = buf.get(..len).unwrap_or_default();
        Ok(protocol::Commit::new(
            dir.capabilities(),
            self.name,
            data,
            self.mode,
            protocol,
            buf.len(),
        )?
        .keep_previous(keep_previous)
        .run(dir)?)
    }
}

/// What a commit under the lock found on disk ([`Store::settle`]).
struct Settled {
    /// The protocol to commit with.
    protocol: Protocol,
    /// Finishing an interrupted move between protocols used the buffer.
    used: bool,
    /// The state's files, as found before the move.
    files: layout::Files,
}

/// How records change a journaled state.
pub trait Fold<R> {
    /// Apply the record with sequence number `seq`.
    fn apply(&mut self, seq: u64, record: &R);

    /// Drop what no longer needs keeping (expired sessions, old hits)
    /// before the state is written as a snapshot. The default keeps all.
    fn prune(&mut self) {}
}

/// The most records one [`JournalStore::append_batch`] takes.
pub const MAX_BATCH: usize = 64;

/// A state `S` kept as a snapshot plus a journal of records `R`
/// ([`crate::journal`]): each append is one record and one flush, whatever
/// the length of the history.
///
/// The store keeps the state in memory and the journal's [`Tail`], so an
/// append neither reads nor rewrites what came before; if another process
/// appended in between (the lock serialises them), its records are read and
/// folded in first. When the journal outgrows both a threshold and the
/// snapshot, the next append first compacts it: [`Fold::prune`], snapshot,
/// empty journal. Tying compaction to the snapshot's size keeps its cost
/// per record constant however large the state grows.
///
/// ```
/// use fsatomic::{Dir, Mode, JournalStore, StoreError, store::Fold};
/// #[derive(serde::Serialize, serde::Deserialize, Default)]
/// struct Hits { total: u64 }
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Hit { ip: u32 }
/// impl Fold<Hit> for Hits {
///     fn apply(&mut self, _seq: u64, _hit: &Hit) { self.total += 1; }
/// }
/// fn hit<D: Dir>(dir: &mut D) -> Result<u64, StoreError<D::Error>> {
///     let mut store = JournalStore::<Hits, Hit>::new("ratelimit.json", Mode::PRIVATE).unwrap();
///     let mut buf = [0u8; 1024];
///     store.open(dir, &mut buf)?;                  // lock, recover, replay
///     store.append(dir, &mut buf, &Hit { ip: 1 })?; // durable on return
///     Ok(store.state().total)
/// }
/// ```
#[derive(Debug)]
pub struct JournalStore<'a, S, R> {
    journal: Journal<'a>,
    state: S,
    tail: Option<Tail>,
    compact_bytes: u64,
    _record: PhantomData<fn(&R)>,
}

impl<'a, S: Default, R> JournalStore<'a, S, R> {
    /// A journaled store of `name` (`name` and `name.journal`), with
    /// permissions `mode`. Compacts when the journal passes 64 KiB and the
    /// snapshot's size.
    pub fn new(name: &'a str, mode: Mode) -> Result<Self, NameError> {
        Ok(JournalStore {
            journal: Journal::new(name, mode)?,
            state: S::default(),
            tail: None,
            compact_bytes: 64 * 1024,
            _record: PhantomData,
        })
    }

    /// Compact when the journal file passes `bytes` (and the snapshot's
    /// size).
    pub fn compact_after(mut self, bytes: u64) -> Self {
        self.compact_bytes = bytes;
        self
    }

    /// The state as of the last open, append or compaction.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Where the journal ends, once opened.
    pub fn tail(&self) -> Option<Tail> {
        self.tail
    }

    /// The underlying journal.
    pub fn journal(&self) -> &Journal<'a> {
        &self.journal
    }
}

impl<S, R> JournalStore<'_, S, R>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
{
    /// Take the writers' lock, recover the files (cut a torn tail, finish
    /// an interrupted compaction, create the journal), and replay them into
    /// a fresh state. `buf` must hold the snapshot file and, apart, the
    /// largest record.
    pub fn open<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<(), StoreError<D::Error>> {
        let _guard = lock::lock(dir, self.journal.name(), self.journal.mode())?;
        self.recover_locked(dir, buf)
    }

    /// Read the state on disk without the lock and without changing
    /// anything (a torn tail is ignored, not cut). Independent of the state
    /// held in memory.
    pub fn read<D: Dir>(&self, dir: &mut D, buf: &mut [u8]) -> Result<S, StoreError<D::Error>> {
        let mut state = S::default();
        let jname = self.journal.journal_name();
        self.journal.replay(dir, buf, &mut |entry, scratch| {
            fold(&mut state, jname, entry, scratch)
        })?;
        Ok(state)
    }

    /// Read the previous version of the state on disk — as it was before
    /// the last append (or batch) — without the lock and without changing
    /// anything. `Ok(None)` if there is none: one append since the state
    /// began, or none since the last compaction (which keeps no history:
    /// the append after it has the snapshot as its previous version).
    /// Never the current version.
    pub fn read_previous<D: Dir>(
        &self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<Option<S>, StoreError<D::Error>>
    where
        S: Clone,
    {
        let mut state = S::default();
        // `have`: `state` is a version (a snapshot, or a whole append).
        let (mut have, mut previous, mut last) = (false, None, None::<u64>);
        let jname = self.journal.journal_name();
        self.journal.replay(dir, buf, &mut |entry, scratch| {
            match entry {
                Entry::Snapshot { .. } => (have, previous, last) = (true, None, None),
                Entry::Record { seq, index, .. } => {
                    if last.is_some_and(|l| seq <= l) {
                        // The replay started over without a snapshot.
                        (state, have, previous) = (S::default(), false, None);
                    }
                    last = Some(seq);
                    if index == 0 {
                        previous = have.then(|| state.clone());
                        have = true;
                    }
                }
            }
            fold(&mut state, jname, entry, scratch)
        })?;
        Ok(previous)
    }

    /// Append `record` durably (one flush) and fold it into the state;
    /// return its sequence number.
    pub fn append<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
        record: &R,
    ) -> Result<u64, StoreError<D::Error>> {
        self.append_batch(dir, buf, core::slice::from_ref(record))
    }

    /// Append up to [`MAX_BATCH`] records with one flush, and fold them in
    /// order; return the sequence number of the first. This is the
    /// primitive group commit is built on.
    pub fn append_batch<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
        records: &[R],
    ) -> Result<u64, StoreError<D::Error>> {
        let _guard = self.lock(dir)?;
        let mut written = self.write_batch(dir, buf, records, 0)?;
        if let Err(e) = written.sync() {
            self.abandon_batch(written);
            return Err(e.into());
        }
        let first = written.start().next_seq;
        self.fold_batch(first, records);
        Ok(first)
    }

    /// Take the writers' lock of this store (held until the guard drops),
    /// for [`JournalStore::write_batch`].
    pub fn lock<D: Dir>(&self, dir: &mut D) -> Result<D::Lock, StoreError<D::Error>> {
        Ok(lock::lock(dir, self.journal.name(), self.journal.mode())?)
    }

    /// Under the writers' lock ([`JournalStore::lock`], held by the
    /// caller): write up to [`MAX_BATCH`] records as one batch after the
    /// journal's tail, and stop before its flush. The batch is durable
    /// once the returned [`Unsynced::sync`] returns `Ok`; then fold it with
    /// [`JournalStore::fold_batch`]. Until then the state in memory does
    /// not hold it, and the store's tail is already past it, so that the
    /// next batch can be written while this one is flushed (pipelined
    /// group commit, `group::Pipeline`). If the flush fails, call
    /// [`JournalStore::abandon_batch`]: every batch written after it is lost
    /// with it.
    ///
    /// `unflushed`: how many records of batches written before this one
    /// are not known to be durable (0 when none is in flight). This batch's
    /// records are numbered after them, so that recovery treats a power
    /// cut that tore one of those and kept one of these as the torn tail
    /// it is; together they must not exceed
    /// [`MAX_UNFLUSHED`](crate::journal::MAX_UNFLUSHED). With batches in
    /// flight, the journal must also end where this store left it (the
    /// caller has held the lock since): no compaction runs (it folds the
    /// whole state, which lacks those batches) and another writer's
    /// records are an error, not something to catch up with.
    pub fn write_batch<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
        records: &[R],
        unflushed: usize,
    ) -> Result<Unsynced<D::File>, StoreError<D::Error>> {
        let room = crate::journal::MAX_UNFLUSHED.saturating_sub(unflushed);
        if records.len() > MAX_BATCH.min(room) {
            return Err(StoreError::TooManyRecords {
                file: name::owned(self.journal.name()),
                given: unflushed.saturating_add(records.len()),
                max: MAX_BATCH.min(room),
            });
        }
        let in_flight = unflushed > 0;
        if self.tail.is_none() {
            if in_flight {
                return Err(StoreError::Load(LoadError::LogicBug(
                    "batches in flight over a journal whose end is unknown",
                )));
            }
            self.recover_locked(dir, buf)?;
        }
        // The fast path appends at the remembered tail; the append itself
        // checks that nobody else appended or compacted meanwhile, and only
        // then (Stale) do we read their records and try again.
        for _ in 0..3 {
            if !in_flight
                && self
                    .tail
                    .is_some_and(|t| t.end > self.compact_bytes.max(t.snapshot_bytes))
            {
                // Compaction folds the whole state: bring it up to date
                // first (rare, so the extra reads do not matter).
                self.catch_up_locked(dir, buf)?;
                self.compact_locked(dir, buf)?;
            }
            let tail = self
                .tail
                .ok_or(StoreError::Load(LoadError::LogicBug("journal not open")))?;
            let written = {
                let mut ranges = heapless::Vec::<core::ops::Range<usize>, MAX_BATCH>::new();
                let mut at = 0;
                for record in records {
                    let dst = buf.get_mut(at..).unwrap_or_default();
                    let n = serde_json_core::to_slice(record, dst)
                        .map_err(|_| self.encode_error(buf.len()))?;
                    let _ = ranges.push(at..at + n);
                    at += n;
                }
                let mut payloads = heapless::Vec::<&[u8], MAX_BATCH>::new();
                for r in ranges {
                    let _ = payloads.push(buf.get(r).unwrap_or_default());
                }
                Append::<D>::new(&self.journal, tail, &payloads)
                    .and_then(|a| a.after(unflushed))
                    .and_then(|a| a.write(dir))
            };
            match written {
                Ok(written) => {
                    self.tail = Some(written.tail());
                    return Ok(written);
                }
                Err(crate::CommitError::Stale { .. }) if in_flight => {
                    self.tail = None;
                    return Err(StoreError::Load(LoadError::LogicBug(
                        "the journal changed under the writers' lock while batches were in flight",
                    )));
                }
                Err(crate::CommitError::Stale { .. }) => self.catch_up_locked(dir, buf)?,
                Err(e) => {
                    // The journal's end is unknown now: read it again next time.
                    self.tail = None;
                    return Err(e.into());
                }
            }
        }
        Err(StoreError::Load(LoadError::LogicBug(
            "the journal kept changing under the writers' lock",
        )))
    }

    /// Fold a batch written by [`JournalStore::write_batch`], once it is
    /// durable, into the state: `records` in order, the first at sequence
    /// number `first`.
    pub fn fold_batch(&mut self, first: u64, records: &[R]) {
        for (i, record) in records.iter().enumerate() {
            self.state.apply(first + i as u64, record);
        }
    }

    /// After the flush of a batch written by [`JournalStore::write_batch`]
    /// failed: cut it, and whatever was written after it, off the journal
    /// ([`Unsynced::abandon`], best effort), and forget where the journal
    /// ends, so that the next write under the lock recovers the files and
    /// replays them into a fresh state first.
    pub fn abandon_batch<F: crate::File>(&mut self, written: Unsynced<F>) {
        written.abandon();
        self.tail = None;
    }

    /// Under the lock: prune, write the state as the snapshot, and start an
    /// empty journal.
    pub fn compact<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<(), StoreError<D::Error>> {
        let _guard = lock::lock(dir, self.journal.name(), self.journal.mode())?;
        self.catch_up_locked(dir, buf)?;
        self.compact_locked(dir, buf)
    }

    fn encode_error<E>(&self, capacity: usize) -> StoreError<E> {
        StoreError::Encode {
            file: name::owned(self.journal.name()),
            error: crate::EncodeError::BufferTooSmall {
                needed: None,
                capacity,
            },
        }
    }

    fn recover_locked<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<(), StoreError<D::Error>> {
        recover::sweep_orphans(dir, Some(self.journal.name()))?;
        let JournalStore { journal, state, .. } = self;
        *state = S::default();
        let jname = journal.journal_name();
        let replay = journal
            .recover(dir, buf, &mut |entry, scratch| {
                fold(state, jname, entry, scratch)
            })
            .map_err(StoreError::Recover)?;
        self.tail = Some(replay.tail);
        Ok(())
    }

    fn catch_up_locked<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<(), StoreError<D::Error>> {
        let Some(mut tail) = self.tail else {
            return self.recover_locked(dir, buf);
        };
        let JournalStore { journal, state, .. } = self;
        let jname = journal.journal_name();
        let current = journal
            .catch_up(dir, buf, &mut tail, &mut |entry, scratch| {
                fold(state, jname, entry, scratch)
            })
            .map_err(StoreError::Recover)?;
        if !current {
            return self.recover_locked(dir, buf);
        }
        self.tail = Some(tail);
        Ok(())
    }

    fn compact_locked<D: Dir>(
        &mut self,
        dir: &mut D,
        buf: &mut [u8],
    ) -> Result<(), StoreError<D::Error>> {
        let mut tail = self
            .tail
            .ok_or(StoreError::Load(LoadError::LogicBug("journal not open")))?;
        self.state.prune();
        let len = serde_json_core::to_slice(&self.state, buf)
            .map_err(|_| self.encode_error(buf.len()))?;
        self.journal
            .compact(dir, &mut tail, buf, len)
            .map_err(|e| match e {
                // The snapshot is wrapped and indented in `buf` before
                // anything is written: not fitting is the buffer's fault,
                // and a caller that grows its buffer (group commit) must
                // see it as such.
                crate::CommitError::TooLarge { size, capacity, .. } => StoreError::Encode {
                    file: name::owned(self.journal.name()),
                    error: crate::EncodeError::BufferTooSmall {
                        needed: Some(size),
                        capacity,
                    },
                },
                other => other.into(),
            })?;
        self.tail = Some(tail);
        Ok(())
    }
}

/// Fold one replayed entry into `state`. An entry whose strings do not
/// unescape into the scratch space is [`VisitError::TooLarge`] (a larger
/// buffer reads it), never corrupt.
fn fold<S, R>(
    state: &mut S,
    jname: &str,
    entry: Entry<'_>,
    scratch: &mut [u8],
) -> Result<(), VisitError>
where
    S: Fold<R> + DeserializeOwned,
    R: DeserializeOwned,
{
    let capacity = scratch.len();
    let refused = |e: serde_json_core::de::Error, size: usize, offset: u64, what| match e {
        serde_json_core::de::Error::EscapedStringIsTooLong => VisitError::TooLarge {
            file: name::owned(jname),
            size: size as u64,
            capacity,
        },
        _ => VisitError::Corrupt(Corrupt::new(jname, offset, CorruptKind::Shape(what))),
    };
    match entry {
        Entry::Snapshot { state: text, .. } => {
            *state = serde_json_core::from_slice_escaped::<S>(text, scratch)
                .map_err(|e| {
                    refused(
                        e,
                        text.len(),
                        0,
                        "the snapshot does not match the state type",
                    )
                })?
                .0;
        }
        Entry::Record {
            seq,
            payload,
            offset,
            ..
        } => {
            let record = serde_json_core::from_slice_escaped::<R>(payload, scratch)
                .map_err(|e| {
                    refused(
                        e,
                        payload.len(),
                        offset,
                        "a record does not match the record type",
                    )
                })?
                .0;
            state.apply(seq, &record);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::test_dir::MemDir;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq, Clone)]
    struct Log {
        total: u64,
        last: heapless::Vec<u32, 4>,
        seqs: u64,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Hit {
        ip: u32,
    }

    impl Fold<Hit> for Log {
        fn apply(&mut self, seq: u64, hit: &Hit) {
            assert_eq!(seq, self.seqs + 1, "records arrive in order without gaps");
            self.seqs = seq;
            self.total += 1;
            if self.last.is_full() {
                self.last.remove(0);
            }
            let _ = self.last.push(hit.ip);
        }
        fn prune(&mut self) {
            self.last.truncate(2);
        }
    }

    type Hits = JournalStore<'static, Log, Hit>;

    #[test]
    fn journal_store_appends_compacts_and_reopens() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 512];
        let mut store = Hits::new("hits.json", Mode::PRIVATE)
            .unwrap()
            .compact_after(200);
        store.open(&mut dir, &mut buf).unwrap();
        for ip in 0..20 {
            let seq = store.append(&mut dir, &mut buf, &Hit { ip }).unwrap();
            assert_eq!(seq, u64::from(ip) + 1);
        }
        assert_eq!(store.state().total, 20);
        assert!(
            dir.get("hits.json").is_some(),
            "compaction wrote a snapshot"
        );
        assert!(dir.get("hits.json.journal").unwrap().len() <= 200 + 64);
        let read = store.read(&mut dir, &mut buf).unwrap();
        assert_eq!(read.total, 20);
        assert_eq!(read.seqs, 20);
        let mut again = Hits::new("hits.json", Mode::PRIVATE).unwrap();
        again.open(&mut dir, &mut buf).unwrap();
        assert_eq!(again.state().total, 20);
        assert_eq!(again.tail(), store.tail());
    }

    #[test]
    fn a_journal_s_previous_version_is_the_state_before_its_last_append() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 512];
        let mut store = Hits::new("hits.json", Mode::PRIVATE).unwrap();
        store.open(&mut dir, &mut buf).unwrap();
        assert!(store.read_previous(&mut dir, &mut buf).unwrap().is_none());
        store.append(&mut dir, &mut buf, &Hit { ip: 1 }).unwrap();
        assert!(store.read_previous(&mut dir, &mut buf).unwrap().is_none());
        store
            .append_batch(&mut dir, &mut buf, &[Hit { ip: 2 }, Hit { ip: 3 }])
            .unwrap();
        let prev = store.read_previous(&mut dir, &mut buf).unwrap().unwrap();
        assert_eq!(prev.total, 1, "the batch is one version");
        store.compact(&mut dir, &mut buf).unwrap();
        assert!(store.read_previous(&mut dir, &mut buf).unwrap().is_none());
        store.append(&mut dir, &mut buf, &Hit { ip: 4 }).unwrap();
        let prev = store.read_previous(&mut dir, &mut buf).unwrap().unwrap();
        assert_eq!(prev.total, 3, "the snapshot");
    }

    #[test]
    fn a_snapshot_that_only_fits_compact_is_a_buffer_error_and_writes_nothing() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 512];
        let mut store = Hits::new("hits.json", Mode::PRIVATE).unwrap();
        store.open(&mut dir, &mut buf).unwrap();
        for ip in 0..3 {
            store.append(&mut dir, &mut buf, &Hit { ip }).unwrap();
        }
        let journal = dir.get("hits.json.journal").unwrap().to_vec();
        // The state encodes to 34 bytes and wraps to 52 compact; indented
        // it needs more than 60.
        let mut small = [0u8; 60];
        let err = store.compact(&mut dir, &mut small).unwrap_err();
        assert!(err.is_buffer_too_small(), "{err}");
        assert!(
            matches!(
                err,
                StoreError::Encode {
                    error: crate::EncodeError::BufferTooSmall { needed: Some(n), capacity: 60 },
                    ..
                } if n > 60
            ),
            "{err:?}"
        );
        assert_eq!(dir.get("hits.json"), None, "a snapshot was written");
        assert_eq!(dir.get("hits.json.journal").unwrap(), &journal[..]);
        store.compact(&mut dir, &mut buf).unwrap();
        assert_eq!(store.read(&mut dir, &mut buf).unwrap().total, 3);
    }

    #[test]
    fn two_writers_catch_up_with_each_other() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 512];
        let mut a = Hits::new("hits.json", Mode::PRIVATE)
            .unwrap()
            .compact_after(300);
        let mut b = Hits::new("hits.json", Mode::PRIVATE)
            .unwrap()
            .compact_after(300);
        a.open(&mut dir, &mut buf).unwrap();
        b.open(&mut dir, &mut buf).unwrap();
        for i in 0..30u32 {
            let w = if i % 3 == 0 { &mut a } else { &mut b };
            w.append(&mut dir, &mut buf, &Hit { ip: i }).unwrap();
        }
        a.append_batch(&mut dir, &mut buf, &[Hit { ip: 100 }, Hit { ip: 101 }])
            .unwrap();
        b.compact(&mut dir, &mut buf).unwrap();
        a.append(&mut dir, &mut buf, &Hit { ip: 102 }).unwrap();
        assert_eq!(a.state().total, 33);
        assert_eq!(a.state().seqs, 33);
        let read = b.read(&mut dir, &mut buf).unwrap();
        assert_eq!(read.total, 33);
    }

    #[derive(Serialize, Deserialize, Default, Debug)]
    struct Names {
        n: u32,
    }

    #[derive(Serialize, Deserialize, Debug)]
    struct Name {
        s: heapless::String<256>,
    }

    impl Fold<Name> for Names {
        fn apply(&mut self, _seq: u64, _name: &Name) {
            self.n += 1;
        }
    }

    #[test]
    fn a_record_whose_escapes_do_not_fit_the_scratch_is_too_large_not_corrupt() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 1024];
        let mut store = JournalStore::<Names, Name>::new("names.json", Mode::PRIVATE).unwrap();
        store.open(&mut dir, &mut buf).unwrap();
        let mut s = heapless::String::<256>::new();
        for _ in 0..40 {
            s.push_str("a\"b").unwrap();
        }
        store.append(&mut dir, &mut buf, &Name { s }).unwrap();
        // The record is 168 bytes with its escapes: a 200-byte buffer
        // holds it, but leaves too little scratch space to unescape it.
        let mut small = [0u8; 200];
        let err = store.read(&mut dir, &mut small).unwrap_err();
        assert!(err.is_buffer_too_small(), "{err:?}");
        assert!(
            matches!(err, StoreError::Load(LoadError::TooLarge { .. })),
            "{err:?}"
        );
        assert_eq!(store.read(&mut dir, &mut buf).unwrap().n, 1);
    }

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    struct Counter {
        n: u32,
    }

    #[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
    struct Net {
        addresses: heapless::Vec<u32, 4>,
    }

    #[derive(Deserialize)]
    struct NetV1 {
        address: u32,
    }

    fn migrate(mut old: schema::Old<'_>) -> Result<Net, &'static str> {
        assert_eq!(old.schema, 0);
        let v1: NetV1 = old.decode().map_err(|_| "not a network")?;
        let mut addresses = heapless::Vec::new();
        let _ = addresses.push(v1.address);
        Ok(Net { addresses })
    }

    #[test]
    fn open_migrates_an_older_schema_and_keeps_it_as_the_previous_version() {
        for fat in [false, true] {
            let mut dir = MemDir {
                fat,
                ..MemDir::default()
            };
            let mut buf = [0u8; 256];
            // A document of the program before it had a schema.
            let old = b"{\n  \"address\": 7\n}\n";
            protocol::commit(
                &mut dir,
                "net.json",
                old,
                Mode::PRIVATE,
                Protocol::Auto,
                256,
            )
            .unwrap();
            let store: Store<Net> = Store::new("net.json", Mode::PRIVATE).with_schema(2);
            let err = store.load(&mut dir, &mut buf).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Load(LoadError::Unsupported {
                        what: crate::error::Unsupported::OlderSchema { found: 0, known: 2 },
                        ..
                    })
                ),
                "{err}"
            );
            let net = store.open(&mut dir, &mut buf, migrate).unwrap().unwrap();
            assert_eq!(net.addresses, [7]);
            assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(net));
            let n = protocol::read(&mut dir, "net.json", &mut buf, Protocol::Auto)
                .unwrap()
                .unwrap();
            assert!(buf[..n].starts_with(b"{\n  \"schema\": 2,\n  \"value\": {"));
            let n = protocol::read_previous(&mut dir, "net.json", &mut buf, Protocol::Auto)
                .unwrap()
                .unwrap();
            assert_eq!(
                &buf[..n],
                old,
                "the pre-migration document is the previous one"
            );
            // Opening again migrates nothing.
            store
                .open(&mut dir, &mut buf, |_| Err("called again"))
                .unwrap();
        }
    }

    #[test]
    fn a_newer_schema_or_a_refused_migration_leaves_the_file_untouched() {
        let mut dir = MemDir::default();
        let mut buf = [0u8; 256];
        let newer = b"{\n  \"schema\": 3,\n  \"value\": 1\n}\n";
        protocol::commit(
            &mut dir,
            "n.json",
            newer,
            Mode::PRIVATE,
            Protocol::Replace,
            256,
        )
        .unwrap();
        let store: Store<Net> = Store::new("n.json", Mode::PRIVATE).with_schema(2);
        let err = store.open(&mut dir, &mut buf, migrate).unwrap_err();
        assert!(
            std::format!("{err}").contains("schema 3, newer than the 2"),
            "{err}"
        );
        assert!(
            matches!(
                err,
                StoreError::Load(LoadError::Unsupported { offset: 14, .. })
            ),
            "{err:?}"
        );
        assert_eq!(dir.get("n.json").unwrap(), newer);
        protocol::commit(
            &mut dir,
            "n.json",
            b"[1]\n",
            Mode::PRIVATE,
            Protocol::Replace,
            256,
        )
        .unwrap();
        let err = store
            .open(&mut dir, &mut buf, |_| Err("a list is not a network"))
            .unwrap_err();
        assert!(matches!(err, StoreError::Migrate { from: 0, .. }), "{err}");
        assert_eq!(dir.get("n.json").unwrap(), b"[1]\n");
    }

    #[test]
    fn store_uses_slots_where_rename_is_not_atomic() {
        let mut dir = MemDir {
            fat: true,
            ..MemDir::default()
        };
        let store: Store<Counter> = Store::new("count.json", Mode::PRIVATE);
        let mut buf = [0u8; 128];
        for _ in 0..3 {
            store.update(&mut dir, &mut buf, |c| c.n += 1).unwrap();
        }
        assert_eq!(
            store.load(&mut dir, &mut buf).unwrap(),
            Some(Counter { n: 3 })
        );
        let mut names = dir.names();
        names.sort();
        assert_eq!(names, ["count.json.a", "count.json.b"]);
        let replace = store.with_protocol(Protocol::Replace);
        let mut dir = MemDir::default();
        replace.save(&mut dir, &mut buf, &Counter { n: 9 }).unwrap();
        assert_eq!(dir.get("count.json").unwrap(), b"{\n  \"n\": 9\n}\n");
    }
}
