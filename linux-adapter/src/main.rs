//! `fsatomic`: crash-safe state files for shell scripts.
//!
//! The command saves, loads and updates JSON state files with the same
//! Replace commit the daemons use (temporary file, flush, rename, flush the
//! directory), under the same writers' lock (`NAME.lock`), so a script and a
//! daemon can share a file. `docs/cli.md` is the reference; `fsatomic --help`
//! says the same in brief.
//!
//! The code lives in [`cli`]: argument parsing, one module per command, and
//! the failure type that maps every outcome to an exit code.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
