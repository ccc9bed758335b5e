//! `load --previous`, `save --keep-previous`, `save --tentative`, `confirm`,
//! `rollback`, and what `check` says and repairs of them.

use crate::support::{Scratch, assert_fails, assert_has, assert_lacks, fails, fsatomic, ok};

/// `fsatomic save PATH OPTIONS...` of `doc`, which must succeed.
#[track_caller]
fn save(path: &str, doc: &str, options: &[&str]) {
    ok([&["save", path][..], options].concat(), doc.as_bytes());
}

/// `fsatomic load PATH OPTIONS...`, which must succeed: what it printed.
#[track_caller]
fn load(path: &str, options: &[&str]) -> String {
    ok([&["load", path][..], options].concat(), b"").text()
}

/// `--keep-previous` keeps `NAME.prev` from then on, for save and update.
#[test]
fn the_previous_version_is_kept_once_asked_and_from_then_on() {
    let dir = Scratch::new("previous");
    let path = dir.file("net.json");
    save(&path, "1", &["--keep-previous"]);
    let none = fsatomic(["load", &path, "--previous"], b"");
    assert_fails(&none, 3, &[&path, "no previous version", "--keep-previous"]);
    save(&path, "2", &["--keep-previous"]);
    assert_eq!(load(&path, &["--previous"]), "1\n");
    // Kept from then on, asked or not, by save and update alike.
    save(&path, "3", &[]);
    assert_eq!(load(&path, &["--previous"]), "2\n");
    let increment = ["update", &path, "--", "sh", "-c", "read n; echo $((n+1))"];
    ok(increment, b"");
    assert_eq!(load(&path, &[]), "4\n");
    assert_eq!(load(&path, &["--previous"]), "3\n");
    assert_eq!(
        dir.entries(),
        ["net.json", "net.json.lock", "net.json.prev"]
    );
    assert_eq!(dir.mode("net.json.prev"), 0o600);
    let check = fsatomic(["check", &path], b"");
    assert_has(&check.text(), "the previous version is kept");
}

/// Slots and journals have a previous version without being asked.
#[test]
fn slots_and_journals_give_their_previous_version_without_asking() {
    let dir = Scratch::new("previous-others");
    let slots = dir.file("slots.json");
    for v in ["1", "2", "3"] {
        save(&slots, v, &["--protocol", "slots"]);
    }
    assert_eq!(load(&slots, &["--previous"]), "2\n");
    let events = dir.file("events.json");
    for e in ["1", "2", "3"] {
        ok(["append", &events], e.as_bytes());
    }
    assert_eq!(load(&events, &["--previous"]), "[\n  1,\n  2\n]\n");
}

/// A tentative version blocks plain writes and is rolled back unless confirmed.
#[test]
fn a_tentative_version_is_rolled_back_at_boot_unless_confirmed() {
    let dir = Scratch::new("tentative");
    let path = dir.file("net.json");
    let ip = |n: u32| format!("{{\n  \"ip\": {n}\n}}\n");
    save(&path, r#"{"ip":1}"#, &[]);
    save(&path, r#"{"ip":2}"#, &["--tentative"]);
    // Current at once; the confirmed version is its previous one.
    assert_eq!(load(&path, &[]), ip(2));
    assert_eq!(load(&path, &["--previous"]), ip(1));
    // A plain save or update would hide under it: refused.
    let waits = "tentative version waits";
    fails(["save", &path], b"3", 1, &[waits, "fsatomic confirm"]);
    fails(["append", &path], b"3", 1, &[waits]);
    let check = fsatomic(["check", &path, "--json"], b"");
    assert_has(&check.text(), "\"tentative_pending\":true");
    // The boot: check --repair rolls it back.
    let boot = ok(["check", dir.dir(), "--repair"], b"");
    assert_has(&boot.text(), "rolled back the tentative version");
    assert_eq!(load(&path, &[]), ip(1));
    fails(["confirm", &path], b"", 3, &["no tentative version"]);
    // Confirmed before the boot: it stays, and the replaced version is
    // kept when asked.
    save(&path, r#"{"ip":3}"#, &["--tentative"]);
    ok(["confirm", &path, "--keep-previous"], b"");
    let boot = fsatomic(["check", &path, "--repair"], b"");
    assert_lacks(&boot.text(), "rolled back");
    assert_eq!(load(&path, &[]), ip(3));
    assert_eq!(load(&path, &["--previous"]), ip(1));
    // rollback drops one at once.
    save(&path, r#"{"ip":4}"#, &["--tentative"]);
    ok(["rollback", &path], b"");
    assert_eq!(load(&path, &[]), ip(3));
    assert_eq!(
        dir.entries(),
        ["net.json", "net.json.lock", "net.json.prev"]
    );
}

/// Slots cannot hold a tentative version: refused, nothing changed.
#[test]
fn slots_refuse_a_tentative_version() {
    let dir = Scratch::new("tentative-slots");
    let path = dir.file("c.json");
    save(&path, "1", &["--protocol", "slots"]);
    let refused = fsatomic(["save", &path, "--tentative"], b"2");
    assert_fails(&refused, 1, &["replace protocol", "nothing was changed"]);
    assert_eq!(load(&path, &[]), "1\n");
}

/// `--until` keeps a tentative version through boots before its deadline.
#[test]
fn a_deadline_keeps_a_tentative_version_through_boots_until_it_comes() {
    let dir = Scratch::new("tentative-until");
    let path = dir.file("net.json");
    save(&path, "1", &[]);
    save(&path, "2", &["--tentative", "--until", "1000"]);
    let check = fsatomic(["check", &path, "--json"], b"");
    assert_has(&check.text(), "\"tentative_until\":1000");
    // A boot before the deadline leaves it waiting.
    let boot = fsatomic(["check", &path, "--repair", "--now", "999"], b"");
    assert_lacks(&boot.text(), "rolled back");
    assert_eq!(load(&path, &[]), "2\n");
    // From the deadline on, or without a clock, it goes.
    let boot = fsatomic(["check", &path, "--repair", "--now", "1000"], b"");
    assert_has(&boot.text(), "rolled back");
    assert_eq!(load(&path, &[]), "1\n");
    assert_eq!(dir.entries(), ["net.json", "net.json.lock"]);
    // --until without --tentative, or not a number: usage errors.
    fails(["save", &path, "--until", "5"], b"3", 2, &["--tentative"]);
    let bad = fsatomic(["save", &path, "--tentative", "--until", "soon"], b"3");
    assert_fails(&bad, 2, &["--until", "whole number of seconds"]);
    assert_eq!(load(&path, &[]), "1\n");
}
