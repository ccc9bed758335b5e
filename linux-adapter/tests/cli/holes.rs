//! Holes found in review, one test each: an input or a state that a later
//! change must not reopen.

use crate::support::{Scratch, assert_code, assert_fails, fsatomic};

/// Valid JSON, `levels` arrays deep: `[[[ ... [0] ... ]]]`.
fn nested(levels: usize) -> Vec<u8> {
    let mut doc = vec![b'['; levels];
    doc.push(b'0');
    doc.extend(std::iter::repeat_n(b']', levels));
    doc
}

#[test]
fn json_nested_deeper_than_supported_is_not_reported_corrupt() {
    let dir = Scratch::new("deep");
    let path = dir.file("deep.json");
    let deep = nested(129);
    // Written by another tool.
    dir.write("deep.json", &deep);
    let out = fsatomic(["load", &path], b"");
    assert_fails(
        &out,
        1,
        &[
            &path,
            "JSON nested deeper than 128 levels, which fsatomic does not support",
            "from byte 128",
        ],
    );
    assert!(!out.stderr.contains("corrupt at"), "{}", out.stderr);
    assert_eq!(dir.read("deep.json"), deep, "left untouched");

    // `update` refuses it the same way, before running its command.
    let out = fsatomic(["update", &path, "--", "false"], b"");
    assert_fails(&out, 1, &["nested deeper than 128 levels"]);

    // `save` refuses such input plainly, not as "invalid JSON".
    let other = dir.file("other.json");
    let out = fsatomic(["save", &other], &deep);
    assert_fails(
        &out,
        1,
        &[
            "stdin is refused",
            "nested deeper than 128 levels, which fsatomic does not support",
        ],
    );
    assert!(!out.stderr.contains("not valid JSON"), "{}", out.stderr);

    // 128 levels is fine.
    let out = fsatomic(["save", &other], &nested(128));
    assert_code(&out, 0);
}

#[test]
fn a_leading_zero_is_reported_as_one() {
    let dir = Scratch::new("zero");
    let out = fsatomic(["save", &dir.file("n.json")], b"[1, 01]");
    assert_fails(&out, 1, &["at byte 4", "leading zero"]);
}

#[test]
fn mkdir_follows_a_symbolic_link_to_a_directory_as_a_plain_save_does() {
    let dir = Scratch::new("mkdir-link");
    std::fs::create_dir(dir.join("run")).unwrap();
    // `/var/run` -> `/run`.
    std::os::unix::fs::symlink(dir.join("run"), dir.join("link")).unwrap();
    let plain = dir.file("link/plain.json");
    assert_code(&fsatomic(["save", &plain], b"1"), 0);
    let made = dir.file("link/x.json");
    let out = fsatomic(["save", &made, "--mkdir"], b"2");
    assert_code(&out, 0);
    assert!(out.stderr.is_empty(), "nothing was created: {}", out.stderr);
    assert_eq!(std::fs::read(dir.join("run/x.json")).unwrap(), b"2\n");
    // Through the link, a missing directory is made in its target.
    let deeper = dir.file("link/nos/state/y.json");
    let out = fsatomic(["save", &deeper, "--mkdir"], b"3");
    assert_code(&out, 0);
    assert_eq!(
        std::fs::read(dir.join("run/nos/state/y.json")).unwrap(),
        b"3\n"
    );
    assert!(out.stderr.contains("created directory"), "{}", out.stderr);
    // A dangling link is not made into a directory.
    std::os::unix::fs::symlink(dir.join("gone"), dir.join("dangling")).unwrap();
    let out = fsatomic(["save", &dir.file("dangling/z.json"), "--mkdir"], b"4");
    assert_fails(&out, 1, &["cannot create directory"]);
    assert!(!dir.join("gone").exists());
}
