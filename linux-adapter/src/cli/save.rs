//! `fsatomic save PATH [--mode OCTAL] [--mkdir] [--protocol P]
//! [--keep-previous] [--tentative]`: commit the JSON value on stdin,
//! re-indented, under the writers' lock, with the protocol the state is
//! stored with (see [`super::stored`]) — as the confirmed version, or as a
//! tentative one that the next boot rolls back unless `fsatomic confirm`
//! runs first.

use std::ffi::OsString;

use fsatomic::{CommitError, Dir, Mode, Protocol, history, protocol, recover};
use fsatomic_linux::LinuxDir;

use super::args::{self, Opt, Spec};
use super::document;
use super::failure::{self, Failure};
use super::owner;
use super::stored;
use super::target::{self, Target, Writer};

/// What `save` accepts.
pub const SPEC: Spec = Spec {
    command: "save",
    options: &[
        Opt::with_value("--mode"),
        Opt::flag("--mkdir"),
        stored::PROTOCOL_OPTION,
        args::TIMEOUT_OPTION,
        args::NOWAIT_OPTION,
        owner::OWNER_OPTION,
        owner::GROUP_OPTION,
        owner::PRESERVE_OPTION,
        KEEP_PREVIOUS_OPTION,
        Opt::flag("--tentative"),
        Opt::with_value("--until"),
    ],
    takes_command: false,
};

/// `--keep-previous` of `save`, `update` and `confirm`: keep the replaced
/// version for `load --previous` (sticky: once kept, always kept).
pub const KEEP_PREVIOUS_OPTION: Opt = Opt::flag("--keep-previous");

/// How a commit keeps its state's history.
#[derive(Clone, Copy, Debug, Default)]
pub struct How {
    /// `--keep-previous`.
    pub keep_previous: bool,
    /// `--tentative`.
    pub tentative: bool,
    /// `--until`: the tentative version's deadline.
    pub until: Option<u64>,
}

/// The protocols `--protocol` may name for whole documents.
pub const WHOLE: [Protocol; 2] = [Protocol::Replace, Protocol::Slots];

/// Run `save`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("save");
    }
    let writer = Writer::parse(&parsed, &SPEC)?;
    let target = &writer.target;
    let requested = stored::requested(&parsed, &SPEC, &WHOLE)?;

    // Read and check the input before touching the disk at all (not even
    // to make a directory).
    let untouched = format!("{} was left untouched", target.path());
    let input = document::stdin(&untouched)?;
    let document = document::pretty_input("stdin", &input, &untouched)?;
    drop(input);

    let (mut dir, mode, _guard) = writer.lock()?;
    let choice = decide(&mut dir, target, requested, "save")?;
    let how = How {
        keep_previous: parsed.flag(KEEP_PREVIOUS_OPTION.name),
        tentative: parsed.flag("--tentative"),
        until: parsed.seconds(&SPEC, "--until")?,
    };
    if how.until.is_some() && !how.tentative {
        return Err(Failure::usage(
            "save: --until gives a tentative version its deadline: add --tentative",
            "save",
        ));
    }
    commit(&mut dir, target, &choice, &document, mode, how)
}

/// For `save` and `update`, with the writers' lock held: the protocol of
/// `target` (its form on disk, else `requested`, else the filesystem's
/// choice). A journaled state is refused (exit 1): it is an array that
/// grows by `append`, and replacing it whole would lose its journal. Warns
/// when the protocol is Replace on a filesystem where that is not safe.
pub fn decide(
    dir: &mut LinuxDir,
    target: &Target,
    requested: Option<Protocol>,
    command: &str,
) -> Result<stored::Choice, Failure> {
    let mut choice = stored::choose(
        dir,
        target,
        requested,
        stored::auto_whole(dir),
        &|_, _| false,
        command,
    )?;
    match choice.form {
        Protocol::Journal => Err(Failure::error(format!(
            "{path} is a journaled array ({files} exist in {dir}); use `fsatomic append {path}` to add to it, or, to replace it whole, `fsatomic load` it, remove {files}, then {command} again; nothing was changed",
            path = target.path(),
            files = stored::files(&choice.layout, &target.name).join(" and "),
            dir = target.shown.display(),
        ))),
        Protocol::Slots => Ok(choice),
        _ => {
            target::warn_if_unsafe(dir, &target.shown);
            choice.form = Protocol::Replace;
            Ok(choice)
        }
    }
}

/// With the writers' lock of `target` held: sweep its orphaned temporary
/// files, then commit `document` with `form` (Replace or Slots; new slot
/// files get room for [`stored::SLOT_ROOM`] bytes or the document,
/// whichever is larger).
pub fn commit(
    dir: &mut LinuxDir,
    target: &Target,
    choice: &stored::Choice,
    document: &[u8],
    mode: Mode,
    how: How,
) -> Result<(), Failure> {
    let form = choice.form;
    recover::sweep_orphans(dir, Some(&target.name))
        .map_err(|e| failure::sweep(&target.shown, &e))?;
    let committed = if how.tentative {
        if form != Protocol::Replace {
            return Err(Failure::error(format!(
                "{}: tentative versions need the replace protocol (a crash-atomic rename); this state is stored with {}; nothing was changed",
                target.path(),
                form.as_str()
            )));
        }
        history::commit_tentative(dir, &target.name, document, mode, how.until)
    } else {
        history::plan(&target.name, &choice.layout, how.keep_previous).and_then(|keep| {
            protocol::Commit::new(
                dir.capabilities(),
                &target.name,
                document,
                mode,
                form,
                document.len().max(stored::SLOT_ROOM),
            )?
            .keep_previous(keep)
            .run(dir)
        })
    };
    committed.map_err(|e| match e {
        CommitError::TooLarge { size, capacity, .. } if form == Protocol::Slots => {
            Failure::error(format!(
                "the document ({size} bytes) does not fit the slot files of {} ({capacity} bytes each, fixed when they were made: a Slots commit never resizes them); {} was left untouched",
                target.path(),
                target.path()
            ))
        }
        e => failure::commit(&target.shown, &e),
    })
}
