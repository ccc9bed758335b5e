//! `save` and `load`: round trips, indentation, modes, absent and corrupt
//! files, refused input, directories.

use crate::support::{BIN, Run, Scratch, assert_code, assert_fails, fsatomic, ok};

/// Save writes indented JSON with a newline, silently; load reads it back.
#[test]
fn round_trips_objects_arrays_and_scalars_indented_with_a_trailing_newline() {
    let dir = Scratch::new("roundtrip");
    let path = dir.file("doc.json");
    let cases: &[(&[u8], &[u8])] = &[
        (
            br#"{"users":[{"name":"root","uid":0}],"setup":true,"tags":[]}"#,
            b"{\n  \"users\": [\n    {\n      \"name\": \"root\",\n      \"uid\": 0\n    }\n  ],\n  \"setup\": true,\n  \"tags\": []\n}\n",
        ),
        (b" [1, \"two\", null, {}] \n", b"[\n  1,\n  \"two\",\n  null,\n  {}\n]\n"),
        (b"\"h\\u00e9llo \xc3\xa9\"", b"\"h\\u00e9llo \xc3\xa9\"\n"),
        (b"-12.5e3", b"-12.5e3\n"),
        (b"true\n", b"true\n"),
        (b"null", b"null\n"),
    ];
    for (input, indented) in cases {
        let saved = ok(["save", &path], input);
        assert!(saved.stdout.is_empty(), "save printed {:?}", saved.text());
        assert!(saved.stderr.is_empty(), "save printed {:?}", saved.stderr);
        assert_eq!(&dir.read("doc.json"), indented, "on disk");
        assert_eq!(&ok(["load", &path], b"").stdout, indented, "loaded");
    }
    // Only the document and its lock file: no temporary file left over.
    assert_eq!(dir.entries(), ["doc.json", "doc.json.lock"]);
}

/// Load prints valid JSON in another layout exactly as it is on disk.
#[test]
fn load_prints_exactly_the_bytes_on_disk() {
    let dir = Scratch::new("exact");
    // Valid JSON in a layout fsatomic would not write: printed as is.
    dir.write("hand.json", b"{\"a\":1,   \"b\" : [ ]}");
    let out = ok(["load", &dir.file("hand.json")], b"");
    assert_eq!(out.stdout, b"{\"a\":1,   \"b\" : [ ]}");
}

/// Relative paths work; messages name the full path.
#[test]
fn relative_paths_work_and_messages_name_the_full_path() {
    let dir = Scratch::new("relative");
    let out = Run::new(["save", "state.json"])
        .stdin("[1]")
        .cwd(dir.path())
        .run();
    assert_code(&out, 0);
    assert_eq!(dir.read("state.json"), b"[\n  1\n]\n");
    let out = Run::new(["load", "missing.json"]).cwd(dir.path()).run();
    assert_fails(&out, 3, &[&dir.file("missing.json")]);
}

/// The mode is 0600 by default, else exactly `--mode`, whatever the umask.
#[test]
fn mode_is_0600_by_default_and_exactly_as_asked_whatever_the_umask() {
    let dir = Scratch::new("mode");
    // A permissive umask does not widen the default; a strict one does not
    // narrow an explicit mode; a replacing save gives the mode asked now.
    for (umask, name, options, stdin, mode) in [
        ("000", "secret.json", &[][..], "{}", 0o600),
        ("077", "index.json", &["--mode", "0644"], "[]", 0o644),
        ("077", "group.json", &["--mode=640"], "[]", 0o640),
        ("077", "secret.json", &["--mode", "0644"], "1", 0o644),
    ] {
        let path = dir.file(name);
        let args = [&["save", path.as_str()][..], options].concat();
        assert_code(&Run::with_umask(umask, args).stdin(stdin).run(), 0);
        assert_eq!(dir.mode(name), mode, "{name} under umask {umask}");
    }
    ok(["save", &dir.file("secret.json")], b"2");
    assert_eq!(dir.mode("secret.json"), 0o600);
}

/// Load of an absent file exits 3; of a missing directory, 1.
#[test]
fn load_of_an_absent_file_exits_3() {
    let dir = Scratch::new("absent");
    let out = fsatomic(["load", &dir.file("nothing.json")], b"");
    assert_fails(&out, 3, &[&dir.file("nothing.json"), "does not exist"]);
    assert!(out.stdout.is_empty());
    assert!(dir.entries().is_empty(), "load created {:?}", dir.entries());
    let out = fsatomic(["load", &dir.file("unmounted/users.json")], b"");
    assert_fails(&out, 1, &[&dir.file("unmounted"), "does not exist"]);
}

/// Corrupt files exit 4 with the offset; load changes and removes nothing.
#[test]
fn corrupt_files_exit_4_with_the_offset_and_stay_untouched() {
    let dir = Scratch::new("corrupt");
    let orphan = ".state.json.0123456789abcdef.tmp";
    let cases: &[(&[u8], &str)] = &[
        (b"", "at byte 0: the file is empty"),
        (b"{\"a\": [1, 2", "at byte 11: invalid JSON: unexpected end"),
        (b"[1, 2, oops]", "at byte 7: invalid JSON"),
        (b"\x00\xff\xfe garbage", "at byte 0: invalid JSON"),
        (
            b"{\"a\": 1} {\"b\": 2}",
            "at byte 9: invalid JSON: data after the end",
        ),
    ];
    for (content, message) in cases {
        dir.write("state.json", content);
        dir.write(orphan, b"half a commit");
        let out = fsatomic(["load", &dir.file("state.json")], b"");
        assert_fails(
            &out,
            4,
            &[
                &dir.file("state.json"),
                message,
                "left untouched",
                "restore it from backup",
            ],
        );
        assert!(out.stdout.is_empty());
        assert_eq!(&dir.read("state.json"), content, "the file changed");
        // A reader deletes nothing and takes no lock.
        assert_eq!(dir.entries(), [orphan, "state.json"]);
    }
}

/// Invalid or empty input is refused (exit 1); nothing on disk changes.
#[test]
fn invalid_or_empty_stdin_is_refused_and_nothing_on_disk_changes() {
    let dir = Scratch::new("badinput");
    let path = dir.file("users.json");
    ok(["save", &path], b"{\"users\": []}");
    let before = dir.contents();
    for (input, needles) in [
        (
            &b"{\"users\": [1, 2,]}"[..],
            &[
                "stdin is not valid JSON at byte 16",
                &path,
                "left untouched",
            ][..],
        ),
        (b"", &["stdin is empty", &path]),
        (b" \n\t ", &["only whitespace", &path]),
        (b"[1] [2]", &["at byte 4"]),
    ] {
        assert_fails(&fsatomic(["save", &path], input), 1, needles);
    }
    assert_eq!(dir.contents(), before);

    // Not even a directory is made for input that is refused.
    let out = fsatomic(["save", &dir.file("new/users.json"), "--mkdir"], b"{");
    assert_fails(&out, 1, &["not valid JSON at byte 1"]);
    assert!(!dir.join("new").exists());
}

/// A missing directory fails unless `--mkdir`, which reports what it made.
#[test]
fn a_missing_directory_is_an_error_unless_mkdir_which_reports_what_it_made() {
    let dir = Scratch::new("mkdir");
    let path = dir.file("var/lib/nos/state.json");
    let out = fsatomic(["save", &path], b"1");
    assert_fails(
        &out,
        1,
        &[&dir.file("var/lib/nos"), "does not exist", "--mkdir"],
    );
    assert!(dir.entries().is_empty());

    let out = Run::with_umask("077", ["save", &path, "--mkdir"])
        .stdin("1")
        .run();
    assert_code(&out, 0);
    let made: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        made,
        [
            format!("fsatomic: created directory {}", dir.file("var")),
            format!("fsatomic: created directory {}", dir.file("var/lib")),
            format!("fsatomic: created directory {}", dir.file("var/lib/nos")),
        ]
    );
    for d in ["var", "var/lib", "var/lib/nos"] {
        assert_eq!(dir.mode(d), 0o755, "{d}");
    }
    assert_eq!(dir.read("var/lib/nos/state.json"), b"1\n");
    // Existing directories are not reported again.
    let out = ok(["save", &path, "--mkdir"], b"2");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}

/// Save removes its own name's orphans, and no other file.
#[test]
fn save_sweeps_its_own_orphans_and_nothing_else() {
    let dir = Scratch::new("sweep");
    let keep = [
        ".other.json.0123456789abcdef.tmp", // another name's orphan
        ".state.json.0123456789ABCDEF.tmp", // not the exact pattern
        ".state.json.tmp",
        "notes.tmp",
        ".x.tmp",
    ];
    for name in keep {
        dir.write(name, b"x");
    }
    dir.write(".state.json.00000000deadbeef.tmp", b"{\"torn");
    dir.write(".state.json.ffffffffffffffff.tmp", b"");
    ok(["save", &dir.file("state.json")], b"{}");
    let mut expected: Vec<&str> = keep.to_vec();
    expected.extend(["state.json", "state.json.lock"]);
    expected.sort();
    assert_eq!(dir.entries(), expected);
}

/// Refused file names are usage errors for every command; nothing is made.
#[test]
fn refused_names_exit_2_and_touch_nothing() {
    let dir = Scratch::new("names");
    let long = "x".repeat(129);
    let bad = [
        format!("{}/..", dir.path().display()),
        format!("{}/.", dir.path().display()),
        format!("{}/", dir.path().display()),
        format!("{}/a\nb", dir.path().display()),
        format!("{}/a\u{7f}b", dir.path().display()),
        format!("{}/.x.0123456789abcdef.tmp", dir.path().display()),
        format!("{}/{long}", dir.path().display()),
    ];
    for path in &bad {
        for args in [
            vec!["save", path.as_str()],
            vec!["load", path.as_str()],
            vec!["update", path.as_str(), "--", "true"],
            vec!["lock", path.as_str(), "--", "true"],
        ] {
            let out = fsatomic(&args, b"{}");
            assert_fails(&out, 2, &["refused file name"]);
        }
    }
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

/// Multi-megabyte documents round-trip; a reader leaving early is fine.
#[test]
fn documents_are_limited_only_by_memory() {
    let dir = Scratch::new("large");
    let path = dir.file("big.json");
    // About 2 MB compact, more once indented: far beyond any fixed buffer.
    let items: Vec<String> = (0..200_000).map(|i| format!("{{\"i\":{i}}}")).collect();
    let input = format!("[{}]", items.join(","));
    ok(["save", &path], input.as_bytes());
    let on_disk = dir.read("big.json");
    assert!(on_disk.len() > input.len());
    assert!(on_disk.starts_with(b"[\n  {\n    \"i\": 0\n  },\n  {\n    \"i\": 1\n  },"));
    assert_eq!(ok(["load", &path], b"").stdout, on_disk);
    // A reader that goes away early gets no complaint on stderr.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} load '{path}' | head -c 1 >/dev/null",
            fsatomic_testkit::runner::shell_words(BIN)
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
}
