//! `check`: reports every state file and orphan; `--repair` removes
//! orphans and only orphans.

use crate::support::{Scratch, assert_code, assert_fails, assert_has, fsatomic, ok};

const ORPHAN_OK: &str = ".ok.json.0123456789abcdef.tmp";
const ORPHAN_GONE: &str = ".gone.json.fedcba9876543210.tmp";
/// Files that look like temporary files but are not fsatomic's pattern.
const LOOKALIKES: [&str; 4] = [
    "notes.tmp",
    ".x.tmp",
    ".ok.json.0123456789ABCDEF.tmp",
    ".ok.json.0123456789abcde.tmp",
];

/// One state of each kind, two orphans and some look-alikes.
fn populate(dir: &Scratch) {
    ok(["save", &dir.file("ok.json")], b"{\"a\":1}");
    dir.write("empty.json", b"");
    dir.write("torn.json", b"{\"users\": [");
    dir.write("readme.txt", b"not state");
    dir.write(ORPHAN_OK, b"{\"a\":");
    dir.write(ORPHAN_GONE, b"");
    for name in LOOKALIKES {
        dir.write(name, b"keep me");
    }
}

/// A directory check lists every state and orphan, exits 4, changes nothing.
#[test]
fn reports_ok_corrupt_absent_and_orphans_and_changes_nothing() {
    let dir = Scratch::new("check");
    populate(&dir);
    let before = dir.entries();
    let out = fsatomic(["check", dir.dir()], b"");
    assert_fails(&out, 4, &["2 corrupt files", "left untouched"]);
    let lines = out.lines();
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

/// `--repair` removes the orphans, never a state file or a look-alike.
#[test]
fn repair_removes_orphans_and_only_orphans() {
    let dir = Scratch::new("repair");
    populate(&dir);
    let out = fsatomic(["check", dir.dir(), "--repair"], b"");
    // Still corrupt: repair never touches a state file.
    assert_fails(&out, 4, &["corrupt"]);
    let text = out.text();
    for state in ["gone.json", "ok.json"] {
        let removed = format!("{}: removed 1 orphaned temporary file\n", dir.file(state));
        assert_has(&text, &removed);
    }
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
    let text = ok(["check", dir.dir(), "--repair"], b"").text();
    assert!(
        text.ends_with("summary: 1 state file: 1 ok, 0 corrupt, 0 absent; 0 orphaned temporary files, 0 removed\n"),
        "{text}"
    );
}

/// A check of one path reports that state only, by any name.
#[test]
fn checks_one_file_by_path_whatever_its_name() {
    let dir = Scratch::new("checkone");
    ok(["save", &dir.file("counter")], b"3");
    dir.write(".counter.0000000000000001.tmp", b"");
    dir.write("other.json", b"broken");
    assert_eq!(
        ok(["check", &dir.file("counter")], b"").lines()[2..],
        [
            format!("{}: ok (replace; 2 flushes per commit; the previous version is not kept)", dir.file("counter")),
            format!("{}: orphaned temporary file of counter", dir.file(".counter.0000000000000001.tmp")),
            "summary: 1 state file: 1 ok, 0 corrupt, 0 absent; 1 orphaned temporary file (check --repair removes them)".to_string(),
        ]
    );
    let out = fsatomic(["check", &dir.file("other.json")], b"");
    assert_code(&out, 4);
    assert_has(&out.text(), "other.json: corrupt at byte 0: invalid JSON");
    let out = ok(["check", &dir.file("nothing.json")], b"");
    assert_has(&out.text(), "nothing.json: absent");
    ok(["check", &dir.file("counter"), "--repair"], b"");
    assert!(!dir.join(".counter.0000000000000001.tmp").exists());
    assert!(dir.join("other.json").exists());
}

/// A missing directory, named alone or as a file's, fails with exit 1.
#[test]
fn a_missing_directory_fails_with_exit_1() {
    let dir = Scratch::new("checknodir");
    for path in ["nowhere/", "nowhere/x.json"] {
        let out = fsatomic(["check", &dir.file(path)], b"");
        assert_fails(&out, 1, &["does not exist"]);
    }
}

/// A repair that cannot lock is reported apart and removes nothing.
#[test]
fn a_failed_repair_is_counted_apart_not_as_a_second_state() {
    let dir = Scratch::new("repair-fails");
    dir.write("x.json", b"{}\n");
    dir.write(".x.json.0123456789abcdef.tmp", b"{\"torn");
    // The lock cannot be taken: a directory stands at the lock file's name.
    std::fs::create_dir(dir.join("x.json.lock")).unwrap();
    let out = fsatomic(["check", dir.dir(), "--repair"], b"");
    assert_fails(&out, 1, &["could not be checked or repaired"]);
    let text = out.text();
    assert_has(&text, &format!("{}: repair failed: ", dir.file("x.json")));
    assert_has(
        &text,
        "summary: 1 state file: 1 ok, 0 corrupt, 0 absent; 1 repair failed;",
    );
    assert!(dir.join(".x.json.0123456789abcdef.tmp").exists());
}

/// The fields every `check --json` receipt carries.
const FIELDS: &str = "status protocol protocol_why filesystem atomic_rename mount \
    device_write_cache flushes_per_commit generation sequence previous_version orphans \
    corrupt error";

/// `check --json`: one line per state with every receipt field; same exit.
#[test]
fn json_prints_one_receipt_per_state() {
    let dir = Scratch::new("checkjson");
    populate(&dir);
    let log = dir.file("log.json");
    ok(["append", &log], b"1");
    ok(["append", &log], b"2");
    let out = fsatomic(["check", dir.dir(), "--json"], b"");
    assert_code(&out, 4);
    let lines = out.lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in &lines {
        assert!(
            line.starts_with("{\"path\":") && line.ends_with('}'),
            "{line}"
        );
        for field in FIELDS.split_whitespace() {
            assert_has(line, &format!("\"{field}\":"));
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
    let orphans = format!("\"orphans\":[\"{ORPHAN_OK}\"]");
    for (name, field) in [
        ("ok.json", "\"status\":\"ok\",\"protocol\":\"replace\""),
        ("ok.json", "\"flushes_per_commit\":2"),
        ("ok.json", &orphans),
        ("log.json", "\"protocol\":\"journal\""),
        ("log.json", "\"sequence\":2,\"previous_version\":true"),
        ("empty.json", "\"status\":\"corrupt\""),
        ("empty.json", "\"corrupt\":{\"offset\":0,"),
        (
            "gone.json",
            "\"status\":\"absent\",\"protocol\":\"replace\"",
        ),
    ] {
        assert_has(&of(name), field);
    }
}
