//! `update`: read-modify-write through a command, under the lock.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{
    BIN, Background, Scratch, assert_code, fails, fsatomic, in_parallel, ok, wait_for,
};

const INCREMENT: &str = "read n; echo $((n+1))";

/// 1,600 concurrent increments from 8 processes end at exactly 1600.
#[test]
fn eight_processes_times_200_increments_end_at_exactly_1600() {
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 200;
    let dir = Scratch::new("counter");
    let path = dir.file("counter.json");
    let started = Instant::now();
    in_parallel(PROCESSES, ROUNDS, |_, round| {
        let status = fsatomic_testkit::runner::command(BIN)
            .args(["update", &path, "--init", "0", "--", "sh", "-c", INCREMENT])
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "round {round}: {status}");
    });
    eprintln!(
        "note: {} concurrent updates took {:.1?}",
        PROCESSES * ROUNDS,
        started.elapsed()
    );
    let out = ok(["load", &path], b"");
    assert_eq!(out.text(), format!("{}\n", PROCESSES * ROUNDS));
    assert_eq!(dir.entries(), ["counter.json", "counter.json.lock"]);
}

/// The command reads the document, `--init` or null; its output is indented.
#[test]
fn the_command_sees_the_current_document_or_init_and_its_output_is_indented() {
    let dir = Scratch::new("feed");
    let path = dir.file("doc.json");
    let seen = dir.file("seen");
    let record = format!("cat > '{seen}'; echo '{{\"n\":[1,2]}}'");
    // Absent, no --init: the command sees null.
    ok(["update", &path, "--", "sh", "-c", &record], b"");
    assert_eq!(dir.read("seen"), b"null\n");
    let indented = b"{\n  \"n\": [\n    1,\n    2\n  ]\n}\n";
    assert_eq!(dir.read("doc.json"), indented);
    assert_eq!(dir.mode("doc.json"), 0o600);
    // Present: the command sees the document as on disk; --mode applies.
    let update = [
        "update", &path, "--mode", "0644", "--init", "7", "--", "sh", "-c", &record,
    ];
    ok(update, b"");
    assert_eq!(dir.read("seen"), indented);
    assert_eq!(dir.mode("doc.json"), 0o644);
    // Absent with --init: the command sees it, indented.
    let other = dir.file("other.json");
    let init = "{\"a\":[]}";
    let update = ["update", &other, "--init", init, "--", "sh", "-c", &record];
    ok(update, b"");
    assert_eq!(dir.read("seen"), b"{\n  \"a\": []\n}\n");
}

/// A failing, killed or missing command fails the update with its status.
#[test]
fn a_failing_command_fails_the_update_with_its_own_status_and_changes_nothing() {
    let dir = Scratch::new("cmdfail");
    let path = dir.file("c.json");
    ok(["save", &path], b"41");
    let exit_7 = ["update", &path, "--", "sh", "-c", "echo 42; exit 7"];
    fails(exit_7, b"", 7, &[&path, "left untouched"]);
    assert_eq!(dir.read("c.json"), b"41\n");
    // Killed by a signal: 128 + the signal, as shells report it.
    let out = fsatomic(["update", &path, "--", "sh", "-c", "kill -TERM $$"], b"");
    assert_code(&out, 128 + 15);
    // Not found: 127, as shells report it.
    let missing = ["update", &path, "--", "/nonexistent/cmd"];
    fails(missing, b"", 127, &["cannot run /nonexistent/cmd"]);
    assert_eq!(dir.read("c.json"), b"41\n");
    assert_eq!(dir.entries(), ["c.json", "c.json.lock"]);
}

/// Output that is not JSON, or none, fails with exit 1 and changes nothing.
#[test]
fn output_that_is_not_json_fails_with_exit_1_and_the_offset() {
    let dir = Scratch::new("cmdgarbage");
    let path = dir.file("c.json");
    ok(["save", &path], b"{\"a\": 1}");
    let before = dir.read("c.json");
    let bad = ["update", &path, "--", "echo", "{\"a\": 2,}"];
    fails(
        bad,
        b"",
        1,
        &["not valid JSON at byte 8", &path, "left untouched"],
    );
    fails(
        ["update", &path, "--", "true"],
        b"",
        1,
        &["is empty", &path],
    );
    assert_eq!(dir.read("c.json"), before);
}

/// A corrupt file fails the update with exit 4 before the command runs.
#[test]
fn a_corrupt_file_fails_with_exit_4_before_the_command_runs() {
    let dir = Scratch::new("updcorrupt");
    let path = dir.file("c.json");
    let touch = format!("touch '{}'; echo 1", dir.file("ran"));
    let update = ["update", &path, "--init", "0", "--", "sh", "-c", &touch];
    for content in [&b""[..], b"{\"a\":", b"garbage"] {
        dir.write("c.json", content);
        fails(
            update,
            b"",
            4,
            &[&path, "corrupt at byte", "left untouched"],
        );
        assert!(!dir.join("ran").exists(), "the command ran");
        assert_eq!(dir.read("c.json"), content);
    }
}

/// An update waits while `lock` holds the lock, then runs.
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
