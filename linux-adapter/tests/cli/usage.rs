//! `--help`, `--version`, and usage errors (exit 2).

use crate::support::{Scratch, assert_fails, assert_has, fsatomic, ok};

const COMMANDS: [&str; 5] = ["save", "load", "update", "lock", "check"];

/// Every form of help prints the right usage on stdout, exit 0.
#[test]
fn help_for_the_tool_and_each_command_goes_to_stdout_with_exit_0() {
    for args in [vec!["--help"], vec!["-h"], vec!["help"]] {
        let text = ok(&args, b"").text();
        assert_has(&text, "Usage:");
        for command in COMMANDS {
            assert_has(&text, &format!("fsatomic {command} "));
        }
        assert_has(&text, "Exit codes:");
    }
    for command in COMMANDS {
        for args in [
            vec![command, "--help"],
            vec![command, "-h"],
            vec!["help", command],
            // Help wins over everything else on the line.
            vec![command, "/nonexistent/dir/x.json", "--help"],
        ] {
            let out = ok(&args, b"");
            assert!(
                out.text().starts_with(&format!("fsatomic {command} ")),
                "{args:?}: {}",
                out.text()
            );
        }
    }
}

/// Every form of version prints the crate version.
#[test]
fn version_prints_the_crate_version() {
    for flag in ["--version", "-V", "version"] {
        let version = format!("fsatomic {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(ok([flag], b"").text(), version, "{flag}");
    }
}

/// Usage errors exit 2, point to --help, print and create nothing.
#[test]
fn usage_errors_exit_2_and_point_to_the_help() {
    let dir = Scratch::new("usage");
    let f = dir.file("f.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "missing command"),
        (vec!["frobnicate"], "unknown command \"frobnicate\""),
        (vec!["--bogus"], "unknown command"),
        (vec!["help", "frobnicate"], "no help"),
        (vec!["save"], "missing PATH"),
        (vec!["save", &f, &f], "unexpected argument"),
        (vec!["save", &f, "--bogus"], "unknown option \"--bogus\""),
        (vec!["save", &f, "--mode"], "--mode needs a value"),
        (vec!["save", &f, "--mode", "0999"], "not an octal file mode"),
        (
            vec!["save", &f, "--mode", "17777"],
            "not an octal file mode",
        ),
        (
            vec!["save", &f, "--mode", "rw-r--r--"],
            "not an octal file mode",
        ),
        (vec!["save", &f, "--mkdir", "--mkdir"], "given twice"),
        (vec!["save", &f, "--mkdir=yes"], "takes no value"),
        (vec!["load", &f, "--mode", "0644"], "unknown option"),
        (vec!["update", &f], "missing the command"),
        (
            vec!["update", &f, "--init", "{x}", "--", "true"],
            "--init is not valid JSON at byte 1",
        ),
        (vec!["check"], "missing PATH"),
    ];
    for (args, message) in cases {
        let out = fsatomic(&args, b"{}");
        assert_fails(&out, 2, &[message, "--help'"]);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}
