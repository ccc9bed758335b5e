//! `demo`: the seven NAS stores committed for real, with the flushes of
//! each store's last commit measured, and modes read back from the files.

use crate::support::{Out, Run, Scratch, assert_code, assert_has, assert_lacks, fsatomic, ok};

/// The expected rows: file (relative to the demo's directory), protocol,
/// mode, flushes per commit.
const ROWS: [(&str, &str, &str, &str); 7] = [
    ("etc/nos/users.json", "replace", "0600", "2"),
    ("var/lib/nos/state/firstboot.json", "replace", "0600", "2"),
    ("var/lib/nos/sessions.json", "journal", "0600", "1"),
    ("var/lib/nos/ratelimit.json", "journal", "0600", "1"),
    ("var/lib/nos/snapshots/index.json", "replace", "0644", "2"),
    ("var/lib/nos/snapshots/snapdb.json", "journal", "0644", "1"),
    ("var/lib/nos/shares.json", "replace", "0600", "2"),
];

/// The table row of `file`: (protocol, mode, flushes, last value).
fn row(out: &Out, file: &str) -> (String, String, String, String) {
    let text = out.text();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == file))
        .unwrap_or_else(|| panic!("no row for {file}:\n{text}"));
    let after = line.split_once(file).unwrap().1;
    let words: Vec<&str> = after.split_whitespace().collect();
    (
        words[0].to_string(),
        words[1].to_string(),
        words[2].to_string(),
        words[3..].join(" "),
    )
}

/// `fsatomic demo DIR`, which must succeed.
fn demo(dir: &Scratch) -> Out {
    let out = Run::new(["demo", dir.dir()])
        .env_remove("NOS_SHARES_PATH")
        .run();
    assert_code(&out, 0);
    out
}

/// The demo commits every store with its protocol, mode and flush count.
#[test]
fn demo_commits_to_all_seven_stores_and_measures_their_flushes() {
    let dir = Scratch::new("demo");
    let out = demo(&dir);
    let text = out.text();
    assert_has(&text, "filesystem: ");
    assert_has(&text, &format!("check {}/var/lib/nos", dir.dir()));
    for (file, protocol, mode, flushes) in ROWS {
        let (p, m, f, _) = row(&out, file);
        assert_eq!(
            (p.as_str(), m.as_str(), f.as_str()),
            (protocol, mode, flushes),
            "{file}:\n{text}"
        );
        // The mode is the file's own: the journal file for a journal.
        let data = if protocol == "journal" {
            format!("{file}.journal")
        } else {
            file.to_string()
        };
        assert_eq!(format!("{:04o}", dir.mode(&data)), mode, "{data}");
    }
    // Commit-confirmed, for real: one tentative change rolled back by the
    // simulated reboot, one confirmed and kept.
    for line in [
        "save --tentative 10.0.0.99: current 10.0.0.99, previous 10.0.0.2",
        "reboot, never confirmed: rolled back -> current 10.0.0.2",
        "save --tentative 10.0.0.3, confirm, reboot: kept -> current 10.0.0.3, previous 10.0.0.2",
    ] {
        assert_has(&text, line);
    }
    assert_eq!(
        dir.read("etc/nos/network.json"),
        b"{\n  \"address\": \"10.0.0.3\"\n}\n"
    );
    assert_last_values(
        &out,
        &[
            "etc/nos/users.json: 2 users (admin, alice)",
            "var/lib/nos/state/firstboot.json: completed at 1700000120",
            "var/lib/nos/sessions.json: 2 live sessions",
            "var/lib/nos/ratelimit.json: 10 hits on login:10.0.0.7",
            "var/lib/nos/snapshots/index.json: 1.2.0 installed",
            "var/lib/nos/snapshots/snapdb.json: 3 transactions, latest tx-0003",
            "var/lib/nos/shares.json: media -> /srv/media (smb)",
        ],
    );

    // What it wrote, the command reads: check finds every state ok, and
    // load prints the snapshot database's records.
    for sub in [
        "etc/nos",
        "var/lib/nos",
        "var/lib/nos/snapshots",
        "var/lib/nos/state",
    ] {
        assert_lacks(&ok(["check", &dir.file(sub)], b"").text(), ": corrupt");
    }
    let out = fsatomic(["check", &dir.file("var/lib/nos")], b"");
    assert_has(
        &out.text(),
        "ratelimit.json: ok (journal, 10 records, no snapshot yet; 1 flush per append; the previous version is the state before the last append)",
    );
    let snapdb = dir.file("var/lib/nos/snapshots/snapdb.json");
    let out = ok(["load", &snapdb], b"");
    assert_eq!(out.text().matches("\"tx\": \"tx-").count(), 3);

    // Again: documents stay as they are, journals keep appending.
    let out = demo(&dir);
    assert_last_values(
        &out,
        &[
            "etc/nos/users.json: 2 users (admin, alice)",
            "var/lib/nos/state/firstboot.json: completed at 1700000120",
            "var/lib/nos/ratelimit.json: 20 hits on login:10.0.0.7",
            "var/lib/nos/snapshots/snapdb.json: 6 transactions, latest tx-0006",
        ],
    );
    for (file, _, _, flushes) in ROWS {
        assert_eq!(row(&out, file).2, flushes, "{file}");
    }
}

/// Without a directory the demo uses ./nas-state, and honours NOS_SHARES_PATH.
#[test]
fn demo_defaults_to_nas_state_and_follows_nos_shares_path() {
    let dir = Scratch::new("demo-default");
    let out = Run::new(["demo"])
        .cwd(dir.path())
        .env("NOS_SHARES_PATH", "srv/shares.json")
        .run();
    assert_code(&out, 0);
    assert_has(&out.text(), "under ./nas-state");
    assert!(dir.join("nas-state/etc/nos/users.json").exists());
    assert!(dir.join("nas-state/srv/shares.json").exists());
    assert!(!dir.join("nas-state/var/lib/nos/shares.json").exists());
    assert_eq!(row(&out, "srv/shares.json").0, "replace");
    assert_code(&fsatomic(["demo", "a", "b"], b""), 2);
}

/// Assert each `"FILE: VALUE"`: VALUE is the last column of FILE's row.
#[track_caller]
fn assert_last_values(out: &Out, rows: &[&str]) {
    for file_value in rows {
        let (file, value) = file_value.split_once(": ").unwrap();
        assert_eq!(row(out, file).3, value, "{file}");
    }
}
