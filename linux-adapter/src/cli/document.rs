//! Documents in memory: reading a state file into a buffer sized from the
//! file, and re-indenting JSON into a buffer sized from the input. There is
//! no limit but memory.

use std::io::{self, Read};

use fsatomic::error::Unsupported;
use fsatomic::json::{self, JsonError};
use fsatomic::{LoadError, RecoverError, load};
use fsatomic_linux::LinuxDir;
use rustix::fs::{AtFlags, statat};

use super::failure::{self, Failure};
use super::target::Target;

/// Room added to a file's size, so that a file that grew a little between
/// `stat` and `read` does not cost a second read.
const SLACK: usize = 4096;

/// How many times a file may outgrow the buffer before we give up (only a
/// writer that ignores the protocol makes a file grow under a reader).
const GROW_ATTEMPTS: usize = 8;

/// A zero-filled buffer of `len` bytes, or a failure if memory is short.
pub fn buffer(len: usize, what: &str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| {
        Failure::error(format!(
            "not enough memory for {what} ({len} bytes); nothing was changed"
        ))
    })?;
    buf.resize(len, 0);
    Ok(buf)
}

/// Why a state file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The core's load failed: I/O, a corrupt file, a refused name.
    Load(LoadError<io::Error>),
    /// The core's recovery (a writer's read, which may repair) failed.
    Recover(RecoverError<io::Error>),
    /// There is not enough memory for a buffer of `size` bytes.
    NoMemory {
        /// The buffer size that could not be had.
        size: usize,
    },
    /// The file outgrew the buffer again and again.
    KeepsGrowing {
        /// Its size at the last attempt.
        size: u64,
    },
}

impl ReadError {
    /// The failure to report for `target`.
    pub fn failure(&self, target: &Target) -> Failure {
        match self {
            ReadError::Load(e) => failure::load(&target.shown, e),
            ReadError::Recover(e) => failure::recover(&target.shown, e),
            ReadError::NoMemory { size } => Failure::error(format!(
                "not enough memory to read {} ({size} bytes); nothing was changed",
                target.path()
            )),
            ReadError::KeepsGrowing { size } => Failure::error(format!(
                "{} keeps growing while it is read ({size} bytes last); is something writing it without the lock? Nothing was changed",
                target.path()
            )),
        }
    }
}

/// Read the state file `target` (a Replace state: one file) and check that
/// it is one JSON value. `Ok(None)` if it does not exist. Takes no lock,
/// changes nothing.
///
/// The buffer is sized from the file's length; if the file is larger when
/// it is read, the read is retried with the size the core reports.
pub fn read(dir: &mut LinuxDir, target: &Target) -> Result<Option<Vec<u8>>, ReadError> {
    let hint = file_size(dir, &target.name);
    read_sized(dir, hint, |dir, buf| {
        load::read_json(dir, &target.name, buf)
    })
}

/// The size of `name` in `dir` (not following a symbolic link), or 0.
pub fn file_size(dir: &LinuxDir, name: &str) -> u64 {
    statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0))
}

/// Run `read` (a core reader that puts a document at the front of a
/// buffer) with a buffer of `hint` bytes plus some slack, growing it as
/// long as the core reports `TooLarge`. Returns the document's bytes.
pub fn read_sized(
    dir: &mut LinuxDir,
    hint: u64,
    mut read: impl FnMut(&mut LinuxDir, &mut [u8]) -> Result<Option<usize>, LoadError<io::Error>>,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut capacity = usize::try_from(hint)
        .unwrap_or(usize::MAX)
        .saturating_add(SLACK);
    let mut attempts = 0;
    loop {
        let mut buf = Vec::new();
        if buf.try_reserve_exact(capacity).is_err() {
            return Err(ReadError::NoMemory { size: capacity });
        }
        buf.resize(capacity, 0);
        match read(dir, &mut buf) {
            Ok(Some(len)) => {
                buf.truncate(len);
                return Ok(Some(buf));
            }
            Ok(None) => return Ok(None),
            Err(LoadError::TooLarge { size, .. }) => {
                capacity = grow(capacity, size, &mut attempts)?;
            }
            Err(e) => return Err(ReadError::Load(e)),
        }
    }
}

/// The next buffer size after a `TooLarge` report of `size` bytes, or a
/// failure after [`GROW_ATTEMPTS`] of them.
pub fn grow(capacity: usize, size: u64, attempts: &mut usize) -> Result<usize, ReadError> {
    if *attempts >= GROW_ATTEMPTS {
        return Err(ReadError::KeepsGrowing { size });
    }
    *attempts += 1;
    Ok(usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_add(SLACK)
        .max(capacity.saturating_mul(2)))
}

/// `input` re-indented (two spaces, trailing newline) into a buffer of
/// exactly the right size.
pub fn pretty(input: &[u8]) -> Result<Result<Vec<u8>, JsonError>, Failure> {
    let len = match json::pretty_len(input) {
        Ok(len) => len,
        Err(e) => return Ok(Err(e)),
    };
    let mut out = buffer(len, "the indented document")?;
    match json::pretty(input, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(Ok(out))
        }
        Err(json::PrettyError::Json(e)) => Ok(Err(e)),
        Err(e) => Err(Failure::error(format!(
            "internal error (please report): {e}"
        ))),
    }
}

/// All of stdin, or a failure that says so and ends with `untouched`.
pub fn stdin(untouched: &str) -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| Failure::error(format!("reading stdin failed: {e}; {untouched}")))?;
    Ok(input)
}

/// [`pretty`] for `input` from `source`: refused input is exit 1 with
/// [`invalid_input`] and `untouched`.
pub fn pretty_input(source: &str, input: &[u8], untouched: &str) -> Result<Vec<u8>, Failure> {
    pretty(input)?
        .map_err(|e| Failure::error(format!("{}; {untouched}", invalid_input(source, input, &e))))
}

/// [`pretty`] for JSON we built ourselves: refusing it is a bug.
pub fn pretty_built(compact: &[u8]) -> Result<Vec<u8>, Failure> {
    pretty(compact)?.map_err(|e| Failure::error(format!("internal error (please report): {e}")))
}

/// Why `input` (from `source`, e.g. "stdin") cannot be committed, as a
/// sentence: empty, nested deeper than fsatomic supports, or not JSON at a
/// byte offset.
pub fn invalid_input(source: &str, input: &[u8], e: &JsonError) -> String {
    if let Some(what) = Unsupported::from_json(e.kind) {
        format!(
            "{source} is refused: it holds {what}, from byte {}",
            e.offset
        )
    } else if input.is_empty() {
        format!("{source} is empty; a state file is never empty (that is how a torn write looks)")
    } else if input.iter().all(|b| b.is_ascii_whitespace()) {
        format!("{source} holds only whitespace, not a JSON value")
    } else {
        format!(
            "{source} is not valid JSON at byte {}: {}",
            e.offset, e.kind
        )
    }
}
