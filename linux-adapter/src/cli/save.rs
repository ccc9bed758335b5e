//! `fsatomic save PATH [--mode OCTAL] [--mkdir]`: commit the JSON value on
//! stdin, re-indented, under the writers' lock.

use std::ffi::OsString;
use std::io::Read;

use fsatomic::{Mode, lock, recover, replace};
use fsatomic_linux::LinuxDir;

use super::args::{self, Opt, Spec};
use super::document;
use super::failure::{self, Failure};
use super::target::{self, Target};

/// What `save` accepts.
pub const SPEC: Spec = Spec {
    command: "save",
    options: &[
        Opt {
            name: "--mode",
            takes_value: true,
        },
        Opt {
            name: "--mkdir",
            takes_value: false,
        },
    ],
    takes_command: false,
};

/// Run `save`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("save");
    }
    let target = Target::parse(parsed.one_path(&SPEC)?)?;
    let mode = parsed.mode(&SPEC, Mode::PRIVATE)?;

    // Read and check the input before touching the disk at all (not even
    // to make a directory).
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| {
            Failure::error(format!(
                "reading stdin failed: {e}; {} was left untouched",
                target.path()
            ))
        })?;
    let document = document::pretty(&input)?.map_err(|e| {
        Failure::error(format!(
            "{}; {} was left untouched",
            document::invalid_input("stdin", &input, &e),
            target.path()
        ))
    })?;
    drop(input);

    let mut dir = target.open(parsed.flag("--mkdir"))?;
    target::warn_if_unsafe(&dir, &target.shown);
    commit_locked(&mut dir, &target, &document, mode)
}

/// Under the writers' lock of `target`: sweep its orphaned temporary files,
/// then commit `document` with Replace.
pub fn commit_locked(
    dir: &mut LinuxDir,
    target: &Target,
    document: &[u8],
    mode: Mode,
) -> Result<(), Failure> {
    let _guard =
        lock::lock(dir, &target.name, mode).map_err(|e| failure::lock(&target.shown, &e))?;
    commit(dir, target, document, mode)
}

/// With the writers' lock of `target` held: sweep, then commit.
pub fn commit(
    dir: &mut LinuxDir,
    target: &Target,
    document: &[u8],
    mode: Mode,
) -> Result<(), Failure> {
    recover::sweep_orphans(dir, Some(&target.name))
        .map_err(|e| failure::sweep(&target.shown, &e))?;
    replace::commit(dir, &target.name, document, mode)
        .map_err(|e| failure::commit(&target.shown, &e))
}
