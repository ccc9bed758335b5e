//! `update`: read-modify-write through a command, under the lock.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{BIN, Background, Scratch, assert_code, assert_fails, fsatomic};

const INCREMENT: &str = "read n; echo $((n+1))";

#[test]
fn eight_processes_times_200_increments_end_at_exactly_1600() {
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 200;
    let dir = Scratch::new("counter");
    let path = dir.file("counter.json");
    let started = Instant::now();
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let status = fsatomic_testkit::runner::command(BIN)
                        .args(["update", &path, "--init", "0", "--", "sh", "-c", INCREMENT])
                        .stdin(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(status.success(), "round {round}: {status}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    eprintln!(
        "note: {} concurrent updates took {:.1?}",
        PROCESSES * ROUNDS,
        started.elapsed()
    );
    let out = fsatomic(["load", &path], b"");
    assert_code(&out, 0);
    assert_eq!(out.text(), format!("{}\n", PROCESSES * ROUNDS));
    assert_eq!(dir.entries(), ["counter.json", "counter.json.lock"]);
}

#[test]
fn the_command_sees_the_current_document_or_init_and_its_output_is_indented() {
    let dir = Scratch::new("feed");
    let path = dir.file("doc.json");
    let seen = dir.file("seen");
    let record = format!("cat > '{seen}'; echo '{{\"n\":[1,2]}}'");
    // Absent, no --init: the command sees null.
    let out = fsatomic(["update", &path, "--", "sh", "-c", &record], b"");
    assert_code(&out, 0);
    assert_eq!(dir.read("seen"), b"null\n");
    assert_eq!(
        dir.read("doc.json"),
        b"{\n  \"n\": [\n    1,\n    2\n  ]\n}\n"
    );
    assert_eq!(dir.mode("doc.json"), 0o600);
    // Present: the command sees the document as on disk; --mode applies.
    let out = fsatomic(
        [
            "update", &path, "--mode", "0644", "--init", "7", "--", "sh", "-c", &record,
        ],
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(dir.read("seen"), b"{\n  \"n\": [\n    1,\n    2\n  ]\n}\n");
    assert_eq!(dir.mode("doc.json"), 0o644);
    // Absent with --init: the command sees it, indented.
    let other = dir.file("other.json");
    let out = fsatomic(
        [
            "update",
            &other,
            "--init",
            "{\"a\":[]}",
            "--",
            "sh",
            "-c",
            &record,
        ],
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(dir.read("seen"), b"{\n  \"a\": []\n}\n");
}

#[test]
fn a_failing_command_fails_the_update_with_its_own_status_and_changes_nothing() {
    let dir = Scratch::new("cmdfail");
    let path = dir.file("c.json");
    assert_code(&fsatomic(["save", &path], b"41"), 0);
    let out = fsatomic(["update", &path, "--", "sh", "-c", "echo 42; exit 7"], b"");
    assert_fails(&out, 7, &[&path, "left untouched"]);
    assert_eq!(dir.read("c.json"), b"41\n");
    // Killed by a signal: 128 + the signal, as shells report it.
    let out = fsatomic(["update", &path, "--", "sh", "-c", "kill -TERM $$"], b"");
    assert_code(&out, 128 + 15);
    // Not found: 127, as shells report it.
    let out = fsatomic(["update", &path, "--", "/nonexistent/cmd"], b"");
    assert_fails(&out, 127, &["cannot run /nonexistent/cmd"]);
    assert_eq!(dir.read("c.json"), b"41\n");
    assert_eq!(dir.entries(), ["c.json", "c.json.lock"]);
}

#[test]
fn output_that_is_not_json_fails_with_exit_1_and_the_offset() {
    let dir = Scratch::new("cmdgarbage");
    let path = dir.file("c.json");
    assert_code(&fsatomic(["save", &path], b"{\"a\": 1}"), 0);
    let before = dir.read("c.json");
    let out = fsatomic(["update", &path, "--", "echo", "{\"a\": 2,}"], b"");
    assert_fails(
        &out,
        1,
        &["not valid JSON at byte 8", &path, "left untouched"],
    );
    let out = fsatomic(["update", &path, "--", "true"], b"");
    assert_fails(&out, 1, &["is empty", &path]);
    assert_eq!(dir.read("c.json"), before);
}

#[test]
fn a_corrupt_file_fails_with_exit_4_before_the_command_runs() {
    let dir = Scratch::new("updcorrupt");
    let path = dir.file("c.json");
    let marker = dir.file("ran");
    for content in [&b""[..], b"{\"a\":", b"garbage"] {
        dir.write("c.json", content);
        let out = fsatomic(
            [
                "update",
                &path,
                "--init",
                "0",
                "--",
                "sh",
                "-c",
                &format!("touch '{marker}'; echo 1"),
            ],
            b"",
        );
        assert_fails(&out, 4, &[&path, "corrupt at byte", "left untouched"]);
        assert!(!dir.join("ran").exists(), "the command ran");
        assert_eq!(dir.read("c.json"), content);
    }
}

#[test]
fn update_and_lock_exclude_each_other() {
    let dir = Scratch::new("updlock");
    let path = dir.file("c.json");
    let log = dir.file("log");
    let go = dir.file("go");
    // The holder waits for `go`, or for the test to be gone.
    let holder = Background::spawn(
        fsatomic_testkit::runner::command(BIN)
            .args(["lock", &path, "--", "sh", "-c"])
            .arg(format!(
                "echo in >> '{log}'; while [ ! -e '{go}' ] && [ -e '{log}' ]; do sleep 0.01; done; echo out >> '{log}'"
            ))
            .stdout(Stdio::null()),
    );
    wait_for(|| std::fs::read_to_string(&log).is_ok_and(|t| t.contains("in")));
    let mut updater = Background::spawn(
        fsatomic_testkit::runner::command(BIN)
            .args(["update", &path, "--init", "0", "--", "sh", "-c"])
            .arg(format!("echo update >> '{log}'; {INCREMENT}")),
    );
    // Give the updater every chance to get in; it must not.
    std::thread::sleep(Duration::from_millis(300));
    assert!(updater.running(), "update did not wait for the lock");
    std::fs::write(&go, b"").unwrap();
    assert!(holder.wait());
    assert!(updater.wait());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "in\nout\nupdate\n");
    assert_eq!(dir.read("c.json"), b"1\n");
}

/// Wait until `ready` holds (an event, not a duration: the bound only
/// stops a broken test from hanging).
pub fn wait_for(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}
