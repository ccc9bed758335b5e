//! `fsatomic update PATH [--mode OCTAL] [--init JSON] [--mkdir] [--protocol P]
//! -- CMD [ARG...]`: read-modify-write under the writers' lock, with the modify
//! step done by a command that reads the document on stdin and prints the
//! new one on stdout.

use std::ffi::OsString;

use super::args::{self, Opt, Spec};
use super::child;
use super::document;
use super::failure::Failure;
use super::owner;
use super::save;
use super::stored;
use super::target::Writer;

/// What `update` accepts.
pub const SPEC: Spec = Spec {
    command: "update",
    options: &[
        Opt::with_value("--mode"),
        Opt::with_value("--init"),
        Opt::flag("--mkdir"),
        stored::PROTOCOL_OPTION,
        args::TIMEOUT_OPTION,
        args::NOWAIT_OPTION,
        owner::OWNER_OPTION,
        owner::GROUP_OPTION,
        owner::PRESERVE_OPTION,
        save::KEEP_PREVIOUS_OPTION,
    ],
    takes_command: true,
};

/// Run `update`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("update");
    }
    let writer = Writer::parse(&parsed, &SPEC)?;
    let target = &writer.target;
    let init = initial(parsed.value("--init"))?;
    let requested = stored::requested(&parsed, &SPEC, &save::WHOLE)?;
    let command = &parsed.command;
    let untouched = format!("{} was left untouched", target.path());

    let (mut dir, mode, _guard) = writer.lock()?;
    let choice = save::decide(&mut dir, target, requested, "update")?;

    // A corrupt file fails here, before the command runs.
    let current = stored::read_whole(&mut dir, target, choice.form)
        .map_err(|e| e.failure(target))?
        .unwrap_or(init);
    let (status, output) = child::filter(command, current, &untouched)?;
    if !status.success() {
        return Err(Failure::new(
            child::exit_code(status),
            format!(
                "`{}` failed ({status}); {untouched}",
                child::describe(command)
            ),
        ));
    }
    let source = format!("the output of `{}`", child::describe(command));
    let next = document::pretty_input(&source, &output, &untouched)?;
    let how = save::How {
        keep_previous: parsed.flag(save::KEEP_PREVIOUS_OPTION.name),
        ..save::How::default()
    };
    save::commit(&mut dir, target, &choice, &next, mode, how)
}

/// The document a command sees when the file is absent: `--init`,
/// re-indented, or `null`. An invalid `--init` is a usage error.
fn initial(init: Option<&OsString>) -> Result<Vec<u8>, Failure> {
    let Some(init) = init else {
        return Ok(b"null\n".to_vec());
    };
    let text = init.as_encoded_bytes();
    document::pretty(text)?
        .map_err(|e| Failure::usage(document::invalid_input("--init", text, &e), "update"))
}
