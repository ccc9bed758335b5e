//! How the command fails: one [`Failure`] carrying the exit code and the
//! message, and the translation of the core's errors into messages that
//! name the file by its full path and say what to do.
//!
//! Nothing here panics on I/O: [`note`] writes diagnostics to stderr and
//! ignores a closed or broken stderr (`eprintln!` would panic, exit 101,
//! in the middle of an operation); [`out`] writes a line of output to
//! stdout and turns a failure into a [`Failure`]. The commands use these,
//! never `eprintln!`, `println!` or `print!`.

use std::fmt::Display;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use fsatomic::error::{IoError, Unsupported};
use fsatomic::{CommitError, Corrupt, LoadError, Op, RecoverError};

/// Exit code: I/O or any other failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage (unknown command or option, refused file name).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `load` found no file.
pub const EXIT_ABSENT: u8 = 3;
/// Exit code: a state file is corrupt (left untouched).
pub const EXIT_CORRUPT: u8 = 4;
/// Exit code: the writers' lock stayed held past `--timeout` (or at once
/// with `-n`); nothing was run or written. The C API's
/// `FSATOMIC_LOCK_TIMEOUT` has the same number.
pub const EXIT_LOCK_BUSY: u8 = 8;

/// What operators are told to do about a corrupt file.
pub const CORRUPT_ADVICE: &str =
    "the file was left untouched; inspect it, restore it from backup or remove it, then retry";

/// The same advice for several corrupt files.
pub const CORRUPT_ADVICE_MANY: &str = "the files were left untouched; inspect them, restore them from backup or remove them, then retry";

/// The end of a run that is not plain success: an exit code and, unless the
/// code speaks for itself (a command's own status), a message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// The message, printed as `fsatomic: MESSAGE` on stderr.
    pub message: Option<String>,
}

impl Failure {
    /// A failure with exit `code` and `message`.
    pub fn new(code: u8, message: impl Display) -> Failure {
        Failure {
            code,
            message: Some(message.to_string()),
        }
    }

    /// Exit code 1: an I/O or other failure.
    pub fn error(message: impl Display) -> Failure {
        Failure::new(EXIT_FAILURE, message)
    }

    /// Exit code 2: bad usage. `help` names the command whose `--help`
    /// explains the right usage.
    pub fn usage(message: impl Display, help: &str) -> Failure {
        let hint = if help.is_empty() {
            "run 'fsatomic --help'".to_string()
        } else {
            format!("run 'fsatomic {help} --help'")
        };
        Failure::new(EXIT_USAGE, format!("{message}\n({hint})"))
    }

    /// Exit with `code` and print nothing (a command's own status; it has
    /// spoken on its own stderr).
    pub fn silent(code: u8) -> Failure {
        Failure {
            code,
            message: None,
        }
    }

    /// Print the message, if any, and give the exit code. A stderr that
    /// cannot be written changes neither.
    pub fn report(self) -> ExitCode {
        if let Some(message) = &self.message {
            note(message);
        }
        ExitCode::from(self.code)
    }
}

/// Write `fsatomic: MESSAGE` and a newline on stderr: a diagnostic (a
/// warning, a note of what was done). Errors are ignored: a closed or
/// broken stderr must not stop (or panic) a command half-way, and there is
/// nowhere else to report it. Build the message with `format_args!` to
/// avoid an allocation: `note(format_args!("created directory {}", p))`.
pub fn note(message: impl Display) {
    let _ = writeln!(io::stderr().lock(), "fsatomic: {message}");
}

/// Write `line` and a newline on stdout (a command's output). A reader
/// that went away (`fsatomic check DIR | head -1`) is exit 1 without a
/// message, as quiet as a death by `SIGPIPE`; any other error is exit 1
/// with one.
pub fn out(line: impl Display) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| stdout_failure(&e))
}

/// The failure for a write to stdout that failed with `e`: silent exit 1
/// for a reader that went away, exit 1 with a message otherwise.
pub fn stdout_failure(e: &io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::BrokenPipe => Failure::silent(EXIT_FAILURE),
        _ => Failure::error(format!("writing to stdout failed: {e}")),
    }
}

/// A file name of the core's errors, as a full path in `dir`.
pub fn in_dir(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// `op of /dir/file failed [at byte N]: cause`.
pub fn io_message(dir: &Path, e: &IoError<io::Error>) -> String {
    let mut text = format!("{} of {} failed", e.op, in_dir(dir, &e.file));
    if let Some(offset) = e.offset {
        text.push_str(&format!(" at byte {offset}"));
    }
    text.push_str(&format!(": {}", e.source));
    text
}

/// Exit 4: `/dir/file is corrupt at byte N: reason; advice`.
pub fn corrupt(dir: &Path, c: &Corrupt) -> Failure {
    Failure::new(
        EXIT_CORRUPT,
        format!(
            "{} is corrupt at byte {}: {}; {CORRUPT_ADVICE}",
            in_dir(dir, &c.file),
            c.offset,
            c.kind
        ),
    )
}

/// Exit 1 (not 4: the file is not corrupt): `/dir/file` holds `what`
/// (valid JSON nested deeper than fsatomic supports), from byte `offset`.
pub fn unsupported(dir: &Path, file: &str, offset: u64, what: &Unsupported) -> Failure {
    Failure::error(format!(
        "{} holds {what}, from byte {offset}; the file was left untouched; to use it with fsatomic, have the tool that wrote it nest it less deeply",
        in_dir(dir, file),
    ))
}

/// A failed load of a file in `dir`, as a failure. `TooLarge` is handled
/// by the caller (it grows the buffer) and only reaches here as a bug.
pub fn load(dir: &Path, e: &LoadError<io::Error>) -> Failure {
    match e {
        LoadError::Corrupt(c) => corrupt(dir, c),
        LoadError::Unsupported { file, offset, what } => unsupported(dir, file, *offset, what),
        LoadError::Io(e) => Failure::error(format!("{}; nothing was changed", io_message(dir, e))),
        LoadError::Name { file, error } => name(dir, file, error),
        other => Failure::error(format!("{} (in {})", other, dir.display())),
    }
}

/// A failed recovery (a writer's replay, which cuts a torn tail) of a
/// state in `dir`, as a failure.
pub fn recover(dir: &Path, e: &RecoverError<io::Error>) -> Failure {
    match e {
        RecoverError::Corrupt(c) => corrupt(dir, c),
        RecoverError::Unsupported { file, offset, what } => unsupported(dir, file, *offset, what),
        RecoverError::Io(e) => {
            Failure::error(format!("{}; nothing was appended", io_message(dir, e)))
        }
        RecoverError::Name { file, error } => name(dir, file, error),
        other => Failure::error(format!(
            "{other} (in {}); nothing was appended",
            dir.display()
        )),
    }
}

/// A failed commit to a file in `dir`, as a failure that says in which
/// state the file was left.
pub fn commit(dir: &Path, e: &CommitError<io::Error>) -> Failure {
    match e {
        CommitError::Io(e) if e.op == Op::SyncDir => Failure::error(format!(
            "{}; the new content is in place but may not survive a power cut: check the disk, then save again",
            io_message(dir, e)
        )),
        CommitError::Io(e) => Failure::error(format!(
            "{}; the file was left untouched (old content, or still absent)",
            io_message(dir, e)
        )),
        CommitError::Name { file, error } => name(dir, file, error),
        other => Failure::error(format!(
            "{other} (in {}); the file was left untouched",
            dir.display()
        )),
    }
}

/// Exit 2: a refused file name.
pub fn name(dir: &Path, file: &str, error: &impl Display) -> Failure {
    Failure::new(
        EXIT_USAGE,
        format!("refused file name {file:?} (in {}): {error}", dir.display()),
    )
}

/// Taking the writers' lock failed.
pub fn lock(dir: &Path, e: &IoError<io::Error>) -> Failure {
    if e.is_lock_busy() {
        return Failure::new(
            EXIT_LOCK_BUSY,
            format!(
                "{}: the writers' lock is {}; nothing was run or changed (retry later, or give a longer --timeout)",
                in_dir(dir, &e.file),
                e.source
            ),
        );
    }
    Failure::error(format!("{}; nothing was changed", io_message(dir, e)))
}

/// Sweeping orphaned temporary files failed.
pub fn sweep(dir: &Path, e: &IoError<io::Error>) -> Failure {
    // Only a failed removal has an orphan to name; a failed listing has
    // none, and advice to remove one would send the reader looking for a
    // file that does not exist.
    let advice = match e.op {
        Op::Remove => format!("remove {} by hand, then retry", in_dir(dir, &e.file)),
        _ => format!("check that {} can be listed, then retry", dir.display()),
    };
    Failure::error(format!(
        "{}; nothing was committed ({advice})",
        io_message(dir, e)
    ))
}
