//! `fsatomic load PATH`: print the document, exactly the bytes on disk.
//! Takes no lock, deletes nothing, repairs nothing.

use std::ffi::OsString;
use std::io::{ErrorKind, Write};

use super::args::{self, Spec};
use super::document;
use super::failure::{EXIT_ABSENT, EXIT_FAILURE, Failure};
use super::target::Target;

/// What `load` accepts.
pub const SPEC: Spec = Spec {
    command: "load",
    options: &[],
    takes_command: false,
};

/// Run `load`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("load");
    }
    let target = Target::parse(parsed.one_path(&SPEC)?)?;
    let mut dir = target.open(false)?;
    let Some(text) = document::read_or_fail(&mut dir, &target)? else {
        return Err(Failure::new(
            EXIT_ABSENT,
            format!("{} does not exist", target.path()),
        ));
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            // The reader went away (`fsatomic load F | head -1`): as
            // quiet as a death by SIGPIPE, but still not success.
            ErrorKind::BrokenPipe => Failure::silent(EXIT_FAILURE),
            _ => Failure::error(format!("writing {} to stdout failed: {e}", target.path())),
        })
}
