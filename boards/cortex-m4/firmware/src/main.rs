//! The bare-metal proof: fsatomic's commits, journal appends and
//! compactions on a Cortex-M4, with no OS and no heap, over core's RAM
//! directory ([`fsatomic::ram`]), which loses its unflushed state when the
//! power is cut.
//!
//! The firmware drives the library the way an application does and builds
//! no file name and no protocol sequence itself: it asks
//! [`fsatomic::layout`] for names, steps [`fsatomic::protocol::Commit`]
//! (what [`Store::save`] runs), and otherwise calls the shipped API.
//!
//! For each whole-document protocol (Replace, the default; Slots, the one
//! for flash-like media), for every value of a sequence, and for each kind
//! of [`Cut`], the firmware restores the disk to the previous commit and
//!
//! - runs the writer's half of [`Store::save`] by hand — [`lock::lock`],
//!   [`recover::sweep_orphans`], then [`Commit::step`] `k` times — and cuts
//!   the power between any two steps of the commit;
//! - runs [`Store::save`] itself with the disk's fuse set to blow after `n`
//!   operations ([`fsatomic::ram::Disk::cut_after`]), for every `n`, so
//!   that cuts also fall inside the lock and the sweep;
//!
//! then boots again, runs [`recover::recover`] and [`Store::load`], and
//! checks the oracle:
//!
//! - the document is the old value or the new one, never anything else, and
//!   is never missing or corrupt once a first commit was acknowledged;
//! - after the commit reached `Done` (or `save` returned `Ok`), the new value;
//! - recovery leaves no temporary file behind and finds no stale lock;
//! - a second cut right after recovery changes nothing.
//!
//! It then commits the value for real with [`Store::save`], measuring the
//! stack and the flush barriers it takes, and exercises [`Store::update`]
//! and the refusal of an empty file.
//!
//! Last, a journal: [`JournalStore::open`], then for every event
//! [`JournalStore::append`] with the fuse after `n` operations for every
//! `n` (the store compacts every few appends, so cuts fall between any two
//! steps of [`fsatomic::journal::Append`] and of
//! [`fsatomic::journal::Compact`]), and [`JournalStore::compact`] the same
//! way; after each cut a fresh [`JournalStore::open`] must find the state
//! before or after the call (after, once it returned `Ok`). A damaged
//! journal must be reported as [`Error::Corrupt`].
//!
//! Then raw NOR flash ([`nor`]): settings in two sectors through
//! [`fsatomic::nor::NorSlots`], the power cut during every erase and
//! program and between every two steps.
//!
//! Output goes over semihosting; the exit status is 0 only if there was no
//! violation.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod nor;
mod ramdir;
mod stack;

use core::cell::RefCell;
use core::fmt::Write as _;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fsatomic::journal::{Append, Compact};
use fsatomic::layout::{self, Role};
use fsatomic::machine::Progress;
use fsatomic::protocol::Commit;
use fsatomic::store::Fold;
use fsatomic::{
    CommitError, CorruptKind, Dir, Error, JournalStore, Mode, Protocol, Store, StoreError, codec,
    lock, recover,
};
use serde::{Deserialize, Serialize};

use ramdir::{Cut, Disk, RamDir, RamError};

/// The document under test.
const NAME: &str = "settings.json";
/// The journaled state under test.
const JOURNAL: &str = "events.json";
const MODE: Mode = Mode::PRIVATE;
/// The caller's buffer: the whole indented document, plus scratch. Slots
/// sizes its slot files for documents this large (512-byte files).
const BUF: usize = 480;
/// How many values are committed in sequence.
const VALUES: u32 = 6;
/// How many events are appended to the journal.
const EVENTS: u32 = 12;
/// Compact the journal once it passes this many bytes (and the snapshot):
/// every four or five appends, so that cuts land inside compactions, and
/// the journal stays within the RAM disk's 512-byte files.
const COMPACT_AFTER: u64 = 192;
/// Violations printed in full; the rest are only counted.
const SHOWN: u32 = 10;
/// The whole-document protocols exercised, in order.
const PROTOCOLS: [Protocol; 2] = [Protocol::Replace, Protocol::Slots];

/// A small piece of appliance state, as a daemon would keep it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Settings {
    generation: u32,
    hostname: heapless::String<32>,
    ssh: bool,
    shares: heapless::Vec<u16, 16>,
}

/// The `n`th value of the sequence; sizes vary so that commits take a
/// different number of page writes.
fn settings(n: u32) -> Settings {
    let mut hostname = heapless::String::new();
    let _ = write!(hostname, "nas-{n:04}-\"box\"");
    let mut shares = heapless::Vec::new();
    for i in 0..(n * 5) % 16 {
        let _ = shares.push(1000 + (i * 37 + n) as u16);
    }
    Settings {
        generation: n,
        hostname,
        ssh: n % 2 == 1,
        shares,
    }
}

/// One journal record: the `n`th event, with a note whose length varies.
#[derive(Serialize, Deserialize)]
struct Event {
    n: u32,
    note: heapless::String<24>,
}

fn event(n: u32) -> Event {
    let mut note = heapless::String::new();
    for _ in 0..=n % 4 {
        let _ = write!(note, "ev{n}");
    }
    Event { n, note }
}

/// The journaled state: how many events, in order, and a sum over them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Tally {
    count: u32,
    sum: u32,
    out_of_order: u32,
}

impl Fold<Event> for Tally {
    fn apply(&mut self, _seq: u64, e: &Event) {
        if e.n == self.count + 1 && e.note.len() == event(e.n).note.len() {
            self.count += 1;
            self.sum += e.n * 3;
        } else {
            self.out_of_order += 1;
        }
    }
}

/// The state after the first `n` events.
fn tally(n: u32) -> Tally {
    Tally {
        count: n,
        sum: 3 * n * (n + 1) / 2,
        out_of_order: 0,
    }
}

fn journal_store() -> JournalStore<'static, Tally, Event> {
    match JournalStore::new(JOURNAL, MODE) {
        Ok(s) => s.compact_after(COMPACT_AFTER),
        Err(_) => panic!("{JOURNAL} refused as a name"),
    }
}

/// The one word for what went wrong, from the flat error.
fn class(e: &Error<RamError>) -> &'static str {
    match e {
        Error::Corrupt(_) => "corrupt",
        Error::TooLarge { .. } => "too large",
        Error::Io(_) => "I/O",
        _ => "other",
    }
}

/// What one run found.
#[derive(Default)]
struct Report {
    commits: u32,
    /// Cuts between two steps of a stepped [`Commit`].
    cuts: u32,
    /// Cuts by the fuse, inside a library call.
    injected: u32,
    /// Of those, cuts inside an append that compacted, or a compaction.
    in_compaction: u32,
    compactions: u32,
    violations: u32,
    orphans_swept: u32,
    max_steps: usize,
    max_ops: usize,
    save_stack: usize,
    recover_stack: usize,
    compact_stack: usize,
    file_syncs: u32,
    dir_syncs: u32,
    largest_document: usize,
}

impl Report {
    fn violation(&mut self, label: Protocol, args: core::fmt::Arguments<'_>) {
        self.violations += 1;
        if self.violations <= SHOWN {
            hprintln!("VIOLATION: {}: {}", label, args);
        }
    }

    /// Keep the smallest number of flush barriers seen (the first Slots
    /// commit formats the slot files, a compacting append takes more).
    fn barriers(&mut self, before: fsatomic::ram::Stats, after: fsatomic::ram::Stats) {
        let (files, dirs) = (
            after.file_syncs - before.file_syncs,
            after.dir_syncs - before.dir_syncs,
        );
        if self.commits == 0 || files + dirs < self.file_syncs + self.dir_syncs {
            (self.file_syncs, self.dir_syncs) = (files, dirs);
        }
    }
}

/// A test run: the disk, the protocol, the report.
struct Run<'d> {
    disk: &'d RefCell<Disk>,
    protocol: Protocol,
    report: Report,
}

macro_rules! violation {
    ($run:expr, $($arg:tt)*) => { $run.report.violation($run.protocol, format_args!($($arg)*)) };
}

/// Where a cut fell.
#[derive(Clone, Copy)]
enum At {
    /// After `k` steps of a stepped commit.
    Step(usize),
    /// Inside a library call, after `n` of its filesystem operations.
    Op(usize),
    /// After the call returned `Ok`.
    Acked,
}

impl core::fmt::Display for At {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            At::Step(k) => write!(f, "step {k}"),
            At::Op(n) => write!(f, "operation {n}"),
            At::Acked => f.write_str("after the acknowledged call"),
        }
    }
}

/// The library call a journal cut falls in.
#[derive(Clone, Copy, PartialEq)]
enum Call {
    Open,
    Append(u32),
    Compact,
}

impl<'d> Run<'d> {
    fn dir(&self) -> RamDir<'d> {
        RamDir::new(self.disk)
    }

    fn store(&self) -> Store<'static, Settings> {
        Store::new(NAME, MODE).with_protocol(self.protocol)
    }

    /// Arm the disk's fuse: the power goes off, with `cut`, in the
    /// operation after the next `n`.
    fn fuse_with(&self, n: usize, cut: Cut) {
        self.disk
            .borrow_mut()
            .cut_after(u32::try_from(n).unwrap_or(u32::MAX), cut);
    }

    /// Power on after a call with the fuse armed: whether it blew.
    fn power_on(&self) -> bool {
        let off = self.disk.borrow().is_off();
        self.disk.borrow_mut().power_on();
        off
    }

    /// Boot-time recovery and load of `NAME`; `None` after a violation.
    fn recover_and_load(&mut self, value: u32, at: At, cut: Cut) -> Option<Option<Settings>> {
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        let cut = cut.as_str();
        match recover::recover(&mut dir, NAME, MODE) {
            Ok(done) => self.report.orphans_swept += done.orphans as u32,
            Err(e) => {
                violation!(self, "value {value} {at} {cut}: recovery failed: {e}");
                return None;
            }
        }
        match self.store().load(&mut dir, &mut buf) {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                let e = Error::from(e);
                let class = class(&e);
                violation!(self, "value {value} {at} {cut}: load failed ({class}): {e}");
                None
            }
        }
    }

    /// Temporary files of `state` (orphans, once nobody commits).
    fn temp_files(&self, state: &str) -> usize {
        let mut n = 0;
        self.disk.borrow().for_each_name(|name| {
            if layout::orphan_of(name) == Some(state) {
                n += 1;
            }
        });
        n
    }

    /// After a cut at `at`: recover, load, and check the oracle.
    fn judge_document(
        &mut self,
        (old, new): (Option<&Settings>, &Settings),
        done: bool,
        at: At,
        cut: Cut,
    ) {
        let value = new.generation;
        let Some(loaded) = self.recover_and_load(value, at, cut) else {
            return;
        };
        let what = cut.as_str();
        match (&loaded, old) {
            (Some(v), _) if v == new => {}
            (Some(v), Some(o)) if v == o && !done => {}
            (None, None) if !done => {}
            (Some(v), _) => violation!(
                self,
                "value {value} {at} {what}: loaded generation {} (done: {done})",
                v.generation
            ),
            (None, _) => violation!(self, "value {value} {at} {what}: document missing"),
        }
        let left = self.temp_files(NAME);
        if left != 0 {
            violation!(
                self,
                "value {value} {at} {what}: {left} temp files after recovery"
            );
        }

        // A second cut right after recovery: nothing may change.
        self.disk.borrow_mut().power_cut(Cut::LoseAll);
        if let Some(again) = self.recover_and_load(value, at, Cut::LoseAll)
            && again != loaded
        {
            violation!(self, "value {value} {at} {what}: recovery did not settle");
        }
    }

    /// From `snapshot` (which holds `old`), run the writer's half of
    /// `Store::save` — lock, sweep, and `k` steps of the [`Commit`] — then
    /// cut the power with `cut` and check. Returns whether the commit had
    /// reached `Done`.
    fn cut_after_steps(
        &mut self,
        snapshot: &Disk,
        values: (Option<&Settings>, &Settings),
        k: usize,
        cut: Cut,
    ) -> bool {
        self.disk.borrow_mut().clone_from(snapshot);
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        let value = values.1.generation;
        let len = match codec::encode(values.1, &mut buf) {
            Ok(len) => len,
            Err(e) => {
                violation!(self, "value {value}: encode failed: {e}");
                return true;
            }
        };
        let data = buf.get(..len).unwrap_or_default();

        let mut done = false;
        match lock::lock(&mut dir, NAME, MODE) {
            // The holder loses power with the lock held: no destructor runs.
            Ok(guard) => core::mem::forget(guard),
            Err(e) => violation!(self, "value {value}: lock failed: {e}"),
        }
        if let Err(e) = recover::sweep_orphans(&mut dir, Some(NAME)) {
            violation!(self, "value {value}: sweep failed: {e}");
        }
        let caps = dir.capabilities();
        match Commit::<RamDir<'_>>::new(caps, NAME, data, MODE, self.protocol, BUF) {
            Ok(mut commit) => {
                for _ in 0..k {
                    match commit.step(&mut dir) {
                        Ok(Progress::Pending) => {}
                        Ok(Progress::Done) => {
                            done = true;
                            break;
                        }
                        Err(e) => {
                            violation!(self, "value {value} step {k}: commit failed: {e}");
                            break;
                        }
                    }
                }
                core::mem::forget(commit);
            }
            Err(e) => violation!(self, "value {value}: commit refused: {e}"),
        }

        self.disk.borrow_mut().power_cut(cut);
        self.report.cuts += 1;
        self.judge_document(values, done, At::Step(k), cut);
        done
    }

    /// From `snapshot`, run `Store::save` with the power cut (`cut`) in
    /// its operation after the first `n`, and check. Returns whether the
    /// save finished before the fuse blew.
    fn cut_in_save(
        &mut self,
        snapshot: &Disk,
        values: (Option<&Settings>, &Settings),
        n: usize,
        cut: Cut,
    ) -> bool {
        self.disk.borrow_mut().clone_from(snapshot);
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        self.fuse_with(n, cut);
        let saved = self.store().save(&mut dir, &mut buf, values.1);
        let blew = self.power_on();
        let done = match (saved, blew) {
            (Ok(()), false) => return true,
            (Ok(()), true) => true,
            (Err(_), true) => false,
            (Err(e), false) => {
                violation!(self, "value {}: save failed: {e}", values.1.generation);
                return true;
            }
        };
        self.report.injected += 1;
        self.judge_document(values, done, At::Op(n), cut);
        false
    }

    /// Commit `new` for real, measuring stack and flush barriers, and
    /// check that it survives the worst cut.
    fn commit(&mut self, new: &Settings) {
        let mut dir = self.dir();
        let store = self.store();
        let mut buf = [0u8; BUF];
        let before = self.disk.borrow().stats();
        let (saved, used) = stack::measure(|| store.save(&mut dir, &mut buf, new));
        let after = self.disk.borrow().stats();
        self.report.barriers(before, after);
        let r = &mut self.report;
        r.save_stack = r.save_stack.max(used.unwrap_or(usize::MAX));
        if let Err(e) = saved {
            violation!(self, "value {}: save failed: {e}", new.generation);
            return;
        }
        self.report.commits += 1;
        if let Ok(n) = codec::encode(new, &mut buf) {
            self.report.largest_document = self.report.largest_document.max(n);
        }

        // An acknowledged commit survives the worst cut.
        self.disk.borrow_mut().power_cut(Cut::LoseAll);
        let (loaded, used) =
            stack::measure(|| self.recover_and_load(new.generation, At::Acked, Cut::LoseAll));
        self.report.recover_stack = self.report.recover_stack.max(used.unwrap_or(usize::MAX));
        if loaded != Some(Some(new.clone())) {
            violation!(self, "value {}: acknowledged commit lost", new.generation);
        }
    }

    /// `Store::update` once, and (where a plain file holds the document)
    /// the refusal of an empty file.
    fn extras(&mut self) {
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        match self.store().update(&mut dir, &mut buf, |s| {
            s.generation += 100;
            s.generation
        }) {
            Ok(g) if g == VALUES + 100 => {}
            Ok(g) => violation!(self, "update saw generation {g}"),
            Err(e) => violation!(self, "update failed: {e}"),
        }
        if self.protocol != Protocol::Replace {
            return;
        }
        // A zero-length file is a torn write, never empty state.
        let broken: Store<Settings> = Store::new("broken.json", MODE);
        if let Err(e) = dir.create_new("broken.json", MODE) {
            violation!(self, "could not make broken.json: {e}");
        }
        match broken.load(&mut dir, &mut buf).map_err(Error::from) {
            Err(Error::Corrupt(c)) if c.kind == CorruptKind::Empty => {}
            Err(e) => violation!(self, "empty file: unexpected {} error {e}", class(&e)),
            Ok(_) => violation!(self, "an empty file was taken for a value"),
        }
    }

    /// The whole sequence for this run's protocol, on a formatted disk.
    fn sequence(&mut self, snapshot: &mut Disk) {
        self.disk.borrow_mut().format();
        let mut old: Option<Settings> = None;
        for n in 1..=VALUES {
            let new = settings(n);
            snapshot.clone_from(&self.disk.borrow());
            for cut in Cut::ALL {
                let mut k = 0;
                while !self.cut_after_steps(snapshot, (old.as_ref(), &new), k, cut) {
                    k += 1;
                }
                self.report.max_steps = self.report.max_steps.max(k);
                let mut n = 0;
                while !self.cut_in_save(snapshot, (old.as_ref(), &new), n, cut) {
                    n += 1;
                }
                self.report.max_ops = self.report.max_ops.max(n);
            }
            self.disk.borrow_mut().clone_from(snapshot);
            self.commit(&new);
            old = Some(new);
        }
        self.extras();
    }

    /// A fresh process's `JournalStore::open`: the state it replays, or
    /// `None` after a violation.
    fn reopen(&mut self, what: &str, at: At, cut: Cut) -> Option<Tally> {
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        let mut store = journal_store();
        match store.open(&mut dir, &mut buf).map_err(Error::from) {
            Ok(()) => Some(store.state().clone()),
            Err(e) => {
                let (cut, class) = (cut.as_str(), class(&e));
                violation!(self, "{what} {at} {cut}: open failed ({class}): {e}");
                None
            }
        }
    }

    /// From `snapshot` (which holds `old`), open the journal, then make
    /// `call` with the power cut (`cut`) in its operation after the first
    /// `n`; a fresh open must find `old`, or `new` (`new` if the call
    /// returned `Ok`). Returns whether the call finished before the fuse
    /// blew.
    fn cut_in_journal(
        &mut self,
        snapshot: &Disk,
        (old, new): (&Tally, &Tally),
        call: Call,
        n: usize,
        cut: Cut,
    ) -> bool {
        self.disk.borrow_mut().clone_from(snapshot);
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        let mut store = journal_store();
        let what: heapless::String<24> = {
            let mut s = heapless::String::new();
            let _ = match call {
                Call::Open => write!(s, "open"),
                Call::Append(e) => write!(s, "append {e}"),
                Call::Compact => write!(s, "compact"),
            };
            s
        };
        if call != Call::Open
            && let Err(e) = store.open(&mut dir, &mut buf)
        {
            violation!(self, "{what}: open before the cut failed: {e}");
            return true;
        }
        self.fuse_with(n, cut);
        let result = match call {
            Call::Open => store.open(&mut dir, &mut buf),
            Call::Append(e) => store.append(&mut dir, &mut buf, &event(e)).map(|_| ()),
            Call::Compact => store.compact(&mut dir, &mut buf),
        };
        let blew = self.power_on();
        let done = match (result, blew) {
            (Ok(()), false) => return true,
            (Ok(()), true) => true,
            (Err(_), true) => false,
            (Err(e), false) => {
                violation!(self, "{what}: failed without a cut: {e}");
                return true;
            }
        };
        self.report.injected += 1;
        let at = At::Op(n);
        let Some(found) = self.reopen(&what, at, cut) else {
            return false;
        };
        let kind = cut.as_str();
        if !(found == *new || (found == *old && !done)) {
            violation!(
                self,
                "{what} {at} {kind}: replayed {} events (sum {}, {} out of order), done: {done}",
                found.count,
                found.sum,
                found.out_of_order
            );
        }
        let left = self.temp_files(JOURNAL);
        if left != 0 {
            violation!(self, "{what} {at} {kind}: {left} temp files after open");
        }
        self.disk.borrow_mut().power_cut(Cut::LoseAll);
        if let Some(again) = self.reopen(&what, at, Cut::LoseAll)
            && again != found
        {
            violation!(self, "{what} {at} {kind}: recovery did not settle");
        }
        false
    }

    /// Cut `call` at every operation with every kind of cut, from
    /// `snapshot`; returns how many cuts fell inside it.
    fn cut_everywhere(&mut self, snapshot: &Disk, states: (&Tally, &Tally), call: Call) -> u32 {
        let before = self.report.injected;
        for cut in Cut::ALL {
            let mut n = 0;
            while !self.cut_in_journal(snapshot, states, call, n, cut) {
                n += 1;
            }
            self.report.max_ops = self.report.max_ops.max(n);
        }
        self.report.injected - before
    }

    /// The journal: open on an empty disk, `EVENTS` appends (compacting
    /// every few), one explicit compaction, each cut at every operation;
    /// then a damaged journal must read as corrupt.
    fn journal(&mut self, snapshot: &mut Disk) {
        self.disk.borrow_mut().format();
        let empty = Tally::default();
        snapshot.clone_from(&self.disk.borrow());
        self.cut_everywhere(snapshot, (&empty, &empty), Call::Open);

        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        let mut store = journal_store();
        let (opened, used) = stack::measure(|| store.open(&mut dir, &mut buf));
        self.report.recover_stack = used.unwrap_or(usize::MAX);
        if let Err(e) = opened {
            violation!(self, "first open failed: {e}");
            return;
        }
        for n in 1..=EVENTS {
            snapshot.clone_from(&self.disk.borrow());
            let cuts = self.cut_everywhere(snapshot, (&tally(n - 1), &tally(n)), Call::Append(n));
            // The cuts restored older disks under the store's feet: the
            // store catches up (its append finds the journal as it left it).
            self.disk.borrow_mut().clone_from(snapshot);
            let seq = store.tail().map(|t| t.snapshot_seq);
            let before = self.disk.borrow().stats();
            let (appended, used) = stack::measure(|| store.append(&mut dir, &mut buf, &event(n)));
            let after = self.disk.borrow().stats();
            let r = &mut self.report;
            r.save_stack = r.save_stack.max(used.unwrap_or(usize::MAX));
            if let Err(e) = appended {
                violation!(self, "append {n} failed: {e}");
                return;
            }
            if store.tail().map(|t| t.snapshot_seq) != seq {
                self.report.compactions += 1;
                self.report.in_compaction += cuts;
            } else {
                self.report.barriers(before, after);
            }
            self.report.commits += 1;
            if *store.state() != tally(n) {
                violation!(self, "append {n}: the store holds {:?}", store.state());
            }
            snapshot.clone_from(&self.disk.borrow());
            self.disk.borrow_mut().power_cut(Cut::LoseAll);
            if self.reopen("acknowledged append", At::Acked, Cut::LoseAll) != Some(tally(n)) {
                violation!(self, "append {n}: acknowledged append lost");
            }
            self.disk.borrow_mut().clone_from(snapshot);
        }

        let last = tally(EVENTS);
        snapshot.clone_from(&self.disk.borrow());
        self.report.in_compaction += self.cut_everywhere(snapshot, (&last, &last), Call::Compact);
        self.disk.borrow_mut().clone_from(snapshot);
        let (compacted, used) = stack::measure(|| store.compact(&mut dir, &mut buf));
        self.report.compact_stack = used.unwrap_or(usize::MAX);
        match compacted {
            Ok(()) => self.report.compactions += 1,
            Err(e) => violation!(self, "compact failed: {e}"),
        }

        // A damaged journal is corrupt, not an I/O error.
        let journal = layout::file_name(JOURNAL, Role::Journal);
        if let Err(e) = self.disk.borrow_mut().set(
            &journal,
            b"FSATJRNL: not a journal header, and no record after it\n",
        ) {
            violation!(self, "could not damage {journal}: {e}");
        }
        let mut fresh = journal_store();
        match fresh.open(&mut dir, &mut buf).map_err(Error::from) {
            Err(Error::Corrupt(_)) => {}
            Err(e) => violation!(self, "damaged journal: {} error {e}", class(&e)),
            Ok(()) => violation!(self, "a damaged journal was opened"),
        }
    }

    fn print(&self) {
        let r = &self.report;
        let stack = |b: usize| -> heapless::String<24> {
            let mut s = heapless::String::new();
            let _ = if b == usize::MAX {
                write!(s, "over {} B", stack::WINDOW)
            } else {
                write!(s, "{b} B")
            };
            s
        };
        let kinds = Cut::ALL.len();
        if self.protocol == Protocol::Journal {
            hprintln!(
                "journal: {} appends, {} compactions, {} power cuts inside JournalStore::open/append/compact (up to {} operations x {} kinds; {} inside a compaction), {} violations",
                r.commits,
                r.compactions,
                r.injected,
                r.max_ops + 1,
                kinds,
                r.in_compaction,
                r.violations
            );
            hprintln!(
                "journal: flush barriers per append: {} file + {} directory",
                r.file_syncs,
                r.dir_syncs
            );
            hprintln!(
                "stack journal: append path (JournalStore::append) {}, compaction (JournalStore::compact) {}, open (recovery + replay) {}",
                stack(r.save_stack),
                stack(r.compact_stack),
                stack(r.recover_stack)
            );
            return;
        }
        hprintln!(
            "{}: {} commits, {} power cuts between Commit steps (up to {} steps x {} kinds) and {} inside Store::save (up to {} operations), {} orphans swept, {} violations",
            self.protocol,
            r.commits,
            r.cuts,
            r.max_steps + 1,
            kinds,
            r.injected,
            r.max_ops + 1,
            r.orphans_swept,
            r.violations
        );
        hprintln!(
            "{}: flush barriers per commit: {} file + {} directory; largest document {} B",
            self.protocol,
            r.file_syncs,
            r.dir_syncs,
            r.largest_document
        );
        hprintln!(
            "stack {}: commit path (Store::save) {}, recovery + load {}",
            self.protocol,
            stack(r.save_stack),
            stack(r.recover_stack)
        );
    }
}

#[entry]
fn main() -> ! {
    static mut DISK: RefCell<Disk> = RefCell::new(Disk::new());
    static mut SNAPSHOT: Disk = Disk::new();
    static mut NOR: nor::Flash = nor::Flash::zeroed();
    static mut NOR_SCRATCH: nor::Flash = nor::Flash::zeroed();
    let disk: &RefCell<Disk> = DISK;
    ramdir::configure(&mut disk.borrow_mut());
    let snapshot: &mut Disk = SNAPSHOT;

    hprintln!(
        "fsatomic {} on a Cortex-M4: commits and a journal over a RAM directory, power cut between every step",
        fsatomic::VERSION
    );
    hprintln!(
        "sizes: Commit {} B, Append {} B, Compact {} B, JournalStore {} B, StoreError {} B, CommitError {} B, Error {} B, FileName {} B",
        core::mem::size_of::<Commit<'_, RamDir<'_>>>(),
        core::mem::size_of::<Append<'_, RamDir<'_>>>(),
        core::mem::size_of::<Compact<'_, RamDir<'_>>>(),
        core::mem::size_of::<JournalStore<'_, Tally, Event>>(),
        core::mem::size_of::<StoreError<RamError>>(),
        core::mem::size_of::<CommitError<RamError>>(),
        core::mem::size_of::<Error<RamError>>(),
        core::mem::size_of::<fsatomic::name::FileName>(),
    );
    let mut violations = 0;
    for protocol in PROTOCOLS.into_iter().chain([Protocol::Journal]) {
        let mut run = Run {
            disk,
            protocol,
            report: Report::default(),
        };
        if protocol == Protocol::Journal {
            run.journal(snapshot);
        } else {
            run.sequence(snapshot);
        }
        run.print();
        violations += run.report.violations;
    }
    let nor_flash: &mut nor::Flash = NOR;
    nor_flash.erase_all();
    let report = nor::run(nor_flash, NOR_SCRATCH);
    report.print();
    violations += report.violations;
    hprintln!("violations: {}", violations);
    if violations == 0 {
        hprintln!("RESULT: PASS");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("RESULT: FAIL");
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
