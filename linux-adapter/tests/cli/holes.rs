//! Holes found in review, one test each: an input or a state that a later
//! change must not reopen.

use crate::support::{Scratch, assert_fails, assert_has, assert_lacks, fails, fsatomic, ok};

/// Valid JSON, `levels` arrays deep: `[[[ ... [0] ... ]]]`.
fn nested(levels: usize) -> Vec<u8> {
    let mut doc = vec![b'['; levels];
    doc.push(b'0');
    doc.extend(std::iter::repeat_n(b']', levels));
    doc
}

/// JSON deeper than 128 levels is unsupported, not corrupt, for every command.
#[test]
fn json_nested_deeper_than_supported_is_not_reported_corrupt() {
    let dir = Scratch::new("deep");
    let path = dir.file("deep.json");
    let deep = nested(129);
    // Written by another tool.
    dir.write("deep.json", &deep);
    let out = fsatomic(["load", &path], b"");
    assert_fails(
        &out,
        1,
        &[
            &path,
            "JSON nested deeper than 128 levels, which fsatomic does not support",
            "from byte 128",
        ],
    );
    assert_lacks(&out.stderr, "corrupt at");
    assert_eq!(dir.read("deep.json"), deep, "left untouched");

    // `update` refuses it the same way, before running its command.
    let too_deep = "nested deeper than 128 levels";
    fails(["update", &path, "--", "false"], b"", 1, &[too_deep]);

    // `save` refuses such input plainly, not as "invalid JSON".
    let other = dir.file("other.json");
    let out = fsatomic(["save", &other], &deep);
    assert_fails(
        &out,
        1,
        &[
            "stdin is refused",
            "nested deeper than 128 levels, which fsatomic does not support",
        ],
    );
    assert_lacks(&out.stderr, "not valid JSON");

    // 128 levels is fine.
    ok(["save", &other], &nested(128));
}

/// A leading zero is named as such, at its byte.
#[test]
fn a_leading_zero_is_reported_as_one() {
    let dir = Scratch::new("zero");
    let out = fsatomic(["save", &dir.file("n.json")], b"[1, 01]");
    assert_fails(&out, 1, &["at byte 4", "leading zero"]);
}

/// `--mkdir` through a symbolic link makes directories in its target only.
#[test]
fn mkdir_follows_a_symbolic_link_to_a_directory_as_a_plain_save_does() {
    let dir = Scratch::new("mkdir-link");
    std::fs::create_dir(dir.join("run")).unwrap();
    // `/var/run` -> `/run`.
    std::os::unix::fs::symlink(dir.join("run"), dir.join("link")).unwrap();
    let plain = dir.file("link/plain.json");
    ok(["save", &plain], b"1");
    let made = dir.file("link/x.json");
    let out = ok(["save", &made, "--mkdir"], b"2");
    assert!(out.stderr.is_empty(), "nothing was created: {}", out.stderr);
    assert_eq!(dir.read("run/x.json"), b"2\n");
    // Through the link, a missing directory is made in its target.
    let deeper = dir.file("link/nos/state/y.json");
    let out = ok(["save", &deeper, "--mkdir"], b"3");
    assert_eq!(dir.read("run/nos/state/y.json"), b"3\n");
    assert_has(&out.stderr, "created directory");
    // A dangling link is not made into a directory.
    std::os::unix::fs::symlink(dir.join("gone"), dir.join("dangling")).unwrap();
    let out = fsatomic(["save", &dir.file("dangling/z.json"), "--mkdir"], b"4");
    assert_fails(&out, 1, &["cannot create directory"]);
    assert!(!dir.join("gone").exists());
}

/// Run `fsatomic ARGS...` with `stdin` and its stderr closed (`2>&-`),
/// through `sh`.
fn with_stderr_closed(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    // Through the target's runner (qemu-user on the ARM boards), if any.
    let mut child = Command::new("sh")
        .args(["-c", r#"exec "$@" 2>&-"#, "sh"])
        .args(fsatomic_testkit::runner::runner())
        .arg(crate::support::BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// With stderr closed, save and an append conversion still commit.
#[test]
fn a_closed_stderr_neither_panics_nor_stops_a_commit() {
    let dir = Scratch::new("stderr-closed");
    // --mkdir makes a directory and says so on the closed stderr.
    let made = dir.file("made/deeper/x.json");
    let out = with_stderr_closed(&["save", &made, "--mkdir"], b"[1]");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(dir.read("made/deeper/x.json"), b"[\n  1\n]\n");
    // Nothing fsatomic meant for stderr landed in a file or directory that
    // took its descriptor number.
    let mut names: Vec<_> = std::fs::read_dir(dir.join("made/deeper"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["x.json", "x.json.lock"]);
    assert!(dir.read("made/deeper/x.json.lock").is_empty());
    // A failure with stderr closed keeps its exit code.
    let out = with_stderr_closed(&["save", &dir.file("made/y.json"), "--mkdir"], b"{");
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // The conversion commits, then notes it on stderr: with stderr closed,
    // the directory opened first had taken descriptor 2.
    dir.write("events.json", b"[1]");
    let out = with_stderr_closed(&["append", &dir.file("events.json")], b"2");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let load = ok(["load", &dir.file("events.json")], b"");
    assert_eq!(load.text(), "[\n  1,\n  2\n]\n");
}

/// With stderr a broken pipe (EPIPE), a save still commits.
#[test]
fn a_broken_stderr_neither_panics_nor_stops_a_commit() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = Scratch::new("stderr-broken");
    let path = dir.file("made/x.json");
    let mut child = fsatomic_testkit::runner::command(crate::support::BIN)
        .args(["save", &path, "--mkdir"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads stderr: a write to it fails with EPIPE. The command
    // reads all of stdin before it makes the directory and says so.
    drop(child.stderr.take());
    child.stdin.take().unwrap().write_all(b"7").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(dir.read("made/x.json"), b"7\n");
}

/// A journal record too deep to read is unsupported, not corrupt.
#[test]
fn a_journal_record_nested_deeper_than_supported_is_not_reported_corrupt() {
    let dir = Scratch::new("deep-record");
    let path = dir.file("events.json");
    ok(["append", &path], b"1");
    // Another tool appends a record nested deeper than fsatomic reads.
    let mut d = fsatomic_linux::LinuxDir::open(dir.path()).unwrap();
    let j = fsatomic::journal::Journal::new("events.json", fsatomic::Mode::PRIVATE).unwrap();
    let mut buf = [0u8; 4096];
    let mut tail = j
        .recover(&mut d, &mut buf, &mut |_, _| Ok(()))
        .unwrap()
        .tail;
    let deep = nested(200);
    j.append(&mut d, &mut tail, &[&deep]).unwrap();
    fails(["load", &path], b"", 1, &["nested deeper than 128 levels"]);
    assert_lacks(&fsatomic(["check", &path], b"").text(), "corrupt at");
}
