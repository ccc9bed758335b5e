//! `append`: a journaled array that grows by one record per call — order,
//! concurrency without gaps, compaction, conversion of a plain array, and
//! what a torn or damaged journal does to `load`, `check` and `append`.

use std::collections::BTreeSet;

use fsatomic::Mode;
use fsatomic::journal::{Entry, HEADER_LEN, Journal, RECORD_HEADER_LEN};
use fsatomic_linux::LinuxDir;

use crate::support::{
    Scratch, assert_code, assert_fails, assert_has, assert_lacks, fails, fsatomic, in_parallel, ok,
};

/// The journal of `name` in `dir` as the core reads it: the snapshot's
/// sequence number (if any) and the sequence number of every record after
/// it.
fn sequence(dir: &Scratch, name: &str) -> (Option<u64>, Vec<u64>) {
    let mut d = LinuxDir::open(dir.path()).unwrap();
    let journal = Journal::new(name, Mode::PRIVATE).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    let mut snapshot = None;
    let mut seqs = Vec::new();
    journal
        .replay(&mut d, &mut buf, &mut |entry, _| {
            match entry {
                Entry::Snapshot { seq, .. } => {
                    snapshot = Some(seq);
                    seqs.clear();
                }
                Entry::Record { seq, .. } => seqs.push(seq),
            }
            Ok(())
        })
        .unwrap();
    (snapshot, seqs)
}

/// `fsatomic load PATH`, which must succeed; its lines.
fn load_lines(path: &str) -> Vec<String> {
    ok(["load", path], b"").lines()
}

/// The string elements of a loaded array of strings, in order.
fn strings(path: &str) -> Vec<String> {
    load_lines(path)
        .iter()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| l.starts_with('"'))
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

/// Each append adds one compact record, silently; load prints the array.
#[test]
fn appends_grow_the_array_in_order_one_record_each() {
    let dir = Scratch::new("append");
    let path = dir.file("events.json");
    for value in [&b"1"[..], b" \"two\" ", b"{\"x\": [1, 2]}\n", b"null"] {
        let out = ok(["append", &path], value);
        assert!(out.stdout.is_empty(), "append printed {:?}", out.text());
        assert!(out.stderr.is_empty(), "append printed {:?}", out.stderr);
    }
    assert_eq!(
        ok(["load", &path], b"").text(),
        "[\n  1,\n  \"two\",\n  {\n    \"x\": [\n      1,\n      2\n    ]\n  },\n  null\n]\n"
    );
    // A journal and its lock; no snapshot until the first compaction.
    assert_eq!(dir.entries(), ["events.json.journal", "events.json.lock"]);
    assert_eq!(dir.mode("events.json.journal"), 0o600);
    assert_eq!(sequence(&dir, "events.json"), (None, vec![1, 2, 3, 4]));
    // Records are stored compact: the header, then 20 + payload each.
    let payloads = ["1", "\"two\"", "{\"x\":[1,2]}", "null"];
    let expected: usize = HEADER_LEN
        + payloads
            .iter()
            .map(|p| RECORD_HEADER_LEN + p.len())
            .sum::<usize>();
    assert_eq!(dir.size("events.json.journal"), expected as u64);
}

/// Empty or invalid input, or a missing directory, appends nothing.
#[test]
fn invalid_input_is_refused_and_nothing_is_created() {
    let dir = Scratch::new("append-bad");
    let path = dir.file("events.json");
    for (input, message) in [
        (&b""[..], "stdin is empty"),
        (b"  \n", "only whitespace"),
        (b"[1, 2,]", "not valid JSON at byte 6"),
        (b"1 2", "not valid JSON at byte 2"),
    ] {
        let out = fsatomic(["append", &path], input);
        assert_fails(&out, 1, &[message, "nothing was appended"]);
    }
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    let out = fsatomic(["append", &dir.file("no/such/dir/x.json")], b"1");
    assert_fails(&out, 1, &["does not exist"]);
    ok(["append", &dir.file("made/x.json"), "--mkdir"], b"1");
    assert_eq!(strings(&dir.file("made/x.json")).len(), 0);
    assert_eq!(load_lines(&dir.file("made/x.json")), ["[", "  1", "]"]);
}

/// 400 concurrent appends from 8 processes: all kept, in order, no gaps.
#[test]
fn eight_processes_times_50_appends_lose_nothing_and_leave_no_gaps() {
    const PROCESSES: usize = 8;
    const ROUNDS: usize = 50;
    let dir = Scratch::new("append-race");
    let path = dir.file("log.json");
    in_parallel(PROCESSES, ROUNDS, |w, i| {
        let out = fsatomic(["append", &path], format!("\"w{w}-{i:02}\"").as_bytes());
        assert_eq!(out.code, Some(0), "writer {w}, append {i}: {out:?}");
    });
    let values = strings(&path);
    assert_eq!(values.len(), PROCESSES * ROUNDS, "{values:?}");
    let distinct: BTreeSet<&String> = values.iter().collect();
    assert_eq!(distinct.len(), PROCESSES * ROUNDS, "duplicates: {values:?}");
    // Each writer's values appear in the order it appended them.
    for w in 0..PROCESSES {
        let mine: Vec<&String> = values
            .iter()
            .filter(|v| v.starts_with(&format!("w{w}-")))
            .collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(mine, sorted, "writer {w} out of order");
    }
    // The core sees one record per append, numbered 1..=400 without a gap.
    let (snapshot, seqs) = sequence(&dir, "log.json");
    let first = snapshot.unwrap_or(0) + 1;
    let expected: Vec<u64> = (first..=(PROCESSES * ROUNDS) as u64).collect();
    assert_eq!(seqs, expected);
}

/// Compaction bounds the journal, keeps every value and the mode asked.
#[test]
fn a_growing_journal_is_compacted_into_the_snapshot_and_nothing_is_lost() {
    let dir = Scratch::new("append-compact");
    let path = dir.file("big.json");
    let value = |i: usize| format!("{i:03}-{}", "x".repeat(8000));
    let mut snapshots = Vec::new();
    for i in 0..40 {
        let doc = format!("\"{}\"", value(i));
        ok(["append", &path, "--mode", "0640"], doc.as_bytes());
        let (snapshot, seqs) = sequence(&dir, "big.json");
        // Snapshot and records always cover 1..=i+1 exactly.
        let first = snapshot.unwrap_or(0) + 1;
        assert_eq!(seqs, (first..=i as u64 + 1).collect::<Vec<_>>());
        if snapshots.last() != Some(&snapshot) {
            snapshots.push(snapshot);
        }
        // Compaction keeps the journal near 64 KiB or the snapshot's size.
        let limit = 64 * 1024 + 8100;
        let snapshot_size = if dir.join("big.json").exists() {
            dir.size("big.json")
        } else {
            0
        };
        assert!(
            dir.size("big.json.journal") <= limit.max(snapshot_size + 8100),
            "journal of {} bytes after append {i}",
            dir.size("big.json.journal")
        );
    }
    // Two compactions at least: the first past 64 KiB, then past the
    // snapshot's size.
    assert!(snapshots.len() >= 3, "snapshots seen: {snapshots:?}");
    let values = strings(&path);
    assert_eq!(values, (0..40).map(value).collect::<Vec<_>>());
    assert_eq!(dir.mode("big.json"), 0o640);
    assert_eq!(dir.mode("big.json.journal"), 0o640);
    let out = ok(["check", &path], b"");
    let (snapshot, seqs) = sequence(&dir, "big.json");
    let plural = if seqs.len() == 1 { "" } else { "s" };
    assert_has(
        &out.text(),
        &format!(
            "big.json: ok (journal, {} record{plural} after the snapshot at seq {};",
            seqs.len(),
            snapshot.unwrap()
        ),
    );
}

/// A plain array, foreign or saved, becomes a journal once, mode kept.
#[test]
fn a_plain_array_file_is_converted_once_and_keeps_its_mode() {
    let dir = Scratch::new("append-convert");
    // Written by another program (the old daemon), world-readable.
    dir.write("users.json", b"[\"root\", \"admin\"]\n");
    std::fs::set_permissions(
        dir.join("users.json"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let path = dir.file("users.json");
    let out = ok(["append", &path], b"\"alice\"");
    assert!(
        out.stderr.starts_with("fsatomic: converted ")
            && out.stderr.contains("a plain JSON array of 2 elements"),
        "{}",
        out.stderr
    );
    // The conversion is one commit, of the journal: the plain array stays
    // byte for byte as the journal's snapshot until the first compaction.
    assert_eq!(
        String::from_utf8(dir.read("users.json")).unwrap(),
        "[\"root\", \"admin\"]\n"
    );
    assert_eq!(dir.mode("users.json"), 0o644);
    assert_eq!(dir.mode("users.json.journal"), 0o644);
    // Once: the next append says nothing.
    let out = ok(["append", &path], b"\"bob\"");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert_eq!(strings(&path), ["root", "admin", "alice", "bob"]);
    assert_eq!(sequence(&dir, "users.json"), (Some(0), vec![1, 2]));

    // A file saved by `fsatomic save` converts the same way.
    ok(["save", &dir.file("list.json")], b"[]");
    let out = ok(["append", &dir.file("list.json")], b"7");
    assert_has(&out.stderr, "of 0 elements");
    assert_eq!(load_lines(&dir.file("list.json")), ["[", "  7", "]"]);
}

/// A non-array document, or a corrupt one, is refused and left as it was.
#[test]
fn a_document_that_is_not_an_array_is_refused_and_left_alone() {
    let dir = Scratch::new("append-refuse");
    for (doc, kind) in [
        (&b"{\"a\": 1}"[..], "holds an object, not an array"),
        (b"\"text\"", "holds a string"),
        (b"42", "holds a number"),
        (b"null", "holds null"),
    ] {
        let path = dir.file("doc.json");
        ok(["save", &path], doc);
        let before = dir.read("doc.json");
        let out = fsatomic(["append", &path], b"1");
        assert_fails(&out, 1, &[&path, kind, "append adds to arrays only"]);
        assert_eq!(dir.read("doc.json"), before);
        assert!(!dir.join("doc.json.journal").exists());
    }
    // A corrupt plain file is corrupt, not converted.
    dir.write("torn.json", b"[1, 2");
    let out = fsatomic(["append", &dir.file("torn.json")], b"3");
    assert_fails(&out, 4, &["torn.json is corrupt at byte 5"]);
    assert_eq!(dir.read("torn.json"), b"[1, 2");
}

/// A torn last record: load skips it, check reports it, repair cuts it.
#[test]
fn a_torn_tail_is_ignored_by_load_reported_by_check_and_cut_by_repair() {
    let dir = Scratch::new("append-torn");
    let path = dir.file("hits.json");
    for v in ["1", "2", "3"] {
        ok(["append", &path], v.as_bytes());
    }
    let clean = dir.size("hits.json.journal");
    // A power cut during the fourth append: half a record header.
    dir.append("hits.json.journal", b"\x09\x00\x00\x00\x04\x00garbage");
    let torn = dir.read("hits.json.journal");

    assert_eq!(load_lines(&path), ["[", "  1,", "  2,", "  3", "]"]);
    let text = ok(["check", dir.dir()], b"").text();
    assert_has(
        &text,
        &format!(
            "{path}: ok (journal, 3 records, no snapshot yet; a torn record at byte {clean} of hits.json.journal is ignored"
        ),
    );
    let summary = "; 1 torn journal record (check --repair cuts it)\n";
    assert!(text.ends_with(summary), "{text}");
    assert_eq!(
        dir.read("hits.json.journal"),
        torn,
        "readers change nothing"
    );

    let text = ok(["check", &path, "--repair"], b"").text();
    let cut = format!("{path}: cut the torn record at byte {clean} off hits.json.journal\n");
    assert_has(&text, &cut);
    assert!(text.ends_with(", 1 cut\n"), "{text}");
    assert_eq!(dir.size("hits.json.journal"), clean);
    assert_lacks(&ok(["check", &path, "--repair"], b"").text(), "torn record");

    // An append after a torn tail cuts it itself and continues the sequence.
    dir.append("hits.json.journal", &[0u8; 40]);
    ok(["append", &path], b"4");
    assert_eq!(sequence(&dir, "hits.json"), (None, vec![1, 2, 3, 4]));
    assert_eq!(load_lines(&path).len(), 6);
}

/// A bit flipped mid-journal is corrupt (exit 4) for every command.
#[test]
fn a_damaged_record_in_the_middle_is_corrupt_with_the_file_and_offset() {
    let dir = Scratch::new("append-crc");
    let path = dir.file("snapdb.json");
    for v in ["\"first\"", "\"second\"", "\"third\""] {
        ok(["append", &path], v.as_bytes());
    }
    let mut bytes = dir.read("snapdb.json.journal");
    let second = HEADER_LEN + RECORD_HEADER_LEN + "\"first\"".len();
    bytes[second + RECORD_HEADER_LEN + 2] ^= 0x01; // one bit in the payload
    dir.write("snapdb.json.journal", &bytes);
    let journal = dir.file("snapdb.json.journal");

    let corrupt = format!("{journal} is corrupt at byte {second}");
    let mismatch = format!("{corrupt}: checksum mismatch");
    let out = fails(["load", &path], b"", 4, &[&mismatch, "left untouched"]);
    assert!(out.stdout.is_empty());
    let out = fsatomic(["check", &path], b"");
    assert_code(&out, 4);
    assert_has(
        &out.text(),
        &format!("{path}: corrupt at byte {second}: checksum mismatch (journal: {journal})\n"),
    );
    // Neither append nor repair touches it.
    fails(["append", &path], b"\"fourth\"", 4, &[&corrupt]);
    let out = fsatomic(["check", &path, "--repair"], b"");
    assert_code(&out, 4);
    assert_eq!(dir.read("snapdb.json.journal"), bytes);
}
