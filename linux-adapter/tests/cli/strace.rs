//! The flush barriers of one commit, as the kernel sees them: exactly two
//! (the temporary file before the rename, the directory after it).
//!
//! Needs `strace`; without it (or without permission to trace) the tests
//! print a note and check nothing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{BIN, Scratch, assert_has, assert_lacks, ok};

/// `strace OPTIONS... fsatomic ARGS...` with `stdin` (through the runner),
/// its stderr and the path of its trace, or `None` if strace is not
/// installed or cannot start (`what` names the check skipped).
fn strace(options: &[&str], args: &[&str], stdin: &[u8], what: &str) -> Option<Output> {
    if !Path::new("/usr/bin/strace").exists() && !Path::new("/bin/strace").exists() {
        eprintln!("note: strace is not installed; the {what} check was skipped");
        return None;
    }
    let mut child = Command::new("strace")
        .args(options)
        .args(fsatomic_testkit::runner::runner())
        .arg(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    Some(child.wait_with_output().unwrap())
}

/// The flush and rename calls of `fsatomic ARGS` with `stdin`, one line
/// each as `strace -y` prints them (descriptors with their paths), or
/// `None` if strace cannot run here; and the exit code of the traced run.
fn traced(dir: &Scratch, args: &[&str], stdin: &[u8]) -> Option<(Option<i32>, Vec<String>)> {
    let trace = dir.file("trace.txt");
    let calls = "trace=fsync,fdatasync,sync_file_range,syncfs,rename,renameat,renameat2";
    let options = ["-f", "-y", "-qq", "-e", calls, "-o", &trace];
    let out = strace(&options, args, stdin, "flush-count")?;
    let Ok(text) = std::fs::read_to_string(&trace) else {
        eprintln!(
            "note: strace could not trace here ({}); the flush-count check was skipped",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    };
    std::fs::remove_file(&trace).unwrap();
    let calls = text
        .lines()
        .filter(|l| !l.contains("+++") && !l.contains("---"))
        .map(str::to_string)
        .collect();
    Some((out.status.code(), calls))
}

/// Whether a traced call is a flush.
fn is_flush(line: &str) -> bool {
    ["fsync(", "fdatasync(", "sync_file_range(", "syncfs("]
        .iter()
        .any(|c| line.contains(c))
}

/// Assert the calls are: flush the temporary file, rename it over `name`,
/// flush the directory — and nothing else.
#[track_caller]
fn assert_two_barriers(calls: &[String], dir: &Path, name: &str) {
    let flushes: Vec<&String> = calls.iter().filter(|l| is_flush(l)).collect();
    assert_eq!(flushes.len(), 2, "flush calls: {calls:#?}");
    assert_eq!(calls.len(), 3, "calls: {calls:#?}");
    let temp_prefix = format!("{}/.{name}.", dir.display());
    assert!(
        is_flush(&calls[0]) && calls[0].contains(&temp_prefix) && calls[0].contains(".tmp>"),
        "first call is not the temporary file's flush: {calls:#?}"
    );
    assert!(
        calls[1].contains("rename") && calls[1].contains(&format!("\"{name}\"")),
        "second call is not the rename onto {name}: {calls:#?}"
    );
    assert!(
        is_flush(&calls[2]) && calls[2].contains(&format!("<{}>", dir.display())),
        "third call is not the directory's flush: {calls:#?}"
    );
}

/// A save, new or replacing, is two flushes: file, rename, directory.
#[test]
fn one_save_is_two_flushes_file_before_rename_directory_after() {
    let dir = Scratch::new("strace-save");
    let path = dir.file("users.json");
    // Once to create, once to replace: both are two barriers.
    for input in [&b"{\"users\":[]}"[..], b"{\"users\":[\"root\"]}"] {
        let Some((code, calls)) = traced(&dir, &["save", &path], input) else {
            return;
        };
        assert_eq!(code, Some(0));
        assert_two_barriers(&calls, dir.path(), "users.json");
    }
    let out = ok(["load", &path], b"");
    assert_eq!(out.stdout, b"{\n  \"users\": [\n    \"root\"\n  ]\n}\n");
}

/// An update is two flushes too; a refused one flushes and renames nothing.
#[test]
fn one_update_is_two_flushes_too_and_a_refused_one_is_none() {
    let dir = Scratch::new("strace-update");
    let path = dir.file("n.json");
    let increment = "read n; echo $((n+1))";
    let update = ["update", &path, "--init", "0", "--", "sh", "-c", increment];
    let Some((code, calls)) = traced(&dir, &update, b"") else {
        return;
    };
    assert_eq!(code, Some(0));
    assert_two_barriers(&calls, dir.path(), "n.json");
    // Refused output: not a single flush or rename.
    let Some((code, calls)) = traced(&dir, &["update", &path, "--", "echo", "{oops"], b"") else {
        return;
    };
    assert_eq!(code, Some(1));
    assert_eq!(calls, Vec::<String>::new());
}

/// An append is one `fdatasync` of the journal, and nothing else.
#[test]
fn one_append_is_one_flush_of_the_journal_and_nothing_else() {
    let dir = Scratch::new("strace-append");
    let path = dir.file("hits.json");
    // The first append creates the journal (with Replace) and appends.
    ok(["append", &path], b"1");
    for value in [&b"2"[..], b"{\"ip\": \"10.0.0.7\"}"] {
        let Some((code, calls)) = traced(&dir, &["append", &path], value) else {
            return;
        };
        assert_eq!(code, Some(0));
        let journal = format!("<{}>", dir.join("hits.json.journal").display());
        assert_eq!(calls.len(), 1, "calls: {calls:#?}");
        assert!(
            calls[0].contains("fdatasync(") && calls[0].contains(&journal),
            "not the journal's fdatasync: {calls:#?}"
        );
    }
}

/// A slots save is one `fdatasync` of a slot, and no rename.
#[test]
fn one_slots_save_is_one_flush_of_a_slot_and_no_rename() {
    let dir = Scratch::new("strace-slots");
    let path = dir.file("cfg.json");
    // The first save formats both slot files; later ones write one slot.
    ok(["save", &path, "--protocol", "slots"], b"1");
    for value in [&b"2"[..], b"3"] {
        let Some((code, calls)) = traced(&dir, &["save", &path], value) else {
            return;
        };
        assert_eq!(code, Some(0));
        assert_eq!(calls.len(), 1, "calls: {calls:#?}");
        assert!(
            calls[0].contains("fdatasync(") && calls[0].contains("/cfg.json."),
            "not a slot's fdatasync: {calls:#?}"
        );
    }
}

/// `fsatomic save DIR/s.json` of `{}` with the syscall fault `inject`
/// (strace's `-e inject=` syntax): the exit code and stderr, or `None` if
/// strace cannot run here.
fn save_with_fault(dir: &Scratch, inject: &str) -> Option<(Option<i32>, String)> {
    let options = ["-f", "-qq", "-o", "/dev/null", "-e", inject];
    let path = dir.file("s.json");
    let out = strace(&options, &["save", &path], b"{}", "fault-injection")?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("PTRACE") || stderr.contains("ptrace") {
        eprintln!("note: strace could not trace here ({stderr}); the check was skipped");
        return None;
    }
    Some((out.status.code(), stderr))
}

/// A failed listing (injected EIO) is named, with no orphan advice.
#[test]
fn a_failed_listing_does_not_advise_removing_an_orphan() {
    let dir = Scratch::new("list-eio");
    let Some((code, stderr)) = save_with_fault(&dir, "inject=getdents64:error=EIO") else {
        return;
    };
    assert_eq!(code, Some(1), "{stderr}");
    assert_has(&stderr, "can be listed");
    assert_lacks(&stderr, "by hand");
    assert!(!dir.join("s.json").exists());
}

/// A failed `fchmod` (injected EPERM) says so and leaves no temporary file.
#[test]
fn a_failed_fchmod_says_so_and_leaves_nothing() {
    let dir = Scratch::new("fchmod-eperm");
    // The first `fchmod` is the lock file's: fail the second.
    let Some((code, stderr)) = save_with_fault(&dir, "inject=fchmod:error=EPERM:when=2") else {
        return;
    };
    assert_eq!(code, Some(1), "{stderr}");
    assert_has(&stderr, "setting its mode to 0600 with fchmod failed");
    let left: Vec<String> = dir
        .entries()
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
