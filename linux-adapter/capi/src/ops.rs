//! The C library's operations in safe Rust, over slices and `&str`: what
//! the `fsatomic` command does for `save`, `load`, `update`, `append`,
//! `lock` and `check`, on one state `NAME` in an existing directory. The
//! FFI module only turns pointers into these arguments and failures into
//! codes.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use fsatomic::error::Unsupported;
use fsatomic::journal;
use fsatomic::json::{self, JsonError};
use fsatomic::layout::{self, Files, Role};
use fsatomic::{Dir, Mode, Protocol, lock, name, protocol, recover, slots};
use fsatomic_linux::{LinuxDir, array};
use rustix::fs::{self as rfs, AtFlags};

use crate::code;

/// Room for a new Slots state's documents, as the command gives it: each
/// slot file holds at least this much, so a document can grow without the
/// files being resized.
const SLOT_ROOM: usize = 64 * 1024;

/// Room added to a file's size when a buffer is sized from it.
const SLACK: usize = 4096;

/// How many times a read grows its buffer for a file that keeps growing.
const GROW_ATTEMPTS: usize = 8;

/// Why an operation failed: a stable code ([`crate::code`]), a sentence,
/// and, for [`code::TOO_LARGE`], the size that would have fitted (0 if
/// unknown).
#[derive(Debug)]
pub struct Failure {
    /// One of [`crate::code`].
    pub code: i32,
    /// What happened, for a person.
    pub message: String,
    /// For [`code::TOO_LARGE`]: the bytes needed, if known.
    pub needed: usize,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            needed: 0,
        }
    }
}

/// What every operation returns.
pub type Result<T> = std::result::Result<T, Failure>;

/// The one place where the core's errors become codes: every error of the
/// core and of `fsatomic_linux::array` converts into the flat
/// [`fsatomic::Error`], and this match gives it its code.
pub fn core(e: impl Into<fsatomic::Error<io::Error>>) -> Failure {
    let e: fsatomic::Error<io::Error> = e.into();
    let (code, needed) = match &e {
        fsatomic::Error::Name { .. } => (code::BAD_NAME, 0),
        e if e.is_lock_busy() => (code::LOCK_TIMEOUT, 0),
        fsatomic::Error::Io(_) | fsatomic::Error::Interference { .. } => (code::IO, 0),
        fsatomic::Error::Corrupt(_) => (code::CORRUPT, 0),
        fsatomic::Error::Unsupported { .. } => (code::UNSUPPORTED, 0),
        fsatomic::Error::TooLarge { size, .. } => (
            code::TOO_LARGE,
            size.and_then(|s| usize::try_from(s).ok()).unwrap_or(0),
        ),
        fsatomic::Error::Refused { .. } => (code::INVALID, 0),
        _ => (code::INTERNAL, 0),
    };
    Failure {
        code,
        message: e.to_string(),
        needed,
    }
}

/// An `array` error as a failure.
fn array_failure(e: array::Error<io::Error>) -> Failure {
    match e {
        array::Error::Recover(e) => core(e),
        array::Error::Commit(e) => core(e),
        array::Error::NotArray { kind } => Failure::new(
            code::INVALID,
            format!("the state holds {kind}, not an array; append adds to arrays only"),
        ),
        array::Error::NoBuffer { size } => Failure::new(
            code::IO,
            format!("no buffer of {size} bytes could be had to read the state"),
        ),
        e => Failure::new(code::INTERNAL, e.to_string()),
    }
}

/// The mode bits `bits` (0: [`Mode::PRIVATE`], 0600).
fn mode(bits: u32) -> Result<Mode> {
    if bits == 0 {
        return Ok(Mode::PRIVATE);
    }
    Mode::new(bits).ok_or_else(|| {
        Failure::new(
            code::INVALID,
            format!("mode {bits:o} is not a file mode (0 for 0600, or 0001..0777)"),
        )
    })
}

/// Open the existing directory `path` and check `name`.
fn open(path: &Path, name: &str) -> Result<LinuxDir> {
    name::validate(name).map_err(|e| {
        Failure::new(
            code::BAD_NAME,
            format!("refused name {name:?} (in {}): {e}", path.display()),
        )
    })?;
    LinuxDir::open(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::NotFound => {
                "it does not exist (is the disk mounted?); create it first".to_string()
            }
            _ => e.to_string(),
        };
        Failure::new(
            code::IO,
            format!("cannot open directory {}: {why}", path.display()),
        )
    })
}

/// `input`, one JSON value, indented as the command writes it (two spaces,
/// a trailing newline).
fn pretty(input: &[u8]) -> Result<Vec<u8>> {
    let invalid = |e: JsonError| {
        if let Some(what) = Unsupported::from_json(e.kind) {
            Failure::new(
                code::UNSUPPORTED,
                format!("the document holds {what}, from byte {}", e.offset),
            )
        } else if input.iter().all(u8::is_ascii_whitespace) {
            Failure::new(
                code::INVALID,
                "the document is empty; a state file is never empty",
            )
        } else {
            Failure::new(
                code::INVALID,
                format!(
                    "the document is not valid JSON at byte {}: {}",
                    e.offset, e.kind
                ),
            )
        }
    };
    let len = json::pretty_len(input).map_err(invalid)?;
    let mut out = vec![0; len];
    match json::pretty(input, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Ok(out)
        }
        Err(json::PrettyError::Json(e)) => Err(invalid(e)),
        Err(e) => Err(Failure::new(code::INTERNAL, e.to_string())),
    }
}

/// Which files of `name` exist, and the protocol they say (`None`: none).
fn stored(dir: &mut LinuxDir, name: &str) -> Result<(Files, Option<Protocol>)> {
    let files = Files::probe(dir, name).map_err(core)?;
    let form = files
        .protocol()
        .map_err(|mixed| Failure::new(code::CORRUPT, format!("{name} is {mixed}")))?;
    Ok((files, form))
}

/// The protocol for whole documents: Replace, or Slots where renaming over
/// a file is not crash-atomic.
fn auto_whole(dir: &LinuxDir) -> Protocol {
    match Protocol::Auto.resolve(dir.capabilities()) {
        Protocol::Slots => Protocol::Slots,
        _ => Protocol::Replace,
    }
}

/// With the lock held, as `fsatomic save` decides: the protocol on disk,
/// else `requested`, else the filesystem's. A journaled array and a
/// request that contradicts the files are refused.
fn decide(dir: &mut LinuxDir, name: &str, requested: Option<Protocol>) -> Result<Protocol> {
    let (_, existing) = stored(dir, name)?;
    match (existing, requested) {
        (Some(Protocol::Journal), _) => Err(Failure::new(
            code::UNSUPPORTED,
            format!(
                "{name} is a journaled array; add to it with fsatomic_append, or load it, remove its files, and save again; nothing was changed"
            ),
        )),
        (Some(on_disk), Some(asked)) if on_disk != asked => Err(Failure::new(
            code::INVALID,
            format!(
                "protocol {} contradicts how {name} is stored ({}); fsatomic does not migrate state silently; nothing was changed",
                asked.as_str(),
                on_disk.as_str()
            ),
        )),
        (Some(on_disk), _) => Ok(on_disk),
        (None, Some(asked)) => Ok(asked),
        (None, None) => Ok(auto_whole(dir)),
    }
}

/// With the lock held: sweep the orphans of `name`, then commit `document`
/// with `form` (Replace or Slots).
fn commit(
    dir: &mut LinuxDir,
    name: &str,
    form: Protocol,
    document: &[u8],
    mode: Mode,
) -> Result<()> {
    recover::sweep_orphans(dir, Some(name)).map_err(core)?;
    protocol::commit(
        dir,
        name,
        document,
        mode,
        form,
        document.len().max(SLOT_ROOM),
    )
    .map_err(core)
}

/// `fsatomic_save`: validate and indent `data`, then commit it under the
/// writers' lock. `protocol`: 0 auto, 1 replace, 2 slots.
pub fn save(path: &Path, name: &str, data: &[u8], bits: u32, protocol: i32) -> Result<()> {
    let mode = mode(bits)?;
    let requested = match protocol {
        code::PROTOCOL_AUTO => None,
        code::PROTOCOL_REPLACE => Some(Protocol::Replace),
        code::PROTOCOL_SLOTS => Some(Protocol::Slots),
        other => {
            return Err(Failure::new(
                code::INVALID,
                format!("protocol {other} is not FSATOMIC_PROTOCOL_AUTO, _REPLACE or _SLOTS"),
            ));
        }
    };
    let document = pretty(data)?;
    let mut dir = open(path, name)?;
    let _guard = lock::lock(&mut dir, name, mode).map_err(core)?;
    let form = decide(&mut dir, name, requested)?;
    commit(&mut dir, name, form, &document, mode)
}

/// The size of `file` in `dir`, or 0.
fn size_of(dir: &LinuxDir, file: &str) -> usize {
    rfs::statat(dir, file, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .and_then(|st| usize::try_from(st.st_size).ok())
        .unwrap_or(0)
}

/// Put `text` at the front of `buf`, or fail with what it needs.
fn copy_out(text: &[u8], buf: &mut [u8], name: &str) -> Result<usize> {
    match buf.get_mut(..text.len()) {
        Some(front) => {
            front.copy_from_slice(text);
            Ok(text.len())
        }
        None => Err(Failure {
            code: code::TOO_LARGE,
            message: format!(
                "{name}: {} bytes do not fit the {}-byte buffer; give a larger buffer",
                text.len(),
                buf.len()
            ),
            needed: text.len(),
        }),
    }
}

/// The document of `name` into the front of `buf`, as `fsatomic load`
/// prints it: the bytes on disk for Replace and Slots, the whole array,
/// indented, for a journal. `Ok(None)` if absent. No lock; changes nothing.
fn read_into(dir: &mut LinuxDir, name: &str, buf: &mut [u8]) -> Result<Option<usize>> {
    let (files, form) = stored(dir, name)?;
    let len = match form {
        None => return Ok(None),
        Some(Protocol::Journal) => None,
        Some(Protocol::Slots) => {
            let Some(len) = slots::load(dir, name, buf).map_err(core)? else {
                return Ok(None);
            };
            fsatomic::load::check_document::<io::Error>(name, buf.get(..len).unwrap_or_default())
                .map_err(core)?;
            Some(len)
        }
        Some(_) => {
            let Some(len) = fsatomic::load::read_json(dir, name, buf).map_err(core)? else {
                return Ok(None);
            };
            // A snapshot with its journal beside it: an append converted
            // the plain array between our probe and our read.
            let converted = !files.journal
                && journal::parse_snapshot(name, buf.get(..len).unwrap_or_default()).is_ok()
                && Files::probe(dir, name).is_ok_and(|f| f.journal);
            (!converted).then_some(len)
        }
    };
    if let Some(len) = len {
        return Ok(Some(len));
    }
    let jname = layout::file_name(name, Role::Journal);
    let hint = size_of(dir, name).max(size_of(dir, &jname));
    let state = array::read_journal(dir, name, false, hint as u64).map_err(array_failure)?;
    let document = pretty(&state.array().unwrap_or_else(|| state.parts()))?;
    copy_out(&document, buf, name).map(Some)
}

/// The failure for a state `name` that is not in `path`.
fn absent(path: &Path, name: &str) -> Failure {
    let dir = path.display();
    Failure::new(code::ABSENT, format!("{name} does not exist in {dir}"))
}

/// `fsatomic_load`.
pub fn load(path: &Path, name: &str, buf: &mut [u8]) -> Result<usize> {
    let mut dir = open(path, name)?;
    read_into(&mut dir, name, buf)?.ok_or_else(|| absent(path, name))
}

/// The document of `name` in a buffer sized from the files, grown while
/// it does not fit.
fn read_vec(dir: &mut LinuxDir, name: &str) -> Result<Option<Vec<u8>>> {
    let [a, b] = [0, 1].map(|i| layout::file_name(name, Role::Slot(i)));
    let mut capacity = size_of(dir, name)
        .max(size_of(dir, &a))
        .max(size_of(dir, &b))
        .saturating_add(SLACK);
    for _ in 0..GROW_ATTEMPTS {
        let mut buf = vec![0; capacity];
        match read_into(dir, name, &mut buf) {
            Ok(Some(len)) => {
                buf.truncate(len);
                return Ok(Some(buf));
            }
            Ok(None) => return Ok(None),
            Err(f) if f.code == code::TOO_LARGE => {
                capacity = f
                    .needed
                    .max(capacity.saturating_mul(2))
                    .saturating_add(SLACK);
            }
            Err(f) => return Err(f),
        }
    }
    Err(Failure::new(
        code::IO,
        format!("{name} keeps growing while it is read; is something writing it without the lock?"),
    ))
}

/// The update callback as `ops` sees it: the current document (`None` if
/// absent) and the output buffer in, the new document's length out.
pub type Modify<'a> = dyn FnMut(Option<&[u8]>, &mut [u8]) -> Result<usize> + 'a;

/// `fsatomic_update`: under the writers' lock, give `modify` the current
/// document (`None` if absent) and an output buffer; it returns the new
/// document's length, or a failure (nothing is committed). If it fails
/// with [`code::TOO_LARGE`] and says what it needs, it is called once more
/// with a buffer that large.
pub fn update(path: &Path, name: &str, bits: u32, modify: &mut Modify<'_>) -> Result<()> {
    let mode = mode(bits)?;
    let mut dir = open(path, name)?;
    let _guard = lock::lock(&mut dir, name, mode).map_err(core)?;
    let form = decide(&mut dir, name, None)?;
    let current = read_vec(&mut dir, name)?;
    let cur_len = current.as_ref().map_or(0, Vec::len);
    let mut out = vec![0; SLOT_ROOM.max(cur_len.saturating_mul(2).saturating_add(SLACK))];
    let len = match modify(current.as_deref(), &mut out) {
        Err(f) if f.code == code::TOO_LARGE && f.needed > out.len() => {
            out = vec![0; f.needed];
            modify(current.as_deref(), &mut out)?
        }
        other => other?,
    };
    let new = out.get(..len).ok_or_else(|| {
        Failure::new(
            code::INVALID,
            format!(
                "the callback returned {len} bytes, more than the {}-byte buffer",
                out.len()
            ),
        )
    })?;
    let document = pretty(new)?;
    commit(&mut dir, name, form, &document, mode)
}

/// The permissions of the state's main file, if it has one.
fn existing_mode(dir: &LinuxDir, name: &str, files: &Files) -> Option<Mode> {
    let file = array::mode_file(name, files);
    let st = rfs::statat(dir, file.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Mode::new(st.st_mode & 0o7777)
}

/// `fsatomic_append`, as `fsatomic append` does it: one journal record
/// and one flush (a plain array is converted first); on a filesystem
/// where renaming over a file is not crash-atomic, and for a Slots state,
/// the whole array is rewritten instead. With `bits` 0 the state keeps its
/// mode (0600 for a new one).
pub fn append(path: &Path, name: &str, value: &[u8], bits: u32) -> Result<()> {
    let asked = mode(bits)?;
    let mut value = value.to_vec();
    let len = value.len();
    let len = json::compact_in_place(&mut value, len).map_err(|_| {
        pretty(&value)
            .err()
            .unwrap_or_else(|| Failure::new(code::INVALID, "the value is not JSON"))
    })?;
    value.truncate(len);
    let mut dir = open(path, name)?;
    let _guard = lock::lock(&mut dir, name, asked).map_err(core)?;
    let (files, existing) = stored(&mut dir, name)?;
    let mode = match existing_mode(&dir, name, &files) {
        Some(m) if existing.is_some() && bits == 0 => m,
        _ => asked,
    };
    let atomic = dir.filesystem().atomic_replace;
    match existing {
        Some(Protocol::Slots) => append_whole(&mut dir, name, Protocol::Slots, &value, mode),
        Some(Protocol::Replace) if !atomic => {
            append_whole(&mut dir, name, Protocol::Replace, &value, mode)
        }
        None if !atomic => append_whole(&mut dir, name, Protocol::Slots, &value, mode),
        _ => array::append(&mut dir, name, &value, mode)
            .map(drop)
            .map_err(array_failure),
    }
}

/// Under the lock: the whole array (or `[]`) with `value` at its end,
/// committed with `form`.
fn append_whole(
    dir: &mut LinuxDir,
    name: &str,
    form: Protocol,
    value: &[u8],
    mode: Mode,
) -> Result<()> {
    let current = read_vec(dir, name)?.unwrap_or_else(|| b"[]".to_vec());
    let mut whole = Vec::with_capacity(current.len() + value.len() + 2);
    whole.push(b'[');
    json::for_each_element(&current, |range| {
        if whole.len() > 1 {
            whole.push(b',');
        }
        whole.extend_from_slice(current.get(range).unwrap_or_default());
    })
    .map_err(|_| {
        Failure::new(
            code::INVALID,
            format!(
                "{name} holds {}, not an array; append adds to arrays only",
                array::kind_of(&current)
            ),
        )
    })?;
    if whole.len() > 1 {
        whole.push(b',');
    }
    whole.extend_from_slice(value);
    whole.push(b']');
    let document = pretty(&whole)?;
    commit(dir, name, form, &document, mode)
}

/// `fsatomic_check`: the state is absent ([`code::ABSENT`]), or it reads
/// back whole and well-formed. Takes no lock; repairs nothing.
pub fn check(path: &Path, name: &str) -> Result<()> {
    let mut dir = open(path, name)?;
    read_vec(&mut dir, name)?
        .map(drop)
        .ok_or_else(|| absent(path, name))
}

/// `fsatomic_lock`: the writers' lock of `name` (the same `NAME.lock` that
/// every commit and `fsatomic lock` take, through the adapter's own
/// checks), waiting at most `timeout_ms` milliseconds (negative: for ever;
/// 0: one try). The lock is held until the descriptor is closed.
pub fn lock(path: &Path, name: &str, timeout_ms: i64) -> Result<OwnedFd> {
    let mut dir = open(path, name)?;
    dir.set_lock_timeout(u64::try_from(timeout_ms).ok().map(Duration::from_millis));
    let held = lock::lock(&mut dir, name, Mode::PRIVATE).map_err(core)?;
    Ok(held.into())
}
