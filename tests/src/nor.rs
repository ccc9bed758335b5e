//! The crash explorer of Slots on raw NOR flash ([`fsatomic::nor`]), over
//! the core's NOR model ([`fsatomic::nor::ram::RamNor`]: erase sets
//! `0xFF`, programming only clears bits, a cut leaves each unit of an
//! erase old or erased, a prefix of a program's units and the unit in
//! flight partly programmed and reading unstably).
//!
//! A scenario commits its values through [`NorSlots::commit`]; for every
//! erase and program of the run (a cut point) and every seed (what the cut
//! leaves: seeds 0 and 1 are the extremes, the rest random draws), a fresh
//! flash replays the run with the power cut there, then is powered on and
//! checked with the one oracle ([`crate::oracle`]): `load` (twice: a unit
//! in flight reads unstably) gives the acknowledged value or the one in
//! flight, the previous version is the one before it or none, and a new
//! commit loads back. Mutants ([`NorMutant`]) break the commit's order from
//! below, as [`crate::mutate`] does for directories.

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use fsatomic::nor::NorSlots;
use fsatomic::nor::ram::{RamNor, RamNorError};

use crate::explorer::Scenario;
use crate::oracle::{self, Expect, ViolationKind};
use crate::protocol::{Failure, Loaded};

/// Bytes of flash the explorer uses: two regions of [`REGION`].
pub const FLASH: usize = 8192;
/// One region: one 4 KiB erase sector.
pub const REGION: u32 = 4096;

/// A way to break the commit from below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NorMutant {
    /// None: the flash as it is.
    Plain,
    /// Erases do nothing.
    SkipErase,
    /// An erase lands only after the next program.
    ProgramBeforeErase,
    /// A region's header is programmed before its payload.
    HeaderFirst,
}

impl NorMutant {
    /// Every mutant.
    pub const ALL: [NorMutant; 3] = [
        NorMutant::SkipErase,
        NorMutant::ProgramBeforeErase,
        NorMutant::HeaderFirst,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            NorMutant::Plain => "-",
            NorMutant::SkipErase => "skip-erase",
            NorMutant::ProgramBeforeErase => "program-before-erase",
            NorMutant::HeaderFirst => "header-first",
        }
    }
}

/// The flash under a mutant.
pub struct Mutated<const W: usize> {
    /// The flash.
    pub flash: RamNor<FLASH, W, 4096>,
    mutant: NorMutant,
    held_erase: Option<(u32, u32)>,
    held_writes: Vec<(u32, Vec<u8>)>,
}

impl<const W: usize> Mutated<W> {
    fn new(flash: RamNor<FLASH, W, 4096>, mutant: NorMutant) -> Self {
        Mutated {
            flash,
            mutant,
            held_erase: None,
            held_writes: Vec::new(),
        }
    }
}

impl<const W: usize> ErrorType for Mutated<W> {
    type Error = RamNorError;
}

impl<const W: usize> ReadNorFlash for Mutated<W> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamNorError> {
        self.flash.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        FLASH
    }
}

impl<const W: usize> NorFlash for Mutated<W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), RamNorError> {
        match self.mutant {
            NorMutant::SkipErase => Ok(()),
            NorMutant::ProgramBeforeErase => {
                self.held_erase = Some((from, to));
                Ok(())
            }
            _ => self.flash.erase(from, to),
        }
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamNorError> {
        match self.mutant {
            NorMutant::ProgramBeforeErase => {
                self.flash.write(offset, bytes)?;
                if let Some((from, to)) = self.held_erase.take() {
                    self.flash.erase(from, to)?;
                }
                Ok(())
            }
            // A record's header lies before its payload: writes are held
            // until one comes at a lower address (the header), which goes
            // first, then they follow.
            NorMutant::HeaderFirst
                if self.held_writes.first().is_none_or(|(at, _)| offset > *at) =>
            {
                self.held_writes.push((offset, bytes.to_vec()));
                Ok(())
            }
            NorMutant::HeaderFirst => {
                self.flash.write(offset, bytes)?;
                for (at, data) in std::mem::take(&mut self.held_writes) {
                    self.flash.write(at, &data)?;
                }
                Ok(())
            }
            _ => self.flash.write(offset, bytes),
        }
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct NorReport {
    /// The write unit.
    pub unit: usize,
    /// The mutant.
    pub mutant: &'static str,
    /// Erases and programs of the scenario (cut points).
    pub points: u64,
    /// Crash states checked (points × seeds).
    pub states: u64,
    /// Violations, by kind.
    pub violations: u64,
    /// The first few.
    pub examples: Vec<String>,
}

impl NorReport {
    /// One table row.
    pub fn row(&self) -> String {
        format!(
            "nor-slots  {:>3}B  {:<22} {:>6} {:>8}  {}",
            self.unit, self.mutant, self.points, self.states, self.violations
        )
    }
}

type Slots<const W: usize> = NorSlots<Mutated<W>>;

fn slots<const W: usize>(flash: RamNor<FLASH, W, 4096>, mutant: NorMutant) -> Slots<W> {
    NorSlots::new(Mutated::new(flash, mutant), 0, REGION).expect("layout")
}

/// Commit `values` in order until one fails, noting the operation count
/// after each one that returned.
fn run<const W: usize>(s: &mut Slots<W>, values: &[Vec<u8>], acks: &mut Vec<u32>) -> bool {
    for v in values {
        if s.commit(v).is_err() {
            return false;
        }
        acks.push(s.flash().flash.ops());
    }
    true
}

fn load_value<const W: usize>(s: &mut Slots<W>, previous: bool) -> Loaded {
    let mut buf = vec![0u8; REGION as usize];
    let got = if previous {
        s.load_previous(&mut buf)
    } else {
        s.load(&mut buf)
    };
    match got {
        Ok(Some(n)) => Ok(Some(buf[..n].to_vec())),
        Ok(None) => Ok(None),
        Err(fsatomic::LoadError::Corrupt(c)) => Err(Failure::Corrupt(c)),
        Err(e) => Err(Failure::Io(format!("{e:?}"))),
    }
}

/// Explore the scenario on a flash of write unit `W` under `mutant`,
/// `seeds` crash states per cut point.
pub fn explore<const W: usize>(scenario: &Scenario, mutant: NorMutant, seeds: u64) -> NorReport {
    let mut report = NorReport {
        unit: W,
        mutant: mutant.name(),
        ..NorReport::default()
    };
    // The run without a cut: where each commit's operations end.
    let mut dry = slots::<W>(RamNor::default(), mutant);
    let mut acks = Vec::new();
    if !run(&mut dry, &scenario.values, &mut acks) {
        report.violations += 1;
        report
            .examples
            .push("a commit failed without a power cut".into());
        return report;
    }
    let total = *acks.last().unwrap_or(&0);
    // Without a cut, each value loads back with the one before as its
    // previous version (checked on a second dry run, value by value).
    let mut check = slots::<W>(RamNor::default(), mutant);
    for (k, v) in scenario.values.iter().enumerate() {
        let _ = check.commit(v);
        let loaded = load_value(&mut check, false);
        let previous = load_value(&mut check, true);
        let expect = Expect {
            acked: Some(k),
            in_flight: None,
            tentative: false,
        };
        let fail = oracle::judge(&scenario.values, &expect, &loaded)
            .and_then(|()| oracle::judge_previous(&scenario.values, Some(k), false, &previous))
            .err();
        if let Some((kind, message)) = fail {
            report.violations += 1;
            report.examples.push(format!(
                "{kind} without a power cut after value #{k}: {message}"
            ));
        }
    }
    report.points = u64::from(total);
    for op in 0..total {
        let acked = acks.iter().rposition(|&a| a <= op);
        let next = acked.map_or(0, |k| k + 1);
        let expect = Expect {
            acked,
            in_flight: (next < scenario.values.len()).then_some(next),
            tentative: false,
        };
        for seed in 0..seeds {
            report.states += 1;
            let mut flash = RamNor::<FLASH, W, 4096>::default();
            flash.cut_at(op, seed);
            let mut s = slots::<W>(flash, mutant);
            let mut ignored = Vec::new();
            run(&mut s, &scenario.values, &mut ignored);
            let mut flash = s.into_inner().flash;
            flash.power_on();
            // The board reboots: the mutant's held work is lost with RAM.
            let mut s = slots::<W>(flash, mutant);
            let mut fail = None;
            let mut found = None;
            for _ in 0..2 {
                let loaded = load_value(&mut s, false);
                if let Err(v) = oracle::judge(&scenario.values, &expect, &loaded) {
                    fail = Some(v);
                    break;
                }
                found = oracle::which(&scenario.values, &loaded);
            }
            if fail.is_none() {
                let previous = load_value(&mut s, true);
                fail = oracle::judge_previous(&scenario.values, found.flatten(), true, &previous)
                    .err();
            }
            if fail.is_none() {
                let fresh = &scenario.fresh;
                let usable = s.commit(fresh).is_ok()
                    && load_value(&mut s, false).ok().flatten().as_ref() == Some(fresh);
                if !usable {
                    fail = Some((
                        ViolationKind::NotUsable,
                        "a commit after the cut does not load back".into(),
                    ));
                }
            }
            if let Some((kind, message)) = fail {
                report.violations += 1;
                if report.examples.len() < 3 {
                    report.examples.push(format!(
                        "{kind} at op {op} seed {seed} (expected {expect}): {message}"
                    ));
                }
            }
        }
    }
    report
}
