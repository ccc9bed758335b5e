//! `fsatomic lock PATH -- CMD [ARG...]`: run a command holding the writers'
//! lock of `PATH`, like `flock(1)`.

use std::ffi::OsString;
use std::os::fd::AsFd;

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

use super::args::{self, Spec};
use super::child;
use super::failure::Failure;
use super::target::Writer;

/// What `lock` accepts.
pub const SPEC: Spec = Spec {
    command: "lock",
    options: &[args::TIMEOUT_OPTION, args::NOWAIT_OPTION],
    takes_command: true,
};

/// Run `lock`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("lock");
    }
    let writer = Writer::parse(&parsed, &SPEC)?;
    let (_dir, _, guard) = writer.lock()?;
    // The command inherits the lock's descriptor, as with flock(1): if we
    // are killed, the lock stays held until the command (and whatever it
    // started with the descriptor) ends, so no writer gets in meanwhile.
    let inherit = fcntl_getfd(guard.as_fd())
        .and_then(|flags| fcntl_setfd(guard.as_fd(), flags - FdFlags::CLOEXEC));
    if let Err(e) = inherit {
        return Err(Failure::error(format!(
            "cannot pass the lock of {} to the command: {e}; nothing was run",
            writer.target.path()
        )));
    }
    let status = child::run(&parsed.command, "nothing was run")?;
    drop(guard);
    match child::exit_code(status) {
        0 => Ok(()),
        code => Err(Failure::silent(code)),
    }
}
