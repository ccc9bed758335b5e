//! The crash explorer: runs a scenario over [`SimFs`], and at every crash
//! point checks every crash state (or, above a bound, a seeded sample that
//! says it is one) against the [`crate::oracle`] — after recovery, and
//! after a second power cut inside recovery (depth 2).
//!
//! ```
//! use fsatomic_testkit::explorer::{Explorer, Scenario};
//! use fsatomic_testkit::profile::Profile;
//! use fsatomic_testkit::protocol::Whole;
//!
//! let report = Explorer::new(Profile::PosixWorst, 4096).explore(&Whole::replace(), &Scenario::small());
//! assert_eq!(report.violations, 0, "{report}");
//! assert!(report.exhaustive());
//! ```
//!
//! # How a run goes
//!
//! 1. The protocol's [`Protocol::setup`] runs and is made durable.
//! 2. The scenario commits its values one after the other; each commit is
//!    *acknowledged* when it returns. The simulator records a snapshot
//!    after every call that changes the durable image or the log: these
//!    are the crash points.
//! 3. For each crash point, the oracle's expectation is fixed (the last
//!    acknowledged value, or the one in flight); for each crash state, a
//!    fresh simulator boots from the crash image; a reader's
//!    [`Protocol::load`] must already pass the oracle there (readers do not
//!    wait for recovery); then [`Protocol::recover`] runs (recording its
//!    own crash points), then `load` again, the leftover and lock checks,
//!    and one more commit that must load back.
//! 4. At depth 2, every crash state of every crash point of that recovery
//!    is checked the same way (recover again, load, ...).
//!
//! Crash images already checked with the same expectation are skipped
//! (counted in [`Report::states`], not in [`Report::distinct`]).
//!
//! # Replaying a failure
//!
//! Every [`Violation`] prints a [`Locator`]. Setting the environment
//! variable `FSATOMIC_REPLAY` to it makes the explorer check that one state
//! only (no deduplication) and print what it sees; the seed, profile,
//! granularity and state index pin it down exactly.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::ControlFlow;
use std::str::FromStr;
use std::time::Instant;

use fsatomic::Dir;

use crate::oracle::{self, Expect, Judgement, ViolationKind};
use crate::profile::{Coverage, Profile};
use crate::protocol::{Failure, Loaded, Protocol};
use crate::rng::derive;
use crate::sim::{Image, SimFs};

/// The environment variable that focuses the explorer on one state.
pub const REPLAY_VAR: &str = "FSATOMIC_REPLAY";

/// Turns the simulator into the directory the protocol runs on: itself
/// ([`Plain`]), or a wrapper that breaks it on purpose
/// ([`crate::mutate::Mutation`]).
pub trait Wrap {
    /// The directory type the protocol sees.
    type Dir: Dir;
    /// Wrap one simulator handle.
    fn wrap(&self, fs: SimFs) -> Self::Dir;
    /// A name for reports.
    fn label(&self) -> String;
}

/// No wrapper: the protocol runs on the simulator itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Wrap for Plain {
    type Dir = SimFs;

    fn wrap(&self, fs: SimFs) -> SimFs {
        fs
    }

    fn label(&self) -> String {
        "-".to_owned()
    }
}

/// A sequence of values to commit, each acknowledged when its commit
/// returns, and a fresh value for the usability check after recovery.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// A name for reports.
    pub name: String,
    /// The values, committed in order.
    pub values: Vec<Vec<u8>>,
    /// Committed after recovery to check that the directory still works.
    pub fresh: Vec<u8>,
}

impl Scenario {
    /// A scenario committing `values` in order.
    pub fn new(name: &str, values: Vec<Vec<u8>>) -> Scenario {
        Scenario {
            name: name.to_owned(),
            values,
            fresh: oracle::value(1000, 96),
        }
    }

    /// Four commits onto an absent file: 300 B (a create), 700 B (a
    /// replace crossing a 512-byte boundary), 200 B (a replace by a shorter
    /// value), 500 B. Four, so that a journal compacting every two records
    /// compacts twice (the second time over a journal that no longer
    /// starts at record 1).
    pub fn standard() -> Scenario {
        Scenario::new(
            "create+grow+shrink+grow",
            vec![
                oracle::value(1, 300),
                oracle::value(2, 700),
                oracle::value(3, 200),
                oracle::value(4, 500),
            ],
        )
    }

    /// Two short commits: a create and a replace (for quick runs and
    /// doctests).
    pub fn small() -> Scenario {
        Scenario::new(
            "create+replace",
            vec![oracle::value(1, 64), oracle::value(2, 80)],
        )
    }
}

/// Where a crash state is: enough to replay it exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locator {
    /// The profile.
    pub profile: Profile,
    /// The effective write granularity.
    pub granularity: u64,
    /// The explorer's seed.
    pub seed: u64,
    /// The crash point of the scenario (0: before its first call).
    pub point: usize,
    /// The index of the crash state at that point.
    pub state: u64,
    /// For a second power cut: the crash point within recovery (from 1)
    /// and the state index there.
    pub recovery: Option<(usize, u64)>,
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{:#x}/{}/{}",
            self.profile, self.granularity, self.seed, self.point, self.state
        )?;
        if let Some((p, s)) = self.recovery {
            write!(f, "/{p}/{s}")?;
        }
        Ok(())
    }
}

impl FromStr for Locator {
    type Err = String;

    /// Parse `profile/granularity/seed/point/state[/rpoint/rstate]`.
    fn from_str(s: &str) -> Result<Locator, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let num = |t: &str| number(t).map_err(|e| format!("{t:?}: {e}"));
        if parts.len() != 5 && parts.len() != 7 {
            return Err(format!(
                "expected profile/granularity/seed/point/state[/rpoint/rstate], got {s:?}"
            ));
        }
        Ok(Locator {
            profile: Profile::parse(parts[0]).ok_or(format!("unknown profile {:?}", parts[0]))?,
            granularity: num(parts[1])?,
            seed: num(parts[2])?,
            point: num(parts[3])? as usize,
            state: num(parts[4])?,
            recovery: if parts.len() == 7 {
                Some((num(parts[5])? as usize, num(parts[6])?))
            } else {
                None
            },
        })
    }
}

/// One failed check, with everything needed to understand and replay it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// What went wrong.
    pub kind: ViolationKind,
    /// The details.
    pub message: String,
    /// Where: replays with `FSATOMIC_REPLAY=<locator>`.
    pub at: Locator,
    /// The protocol.
    pub protocol: &'static str,
    /// The wrapper around the simulator (`-` for none).
    pub wrapper: String,
    /// The call after which the power was cut, and the crash state.
    pub crash: String,
    /// For a second cut: the recovery call after which it came, and that
    /// crash state.
    pub recovery_crash: Option<String>,
    /// The directory as the board booted from it (after the last cut).
    pub image: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} on {} at {} B (wrapper {}): {}: {}",
            self.protocol,
            self.at.profile,
            self.at.granularity,
            self.wrapper,
            self.kind,
            self.message
        )?;
        writeln!(f, "  power cut at point {}: {}", self.at.point, self.crash)?;
        if let Some(r) = &self.recovery_crash {
            writeln!(f, "  then again during recovery: {r}")?;
        }
        writeln!(f, "  booted from: {}", self.image)?;
        write!(f, "  replay: {REPLAY_VAR}={}", self.at)
    }
}

/// What one exploration did and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The protocol.
    pub protocol: &'static str,
    /// The scenario.
    pub scenario: String,
    /// The profile.
    pub profile: Profile,
    /// The effective write granularity.
    pub granularity: u64,
    /// The wrapper (`-` for none).
    pub wrapper: String,
    /// The seed.
    pub seed: u64,
    /// Crash points of the scenario (including the state before it).
    pub crash_points: u64,
    /// Crash states visited at those points.
    pub states: u64,
    /// Crash points inside recoveries (depth 2).
    pub recovery_points: u64,
    /// Crash states visited inside recoveries.
    pub recovery_states: u64,
    /// States actually booted and checked (after deduplication).
    pub distinct: u64,
    /// Scenario crash points whose space exceeded the bound (sampled).
    pub sampled_points: u64,
    /// Recovery crash points whose space exceeded the bound (sampled).
    pub recovery_sampled_points: u64,
    /// Checks that failed.
    pub violations: u64,
    /// Failed checks by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// The first few violations, in full.
    pub examples: Vec<Violation>,
}

impl Report {
    /// Whether every crash point (and every recovery crash point) was
    /// explored exhaustively.
    pub fn exhaustive(&self) -> bool {
        self.sampled_points == 0 && self.recovery_sampled_points == 0
    }

    /// All crash states visited, at both depths.
    pub fn total_states(&self) -> u64 {
        self.states + self.recovery_states
    }

    /// The header of [`Report::row`].
    pub fn header() -> String {
        let cols = ["points", "states", "rec.pts", "rec.sts", "distinct"];
        table_row(
            "protocol",
            "profile",
            "gran",
            cols,
            "coverage",
            "violations",
        )
    }

    /// One line for the table printed by the tests and kept in
    /// `docs/crash-testing.md`.
    pub fn row(&self) -> String {
        let coverage = if self.exhaustive() {
            "exhaustive".to_owned()
        } else {
            format!(
                "SAMPLED {}+{} pts (seeded)",
                self.sampled_points, self.recovery_sampled_points
            )
        };
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let violations = if self.violations == 0 {
            "0".to_owned()
        } else {
            format!("{} ({})", self.violations, kinds.join(", "))
        };
        let counts = [
            self.crash_points,
            self.states,
            self.recovery_points,
            self.recovery_states,
            self.distinct,
        ];
        table_row(
            self.protocol,
            self.profile.name(),
            &granularity_label(self.granularity),
            counts,
            &coverage,
            &violations,
        )
    }

    /// Panic with the first violations if there were any.
    pub fn assert_clean(&self) {
        if self.violations > 0 {
            let mut msg = format!("{} violation(s):\n{}\n", self.violations, self.row());
            for v in &self.examples {
                msg.push_str(&format!("{v}\n"));
            }
            panic!("{msg}");
        }
    }

    fn add(&mut self, keep: usize, v: Violation) {
        self.violations += 1;
        *self.by_kind.entry(v.kind.to_string()).or_default() += 1;
        if self.examples.len() < keep {
            self.examples.push(v);
        }
    }
}

/// One line of the report table.
fn table_row(
    protocol: &str,
    profile: &str,
    granularity: &str,
    [points, states, rpoints, rstates, distinct]: [impl fmt::Display; 5],
    coverage: &str,
    violations: &str,
) -> String {
    format!(
        "{protocol:<9} {profile:<15} {granularity:>6} {points:>6} {states:>9} {rpoints:>9} {rstates:>9} {distinct:>9}  {coverage:<26} {violations}"
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", Report::header())?;
        write!(f, "{}", self.row())?;
        for v in &self.examples {
            write!(f, "\n{v}")?;
        }
        Ok(())
    }
}

/// A number in decimal or `0x` hex.
fn number(t: &str) -> Result<u64, std::num::ParseIntError> {
    match t.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    }
}

/// `1 B`, `512 B`, `4 KiB`.
pub fn granularity_label(g: u64) -> String {
    if g >= 1024 && g.is_multiple_of(1024) {
        format!("{}KiB", g / 1024)
    } else {
        format!("{g}B")
    }
}

/// Every profile × granularity (1 B, 512 B, 4 KiB) worth running: a
/// granularity the profile raises to one already listed is left out (FAT
/// writes whole 512-byte sectors).
pub fn matrix() -> Vec<(Profile, u64)> {
    let mut out = Vec::new();
    for p in Profile::ALL {
        let mut seen = Vec::new();
        for g in [1, 512, 4096] {
            let e = p.effective_granularity(g);
            if !seen.contains(&e) {
                seen.push(e);
                out.push((p, e));
            }
        }
    }
    out
}

/// Explore `protocol` running `scenario` on the simulator wrapped by
/// `wrap`, with [`Explorer::budgeted`], over the [`matrix`] rows whose
/// profile `keep` accepts; print the table in one piece (so that parallel
/// tests do not interleave their tables) and return the reports.
pub fn sweep<P: Protocol, W: Wrap>(
    protocol: &P,
    scenario: &Scenario,
    wrap: &W,
    keep: impl Fn(Profile) -> bool,
) -> Vec<Report> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut lines = vec![Report::header()];
    for (p, g) in matrix().into_iter().filter(|(p, _)| keep(*p)) {
        let t = Instant::now();
        let r = Explorer::budgeted(p, g).explore_wrapped(protocol, scenario, wrap);
        lines.push(format!("{} {:>8.1?}", r.row(), t.elapsed()));
        out.push(r);
    }
    let total: u64 = out.iter().map(Report::total_states).sum();
    let violations: u64 = out.iter().map(|r| r.violations).sum();
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    lines.push(format!(
        "{} [{}]: {total} crash states, {violations} violations in {:.1?} ({build} build)",
        protocol.name(),
        wrap.label(),
        start.elapsed(),
    ));
    println!("{}", lines.join("\n"));
    out
}

/// The explorer's settings. Build with [`Explorer::new`] and the setters.
#[derive(Clone, Debug)]
pub struct Explorer {
    /// The crash-model profile.
    pub profile: Profile,
    /// The write granularity asked for (the profile may raise it).
    pub granularity: u64,
    /// The seed of every random choice (tokens, garbage, samples).
    pub seed: u64,
    /// Above this many crash states at one point, sample instead.
    pub bound: u64,
    /// How many states to sample at a point above the bound.
    pub samples: u64,
    /// 1: cut the power once; 2: also once more inside recovery.
    pub depth: u8,
    /// How many violations to keep in full.
    pub keep: usize,
    /// Check only this state (see [`REPLAY_VAR`]).
    pub focus: Option<Locator>,
}

/// The default seed.
pub const DEFAULT_SEED: u64 = 0x5eed_f5a7;

struct Run<'a, P, W> {
    ex: &'a Explorer,
    protocol: &'a P,
    scenario: &'a Scenario,
    wrap: &'a W,
    seen: HashSet<u128>,
    report: Report,
}

impl Explorer {
    /// The explorer the test suite runs: exhaustive up to 4096 states per
    /// crash point and 256 seeded samples above in release builds (1024
    /// and 24 in debug, so that a plain `cargo test` stays quick), at the
    /// default seed; `FSATOMIC_BOUND`, `FSATOMIC_SAMPLES` and
    /// `FSATOMIC_SEED` (decimal or `0x` hex) override them.
    pub fn budgeted(profile: Profile, granularity: u64) -> Explorer {
        let env = |name: &str| number(&std::env::var(name).ok()?).ok();
        let (bound, samples) = if cfg!(debug_assertions) {
            (1024, 24)
        } else {
            (4096, 256)
        };
        Explorer::new(profile, granularity)
            .seed(env("FSATOMIC_SEED").unwrap_or(DEFAULT_SEED))
            .bound(env("FSATOMIC_BOUND").unwrap_or(bound))
            .samples(env("FSATOMIC_SAMPLES").unwrap_or(samples))
    }

    /// An explorer for `profile` at `granularity` bytes, with the default
    /// seed, a bound of 4096 states per crash point, 256 samples above it,
    /// and depth 2. If [`REPLAY_VAR`] names a state of this profile,
    /// granularity and seed, the explorer checks only that state.
    pub fn new(profile: Profile, granularity: u64) -> Explorer {
        let ex = Explorer {
            profile,
            granularity: profile.effective_granularity(granularity),
            seed: DEFAULT_SEED,
            bound: 4096,
            samples: 256,
            depth: 2,
            keep: 3,
            focus: None,
        };
        ex.with_env_focus()
    }

    fn with_env_focus(mut self) -> Explorer {
        self.focus = std::env::var(REPLAY_VAR)
            .ok()
            .and_then(|s| s.parse::<Locator>().ok())
            .filter(|l| {
                l.profile == self.profile
                    && l.granularity == self.granularity
                    && l.seed == self.seed
            });
        self
    }

    /// Use `seed`.
    pub fn seed(mut self, seed: u64) -> Explorer {
        self.seed = seed;
        self.with_env_focus()
    }

    /// Sample above `bound` states per crash point.
    pub fn bound(mut self, bound: u64) -> Explorer {
        self.bound = bound;
        self
    }

    /// Sample `samples` states at a crash point above the bound.
    pub fn samples(mut self, samples: u64) -> Explorer {
        self.samples = samples;
        self
    }

    /// Check only the state at `at`.
    pub fn focus(mut self, at: Locator) -> Explorer {
        self.focus = Some(at);
        self
    }

    /// Explore `protocol` running `scenario` directly on the simulator.
    pub fn explore<P: Protocol>(&self, protocol: &P, scenario: &Scenario) -> Report {
        self.explore_wrapped(protocol, scenario, &Plain)
    }

    /// Explore `protocol` running `scenario` on the simulator wrapped by
    /// `wrap`.
    pub fn explore_wrapped<P: Protocol, W: Wrap>(
        &self,
        protocol: &P,
        scenario: &Scenario,
        wrap: &W,
    ) -> Report {
        let report = Report {
            protocol: protocol.name(),
            scenario: scenario.name.clone(),
            profile: self.profile,
            granularity: self.granularity,
            wrapper: wrap.label(),
            seed: self.seed,
            ..Report::default()
        };
        let mut run = Run {
            ex: self,
            protocol,
            scenario,
            wrap,
            seen: HashSet::new(),
            report,
        };
        run.go();
        run.report
    }
}

impl<P: Protocol, W: Wrap> Run<'_, P, W> {
    fn scenario_failure(&mut self, message: String) {
        let ex = self.ex;
        let v = Violation {
            kind: ViolationKind::Scenario,
            message,
            at: self.locator(0, 0, None),
            protocol: self.protocol.name(),
            wrapper: self.wrap.label(),
            crash: "no power cut".to_owned(),
            recovery_crash: None,
            image: String::new(),
        };
        self.report.add(ex.keep, v);
    }

    fn locator(&self, point: usize, state: u64, recovery: Option<(usize, u64)>) -> Locator {
        Locator {
            profile: self.ex.profile,
            granularity: self.ex.granularity,
            seed: self.ex.seed,
            point,
            state,
            recovery,
        }
    }

    /// Set up, then commit the scenario's values, recording every crash
    /// point; return the first crash point of each commit, of its
    /// confirmation and the last one before its acknowledgement. `Err`
    /// says how the scenario failed without a power cut.
    fn commit_all(&self, sim: &SimFs) -> Result<[Vec<usize>; 3], String> {
        let values = &self.scenario.values;
        let setup = self.protocol.setup(&mut self.wrap.wrap(sim.clone()));
        setup.map_err(|e| format!("setup failed: {e}"))?;
        sim.settle();
        sim.record();
        let mut dir = self.wrap.wrap(sim.clone());
        let (mut starts, mut confirms, mut acks) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in values.iter().enumerate() {
            starts.push(sim.recorded());
            let committed = self.protocol.commit(&mut dir, v);
            committed.map_err(|e| format!("commit #{k} failed without a power cut: {e}"))?;
            confirms.push(sim.recorded());
            match self.protocol.confirm(&mut dir) {
                Some(Err(e)) => {
                    return Err(format!("confirming #{k} failed without a power cut: {e}"));
                }
                Some(Ok(())) => {}
                None => confirms[k] = starts[k],
            }
            acks.push(sim.recorded() - 1);
            // Without a power cut, the previous value is exact.
            if let Some(previous) = self.protocol.load_previous(&mut dir) {
                oracle::judge_previous(values, Some(k), false, &previous)
                    .map_err(|(_, message)| format!("after commit #{k}: {message}"))?;
            }
            match self.protocol.load(&mut dir) {
                Ok(Some(b)) if b == *v => {}
                other => {
                    let got = other.map(|o| o.map(|b| oracle::value_number(&b)));
                    let what = "does not load back without a power cut";
                    return Err(format!("value #{k} {what}: {got:?}"));
                }
            }
        }
        Ok([starts, confirms, acks])
    }

    fn go(&mut self) {
        let ex = self.ex;
        let sim = SimFs::new(ex.profile, ex.granularity, derive(ex.seed, 0, 0));
        let [starts, confirms, acks] = match self.commit_all(&sim) {
            Ok(points) => points,
            Err(message) => return self.scenario_failure(message),
        };
        let snaps = sim.take_snapshots();
        self.report.crash_points = snaps.len() as u64;
        let focus = ex.focus.clone();
        if let Some(f) = &focus {
            println!(
                "replaying {f} ({} crash points in the scenario)",
                snaps.len()
            );
        }
        for (i, snap) in snaps.iter().enumerate() {
            if focus.as_ref().is_some_and(|f| f.point != i) {
                continue;
            }
            let expect = expectation(i, &starts, &confirms, &acks);
            let space = snap.crash_space(ex.profile);
            let seed = derive(ex.seed, 1, i as u64);
            let coverage = space.explore(ex.bound, ex.samples, seed, |idx, a, img| {
                if focus.as_ref().is_some_and(|f| f.state != idx) {
                    return ControlFlow::Continue(());
                }
                self.report.states += 1;
                let crash = format!(
                    "after call `{}`, state {idx}: {}",
                    snap.label,
                    clip(&a.describe(&snap.log), 900)
                );
                if focus.is_some() {
                    println!(
                        "crash point {i} (after `{}`), state {idx}:\n  {}",
                        snap.label,
                        a.describe(&snap.log)
                    );
                    println!("  image: {img}\n  expected: {expect}");
                }
                let at = self.locator(i, idx, None);
                self.check(&expect, img, 1, at, crash, None);
                ControlFlow::Continue(())
            });
            if coverage == Coverage::Sampled {
                self.report.sampled_points += 1;
            }
        }
    }

    /// Boot from `img`, recover (exploring crashes inside recovery while
    /// `depth` allows), and judge.
    fn check(
        &mut self,
        expect: &Expect,
        img: Image,
        depth: u8,
        at: Locator,
        crash: String,
        recovery_crash: Option<String>,
    ) {
        let ex = self.ex;
        let focus = ex.focus.clone();
        if focus.is_none() && !self.seen.insert(state_key(&img, expect, depth)) {
            return;
        }
        self.report.distinct += 1;
        let boot_seed = derive(
            ex.seed,
            at.point as u64 ^ (u64::from(depth) << 56),
            at.state ^ at.recovery.map_or(0, |(p, s)| ((p as u64) << 40) ^ s),
        );
        let sim = SimFs::from_image(img.clone(), ex.profile, ex.granularity, boot_seed);
        let record = depth < ex.depth;
        if record {
            sim.record();
        }
        let mut dir = self.wrap.wrap(sim.clone());
        // A reader may run before recovery (readers take no lock): it must
        // already see the old or the new value.
        let before = self.protocol.load(&mut dir);
        let before_previous = self.protocol.load_previous(&mut dir);
        let recovered = self.protocol.recover(&mut dir);
        if record {
            let snaps = sim.take_snapshots();
            for (j, snap) in snaps.iter().enumerate().skip(1) {
                let wanted = focus.as_ref().and_then(|f| f.recovery);
                if wanted.is_some_and(|(p, _)| p != j) {
                    continue;
                }
                self.report.recovery_points += 1;
                let space = snap.crash_space(ex.profile);
                let rseed = derive(ex.seed, 2, boot_seed ^ j as u64);
                let coverage = space.explore(ex.bound, ex.samples, rseed, |idx, a, img2| {
                    if wanted.is_some_and(|(_, s)| s != idx) {
                        return ControlFlow::Continue(());
                    }
                    self.report.recovery_states += 1;
                    let rc = format!(
                        "after recovery call `{}`, state {idx}: {}",
                        snap.label,
                        clip(&a.describe(&snap.log), 600)
                    );
                    if focus.is_some() {
                        println!("  recovery crash point {j}: {rc}\n  image: {img2}");
                    }
                    let mut at2 = at.clone();
                    at2.recovery = Some((j, idx));
                    self.check(expect, img2, depth + 1, at2, crash.clone(), Some(rc));
                    ControlFlow::Continue(())
                });
                if coverage == Coverage::Sampled {
                    self.report.recovery_sampled_points += 1;
                }
            }
            if focus.as_ref().is_some_and(|f| f.recovery.is_some()) {
                return;
            }
        }
        let verdict = self.verdict(expect, &sim, &mut dir, before, before_previous, recovered);
        if let Err((kind, message)) = verdict {
            if focus.is_some() {
                println!("  VIOLATION {kind}: {message}");
            }
            let v = Violation {
                kind,
                message,
                at,
                protocol: self.protocol.name(),
                wrapper: self.wrap.label(),
                crash,
                recovery_crash,
                image: img.to_string(),
            };
            self.report.add(ex.keep, v);
        }
    }

    /// The oracle on one booted crash state, given what a reader loaded
    /// before recovery and what recovery returned: then load again, the
    /// leftover and lock checks, and one more commit that must load back.
    fn verdict(
        &self,
        expect: &Expect,
        sim: &SimFs,
        dir: &mut W::Dir,
        before: Loaded,
        before_previous: Option<Loaded>,
        recovered: Result<(), Failure>,
    ) -> Judgement {
        let values = &self.scenario.values;
        oracle::judge(values, expect, &before)
            .map_err(|(kind, message)| (kind, format!("before recovery, {message}")))?;
        self.previous(&before, before_previous, "before recovery")?;
        if let Err(e) = recovered {
            return Err((ViolationKind::of(&e), format!("recover: {e}")));
        }
        self.no_lock(sim, "recover")?;
        let loaded = self.protocol.load(dir);
        if self.ex.focus.is_some() {
            println!(
                "  after recovery: {}\n  load: {:?}",
                sim.live(),
                loaded
                    .as_ref()
                    .map(|o| o.as_ref().map(|b| oracle::value_number(b)))
            );
        }
        let keeps = expect.tentative && self.protocol.keeps_tentative();
        let after = if keeps {
            Expect {
                tentative: false,
                ..expect.clone()
            }
        } else {
            expect.after_recovery()
        };
        oracle::judge(values, &after, &loaded)?;
        if keeps && oracle::which(values, &before) != oracle::which(values, &loaded) {
            let message = "recovery rolled back a tentative value whose deadline had not come";
            return Err((ViolationKind::Stale, message.to_owned()));
        }
        let previous = self.protocol.load_previous(dir);
        self.previous(&loaded, previous, "after recovery")?;
        self.leftovers(sim, "after recovery")?;
        let fresh = &self.scenario.fresh;
        self.protocol
            .commit(dir, fresh)
            .and_then(|()| self.protocol.confirm(dir).unwrap_or(Ok(())))
            .map_err(|e| {
                let message = format!("commit after recovery: {e}");
                (ViolationKind::NotUsable, message)
            })?;
        match self.protocol.load(dir) {
            Ok(Some(b)) if b == *fresh => {}
            other => {
                let got = other.map(|o| o.map(|b| oracle::value_number(&b)));
                let message = format!("a commit after recovery does not load back: {got:?}");
                return Err((ViolationKind::NotUsable, message));
            }
        }
        // The commit after recovery keeps what recovery left as its
        // previous value.
        if let (Some(found), Ok(recovered)) = (self.protocol.load_previous(dir), &loaded) {
            let lost =
                found.as_ref().is_ok_and(Option::is_none) && self.protocol.previous_may_be_lost();
            if found.as_ref() != Ok(recovered) && !lost {
                let show = |r: &Loaded| match r {
                    Ok(Some(b)) => format!("value v={:?}", oracle::value_number(b)),
                    Ok(None) => "none".to_owned(),
                    Err(e) => format!("{e}"),
                };
                let message = format!(
                    "after a commit following recovery, the previous value is {}, not the recovered {}",
                    show(&found),
                    show(&Ok(recovered.clone()))
                );
                return Err((ViolationKind::WrongPrevious, message));
            }
        }
        self.no_lock(sim, "commit")?;
        self.leftovers(sim, "after a commit following recovery")
    }

    /// Judge a previous value loaded beside `current`, if the protocol
    /// keeps one (and `current` is one of the values; otherwise the
    /// current value's own verdict already failed).
    fn previous(&self, current: &Loaded, previous: Option<Loaded>, when: &str) -> Judgement {
        let (Some(previous), Some(current)) =
            (previous, oracle::which(&self.scenario.values, current))
        else {
            return Ok(());
        };
        let lost = self.protocol.previous_may_be_lost();
        oracle::judge_previous(&self.scenario.values, current, lost, &previous)
            .map_err(|(kind, message)| (kind, format!("{when}, {message}")))
    }

    fn no_lock(&self, sim: &SimFs, call: &str) -> Judgement {
        match sim.locks_held() {
            0 => Ok(()),
            _ => Err((
                ViolationKind::Lock,
                format!("a lock is held after {call} returned"),
            )),
        }
    }

    fn leftovers(&self, sim: &SimFs, when: &str) -> Judgement {
        let live = sim.live();
        let temps: Vec<&str> = live.names().filter(|n| self.protocol.is_temp(n)).collect();
        let most = self.protocol.max_leftovers();
        if temps.len() <= most {
            return Ok(());
        }
        let message = format!(
            "{} temporary file(s) {when} (at most {most} allowed): {temps:?}",
            temps.len()
        );
        Err((ViolationKind::Leftovers, message))
    }
}

/// The oracle's expectation at crash point `i`, given the first crash
/// point of each commit, the first of its confirmation (a commit that is
/// not tentative confirms where it starts) and the last one before its
/// acknowledgement.
fn expectation(i: usize, starts: &[usize], confirms: &[usize], acks: &[usize]) -> Expect {
    let acked = acks.iter().rposition(|&a| a <= i);
    let next = acked.map_or(0, |k| k + 1);
    let in_flight = (next < starts.len() && starts[next] <= i).then_some(next);
    let tentative = in_flight.is_some_and(|k| confirms.get(k).is_some_and(|&c| i < c));
    Expect {
        acked,
        in_flight,
        tentative,
    }
}

/// A 128-bit key of (image, expectation, depth) for deduplication.
fn state_key(img: &Image, expect: &Expect, depth: u8) -> u128 {
    let canon = img.canonical();
    let mut a = DefaultHasher::new();
    let mut b = DefaultHasher::new();
    b.write_u64(0x9e37_79b9_7f4a_7c15);
    for h in [&mut a, &mut b] {
        canon.hash(h);
        expect.hash(h);
        depth.hash(h);
    }
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …({} more bytes)", &s[..end], s.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_follows_starts_and_acks() {
        // Commit 0 spans points 1..=3, commit 1 spans 4..=6.
        let starts = [1, 4];
        let acks = [3, 6];
        let e = |i| expectation(i, &starts, &starts, &acks);
        let x = |acked, in_flight| Expect {
            acked,
            in_flight,
            tentative: false,
        };
        assert_eq!(e(0), x(None, None));
        assert_eq!(e(1), x(None, Some(0)));
        assert_eq!(e(3), x(Some(0), None));
        assert_eq!(e(4), x(Some(0), Some(1)));
        assert_eq!(e(6), x(Some(1), None));
    }

    #[test]
    fn a_tentative_commit_is_rolled_back_until_its_confirmation_starts() {
        // Commit 0 spans 1..=5 and confirms from 4 on.
        let e = |i| expectation(i, &[1], &[4], &[5]);
        assert!(e(3).tentative && e(3).in_flight == Some(0));
        assert_eq!(e(3).after_recovery().in_flight, None);
        assert!(!e(4).tentative);
        assert_eq!(e(4).after_recovery().in_flight, Some(0));
        assert_eq!(e(5).acked, Some(0));
    }

    #[test]
    fn locators_round_trip() {
        let l = Locator {
            profile: Profile::Fat,
            granularity: 512,
            seed: DEFAULT_SEED,
            point: 12,
            state: 3,
            recovery: Some((2, 1)),
        };
        assert_eq!(l.to_string().parse::<Locator>(), Ok(l.clone()));
        let mut m = l;
        m.recovery = None;
        assert_eq!(m.to_string().parse::<Locator>(), Ok(m));
        assert!("fat/512".parse::<Locator>().is_err());
    }

    #[test]
    fn matrix_skips_granularities_a_profile_raises() {
        let m = matrix();
        assert!(m.contains(&(Profile::PosixWorst, 1)));
        assert!(m.contains(&(Profile::Fat, 512)));
        assert!(!m.contains(&(Profile::Fat, 1)));
        assert_eq!(m.len(), 14);
    }
}
