//! `check`: reports every state file and orphan; `--repair` removes
//! orphans and only orphans.

use crate::support::{Out, Scratch, assert_code, assert_fails, fsatomic};

const ORPHAN_OK: &str = ".ok.json.0123456789abcdef.tmp";
const ORPHAN_GONE: &str = ".gone.json.fedcba9876543210.tmp";
/// Files that look like temporary files but are not fsatomic's pattern.
const LOOKALIKES: [&str; 4] = [
    "notes.tmp",
    ".x.tmp",
    ".ok.json.0123456789ABCDEF.tmp",
    ".ok.json.0123456789abcde.tmp",
];

fn populate(dir: &Scratch) {
    assert_code(&fsatomic(["save", &dir.file("ok.json")], b"{\"a\":1}"), 0);
    dir.write("empty.json", b"");
    dir.write("torn.json", b"{\"users\": [");
    dir.write("readme.txt", b"not state");
    dir.write(ORPHAN_OK, b"{\"a\":");
    dir.write(ORPHAN_GONE, b"");
    for name in LOOKALIKES {
        dir.write(name, b"keep me");
    }
}

fn lines(out: &Out) -> Vec<String> {
    out.text().lines().map(str::to_string).collect()
}

#[test]
fn reports_ok_corrupt_absent_and_orphans_and_changes_nothing() {
    let dir = Scratch::new("check");
    populate(&dir);
    let before = dir.entries();
    let out = fsatomic(["check", dir.path().to_str().unwrap()], b"");
    assert_fails(&out, 4, &["2 corrupt files", "left untouched"]);
    let lines = lines(&out);
    assert!(lines[0].starts_with("filesystem: "), "{lines:?}");
    assert!(lines[1].starts_with("mount: "), "{lines:?}");
    assert_eq!(
        lines[2..],
        [
            format!("{}: corrupt at byte 0: the file is empty (a torn write?) (replace)", dir.file("empty.json")),
            format!("{}: absent", dir.file("gone.json")),
            format!("{}: orphaned temporary file of gone.json", dir.file(ORPHAN_GONE)),
            format!("{}: ok (replace; 2 flushes per commit; the previous version is not kept)", dir.file("ok.json")),
            format!("{}: orphaned temporary file of ok.json", dir.file(ORPHAN_OK)),
            format!(
                "{}: corrupt at byte 11: invalid JSON: unexpected end of the document (replace)",
                dir.file("torn.json")
            ),
            "summary: 4 state files: 1 ok, 2 corrupt, 1 absent; 2 orphaned temporary files (check --repair removes them)".to_string(),
        ]
    );
    // A check without --repair is a reader: no lock file, nothing removed.
    assert_eq!(dir.entries(), before);
}

#[test]
fn repair_removes_orphans_and_only_orphans() {
    let dir = Scratch::new("repair");
    populate(&dir);
    let out = fsatomic(["check", dir.path().to_str().unwrap(), "--repair"], b"");
    // Still corrupt: repair never touches a state file.
    assert_fails(&out, 4, &["corrupt"]);
    let text = out.text();
    assert!(
        text.contains(&format!(
            "{}: removed 1 orphaned temporary file\n",
            dir.file("gone.json")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}: removed 1 orphaned temporary file\n",
            dir.file("ok.json")
        )),
        "{text}"
    );
    assert!(
        text.ends_with("; 2 orphaned temporary files, 2 removed\n"),
        "{text}"
    );
    let mut expected = vec![
        "empty.json",
        "gone.json.lock",
        "ok.json",
        "ok.json.lock",
        "readme.txt",
        "torn.json",
    ];
    expected.extend(LOOKALIKES);
    expected.sort();
    assert_eq!(dir.entries(), expected);
    assert_eq!(dir.read("empty.json"), b"");
    assert_eq!(dir.read("torn.json"), b"{\"users\": [");

    // With the corrupt files dealt with by a person, all is well.
    std::fs::remove_file(dir.join("empty.json")).unwrap();
    std::fs::remove_file(dir.join("torn.json")).unwrap();
    let out = fsatomic(["check", dir.path().to_str().unwrap(), "--repair"], b"");
    assert_code(&out, 0);
    assert!(
        out.text().ends_with("summary: 1 state file: 1 ok, 0 corrupt, 0 absent; 0 orphaned temporary files, 0 removed\n"),
        "{}",
        out.text()
    );
}

#[test]
fn checks_one_file_by_path_whatever_its_name() {
    let dir = Scratch::new("checkone");
    assert_code(&fsatomic(["save", &dir.file("counter")], b"3"), 0);
    dir.write(".counter.0000000000000001.tmp", b"");
    dir.write("other.json", b"broken");
    let out = fsatomic(["check", &dir.file("counter")], b"");
    assert_code(&out, 0);
    assert_eq!(
        lines(&out)[2..],
        [
            format!("{}: ok (replace; 2 flushes per commit; the previous version is not kept)", dir.file("counter")),
            format!("{}: orphaned temporary file of counter", dir.file(".counter.0000000000000001.tmp")),
            "summary: 1 state file: 1 ok, 0 corrupt, 0 absent; 1 orphaned temporary file (check --repair removes them)".to_string(),
        ]
    );
    let out = fsatomic(["check", &dir.file("other.json")], b"");
    assert_code(&out, 4);
    assert!(
        out.text()
            .contains("other.json: corrupt at byte 0: invalid JSON"),
        "{}",
        out.text()
    );
    let out = fsatomic(["check", &dir.file("nothing.json")], b"");
    assert_code(&out, 0);
    assert!(
        out.text().contains("nothing.json: absent"),
        "{}",
        out.text()
    );
    let out = fsatomic(["check", &dir.file("counter"), "--repair"], b"");
    assert_code(&out, 0);
    assert!(!dir.join(".counter.0000000000000001.tmp").exists());
    assert!(dir.join("other.json").exists());
}

#[test]
fn a_missing_directory_fails_with_exit_1() {
    let dir = Scratch::new("checknodir");
    let out = fsatomic(["check", &dir.file("nowhere/")], b"");
    assert_fails(&out, 1, &["does not exist"]);
    let out = fsatomic(["check", &dir.file("nowhere/x.json")], b"");
    assert_fails(&out, 1, &["does not exist"]);
}

#[test]
fn a_failed_repair_is_counted_apart_not_as_a_second_state() {
    let dir = Scratch::new("repair-fails");
    dir.write("x.json", b"{}\n");
    dir.write(".x.json.0123456789abcdef.tmp", b"{\"torn");
    // The lock cannot be taken: a directory stands at the lock file's name.
    std::fs::create_dir(dir.join("x.json.lock")).unwrap();
    let out = fsatomic(["check", dir.path().to_str().unwrap(), "--repair"], b"");
    assert_fails(&out, 1, &["could not be checked or repaired"]);
    let text = out.text();
    assert!(
        text.contains(&format!("{}: repair failed: ", dir.file("x.json"))),
        "{text}"
    );
    assert!(
        text.contains("summary: 1 state file: 1 ok, 0 corrupt, 0 absent; 1 repair failed;"),
        "{text}"
    );
    assert!(dir.join(".x.json.0123456789abcdef.tmp").exists());
}

/// `check --json`: one object per state, on one line each, with the
/// receipt's fields; the exit status is the human check's.
#[test]
fn json_prints_one_receipt_per_state() {
    let dir = Scratch::new("checkjson");
    populate(&dir);
    let log = dir.file("log.json");
    assert_code(&fsatomic(["append", &log], b"1"), 0);
    assert_code(&fsatomic(["append", &log], b"2"), 0);
    let out = fsatomic(["check", dir.path().to_str().unwrap(), "--json"], b"");
    assert_code(&out, 4);
    let lines = lines(&out);
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines {
        assert!(
            line.starts_with("{\"path\":") && line.ends_with('}'),
            "{line}"
        );
        for field in [
            "\"status\":",
            "\"protocol\":",
            "\"protocol_why\":",
            "\"filesystem\":",
            "\"atomic_rename\":",
            "\"mount\":",
            "\"device_write_cache\":",
            "\"flushes_per_commit\":",
            "\"generation\":",
            "\"sequence\":",
            "\"previous_version\":",
            "\"orphans\":",
            "\"corrupt\":",
            "\"error\":",
        ] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
    let of = |name: &str| {
        let path = format!("\"path\":\"{}\"", dir.file(name));
        lines
            .iter()
            .find(|l| l.contains(&path))
            .unwrap_or_else(|| panic!("{name}: {lines:?}"))
            .clone()
    };
    let ok = of("ok.json");
    assert!(
        ok.contains("\"status\":\"ok\",\"protocol\":\"replace\""),
        "{ok}"
    );
    assert!(ok.contains("\"flushes_per_commit\":2"), "{ok}");
    assert!(
        ok.contains(&format!("\"orphans\":[\"{ORPHAN_OK}\"]")),
        "{ok}"
    );
    let journal = of("log.json");
    assert!(journal.contains("\"protocol\":\"journal\""), "{journal}");
    assert!(
        journal.contains("\"sequence\":2,\"previous_version\":true"),
        "{journal}"
    );
    let empty = of("empty.json");
    assert!(empty.contains("\"status\":\"corrupt\""), "{empty}");
    assert!(empty.contains("\"corrupt\":{\"offset\":0,"), "{empty}");
    let gone = of("gone.json");
    assert!(
        gone.contains("\"status\":\"absent\",\"protocol\":\"replace\""),
        "{gone}"
    );
}
