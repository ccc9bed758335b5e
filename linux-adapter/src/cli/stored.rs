//! How a state is stored, decided the same way by every command.
//!
//! A state `NAME` in a directory is kept with one of three protocols, and
//! which one is told by the files that exist:
//!
//! | files | form |
//! |---|---|
//! | `NAME.journal` (and the snapshot `NAME`, once compacted) | Journal |
//! | `NAME.a` and/or `NAME.b` | Slots |
//! | `NAME`, or nothing | Replace (or absent) |
//!
//! A new state gets `Protocol::Auto` resolved against the filesystem
//! (Replace, or Slots where renaming over a file is not crash-atomic), or
//! Journal for `append` where rename is atomic, unless `--protocol` says
//! otherwise. An explicit `--protocol` that contradicts the files on disk
//! is refused: state is never migrated silently.

use std::io;

use fsatomic::journal::Journal;
use fsatomic::layout::{self, Files, Role};
use fsatomic::slots::{self, SlotInfo, SlotStatus};
use fsatomic::{Corrupt, Dir, LoadError, Protocol, RecoverError, json};
use fsatomic_linux::LinuxDir;
use fsatomic_linux::array;

use super::args::{Opt, Parsed, Spec};
use super::document::{self, ReadError};
use super::failure::{EXIT_USAGE, Failure};
use super::target::{Target, lossy};

/// The `--protocol` option of `save`, `update` and `append`.
pub const PROTOCOL_OPTION: Opt = Opt::with_value("--protocol");

/// Room for a new Slots state's documents: each slot file holds at least
/// this much (more if the first document is larger), so a document can
/// grow without the files being resized.
pub const SLOT_ROOM: usize = 64 * 1024;

/// The journal file's name of `name`.
pub fn journal_name(name: &str) -> String {
    layout::file_name(name, Role::Journal).to_string()
}

/// The slot files' names of `name`.
pub fn slot_names(name: &str) -> [String; 2] {
    [0, 1].map(|i| layout::file_name(name, Role::Slot(i)).to_string())
}

/// The names of the files of `name` that exist, for messages.
pub fn files(layout: &Files, name: &str) -> Vec<String> {
    layout
        .roles()
        .map(|role| layout::file_name(name, role).to_string())
        .collect()
}

/// The form the files say, `Ok(None)` if there are none, or `Err` with a
/// sentence if they say two things (the core's [`layout::Mixed`]).
pub fn form(layout: &Files, name: &str) -> Result<Option<Protocol>, String> {
    layout
        .protocol()
        .map_err(|mixed| format!("{name} is {mixed} ({})", files(layout, name).join(", ")))
}

/// The `--protocol` value of `parsed`, if given and not `auto`; it must be
/// one of `allowed` (else exit 2).
pub fn requested(
    parsed: &Parsed,
    spec: &Spec,
    allowed: &[Protocol],
) -> Result<Option<Protocol>, Failure> {
    let Some(value) = parsed.value(PROTOCOL_OPTION.name) else {
        return Ok(None);
    };
    let text = lossy(value);
    if text == "auto" {
        return Ok(None);
    }
    match Protocol::parse(&text) {
        Some(form) if allowed.contains(&form) => Ok(Some(form)),
        _ => {
            let names: Vec<&str> = allowed.iter().map(|f| f.as_str()).collect();
            Err(spec.usage(format_args!(
                "--protocol {text:?} is not one of auto, {}",
                names.join(", ")
            )))
        }
    }
}

/// The protocol `Protocol::Auto` gives whole documents in `dir`: Replace,
/// or Slots where renaming over a file is not crash-atomic.
pub fn auto_whole(dir: &LinuxDir) -> Protocol {
    match Protocol::Auto.resolve(dir.capabilities()) {
        Protocol::Slots => Protocol::Slots,
        _ => Protocol::Replace,
    }
}

/// The protocol a new appended array gets in `dir`: Journal, or Slots
/// where renaming over a file is not crash-atomic (the journal's creation
/// and compaction need an atomic rename).
pub fn auto_append(dir: &LinuxDir) -> Protocol {
    match auto_whole(dir) {
        Protocol::Slots => Protocol::Slots,
        _ => Protocol::Journal,
    }
}

/// How a command will treat a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The form to use.
    pub form: Protocol,
    /// The form on disk, if the state has files.
    pub existing: Option<Protocol>,
    /// The files that exist.
    pub layout: Files,
}

/// Decide how `command` stores `target`: the form on disk if there is
/// one, else `requested`, else `new_state`. A `requested` form that
/// contradicts the files on disk is a usage error (exit 2) naming them —
/// except a plain array file that `append` converts to a journal, which
/// `convertible` allows.
pub fn choose(
    dir: &mut LinuxDir,
    target: &Target,
    requested: Option<Protocol>,
    new_state: Protocol,
    convertible: &dyn Fn(Protocol, Protocol) -> bool,
    command: &str,
) -> Result<Choice, Failure> {
    let layout = Files::probe(dir, &target.name).map_err(|e| {
        Failure::error(format!(
            "cannot look at the files of {}: {}; nothing was changed",
            target.path(),
            e.source
        ))
    })?;
    let existing = form(&layout, &target.name).map_err(|why| {
        Failure::error(format!(
            "{why} (in {}); nothing was changed",
            target.shown.display()
        ))
    })?;
    let form = match (existing, requested) {
        (Some(on_disk), Some(asked)) if on_disk != asked && !convertible(on_disk, asked) => {
            let names = files(&layout, &target.name);
            return Err(Failure::new(
                EXIT_USAGE,
                format!(
                    "{command}: --protocol {} contradicts how {} is stored: {} exist{} in {}, which is the {} form; fsatomic does not migrate state silently; nothing was changed\n(run 'fsatomic {command} --help')",
                    asked.as_str(),
                    target.path(),
                    names.join(" and "),
                    if names.len() == 1 { "s" } else { "" },
                    target.shown.display(),
                    on_disk.as_str(),
                ),
            ));
        }
        (Some(on_disk), Some(asked)) if on_disk != asked => asked,
        (Some(on_disk), _) => on_disk,
        (None, Some(asked)) => asked,
        (None, None) => new_state,
    };
    Ok(Choice {
        form,
        existing,
        layout,
    })
}

/// The size of the largest file of the state `name`: a first guess of the
/// buffer a read needs.
pub fn layout_size(dir: &LinuxDir, name: &str) -> u64 {
    [
        Role::Document,
        Role::Previous,
        Role::Replaced,
        Role::Tentative,
        Role::Slot(0),
        Role::Slot(1),
    ]
    .into_iter()
    .map(|role| document::file_size(dir, &layout::file_name(name, role)))
    .max()
    .unwrap_or(0)
}

/// Read the whole document of a Replace or Slots state and check that it
/// is one JSON value; `Ok(None)` if it is absent. Lock-free; changes
/// nothing.
pub fn read_whole(
    dir: &mut LinuxDir,
    target: &Target,
    form: Protocol,
) -> Result<Option<Vec<u8>>, ReadError> {
    if form != Protocol::Slots {
        return document::read(dir, target);
    }
    let [a, b] = slot_names(&target.name);
    let hint = document::file_size(dir, &a).max(document::file_size(dir, &b));
    let Some(text) =
        document::read_sized(dir, hint, |dir, buf| slots::load(dir, &target.name, buf))?
    else {
        return Ok(None);
    };
    if text.is_empty() || json::validate(&text).is_err() {
        // A slot whose checksum holds but whose document is not JSON (a
        // writer that is not fsatomic), or is JSON nested deeper than
        // fsatomic supports. Name the slot and the offset in it.
        let file = newest_slot(dir, &target.name).ok().flatten().map_or_else(
            || target.name.clone(),
            |i| slot_names(&target.name)[i].clone(),
        );
        let at = slots::HEADER_LEN as u64;
        return Err(ReadError::Load(match json::validate(&text) {
            Err(e) => fsatomic::load::json_error(&file, at + e.offset as u64, e.kind),
            Ok(()) => LoadError::Corrupt(Corrupt::new(&file, at, fsatomic::CorruptKind::Empty)),
        }));
    }
    Ok(Some(text))
}

/// What each slot file of `name` holds (`None`: missing).
pub fn slot_infos(dir: &mut LinuxDir, name: &str) -> io::Result<[Option<SlotInfo>; 2]> {
    let mut infos = [None, None];
    for (info, file) in infos.iter_mut().zip(slot_names(name)) {
        if let Some(mut f) = dir.open_read(&file)? {
            *info = Some(slots::inspect(&mut f, &file).map_err(|e| e.source)?);
        }
    }
    Ok(infos)
}

/// The generation and index of each valid slot in `infos`.
pub fn valid_slots(
    infos: &[Option<SlotInfo>; 2],
) -> impl Iterator<Item = (u64, usize)> + Clone + '_ {
    infos
        .iter()
        .enumerate()
        .filter_map(|(i, info)| match info.map(|i| i.status) {
            Some(SlotStatus::Valid { generation, .. }) => Some((generation, i)),
            _ => None,
        })
}

/// Of two valid slots (generation, index), the newer one (`a` on a tie).
pub fn newer(a: (u64, usize), b: (u64, usize)) -> (u64, usize) {
    match slots::compare_generations(a.0, b.0) {
        Some(std::cmp::Ordering::Less) => b,
        _ => a,
    }
}

/// The index of the valid slot with the highest generation.
pub fn newest_slot(dir: &mut LinuxDir, name: &str) -> io::Result<Option<usize>> {
    let infos = slot_infos(dir, name)?;
    Ok(valid_slots(&infos).reduce(newer).map(|(_, i)| i))
}

/// A journaled state as a replay found it (the library's).
pub use fsatomic_linux::array::JournalState;

/// Replay the journal of `target`: lock-free and read-only, or, with
/// `repair` (the caller holds the writers' lock), through the core's
/// recovery, which cuts a torn tail, finishes an interrupted compaction
/// and creates a missing journal. Every record must be one JSON value.
pub fn read_journal(
    dir: &mut LinuxDir,
    target: &Target,
    journal: &Journal<'_>,
    repair: bool,
) -> Result<JournalState, ReadError> {
    let jname = journal.journal_name();
    let hint = document::file_size(dir, &target.name).max(document::file_size(dir, jname));
    array::read_journal_as(dir, &target.name, repair, hint, journal.mode()).map_err(|e| match e {
        array::Error::Recover(e) => ReadError::Recover(e),
        array::Error::NoBuffer { size } => ReadError::KeepsGrowing { size },
        _ => ReadError::Recover(RecoverError::LogicBug("a journal read failed as a write")),
    })
}
