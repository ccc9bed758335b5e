//! Random operation sequences with several power cuts per input, checked
//! against a `HashMap` model of the acknowledged value of each file: the
//! driver of the `ops_powercuts` fuzz target, also run from a seeded test.
//!
//! Three files share one directory: `a.json` kept with Replace, `b.json`
//! with Journal, `c.json` with Slots (on the `fat` profile, where Replace
//! and Journal are not safe, all three use Slots). The input bytes choose
//! the profile, the write granularity, and a sequence of operations:
//! commit a fresh value to a file, load a file, arm a power cut after the
//! next N crash points, or cut the power now. When the power goes, the
//! driver picks one crash state (by the input), boots from it, possibly
//! arms another cut inside recovery, recovers every file, and checks each
//! against the model: the acknowledged value, or the one whose commit was
//! cut; nothing torn, no leftovers, no lock held. The model then takes
//! what was loaded, and the sequence goes on from there — so a recovery
//! that leaves a state the *next* commit or cut trips over is caught too
//! (one cut per input missed such bugs elsewhere).

use std::collections::HashMap;
use std::ops::ControlFlow;

use crate::explorer::{Plain, Wrap};
use crate::oracle;
use crate::profile::Profile;
use crate::protocol::{Failure, Journal, Protocol, Whole};
use crate::rng::derive;
use crate::sim::{Image, SimFs};

/// The most operations one input runs.
pub const MAX_OPS: usize = 48;

/// The files, in order.
pub const FILES: [&str; 3] = ["a.json", "b.json", "c.json"];

/// One of the protocols (the trait has generic methods, so it is not
/// object-safe; this enum dispatches).
#[derive(Clone, Debug)]
pub enum AnyProtocol {
    /// [`Whole`]: Replace or Slots through `Store`.
    Whole(Whole),
    /// [`Journal`] (boxed: it holds two stores and their states).
    Journal(Box<Journal>),
}

macro_rules! dispatch {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            AnyProtocol::Whole($p) => $e,
            AnyProtocol::Journal($p) => $e,
        }
    };
}

impl AnyProtocol {
    fn commit<D: fsatomic::Dir>(&self, dir: &mut D, v: &[u8]) -> Result<(), Failure> {
        dispatch!(self, p => p.commit(dir, v))
    }

    fn load<D: fsatomic::Dir>(&self, dir: &mut D) -> Result<Option<Vec<u8>>, Failure> {
        dispatch!(self, p => p.load(dir))
    }

    fn recover<D: fsatomic::Dir>(&self, dir: &mut D) -> Result<(), Failure> {
        dispatch!(self, p => p.recover(dir))
    }

    fn name(&self) -> &'static str {
        dispatch!(self, p => p.name())
    }
}

/// The protocols of [`FILES`] under `profile`.
pub fn protocols(profile: Profile) -> [AnyProtocol; 3] {
    let slots = |file| {
        AnyProtocol::Whole(Whole {
            file,
            ..Whole::slots()
        })
    };
    if profile.atomic_replace() {
        [
            AnyProtocol::Whole(Whole {
                file: FILES[0],
                ..Whole::replace()
            }),
            AnyProtocol::Journal(Box::new(Journal::default().on(FILES[1]))),
            slots(FILES[2]),
        ]
    } else {
        [slots(FILES[0]), slots(FILES[1]), slots(FILES[2])]
    }
}

/// What one input did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Operations run.
    pub ops: u32,
    /// Commits acknowledged.
    pub commits: u32,
    /// Power cuts (including cuts inside recovery).
    pub cuts: u32,
    /// Power cuts that hit a commit in flight.
    pub cuts_in_commit: u32,
    /// Power cuts that hit a recovery.
    pub cuts_in_recovery: u32,
}

struct Input<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.pos).copied();
        self.pos += 1;
        b
    }

    fn byte_or(&mut self, default: u8) -> u8 {
        self.byte().unwrap_or(default)
    }
}

struct Driver<'a, W> {
    input: Input<'a>,
    wrap: &'a W,
    profile: Profile,
    granularity: u64,
    seed: u64,
    protos: [AnyProtocol; 3],
    model: HashMap<&'static str, Option<Vec<u8>>>,
    in_flight: Option<(usize, Vec<u8>)>,
    sim: SimFs,
    boots: u64,
    out: Outcome,
    trace: Vec<String>,
}

/// Run one input over the plain simulator. `Err` describes a violation.
pub fn run(input: &[u8]) -> Result<Outcome, String> {
    run_wrapped(input, &Plain)
}

/// Run one input over the simulator wrapped by `wrap` (to check that the
/// driver catches a broken filesystem).
pub fn run_wrapped<W: Wrap>(input: &[u8], wrap: &W) -> Result<Outcome, String> {
    let mut input = Input {
        bytes: input,
        pos: 0,
    };
    let cfg = input.byte_or(0);
    let profile = Profile::ALL[usize::from(cfg % 5)];
    let granularity = match (cfg / 5) % 4 {
        0 => 1,
        1 => 512,
        _ => 4096,
    };
    let seed = u64::from(input.byte_or(0)) | (u64::from(input.byte_or(0)) << 8);
    let mut d = Driver {
        input,
        wrap,
        profile,
        granularity,
        seed,
        protos: protocols(profile),
        model: FILES.iter().map(|f| (*f, None)).collect(),
        in_flight: None,
        sim: SimFs::new(profile, granularity, derive(seed, 0, 0)),
        boots: 0,
        out: Outcome::default(),
        trace: Vec::new(),
    };
    match d.go() {
        Ok(()) => Ok(d.out),
        Err(e) => Err(format!(
            "{e}\n  profile {profile}, granularity {} B, seed {seed:#x}\n  trace: {}",
            d.sim.granularity(),
            d.trace.join("; ")
        )),
    }
}

impl<W: Wrap> Driver<'_, W> {
    fn dir(&self) -> W::Dir {
        self.wrap.wrap(self.sim.clone())
    }

    fn go(&mut self) -> Result<(), String> {
        let mut counter = 0u64;
        while let Some(op) = self.input.byte() {
            if self.out.ops as usize >= MAX_OPS {
                break;
            }
            self.out.ops += 1;
            let k = usize::from(op >> 4) % 3;
            let (proto, file) = (self.protos[k].clone(), FILES[k]);
            let name = proto.name();
            match op & 0x0f {
                0..=6 => {
                    counter += 1;
                    let len = 40 + usize::from(self.input.byte_or(0)) * 7 / 2;
                    let value = oracle::value(counter, len);
                    self.trace
                        .push(format!("commit {file} v={counter} ({len} B)"));
                    self.in_flight = Some((k, value.clone()));
                    match proto.commit(&mut self.dir(), &value) {
                        Ok(()) => {
                            self.model.insert(file, Some(value));
                            self.in_flight = None;
                            self.out.commits += 1;
                        }
                        Err(_) if self.sim.is_cut() => self.out.cuts_in_commit += 1,
                        Err(e) => {
                            return Err(format!(
                                "{name} commit of {file} failed without a power cut: {e}"
                            ));
                        }
                    }
                }
                7..=9 => {
                    self.trace.push(format!("load {file}"));
                    let got = proto.load(&mut self.dir());
                    if got.as_ref().ok() != Some(&self.model[file]) {
                        let what = describe(&got, &self.model[file]);
                        return Err(format!("{name} load of {file} without a power cut: {what}"));
                    }
                }
                10..=12 => {
                    let n = 1 + u64::from(self.input.byte_or(0) % 16);
                    self.trace.push(format!("arm cut after {n}"));
                    self.sim.cut_after(n);
                }
                _ => {
                    self.trace.push("cut".to_owned());
                    self.sim.cut_after(0);
                }
            }
            if !self.sim.is_cut() && self.sim.locks_held() != 0 {
                return Err("a lock is held after the operation returned".to_owned());
            }
            if self.sim.is_cut() {
                self.crash()?;
            }
        }
        // A last cut with nothing in flight: every acknowledged value must
        // be there.
        self.trace.push("final cut".to_owned());
        self.sim.cut_after(0);
        self.crash()
    }

    /// The power is off: pick a crash state, boot, recover (perhaps cut
    /// again), check every file against the model.
    fn crash(&mut self) -> Result<(), String> {
        let mut snapshot = self.sim.snapshot();
        for round in 0..4 {
            self.out.cuts += 1;
            self.boots += 1;
            let pick = u64::from(self.input.byte_or(0) % 40);
            let space = snapshot.crash_space(self.profile);
            let mut image = Image::new();
            let mut how = String::new();
            space.sample(derive(self.seed, self.boots, 1), pick + 1, |i, a, img| {
                if i == pick {
                    how = a.describe(&snapshot.log);
                    image = img;
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            self.trace
                .push(format!("boot #{} from state {pick}", self.boots));
            self.sim = SimFs::from_image(
                image.clone(),
                self.profile,
                self.granularity,
                derive(self.seed, self.boots, 2),
            );
            // At most three cuts in a row inside recovery; then the power
            // stays on.
            let arm = self.input.byte_or(0);
            if arm & 0x80 != 0 && round < 3 {
                self.sim.cut_after(1 + u64::from(arm & 7));
            }
            let mut cut = false;
            for p in self.protos.clone() {
                match p.recover(&mut self.dir()) {
                    Ok(()) => {}
                    Err(_) if self.sim.is_cut() => {
                        cut = true;
                        break;
                    }
                    Err(e) => {
                        return Err(format!(
                            "{} recovery failed: {e}\n  crash state: {how}\n  booted from: {image}",
                            p.name()
                        ));
                    }
                }
            }
            // The cut may also come right after recovery's last step.
            if cut || self.sim.is_cut() {
                self.out.cuts_in_recovery += 1;
                self.trace.push("cut during recovery".to_owned());
                snapshot = self.sim.snapshot();
                continue;
            }
            return self.check(&how, &image);
        }
        Err("recovery was cut although the power should have stayed on".to_owned())
    }

    fn check(&mut self, how: &str, image: &Image) -> Result<(), String> {
        for (k, p) in self.protos.iter().enumerate() {
            let file = FILES[k];
            let got = p.load(&mut self.dir());
            let acked = &self.model[file];
            let flying = self
                .in_flight
                .as_ref()
                .filter(|(f, _)| *f == k)
                .map(|(_, v)| v);
            let ok = match &got {
                Ok(v) => v == acked || (v.is_some() && v.as_ref() == flying),
                Err(_) => false,
            };
            if !ok {
                return Err(format!(
                    "{} file {file} after a power cut and recovery: {}{}\n  crash state: {how}\n  booted from: {image}",
                    p.name(),
                    describe(&got, acked),
                    if flying.is_some() {
                        " (or the value in flight)"
                    } else {
                        ""
                    },
                ));
            }
            if let Ok(v) = got {
                self.model.insert(file, v);
            }
        }
        self.in_flight = None;
        let live = self.sim.live();
        let temps: Vec<&str> = live
            .names()
            .filter(|n| fsatomic::name::temp_target(n).is_some())
            .collect();
        if !temps.is_empty() {
            return Err(format!("temporary files left after recovery: {temps:?}"));
        }
        if self.sim.locks_held() != 0 {
            return Err("a lock is held after recovery".to_owned());
        }
        Ok(())
    }
}

fn describe(got: &Result<Option<Vec<u8>>, Failure>, want: &Option<Vec<u8>>) -> String {
    let show = |v: &Option<Vec<u8>>| match v {
        None => "absent".to_owned(),
        Some(b) => match oracle::value_number(b) {
            Some(n) if oracle::value(n, b.len()) == *b => format!("value v={n} ({} B)", b.len()),
            _ => format!(
                "{} unrecognised bytes {:?}",
                b.len(),
                String::from_utf8_lossy(&b[..b.len().min(40)])
            ),
        },
    };
    match got {
        Ok(v) => format!("got {}, expected {}", show(v), show(want)),
        Err(e) => format!("got {e}, expected {}", show(want)),
    }
}
