//! `load --previous`, `save --keep-previous`, `save --tentative`, `confirm`,
//! `rollback`, and what `check` says and repairs of them.

use crate::support::{Scratch, assert_code, assert_fails, fsatomic};

fn save(path: &str, doc: &str, options: &[&str]) -> Option<i32> {
    let mut args = vec!["save", path];
    args.extend_from_slice(options);
    let out = fsatomic(args, doc.as_bytes());
    out.code
}

fn load(path: &str, options: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["load", path];
    args.extend_from_slice(options);
    let out = fsatomic(args, b"");
    (out.code, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_previous_version_is_kept_once_asked_and_from_then_on() {
    let dir = Scratch::new("previous");
    let path = dir.file("net.json");
    assert_eq!(save(&path, "1", &["--keep-previous"]), Some(0));
    let none = fsatomic(["load", &path, "--previous"], b"");
    assert_fails(&none, 3, &[&path, "no previous version", "--keep-previous"]);
    assert_eq!(save(&path, "2", &["--keep-previous"]), Some(0));
    assert_eq!(load(&path, &["--previous"]), (Some(0), "1\n".to_owned()));
    // Kept from then on, asked or not, by save and update alike.
    assert_eq!(save(&path, "3", &[]), Some(0));
    assert_eq!(load(&path, &["--previous"]), (Some(0), "2\n".to_owned()));
    let out = fsatomic(
        ["update", &path, "--", "sh", "-c", "read n; echo $((n+1))"],
        b"",
    );
    assert_code(&out, 0);
    assert_eq!(load(&path, &[]), (Some(0), "4\n".to_owned()));
    assert_eq!(load(&path, &["--previous"]), (Some(0), "3\n".to_owned()));
    assert_eq!(
        dir.entries(),
        ["net.json", "net.json.lock", "net.json.prev"]
    );
    assert_eq!(dir.mode("net.json.prev"), 0o600);
    let check = fsatomic(["check", &path], b"");
    assert!(
        check.text().contains("the previous version is kept"),
        "{}",
        check.text()
    );
}

#[test]
fn slots_and_journals_give_their_previous_version_without_asking() {
    let dir = Scratch::new("previous-others");
    let slots = dir.file("slots.json");
    for v in ["1", "2", "3"] {
        assert_eq!(save(&slots, v, &["--protocol", "slots"]), Some(0));
    }
    assert_eq!(load(&slots, &["--previous"]), (Some(0), "2\n".to_owned()));
    let events = dir.file("events.json");
    for e in ["1", "2", "3"] {
        assert_code(&fsatomic(["append", &events], e.as_bytes()), 0);
    }
    assert_eq!(
        load(&events, &["--previous"]),
        (Some(0), "[\n  1,\n  2\n]\n".to_owned())
    );
}

#[test]
fn a_tentative_version_is_rolled_back_at_boot_unless_confirmed() {
    let dir = Scratch::new("tentative");
    let path = dir.file("net.json");
    assert_eq!(save(&path, r#"{"ip":1}"#, &[]), Some(0));
    assert_eq!(save(&path, r#"{"ip":2}"#, &["--tentative"]), Some(0));
    // Current at once; the confirmed version is its previous one.
    assert_eq!(load(&path, &[]).1, "{\n  \"ip\": 2\n}\n");
    assert_eq!(load(&path, &["--previous"]).1, "{\n  \"ip\": 1\n}\n");
    // A plain save or update would hide under it: refused.
    let refused = fsatomic(["save", &path], b"3");
    assert_fails(
        &refused,
        1,
        &["tentative version waits", "fsatomic confirm"],
    );
    let refused = fsatomic(["append", &path], b"3");
    assert_fails(&refused, 1, &["tentative version waits"]);
    let check = fsatomic(["check", &path, "--json"], b"");
    assert!(
        check.text().contains("\"tentative_pending\":true"),
        "{}",
        check.text()
    );
    // The boot: check --repair rolls it back.
    let boot = fsatomic(["check", dir.path().to_str().unwrap(), "--repair"], b"");
    assert_code(&boot, 0);
    assert!(
        boot.text().contains("rolled back the tentative version"),
        "{}",
        boot.text()
    );
    assert_eq!(load(&path, &[]).1, "{\n  \"ip\": 1\n}\n");
    assert_fails(
        &fsatomic(["confirm", &path], b""),
        3,
        &["no tentative version"],
    );
    // Confirmed before the boot: it stays, and the replaced version is
    // kept when asked.
    assert_eq!(save(&path, r#"{"ip":3}"#, &["--tentative"]), Some(0));
    assert_code(&fsatomic(["confirm", &path, "--keep-previous"], b""), 0);
    let boot = fsatomic(["check", &path, "--repair"], b"");
    assert!(!boot.text().contains("rolled back"), "{}", boot.text());
    assert_eq!(load(&path, &[]).1, "{\n  \"ip\": 3\n}\n");
    assert_eq!(load(&path, &["--previous"]).1, "{\n  \"ip\": 1\n}\n");
    // rollback drops one at once.
    assert_eq!(save(&path, r#"{"ip":4}"#, &["--tentative"]), Some(0));
    assert_code(&fsatomic(["rollback", &path], b""), 0);
    assert_eq!(load(&path, &[]).1, "{\n  \"ip\": 3\n}\n");
    assert_eq!(
        dir.entries(),
        ["net.json", "net.json.lock", "net.json.prev"]
    );
}

#[test]
fn slots_refuse_a_tentative_version() {
    let dir = Scratch::new("tentative-slots");
    let path = dir.file("c.json");
    assert_eq!(save(&path, "1", &["--protocol", "slots"]), Some(0));
    let refused = fsatomic(["save", &path, "--tentative"], b"2");
    assert_fails(&refused, 1, &["replace protocol", "nothing was changed"]);
    assert_eq!(load(&path, &[]).1, "1\n");
}

#[test]
fn a_deadline_keeps_a_tentative_version_through_boots_until_it_comes() {
    let dir = Scratch::new("tentative-until");
    let path = dir.file("net.json");
    assert_eq!(save(&path, "1", &[]), Some(0));
    assert_eq!(
        save(&path, "2", &["--tentative", "--until", "1000"]),
        Some(0)
    );
    let check = fsatomic(["check", &path, "--json"], b"");
    assert!(
        check.text().contains("\"tentative_until\":1000"),
        "{}",
        check.text()
    );
    // A boot before the deadline leaves it waiting.
    let boot = fsatomic(["check", &path, "--repair", "--now", "999"], b"");
    assert!(!boot.text().contains("rolled back"), "{}", boot.text());
    assert_eq!(load(&path, &[]).1, "2\n");
    // From the deadline on, or without a clock, it goes.
    let boot = fsatomic(["check", &path, "--repair", "--now", "1000"], b"");
    assert!(boot.text().contains("rolled back"), "{}", boot.text());
    assert_eq!(load(&path, &[]).1, "1\n");
    assert_eq!(dir.entries(), ["net.json", "net.json.lock"]);
    // --until without --tentative, or not a number: usage errors.
    assert_fails(
        &fsatomic(["save", &path, "--until", "5"], b"3"),
        2,
        &["--tentative"],
    );
    let bad = fsatomic(["save", &path, "--tentative", "--until", "soon"], b"3");
    assert_fails(&bad, 2, &["--until", "whole number of seconds"]);
    assert_eq!(load(&path, &[]).1, "1\n");
}
