//! `fsatomic`: crash-safe state files for shell scripts.
//!
//! The command saves, loads, updates and appends to JSON state files with
//! the same commit protocols the daemons use — Replace (temporary file,
//! flush, rename, flush the directory), Journal (one record, one flush) and
//! Slots (for FAT) — under the same writers' lock (`NAME.lock`), so a
//! script and a daemon can share a file. `fsatomic demo` runs the NAS
//! daemon's seven stores. `docs/cli.md` is the reference; `fsatomic --help`
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
