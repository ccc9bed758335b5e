//! Settings in two 2 KiB sectors of NOR flash, records appended until a
//! sector is full, then the other one erased and started ([`fsatomic::nor`]) over a
//! RAM region that obeys NOR rules ([`fsatomic::nor::ram::RamNor`]: erase
//! sets `0xFF`, programming only clears bits), with the power cut during
//! every erase and every program (eight outcomes each: nothing, all but the
//! last bit, and seeded partial erases and programs whose unit in flight
//! reads unstably), and between every two steps of
//! [`fsatomic::nor::NorCommit`]. After each cut the board boots again and
//! loads twice: the old settings or the new, never anything else, never
//! absent once a first commit returned; then a commit must load back.

use cortex_m_semihosting::hprintln;
use fsatomic::machine::Progress;
use fsatomic::nor::ram::RamNor;
use fsatomic::nor::{NorCommit, NorSlots};

use crate::{BUF, settings};

/// Commits: enough of the settings' 240-odd bytes to fill a 2 KiB region
/// twice over, so that appends and region switches are both cut.
const COMMITS: u32 = 18;

/// The flash: two sectors of 2 KiB, programmed in 4-byte units (a
/// Cortex-M0+/M4 part's internal flash is often 2 KiB pages, 32 or 64-bit
/// program units).
pub type Flash = RamNor<4096, 4, 2048>;

/// Seeds per cut point: 0 and 1 are the extremes.
const SEEDS: u64 = 8;

/// The settings' JSON as committed for value `n` (the same encoding as
/// `Store::save`).
fn encoded(n: u32, buf: &mut [u8; BUF]) -> usize {
    fsatomic::codec::encode(&settings(n), buf).unwrap_or(0)
}

fn slots(flash: &mut Flash) -> Option<NorSlots<&mut Flash>> {
    NorSlots::new(flash, 0, 2048).ok()
}

/// Load twice (a unit cut mid-program reads unstably); the document's
/// value number, `None` if absent, or an error word.
fn load(flash: &mut Flash, buf: &mut [u8; BUF]) -> Result<Option<u32>, &'static str> {
    let mut seen = None;
    for _ in 0..2 {
        let mut s = slots(flash).ok_or("layout")?;
        let got = match s.load(buf) {
            Ok(Some(n)) => {
                let text = buf.get(..n).unwrap_or_default();
                (0..=COMMITS)
                    .find(|&v| {
                        let mut want = [0u8; BUF];
                        let m = encoded(v, &mut want);
                        want.get(..m) == Some(text)
                    })
                    .map(Some)
                    .ok_or("torn")?
            }
            Ok(None) => None,
            Err(fsatomic::LoadError::Corrupt(_)) => return Err("corrupt"),
            Err(_) => return Err("error"),
        };
        if seen.is_some_and(|s| s != got) {
            return Err("reads two ways");
        }
        seen = Some(got);
    }
    seen.ok_or("no read")
}

/// What the NOR run found.
#[derive(Default)]
pub struct NorReport {
    commits: u32,
    cuts_in_ops: u32,
    cuts_between_steps: u32,
    erases: u32,
    programmed: u64,
    /// Violations found.
    pub violations: u32,
}

/// Run the NOR proof on `flash` (and `scratch`, a flash of the same size
/// for the crash copies).
pub fn run(flash: &mut Flash, scratch: &mut Flash) -> NorReport {
    let mut report = NorReport::default();
    let mut buf = [0u8; BUF];
    let mut doc = [0u8; BUF];
    for v in 0..COMMITS {
        let len = encoded(v, &mut doc);
        let new = doc.get(..len).unwrap_or_default();
        let old = v.checked_sub(1);
        let mut judge = |scratch: &mut Flash, what: &str, report: &mut NorReport, done: bool| {
            scratch.power_on();
            let got = load(scratch, &mut buf);
            let ok = match got {
                Ok(found) => found == Some(v) || (!done && found == old),
                Err(_) => false,
            };
            let usable = slots(scratch).is_some_and(|mut s| s.commit(new).is_ok())
                && load(scratch, &mut buf) == Ok(Some(v));
            if !ok || !usable {
                report.violations += 1;
                hprintln!("VIOLATION nor value {} {}: loaded {:?}", v, what, got);
            }
        };
        // Cuts during every erase and program.
        let base = flash.ops();
        let ops = {
            *scratch = flash.clone();
            let before = scratch.ops();
            let _ = slots(scratch).map(|mut s| s.commit(new));
            scratch.ops() - before
        };
        for op in 0..ops {
            for seed in 0..SEEDS {
                *scratch = flash.clone();
                scratch.cut_at(base + op, seed);
                let done = slots(scratch).is_some_and(|mut s| s.commit(new).is_ok());
                report.cuts_in_ops += 1;
                judge(scratch, "cut in an operation", &mut report, done);
            }
        }
        // Cuts between steps of the machine.
        for k in 0.. {
            *scratch = flash.clone();
            let Some(mut s) = slots(scratch) else {
                report.violations += 1;
                break;
            };
            let Ok(mut commit) = NorCommit::new::<()>(new) else {
                report.violations += 1;
                break;
            };
            let mut done = false;
            for _ in 0..k {
                match commit.step(&mut s) {
                    Ok(Progress::Done) => {
                        done = true;
                        break;
                    }
                    Ok(Progress::Pending) => {}
                    Err(_) => break,
                }
            }
            report.cuts_between_steps += 1;
            judge(scratch, "cut between steps", &mut report, done);
            if done {
                break;
            }
        }
        // The commit for real.
        let (e0, p0) = flash.wear();
        if !slots(flash).is_some_and(|mut s| s.commit(new).is_ok()) {
            report.violations += 1;
            hprintln!("VIOLATION nor value {}: the commit failed", v);
        }
        let (e1, p1) = flash.wear();
        report.erases += e1 - e0;
        report.programmed = p1 - p0;
        report.commits += 1;
    }
    report
}

impl NorReport {
    /// Print the report's lines.
    pub fn print(&self) {
        hprintln!(
            "nor: {} commits, {} power cuts inside erases and programs ({} outcomes each) and {} between NorCommit steps, {} violations",
            self.commits,
            self.cuts_in_ops,
            SEEDS,
            self.cuts_between_steps,
            self.violations
        );
        hprintln!(
            "nor: {} sector erases of 2 KiB in {} commits (records appended until a region is full); the last commit programmed {} bytes",
            self.erases,
            self.commits,
            self.programmed
        );
    }
}
