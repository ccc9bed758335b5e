//! `--owner`, `--group`, `--preserve`: a root script keeps a service's
//! files the service's; nobody else may give files away.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{Run, Scratch, assert_code, assert_fails, fsatomic, ok};

/// `nobody`, the second user of these tests.
const OTHER: u32 = 65534;

/// Whether the tests run as root; if not, says that the checks are skipped.
fn is_root() -> bool {
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if me != 0 {
        println!("not root: owner checks skipped");
    }
    me == 0
}

/// The owner, group and permission bits of `name`.
fn owned(dir: &Scratch, name: &str) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(dir.join(name)).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// `--owner` and `--group` (ids or names) apply to the state's every file.
#[test]
fn owner_and_group_are_given_to_every_file_of_the_state() {
    if !is_root() {
        return;
    }
    let dir = Scratch::new("owner");
    let doc = dir.file("state.json");
    let save = [
        "save", &doc, "--owner", "65534", "--group", "nogroup", "--mode", "0640",
    ];
    ok(save, b"{\"a\": 1}");
    let nogroup = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("nogroup:x:")?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(OTHER);
    assert_eq!(owned(&dir, "state.json"), (OTHER, nogroup, 0o640));
    assert_eq!(owned(&dir, "state.json.lock").0, OTHER, "the lock file");
    // By name, through update and append (a journal and its lock).
    let echo = "echo '{\"a\": 2}'";
    let update = ["update", &doc, "--owner", "nobody", "--", "sh", "-c", echo];
    ok(update, b"");
    assert_eq!(owned(&dir, "state.json").0, OTHER);
    let log = dir.file("log.json");
    ok(["append", &log, "--owner", "nobody"], b"1");
    ok(["append", &log, "--owner", "nobody"], b"2");
    assert_eq!(owned(&dir, "log.json.journal").0, OTHER);
    assert_eq!(ok(["load", &log], b"").text(), "[\n  1,\n  2\n]\n");
    // Unknown names are usage errors, before anything is touched.
    for (option, name, message) in [
        ("--owner", "no-such-user-here", "no such user"),
        ("--group", "no-such-group-here", "no such group"),
    ] {
        let out = fsatomic(["save", &doc, option, name], b"{}");
        assert_fails(&out, 2, &[message]);
    }
}

/// `--preserve` keeps owner, group and mode, minus set-id bits.
#[test]
fn preserve_keeps_owner_group_and_mode_but_never_set_id_bits() {
    if !is_root() {
        return;
    }
    let dir = Scratch::new("preserve");
    let doc = dir.file("net.json");
    ok(["save", &doc], b"{\"v\": 1}");
    std::os::unix::fs::chown(dir.join("net.json"), Some(OTHER), Some(100)).unwrap();
    std::fs::set_permissions(
        dir.join("net.json"),
        std::fs::Permissions::from_mode(0o6644),
    )
    .unwrap();
    // Without --preserve, root's save makes the file root's, 0600.
    ok(["save", &doc, "--preserve"], b"{\"v\": 2}");
    assert_eq!(owned(&dir, "net.json"), (OTHER, 100, 0o644));
    ok(["save", &doc], b"{\"v\": 3}");
    assert_eq!(owned(&dir, "net.json"), (0, 0, 0o600));
    // A new file under --preserve gets --mode, and the caller's ids.
    let fresh = dir.file("fresh.json");
    ok(["save", &fresh, "--preserve", "--mode", "0640"], b"1");
    assert_eq!(owned(&dir, "fresh.json"), (0, 0, 0o640));
    // An explicit --group wins over the preserved one.
    std::os::unix::fs::chown(dir.join("net.json"), Some(OTHER), Some(OTHER)).unwrap();
    ok(["save", &doc, "--preserve", "--group", "0"], b"{\"v\": 4}");
    assert_eq!(owned(&dir, "net.json"), (OTHER, 0, 0o600));
}

/// Only root may give files away; a user may name their own uid.
#[test]
fn a_user_may_not_give_files_to_another() {
    if !is_root() {
        return;
    }
    let dir = Scratch::new("notroot");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let doc = dir.file("mine.json");
    let out = Run::new(["save", &doc, "--owner", "0"])
        .user(OTHER)
        .stdin(b"{}")
        .run();
    assert_fails(
        &out,
        1,
        &[
            "only root can give files to another user",
            "nothing was written",
        ],
    );
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    // Their own uid is fine.
    let out = Run::new(["save", &doc, "--owner", &OTHER.to_string()])
        .user(OTHER)
        .stdin(b"{}")
        .run();
    assert_code(&out, 0);
    assert_eq!(owned(&dir, "mine.json").0, OTHER);
}
