//! Durability: the flush barriers of a commit, failed flushes, and corrupt
//! files.

use std::fs;

use fsatomic::fs::Op;
use fsatomic::json::JsonErrorKind::{TrailingData, UnexpectedByte, UnexpectedEnd};
use fsatomic::{
    CommitError, Corrupt, CorruptKind, LoadError, Mode, Store, StoreError, replace, slots,
};

use super::{
    Adapter, BUF, Counter, Fixture, Hit, append_hit, bump, encoded, hits_journal, plant_file,
    save_at, set,
};
use crate::wrap::{Call, Counting, Event, FaultPoint, Faulty};

/// This area's checks, in order: [`conformance_tests!`](crate::conformance_tests)
/// makes one test of each. A check not listed here never runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_durability {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)* [
            commit_has_two_flushes_in_order,
            eio_on_file_flush_fails_the_commit_and_keeps_the_old_content,
            eio_on_directory_flush_is_reported_as_such,
            eio_before_the_rename_keeps_the_old_content,
            failed_commit_releases_the_lock,
            eio_on_slot_flush_spares_the_last_acknowledged_slot,
            eio_on_journal_flush_cuts_the_failed_records,
            empty_file_is_corrupt_and_left_alone,
            truncated_file_is_corrupt_at_its_end_and_left_alone,
            garbage_file_is_corrupt_where_it_breaks_and_left_alone,
        ] }
    };
}

/// Check that `events` hold exactly one Replace commit of `name` with the
/// two barriers in order:
///
/// 1. an exclusive create of a temporary `.NAME.<token>.tmp`,
/// 2. writes to it, and nothing else touches it,
/// 3. one file flush of it (the first barrier),
/// 4. one rename of it over `name` — `name` itself is never removed,
///    opened for writing or created (never delete-then-rename),
/// 5. one directory flush (the second barrier),
///
/// and no other flush anywhere in the sequence.
pub fn check_commit_sequence(events: &[Event], name: &str) -> Result<(), String> {
    let show = || {
        events
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fail = |what: &str| Err(format!("{what}; sequence: [{}]", show()));
    let flushes: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].call.is_flush())
        .collect();
    if flushes.len() != 2 {
        return fail(&format!("{} flush barriers, not 2", flushes.len()));
    }
    let creates: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].call == Call::Create && events[i].ok)
        .collect();
    let [create] = creates[..] else {
        return fail("not exactly one successful create");
    };
    let temp = events[create].name.as_str();
    if fsatomic::name::temp_target(temp) != Some(name) {
        return fail(&format!("created {temp}, not a temporary name of {name}"));
    }
    let (file_flush, dir_flush) = (flushes[0], flushes[1]);
    if !events[file_flush].call.is_file_flush() || events[file_flush].name != temp {
        return fail("the first barrier is not a flush of the temporary file");
    }
    if events[dir_flush].call != Call::SyncDir {
        return fail("the second barrier is not a directory flush");
    }
    let renames: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].call == Call::Rename)
        .collect();
    let [rename] = renames[..] else {
        return fail("not exactly one rename");
    };
    if events[rename].name != temp || events[rename].to.as_deref() != Some(name) {
        return fail("the rename is not temporary file -> target");
    }
    if !(create < file_flush && file_flush < rename && rename < dir_flush) {
        return fail("out of order: want create < file flush < rename < directory flush");
    }
    if !events.iter().all(|e| e.ok) {
        return fail("a call failed");
    }
    for (i, e) in events.iter().enumerate() {
        if e.name == temp && e.call == Call::Write && !(create < i && i < file_flush) {
            return fail("a write to the temporary file outside create..flush");
        }
        if e.name == name && matches!(e.call, Call::Remove | Call::OpenWrite | Call::Create) {
            return fail(&format!("the target was touched directly ({e})"));
        }
    }
    Ok(())
}

/// A Replace commit — of a new file, over an existing one, and through
/// `Store::save` with its lock and orphan sweep — makes exactly two flush
/// barriers: the temporary file's before the rename, the directory's after.
pub fn commit_has_two_flushes_in_order<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    replace::commit(&mut dir, "doc.json", b"{\"v\": 1}\n", Mode::PRIVATE).expect("commit");
    println!("{} new file: {:?}", A::NAME, log.summary());
    check_commit_sequence(&log.events(), "doc.json").unwrap_or_else(|e| panic!("{e}"));
    log.clear();
    replace::commit(&mut dir, "doc.json", b"{\"v\": 2}\n", Mode::PRIVATE).expect("commit");
    println!("{} replace: {:?}", A::NAME, log.summary());
    check_commit_sequence(&log.events(), "doc.json").unwrap_or_else(|e| panic!("{e}"));
    log.clear();
    let store: Store<Counter> = Store::new("counter.json", Mode::PRIVATE);
    save_at(&store, &mut dir, 1);
    log.clear();
    bump(&store, &mut dir);
    println!("{} Store::update: {:?}", A::NAME, log.summary());
    let events = log.events();
    check_commit_sequence(&events, "counter.json").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.first().map(|e| e.call), Some(Call::Lock));
    assert_eq!(events.last().map(|e| e.call), Some(Call::Unlock));
    assert_eq!(log.count(Call::is_flush), 2);
}

fn old_content<A: Adapter>(fx: &Fixture) -> Vec<u8> {
    let old = encoded(&Counter::at(1));
    replace::commit(&mut fx.open::<A>(), "doc.json", &old, Mode::PRIVATE).expect("first commit");
    old
}

fn io_error_of(err: &CommitError<std::io::Error>) -> (Op, Option<i32>) {
    match err {
        CommitError::Io(e) => (e.op, e.source.raw_os_error()),
        other => panic!("not an I/O error: {other:?}"),
    }
}

/// An `EIO` from the file flush fails the commit with that error; the
/// flush is not retried, nothing is renamed, the old content stays, and the
/// temporary file is removed.
pub fn eio_on_file_flush_fails_the_commit_and_keeps_the_old_content<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let old = old_content::<A>(&fx);
    let before = fx.snap("doc.json");
    let mut dir = Counting::new(Faulty::eio(fx.open::<A>(), FaultPoint::SyncFile, 1));
    let log = dir.log();
    let new = encoded(&Counter::at(2));
    let err = replace::commit(&mut dir, "doc.json", &new, Mode::PRIVATE).unwrap_err();
    assert_eq!(io_error_of(&err), (Op::SyncFile, Some(5)), "{err}");
    assert_eq!(log.count(Call::is_flush), 1, "retried: {:?}", log.summary());
    assert_eq!(log.count(|c| c == Call::Rename), 0);
    assert_eq!(fx.snap("doc.json"), before);
    assert_eq!(fx.read("doc.json"), old);
    assert!(
        fx.temp_names().is_empty(),
        "temp left: {:?}",
        fx.temp_names()
    );
}

/// An `EIO` from the directory flush is reported as a directory-flush
/// error (the new content is in place but not known durable).
pub fn eio_on_directory_flush_is_reported_as_such<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    old_content::<A>(&fx);
    let mut dir = Faulty::eio(fx.open::<A>(), FaultPoint::SyncDir, 1);
    let new = encoded(&Counter::at(2));
    let err = replace::commit(&mut dir, "doc.json", &new, Mode::PRIVATE).unwrap_err();
    assert_eq!(io_error_of(&err), (Op::SyncDir, Some(5)), "{err}");
    assert!(dir.fired());
    assert_eq!(fx.read("doc.json"), new);
    assert_eq!(fx.mode("doc.json"), 0o600);
    assert!(fx.temp_names().is_empty());
}

/// An error at any step before the rename — create, write, rename itself —
/// fails the commit with that step's error and leaves the old content and
/// no temporary file.
pub fn eio_before_the_rename_keeps_the_old_content<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let old = old_content::<A>(&fx);
    let new = encoded(&Counter::at(2));
    for (point, op) in [
        (FaultPoint::Create, Op::Create),
        (FaultPoint::Write, Op::Write),
        (FaultPoint::Rename, Op::Rename),
    ] {
        let before = fx.snap("doc.json");
        let mut dir = Faulty::eio(fx.open::<A>(), point, 1);
        let err = replace::commit(&mut dir, "doc.json", &new, Mode::PRIVATE).unwrap_err();
        assert_eq!(io_error_of(&err), (op, Some(5)), "{point:?}: {err}");
        assert_eq!(fx.snap("doc.json"), before, "{point:?}");
        assert_eq!(fx.read("doc.json"), old);
        assert!(
            fx.temp_names().is_empty(),
            "{point:?}: {:?}",
            fx.temp_names()
        );
    }
}

/// A `Store` commit that fails releases the writers' lock: the next writer
/// (another handle) gets it and succeeds.
pub fn failed_commit_releases_the_lock<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let store: Store<Counter> = Store::new("doc.json", Mode::PRIVATE);
    let mut buf = [0u8; BUF];
    let mut dir = Faulty::eio(fx.open::<A>(), FaultPoint::SyncFile, 1);
    let err = store.update(&mut dir, &mut buf, Counter::bump).unwrap_err();
    assert!(
        matches!(&err, StoreError::Commit(CommitError::Io(e)) if e.op == Op::SyncFile),
        "{err:?}"
    );
    assert!(!fx.path("doc.json").exists());
    let probe = fs::File::open(fx.path("doc.json.lock")).expect("lock file");
    probe.try_lock().expect("the failed writer kept the lock");
    drop(probe);
    let hits = bump(&store, &mut fx.open::<A>());
    assert_eq!(hits, 1);
}

/// An `EIO` from the slot flush fails a Slots commit. The failed document
/// may sit whole in the page cache without being on disk (the kernel may
/// have marked its pages clean), so it must not be what a reader finds
/// next, and the next commit must rewrite the slot that failed — never the
/// other one, the only copy of the last acknowledged document known to be
/// on disk.
pub fn eio_on_slot_flush_spares_the_last_acknowledged_slot<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let doc = |n| encoded(&Counter::at(n));
    fn commit<D: fsatomic::Dir>(dir: &mut D, n: u64) -> Result<(), CommitError<D::Error>> {
        slots::commit(
            dir,
            "doc.json",
            &encoded(&Counter::at(n)),
            Mode::PRIVATE,
            BUF,
        )
    }
    commit(&mut fx.open::<A>(), 1).expect("commit 1");
    commit(&mut fx.open::<A>(), 2).expect("commit 2");
    let slot_files = [
        slots::slot_name("doc.json", 0),
        slots::slot_name("doc.json", 1),
    ];
    let holds = |name: &str, n| {
        let bytes = fs::read(fx.path(name)).expect("read slot");
        bytes.windows(doc(n).len()).any(|w| w == doc(n).as_slice())
    };
    let acked = slot_files
        .iter()
        .find(|s| holds(s.as_str(), 2))
        .expect("a slot holds commit 2")
        .as_str();
    let acked_before = fx.snap(acked);
    let acked_bytes = fx.read(acked);

    let mut dir = Faulty::eio(fx.open::<A>(), FaultPoint::SyncFile, 1);
    let err = commit(&mut dir, 3).unwrap_err();
    assert_eq!(io_error_of(&err), (Op::SyncFile, Some(5)), "{err}");
    let mut buf = [0u8; BUF];
    let n = slots::load(&mut fx.open::<A>(), "doc.json", &mut buf)
        .expect("load after the failed commit")
        .expect("present");
    assert_eq!(
        buf.get(..n),
        Some(doc(2).as_slice()),
        "a reader found the failed commit, not the last acknowledged one"
    );

    commit(&mut fx.open::<A>(), 4).expect("commit 4");
    assert_eq!(
        fx.read(acked),
        acked_bytes,
        "the commit after the failed one overwrote {acked}, the last acknowledged slot"
    );
    assert_eq!(fx.snap(acked), acked_before);
    let n = slots::load(&mut fx.open::<A>(), "doc.json", &mut buf)
        .expect("load")
        .expect("present");
    assert_eq!(buf.get(..n), Some(doc(4).as_slice()));
}

/// An `EIO` from the journal flush fails the append, and the failed
/// records are cut off the journal at once: left there, they would read
/// back whole from the page cache, the next append would go on after them,
/// and a power cut could then leave a hole (records that never reached the
/// disk) in front of acknowledged records. The next append continues from
/// the last acknowledged record, with no gap in the sequence numbers.
pub fn eio_on_journal_flush_cuts_the_failed_records<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let mut store = hits_journal(Mode::PRIVATE);
    let mut buf = vec![0u8; BUF];
    let mut dir = fx.open::<A>();
    store.open(&mut dir, &mut buf).expect("open");
    assert_eq!(append_hit(&mut store, &mut dir, 0), 1);
    let journal = fx.path(store.journal().journal_name());
    let len = fs::metadata(&journal).expect("journal").len();

    let mut faulty = Faulty::eio(fx.open::<A>(), FaultPoint::SyncFile, 1);
    let err = store
        .append(&mut faulty, &mut buf, &Hit { ip: 1 })
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Commit(CommitError::Io(e)) if e.op == Op::SyncFile),
        "{err:?}"
    );
    assert_eq!(
        fs::metadata(&journal).expect("journal").len(),
        len,
        "the failed record is still in the journal"
    );
    assert_eq!(append_hit(&mut store, &mut dir, 2), 2);
    let state = store.read(&mut fx.open::<A>(), &mut buf).expect("read");
    assert_eq!((state.count, state.sum, state.gaps), (2, 2, 0), "{state:?}");
}

fn corrupt_of(err: &StoreError<std::io::Error>) -> &Corrupt {
    match err {
        StoreError::Load(LoadError::Corrupt(c)) => c,
        other => panic!("not Corrupt: {other:?}"),
    }
}

/// For each case `(bytes, offset, kind)`: plant `bytes` as `doc.json` (and
/// a lock file), then check that `load`, `update` and `recover` all report
/// `Corrupt` at `offset` with `kind`, that `update` never runs its closure,
/// and that the file stays byte for byte (inode, mode, times) as it was.
fn corrupt_is_reported_and_left_alone<A: Adapter>(
    test: &str,
    cases: &[(&[u8], usize, CorruptKind)],
) {
    for (bytes, offset, kind) in cases {
        let case = format!("{kind:?} at {offset}");
        let fx = Fixture::new::<A>(test);
        plant_file(&fx.path("doc.json"), bytes, 0o600);
        let store: Store<Counter> = Store::new("doc.json", Mode::PRIVATE);
        let mut buf = [0u8; BUF];
        let expected = Corrupt::new("doc.json", *offset as u64, *kind);
        let before = fx.snap("doc.json");
        let mut dir = fx.open::<A>();

        let err = store.load(&mut dir, &mut buf).unwrap_err();
        assert_eq!(corrupt_of(&err), &expected, "{case}: load");
        assert_eq!(fx.snap("doc.json"), before, "{case}: after load");

        let mut ran = false;
        let err = store
            .update(&mut dir, &mut buf, |c| {
                ran = true;
                c.bump()
            })
            .unwrap_err();
        assert_eq!(corrupt_of(&err), &expected, "{case}: update");
        assert!(!ran, "{case}: update ran its closure on a corrupt file");
        assert_eq!(fx.snap("doc.json"), before, "{case}: after update");

        fsatomic::recover::recover(&mut dir, "doc.json", Mode::PRIVATE).expect("recover");
        assert_eq!(fx.snap("doc.json"), before, "{case}: after recover");
        assert_eq!(fx.names(), set(["doc.json", "doc.json.lock"]), "{case}");
    }
}

/// A zero-length file — the mark of a torn write — is `Corrupt` at byte 0,
/// never empty state, and is left alone.
pub fn empty_file_is_corrupt_and_left_alone<A: Adapter>(test: &str) {
    corrupt_is_reported_and_left_alone::<A>(test, &[(b"", 0, CorruptKind::Empty)]);
}

/// A document cut short is `Corrupt` at the offset where it ends, for
/// every cut.
pub fn truncated_file_is_corrupt_at_its_end_and_left_alone<A: Adapter>(test: &str) {
    let whole = encoded(&Counter::at(3));
    // Cut inside the first key, inside the array, just before the last
    // brace (the trailing newline is optional whitespace, so cutting only
    // it leaves a valid document).
    let last_brace = whole.iter().rposition(|&b| b == b'}').expect("brace");
    let cuts = [1, 5, whole.len() / 2, last_brace];
    let cases = cuts.map(|cut| (&whole[..cut], cut, CorruptKind::Json(UnexpectedEnd)));
    corrupt_is_reported_and_left_alone::<A>(test, &cases);
}

/// Garbage is `Corrupt` at the first byte that is wrong: binary noise at 0,
/// data after a complete document where it starts, a wrong shape at 0.
pub fn garbage_file_is_corrupt_where_it_breaks_and_left_alone<A: Adapter>(test: &str) {
    let whole = encoded(&Counter::at(3));
    let trailing = [&whole[..], b"xyz"].concat();
    let mut wrong = whole.clone();
    let digit = wrong.iter().position(|&b| b == b'3').expect("digit");
    wrong[digit] = b'@';
    corrupt_is_reported_and_left_alone::<A>(
        test,
        &[
            (
                b"\0\x13\xffgarbage",
                0,
                CorruptKind::Json(UnexpectedByte(0)),
            ),
            (&trailing, whole.len(), CorruptKind::Json(TrailingData)),
            (&wrong, digit, CorruptKind::Json(UnexpectedByte(b'@'))),
        ],
    );
    let err_shape = b"{\"hits\": \"three\"}\n";
    let fx = Fixture::new::<A>(test);
    plant_file(&fx.path("doc.json"), err_shape, 0o600);
    let before = fx.snap("doc.json");
    let store: Store<Counter> = Store::new("doc.json", Mode::PRIVATE);
    let err = store
        .load(&mut fx.open::<A>(), &mut [0u8; BUF])
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Load(LoadError::Corrupt(Corrupt {
                kind: CorruptKind::Shape(_),
                ..
            }))
        ),
        "{err:?}"
    );
    assert_eq!(fx.snap("doc.json"), before);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(call: Call, name: &str) -> Event {
        Event {
            call,
            name: name.to_owned(),
            to: None,
            ok: true,
        }
    }

    const T: &str = ".a.json.00000000000000ff.tmp";

    fn good() -> Vec<Event> {
        let mut rename = ev(Call::Rename, T);
        rename.to = Some("a.json".to_owned());
        vec![
            ev(Call::Token, "00000000000000ff"),
            ev(Call::Create, T),
            ev(Call::Write, T),
            ev(Call::Write, T),
            ev(Call::SyncAll, T),
            rename,
            ev(Call::SyncDir, "."),
        ]
    }

    #[test]
    fn the_protocol_sequence_passes() {
        check_commit_sequence(&good(), "a.json").unwrap();
    }

    /// The checker must fail every broken variant of the sequence; this is
    /// what makes `commit_has_two_flushes_in_order` a real test.
    #[test]
    fn every_broken_sequence_fails() {
        let mut variants: Vec<(&str, Vec<Event>)> = Vec::new();
        let mut v = good();
        v.remove(4);
        variants.push(("no file flush", v));
        let mut v = good();
        v.remove(6);
        variants.push(("no directory flush", v));
        let mut v = good();
        v.swap(4, 5);
        variants.push(("rename before the file flush", v));
        let mut v = good();
        v.insert(5, ev(Call::SyncDir, "."));
        variants.push(("the seed's third barrier", v));
        let mut v = good();
        v.insert(5, ev(Call::Remove, "a.json"));
        variants.push(("delete then rename", v));
        let mut v = good();
        v[1].name = "a.json.tmp".to_owned();
        variants.push(("fixed temp name", v));
        let mut v = good();
        v.insert(6, ev(Call::Write, T));
        variants.push(("write after the flush", v));
        let mut v = good();
        v[4].ok = false;
        variants.push(("failed flush", v));
        let mut v = good();
        v.push(ev(Call::SyncDir, "."));
        variants.push(("extra directory flush", v));
        for (what, v) in variants {
            assert!(
                check_commit_sequence(&v, "a.json").is_err(),
                "accepted: {what}"
            );
        }
    }
}
