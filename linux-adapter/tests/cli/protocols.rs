//! Protocol choice: `--protocol slots` for whole documents, the form on
//! disk winning over the default, contradictions refused (exit 2), and
//! journaled arrays refused by `save` and `update`.

use crate::support::{Scratch, assert_code, assert_fails, fsatomic};

fn check_line(dir: &Scratch, name: &str) -> String {
    let out = fsatomic(["check", &dir.file(name)], b"");
    let prefix = format!("{}: ", dir.file(name));
    out.text()
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line for {name}: {}", out.text()))
        .to_string()
}

#[test]
fn save_with_slots_makes_two_fixed_size_slot_files_that_load_reads() {
    let dir = Scratch::new("slots");
    let path = dir.file("cfg.json");
    let out = fsatomic(["save", &path, "--protocol", "slots"], b"{\"a\":1}");
    assert_code(&out, 0);
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
    let out = fsatomic(["load", &path], b"");
    assert_code(&out, 0);
    assert_eq!(out.stdout, b"{\n  \"a\": 1\n}\n");
    assert_eq!(
        check_line(&dir, "cfg.json"),
        format!("{path}: ok (slots, generation 1; 1 flush per commit; no previous version yet)")
    );

    // Later saves keep the form without being told, and never resize.
    for (i, doc) in ["[1, 2, 3]", "\"three\""].iter().enumerate() {
        let a = dir.read("cfg.json.a");
        let b = dir.read("cfg.json.b");
        assert_code(&fsatomic(["save", &path], doc.as_bytes()), 0);
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
    let out = fsatomic(
        [
            "update",
            &path,
            "--",
            "sh",
            "-c",
            "cat >/dev/null; echo '{\"n\": 1}'",
        ],
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(fsatomic(["load", &path], b"").stdout, b"{\n  \"n\": 1\n}\n");
}

#[test]
fn a_document_larger_than_the_slots_is_refused_and_the_old_one_kept() {
    let dir = Scratch::new("slots-full");
    let path = dir.file("cfg.json");
    assert_code(&fsatomic(["save", &path, "--protocol", "slots"], b"1"), 0);
    let size = dir.size("cfg.json.a");
    let big = format!("\"{}\"", "x".repeat(size as usize));
    let out = fsatomic(["save", &path], big.as_bytes());
    assert_fails(&out, 1, &["does not fit the slot files", "left untouched"]);
    assert_eq!(dir.size("cfg.json.a"), size);
    assert_eq!(fsatomic(["load", &path], b"").stdout, b"1\n");
    // A first document larger than 64 KiB gets slots that hold it.
    let out = fsatomic(
        ["save", &dir.file("big.json"), "--protocol", "slots"],
        big.as_bytes(),
    );
    assert_code(&out, 0);
    assert!(dir.size("big.json.a") > size);
    assert_eq!(
        fsatomic(["load", &dir.file("big.json")], b"").stdout.len(),
        big.len() + 1
    );
}

#[test]
fn append_with_slots_rewrites_the_whole_array_in_place() {
    let dir = Scratch::new("slots-append");
    let path = dir.file("log.json");
    assert_code(&fsatomic(["append", &path, "--protocol", "slots"], b"1"), 0);
    assert_code(&fsatomic(["append", &path], b"{\"b\": 2}"), 0);
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
    assert_code(
        &fsatomic(["save", &dir.file("o.json"), "--protocol", "slots"], b"{}"),
        0,
    );
    let out = fsatomic(["append", &dir.file("o.json")], b"1");
    assert_fails(&out, 1, &["holds an object, not an array"]);
}

#[test]
fn a_protocol_that_contradicts_the_files_on_disk_is_a_usage_error() {
    let dir = Scratch::new("contradict");
    assert_code(&fsatomic(["save", &dir.file("plain.json")], b"{}"), 0);
    assert_code(
        &fsatomic(
            ["save", &dir.file("slots.json"), "--protocol", "slots"],
            b"{}",
        ),
        0,
    );
    assert_code(&fsatomic(["append", &dir.file("log.json")], b"1"), 0);
    let before: Vec<(String, Vec<u8>)> = dir
        .entries()
        .into_iter()
        .map(|n| {
            let bytes = dir.read(&n);
            (n, bytes)
        })
        .collect();
    let cases: [(&[&str], &[u8], &[&str]); 6] = [
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
    ];
    for (args, stdin, needles) in cases {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args[1] = dir.file(&args[1]);
        let out = fsatomic(&args, stdin);
        assert_fails(&out, 2, needles);
    }
    for (args, message) in [
        (
            vec!["save", "x.json", "--protocol", "journal"],
            "not one of auto, replace, slots",
        ),
        (
            vec!["append", "x.json", "--protocol", "replace"],
            "not one of auto, journal, slots",
        ),
        (
            vec!["update", "x.json", "--protocol", "fat", "--", "cat"],
            "not one of",
        ),
    ] {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args[1] = dir.file(&args[1]);
        assert_fails(&fsatomic(&args, b"1"), 2, &[message]);
    }
    let after: Vec<(String, Vec<u8>)> = dir
        .entries()
        .into_iter()
        .map(|n| {
            let bytes = dir.read(&n);
            (n, bytes)
        })
        .collect();
    assert_eq!(before, after, "nothing was changed");
    // Agreeing (or auto) is fine.
    assert_code(
        &fsatomic(
            ["save", &dir.file("slots.json"), "--protocol", "slots"],
            b"1",
        ),
        0,
    );
    assert_code(
        &fsatomic(
            ["save", &dir.file("plain.json"), "--protocol", "auto"],
            b"1",
        ),
        0,
    );
    assert_code(
        &fsatomic(
            ["append", &dir.file("log.json"), "--protocol", "journal"],
            b"2",
        ),
        0,
    );
}

#[test]
fn save_and_update_refuse_a_journaled_array() {
    let dir = Scratch::new("refuse-journal");
    let path = dir.file("events.json");
    assert_code(&fsatomic(["append", &path], b"1"), 0);
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
    let ran = dir.file("ran");
    let out = fsatomic(
        [
            "update",
            &path,
            "--",
            "sh",
            "-c",
            &format!("touch {ran}; echo '[2]'"),
        ],
        b"",
    );
    assert_fails(&out, 1, &["is a journaled array"]);
    assert!(!dir.join("ran").exists(), "the command ran");
    assert_eq!(dir.read("events.json.journal"), journal);
    assert_eq!(dir.entries(), ["events.json.journal", "events.json.lock"]);
}

#[test]
fn a_state_stored_two_ways_at_once_is_not_guessed() {
    let dir = Scratch::new("two-ways");
    assert_code(
        &fsatomic(["save", &dir.file("x.json"), "--protocol", "slots"], b"1"),
        0,
    );
    dir.write("x.json", b"2");
    for args in [
        vec!["load".to_string(), dir.file("x.json")],
        vec!["save".to_string(), dir.file("x.json")],
        vec!["append".to_string(), dir.file("x.json")],
    ] {
        let out = fsatomic(&args, b"3");
        assert_fails(
            &out,
            1,
            &["stored in two ways at once", "x.json, x.json.a, x.json.b"],
        );
    }
    let out = fsatomic(["check", dir.path().to_str().unwrap()], b"");
    assert_code(&out, 1);
    assert!(
        out.text().contains(&format!(
            "{}: error: x.json is stored in two ways",
            dir.file("x.json")
        )),
        "{}",
        out.text()
    );
}
