//! Protocol choice: `--protocol slots` for whole documents, the form on
//! disk winning over the default, contradictions refused (exit 2), and
//! journaled arrays refused by `save` and `update`.

use crate::support::{Scratch, assert_code, assert_fails, assert_has, fails, fsatomic, ok};

/// The line `check NAME` prints for NAME.
fn check_line(dir: &Scratch, name: &str) -> String {
    let out = fsatomic(["check", &dir.file(name)], b"");
    let prefix = format!("{}: ", dir.file(name));
    out.text()
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {name}: {}", out.text()))
        .to_string()
}

/// `--protocol slots`: two whole-sector slot files, one written per save.
#[test]
fn save_with_slots_makes_two_fixed_size_slot_files_that_load_reads() {
    let dir = Scratch::new("slots");
    let path = dir.file("cfg.json");
    let out = ok(["save", &path, "--protocol", "slots"], b"{\"a\":1}");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(
        dir.entries(),
        ["cfg.json.a", "cfg.json.b", "cfg.json.lock"],
        "no plain file, no temporary file"
    );
    let size = dir.size("cfg.json.a");
    assert_eq!(dir.size("cfg.json.b"), size);
    assert_eq!(size % 512, 0, "whole sectors");
    assert!(size >= 64 * 1024, "room to grow: {size}");
    assert_eq!(dir.mode("cfg.json.a"), 0o600);
    assert_eq!(ok(["load", &path], b"").stdout, b"{\n  \"a\": 1\n}\n");
    assert_eq!(
        check_line(&dir, "cfg.json"),
        format!("{path}: ok (slots, generation 1; 1 flush per commit; no previous version yet)")
    );

    // Later saves keep the form without being told, and never resize.
    for (i, doc) in ["[1, 2, 3]", "\"three\""].iter().enumerate() {
        let a = dir.read("cfg.json.a");
        let b = dir.read("cfg.json.b");
        ok(["save", &path], doc.as_bytes());
        assert_eq!(dir.size("cfg.json.a"), size);
        assert_eq!(dir.size("cfg.json.b"), size);
        // Exactly one slot was written: the older one.
        let changed =
            usize::from(dir.read("cfg.json.a") != a) + usize::from(dir.read("cfg.json.b") != b);
        assert_eq!(changed, 1);
        assert_eq!(
            check_line(&dir, "cfg.json"),
            format!(
                "{path}: ok (slots, generation {}; 1 flush per commit; the previous version is in the other slot)",
                i + 2
            )
        );
    }
    assert_eq!(fsatomic(["load", &path], b"").stdout, b"\"three\"\n");
    assert_eq!(dir.entries(), ["cfg.json.a", "cfg.json.b", "cfg.json.lock"]);

    // update works on slots too.
    let echo = "cat >/dev/null; echo '{\"n\": 1}'";
    ok(["update", &path, "--", "sh", "-c", echo], b"");
    assert_eq!(fsatomic(["load", &path], b"").stdout, b"{\n  \"n\": 1\n}\n");
}

/// A document too large for the slots is refused; a first one sizes them.
#[test]
fn a_document_larger_than_the_slots_is_refused_and_the_old_one_kept() {
    let dir = Scratch::new("slots-full");
    let path = dir.file("cfg.json");
    ok(["save", &path, "--protocol", "slots"], b"1");
    let size = dir.size("cfg.json.a");
    let big = format!("\"{}\"", "x".repeat(size as usize));
    let out = fsatomic(["save", &path], big.as_bytes());
    assert_fails(&out, 1, &["does not fit the slot files", "left untouched"]);
    assert_eq!(dir.size("cfg.json.a"), size);
    assert_eq!(fsatomic(["load", &path], b"").stdout, b"1\n");
    // A first document larger than 64 KiB gets slots that hold it.
    let big_path = dir.file("big.json");
    ok(["save", &big_path, "--protocol", "slots"], big.as_bytes());
    assert!(dir.size("big.json.a") > size);
    assert_eq!(ok(["load", &big_path], b"").stdout.len(), big.len() + 1);
}

/// `append --protocol slots` rewrites the array in the slots; arrays only.
#[test]
fn append_with_slots_rewrites_the_whole_array_in_place() {
    let dir = Scratch::new("slots-append");
    let path = dir.file("log.json");
    ok(["append", &path, "--protocol", "slots"], b"1");
    ok(["append", &path], b"{\"b\": 2}");
    assert_eq!(
        fsatomic(["load", &path], b"").text(),
        "[\n  1,\n  {\n    \"b\": 2\n  }\n]\n"
    );
    assert_eq!(dir.entries(), ["log.json.a", "log.json.b", "log.json.lock"]);
    assert_eq!(
        check_line(&dir, "log.json"),
        format!(
            "{path}: ok (slots, generation 2; 1 flush per commit; the previous version is in the other slot)"
        )
    );
    // A slots document that is not an array is refused like a plain one.
    let object = dir.file("o.json");
    ok(["save", &object, "--protocol", "slots"], b"{}");
    fails(
        ["append", &object],
        b"1",
        1,
        &["holds an object, not an array"],
    );
}

/// A contradicting or unknown `--protocol` is a usage error; nothing changes.
#[test]
fn a_protocol_that_contradicts_the_files_on_disk_is_a_usage_error() {
    let dir = Scratch::new("contradict");
    let (plain, slots, log) = (
        dir.file("plain.json"),
        dir.file("slots.json"),
        dir.file("log.json"),
    );
    ok(["save", &plain], b"{}");
    ok(["save", &slots, "--protocol", "slots"], b"{}");
    ok(["append", &log], b"1");
    let before = dir.contents();
    let cases: [(&[&str], &[u8], &[&str]); 9] = [
        (
            &["save", "plain.json", "--protocol", "slots"],
            b"{}",
            &[
                "--protocol slots contradicts",
                "plain.json exists in",
                "replace form",
            ],
        ),
        (
            &["save", "slots.json", "--protocol=replace"],
            b"{}",
            &["slots.json.a and slots.json.b exist", "slots form"],
        ),
        (
            &["update", "slots.json", "--protocol", "replace", "--", "cat"],
            b"",
            &["contradicts"],
        ),
        (
            &["append", "log.json", "--protocol", "slots"],
            b"2",
            &["log.json.journal exists", "journal form"],
        ),
        (
            &["append", "slots.json", "--protocol", "journal"],
            b"2",
            &["slots form"],
        ),
        (
            &["save", "log.json", "--protocol", "slots"],
            b"[]",
            &["journal form", "does not migrate state silently"],
        ),
        (
            &["save", "x.json", "--protocol", "journal"],
            b"1",
            &["not one of auto, replace, slots"],
        ),
        (
            &["append", "x.json", "--protocol", "replace"],
            b"1",
            &["not one of auto, journal, slots"],
        ),
        (
            &["update", "x.json", "--protocol", "fat", "--", "cat"],
            b"1",
            &["not one of"],
        ),
    ];
    for (args, stdin, needles) in cases {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args[1] = dir.file(&args[1]);
        let out = fsatomic(&args, stdin);
        assert_fails(&out, 2, needles);
    }
    assert_eq!(before, dir.contents(), "nothing was changed");
    // Agreeing (or auto) is fine.
    ok(["save", &slots, "--protocol", "slots"], b"1");
    ok(["save", &plain, "--protocol", "auto"], b"1");
    ok(["append", &log, "--protocol", "journal"], b"2");
}

/// `save` and `update` refuse a journaled array before doing anything.
#[test]
fn save_and_update_refuse_a_journaled_array() {
    let dir = Scratch::new("refuse-journal");
    let path = dir.file("events.json");
    ok(["append", &path], b"1");
    let journal = dir.read("events.json.journal");
    let out = fsatomic(["save", &path], b"[2]");
    assert_fails(
        &out,
        1,
        &[
            &path,
            "is a journaled array",
            "fsatomic append",
            "nothing was changed",
        ],
    );
    let touch = format!("touch {}; echo '[2]'", dir.file("ran"));
    let update = ["update", &path, "--", "sh", "-c", &touch];
    fails(update, b"", 1, &["is a journaled array"]);
    assert!(!dir.join("ran").exists(), "the command ran");
    assert_eq!(dir.read("events.json.journal"), journal);
    assert_eq!(dir.entries(), ["events.json.journal", "events.json.lock"]);
}

/// A state both plain and in slots is an error, never guessed at.
#[test]
fn a_state_stored_two_ways_at_once_is_not_guessed() {
    let dir = Scratch::new("two-ways");
    let path = dir.file("x.json");
    ok(["save", &path, "--protocol", "slots"], b"1");
    dir.write("x.json", b"2");
    for command in ["load", "save", "append"] {
        let out = fsatomic([command, &path], b"3");
        assert_fails(
            &out,
            1,
            &["stored in two ways at once", "x.json, x.json.a, x.json.b"],
        );
    }
    let out = fsatomic(["check", dir.dir()], b"");
    assert_code(&out, 1);
    let error = format!("{path}: error: x.json is stored in two ways");
    assert_has(&out.text(), &error);
}
