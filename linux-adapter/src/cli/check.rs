//! `fsatomic check PATH|DIR [--repair]`: report the state of every state
//! file and every orphaned temporary file, and (with `--repair`) sweep the
//! orphans, each name under its own writers' lock.
//!
//! Without `--repair`, `check` is a reader: it takes no lock and changes
//! nothing. Which files are state files, and which are a protocol's
//! leftovers, is decided by [`Protocol`], so that the Journal
//! (`NAME.journal`) and Slots (`NAME.a`, `NAME.b`) protocols only add a
//! variant there.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use fsatomic::{Dir, LoadError, Mode, lock, name, recover};
use fsatomic_linux::LinuxDir;

use super::args::{self, Opt, Spec};
use super::document::{self, ReadError};
use super::failure::{
    self, CORRUPT_ADVICE, CORRUPT_ADVICE_MANY, EXIT_CORRUPT, EXIT_FAILURE, Failure, in_dir,
};
use super::target::{self, Target};

/// What `check` accepts.
pub const SPEC: Spec = Spec {
    command: "check",
    options: &[Opt {
        name: "--repair",
        takes_value: false,
    }],
    takes_command: false,
};

/// A commit protocol whose files `check` recognises in a directory.
///
/// Only Replace exists today. A new protocol adds a variant and answers
/// the three questions below for its own files (Journal: `NAME.journal`
/// belongs to `NAME`; Slots: `NAME.a` and `NAME.b` belong to `NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// One JSON document per file, replaced whole (`NAME`, with
    /// `.NAME.<16 hex>.tmp` while a commit is in flight).
    Replace,
}

impl Protocol {
    /// Every protocol, in the order they claim directory entries.
    pub const ALL: [Protocol; 1] = [Protocol::Replace];

    /// If the directory entry `entry` holds state of this protocol, the
    /// state's name. Replace claims every `*.json` file.
    pub fn state_name(self, entry: &str) -> Option<&str> {
        match self {
            Protocol::Replace => {
                (entry.ends_with(".json") && name::temp_target(entry).is_none()).then_some(entry)
            }
        }
    }

    /// If `entry` is a temporary file this protocol leaves behind when a
    /// commit is cut short, the name of the state it belonged to.
    pub fn orphan_target(self, entry: &str) -> Option<&str> {
        match self {
            Protocol::Replace => name::temp_target(entry),
        }
    }

    /// Read the state `target` and say what it is.
    fn inspect(self, dir: &mut LinuxDir, target: &Target) -> Status {
        match self {
            Protocol::Replace => match document::read(dir, target) {
                Ok(Some(_)) => Status::Ok,
                Ok(None) => Status::Absent,
                Err(ReadError::Load(LoadError::Corrupt(c))) => Status::Corrupt {
                    offset: c.offset,
                    reason: c.kind.to_string(),
                },
                Err(e) => Status::Error(e.failure(target).message.unwrap_or_default()),
            },
        }
    }
}

/// What `check` found for one state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Ok,
    Absent,
    Corrupt { offset: u64, reason: String },
    Error(String),
}

/// One state and the temporary files left for it.
#[derive(Debug)]
struct Entry {
    protocol: Protocol,
    orphans: Vec<String>,
}

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    corrupt: usize,
    absent: usize,
    errors: usize,
    orphans: usize,
    removed: usize,
}

/// Run `check`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("check");
    }
    let arg = parsed.one_path(&SPEC)?;
    let repair = parsed.flag("--repair");
    let as_dir =
        arg.as_encoded_bytes().ends_with(b"/") || std::fs::metadata(arg).is_ok_and(|m| m.is_dir());

    let (dir_path, only) = if as_dir {
        (PathBuf::from(arg), None)
    } else {
        let target = Target::parse(arg)?;
        (target.dir, Some(target.name))
    };
    let shown = target::absolute(&dir_path);
    let mut dir = target::open_dir(&dir_path, &shown)?;

    let fs = dir.filesystem();
    println!(
        "filesystem: {} (0x{:x}): {}",
        fs.name,
        fs.magic,
        if fs.atomic_replace {
            "renaming over a file is crash-atomic"
        } else {
            "renaming over a file is NOT crash-atomic; a power cut during a save may lose the file"
        }
    );

    let states = survey(&mut dir, &shown, only.as_deref())?;
    let mut tally = Tally::default();
    for (state, entry) in &states {
        let target = Target {
            dir: dir_path.clone(),
            shown: shown.clone(),
            name: state.clone(),
        };
        let status = match name::validate(state) {
            Ok(()) => entry.protocol.inspect(&mut dir, &target),
            Err(e) => Status::Error(format!("not a name fsatomic can use: {e}")),
        };
        let path = target.path();
        match &status {
            Status::Ok => {
                tally.ok += 1;
                println!("{path}: ok");
            }
            Status::Absent => {
                tally.absent += 1;
                println!("{path}: absent");
            }
            Status::Corrupt { offset, reason } => {
                tally.corrupt += 1;
                println!("{path}: corrupt at byte {offset}: {reason}");
            }
            Status::Error(message) => {
                tally.errors += 1;
                println!("{path}: error: {message}");
            }
        }
        for orphan in &entry.orphans {
            tally.orphans += 1;
            println!(
                "{}: orphaned temporary file of {state}",
                in_dir(&shown, orphan)
            );
        }
        if repair && !entry.orphans.is_empty() {
            match sweep(&mut dir, &shown, state) {
                Ok(n) => {
                    tally.removed += n;
                    println!("{path}: removed {n} orphaned temporary file{}", plural(n));
                }
                Err(message) => {
                    tally.errors += 1;
                    println!("{path}: repair failed: {message}");
                }
            }
        }
    }
    summarize(&tally, repair);

    if tally.corrupt > 0 {
        Err(Failure::new(
            EXIT_CORRUPT,
            format!(
                "{} in {}: {}",
                if tally.corrupt == 1 {
                    "1 corrupt file".to_string()
                } else {
                    format!("{} corrupt files", tally.corrupt)
                },
                shown.display(),
                if tally.corrupt == 1 {
                    CORRUPT_ADVICE
                } else {
                    CORRUPT_ADVICE_MANY
                }
            ),
        ))
    } else if tally.errors > 0 {
        Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "{} file{} in {} could not be checked or repaired (see above)",
                tally.errors,
                plural(tally.errors),
                shown.display()
            ),
        ))
    } else {
        Ok(())
    }
}

/// The states in the directory (or only `only`), each with its orphans,
/// sorted by name.
fn survey(
    dir: &mut LinuxDir,
    shown: &Path,
    only: Option<&str>,
) -> Result<BTreeMap<String, Entry>, Failure> {
    let mut states: BTreeMap<String, Entry> = BTreeMap::new();
    if let Some(only) = only {
        states.insert(
            only.to_string(),
            Entry {
                protocol: Protocol::Replace,
                orphans: Vec::new(),
            },
        );
    }
    let mut entries = Vec::new();
    dir.for_each_entry(&mut |entry| {
        entries.push(entry.to_string());
        ControlFlow::Continue(())
    })
    .map_err(|e| Failure::error(format!("listing directory {} failed: {e}", shown.display())))?;
    entries.sort();
    for entry in &entries {
        for protocol in Protocol::ALL {
            if let Some(state) = protocol.orphan_target(entry) {
                if only.is_none_or(|o| o == state) {
                    let slot = states.entry(state.to_string()).or_insert(Entry {
                        protocol,
                        orphans: Vec::new(),
                    });
                    slot.orphans.push(entry.clone());
                }
                break;
            }
            if let Some(state) = protocol.state_name(entry) {
                if only.is_none() {
                    states.entry(state.to_string()).or_insert(Entry {
                        protocol,
                        orphans: Vec::new(),
                    });
                }
                break;
            }
        }
    }
    Ok(states)
}

/// Under the writers' lock of `state`, sweep its orphaned temporary files.
fn sweep(dir: &mut LinuxDir, shown: &Path, state: &str) -> Result<usize, String> {
    let _guard = lock::lock(dir, state, Mode::PRIVATE)
        .map_err(|e| failure::lock(shown, &e).message.unwrap_or_default())?;
    recover::sweep_orphans(dir, Some(state)).map_err(|e| failure::io_message(shown, &e))
}

fn summarize(t: &Tally, repair: bool) {
    let files = t.ok + t.corrupt + t.absent + t.errors;
    let mut line = format!(
        "summary: {files} state file{}: {} ok, {} corrupt, {} absent",
        plural(files),
        t.ok,
        t.corrupt,
        t.absent
    );
    if t.errors > 0 {
        line.push_str(&format!(", {} unreadable", t.errors));
    }
    line.push_str(&format!(
        "; {} orphaned temporary file{}",
        t.orphans,
        plural(t.orphans)
    ));
    if repair {
        line.push_str(&format!(", {} removed", t.removed));
    } else if t.orphans > 0 {
        line.push_str(" (check --repair removes them)");
    }
    println!("{line}");
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_claims_json_files_and_its_own_orphans_only() {
        let p = Protocol::Replace;
        assert_eq!(p.state_name("users.json"), Some("users.json"));
        assert_eq!(p.state_name("notes.tmp"), None);
        assert_eq!(p.state_name("users.json.lock"), None);
        assert_eq!(
            p.orphan_target(".users.json.0123456789abcdef.tmp"),
            Some("users.json")
        );
        assert_eq!(p.orphan_target(".x.tmp"), None);
        assert_eq!(p.orphan_target(".users.json.0123456789ABCDEF.tmp"), None);
    }
}
