//! The one state-machine driver every protocol runs on.
//!
//! Each operation that touches the disk — a Replace commit, a journal
//! append, a Slots commit, a compaction — is a [`Machine`]: a state, one
//! transition function that performs at most one filesystem operation and
//! names the next state, and what to undo when a step fails. [`step`] and
//! [`run`] are the only drivers, and [`step`] is the only place a state
//! changes, logging `old => new` (failures included) as smoltcp's
//! `set_state` does. The same machine therefore runs blocking (`run`),
//! cooperatively on a bare-metal board (one `step` per tick), and under
//! the crash explorer, which cuts power between any two steps.

use core::fmt;

use crate::error::{CommitError, IoError};
use crate::fs::{File, Op};

/// Whether a machine needs more steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// More steps are needed.
    Pending,
    /// The operation is complete (and durable, for a commit).
    Done,
}

/// A protocol operation as an explicit state machine over a medium `D`: a
/// directory ([`Dir`](crate::Dir)) for the file protocols, a NOR flash for
/// `crate::nor` (feature `nor`).
///
/// Implementations provide the transition; [`step`] and [`run`] drive it.
/// A power cut between two steps leaves what the last completed step's
/// filesystem operation left (see each method of [`Dir`](crate::Dir) and [`File`]).
pub trait Machine<D> {
    /// The machine's states; their names are the words of
    /// `docs/design.md`.
    type State: Copy + PartialEq + fmt::Display;
    /// What a failed step reports.
    type Error;

    /// The machine's kind, for the log (`"replace"`).
    const KIND: &'static str;

    /// The file the machine works on, for the log.
    fn file(&self) -> &str;

    /// The current state.
    fn state(&self) -> Self::State;

    /// Set the state. Only [`step`] calls this.
    fn set_state_raw(&mut self, next: Self::State);

    /// Whether `state` is the end.
    fn is_done(state: Self::State) -> bool;

    /// The state after a failed step.
    const FAILED: Self::State;

    /// Perform at most one operation on the medium (a filesystem call, an
    /// erase, a program) from the current state and return the next state.
    fn transition(&mut self, dir: &mut D) -> Result<Self::State, Self::Error>;

    /// After a failed step, undo what can be undone (best effort: remove a
    /// temporary file, cut a half-written record, blank a slot). The
    /// default does nothing.
    fn abandon(&mut self, dir: &mut D) {
        let _ = dir;
    }
}

/// The parts of a [`Machine`] impl every machine spells the same way: the
/// state type (with `Done` and `Failed` variants) kept in a `state` field,
/// the kind for the log, and the file the log names.
macro_rules! basics {
    ($state:ident, $kind:literal, |$m:ident| $file:expr) => {
        type State = $state;
        const KIND: &'static str = $kind;
        const FAILED: $state = $state::Failed;

        fn file(&self) -> &str {
            let $m = self;
            $file
        }

        fn state(&self) -> $state {
            self.state
        }

        fn set_state_raw(&mut self, next: $state) {
            self.state = next;
        }

        fn is_done(state: $state) -> bool {
            state == $state::Done
        }
    };
}

pub(crate) use basics;

/// Perform one step of `machine`: one transition, logged `old => new`.
/// After an error the machine is in [`Machine::FAILED`] (also logged) and
/// has undone what it could.
pub fn step<D, M: Machine<D>>(machine: &mut M, dir: &mut D) -> Result<Progress, M::Error> {
    match machine.transition(dir) {
        Ok(next) => {
            set_state(machine, next);
            Ok(if M::is_done(next) {
                Progress::Done
            } else {
                Progress::Pending
            })
        }
        Err(e) => {
            machine.abandon(dir);
            set_state(machine, M::FAILED);
            Err(e)
        }
    }
}

/// Drive `machine` to the end.
pub fn run<D, M: Machine<D>>(machine: &mut M, dir: &mut D) -> Result<(), M::Error> {
    while step(machine, dir)? == Progress::Pending {}
    Ok(())
}

/// The one place a state changes.
fn set_state<D, M: Machine<D>>(machine: &mut M, next: M::State) {
    crate::log::transition(M::KIND, machine.file(), &machine.state(), &next);
    machine.set_state_raw(next);
}

/// Write the rest of `data` from `written` on with one `write` call to
/// `file` (named `name`, the data starting at byte `at` of it); return how
/// much is written now. The machines call this once per step, so a power
/// cut may fall between any two partial writes.
pub fn write_rest<F: File>(
    file: &mut F,
    name: &str,
    at: u64,
    data: &[u8],
    written: usize,
) -> Result<usize, CommitError<F::Error>> {
    let rest = data.get(written..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(written);
    }
    let n = file
        .write(rest)
        .map_err(|e| IoError::new(Op::Write, name, e).at(at + written as u64))?;
    if n == 0 {
        return Err(CommitError::LogicBug("write accepted zero bytes"));
    }
    Ok(written + n)
}
