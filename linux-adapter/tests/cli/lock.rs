//! `lock`: critical sections never overlap; the command's status is ours.

use crate::support::{BIN, Scratch, assert_code, assert_fails, fsatomic};

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
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let (path, section) = (path.clone(), section.clone());
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let status = fsatomic_testkit::runner::command(BIN)
                        .args(["lock", &path, "--", "sh", "-c", &section])
                        .status()
                        .unwrap();
                    assert!(status.success());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
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

#[test]
fn exits_with_the_command_status() {
    let dir = Scratch::new("lockstatus");
    let path = dir.file("f.json");
    assert_code(&fsatomic(["lock", &path, "--", "true"], b""), 0);
    let out = fsatomic(
        [
            "lock",
            &path,
            "--",
            "sh",
            "-c",
            "echo hi; echo oops >&2; exit 9",
        ],
        b"",
    );
    assert_code(&out, 9);
    // The command's own output passes through; fsatomic adds nothing.
    assert_eq!(out.text(), "hi\n");
    assert_eq!(out.stderr, "oops\n");
    let out = fsatomic(["lock", &path, "--", "/nonexistent/cmd"], b"");
    assert_fails(&out, 127, &["cannot run"]);
}

#[test]
fn the_command_holds_the_lock_and_may_load_the_file() {
    let dir = Scratch::new("lockload");
    let path = dir.file("f.json");
    assert_code(&fsatomic(["save", &path], b"[1]"), 0);
    // load takes no lock, so it runs inside the critical section. (BIN is
    // a target binary: on the boards it runs through the emulator.)
    let runner: Vec<String> = fsatomic_testkit::runner::runner()
        .into_iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["lock", path.as_str(), "--"];
    args.extend(runner.iter().map(String::as_str));
    args.extend([BIN, "load", path.as_str()]);
    let out = fsatomic(args, b"");
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"[\n  1\n]\n");
    // The command inherits the lock's descriptor, as with flock(1).
    let out = fsatomic(
        [
            "lock",
            &path,
            "--",
            "sh",
            "-c",
            "ls -l /proc/$$/fd | grep -c 'f.json.lock'",
        ],
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(out.text(), "1\n");
}

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
