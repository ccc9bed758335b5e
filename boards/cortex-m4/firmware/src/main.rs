//! The bare-metal proof: fsatomic's commit state machines on a Cortex-M4,
//! with no OS and no heap, over a RAM directory that loses its unflushed
//! state when the power is cut.
//!
//! For each protocol (Replace, the default; Slots, the one for flash-like
//! media), for every value of a sequence, and for every step `k` of its
//! commit, the firmware restores the disk to the previous commit, takes the
//! writers' lock, drives the state machine's `step()` by hand `k` times,
//! cuts the power with each kind of [`Cut`], boots again, runs
//! [`recover::recover`] and [`Store::load`], and checks the oracle:
//!
//! - the document is the old value or the new one, never anything else, and
//!   is never missing or corrupt once a first commit was acknowledged;
//! - after the commit reached `Done`, the new value;
//! - recovery leaves no temporary file behind and finds no stale lock;
//! - a second cut right after recovery changes nothing.
//!
//! It then commits the value for real with [`Store::save`], measuring the
//! stack and the flush barriers it takes, and finally exercises
//! [`Store::update`] and the refusal of an empty file. Output goes over
//! semihosting; the exit status is 0 only if there was no violation.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod ramdir;
mod stack;

use core::cell::RefCell;
use core::fmt::Write as _;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fsatomic::error::CommitError;
use fsatomic::replace::{Progress, Replace};
use fsatomic::slots::Slots;
use fsatomic::{CorruptKind, LoadError, Mode, Protocol, Store, StoreError, codec, lock, recover};
use serde::{Deserialize, Serialize};

use ramdir::{Cut, Disk, RamDir, RamError};

/// The document under test.
const NAME: &str = "settings.json";
const MODE: Mode = Mode::PRIVATE;
/// The caller's buffer: the whole indented document, plus scratch. Slots
/// sizes its slot files for documents this large (512-byte files).
const BUF: usize = 480;
/// How many values are committed in sequence.
const VALUES: u32 = 6;
/// Violations printed in full; the rest are only counted.
const SHOWN: u32 = 10;
/// The protocols exercised, in order.
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

/// One protocol's commit, driven one step at a time.
// No heap to box the larger machine into, and only one lives at a time.
#[allow(clippy::large_enum_variant)]
enum Machine<'a, 'd> {
    Replace(Replace<'a, RamDir<'d>>),
    Slots(Slots<'a, RamDir<'d>>),
}

impl<'a, 'd> Machine<'a, 'd> {
    fn new(protocol: Protocol, data: &'a [u8]) -> Result<Self, CommitError<RamError>> {
        Ok(match protocol {
            Protocol::Slots => Machine::Slots(Slots::new(NAME, data, MODE, BUF)?),
            _ => Machine::Replace(Replace::new(NAME, data, MODE)?),
        })
    }

    fn step(&mut self, dir: &mut RamDir<'d>) -> Result<Progress, CommitError<RamError>> {
        match self {
            Machine::Replace(m) => m.step(dir),
            Machine::Slots(m) => m.step(dir),
        }
    }
}

/// What one protocol's run found.
#[derive(Default)]
struct Report {
    commits: u32,
    cuts: u32,
    violations: u32,
    orphans_swept: u32,
    max_steps: usize,
    save_stack: usize,
    recover_stack: usize,
    file_syncs: u32,
    dir_syncs: u32,
    largest_document: usize,
}

impl Report {
    fn violation(&mut self, protocol: Protocol, args: core::fmt::Arguments<'_>) {
        self.violations += 1;
        if self.violations <= SHOWN {
            hprintln!("VIOLATION: {}: {}", protocol, args);
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

/// Where a cut fell: after `k` steps, or after the acknowledged save.
struct At(usize);

impl core::fmt::Display for At {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            usize::MAX => f.write_str("after the acknowledged save"),
            k => write!(f, "step {k}"),
        }
    }
}

impl<'d> Run<'d> {
    fn dir(&self) -> RamDir<'d> {
        RamDir::new(self.disk)
    }

    fn store(&self) -> Store<'static, Settings> {
        Store::new(NAME, MODE).with_protocol(self.protocol)
    }

    /// Boot-time recovery and load of `NAME`; `None` after a violation.
    fn recover_and_load(&mut self, value: u32, at: At, cut: Cut) -> Option<Option<Settings>> {
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        match recover::recover(&mut dir, NAME, MODE) {
            Ok(n) => self.report.orphans_swept += n as u32,
            Err(e) => {
                violation!(
                    self,
                    "value {value} {at} {}: recovery failed: {e}",
                    cut.as_str()
                );
                return None;
            }
        }
        match self.store().load(&mut dir, &mut buf) {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                violation!(
                    self,
                    "value {value} {at} {}: load failed: {e}",
                    cut.as_str()
                );
                None
            }
        }
    }

    fn temp_files(&self) -> usize {
        let mut n = 0;
        self.disk.borrow().for_each_name(|name| {
            if fsatomic::name::temp_target(name) == Some(NAME) {
                n += 1;
            }
        });
        n
    }

    /// From `snapshot` (which holds `old`), commit `new` for `k` steps,
    /// cut the power with `cut`, recover, and check the oracle. Returns
    /// whether the commit had reached `Done`.
    fn cut_after(
        &mut self,
        snapshot: &Disk,
        (old, new): (Option<&Settings>, &Settings),
        k: usize,
        cut: Cut,
    ) -> bool {
        self.disk.borrow_mut().clone_from(snapshot);
        let mut dir = self.dir();
        let mut buf = [0u8; BUF];
        let value = new.generation;
        let len = match codec::encode(new, &mut buf) {
            Ok(len) => len,
            Err(e) => {
                violation!(self, "value {value}: encode failed: {e}");
                return true;
            }
        };
        let data = buf.get(..len).unwrap_or_default();

        // The writer: lock, sweep, and k steps of the state machine.
        let mut done = false;
        match lock::lock(&mut dir, NAME, MODE) {
            // The holder loses power with the lock held: no destructor runs.
            Ok(guard) => core::mem::forget(guard),
            Err(e) => violation!(self, "value {value}: lock failed: {e}"),
        }
        if let Err(e) = recover::sweep_orphans(&mut dir, Some(NAME)) {
            violation!(self, "value {value}: sweep failed: {e}");
        }
        match Machine::new(self.protocol, data) {
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

        // Power cut, boot, recovery.
        self.disk.borrow_mut().power_cut(cut);
        self.report.cuts += 1;
        let Some(loaded) = self.recover_and_load(value, At(k), cut) else {
            return done;
        };
        let what = cut.as_str();
        match (&loaded, old) {
            (Some(v), _) if v == new => {}
            (Some(v), Some(o)) if v == o && !done => {}
            (None, None) if !done => {}
            (Some(v), _) => violation!(
                self,
                "value {value} step {k} {what}: loaded generation {} (done: {done})",
                v.generation
            ),
            (None, _) => violation!(self, "value {value} step {k} {what}: document missing"),
        }
        let left = self.temp_files();
        if left != 0 {
            violation!(
                self,
                "value {value} step {k} {what}: {left} temp files after recovery"
            );
        }

        // A second cut right after recovery: nothing may change.
        self.disk.borrow_mut().power_cut(Cut::LoseAll);
        if let Some(again) = self.recover_and_load(value, At(k), Cut::LoseAll)
            && again != loaded
        {
            violation!(
                self,
                "value {value} step {k} {what}: recovery did not settle"
            );
        }
        done
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
        let r = &mut self.report;
        r.save_stack = r.save_stack.max(used.unwrap_or(usize::MAX));
        // The first Slots commit formats the slot files; count the steady
        // state, the smallest number of barriers seen.
        let (files, dirs) = (
            after.file_syncs - before.file_syncs,
            after.dir_syncs - before.dir_syncs,
        );
        if r.commits == 0 || files + dirs < r.file_syncs + r.dir_syncs {
            (r.file_syncs, r.dir_syncs) = (files, dirs);
        }
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
            stack::measure(|| self.recover_and_load(new.generation, At(usize::MAX), Cut::LoseAll));
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
        if let Err(e) = fsatomic::Dir::create_new(&mut dir, "broken.json", MODE) {
            violation!(self, "could not make broken.json: {e}");
        }
        match broken.load(&mut dir, &mut buf) {
            Err(StoreError::Load(LoadError::Corrupt(c))) if c.kind == CorruptKind::Empty => {}
            Err(e) => violation!(self, "empty file: unexpected error {e}"),
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
                while !self.cut_after(snapshot, (old.as_ref(), &new), k, cut) {
                    k += 1;
                }
                self.report.max_steps = self.report.max_steps.max(k);
            }
            self.disk.borrow_mut().clone_from(snapshot);
            self.commit(&new);
            old = Some(new);
        }
        self.extras();
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
        hprintln!(
            "{}: {} commits, {} power cuts (up to {} steps x {} kinds), {} orphans swept, {} violations",
            self.protocol,
            r.commits,
            r.cuts,
            r.max_steps + 1,
            Cut::ALL.len(),
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
    let disk: &RefCell<Disk> = DISK;
    ramdir::configure(&mut disk.borrow_mut());
    let snapshot: &mut Disk = SNAPSHOT;

    hprintln!(
        "fsatomic {} on a Cortex-M4: commits over a RAM directory, power cut between every step",
        fsatomic::VERSION
    );
    hprintln!(
        "sizes: Replace {} B, Slots {} B, StoreError {} B, CommitError {} B, FileName {} B",
        core::mem::size_of::<Replace<'_, RamDir<'_>>>(),
        core::mem::size_of::<Slots<'_, RamDir<'_>>>(),
        core::mem::size_of::<StoreError<RamError>>(),
        core::mem::size_of::<CommitError<RamError>>(),
        core::mem::size_of::<fsatomic::name::FileName>(),
    );
    let mut violations = 0;
    for protocol in PROTOCOLS {
        let mut run = Run {
            disk,
            protocol,
            report: Report::default(),
        };
        run.sequence(snapshot);
        run.print();
        violations += run.report.violations;
    }
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
