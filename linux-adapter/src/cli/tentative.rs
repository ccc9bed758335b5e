//! `fsatomic confirm PATH [--keep-previous]` and `fsatomic rollback PATH`:
//! end a tentative version that `save --tentative` committed — make it the
//! confirmed one, or drop it so that the confirmed one is current again
//! (what the next boot's `check --repair` does unless `confirm` ran). Both
//! take the writers' lock and change one name (the core's
//! [`fsatomic::history`]).

use std::ffi::OsString;

use fsatomic::{Mode, history};

use super::args::{self, Spec};
use super::failure::{self, EXIT_ABSENT, Failure};
use super::save;
use super::target::Writer;

/// What `confirm` accepts.
pub const CONFIRM: Spec = Spec {
    command: "confirm",
    options: &[
        save::KEEP_PREVIOUS_OPTION,
        args::TIMEOUT_OPTION,
        args::NOWAIT_OPTION,
    ],
    takes_command: false,
};

/// What `rollback` accepts.
pub const ROLLBACK: Spec = Spec {
    command: "rollback",
    options: &[args::TIMEOUT_OPTION, args::NOWAIT_OPTION],
    takes_command: false,
};

/// Run `confirm` (`confirm: true`) or `rollback`.
pub fn main(args: Vec<OsString>, confirm: bool) -> Result<(), Failure> {
    let spec = if confirm { &CONFIRM } else { &ROLLBACK };
    let parsed = args::parse(spec, args)?;
    if parsed.help {
        return super::help::print(spec.command);
    }
    let writer = Writer::parse(&parsed, spec)?;
    let target = &writer.target;
    let (mut dir, _, _guard) = writer.lock()?;
    let done = if confirm {
        let keep = parsed.flag(save::KEEP_PREVIOUS_OPTION.name);
        history::confirm(&mut dir, &target.name, Mode::PRIVATE, keep)
    } else {
        history::rollback(&mut dir, &target.name).map_err(Into::into)
    }
    .map_err(|e| failure::commit(&target.shown, &e))?;
    if !done {
        return Err(Failure::new(
            EXIT_ABSENT,
            format!(
                "no tentative version of {} waits: it was confirmed already, or rolled back (by `fsatomic rollback`, or at boot by `fsatomic check --repair`); nothing was changed",
                target.path()
            ),
        ));
    }
    Ok(())
}
