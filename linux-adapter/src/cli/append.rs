//! `fsatomic append PATH [--mode OCTAL] [--mkdir] [--protocol P]`: add the
//! JSON value on stdin to the end of an array, durably, under the writers'
//! lock.
//!
//! Where renaming over a file is crash-atomic the array is a journal
//! ([`fsatomic::journal`]): each append is one record and one flush,
//! whatever the array's length, and the journal is compacted into the
//! snapshot when it outgrows both [`COMPACT_AFTER`] and the snapshot. On
//! FAT (or for a state already kept in slots) the whole array is rewritten
//! with Slots. A plain array file (written by `save`, or by the old
//! daemon) is converted to a journal once, and `append` says so.

use std::ffi::OsString;
use std::io::Read;

use fsatomic::journal::{self, Conversion, Journal, Tail};
use fsatomic::{Mode, json, lock, recover};
use fsatomic_linux::LinuxDir;
use rustix::fs::{AtFlags, statat};

use super::args::{self, Opt, Spec};
use super::document;
use super::failure::{self, Failure};
use super::save;
use super::stored::{self, Choice, Form};
use super::target::{self, Target};

/// What `append` accepts.
pub const SPEC: Spec = Spec {
    command: "append",
    options: &[
        Opt {
            name: "--mode",
            takes_value: true,
        },
        Opt {
            name: "--mkdir",
            takes_value: false,
        },
        stored::PROTOCOL_OPTION,
    ],
    takes_command: false,
};

/// A journal is compacted when it is larger than this and than the
/// snapshot (so that compaction costs the same per record however large
/// the array grows) — the threshold of the core's `JournalStore`.
pub const COMPACT_AFTER: u64 = 64 * 1024;

/// Run `append`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("append");
    }
    let target = Target::parse(parsed.one_path(&SPEC)?)?;
    let asked_mode = parsed.value("--mode").is_some();
    let mode = parsed.mode(&SPEC, Mode::PRIVATE)?;
    let requested = stored::requested(&parsed, &SPEC, &[Form::Journal, Form::Slots])?;
    let untouched = format!("nothing was appended to {}", target.path());

    // Read, check and compact the value before touching the disk.
    let mut value = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut value)
        .map_err(|e| Failure::error(format!("reading stdin failed: {e}; {untouched}")))?;
    let input_len = value.len();
    let compacted = json::compact_in_place(&mut value, input_len);
    let len = compacted.map_err(|e| {
        Failure::error(format!(
            "{}; {untouched}",
            document::invalid_input("stdin", &value, &e)
        ))
    })?;
    value.truncate(len);

    let mut dir = target.open(parsed.flag("--mkdir"))?;
    let _guard =
        lock::lock(&mut dir, &target.name, mode).map_err(|e| failure::lock(&target.shown, &e))?;
    let new_state = stored::auto_append(&dir);
    let choice = stored::choose(
        &mut dir,
        &target,
        requested,
        new_state,
        &|on_disk, asked| on_disk == Form::Replace && asked == Form::Journal,
        "append",
    )?;
    // Without --mode, the files keep the mode the state has: a compaction
    // at some append must not change who can read the array.
    let mode = match existing_mode(&dir, &target, &choice) {
        Some(existing) if !asked_mode => existing,
        _ => mode,
    };
    let atomic = dir.filesystem().atomic_replace;
    match (choice.existing, choice.form) {
        (Some(Form::Replace), Form::Replace) if !atomic => {
            // A plain array on FAT: no journal here (its creation and
            // compaction need an atomic rename), and no silent migration
            // to slots: rewrite the array whole, as it is stored.
            target::warn_if_unsafe(&dir, &target.shown);
            append_whole(&mut dir, &target, Form::Replace, &value, mode)
        }
        (Some(Form::Replace), _) | (_, Form::Journal) => {
            if !atomic {
                eprintln!(
                    "fsatomic: warning: {} is on {}, where renaming over a file is not crash-atomic; appends are safe, but a power cut while the journal is created or compacted may lose it",
                    target.shown.display(),
                    dir.filesystem().name
                );
            }
            if choice.existing == Some(Form::Replace) {
                convert(&mut dir, &target, mode)?;
            }
            append_journal(&mut dir, &target, &value, mode)
        }
        (_, form) => append_whole(&mut dir, &target, form, &value, mode),
    }
}

/// The permissions of the state's main file (the journal for a journal,
/// slot `a` for slots), if it has one.
fn existing_mode(dir: &LinuxDir, target: &Target, choice: &Choice) -> Option<Mode> {
    let file = match choice.existing? {
        Form::Journal => stored::journal_name(&target.name),
        Form::Slots => {
            let [a, b] = stored::slot_names(&target.name);
            if choice.layout.0.slots[0] { a } else { b }
        }
        _ => target.name.clone(),
    };
    let st = statat(dir, file.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok()?;
    Mode::new(st.st_mode & 0o7777)
}

/// What kind of JSON value `text` (valid JSON) is, for messages.
fn kind_of(text: &[u8]) -> &'static str {
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Under the lock: turn the plain array file `target` into a journaled
/// array through the core's [`Journal::convert`], whose one commit (the new
/// journal) leaves the plain array or the journaled array with the same
/// content at every power cut. A file that is not an array is refused.
fn convert(dir: &mut LinuxDir, target: &Target, mode: Mode) -> Result<(), Failure> {
    let path = target.path();
    let Some(text) = document::read(dir, target).map_err(|e| e.failure(target))? else {
        return Ok(()); // removed meanwhile (by a writer that ignores the lock): a new array
    };
    let mut elements = 0usize;
    let is_array = json::for_each_element(&text, |_| elements += 1).is_ok();
    let is_snapshot = journal::parse_snapshot(&target.name, &text)
        .is_ok_and(|(_, state)| json::for_each_element(&text[state], |_| ()).is_ok());
    if !is_array && !is_snapshot {
        return Err(Failure::error(format!(
            "{path} holds {}, not an array; append adds to arrays only; use save or update to change it; {path} was left untouched",
            kind_of(&text)
        )));
    }
    let journal = Journal::new(&target.name, mode)
        .map_err(|e| failure::name(&target.shown, &target.name, &e))?;
    recover::sweep_orphans(dir, Some(&target.name))
        .map_err(|e| failure::sweep(&target.shown, &e))?;
    let mut buf = text;
    buf.resize(buf.len() + 1, 0);
    let done = journal
        .convert(dir, &mut buf)
        .map_err(|e| failure::recover(&target.shown, &e))?;
    if done == Conversion::Converted {
        eprintln!(
            "fsatomic: converted {path}, a plain JSON array of {elements} element{}, into a journaled array: {path} stays its snapshot and {path}.journal holds the records appended after it; `fsatomic load` prints the whole array as before",
            if elements == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// Under the lock: recover the journal (cut a torn tail, finish an
/// interrupted compaction, create it if missing), compact it if it has
/// grown, and append `value` as one record with one flush.
fn append_journal(
    dir: &mut LinuxDir,
    target: &Target,
    value: &[u8],
    mode: Mode,
) -> Result<(), Failure> {
    let path = target.path();
    let journal = Journal::new(&target.name, mode)
        .map_err(|e| failure::name(&target.shown, &target.name, &e))?;
    recover::sweep_orphans(dir, Some(&target.name))
        .map_err(|e| failure::sweep(&target.shown, &e))?;
    let state = stored::read_journal(dir, target, &journal, true).map_err(|e| e.failure(target))?;
    let Some(array) = state.array() else {
        return Err(Failure::error(format!(
            "the snapshot {path} does not hold an array: this journal is kept by a program with its own record format, and an arbitrary value appended to it would break that program; nothing was appended"
        )));
    };
    let mut tail = state.replay.tail;
    drop(state);
    if tail.end > COMPACT_AFTER.max(tail.snapshot_bytes) {
        compact(dir, target, &journal, &mut tail, array)?;
    }
    journal.append(dir, &mut tail, &[value]).map_err(|e| {
        let f = failure::commit(&target.shown, &e);
        Failure::error(format!(
            "appending to {path} failed: {}",
            f.message.unwrap_or_default()
        ))
    })?;
    Ok(())
}

/// Fold every record into a new snapshot (the whole `array`) and start an
/// empty journal.
fn compact(
    dir: &mut LinuxDir,
    target: &Target,
    journal: &Journal<'_>,
    tail: &mut Tail,
    array: Vec<u8>,
) -> Result<(), Failure> {
    let seq = tail.next_seq.saturating_sub(1);
    let mut wrapped = format!("{{\"seq\":{seq},\"state\":").into_bytes();
    wrapped.extend_from_slice(&array);
    wrapped.push(b'}');
    let needed = json::pretty_len(&wrapped)
        .map_err(|e| Failure::error(format!("internal error (please report): {e}")))?;
    drop(wrapped);
    let mut buf = document::buffer(needed.max(array.len() + 64), "the compacted snapshot")?;
    buf[..array.len()].copy_from_slice(&array);
    journal
        .compact(dir, tail, &mut buf, array.len())
        .map_err(|e| {
            let f = failure::commit(&target.shown, &e);
            Failure::error(format!(
                "compacting the journal of {} failed: {}; nothing was appended (the array is intact; the next append compacts again)",
                target.path(),
                f.message.unwrap_or_default()
            ))
        })
}

/// Under the lock: read the whole array (or `[]`), add `value` at the end,
/// and commit the whole array with `form`.
fn append_whole(
    dir: &mut LinuxDir,
    target: &Target,
    form: Form,
    value: &[u8],
    mode: Mode,
) -> Result<(), Failure> {
    let current = stored::read_whole(dir, target, form)
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
            kind_of(&current)
        ))
    })?;
    if array.len() > 1 {
        array.push(b',');
    }
    array.extend_from_slice(value);
    array.push(b']');
    let document = document::pretty(&array)?
        .map_err(|e| Failure::error(format!("internal error (please report): {e}")))?;
    save::commit(dir, target, form, &document, mode)
}
