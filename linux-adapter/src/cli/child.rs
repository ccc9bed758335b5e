//! Running the user's command (`update` and `lock`): spawning it, feeding
//! it, and turning its exit status into ours.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

use super::failure::{EXIT_FAILURE, Failure};

/// The command line, for messages: `sh -c 'read n; ...'`.
pub fn describe(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|w| {
            let w = w.to_string_lossy();
            if !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                w.into_owned()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect();
    words.join(" ")
}

/// Our exit code for the command's `status`: its own code, or 128 plus the
/// signal that killed it (as shells report it).
pub fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(EXIT_FAILURE);
    }
    match status.signal() {
        Some(signal) => u8::try_from((128 + signal) & 0xff).unwrap_or(EXIT_FAILURE),
        None => EXIT_FAILURE,
    }
}

/// A command that could not be started: exit 127 if not found, 126 if not
/// executable (as shells do), 1 otherwise.
fn spawn_failure(command: &[OsString], e: &io::Error, untouched: &str) -> Failure {
    let code = match e.kind() {
        io::ErrorKind::NotFound => 127,
        io::ErrorKind::PermissionDenied => 126,
        _ => EXIT_FAILURE,
    };
    Failure::new(
        code,
        format!("cannot run {}: {e}; {untouched}", describe(command)),
    )
}

fn build(command: &[OsString]) -> Command {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    cmd
}

/// Run `command` with `input` on its stdin and return its status and
/// everything it printed on stdout. Its stderr is ours.
///
/// The input is written from a second thread, so a command that prints
/// before it has read everything cannot deadlock us; a command that does
/// not read its input at all is fine too (the broken pipe is ignored).
pub fn filter(
    command: &[OsString],
    input: Vec<u8>,
    untouched: &str,
) -> Result<(ExitStatus, Vec<u8>), Failure> {
    let mut child = build(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_failure(command, &e, untouched))?;
    let stdin = child.stdin.take();
    let feeder = std::thread::Builder::new()
        .name("stdin feeder".to_string())
        .spawn(move || {
            if let Some(mut stdin) = stdin {
                // A command may stop reading early: that is its business.
                let _ = stdin.write_all(&input);
            }
        });
    let feeder = match feeder {
        Ok(feeder) => feeder,
        Err(e) => {
            // Its stdin was closed with the closure; stop it and reap it.
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::error(format!(
                "cannot start a thread to feed {}: {e}; {untouched}",
                describe(command)
            )));
        }
    };
    let mut output = Vec::new();
    let read = match child.stdout.take() {
        Some(mut stdout) => stdout.read_to_end(&mut output).map(|_| ()),
        None => Ok(()),
    };
    let status = child.wait();
    let _ = feeder.join();
    let fail = |e: io::Error| {
        Failure::error(format!(
            "running {} failed: {e}; {untouched}",
            describe(command)
        ))
    };
    read.map_err(fail)?;
    Ok((status.map_err(fail)?, output))
}

/// Run `command` with our stdin, stdout and stderr, and return its status.
pub fn run(command: &[OsString], untouched: &str) -> Result<ExitStatus, Failure> {
    let mut child = build(command)
        .spawn()
        .map_err(|e| spawn_failure(command, &e, untouched))?;
    child
        .wait()
        .map_err(|e| Failure::error(format!("waiting for {} failed: {e}", describe(command))))
}
