//! The bare-metal proof: fsatomic's Replace state machine on a Cortex-M4,
//! with no OS and no heap, over a RAM directory that loses its unflushed
//! state when the power is cut.
//!
//! For every value of a sequence, and for every step `k` of its Replace
//! commit, the firmware restores the disk to the previous commit, takes the
//! writers' lock, drives [`Replace::step`] by hand `k` times, cuts the power
//! with each kind of [`Cut`], boots again, runs [`recover::recover`] and
//! [`Store::load`], and checks the oracle:
//!
//! - the file holds the old value or the new one, never anything else, and
//!   is never missing or corrupt once a first commit was acknowledged;
//! - after the commit returned `Done`, the new value;
//! - recovery leaves no temporary file behind and finds no stale lock;
//! - a second cut right after recovery changes nothing.
//!
//! It then commits the value for real with [`Store::save`], measuring the
//! stack it takes, and finally exercises [`Store::update`] and the refusal
//! of an empty file. Output goes over semihosting; the exit status is 0 only
//! if there was no violation.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod ramdir;
mod stack;

use core::cell::RefCell;
use core::fmt::Write as _;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fsatomic::replace::{Progress, Replace};
use fsatomic::{CorruptKind, LoadError, Mode, Store, StoreError, codec, lock, recover};
use serde::{Deserialize, Serialize};

use ramdir::{Cut, Disk, RamDir};

/// The document under test.
const NAME: &str = "settings.json";
const MODE: Mode = Mode::PRIVATE;
/// The caller's buffer: the whole indented document, plus scratch.
const BUF: usize = 512;
/// How many values are committed in sequence.
const VALUES: u32 = 6;
/// Violations printed in full; the rest are only counted.
const SHOWN: u32 = 10;

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
    fn violation(&mut self, args: core::fmt::Arguments<'_>) {
        self.violations += 1;
        if self.violations <= SHOWN {
            hprintln!("VIOLATION: {}", args);
        }
    }
}

macro_rules! violation {
    ($report:expr, $($arg:tt)*) => { $report.violation(format_args!($($arg)*)) };
}

/// Boot, recover `NAME`, load it. Returns what was loaded, or the error as
/// text through the report.
fn recover_and_load(
    dir: &mut RamDir<'_>,
    report: &mut Report,
    context: (u32, usize, Cut),
) -> Option<Option<Settings>> {
    let (value, k, cut) = context;
    let store: Store<Settings> = Store::new(NAME, MODE);
    let mut buf = [0u8; BUF];
    match recover::recover(dir, NAME, MODE) {
        Ok(n) => report.orphans_swept += n as u32,
        Err(e) => {
            violation!(
                report,
                "value {value} {} {}: recovery failed: {e}",
                At(k),
                cut.as_str()
            );
            return None;
        }
    }
    match store.load(dir, &mut buf) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            violation!(
                report,
                "value {value} {} {}: load failed: {e}",
                At(k),
                cut.as_str()
            );
            None
        }
    }
}

/// Where a cut fell: after `k` steps, or after the acknowledged commit.
struct At(usize);

impl core::fmt::Display for At {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            usize::MAX => f.write_str("after the acknowledged save"),
            k => write!(f, "step {k}"),
        }
    }
}

fn temp_files(disk: &RefCell<Disk>) -> usize {
    let mut n = 0;
    disk.borrow().for_each_name(|name| {
        if fsatomic::name::temp_target(name) == Some(NAME) {
            n += 1;
        }
    });
    n
}

/// From the state `snapshot` (which holds `old`), commit `new` for `k`
/// steps, cut the power with `cut`, recover, and check the oracle. Returns
/// whether the commit had reached `Done`.
fn cut_after(
    disk: &RefCell<Disk>,
    snapshot: &Disk,
    (old, new): (Option<&Settings>, &Settings),
    k: usize,
    cut: Cut,
    report: &mut Report,
) -> bool {
    disk.borrow_mut().clone_from(snapshot);
    let mut dir = RamDir::new(disk);
    let mut buf = [0u8; BUF];
    let value = new.generation;
    let len = match codec::encode(new, &mut buf) {
        Ok(len) => len,
        Err(e) => {
            violation!(report, "value {value}: encode failed: {e}");
            return true;
        }
    };
    let data = buf.get(..len).unwrap_or_default();

    // The writer: lock, sweep, and k steps of the state machine.
    let mut done = false;
    match lock::lock(&mut dir, NAME, MODE) {
        // The holder loses power with the lock held: no destructor runs.
        Ok(guard) => core::mem::forget(guard),
        Err(e) => violation!(report, "value {value}: lock failed: {e}"),
    }
    if let Err(e) = recover::sweep_orphans(&mut dir, Some(NAME)) {
        violation!(report, "value {value}: sweep failed: {e}");
    }
    match Replace::<RamDir<'_>>::new(NAME, data, MODE) {
        Ok(mut commit) => {
            for _ in 0..k {
                match commit.step(&mut dir) {
                    Ok(Progress::Pending) => {}
                    Ok(Progress::Done) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        violation!(report, "value {value} step {k}: commit failed: {e}");
                        break;
                    }
                }
            }
            core::mem::forget(commit);
        }
        Err(e) => violation!(report, "value {value}: commit refused: {e}"),
    }

    // Power cut, boot, recovery.
    disk.borrow_mut().power_cut(cut);
    report.cuts += 1;
    let Some(loaded) = recover_and_load(&mut dir, report, (value, k, cut)) else {
        return done;
    };
    let what = cut.as_str();
    match (&loaded, old) {
        (Some(v), _) if v == new => {}
        (Some(v), Some(o)) if v == o && !done => {}
        (None, None) if !done => {}
        (Some(v), _) => violation!(
            report,
            "value {value} step {k} {what}: loaded generation {} (done: {done})",
            v.generation
        ),
        (None, _) => violation!(report, "value {value} step {k} {what}: file missing"),
    }
    let left = temp_files(disk);
    if left != 0 {
        violation!(
            report,
            "value {value} step {k} {what}: {left} temp files after recovery"
        );
    }

    // A second cut right after recovery: nothing may change.
    disk.borrow_mut().power_cut(Cut::LoseAll);
    if let Some(again) = recover_and_load(&mut dir, report, (value, k, Cut::LoseAll))
        && again != loaded
    {
        violation!(
            report,
            "value {value} step {k} {what}: recovery did not settle"
        );
    }
    done
}

/// Commit `new` for real, measuring stack and flush barriers, and check it.
fn commit(disk: &RefCell<Disk>, new: &Settings, report: &mut Report) {
    let mut dir = RamDir::new(disk);
    let store: Store<Settings> = Store::new(NAME, MODE);
    let mut buf = [0u8; BUF];
    let before = disk.borrow().stats();
    let (saved, used) = stack::measure(|| store.save(&mut dir, &mut buf, new));
    let after = disk.borrow().stats();
    report.save_stack = report.save_stack.max(used.unwrap_or(usize::MAX));
    report.file_syncs = report.file_syncs.max(after.file_syncs - before.file_syncs);
    report.dir_syncs = report.dir_syncs.max(after.dir_syncs - before.dir_syncs);
    if let Err(e) = saved {
        violation!(report, "value {}: save failed: {e}", new.generation);
        return;
    }
    report.commits += 1;
    if let Ok(n) = codec::encode(new, &mut buf) {
        report.largest_document = report.largest_document.max(n);
    }

    // An acknowledged commit survives the worst cut.
    disk.borrow_mut().power_cut(Cut::LoseAll);
    let (loaded, used) = stack::measure(|| {
        recover_and_load(&mut dir, report, (new.generation, usize::MAX, Cut::LoseAll))
    });
    report.recover_stack = report.recover_stack.max(used.unwrap_or(usize::MAX));
    if loaded != Some(Some(new.clone())) {
        violation!(report, "value {}: acknowledged commit lost", new.generation);
    }
}

/// `Store::update` and the refusal of an empty file, once each.
fn extras(disk: &RefCell<Disk>, report: &mut Report) {
    let mut dir = RamDir::new(disk);
    let store: Store<Settings> = Store::new(NAME, MODE);
    let mut buf = [0u8; BUF];
    match store.update(&mut dir, &mut buf, |s| {
        s.generation += 100;
        s.generation
    }) {
        Ok(g) if g == VALUES + 100 => {}
        Ok(g) => violation!(report, "update saw generation {g}"),
        Err(e) => violation!(report, "update failed: {e}"),
    }

    // A zero-length file is a torn write, never empty state.
    let broken: Store<Settings> = Store::new("broken.json", MODE);
    if let Err(e) = fsatomic::Dir::create_new(&mut dir, "broken.json", MODE) {
        violation!(report, "could not make broken.json: {e}");
    }
    match broken.load(&mut dir, &mut buf) {
        Err(StoreError::Load(LoadError::Corrupt(c))) if c.kind == CorruptKind::Empty => {}
        Err(e) => violation!(report, "empty file: unexpected error {e}"),
        Ok(_) => violation!(report, "an empty file was taken for a value"),
    }
}

#[entry]
fn main() -> ! {
    static mut DISK: RefCell<Disk> = RefCell::new(Disk::new());
    static mut SNAPSHOT: Disk = Disk::new();
    let disk: &RefCell<Disk> = DISK;
    let snapshot: &mut Disk = SNAPSHOT;

    hprintln!(
        "fsatomic {} on a Cortex-M4: Replace over a RAM directory, power cut between every step",
        fsatomic::VERSION
    );
    let mut report = Report::default();
    let mut old: Option<Settings> = None;
    for n in 1..=VALUES {
        let new = settings(n);
        snapshot.clone_from(&disk.borrow());
        for cut in Cut::ALL {
            let mut k = 0;
            while !cut_after(disk, snapshot, (old.as_ref(), &new), k, cut, &mut report) {
                k += 1;
            }
            report.max_steps = report.max_steps.max(k);
        }
        disk.borrow_mut().clone_from(snapshot);
        commit(disk, &new, &mut report);
        old = Some(new);
    }
    extras(disk, &mut report);

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
        "replace: {} commits, {} power cuts at {} steps x {} kinds, {} orphans swept",
        report.commits,
        report.cuts,
        report.max_steps + 1,
        Cut::ALL.len(),
        report.orphans_swept
    );
    hprintln!(
        "flush barriers per commit: {} file + {} directory; largest document {} B",
        report.file_syncs,
        report.dir_syncs,
        report.largest_document
    );
    hprintln!(
        "stack: commit path (Store::save) {}, recovery + load {}",
        stack(report.save_stack),
        stack(report.recover_stack)
    );
    hprintln!("violations: {}", report.violations);
    if report.violations == 0 {
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
