//! `fsatomic check PATH|DIR [--repair]`: report the state of every state
//! file and every orphaned temporary file, and (with `--repair`) sweep the
//! orphans, each name under its own writers' lock.
//!
//! Without `--repair`, `check` is a reader: it takes no lock and changes
//! nothing. Which files are state files, and which are a protocol's
//! leftovers, is decided by the core's protocol model ([`layout`]):
//! Replace (`NAME`), Journal (`NAME.journal` and the snapshot `NAME`) and
//! Slots (`NAME.a`, `NAME.b`). Every line names the protocol of its state.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use fsatomic::journal::Journal;
use fsatomic::layout::{self, Role};
use fsatomic::slots::SlotStatus;
use fsatomic::{Dir, LoadError, Mode, Protocol, lock, name, recover};
use fsatomic_linux::LinuxDir;

use super::args::{self, Opt, Spec};
use super::document::{self, ReadError};
use super::failure::{
    self, CORRUPT_ADVICE, CORRUPT_ADVICE_MANY, EXIT_CORRUPT, EXIT_FAILURE, Failure, in_dir,
};
use super::receipt;
use super::stored;
use super::target::{self, Target};

/// What `check` accepts.
pub const SPEC: Spec = Spec {
    command: "check",
    options: &[
        Opt::flag("--repair"),
        Opt::flag("--json"),
        Opt::with_value("--now"),
    ],
    takes_command: false,
};

/// Read the state `target`, kept with `protocol`, and say what it is.
/// Lock-free; changes nothing.
fn inspect(protocol: Protocol, dir: &mut LinuxDir, target: &Target) -> Status {
    let corrupt = |c: &fsatomic::Corrupt| Status::Corrupt {
        offset: c.offset,
        reason: c.kind.to_string(),
        protocol: if protocol == Protocol::Replace {
            protocol.as_str().to_string()
        } else {
            format!("{}: {}", protocol.as_str(), in_dir(&target.shown, &c.file))
        },
    };
    let error = |e: ReadError| match e {
        ReadError::Load(LoadError::Corrupt(c))
        | ReadError::Recover(fsatomic::RecoverError::Corrupt(c)) => corrupt(&c),
        e => Status::Error(e.failure(target).message.unwrap_or_default()),
    };
    match protocol {
        Protocol::Slots => match stored::read_whole(dir, target, Protocol::Slots) {
            Ok(Some(_)) => {
                let (detail, facts) = slots_detail(dir, &target.name);
                Status::Ok {
                    detail,
                    torn: None,
                    facts,
                }
            }
            Ok(None) => Status::Absent(Some("slots: no commit completed yet".to_string())),
            Err(e) => error(e),
        },
        Protocol::Journal => {
            let journal = match Journal::new(&target.name, Mode::PRIVATE) {
                Ok(j) => j,
                Err(e) => return Status::Error(format!("not a name fsatomic can use: {e}")),
            };
            match stored::read_journal(dir, target, &journal, false) {
                Ok(state) => Status::Ok {
                    detail: journal_detail(&state, journal.journal_name()),
                    torn: state.replay.torn_at,
                    facts: Facts {
                        sequence: Some(state.replay.tail.next_seq.saturating_sub(1)),
                        previous: state.previous().is_some(),
                        ..Facts::default()
                    },
                },
                Err(e) => error(e),
            }
        }
        _ => match document::read(dir, target) {
            Ok(Some(_)) => Status::Ok {
                detail: "replace".to_string(),
                torn: None,
                facts: Facts {
                    previous: has_previous(dir, &target.name, Protocol::Replace),
                    kept: fsatomic::history::keeps_previous(dir, &target.name).unwrap_or(false),
                    tentative: fsatomic::history::pending(dir, &target.name).unwrap_or(false),
                    until: fsatomic::history::deadline(dir, &target.name).unwrap_or(None),
                    ..Facts::default()
                },
            },
            Ok(None) => Status::Absent(None),
            Err(e) => error(e),
        },
    }
}

/// Whether the core finds a previous version of `target` (Replace, Slots).
fn has_previous(dir: &mut LinuxDir, name: &str, protocol: Protocol) -> bool {
    let hint = stored::layout_size(dir, name);
    document::read_sized(dir, hint, |dir, buf| {
        fsatomic::protocol::read_previous(dir, name, buf, protocol)
    })
    .is_ok_and(|p| p.is_some())
}

/// `journal, N records after the snapshot at seq S` and what else there is
/// to say (a torn tail).
fn journal_detail(state: &stored::JournalState, jname: &str) -> String {
    let n = state.replay.records;
    let records = format!("{n} record{}", plural(n as usize));
    let mut detail = match &state.snapshot {
        Some((seq, _)) => format!("journal, {records} after the snapshot at seq {seq}"),
        None => format!("journal, {records}, no snapshot yet"),
    };
    if let Some(at) = state.replay.torn_at {
        detail.push_str(&format!(
            "; a torn record at byte {at} of {jname} is ignored: an append cut short, never acknowledged"
        ));
    }
    detail
}

/// `slots, generation G`, and a word on a slot that holds a torn commit;
/// and the facts of the receipt (the previous version is the other slot,
/// when it holds a valid document).
fn slots_detail(dir: &mut LinuxDir, name: &str) -> (String, Facts) {
    let Ok(infos) = stored::slot_infos(dir, name) else {
        return ("slots".to_string(), Facts::default());
    };
    let valid = stored::valid_slots(&infos);
    let generation = valid.clone().reduce(stored::newer).map(|(g, _)| g);
    let facts = Facts {
        generation,
        previous: valid.count() == 2 && has_previous(dir, name, Protocol::Slots),
        ..Facts::default()
    };
    let mut detail = match generation {
        Some(g) => format!("slots, generation {g}"),
        None => "slots".to_string(),
    };
    for (info, file) in infos.iter().zip(stored::slot_names(name)) {
        if let Some(SlotStatus::Invalid { offset, .. }) = info.map(|i| i.status) {
            detail.push_str(&format!(
                "; {file} does not hold a document (bad at byte {offset}): a commit cut short, or damage to the medium (if damage, a newer document than this generation may be lost); the next commit overwrites it"
            ));
        }
    }
    (detail, facts)
}

impl Facts {
    /// The receipt's facts in words, for the human line of a state: the
    /// flushes of a commit and where the previous version is.
    fn words(&self, protocol: Option<Protocol>, flushes: u32) -> String {
        let previous = match (protocol, self.previous) {
            (Some(Protocol::Slots), true) => "the previous version is in the other slot",
            (Some(Protocol::Slots), false) => "no previous version yet",
            (Some(Protocol::Journal), true) => {
                "the previous version is the state before the last append"
            }
            (Some(Protocol::Journal), false) => "no previous version since the last compaction",
            (_, true) if self.tentative => "the previous version is the confirmed one",
            (_, true) => "the previous version is kept",
            (_, false) if self.kept => "the previous version is kept, none yet",
            (_, false) => "the previous version is not kept",
        };
        let per = if protocol == Some(Protocol::Journal) {
            "append"
        } else {
            "commit"
        };
        let mut words = format!(
            "{flushes} flush{} per {per}; {previous}",
            if flushes == 1 { "" } else { "es" }
        );
        match (self.tentative, self.until) {
            (true, None) => words.push_str(
                "; a tentative version is current and waits for `fsatomic confirm` (the next `check --repair` rolls it back)",
            ),
            (true, Some(until)) => words.push_str(&format!(
                "; a tentative version is current and waits for `fsatomic confirm` until {until} (`check --repair --now T` rolls it back from then on, or without --now)"
            )),
            _ => {}
        }
        words
    }

    /// Flush barriers per commit: the protocol's, and for a Replace state
    /// that keeps its previous version on a filesystem whose name changes
    /// may land out of order, two directory flushes more.
    fn flushes(&self, protocol: Option<Protocol>, ordered_names: bool) -> u32 {
        match protocol {
            Some(p @ (Protocol::Slots | Protocol::Journal)) => p.flushes_per_commit(),
            _ if self.kept && !ordered_names => 4,
            _ => 2,
        }
    }
}

/// What the durability receipt says of a readable state beyond its
/// protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Facts {
    /// Slots: the current generation.
    generation: Option<u64>,
    /// Journal: the sequence number of the last record.
    sequence: Option<u64>,
    /// Whether the files still hold the version before the current one
    /// (Slots: the other slot is valid and holds an earlier commit than
    /// the first; Journal: a record after the snapshot, whose replay
    /// without it gives the previous version).
    previous: bool,
    /// Replace: the state keeps its previous version (`NAME.prev`).
    kept: bool,
    /// Replace: a tentative version is current and waits for its
    /// confirmation.
    tentative: bool,
    /// Replace: the tentative version's deadline, if it has one.
    until: Option<u64>,
}

/// What `check` found for one state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    /// Readable; `detail` names the protocol and what it holds; `torn` is
    /// the offset of a journal's torn tail.
    Ok {
        detail: String,
        torn: Option<u64>,
        facts: Facts,
    },
    /// No committed document (with a word on the files there are).
    Absent(Option<String>),
    /// Damaged; `protocol` names it and the damaged file.
    Corrupt {
        offset: u64,
        reason: String,
        protocol: String,
    },
    /// Unreadable.
    Error(String),
}

/// One state and the temporary files left for it.
#[derive(Debug)]
struct Entry {
    /// The protocol its files say, or why they say two things at once.
    protocol: Result<Protocol, String>,
    /// Its files (document, journal, slots), as listed.
    files: Vec<String>,
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
    torn: usize,
    cut: usize,
    repairs_failed: usize,
}

/// Run `check`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("check");
    }
    let arg = parsed.one_path(&SPEC)?;
    let repair = parsed.flag("--repair");
    let now = parsed.seconds(&SPEC, "--now")?;
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
    let json = parsed.flag("--json");
    let receipt = receipt::of(&shown);
    if !json {
        failure::out(format_args!(
            "filesystem: {} ({}): {}",
            fs.name,
            fs.why(),
            if fs.atomic_replace {
                "renaming over a file is crash-atomic; new states get replace (save, update) or journal (append)"
            } else {
                "renaming over a file is not known to be crash-atomic; new states get slots, and a power cut during a save of a replace file may lose it"
            }
        ))?;
        failure::out(receipt.words())?;
    }

    let states = survey(&mut dir, &shown, only.as_deref())?;
    let mut tally = Tally::default();
    for (state, entry) in &states {
        let target = Target {
            dir: dir_path.clone(),
            shown: shown.clone(),
            name: state.clone(),
        };
        let status = match (name::validate(state), &entry.protocol) {
            (Err(e), _) => Status::Error(format!("not a name fsatomic can use: {e}")),
            (Ok(()), Err(why)) => Status::Error(why.clone()),
            (Ok(()), Ok(protocol)) => inspect(*protocol, &mut dir, &target),
        };
        let path = target.path();
        match &status {
            Status::Ok { torn, .. } => {
                tally.ok += 1;
                tally.torn += usize::from(torn.is_some());
            }
            Status::Absent(_) => tally.absent += 1,
            Status::Corrupt { .. } => tally.corrupt += 1,
            Status::Error(_) => tally.errors += 1,
        }
        let protocol = entry.protocol.as_ref().ok().copied();
        failure::out(match &status {
            _ if json => json_line(&path, state, entry, &status, &dir, &receipt),
            Status::Ok { detail, facts, .. } => {
                let flushes = facts.flushes(protocol, dir.capabilities().ordered_names);
                format!("{path}: ok ({detail}; {})", facts.words(protocol, flushes))
            }
            Status::Absent(Some(detail)) => format!("{path}: absent ({detail})"),
            Status::Absent(None) => format!("{path}: absent"),
            Status::Corrupt {
                offset,
                reason,
                protocol,
            } => format!("{path}: corrupt at byte {offset}: {reason} ({protocol})"),
            Status::Error(message) => format!("{path}: error: {message}"),
        })?;
        for orphan in &entry.orphans {
            tally.orphans += 1;
            if !json {
                failure::out(format_args!(
                    "{}: orphaned temporary file of {state}",
                    in_dir(&shown, orphan)
                ))?;
            }
        }
        if !repair {
            continue;
        }
        let journal =
            entry.protocol == Ok(Protocol::Journal) && matches!(status, Status::Ok { .. });
        // A tentative version to roll back, or a cut commit that keeps the
        // previous version to finish.
        let history = matches!(status, Status::Ok { facts, .. } if facts.tentative || facts.kept);
        if entry.orphans.is_empty() && !journal && !history {
            continue;
        }
        let done = match repair_state(&mut dir, &target, journal, now) {
            Ok(done) => done,
            Err(message) => {
                // The state was counted once, by what it holds; a failed
                // repair is counted apart, never as a second state.
                tally.repairs_failed += 1;
                if !json {
                    failure::out(format_args!("{path}: repair failed: {message}"))?;
                }
                continue;
            }
        };
        tally.removed += done.removed;
        // With --json the receipt was printed above; the repair is done,
        // not narrated (stdout stays one object per line).
        if json {
            continue;
        }
        if !entry.orphans.is_empty() {
            failure::out(format_args!(
                "{path}: removed {} orphaned temporary file{}",
                done.removed,
                plural(done.removed)
            ))?;
        }
        if done.rolled_back {
            failure::out(format_args!(
                "{path}: rolled back the tentative version nobody confirmed; the confirmed version is current again"
            ))?;
        }
        if let Some(at) = done.cut_at {
            tally.cut += 1;
            failure::out(format_args!(
                "{path}: cut the torn record at byte {at} off {}",
                stored::journal_name(state)
            ))?;
        }
        if done.finished_compaction {
            failure::out(format_args!(
                "{path}: finished a compaction that was cut short ({} started anew after the snapshot)",
                stored::journal_name(state)
            ))?;
        }
    }
    if !json {
        summarize(&tally, repair)?;
    }

    if tally.corrupt > 0 {
        Err(Failure::new(
            EXIT_CORRUPT,
            format!(
                "{} corrupt file{} in {}: {}",
                tally.corrupt,
                plural(tally.corrupt),
                shown.display(),
                if tally.corrupt == 1 {
                    CORRUPT_ADVICE
                } else {
                    CORRUPT_ADVICE_MANY
                }
            ),
        ))
    } else if tally.errors + tally.repairs_failed > 0 {
        Err(Failure::new(
            EXIT_FAILURE,
            format!(
                "{} state{} in {} could not be checked or repaired (see above)",
                tally.errors + tally.repairs_failed,
                plural(tally.errors + tally.repairs_failed),
                shown.display()
            ),
        ))
    } else {
        Ok(())
    }
}

/// The durability receipt of one state, as one JSON object on one line
/// (the fields are documented in `docs/cli.md`, "check --json").
fn json_line(
    path: &str,
    state: &str,
    entry: &Entry,
    status: &Status,
    dir: &LinuxDir,
    r: &receipt::Receipt,
) -> String {
    use receipt::{opt_string, string};
    let fs = dir.filesystem();
    let num = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    let none = Facts::default();
    let (word, facts, torn, corrupt, error) = match status {
        Status::Ok { facts, torn, .. } => ("ok", *facts, *torn, None, None),
        Status::Absent(_) => ("absent", none, None, None, None),
        Status::Corrupt {
            offset,
            reason,
            protocol,
        } => {
            let corrupt = format!(
                "{{\"offset\":{offset},\"reason\":{},\"where\":{}}}",
                string(reason),
                string(protocol)
            );
            ("corrupt", none, None, Some(corrupt), None)
        }
        Status::Error(message) => ("error", none, None, None, Some(message.as_str())),
    };
    let protocol = entry.protocol.as_ref().ok().copied();
    let why = match (&entry.protocol, entry.files.is_empty()) {
        (Err(why), _) => why.clone(),
        (Ok(_), false) => format!("its files: {}", entry.files.join(", ")),
        (Ok(_), true) => format!(
            "no files yet; a new state on {} gets {} ({})",
            fs.name,
            if fs.atomic_replace {
                "replace (save, update) or journal (append)"
            } else {
                "slots"
            },
            fs.why()
        ),
    };
    let flushes = facts.flushes(protocol, dir.capabilities().ordered_names);
    let orphans: Vec<String> = entry.orphans.iter().map(|o| string(o)).collect();
    format!(
        "{{\"path\":{},\"state\":{},\"status\":{},\"protocol\":{},\"protocol_why\":{},\"filesystem\":{},\"atomic_rename\":{},{},\"flushes_per_commit\":{flushes},\"generation\":{},\"sequence\":{},\"previous_version\":{},\"previous_kept\":{},\"tentative_pending\":{},\"tentative_until\":{},\"torn_tail_at\":{},\"orphans\":[{}],\"corrupt\":{},\"error\":{}}}",
        string(path),
        string(state),
        string(word),
        opt_string(protocol.map(Protocol::as_str)),
        string(&why),
        string(fs.name),
        fs.atomic_replace,
        receipt::json_fields(r),
        num(facts.generation),
        num(facts.sequence),
        facts.previous,
        facts.previous || facts.kept || protocol.is_some_and(|p| p != Protocol::Replace),
        facts.tentative,
        num(facts.until),
        num(torn),
        orphans.join(","),
        corrupt.as_deref().unwrap_or("null"),
        opt_string(error),
    )
}

/// The states in the directory (or only `only`), each with its protocol
/// and its orphans, sorted by name.
fn survey(
    dir: &mut LinuxDir,
    shown: &Path,
    only: Option<&str>,
) -> Result<BTreeMap<String, Entry>, Failure> {
    let mut entries = BTreeSet::new();
    dir.for_each_entry(&mut |entry| {
        entries.insert(entry.to_string());
        ControlFlow::Continue(())
    })
    .map_err(|e| Failure::error(format!("listing directory {} failed: {e}", shown.display())))?;
    let mut states: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    if let Some(only) = only {
        states.insert(only.to_string(), Default::default());
    }
    // The core's protocol model says whose each entry is; `check` shows
    // the states named `*.json` (a directory also holds other files) and
    // every orphan.
    let mut files: BTreeMap<String, layout::Files> = BTreeMap::new();
    for entry in &entries {
        let Some((state, role)) = layout::owner(entry) else {
            continue;
        };
        files.entry(state.to_string()).or_default().note(role);
        if only.is_some_and(|o| o != state) {
            continue;
        }
        let orphan = matches!(role, Role::Temp { .. });
        if orphan || (role != Role::Lock && (state.ends_with(".json") || only.is_some())) {
            let (names, orphans) = states.entry(state.to_string()).or_default();
            if orphan { orphans } else { names }.push(entry.clone());
        }
    }
    Ok(states
        .into_iter()
        .map(|(state, (names, orphans))| {
            let on_disk = files.get(&state).copied().unwrap_or_default();
            let protocol =
                stored::form(&on_disk, &state).map(|form| form.unwrap_or(Protocol::Replace));
            (
                state,
                Entry {
                    protocol,
                    files: names,
                    orphans,
                },
            )
        })
        .collect())
}

/// What a repair did.
#[derive(Debug, Default)]
struct Repaired {
    removed: usize,
    rolled_back: bool,
    cut_at: Option<u64>,
    finished_compaction: bool,
}

/// Under the writers' lock of the state: the core's boot-time recovery
/// (sweep its orphaned temporary files, a journal's too; finish a commit
/// that keeps the previous version; roll back a tentative version) and,
/// for a journal, recover it (cut a torn tail, finish an interrupted
/// compaction).
fn repair_state(
    dir: &mut LinuxDir,
    target: &Target,
    journal: bool,
    now: Option<u64>,
) -> Result<Repaired, String> {
    let shown = &target.shown;
    let state = target.name.as_str();
    let _guard = lock::lock(dir, state, Mode::PRIVATE)
        .map_err(|e| failure::lock(shown, &e).message.unwrap_or_default())?;
    let mut done = Repaired::default();
    let jname = stored::journal_name(state);
    let recovered = recover::recover_locked(dir, state, now).map_err(|e| {
        failure::recover(shown, &e)
            .message
            .unwrap_or_else(|| e.to_string())
    })?;
    done.removed += recovered.orphans;
    done.rolled_back = recovered.rolled_back;
    if journal {
        // Files the recovery replaces (an unfinished compaction's journal)
        // keep the journal's mode.
        let mode = rustix::fs::statat(&*dir, jname.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .and_then(|st| Mode::new(st.st_mode & 0o7777))
            .unwrap_or(Mode::PRIVATE);
        let j = Journal::new(state, mode).map_err(|e| e.to_string())?;
        let before = stored::read_journal(dir, target, &j, false)
            .map_err(|e| e.failure(target).message.unwrap_or_default())?;
        let after = stored::read_journal(dir, target, &j, true)
            .map_err(|e| e.failure(target).message.unwrap_or_default())?;
        done.cut_at = after.replay.torn_at;
        done.finished_compaction = after.replay.tail.epoch != before.replay.tail.epoch;
    }
    Ok(done)
}

fn summarize(t: &Tally, repair: bool) -> Result<(), Failure> {
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
    if t.repairs_failed > 0 {
        line.push_str(&format!(
            "; {} repair{} failed",
            t.repairs_failed,
            plural(t.repairs_failed)
        ));
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
    if t.torn > 0 {
        line.push_str(&format!(
            "; {} torn journal record{}",
            t.torn,
            plural(t.torn)
        ));
        if repair {
            line.push_str(&format!(", {} cut", t.cut));
        } else {
            line.push_str(if t.torn == 1 {
                " (check --repair cuts it)"
            } else {
                " (check --repair cuts them)"
            });
        }
    }
    failure::out(line)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
