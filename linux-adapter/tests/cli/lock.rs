//! `lock`: critical sections never overlap; the command's status is ours.

use crate::support::{
    BIN, Background, Scratch, assert_code, assert_fails, fsatomic, in_parallel, ok, wait_for,
};

/// 4 processes × 10 locked sections: no section starts inside another.
#[test]
fn critical_sections_never_overlap() {
    const PROCESSES: usize = 4;
    const ROUNDS: usize = 10;
    let dir = Scratch::new("overlap");
    let path = dir.file("shares.json");
    let log = dir.file("log");
    // Each section logs its entry and exit, and dawdles in between so that
    // an unlocked section would be caught inside another.
    let section = format!("echo \"in $$\" >> '{log}'; sleep 0.02; echo \"out $$\" >> '{log}'");
    in_parallel(PROCESSES, ROUNDS, |_, _| {
        let status = fsatomic_testkit::runner::command(BIN)
            .args(["lock", &path, "--", "sh", "-c", &section])
            .status()
            .unwrap();
        assert!(status.success());
    });
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2 * PROCESSES * ROUNDS);
    for pair in lines.chunks(2) {
        let entered = pair[0].strip_prefix("in ").expect(&log);
        let left = pair[1].strip_prefix("out ").expect(&log);
        assert_eq!(entered, left, "sections overlap:\n{log}");
    }
    // The lock file is a sidecar; the state file itself was never made.
    assert_eq!(dir.entries(), ["log", "shares.json.lock"]);
}

/// `lock` exits with its command's status and adds nothing to its output.
#[test]
fn exits_with_the_command_status() {
    let dir = Scratch::new("lockstatus");
    let path = dir.file("f.json");
    ok(["lock", &path, "--", "true"], b"");
    let command = "echo hi; echo oops >&2; exit 9";
    let out = fsatomic(["lock", &path, "--", "sh", "-c", command], b"");
    assert_code(&out, 9);
    // The command's own output passes through; fsatomic adds nothing.
    assert_eq!(out.text(), "hi\n");
    assert_eq!(out.stderr, "oops\n");
    let out = fsatomic(["lock", &path, "--", "/nonexistent/cmd"], b"");
    assert_fails(&out, 127, &["cannot run"]);
}

/// The command inherits the lock's descriptor and may run `load`.
#[test]
fn the_command_holds_the_lock_and_may_load_the_file() {
    let dir = Scratch::new("lockload");
    let path = dir.file("f.json");
    ok(["save", &path], b"[1]");
    // load takes no lock, so it runs inside the critical section. (BIN is
    // a target binary: on the boards it runs through the emulator.)
    let runner: Vec<String> = fsatomic_testkit::runner::runner()
        .into_iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["lock", path.as_str(), "--"];
    args.extend(runner.iter().map(String::as_str));
    args.extend([BIN, "load", path.as_str()]);
    assert_eq!(ok(args, b"").stdout, b"[\n  1\n]\n");
    // The command inherits the lock's descriptor, as with flock(1).
    let count = "ls -l /proc/$$/fd | grep -c 'f.json.lock'";
    let out = ok(["lock", &path, "--", "sh", "-c", count], b"");
    assert_eq!(out.text(), "1\n");
}

/// `lock PATH` and `lock PATH --` without a command are usage errors.
#[test]
fn a_missing_command_is_a_usage_error() {
    let dir = Scratch::new("locknocmd");
    let path = dir.file("f.json");
    for args in [
        vec!["lock", path.as_str()],
        vec!["lock", path.as_str(), "--"],
    ] {
        let out = fsatomic(&args, b"");
        assert_fails(&out, 2, &["missing the command"]);
    }
    assert!(dir.entries().is_empty());
}

/// Against a held lock, `-n`/`--timeout` exit 8 and touch nothing.
#[test]
fn a_held_lock_times_out_with_exit_8() {
    let dir = Scratch::new("locktimeout");
    let path = dir.file("cfg.json");
    ok(["save", &path], b"[1]");
    let before = dir.read("cfg.json");
    let ready = dir.file("held");
    let hold = format!("touch '{ready}'; while [ ! -e '{ready}.release' ]; do sleep 0.02; done");
    let holder = Background::spawn(
        fsatomic_testkit::runner::command(BIN).args(["lock", &path, "--", "sh", "-c", &hold]),
    );
    wait_for(|| dir.join("held").exists());
    let ran = dir.file("ran");
    let cases: [(&[&str], &[u8]); 6] = [
        (&["save", &path, "-n"], b"[2]"),
        (&["save", &path, "--timeout", "0.3"], b"[2]"),
        (
            &["update", &path, "--timeout=0.2", "--", "sh", "-c", "cat"],
            b"",
        ),
        (&["append", &path, "-n"], b"2"),
        (&["lock", &path, "-n", "--", "touch", &ran], b""),
        (&["lock", &path, "--timeout", "0", "--", "touch", &ran], b""),
    ];
    for (args, stdin) in cases {
        let out = fsatomic(args, stdin);
        assert_fails(
            &out,
            8,
            &["held by another writer", "nothing was run or changed"],
        );
    }
    assert!(!dir.join("ran").exists(), "a command ran without the lock");
    assert_eq!(
        dir.read("cfg.json"),
        before,
        "a commit wrote without the lock"
    );
    // Killing fsatomic would not do: the command keeps the lock, as with
    // flock(1). Let it end.
    dir.write("held.release", b"");
    assert!(holder.wait(), "the holder failed");
    ok(["save", &path, "-n"], b"[3]");
    ok(["lock", &path, "--timeout", "5", "--", "true"], b"");
    for bad in [
        &["save", &path, "--timeout", "soon"][..],
        &["save", &path, "--timeout", "-1"],
        &["save", &path, "--timeout", "1", "-n"],
    ] {
        assert_code(&fsatomic(bad, b"{}"), 2);
    }
    assert!(String::from_utf8_lossy(&dir.read("cfg.json")).contains('3'));
}
