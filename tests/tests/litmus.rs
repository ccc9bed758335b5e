//! Litmus tests of the crash model itself (after Ferrite, ASPLOS'16): small
//! programs whose possible outcomes after a power cut are known, run under
//! every profile. Each profile must allow what the filesystems it stands
//! for allow, and forbid what they forbid — if the model were too kind,
//! the explorer's green results would mean nothing.
//!
//! | litmus | posix-worst | ext4-ordered | log-structured | fat | jffs2 |
//! |---|---|---|---|---|---|
//! | prefix append | broken | holds | holds | broken | holds |
//! | atomic replace via rename, no flush | broken | holds (`auto_da_alloc`) | broken | broken | holds |
//! | atomic replace via rename, flushed | holds | holds | holds | **broken** | holds |
//! | atomic create via rename, no flush | broken | broken | broken | broken | holds |
//! | implied directory flush | no | yes | yes | no | yes |
//! | ordered overwrites | no | no | yes | no | yes |
//! | rename source may survive | yes | no | no | yes | yes |

use std::collections::BTreeSet;

use embedded_io::{Seek, SeekFrom, Write};
use fsatomic::{Dir, File, Mode};
use fsatomic_testkit::profile::{Assignment, Profile};
use fsatomic_testkit::sim::{Image, Landing, SimFs};

const G: u64 = 512;

/// Run `setup` and make it durable, run `program`, then return `query` of
/// every crash state at the end (all of them: the space must be small).
fn outcomes<T: Ord>(
    profile: Profile,
    setup: impl FnOnce(&mut SimFs),
    program: impl FnOnce(&mut SimFs),
    query: impl Fn(&Image) -> T,
) -> BTreeSet<T> {
    let mut fs = SimFs::new(profile, G, 7);
    setup(&mut fs);
    fs.settle();
    program(&mut fs);
    let snap = fs.snapshot();
    let space = snap.crash_space(profile);
    let n = space.count(1 << 20).expect("litmus spaces are small");
    let mut out = BTreeSet::new();
    let mut seen = 0;
    space.for_each(|_, _, img| {
        seen += 1;
        out.insert(query(&img));
        std::ops::ControlFlow::Continue(())
    });
    assert_eq!(seen, n);
    out
}

fn file(name: &'static str) -> impl Fn(&Image) -> Option<Vec<u8>> {
    move |img| img.file(name).map(<[u8]>::to_vec)
}

fn create(fs: &mut SimFs, name: &str, data: &[u8]) -> <SimFs as Dir>::File {
    let mut f = fs.create_new(name, Mode::PRIVATE).unwrap();
    f.write_all(data).unwrap();
    f
}

fn durable_file(fs: &mut SimFs, name: &str, data: &[u8]) {
    let mut f = create(fs, name, data);
    f.sync_all().unwrap();
    fs.sync_dir().unwrap();
}

fn pattern(byte: u8, len: u64) -> Vec<u8> {
    vec![byte; len as usize]
}

/// Prefix append: appending X to an (empty, durable) file leaves a prefix
/// of X.
fn prefix_append_holds(p: Profile) -> bool {
    let x: Vec<u8> = (0..3 * G).map(|i| b'a' + (i / G) as u8).collect();
    let xs = x.clone();
    outcomes(
        p,
        |fs| durable_file(fs, "f", b""),
        move |fs| {
            let mut f = fs.open_write("f", Mode::PRIVATE).unwrap().unwrap();
            f.write_all(&xs[..G as usize]).unwrap();
            f.write_all(&xs[G as usize..]).unwrap();
        },
        file("f"),
    )
    .iter()
    .all(|o| o.as_ref().is_some_and(|c| x.starts_with(c)))
}

/// Atomic replace via rename: `f` is OLD; write NEW to a temporary file,
/// (flush it), rename over `f`. Holds if `f` is OLD or NEW after any cut.
fn replace_via_rename_holds(p: Profile, flush: bool) -> bool {
    let old = pattern(b'o', 700);
    let new = pattern(b'n', 900);
    let set = outcomes(
        p,
        |fs| durable_file(fs, "f", &pattern(b'o', 700)),
        |fs| {
            let mut t = create(fs, "t", &pattern(b'n', 900));
            if flush {
                t.sync_all().unwrap();
            }
            fs.rename("t", "f").unwrap();
        },
        file("f"),
    );
    set.iter()
        .all(|o| o.as_deref() == Some(&old[..]) || o.as_deref() == Some(&new[..]))
}

/// Atomic create via rename: `f` does not exist; write NEW to a temporary
/// file, rename to `f` without a flush. Holds if `f` is absent or NEW.
fn create_via_rename_holds(p: Profile) -> bool {
    let new = pattern(b'n', 900);
    outcomes(
        p,
        |_| {},
        |fs| {
            create(fs, "t", &pattern(b'n', 900));
            fs.rename("t", "f").unwrap();
        },
        file("f"),
    )
    .iter()
    .all(|o| o.is_none() || o.as_deref() == Some(&new[..]))
}

/// Implied directory flush: create `f`, write, flush the file (not the
/// directory). Holds if `f` always exists with its data.
fn implied_dir_flush(p: Profile) -> bool {
    let x = pattern(b'x', 600);
    outcomes(
        p,
        |_| {},
        |fs| {
            let mut f = create(fs, "f", &pattern(b'x', 600));
            f.sync_data().unwrap();
        },
        file("f"),
    )
    .iter()
    .all(|o| o.as_deref() == Some(&x[..]))
}

/// Ordered overwrites: `f` is AB (one granule each); overwrite A with C,
/// then B with D, in place. Holds if the second never lands without the
/// first (no "AD").
fn ordered_overwrites(p: Profile) -> bool {
    let mut ad = pattern(b'A', G);
    ad.extend(pattern(b'D', G));
    !outcomes(
        p,
        |fs| {
            let mut ab = pattern(b'A', G);
            ab.extend(pattern(b'B', G));
            durable_file(fs, "f", &ab);
        },
        |fs| {
            let mut f = fs.open_write("f", Mode::PRIVATE).unwrap().unwrap();
            f.write_all(&pattern(b'C', G)).unwrap();
            f.seek(SeekFrom::Start(G)).unwrap();
            f.write_all(&pattern(b'D', G)).unwrap();
        },
        file("f"),
    )
    .contains(&Some(ad))
}

/// After renaming a flushed `t` over a flushed `f`, may both names exist?
fn rename_source_may_survive(p: Profile) -> bool {
    outcomes(
        p,
        |fs| {
            durable_file(fs, "f", b"old");
            durable_file(fs, "t", b"new");
        },
        |fs| fs.rename("t", "f").unwrap(),
        |img| (img.contains("t"), img.file("f").map(<[u8]>::to_vec)),
    )
    .contains(&(true, Some(b"new".to_vec())))
}

use Profile::*;

/// The verdict of `litmus` under each profile, in the order of
/// [`Profile::ALL`] (the columns of the table above).
fn verdicts(litmus: impl Fn(Profile) -> bool) -> [bool; 5] {
    Profile::ALL.map(litmus)
}

#[test]
fn prefix_append() {
    assert_eq!(
        verdicts(prefix_append_holds),
        [false, true, true, false, true]
    );
}

#[test]
fn a_rename_without_a_prior_file_flush_loses_data() {
    // ext4-ordered holds by auto_da_alloc.
    let holds = verdicts(|p| replace_via_rename_holds(p, false));
    assert_eq!(holds, [false, true, false, false, true]);
}

#[test]
fn rename_replace_after_a_flush_is_atomic_except_on_fat() {
    let holds = verdicts(|p| replace_via_rename_holds(p, true));
    assert_eq!(holds, [true, true, true, false, true]);
    // On FAT the destination can vanish: the tear Replace suffers there.
    let set = outcomes(
        Fat,
        |fs| durable_file(fs, "f", b"old"),
        |fs| {
            let mut t = create(fs, "t", b"new");
            t.sync_all().unwrap();
            fs.rename("t", "f").unwrap();
        },
        |img| (img.contains("t"), img.file("f").map(<[u8]>::to_vec)),
    );
    assert!(set.contains(&(true, None)), "{set:?}");
}

#[test]
fn atomic_create_via_rename() {
    // No auto_da_alloc for new names: only jffs2's one log holds.
    let holds = verdicts(create_via_rename_holds);
    assert_eq!(holds, [false, false, false, false, true]);
}

#[test]
fn implied_directory_flush() {
    // A file flush does not flush its name, but a journal commit (ext4) or
    // a log (log-structured, jffs2) carries the entry along.
    let holds = verdicts(implied_dir_flush);
    assert_eq!(holds, [false, true, true, false, true]);
}

#[test]
fn ordered_overwrite() {
    // In-place data is not journaled on ext4.
    let holds = verdicts(ordered_overwrites);
    assert_eq!(holds, [false, false, true, false, true]);
}

#[test]
fn the_source_of_a_rename_may_survive_it() {
    let may = verdicts(rename_source_may_survive);
    assert_eq!(may, [true, false, false, true, true]);
}

#[test]
fn torn_writes_land_as_data_zeros_or_garbage_only_where_allowed() {
    // An unflushed overwrite of one granule: which contents can `f` have?
    let kinds = |p: Profile| {
        outcomes(
            p,
            |fs| durable_file(fs, "f", &pattern(b'o', G)),
            |fs| {
                let mut f = fs.open_write("f", Mode::PRIVATE).unwrap().unwrap();
                f.write_all(&pattern(b'n', G)).unwrap();
            },
            |img| match img.file("f") {
                Some(c) if c == pattern(b'o', G) => "old",
                Some(c) if c == pattern(b'n', G) => "new",
                Some(c) if c == pattern(0, G) => "zeros",
                Some(_) => "garbage",
                None => "absent",
            },
        )
    };
    let all: BTreeSet<&str> = ["old", "new", "zeros", "garbage"].into();
    assert_eq!(kinds(PosixWorst), all);
    assert_eq!(kinds(Fat), all);
    assert_eq!(kinds(Ext4Ordered), ["old", "new"].into());
    assert_eq!(kinds(Jffs2), ["old", "new"].into());
    assert_eq!(kinds(LogStructured), ["old"].into());
}

#[test]
fn fat_sectors_are_atomic_but_other_profiles_tear_at_one_byte() {
    // An unflushed 4-byte overwrite at granularity 1: a mix of old and new
    // bytes is possible unless whole sectors land at once.
    let mixed = |p: Profile| {
        let mut fs = SimFs::new(p, 1, 1);
        durable_file(&mut fs, "f", b"oooo");
        fs.settle();
        let mut f = fs.open_write("f", Mode::PRIVATE).unwrap().unwrap();
        f.write_all(b"nnnn").unwrap();
        let snap = fs.snapshot();
        let mut found = false;
        snap.crash_space(p).for_each(|_, _, img| {
            found |= img.file("f") == Some(b"nnoo");
            std::ops::ControlFlow::Continue(())
        });
        found
    };
    assert!(mixed(PosixWorst));
    assert!(mixed(Ext4Ordered));
    assert!(!mixed(Fat));
    assert_eq!(SimFs::new(Fat, 1, 1).granularity(), 512);
}

#[test]
fn crash_state_counts_match_the_rules() {
    // create f, write one granule: link, set-size, chunk.
    let count = |p: Profile| {
        let mut fs = SimFs::new(p, 4096, 1);
        create(&mut fs, "f", &pattern(b'x', 100));
        let snap = fs.snapshot();
        assert_eq!(snap.log.len(), 3);
        snap.crash_space(p).count(1000).unwrap()
    };
    // posix-worst and fat: independent, the chunk as data, zeros or
    // garbage (2 × 2 × 4); ext4-ordered: link × (none, chunk, chunk+size);
    // log-structured: the link or not, data waits for a flush; jffs2: a
    // prefix of (link, node).
    assert_eq!(Profile::ALL.map(count), [16, 6, 2, 16, 3]);
}

#[test]
fn flushes_make_exactly_their_part_durable() {
    let mut fs = SimFs::new(PosixWorst, G, 1);
    let mut f = create(&mut fs, "f", b"data");
    f.sync_all().unwrap();
    // The data is durable, the name is not.
    assert!(!fs.durable().contains("f"));
    let snap = fs.snapshot();
    assert_eq!(snap.log.len(), 1, "only the link is left");
    let mut seen = BTreeSet::new();
    snap.crash_space(PosixWorst).for_each(|_, _, img| {
        seen.insert(img.file("f").map(<[u8]>::to_vec));
        std::ops::ControlFlow::Continue(())
    });
    // Lost or whole, never torn: the data were flushed.
    assert_eq!(seen, [None, Some(b"data".to_vec())].into());
    fs.sync_dir().unwrap();
    assert_eq!(fs.durable().file("f"), Some(&b"data"[..]));
    assert_eq!(fs.log_len(), 0);
}

#[test]
fn the_whole_log_over_the_durable_image_is_the_live_image() {
    for p in [PosixWorst, Ext4Ordered, Fat, Jffs2] {
        for g in [1, 512, 4096] {
            let mut fs = SimFs::new(p, g, 3);
            durable_file(&mut fs, "a", &pattern(b'a', 1000));
            let mut b = create(&mut fs, "b", &pattern(b'b', 700));
            b.seek(SeekFrom::Start(300)).unwrap();
            b.write_all(&pattern(b'B', 900)).unwrap();
            b.set_len(1100).unwrap();
            b.sync_data().unwrap();
            fs.rename("b", "a").unwrap();
            let mut c = create(&mut fs, "c", &pattern(b'c', 10));
            c.set_len(3).unwrap();
            c.write_all(b"zz").unwrap();
            fs.remove("nothing").unwrap();
            let snap = fs.snapshot();
            let space = snap.crash_space(p);
            let all = Assignment(vec![Some(Landing::Data); snap.log.len()]);
            let mut img = space.image(&all);
            let mut live = fs.live();
            img.collect_garbage();
            live.collect_garbage();
            assert_eq!(
                img.canonical(),
                live.canonical(),
                "{p} {g}: {img} vs {live}"
            );
        }
    }
}

#[test]
fn locks_die_with_the_power() {
    let mut fs = SimFs::new(PosixWorst, G, 1);
    let guard = fs.lock("x.lock", Mode::PRIVATE).unwrap();
    assert!(fs.lock("x.lock", Mode::PRIVATE).is_err(), "exclusive");
    assert_eq!(fs.locks_held(), 1);
    let mut rebooted = SimFs::from_image(fs.live(), PosixWorst, G, 2);
    assert_eq!(rebooted.locks_held(), 0);
    drop(rebooted.lock("x.lock", Mode::PRIVATE).unwrap());
    drop(guard);
    assert_eq!(fs.locks_held(), 0);
}

#[test]
fn a_cut_power_fails_every_later_call() {
    let mut fs = SimFs::new(PosixWorst, G, 1);
    fs.cut_after(2);
    let mut f = fs.create_new("f", Mode::PRIVATE).unwrap();
    f.write_all(b"x").unwrap();
    assert!(fs.is_cut());
    assert!(f.sync_all().unwrap_err().is_power_cut());
    assert!(fs.open_read("f").unwrap_err().is_power_cut());
}
