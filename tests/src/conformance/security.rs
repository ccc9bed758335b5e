//! Security: refused names, and links planted at every name the library
//! touches — the target, temporary names, the lock file — redirecting
//! nothing; stale temporary files never reused.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use fsatomic::fs::Op;
use fsatomic::name::temp_name;
use fsatomic::{
    CommitError, LoadError, Mode, Protocol, RecoverError, Store, StoreError, load, recover, replace,
};

use super::{
    Adapter, BUF, Counter, Fixture, Hit, OTHER_UID, Snapshot, append_hit, bump, encoded,
    finish_child, give_away, hits_journal, load_of, mode_of, plant_file, plant_symlink, save_at,
    uid_of,
};
use crate::wrap::{Call, Counting, PresetTokens};

/// This area's checks, in order: [`conformance_tests!`](crate::conformance_tests)
/// makes one test of each. A check not listed here never runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_security {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)* [
            bad_names_are_refused_before_any_io,
            symlink_at_the_target_redirects_nothing,
            hard_link_at_the_target_redirects_nothing,
            links_at_temp_names_redirect_nothing,
            every_temp_name_taken_is_a_collision,
            links_planted_at_random_temp_names_are_swept_not_followed,
            links_at_the_lock_file_redirect_nothing,
            stale_world_readable_temp_is_never_reused,
            planted_slot_of_another_user_receives_nothing,
            planted_journal_of_another_user_receives_nothing,
            hard_linked_slot_receives_nothing,
            in_place_files_narrow_to_the_mode_asked,
            lock_file_is_openable_only_by_writers,
            files_are_given_to_the_owner_asked_for,
        ] }
    };
}

/// Names with `/`, `\`, `..`, NUL, control characters, the temporary-file
/// shape, or over the length limit are refused by every entry point before
/// the directory sees a single call.
pub fn bad_names_are_refused_before_any_io<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let long = "x".repeat(fsatomic::name::MAX_NAME_LEN + 1);
    let bad = [
        "",
        ".",
        "..",
        "../escape.json",
        "a/b",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "a\0b",
        "nul\0",
        "line\nbreak",
        ".a.json.0123456789abcdef.tmp",
        long.as_str(),
        // Names a protocol owns for another state (its lock, journal and
        // slots): a commit there would replace a live lock file, destroy a
        // journal or overwrite a slot.
        "c.json.lock",
        "j.json.journal",
        "s.json.a",
        "s.json.b",
    ];
    let mut dir = Counting::new(fx.open::<A>());
    let log = dir.log();
    let mut buf = [0u8; BUF];
    let data = encoded(&Counter::at(1));
    for name in bad {
        let store: Store<Counter> = Store::new(name, Mode::PRIVATE);
        let e = store.load(&mut dir, &mut buf).unwrap_err();
        assert!(matches!(e, StoreError::Name { .. }), "load {name:?}: {e:?}");
        let e = store.save(&mut dir, &mut buf, &Counter::at(1)).unwrap_err();
        assert!(matches!(e, StoreError::Name { .. }), "save {name:?}: {e:?}");
        let e = store.update(&mut dir, &mut buf, Counter::bump).unwrap_err();
        assert!(
            matches!(e, StoreError::Name { .. }),
            "update {name:?}: {e:?}"
        );
        let e = replace::commit(&mut dir, name, &data, Mode::PRIVATE).unwrap_err();
        assert!(
            matches!(e, CommitError::Name { .. }),
            "commit {name:?}: {e:?}"
        );
        let e = load::read(&mut dir, name, &mut buf).unwrap_err();
        assert!(matches!(e, LoadError::Name { .. }), "read {name:?}: {e:?}");
        let e = load::read_json(&mut dir, name, &mut buf).unwrap_err();
        assert!(
            matches!(e, LoadError::Name { .. }),
            "read_json {name:?}: {e:?}"
        );
        let e = recover::recover(&mut dir, name, Mode::PRIVATE).unwrap_err();
        assert!(
            matches!(e, RecoverError::Name { .. }),
            "recover {name:?}: {e:?}"
        );
        assert!(
            log.is_empty(),
            "{name:?} reached the directory: {:?}",
            log.summary()
        );
    }
    assert!(fx.names().is_empty());
    assert!(names_outside(&fx).is_empty());
}

fn names_outside(fx: &Fixture) -> BTreeSet<String> {
    super::names_in(&fx.outside)
}

fn victim(fx: &Fixture, name: &str) -> Snapshot {
    plant_file(&fx.outside(name), b"root:secret\n", 0o640);
    fx.snap_outside(name)
}

/// A symbolic link planted at the target is refused by readers and
/// replaced (not followed) by a commit; the file it pointed at keeps its
/// bytes and mode.
pub fn symlink_at_the_target_redirects_nothing<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let before = victim(&fx, "shadow");
    plant_symlink(&fx.outside("shadow"), &fx.path("users.json"));
    let store: Store<Counter> = Store::new("users.json", Mode::PRIVATE);
    let mut buf = [0u8; BUF];
    let mut dir = fx.open::<A>();
    // Refused at the open, not read and found corrupt.
    let e = store.load(&mut dir, &mut buf).unwrap_err();
    assert!(
        matches!(&e, StoreError::Load(LoadError::Io(io)) if io.op == Op::Open),
        "a load followed the link: {e:?}"
    );
    let e = store.update(&mut dir, &mut buf, Counter::bump).unwrap_err();
    assert!(
        matches!(&e, StoreError::Load(LoadError::Io(io)) if io.op == Op::Open),
        "an update loaded through the link: {e:?}"
    );
    save_at(&store, &mut dir, 9);
    assert_eq!(fx.snap_outside("shadow"), before);
    let meta = fs::symlink_metadata(fx.path("users.json")).expect("lstat");
    assert!(meta.is_file(), "the link survived the commit");
    assert_eq!(fx.mode("users.json"), 0o600);
    assert_eq!(fx.read("users.json"), encoded(&Counter::at(9)));
    assert!(fx.temp_names().is_empty());
}

/// A hard link planted at the target is replaced by the commit's new
/// inode; the other name keeps its bytes and mode.
pub fn hard_link_at_the_target_redirects_nothing<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    victim(&fx, "shadow");
    fs::hard_link(fx.outside("shadow"), fx.path("users.json")).expect("link");
    let before = fx.snap_outside("shadow");
    let store: Store<Counter> = Store::new("users.json", Mode::PRIVATE);
    save_at(&store, &mut fx.open::<A>(), 9);
    let after = fx.snap_outside("shadow");
    assert_eq!(after.bytes, before.bytes);
    assert_eq!(after.mode, before.mode);
    assert_eq!(after.inode, before.inode);
    assert_eq!(after.mtime, before.mtime);
    assert_eq!(after.links, 1, "the planted name still points at it");
    assert_ne!(fx.snap("users.json").inode, before.inode);
    assert_eq!(fx.mode("users.json"), 0o600);
}

const TOKENS: [u64; 4] = [
    0x0123_4567_89ab_cdef,
    0xfeed_face_cafe_beef,
    0x0000_0000_0000_0001,
    0xffff_ffff_ffff_fffe,
];

/// Plant, at the temporary names of the first three preset tokens, a
/// symbolic link to a victim, a dangling link, and a hard link to a second
/// victim. Returns the snapshots of the victims.
fn plant_at_temp_names(fx: &Fixture, name: &str) -> (Snapshot, Snapshot) {
    let a = victim(fx, "a");
    plant_symlink(&fx.outside("a"), &fx.path(&temp_name(name, TOKENS[0])));
    plant_symlink(&fx.outside("new"), &fx.path(&temp_name(name, TOKENS[1])));
    victim(fx, "b");
    fs::hard_link(fx.outside("b"), fx.path(&temp_name(name, TOKENS[2]))).expect("link");
    let b = fx.snap_outside("b");
    (a, b)
}

/// Links planted at the temporary names a commit tries (forced with known
/// tokens) make the exclusive create fail and the commit move on to the
/// next name; nothing is written through them, and the next locked writer
/// sweeps the links (not their targets).
pub fn links_at_temp_names_redirect_nothing<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let (a, b) = plant_at_temp_names(&fx, "users.json");
    let mut dir = Counting::new(PresetTokens::new(fx.open::<A>(), TOKENS));
    let log = dir.log();
    let data = encoded(&Counter::at(5));
    replace::commit(&mut dir, "users.json", &data, Mode::PRIVATE).expect("commit");
    let creates: Vec<bool> = log
        .events()
        .iter()
        .filter(|e| e.call == Call::Create)
        .map(|e| e.ok)
        .collect();
    assert_eq!(creates, [false, false, false, true], "{:?}", log.summary());
    assert_eq!(fx.read("users.json"), data);
    assert_eq!(fx.mode("users.json"), 0o600);
    assert_eq!(fx.snap_outside("a"), a);
    assert_eq!(fx.snap_outside("b"), b);
    assert!(!fx.outside("new").exists(), "a dangling link was followed");
    assert_eq!(fx.temp_names().len(), 3, "the planted names");

    let store: Store<Counter> = Store::new("users.json", Mode::PRIVATE);
    save_at(&store, &mut fx.open::<A>(), 6);
    fsatomic::recover::recover(&mut fx.open::<A>(), "users.json", Mode::PRIVATE).expect("recover");
    assert!(fx.temp_names().is_empty(), "{:?}", fx.temp_names());
    assert_eq!(fx.snap_outside("a"), a);
    let b_after = fx.snap_outside("b");
    assert_eq!((b_after.bytes, b_after.mode), (b.bytes, b.mode));
    assert!(!fx.outside("new").exists());
}

/// When every temporary name tried is taken, the commit gives up with
/// `TempNameCollision` and changes nothing.
pub fn every_temp_name_taken_is_a_collision<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let (a, b) = plant_at_temp_names(&fx, "users.json");
    plant_file(&fx.path(&temp_name("users.json", TOKENS[3])), b"x", 0o666);
    plant_file(&fx.path("users.json"), b"{\"old\": true}\n", 0o600);
    let names = fx.names();
    let target = fx.snap("users.json");
    let mut dir = PresetTokens::new(fx.open::<A>(), TOKENS);
    let err = replace::commit(&mut dir, "users.json", b"{}\n", Mode::PRIVATE).unwrap_err();
    assert!(
        matches!(err, CommitError::TempNameCollision { .. }),
        "{err:?}"
    );
    assert_eq!(dir.handed_out(), TOKENS.len());
    assert_eq!(fx.names(), names);
    assert_eq!(fx.snap("users.json"), target);
    assert_eq!(fx.snap_outside("a"), a);
    assert_eq!(fx.snap_outside("b"), b);
}

/// Links planted at many random temporary names (the attacker cannot
/// predict the real ones) redirect none of a series of commits, and the
/// orphan sweep removes the links without following them.
pub fn links_planted_at_random_temp_names_are_swept_not_followed<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let a = victim(&fx, "a");
    let mut dir = fx.open::<A>();
    let mut planted = 0;
    for _ in 0..256 {
        let token = fsatomic::Dir::unique_token(&mut dir).expect("token");
        plant_symlink(&fx.outside("a"), &fx.path(&temp_name("users.json", token)));
        planted += 1;
    }
    assert_eq!(fx.temp_names().len(), planted);
    let store: Store<Counter> = Store::new("users.json", Mode::PRIVATE);
    for i in 0..20 {
        // Commits never sweep; boot-time recovery does, under the lock.
        let data = encoded(&Counter::at(i));
        replace::commit(&mut dir, "users.json", &data, Mode::PRIVATE).expect("commit");
    }
    assert_eq!(fx.temp_names().len(), planted);
    bump(&store, &mut dir);
    assert_eq!(fx.temp_names().len(), planted, "a commit swept");
    fsatomic::recover::recover(&mut dir, "users.json", Mode::PRIVATE).expect("recover");
    assert!(fx.temp_names().is_empty());
    assert_eq!(fx.snap_outside("a"), a);
    assert_eq!(load_of(&store, &mut dir), Some(Counter::at(20)));
}

/// A symbolic link (dangling or not) planted at the lock file makes the
/// writer refuse to lock; a hard link makes it refuse or lock without
/// writing. Either way the file behind it keeps bytes, mode, inode and
/// times, nothing is created where a dangling link points, and a refused
/// lock means nothing was committed.
pub fn links_at_the_lock_file_redirect_nothing<A: Adapter>(test: &str) {
    for plant in ["symlink", "dangling", "hard link"] {
        let fx = Fixture::new::<A>(test);
        victim(&fx, "passwd");
        let lock = fx.path("users.json.lock");
        match plant {
            "symlink" => plant_symlink(&fx.outside("passwd"), &lock),
            "dangling" => plant_symlink(&fx.outside("nothing"), &lock),
            _ => fs::hard_link(fx.outside("passwd"), &lock).expect("link"),
        }
        let before = fx.snap_outside("passwd");
        let store: Store<Counter> = Store::new("users.json", Mode::PRIVATE);
        let result = store.save(&mut fx.open::<A>(), &mut [0u8; BUF], &Counter::at(1));
        assert_eq!(fx.snap_outside("passwd"), before, "{plant}");
        assert!(!fx.outside("nothing").exists(), "{plant}: link followed");
        if plant != "hard link" {
            // Not following the link leaves no way to lock: the name is
            // taken, and the lock file is never replaced.
            assert!(
                matches!(&result, Err(StoreError::Io(io)) if io.op == Op::Lock),
                "{plant}: {result:?}"
            );
        }
        if result.is_err() {
            assert!(
                !fx.path("users.json").exists(),
                "{plant}: committed unlocked"
            );
        }
        println!("{} {plant} at the lock file: {result:?}", A::NAME);
    }
}

/// A temporary file left by a crash, with a world-readable mode (the Go
/// package's `O_CREAT` without `O_EXCL` would have reused it), is never
/// opened by a commit — the exclusive create fails on it and a new file is
/// made — the committed file has exactly the mode asked, and boot-time
/// recovery sweeps the orphan.
pub fn stale_world_readable_temp_is_never_reused<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let stale = temp_name("users.json", TOKENS[0]);
    plant_file(&fx.path(&stale), b"{\"half\": ", 0o666);
    let orphan = fx.snap(&stale);
    let mut dir = Counting::new(PresetTokens::new(fx.open::<A>(), [TOKENS[0]]));
    let log = dir.log();
    let data = encoded(&Counter::at(1));
    replace::commit(&mut dir, "users.json", &data, Mode::PRIVATE).expect("commit");
    let creates: Vec<(String, bool)> = log
        .events()
        .into_iter()
        .filter(|e| e.call == Call::Create)
        .map(|e| (e.name, e.ok))
        .collect();
    assert_eq!(creates.len(), 2, "{:?}", log.summary());
    assert_eq!(creates[0], (stale.to_string(), false));
    assert!(creates[1].1 && creates[1].0 != stale.as_str());
    assert_eq!(fx.snap(&stale), orphan, "the orphan was touched");
    let committed = fx.snap("users.json");
    assert_eq!(committed.mode & 0o7777, 0o600);
    assert_ne!(committed.inode, orphan.inode);
    assert_eq!(committed.bytes, data);

    let store: Store<Counter> = Store::new("users.json", Mode::PRIVATE);
    bump(&store, &mut fx.open::<A>());
    fsatomic::recover::recover(&mut fx.open::<A>(), "users.json", Mode::PRIVATE).expect("recover");
    assert!(!fx.path(&stale).exists(), "the orphan was not swept");
    assert_eq!(fx.mode("users.json"), 0o600);
}

/// Whether `e` is the refusal of a file to be written in place
/// (`Op::OpenInPlace`) naming `file`.
fn refused_in_place(e: &impl std::fmt::Debug, file: &str) -> bool {
    let e = format!("{e:?}");
    e.contains("OpenInPlace") && e.contains(file)
}

/// A slot planted by another user (world-writable, as anyone can make one
/// in a sticky `/tmp`) never receives a commit: the save is refused with
/// an error naming the slot, and the planted file keeps bytes, mode,
/// owner and inode — the secret is nowhere.
pub fn planted_slot_of_another_user_receives_nothing<A: Adapter>(test: &str) {
    for planted in [&b""[..], b"x"] {
        let fx = Fixture::new::<A>(test);
        let slot = fx.path("st.json.a");
        plant_file(&slot, planted, 0o666);
        if !give_away(&slot) {
            return;
        }
        let before = Snapshot::of(&slot);
        let store: Store<Counter> =
            Store::new("st.json", Mode::PRIVATE).with_protocol(Protocol::Slots);
        let e = store
            .save(&mut fx.open::<A>(), &mut [0u8; BUF], &Counter::at(42))
            .expect_err("a commit into another user's slot");
        assert!(refused_in_place(&e, "st.json.a"), "{e:?}");
        assert!(e.to_string().contains("st.json.a"), "{e}");
        assert_eq!(Snapshot::of(&slot), before, "the planted slot changed");
        assert_eq!(uid_of(&slot), OTHER_UID);
        for name in fx.names() {
            let bytes = fs::read(fx.path(&name)).unwrap_or_default();
            assert!(
                !bytes.windows(2).any(|w| w == b"42"),
                "the secret reached {name}"
            );
        }
    }
}

/// A journal that is not the caller's (given to another user and made
/// world-writable, as a planted one would be) is refused by the writer's
/// recovery and never receives a record; it keeps bytes, mode and owner.
pub fn planted_journal_of_another_user_receives_nothing<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let mut buf = vec![0u8; BUF];
    let mut store = hits_journal(Mode::PRIVATE);
    store.open(&mut fx.open::<A>(), &mut buf).expect("open");
    append_hit(&mut store, &mut fx.open::<A>(), 1);
    let journal = fx.path("hits.json.journal");
    fs::set_permissions(&journal, fs::Permissions::from_mode(0o666)).expect("chmod");
    if !give_away(&journal) {
        return;
    }
    let before = Snapshot::of(&journal);
    let mut store = hits_journal(Mode::PRIVATE);
    let mut dir = fx.open::<A>();
    let result = store
        .open(&mut dir, &mut buf)
        .and_then(|()| store.append(&mut dir, &mut buf, &Hit { ip: 0xdead }));
    let e = result.expect_err("an append into another user's journal");
    assert!(refused_in_place(&e, "hits.json.journal"), "{e:?}");
    assert_eq!(
        Snapshot::of(&journal),
        before,
        "the planted journal changed"
    );
    assert_eq!(uid_of(&journal), OTHER_UID);
}

/// A slot with a second hard link (to a file outside) is refused: the
/// commit fails naming it, and the file behind it keeps its bytes.
pub fn hard_linked_slot_receives_nothing<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    victim(&fx, "shadow");
    fs::hard_link(fx.outside("shadow"), fx.path("st.json.a")).expect("link");
    let before = fx.snap_outside("shadow");
    let store: Store<Counter> = Store::new("st.json", Mode::PRIVATE).with_protocol(Protocol::Slots);
    let e = store
        .save(&mut fx.open::<A>(), &mut [0u8; BUF], &Counter::at(7))
        .expect_err("a commit through a hard link");
    assert!(refused_in_place(&e, "st.json.a"), "{e:?}");
    assert_eq!(fx.snap_outside("shadow"), before);
}

/// A state is never readable more widely than the mode of the call that
/// wrote it: a 0600 save onto a 0644 Slots state leaves both slots 0600,
/// and a 0600 append onto a 0644 journal leaves the journal 0600. A
/// narrower mode is kept (a 0644 call does not widen what a 0600 call
/// wrote: the older slot still holds its document).
pub fn in_place_files_narrow_to_the_mode_asked<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let slots = |mode| Store::<Counter>::new("st.json", mode).with_protocol(Protocol::Slots);
    for i in 0..2 {
        save_at(&slots(Mode::PUBLIC_READ), &mut fx.open::<A>(), i);
    }
    let slot_modes = || ["st.json.a", "st.json.b"].map(|slot| fx.mode(slot));
    assert_eq!(slot_modes(), [0o644; 2]);
    save_at(&slots(Mode::PRIVATE), &mut fx.open::<A>(), 2);
    assert_eq!(slot_modes(), [0o600; 2], "after a 0600 save");
    save_at(&slots(Mode::PUBLIC_READ), &mut fx.open::<A>(), 3);
    assert_eq!(slot_modes(), [0o600; 2], "widened");
    assert_eq!(
        load_of(&slots(Mode::PRIVATE), &mut fx.open::<A>()),
        Some(Counter::at(3))
    );

    let mut buf = vec![0u8; BUF];
    let journal = fx.path("hits.json.journal");
    let mut public = hits_journal(Mode::PUBLIC_READ);
    public.open(&mut fx.open::<A>(), &mut buf).expect("open");
    append_hit(&mut public, &mut fx.open::<A>(), 0);
    assert_eq!(mode_of(&journal), 0o644);
    let mut private = hits_journal(Mode::PRIVATE);
    let mut dir = fx.open::<A>();
    private.open(&mut dir, &mut buf).expect("open");
    append_hit(&mut private, &mut dir, 1);
    assert_eq!(mode_of(&journal), 0o600, "the journal after a 0600 append");
    assert!(private.state().is(0..2));
}

/// Whoever can open a lock file can hold its lock forever and stall every
/// writer, so only those who may write the state can open it: a 0644
/// state's lock file is 0600, a 0664 state's 0640; and a lock file left
/// readable by all (as older versions made them) is narrowed by the next
/// writer, its bytes and inode kept.
pub fn lock_file_is_openable_only_by_writers<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    for (bits, lock) in [
        (0o644, 0o600),
        (0o664, 0o640),
        (0o666, 0o644),
        (0o600, 0o600),
    ] {
        let name = format!("s{bits:o}.json");
        let mode = Mode::new(bits).expect("mode");
        save_at(&Store::<Counter>::new(&name, mode), &mut fx.open::<A>(), 1);
        assert_eq!(fx.mode(&name), bits);
        assert_eq!(fx.mode(&format!("{name}.lock")), lock, "{name}");
    }
    plant_file(&fx.path("old.json.lock"), b"", 0o644);
    let before = fx.snap("old.json.lock");
    save_at(
        &Store::<Counter>::new("old.json", Mode::PUBLIC_READ),
        &mut fx.open::<A>(),
        1,
    );
    let after = fx.snap("old.json.lock");
    assert_eq!(after.mode & 0o7777, 0o600, "an old lock file kept its mode");
    assert_eq!((after.bytes, after.inode), (before.bytes, before.inode));
}

/// `set_owner`: as root, every file a commit makes — the document, the
/// lock file, a journal, slots — belongs to the user and group asked for,
/// with exactly the mode asked for; files of that owner are then written
/// in place (slots), where a handle without the owner refuses them. A
/// process that is not root may not give files to another user: it is
/// refused before anything is made.
pub fn files_are_given_to_the_owner_asked_for<A: Adapter>(test: &str) {
    use fsatomic::Owner;
    let other = Owner {
        uid: Some(OTHER_UID),
        gid: Some(OTHER_UID),
    };
    if let Some((_role, fx)) = super::child_role(test) {
        let mut dir = fx.open::<A>();
        let e = A::set_owner(
            &mut dir,
            Owner {
                uid: Some(0),
                gid: None,
            },
        )
        .expect_err("a user gave files to root");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("only root"), "{e}");
        super::child_done(&fx, "user", "refused");
        return;
    }
    let fx = Fixture::new::<A>(test);
    if rustix_free_euid() != 0 {
        println!("not root: cannot give files to another user; check skipped");
        return;
    }
    let owned = |name: &str| {
        let m = fs::symlink_metadata(fx.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    let mode = Mode::new(0o640).expect("mode");
    let mut dir = fx.open::<A>();
    A::set_owner(&mut dir, other).expect("root gives files away");
    let doc: Store<Counter> = Store::new("doc.json", mode);
    save_at(&doc, &mut dir, 1);
    bump(&doc, &mut dir);
    assert_eq!(owned("doc.json"), (OTHER_UID, OTHER_UID, 0o640));
    assert_eq!(owned("doc.json.lock").0, OTHER_UID, "the lock file");
    let mut journal = hits_journal(mode);
    let mut buf = vec![0u8; BUF];
    journal.open(&mut dir, &mut buf).expect("open");
    append_hit(&mut journal, &mut dir, 1);
    assert_eq!(owned("hits.json.journal"), (OTHER_UID, OTHER_UID, 0o640));
    let slots: Store<Counter> = Store::new("st.json", mode).with_protocol(Protocol::Slots);
    save_at(&slots, &mut dir, 7);
    save_at(&slots, &mut dir, 8);
    assert_eq!(owned("st.json.a"), (OTHER_UID, OTHER_UID, 0o640));
    assert_eq!(owned("st.json.b"), (OTHER_UID, OTHER_UID, 0o640));
    // A handle without the owner treats those slots as someone else's.
    let e = slots
        .save(&mut fx.open::<A>(), &mut [0u8; BUF], &Counter::at(9))
        .expect_err("wrote into another user's slot without being asked to");
    assert!(refused_in_place(&e, "st.json"), "{e:?}");
    // Not root: refused.
    fs::set_permissions(fx.root(), fs::Permissions::from_mode(0o777)).expect("chmod root");
    let child = super::spawn_child_as(test, "user", &fx, OTHER_UID);
    assert_eq!(finish_child(child, "user", &fx), "refused");
}

/// The effective uid, read the way the std adapter does (the owner of a
/// new pipe), so the kit needs no libc.
fn rustix_free_euid() -> u32 {
    let (reader, _writer) = io::pipe().expect("pipe");
    fs::File::from(std::os::fd::OwnedFd::from(reader))
        .metadata()
        .expect("pipe metadata")
        .uid()
}
