//! `fsatomic load PATH [--previous]`: print the document — exactly the bytes
//! on disk for Replace and Slots, the whole array for a journal — or its
//! previous version. Takes no lock, deletes nothing, repairs nothing.

use std::ffi::OsString;
use std::io::{ErrorKind, Write};

use fsatomic::journal::{self, Journal};
use fsatomic::layout::{self, Role};
use fsatomic::{Mode, protocol};
use fsatomic_linux::LinuxDir;

use super::args::{self, Opt, Spec};
use super::document;
use super::failure::{self, EXIT_ABSENT, EXIT_FAILURE, Failure};
use super::stored;
use super::target::Target;
use fsatomic::Protocol;

/// What `load` accepts.
pub const SPEC: Spec = Spec {
    command: "load",
    options: &[Opt::flag("--previous")],
    takes_command: false,
};

/// The document of `target` as `load` prints it, or `None` if absent:
/// the bytes on disk for Replace and Slots; for a journal, the snapshot's
/// elements followed by every record, as one indented array.
pub fn read(dir: &mut LinuxDir, target: &Target) -> Result<Option<Vec<u8>>, Failure> {
    let choice = stored::choose(dir, target, None, Protocol::Replace, &|_, _| false, "load")?;
    if choice.form != Protocol::Journal {
        let text = stored::read_whole(dir, target, choice.form).map_err(|e| e.failure(target))?;
        // `append` converts a plain array by writing the journal's snapshot
        // over it, then creating the journal, under the lock but not under
        // our eyes: a snapshot read here with its journal there now means
        // the conversion ran in between. Read it as the journal it is.
        let converted = choice.form == Protocol::Replace
            && text
                .as_deref()
                .is_some_and(|t| journal::parse_snapshot(&target.name, t).is_ok())
            && layout::Files::probe(dir, &target.name).is_ok_and(|l| l.journal);
        if !converted {
            return Ok(text);
        }
    }
    printed(&journal_state(dir, target)?)
}

/// The journaled state of `target`, replayed lock-free.
fn journal_state(dir: &mut LinuxDir, target: &Target) -> Result<stored::JournalState, Failure> {
    let journal = Journal::new(&target.name, Mode::PRIVATE)
        .map_err(|e| failure::name(&target.shown, &target.name, &e))?;
    stored::read_journal(dir, target, &journal, false).map_err(|e| e.failure(target))
}

/// A journaled state as `load` prints it: its array (else its parts),
/// indented.
fn printed(state: &stored::JournalState) -> Result<Option<Vec<u8>>, Failure> {
    document::pretty_built(&state.array().unwrap_or_else(|| state.parts())).map(Some)
}

/// The previous version of `target` as `load --previous` prints it, or
/// `None` if there is none (the core's [`fsatomic::protocol::read_previous`];
/// for a journal, the array before its last append).
pub fn read_previous(dir: &mut LinuxDir, target: &Target) -> Result<Option<Vec<u8>>, Failure> {
    let choice = stored::choose(dir, target, None, Protocol::Replace, &|_, _| false, "load")?;
    if choice.form == Protocol::Journal {
        return match journal_state(dir, target)?.previous() {
            Some(previous) => printed(&previous),
            None => Ok(None),
        };
    }
    let hint = stored::layout_size(dir, &target.name);
    let form = choice.form;
    document::read_sized(dir, hint, |dir, buf| {
        let Some(len) = protocol::read_previous(dir, &target.name, buf, form)? else {
            return Ok(None);
        };
        let shown = layout::file_name(&target.name, Role::Previous);
        fsatomic::load::check_document(&shown, buf.get(..len).unwrap_or_default())?;
        Ok(Some(len))
    })
    .map_err(|e| e.failure(target))
}

/// Run `load`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("load");
    }
    let target = Target::parse(parsed.one_path(&SPEC)?)?;
    let mut dir = target.open(false)?;
    let previous = parsed.flag("--previous");
    let text = if previous {
        read_previous(&mut dir, &target)?
    } else {
        read(&mut dir, &target)?
    };
    let Some(text) = text else {
        let why = if !previous {
            format!("{} does not exist", target.path())
        } else if read(&mut dir, &target)?.is_none() {
            format!(
                "{} does not exist, and has no previous version",
                target.path()
            )
        } else {
            format!(
                "{} has no previous version: it was never kept (save with --keep-previous), the state has had one version only, or a power cut during a Slots commit tore it",
                target.path()
            )
        };
        return Err(Failure::new(EXIT_ABSENT, why));
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            // The reader went away (`fsatomic load F | head -1`): as
            // quiet as a death by SIGPIPE, but still not success.
            ErrorKind::BrokenPipe => Failure::silent(EXIT_FAILURE),
            _ => Failure::error(format!("writing {} to stdout failed: {e}", target.path())),
        })
}
