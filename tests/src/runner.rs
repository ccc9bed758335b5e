//! Starting target binaries from tests, on the host and under emulation.
//!
//! When the test suite runs for another architecture under qemu-user (the
//! `boards/` scripts), a test that spawns a binary of the project — the
//! `fsatomic` command, or its own test binary again — cannot exec it
//! directly: binfmt_misc is not registered on these machines. The boards
//! scripts export `FSATOMIC_TEST_RUNNER` (e.g. `qemu-aarch64`), and every
//! spawn goes through [`command`], which puts the runner in front. On the
//! host the variable is unset and nothing changes.

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// The environment variable naming the runner (a program and its
/// arguments, separated by spaces).
pub const RUNNER_VAR: &str = "FSATOMIC_TEST_RUNNER";

/// The runner's words, empty on the host.
pub fn runner() -> Vec<OsString> {
    std::env::var(RUNNER_VAR)
        .map(|r| r.split_whitespace().map(OsString::from).collect())
        .unwrap_or_default()
}

/// A command that runs `program` (a binary built for the target), through
/// the runner if there is one.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut words = runner().into_iter();
    match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(program.as_ref());
            c
        }
        None => Command::new(program.as_ref()),
    }
}

/// `sh -c 'umask MASK && exec "$@"'` running `program` (through the
/// runner if there is one) with the umask set; add the program's arguments
/// to the returned command.
pub fn command_with_umask(mask: &str, program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {mask} && exec \"$@\""))
        .arg("sh")
        .args(runner())
        .arg(program.as_ref());
    c
}

/// `program` quoted for a `sh -c` script, with the runner in front.
pub fn shell_words(program: &str) -> String {
    let mut out = String::new();
    for word in runner() {
        out.push_str(&format!("'{}' ", word.to_string_lossy()));
    }
    out.push_str(&format!("'{program}'"));
    out
}
