//! The commit protocols under test, behind one trait, so that one explorer
//! and one oracle cover them all.
//!
//! A [`Protocol`] keeps one *value* (a byte string) in a directory:
//! [`Protocol::commit`] makes a new value durable, [`Protocol::load`] reads
//! the current one back, [`Protocol::recover`] is what a board runs at boot
//! after a power cut. The oracle's whole contract is stated in those terms:
//! after `commit(v)` returned, `load` gives `v`; while it runs, the old
//! value or `v`; never anything else, never [`Failure::Corrupt`].
//!
//! # Adding a protocol
//!
//! Implement the trait over the **public API a user calls** — `Store`,
//! `JournalStore`, the library calls the CLI makes — never a composition
//! written for the test; map errors with `?` (every core error converts,
//! through the flat [`fsatomic::Error`]). A journal, whose state is a
//! snapshot plus records, maps `commit(v)` to "append a record holding
//! `v`" and `load` to "the last record folded in". See [`Whole`] for the
//! whole pattern, [`Journal`] for a stateful store (two processes) whose
//! `recover` is a reboot.

use std::fmt;

use fsatomic::error::{CommitError, IoError, LoadError, StoreError};
use fsatomic::{Corrupt, Dir, Mode};

/// Why a protocol call failed, with the adapter's error flattened to text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The data on disk is not what any commit writes.
    Corrupt(Corrupt),
    /// A filesystem call failed (including the simulator's power cut).
    Io(String),
    /// Anything else: a refused name, a too-small buffer, a logic bug.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Corrupt(c) => write!(f, "Corrupt: {c}"),
            Failure::Io(e) => write!(f, "I/O error: {e}"),
            Failure::Other(e) => write!(f, "error: {e}"),
        }
    }
}

impl std::error::Error for Failure {}

/// [`Failure::Other`] with `what` and the error's text.
pub(crate) fn other(what: &str, e: impl fmt::Display) -> Failure {
    Failure::Other(format!("{what}{e}"))
}

/// What [`Protocol::load`] returns: the value, `None` if none was ever
/// committed.
pub type Loaded = Result<Option<Vec<u8>>, Failure>;

/// The one mapping: the core's flat [`fsatomic::Error`], into which every
/// per-operation error converts.
impl<E: fmt::Display> From<fsatomic::Error<E>> for Failure {
    fn from(e: fsatomic::Error<E>) -> Failure {
        match e {
            fsatomic::Error::Corrupt(c) => Failure::Corrupt(c),
            fsatomic::Error::Io(e) => Failure::Io(e.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }
}

macro_rules! through_flat_error {
    ($($ty:ident),*) => {$(
        impl<E: fmt::Display> From<$ty<E>> for Failure {
            fn from(e: $ty<E>) -> Failure {
                fsatomic::Error::from(e).into()
            }
        }
    )*};
}

through_flat_error!(IoError, LoadError, CommitError, StoreError);

/// A commit protocol keeping one value in a directory.
///
/// Every method is generic over the directory, so the explorer can run the
/// protocol over the simulator or over a wrapper that breaks it
/// ([`crate::mutate`]).
pub trait Protocol {
    /// A short name for reports (`"replace"`).
    fn name(&self) -> &'static str;

    /// Prepare an empty directory before the scenario starts (preallocate
    /// slot files, say). Runs without crash points; whatever it writes is
    /// made durable before the first one. The default does nothing.
    fn setup<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        let _ = dir;
        Ok(())
    }

    /// Make `value` the durable value; return once it is.
    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure>;

    /// The current value, or `None` if none was ever committed.
    fn load<D: Dir>(&self, dir: &mut D) -> Loaded;

    /// What a board runs at boot after a power cut, before anything else.
    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure>;

    /// For a commit-confirmed protocol: confirm the value [`Protocol::commit`]
    /// made current tentatively. The explorer calls it right after each
    /// commit, and until it starts, recovery must roll the value back.
    /// `None` (the default): commits are not tentative.
    fn confirm<D: Dir>(&self, dir: &mut D) -> Option<Result<(), Failure>> {
        let _ = dir;
        None
    }

    /// Whether recovery leaves a tentative value waiting (its deadline has
    /// not come): then a value read before recovery must still be read
    /// after it. The default: recovery rolls tentative values back.
    fn keeps_tentative(&self) -> bool {
        false
    }

    /// The previous value, for a protocol that keeps one: the value
    /// committed right before the current one, `Ok(None)` if there is
    /// none. `None` (the default): the protocol keeps none.
    fn load_previous<D: Dir>(&self, dir: &mut D) -> Option<Loaded> {
        let _ = dir;
        None
    }

    /// Whether the previous value may be missing where one existed (Slots
    /// tear the slot that held it while they overwrite it; a compacted
    /// journal keeps none): the oracle then accepts none, never a wrong
    /// one.
    fn previous_may_be_lost(&self) -> bool {
        false
    }

    /// Whether `name` is one of the protocol's temporary files (counted by
    /// the oracle's leftover check). The default matches the core's
    /// `.NAME.<token>.tmp` pattern.
    fn is_temp(&self, name: &str) -> bool {
        fsatomic::name::temp_target(name).is_some()
    }

    /// How many temporary files may remain after recovery and after a
    /// commit that follows it.
    fn max_leftovers(&self) -> usize {
        0
    }
}

/// Buffer size for loads and commits: the scenario values are a few
/// hundred bytes.
const LOAD_BUFFER: usize = 4 * 1024;

/// Buffer size for a whole-document commit (see [`Whole`]).
const COMMIT_BUFFER: usize = 1024;

/// The document the scenarios commit: `{"v": n, "pad": "..."}`, as
/// [`crate::oracle::value`] writes it. Typed, so that the explorer drives
/// the typed stores users call.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Doc {
    /// The value's number.
    pub v: u64,
    /// Padding that sets the value's length.
    pub pad: heapless::String<2048>,
}

impl Doc {
    /// Parse a scenario value.
    pub fn parse(value: &[u8]) -> Result<Doc, Failure> {
        let mut buf = value.to_vec();
        buf.resize(value.len() * 2 + 64, 0);
        fsatomic::codec::decode::<Doc, std::convert::Infallible>("value", &mut buf, value.len())
            .map_err(|e| other("scenario value: ", e))
    }

    /// The bytes of `doc`, if there is one.
    pub(crate) fn bytes_of(doc: Option<Doc>) -> Loaded {
        doc.map(|d| d.bytes()).transpose()
    }

    /// The document's bytes as the stores write them.
    pub fn bytes(&self) -> Result<Vec<u8>, Failure> {
        let mut buf = vec![0u8; LOAD_BUFFER];
        let n = fsatomic::codec::encode(self, &mut buf).map_err(|e| other("encoding: ", e))?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// Which call of [`fsatomic::Store`] commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// [`fsatomic::Store::save`].
    Save,
    /// [`fsatomic::Store::update`]: lock, load, modify, commit.
    Update,
}

/// A whole document kept by [`fsatomic::Store`] — the calls a daemon makes:
/// `save` or `update` to commit, `load` to read, [`fsatomic::recover::recover`]
/// at boot. With `protocol` Replace it is the Replace protocol, with Slots
/// the Slots protocol, as shipped.
#[derive(Clone, Copy, Debug)]
pub struct Whole {
    /// The file's name.
    pub file: &'static str,
    /// The file's mode.
    pub mode: Mode,
    /// Replace or Slots.
    pub protocol: fsatomic::Protocol,
    /// Which store call commits.
    pub via: Via,
    /// Keep the previous version ([`fsatomic::Store::with_previous`]);
    /// Slots keep it anyway, and are checked for it either way.
    pub previous: bool,
}

impl Whole {
    /// The Replace protocol as shipped: `state.json`, 0600, committed with
    /// [`fsatomic::Store::save`] and [`fsatomic::Protocol::Replace`].
    pub fn replace() -> Whole {
        Whole {
            file: "state.json",
            mode: Mode::PRIVATE,
            protocol: fsatomic::Protocol::Replace,
            via: Via::Save,
            previous: false,
        }
    }

    /// The Slots protocol as shipped: `config.json`, 0600, committed with
    /// [`fsatomic::Store::save`] and [`fsatomic::Protocol::Slots`]. The
    /// first commit creates the slot files (and is explored like any
    /// other).
    pub fn slots() -> Whole {
        Whole {
            file: "config.json",
            protocol: fsatomic::Protocol::Slots,
            ..Whole::replace()
        }
    }

    /// The same, committed with `via`.
    pub fn via(self, via: Via) -> Whole {
        Whole { via, ..self }
    }

    /// The same, keeping the previous version (`NAME.prev` for Replace).
    pub fn keeping_previous(self) -> Whole {
        Whole {
            previous: true,
            ..self
        }
    }

    fn store(&self) -> fsatomic::Store<'static, Doc> {
        let store = fsatomic::Store::new(self.file, self.mode).with_protocol(self.protocol);
        if self.previous {
            store.with_previous()
        } else {
            store
        }
    }

    fn on_slots(&self) -> bool {
        self.protocol == fsatomic::Protocol::Slots
    }
}

/// [`fsatomic::Store::load`] (or, with `previous`,
/// [`fsatomic::Store::load_previous`]) as a scenario value.
fn load_doc<D: Dir>(store: fsatomic::Store<'static, Doc>, dir: &mut D, previous: bool) -> Loaded {
    let mut buf = vec![0u8; LOAD_BUFFER];
    let doc = match previous {
        true => store.load_previous(dir, &mut buf)?,
        false => store.load(dir, &mut buf)?,
    };
    Doc::bytes_of(doc)
}

impl Protocol for Whole {
    fn name(&self) -> &'static str {
        match (self.protocol, self.via, self.previous) {
            (fsatomic::Protocol::Slots, Via::Save, _) => "slots",
            (fsatomic::Protocol::Slots, Via::Update, _) => "slots-update",
            (_, Via::Save, false) => "replace",
            (_, Via::Update, false) => "replace-update",
            (_, Via::Save, true) => "replace-previous",
            (_, Via::Update, true) => "replace-previous-update",
        }
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let doc = Doc::parse(value)?;
        // The caller's buffer sizes new slot files: 1 KiB, room for the
        // largest scenario value, keeps the slots (and their crash states)
        // as small as a daemon would make them.
        let mut buf = vec![0u8; COMMIT_BUFFER];
        match self.via {
            Via::Save => self.store().save(dir, &mut buf, &doc)?,
            Via::Update => self.store().update(dir, &mut buf, |d| *d = doc)?,
        }
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        load_doc(self.store(), dir, false)
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        fsatomic::recover::recover(dir, self.file, self.mode)?;
        Ok(())
    }

    fn load_previous<D: Dir>(&self, dir: &mut D) -> Option<Loaded> {
        (self.previous || self.on_slots()).then(|| load_doc(self.store(), dir, true))
    }

    fn previous_may_be_lost(&self) -> bool {
        // A Slots commit overwrites the slot that holds the previous
        // version: cut short, it is torn.
        self.on_slots()
    }
}

/// Commit-confirmed as a network configuration keeps it: each odd value
/// is committed with [`fsatomic::Store::save_tentative`] and then
/// confirmed with [`fsatomic::Store::confirm`] (the explorer calls the two
/// apart, and until the confirmation starts, recovery must roll the value
/// back); each even value with a plain [`fsatomic::Store::save`], so that
/// a plain commit follows a confirmation and a tentative commit follows a
/// plain one. The previous version is kept; `recover` is
/// [`fsatomic::recover::recover`], `load` and the previous value the
/// store's.
#[derive(Clone, Debug)]
pub struct Tentative {
    /// The file's name.
    pub file: &'static str,
    /// The file's mode.
    pub mode: Mode,
    /// The last commit was tentative.
    pending: std::cell::Cell<bool>,
    /// Every commit tentative with a deadline ([`Tentative::DEADLINE`]),
    /// and recovery given a clock before it ([`Tentative::NOW`]): a
    /// tentative value survives recovery. The previous value is not
    /// judged here (a tentative value still waiting is not the previous
    /// one of the next commit).
    pub until: bool,
}

impl Default for Tentative {
    fn default() -> Tentative {
        Tentative {
            file: "network.json",
            mode: Mode::PRIVATE,
            pending: std::cell::Cell::new(false),
            until: false,
        }
    }
}

impl Tentative {
    /// The deadline of every tentative commit in `until` mode.
    pub const DEADLINE: u64 = 100;
    /// The clock recovery is given in `until` mode: before the deadline.
    pub const NOW: u64 = 50;

    /// Every commit tentative with a deadline, recovery before it.
    pub fn until() -> Tentative {
        Tentative {
            until: true,
            ..Tentative::default()
        }
    }

    fn store(&self) -> fsatomic::Store<'static, Doc> {
        fsatomic::Store::new(self.file, self.mode)
            .with_protocol(fsatomic::Protocol::Replace)
            .with_previous()
    }
}

impl Protocol for Tentative {
    fn name(&self) -> &'static str {
        if self.until {
            "tentative-until"
        } else {
            "tentative"
        }
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let doc = Doc::parse(value)?;
        let mut buf = vec![0u8; COMMIT_BUFFER];
        let tentative = self.until || doc.v % 2 == 1;
        self.pending.set(tentative);
        if tentative {
            let deadline = self.until.then_some(Tentative::DEADLINE);
            self.store()
                .save_tentative_until(dir, &mut buf, &doc, deadline)?;
        } else {
            self.store().save(dir, &mut buf, &doc)?;
        }
        Ok(())
    }

    fn confirm<D: Dir>(&self, dir: &mut D) -> Option<Result<(), Failure>> {
        if !self.pending.replace(false) {
            return None;
        }
        Some(match self.store().confirm(dir) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Failure::Other("nothing to confirm".into())),
            Err(e) => Err(e.into()),
        })
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        load_doc(self.store(), dir, false)
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        let now = self.until.then_some(Tentative::NOW);
        fsatomic::recover::recover_at(dir, self.file, self.mode, now)?;
        Ok(())
    }

    fn load_previous<D: Dir>(&self, dir: &mut D) -> Option<Loaded> {
        (!self.until).then(|| load_doc(self.store(), dir, true))
    }

    fn keeps_tentative(&self) -> bool {
        self.until
    }
}

/// The canonical indented form of the JSON `text` (compact, then
/// [`fsatomic::json::pretty`]): the form the scenario values have, so that
/// a value re-indented inside a journal snapshot compares equal.
fn canonical_json(text: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut compact = text.to_vec();
    let n = fsatomic::json::compact_in_place(&mut compact, text.len())
        .map_err(|e| other("state is not JSON: ", e))?;
    let mut out = vec![0u8; n * 4 + 64];
    let m = fsatomic::json::pretty(&compact[..n], &mut out)
        .map_err(|e| other("re-indenting the state: ", e))?;
    out.truncate(m);
    Ok(out)
}

/// A whole document moved between Replace and Slots before each commit:
/// `commit(v)` takes the lock, runs [`fsatomic::convert::convert`] to the
/// other protocol (Slots for odd turns, Replace for even ones), releases
/// the lock, then `Store::save`s `v` with [`fsatomic::Protocol::Auto`] —
/// which commits with the protocol the state is on. So every cut of a move
/// (slots written, `NAME` removed; `NAME` written, each slot removed) is
/// explored, and the store's choice of protocol by the files on disk.
#[derive(Debug, Default)]
pub struct Converting {
    turn: std::cell::Cell<u32>,
}

impl Clone for Converting {
    fn clone(&self) -> Converting {
        Converting::default()
    }
}

impl Converting {
    const FILE: &'static str = "moved.json";

    fn store() -> fsatomic::Store<'static, Doc> {
        fsatomic::Store::new(Self::FILE, Mode::PRIVATE)
    }
}

impl Protocol for Converting {
    fn name(&self) -> &'static str {
        "convert"
    }

    fn setup<D: Dir>(&self, _dir: &mut D) -> Result<(), Failure> {
        self.turn.set(0);
        Ok(())
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let doc = Doc::parse(value)?;
        let turn = self.turn.replace(self.turn.get() + 1);
        let to = if turn % 2 == 1 {
            fsatomic::Protocol::Slots
        } else {
            fsatomic::Protocol::Replace
        };
        let mut buf = vec![0u8; LOAD_BUFFER];
        {
            let _guard = fsatomic::lock::lock(dir, Self::FILE, Mode::PRIVATE)?;
            fsatomic::convert::convert(
                dir,
                Self::FILE,
                to,
                Mode::PRIVATE,
                &mut buf,
                LOAD_BUFFER / 2,
            )?;
        }
        Self::store().save(dir, &mut buf[..LOAD_BUFFER / 2], &doc)?;
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        load_doc(Self::store(), dir, false)
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        fsatomic::recover::recover(dir, Self::FILE, Mode::PRIVATE)?;
        Ok(())
    }
}

/// A journaled state as a daemon keeps it: the last [`Doc`] appended.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Last {
    /// The last record folded in.
    pub last: Option<Doc>,
}

impl fsatomic::store::Fold<Doc> for Last {
    fn apply(&mut self, _seq: u64, record: &Doc) {
        self.last = Some(record.clone());
    }
}

type Stores = std::cell::RefCell<[Option<fsatomic::JournalStore<'static, Last, Doc>>; 2]>;

/// The Journal protocol as shipped: two [`fsatomic::JournalStore`]s on one
/// directory (two processes), taking turns at [`fsatomic::JournalStore::append`]
/// (or `append_batch`), so that the remembered tail, the catch-up after
/// the other writer and the stale retry are all cut; compaction happens
/// when the journal outgrows `compact_after` bytes and the snapshot, as
/// shipped. `load` is [`fsatomic::JournalStore::read`] (lock-free);
/// `recover` is a fresh [`fsatomic::JournalStore::open`] (a reboot: the
/// stores of before the cut are gone).
#[derive(Debug)]
pub struct Journal {
    /// The snapshot's name (`NAME`; the journal is `NAME.journal`).
    pub file: &'static str,
    /// The files' mode.
    pub mode: Mode,
    /// Compact once the journal passes this many bytes (and the snapshot).
    pub compact_after: u64,
    /// Append each value as a batch of two records (two copies of it, so
    /// that either prefix of the batch loads as the value), as group
    /// commit does.
    pub batch: bool,
    stores: Stores,
    turn: std::cell::Cell<usize>,
}

impl Clone for Journal {
    fn clone(&self) -> Journal {
        Journal {
            stores: Stores::default(),
            turn: std::cell::Cell::new(0),
            ..*self
        }
    }
}

impl Journal {
    /// `sessions.json`, 0600, compacting past 600 bytes, single appends.
    #[allow(clippy::should_implement_trait)]
    pub fn default() -> Journal {
        Journal {
            file: "sessions.json",
            mode: Mode::PRIVATE,
            compact_after: 600,
            batch: false,
            stores: Stores::default(),
            turn: std::cell::Cell::new(0),
        }
    }

    /// The same, on the file `file`.
    pub fn on(self, file: &'static str) -> Journal {
        Journal { file, ..self }
    }

    /// The same, appending each value as a batch of two records.
    pub fn batched(self) -> Journal {
        Journal {
            batch: true,
            ..self
        }
    }

    fn store(&self) -> Result<fsatomic::JournalStore<'static, Last, Doc>, Failure> {
        fsatomic::JournalStore::new(self.file, self.mode)
            .map(|s| s.compact_after(self.compact_after))
            .map_err(|e| other("", e))
    }
}

impl Protocol for Journal {
    fn name(&self) -> &'static str {
        if self.batch {
            "journal-batch"
        } else {
            "journal"
        }
    }

    fn setup<D: Dir>(&self, _dir: &mut D) -> Result<(), Failure> {
        *self.stores.borrow_mut() = [None, None];
        self.turn.set(0);
        Ok(())
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        let doc = Doc::parse(value)?;
        let turn = self.turn.replace(self.turn.get() + 1);
        let mut stores = self.stores.borrow_mut();
        let slot = &mut stores[turn % 2];
        let mut buf = vec![0u8; LOAD_BUFFER];
        if slot.is_none() {
            let mut store = self.store()?;
            store.open(dir, &mut buf)?;
            *slot = Some(store);
        }
        let store = slot.as_mut().ok_or(Failure::Other("no store".into()))?;
        if self.batch {
            store.append_batch(dir, &mut buf, &[doc.clone(), doc])?;
        } else {
            store.append(dir, &mut buf, &doc)?;
        }
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        let mut buf = vec![0u8; LOAD_BUFFER];
        Doc::bytes_of(self.store()?.read(dir, &mut buf)?.last)
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        // A reboot: the stores of the process before the cut are gone.
        *self.stores.borrow_mut() = [None, None];
        let mut buf = vec![0u8; LOAD_BUFFER];
        self.store()?.open(dir, &mut buf)?;
        Ok(())
    }

    fn load_previous<D: Dir>(&self, dir: &mut D) -> Option<Loaded> {
        let mut buf = vec![0u8; LOAD_BUFFER];
        let previous = self
            .store()
            .and_then(|s| Ok(s.read_previous(dir, &mut buf)?));
        Some(previous.and_then(|p| Doc::bytes_of(p.and_then(|s| s.last))))
    }

    fn previous_may_be_lost(&self) -> bool {
        // A compaction keeps no history, and the append after it is cut.
        true
    }
}

/// `fsatomic save` then `fsatomic append`, as the command runs them: the
/// first value (a one-element array) is saved whole with Replace, each
/// later value's last element is appended through
/// [`fsatomic_linux::array::append`] — so the first append converts the
/// plain array into a journal, and later ones recover, compact (past
/// `compact_after` bytes) and append. `load` is what `fsatomic load`
/// prints: the document, or the journaled array.
#[derive(Clone, Copy, Debug)]
pub struct ArrayAppend {
    /// The array's name.
    pub file: &'static str,
    /// The files' mode.
    pub mode: Mode,
    /// Compact the journal past this many bytes (and the snapshot).
    pub compact_after: u64,
}

impl Default for ArrayAppend {
    fn default() -> ArrayAppend {
        ArrayAppend {
            file: "snapdb.json",
            mode: Mode::PRIVATE,
            compact_after: 300,
        }
    }
}

impl ArrayAppend {
    /// The scenario: `[e1]` saved, then `e2`, `e3`, `e4` appended (each
    /// value is the whole array it should load as).
    pub fn scenario() -> crate::explorer::Scenario {
        let element = |n: u64| {
            let mut e = format!("{{\"tx\":{n},\"pad\":\"");
            e.extend(std::iter::repeat_n('x', 60 + n as usize * 40));
            e.push_str("\"}");
            e
        };
        let array = |upto: u64| {
            let items: Vec<String> = (1..=upto).map(element).collect();
            canonical_json(format!("[{}]", items.join(",")).as_bytes()).unwrap_or_default()
        };
        let mut s = crate::explorer::Scenario::new(
            "save+convert+append+compact",
            (1..=4).map(array).collect(),
        );
        s.fresh = array(5);
        s
    }
}

impl Protocol for ArrayAppend {
    fn name(&self) -> &'static str {
        "cli-append"
    }

    fn commit<D: Dir>(&self, dir: &mut D, value: &[u8]) -> Result<(), Failure> {
        // `value` is the whole array the state should hold: save its first
        // element as a plain array if the state is absent (`fsatomic
        // save`), then append each element the state does not hold yet
        // (`fsatomic append`, one call each).
        let mut elements = Vec::new();
        fsatomic::json::for_each_element(value, |r| elements.push(r))
            .map_err(|e| other("scenario value: ", e))?;
        let have = match self.load(dir)? {
            Some(text) => {
                let mut n = 0;
                fsatomic::json::for_each_element(&text, |_| n += 1)
                    .map_err(|e| other("state: ", e))?;
                n
            }
            None => {
                let first = elements
                    .first()
                    .cloned()
                    .ok_or(Failure::Other("an empty scenario value".into()))?;
                let plain = canonical_json(&[b"[", &value[first], b"]"].concat())?;
                let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
                fsatomic::recover::sweep_orphans(dir, Some(self.file))?;
                fsatomic::replace::commit(dir, self.file, &plain, self.mode)?;
                1
            }
        };
        for range in elements.into_iter().skip(have) {
            let mut record = value[range].to_vec();
            let len = record.len();
            let n = fsatomic::json::compact_in_place(&mut record, len)
                .map_err(|e| other("scenario value: ", e))?;
            record.truncate(n);
            let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
            fsatomic_linux::array::append_with(
                dir,
                self.file,
                &record,
                self.mode,
                self.compact_after,
            )
            .map_err(|e| match e {
                fsatomic_linux::array::Error::Recover(e) => e.into(),
                fsatomic_linux::array::Error::Commit(e) => e.into(),
                e => Failure::Other(e.to_string()),
            })?;
        }
        Ok(())
    }

    fn load<D: Dir>(&self, dir: &mut D) -> Loaded {
        let files = fsatomic::layout::Files::probe(dir, self.file)?;
        let text = match files.protocol() {
            Ok(Some(fsatomic::Protocol::Journal)) => {
                let state = fsatomic_linux::array::read_journal(dir, self.file, false, 0)
                    .map_err(read_failure)?;
                state
                    .array()
                    .ok_or(Failure::Other("the journal's state is not an array".into()))?
            }
            Ok(_) => {
                let mut buf = vec![0u8; LOAD_BUFFER];
                match fsatomic::load::read_json(dir, self.file, &mut buf)? {
                    Some(n) => buf[..n].to_vec(),
                    None => return Ok(None),
                }
            }
            Err(mixed) => return Err(Failure::Other(mixed.to_string())),
        };
        canonical_json(&text).map(Some)
    }

    fn recover<D: Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        let _guard = fsatomic::lock::lock(dir, self.file, self.mode)?;
        fsatomic::recover::sweep_orphans(dir, Some(self.file))?;
        let files = fsatomic::layout::Files::probe(dir, self.file)?;
        if files.protocol() == Ok(Some(fsatomic::Protocol::Journal)) {
            fsatomic_linux::array::read_journal(dir, self.file, true, 0).map_err(read_failure)?;
        }
        Ok(())
    }
}

/// An error of [`fsatomic_linux::array::read_journal`] as a failure.
fn read_failure<E: fmt::Display>(e: fsatomic_linux::array::Error<E>) -> Failure {
    match e {
        fsatomic_linux::array::Error::Recover(e) => Failure::from(e),
        e => other("", e),
    }
}
