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

use std::os::fd::{AsRawFd, IntoRawFd};
use std::process::ExitCode;

use rustix::fs::{Mode, OFlags};

fn main() -> ExitCode {
    open_standard_fds();
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Open `/dev/null` on whichever of descriptors 0, 1 and 2 are closed
/// (`fsatomic save F 2>&-`). Otherwise the first file or directory the
/// command opens would get that number, and a diagnostic meant for stderr
/// would be written into it. `open` returns the lowest free descriptor, so
/// opening until the result is above 2 fills exactly the closed ones; the
/// extra one is closed again. Failure (no `/dev/null`) changes nothing.
fn open_standard_fds() {
    for _ in 0..3 {
        let Ok(fd) = rustix::fs::open("/dev/null", OFlags::RDWR, Mode::empty()) else {
            return;
        };
        if fd.as_raw_fd() > 2 {
            return;
        }
        // It is now stdin, stdout or stderr, for the life of the process.
        let _ = fd.into_raw_fd();
    }
}
