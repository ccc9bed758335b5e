//! `fsatomic append PATH [--mode OCTAL] [--mkdir] [--protocol P]`: add the
//! JSON value on stdin to the end of an array, durably, under the writers'
//! lock.
//!
//! Where renaming over a file is crash-atomic the array is a journal kept
//! by [`array::append`] (one record, one flush; a plain array converted
//! once, and `append` says so); on FAT, or for a state already kept in
//! slots, the whole array is rewritten with Slots.

use std::ffi::OsString;

use fsatomic::{Mode, Protocol, json};
use fsatomic_linux::LinuxDir;
use fsatomic_linux::array;
use rustix::fs::{AtFlags, statat};

use super::args::{self, Opt, Spec};
use super::document;
use super::failure::{self, Failure};
use super::owner;
use super::save;
use super::stored::{self, Choice};
use super::target::{self, Target, Writer};

/// What `append` accepts.
pub const SPEC: Spec = Spec {
    command: "append",
    options: &[
        Opt::with_value("--mode"),
        Opt::flag("--mkdir"),
        stored::PROTOCOL_OPTION,
        args::TIMEOUT_OPTION,
        args::NOWAIT_OPTION,
        owner::OWNER_OPTION,
        owner::GROUP_OPTION,
        owner::PRESERVE_OPTION,
    ],
    takes_command: false,
};

/// Run `append`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("append");
    }
    let writer = Writer::parse(&parsed, &SPEC)?;
    let target = &writer.target;
    let asked_mode = parsed.value("--mode").is_some();
    let requested = stored::requested(&parsed, &SPEC, &[Protocol::Journal, Protocol::Slots])?;
    let untouched = format!("nothing was appended to {}", target.path());

    // Read, check and compact the value before touching the disk.
    let mut value = document::stdin(&untouched)?;
    let input_len = value.len();
    let compacted = json::compact_in_place(&mut value, input_len);
    let len = compacted.map_err(|e| {
        Failure::error(format!(
            "{}; {untouched}",
            document::invalid_input("stdin", &value, &e)
        ))
    })?;
    value.truncate(len);

    let (mut dir, mode, _guard) = writer.lock()?;
    let new_state = stored::auto_append(&dir);
    let choice = stored::choose(
        &mut dir,
        target,
        requested,
        new_state,
        &|on_disk, asked| on_disk == Protocol::Replace && asked == Protocol::Journal,
        "append",
    )?;
    // Without --mode, the files keep the mode the state has: a compaction
    // at some append must not change who can read the array.
    let mode = match existing_mode(&dir, target, &choice) {
        Some(existing) if !asked_mode => existing,
        _ => mode,
    };
    // A tentative version waits: appending would convert or rewrite the
    // confirmed version under it.
    fsatomic::history::plan::<std::io::Error>(&target.name, &choice.layout, false)
        .map_err(|e| failure::commit(&target.shown, &e))?;
    let atomic = dir.filesystem().atomic_replace;
    match (choice.existing, choice.form) {
        (Some(Protocol::Replace), Protocol::Replace) if !atomic => {
            // A plain array on FAT: no journal here (its creation and
            // compaction need an atomic rename), and no silent migration
            // to slots: rewrite the array whole, as it is stored.
            target::warn_if_unsafe(&dir, &target.shown);
            let whole = stored::Choice {
                form: Protocol::Replace,
                ..choice
            };
            append_whole(&mut dir, target, &whole, &value, mode)
        }
        (Some(Protocol::Replace), _) | (_, Protocol::Journal) => {
            if !atomic {
                failure::note(format_args!(
                    "warning: {} is on {}, where renaming over a file is not crash-atomic; appends are safe, but a power cut while the journal is created or compacted may lose it",
                    target.shown.display(),
                    dir.filesystem().name
                ));
            }
            append_journal(&mut dir, target, &value, mode)
        }
        _ => append_whole(&mut dir, target, &choice, &value, mode),
    }
}

/// The permissions of the state's main file (the journal for a journal,
/// slot `a` for slots), if it has one.
fn existing_mode(dir: &LinuxDir, target: &Target, choice: &Choice) -> Option<Mode> {
    choice.existing?;
    let file = array::mode_file(&target.name, &choice.layout);
    let st = statat(dir, file.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Mode::new(st.st_mode & 0o7777)
}

/// Under the lock: append `value` to the journaled array through the
/// library's [`array::append`] (converting a plain array first, recovering
/// and compacting the journal as needed) — the code the crash explorer
/// drives.
fn append_journal(
    dir: &mut LinuxDir,
    target: &Target,
    value: &[u8],
    mode: Mode,
) -> Result<(), Failure> {
    let path = target.path();
    let shown = &target.shown;
    let done = array::append(dir, &target.name, value, mode).map_err(|e| match e {
        array::Error::Recover(e) => failure::recover(shown, &e),
        array::Error::Commit(fsatomic::CommitError::Io(e)) => Failure::error(format!(
            "appending to {path} failed: {}; nothing was appended",
            failure::io_message(shown, &e)
        )),
        array::Error::Commit(e) => Failure::error(format!(
            "appending to {path} failed: {e}; nothing was appended"
        )),
        array::Error::NotArray { kind } => Failure::error(format!(
            "{path} holds {kind}, not an array; append adds to arrays only; use save or update to change it; nothing was appended, and {path} was left untouched"
        )),
        array::Error::NoBuffer { size } => Failure::error(format!(
            "not enough memory to read {path} ({size} bytes); nothing was appended"
        )),
        e => Failure::error(format!("appending to {path} failed: {e}; nothing was appended")),
    })?;
    if let Some(elements) = done.converted {
        failure::note(format_args!(
            "converted {path}, a plain JSON array of {elements} element{}, into a journaled array: {path} stays its snapshot and {} holds the records appended after it; `fsatomic load` prints the whole array as before",
            if elements == 1 { "" } else { "s" },
            failure::in_dir(&target.shown, &stored::journal_name(&target.name))
        ));
    }
    Ok(())
}

/// Under the lock: read the whole array (or `[]`), add `value` at the end,
/// and commit the whole array with `choice.form`.
fn append_whole(
    dir: &mut LinuxDir,
    target: &Target,
    choice: &stored::Choice,
    value: &[u8],
    mode: Mode,
) -> Result<(), Failure> {
    let current = stored::read_whole(dir, target, choice.form)
        .map_err(|e| e.failure(target))?
        .unwrap_or_else(|| b"[]".to_vec());
    let mut array = Vec::with_capacity(current.len() + value.len() + 2);
    array.push(b'[');
    json::for_each_element(&current, |range| {
        if array.len() > 1 {
            array.push(b',');
        }
        array.extend_from_slice(&current[range]);
    })
    .map_err(|_| {
        Failure::error(format!(
            "{} holds {}, not an array; append adds to arrays only; use save or update to change it; it was left untouched",
            target.path(),
            array::kind_of(&current)
        ))
    })?;
    if array.len() > 1 {
        array.push(b',');
    }
    array.extend_from_slice(value);
    array.push(b']');
    let document = document::pretty_built(&array)?;
    save::commit(dir, target, choice, &document, mode, save::How::default())
}
