//! Each method of [`fsatomic::Dir`] and [`fsatomic::File`], against its
//! documented contract.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use embedded_io::{ErrorKind, Seek, SeekFrom, Write};
use fsatomic::{Dir, File, Mode};

use super::{Adapter, Fixture, mode_of, plant_file, plant_symlink, set};

/// This area's checks, in order: [`conformance_tests!`](crate::conformance_tests)
/// makes one test of each. A check not listed here never runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_fs_ops {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)* [
            create_new_gives_exact_mode,
            create_new_refuses_every_existing_name,
            open_read_of_missing_is_none,
            open_read_reads_and_seeks_and_changes_nothing,
            open_read_refuses_links_and_special_files,
            open_write_writes_in_place,
            open_write_refuses_links,
            open_write_refuses_a_file_of_another_user,
            open_write_narrows_a_wider_mode,
            set_len_cuts_and_extends,
            rename_replaces_the_target,
            rename_replaces_a_symlink_not_its_target,
            link_adds_a_name_and_never_replaces_one,
            remove_takes_names_not_targets,
            flushes_succeed,
            for_each_entry_lists_every_name,
            unique_tokens_do_not_repeat,
            lock_file_gets_the_lock_mode,
            lock_excludes_every_other_holder,
            lock_never_writes_an_existing_lock_file,
            create_all_makes_durable_dirs_with_exact_mode,
        ] }
    };
}

fn kind(e: &io::Error) -> ErrorKind {
    embedded_io::Error::kind(e)
}

fn mode(bits: u32) -> Mode {
    Mode::new(bits).expect("mode")
}

fn read_all<F: File<Error = io::Error>>(file: &mut F) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7]; // small, to exercise short reads
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn write_all<F: File<Error = io::Error>>(file: &mut F, mut data: &[u8]) {
    while !data.is_empty() {
        let n = file.write(data).expect("write");
        assert!(n > 0, "write accepted zero bytes");
        data = &data[n..];
    }
}

/// `create_new` gives a new, empty, read-write file with exactly the mode
/// asked, whatever the process's umask narrows.
pub fn create_new_gives_exact_mode<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    for bits in [0o600, 0o644, 0o640, 0o604, 0o400, 0o755, 0o666] {
        let name = format!("m{bits:o}");
        let mut file = dir.create_new(&name, mode(bits)).expect("create_new");
        assert_eq!(fs::metadata(fx.path(&name)).expect("stat").len(), 0);
        write_all(&mut file, b"abc");
        file.seek(SeekFrom::Start(0)).expect("seek");
        assert_eq!(read_all(&mut file), b"abc", "created file is readable");
        drop(file);
        assert_eq!(fx.mode(&name), bits, "{name}: mode");
        assert_eq!(fx.read(&name), b"abc");
    }
}

/// `create_new` fails with `AlreadyExists` on any existing name — a file, a
/// directory, a symbolic link (dangling or not), a hard link — and changes
/// nothing, in particular creates nothing where a link points.
pub fn create_new_refuses_every_existing_name<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("file"), b"precious", 0o640);
    plant_file(&fx.outside("victim"), b"victim", 0o600);
    fs::create_dir(fx.path("subdir")).expect("mkdir");
    plant_symlink(&fx.outside("victim"), &fx.path("link"));
    plant_symlink(&fx.outside("nothing"), &fx.path("dangling"));
    fs::hard_link(fx.outside("victim"), fx.path("hard")).expect("link");
    let victim = fx.snap_outside("victim");
    let file = fx.snap("file");
    for name in ["file", "subdir", "link", "dangling", "hard"] {
        match dir.create_new(name, Mode::PRIVATE) {
            Ok(_) => panic!("create_new({name}) succeeded over an existing name"),
            Err(e) => assert_eq!(
                kind(&e),
                ErrorKind::AlreadyExists,
                "create_new({name}): {e}"
            ),
        }
    }
    assert_eq!(fx.snap_outside("victim"), victim);
    assert_eq!(fx.snap("file"), file);
    assert!(!fx.outside("nothing").exists(), "followed a dangling link");
    assert!(fx.path("subdir").is_dir());
}

/// `open_read` and `open_write` of a missing name are `Ok(None)`.
pub fn open_read_of_missing_is_none<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    assert!(dir.open_read("missing").expect("open_read").is_none());
    assert!(
        dir.open_write("missing", Mode::PRIVATE)
            .expect("open_write")
            .is_none()
    );
    assert!(fx.names().is_empty(), "an open created something");
}

/// `open_read` reads the bytes and seeks, and changes nothing on disk (not
/// even the modification or change time).
pub fn open_read_reads_and_seeks_and_changes_nothing<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("f"), b"hello, world", 0o640);
    let before = fx.snap("f");
    let mut file = dir.open_read("f").expect("open_read").expect("exists");
    assert_eq!(read_all(&mut file), b"hello, world");
    assert_eq!(file.seek(SeekFrom::Start(7)).expect("seek"), 7);
    assert_eq!(read_all(&mut file), b"world");
    assert_eq!(file.seek(SeekFrom::End(-5)).expect("seek"), 7);
    assert_eq!(file.seek(SeekFrom::Current(2)).expect("seek"), 9);
    assert_eq!(read_all(&mut file), b"rld");
    assert!(
        file.write(b"x").is_err(),
        "a file opened for reading accepted a write"
    );
    drop(file);
    assert_eq!(fx.snap("f"), before);
}

/// `open_read` never follows a symbolic link (a link is an error, not
/// `None`, even a dangling one) and refuses directories and FIFOs — without
/// blocking on the FIFO.
pub fn open_read_refuses_links_and_special_files<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    plant_file(&fx.outside("victim"), b"secret", 0o600);
    plant_symlink(&fx.outside("victim"), &fx.path("link"));
    plant_symlink(&fx.outside("nothing"), &fx.path("dangling"));
    fs::create_dir(fx.path("subdir")).expect("mkdir");
    let status = std::process::Command::new("mkfifo")
        .arg(fx.path("fifo"))
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
    let victim = fx.snap_outside("victim");
    for name in ["link", "dangling", "subdir", "fifo"] {
        // In a thread: an adapter that blocks on the FIFO fails the check
        // instead of hanging the suite.
        let (tx, rx) = mpsc::channel();
        let path = fx.dir.clone();
        thread::spawn(move || {
            let mut dir = A::open(&path).expect("open dir");
            let read = dir.open_read(name).map(|f| f.is_some());
            let write = dir.open_write(name, Mode::PRIVATE).map(|f| f.is_some());
            let _ = tx.send((read, write));
        });
        let (read, write) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("opening {name} blocked"));
        assert!(read.is_err(), "open_read({name}) gave {read:?}");
        assert!(write.is_err(), "open_write({name}) gave {write:?}");
    }
    assert_eq!(fx.snap_outside("victim"), victim);
    assert!(!fx.outside("nothing").exists());
}

/// `open_write` opens at the start without truncating; writes land in
/// place.
pub fn open_write_writes_in_place<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("slot"), b"abcdef", 0o600);
    let inode = fx.snap("slot").inode;
    let mut file = dir
        .open_write("slot", Mode::PRIVATE)
        .expect("open_write")
        .expect("exists");
    assert_eq!(fx.read("slot"), b"abcdef", "truncated on open");
    write_all(&mut file, b"XY");
    file.seek(SeekFrom::End(0)).expect("seek");
    write_all(&mut file, b"!");
    file.sync_data().expect("sync_data");
    drop(file);
    assert_eq!(fx.read("slot"), b"XYcdef!");
    assert_eq!(fx.snap("slot").inode, inode, "not in place");
    assert_eq!(fx.mode("slot"), 0o600);
}

/// `open_write` refuses a symbolic link and a file with a second hard link
/// (writing through it would change a file elsewhere).
pub fn open_write_refuses_links<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.outside("victim"), b"secret", 0o644);
    plant_symlink(&fx.outside("victim"), &fx.path("link"));
    fs::hard_link(fx.outside("victim"), fx.path("hard")).expect("link");
    let victim = fx.snap_outside("victim");
    for name in ["link", "hard"] {
        match dir.open_write(name, Mode::PRIVATE) {
            Ok(Some(mut f)) => {
                let _ = f.write(b"pwned");
                panic!("open_write({name}) opened a linked file");
            }
            Ok(None) => panic!("open_write({name}) found nothing"),
            Err(e) if name == "hard" => {
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
                assert!(e.to_string().contains(name), "{e}");
            }
            Err(_) => {}
        }
    }
    assert_eq!(fx.snap_outside("victim"), victim);
}

/// `open_write` refuses, with `PermissionDenied` naming the file, a file
/// owned by another user (planted, world-writable, in a shared directory),
/// and leaves it exactly as it was: owner, mode, bytes.
pub fn open_write_refuses_a_file_of_another_user<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("planted"), b"bait", 0o666);
    if !super::give_away(&fx.path("planted")) {
        return;
    }
    let before = fx.snap("planted");
    match dir.open_write("planted", Mode::PRIVATE) {
        Ok(Some(mut f)) => {
            let _ = f.write(b"secret");
            panic!("open_write opened another user's file");
        }
        Ok(None) => panic!("open_write found nothing"),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            assert!(e.to_string().contains("planted"), "{e}");
        }
    }
    assert_eq!(fx.snap("planted"), before);
    assert_eq!(super::uid_of(&fx.path("planted")), super::OTHER_UID);
}

/// `open_write` narrows a mode wider than asked before returning the file
/// (bytes and inode kept), and never widens one.
pub fn open_write_narrows_a_wider_mode<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    for (planted, asked, after) in [
        (0o644, 0o600, 0o600),
        (0o666, 0o644, 0o644),
        (0o640, 0o604, 0o600),
        (0o600, 0o644, 0o600),
        (0o644, 0o644, 0o644),
    ] {
        plant_file(&fx.path("f"), b"content", planted);
        let before = fx.snap("f");
        let file = dir
            .open_write("f", mode(asked))
            .expect("open_write")
            .expect("exists");
        assert_eq!(fx.mode("f"), after, "{planted:o} asked {asked:o}");
        drop(file);
        let now = fx.snap("f");
        assert_eq!((now.bytes, now.inode), (before.bytes, before.inode));
    }
}

/// `set_len` cuts and extends with zeros.
pub fn set_len_cuts_and_extends<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    let mut file = dir.create_new("f", Mode::PRIVATE).expect("create_new");
    write_all(&mut file, b"0123456789");
    file.set_len(4).expect("set_len");
    assert_eq!(fx.read("f"), b"0123");
    file.set_len(6).expect("set_len");
    assert_eq!(fx.read("f"), b"0123\0\0");
    file.sync_all().expect("sync_all");
}

/// `rename` gives the file the new name, replacing what had it, and the
/// old name is gone.
pub fn rename_replaces_the_target<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("old"), b"old", 0o644);
    plant_file(&fx.path("new"), b"new", 0o600);
    let new_inode = fx.snap("new").inode;
    dir.rename("new", "old").expect("rename over");
    assert_eq!(fx.read("old"), b"new");
    assert_eq!(fx.snap("old").inode, new_inode);
    assert_eq!(fx.mode("old"), 0o600);
    dir.rename("old", "fresh").expect("rename to a new name");
    assert_eq!(fx.names(), set(["fresh"]));
    dir.sync_dir().expect("sync_dir");
}

/// Renaming over a symbolic link replaces the link, never the file it
/// points at.
pub fn rename_replaces_a_symlink_not_its_target<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.outside("victim"), b"secret", 0o600);
    plant_symlink(&fx.outside("victim"), &fx.path("target"));
    plant_file(&fx.path("tmp"), b"mine", 0o600);
    let victim = fx.snap_outside("victim");
    dir.rename("tmp", "target").expect("rename");
    assert!(
        fs::symlink_metadata(fx.path("target"))
            .expect("lstat")
            .is_file()
    );
    assert_eq!(fx.read("target"), b"mine");
    assert_eq!(fx.snap_outside("victim"), victim);
}

/// `link` gives the file a second name (the same inode), refuses a name
/// that exists (file or symbolic link, which keeps what it had) and a
/// missing source, and links a symbolic link as itself.
pub fn link_adds_a_name_and_never_replaces_one<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("doc"), b"v1", 0o600);
    dir.link("doc", "doc.replaced").expect("link");
    assert_eq!(fx.snap("doc.replaced").inode, fx.snap("doc").inode);
    plant_file(&fx.path("other"), b"other", 0o600);
    let e = dir.link("doc", "other").expect_err("linked over a file");
    assert_eq!(kind(&e), ErrorKind::AlreadyExists);
    assert_eq!(fx.read("other"), b"other");
    plant_file(&fx.outside("victim"), b"secret", 0o600);
    plant_symlink(&fx.outside("victim"), &fx.path("planted"));
    let e = dir.link("doc", "planted").expect_err("linked over a link");
    assert_eq!(kind(&e), ErrorKind::AlreadyExists);
    assert_eq!(fs::read(fx.outside("victim")).expect("read"), b"secret");
    let e = dir.link("missing", "x").expect_err("linked a missing file");
    assert_eq!(kind(&e), ErrorKind::NotFound);
    dir.link("planted", "planted2")
        .expect("link a symbolic link");
    assert!(
        fs::symlink_metadata(fx.path("planted2"))
            .expect("lstat")
            .file_type()
            .is_symlink()
    );
    dir.sync_dir().expect("sync_dir");
}

/// `remove` of a missing name succeeds; a link is removed, not its target;
/// a directory is refused.
pub fn remove_takes_names_not_targets<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    dir.remove("missing").expect("remove of a missing name");
    plant_file(&fx.outside("victim"), b"secret", 0o600);
    plant_symlink(&fx.outside("victim"), &fx.path("link"));
    fs::hard_link(fx.outside("victim"), fx.path("hard")).expect("link");
    fs::create_dir(fx.path("subdir")).expect("mkdir");
    plant_file(&fx.path("file"), b"x", 0o600);
    dir.remove("link").expect("remove link");
    dir.remove("hard").expect("remove hard link");
    dir.remove("file").expect("remove file");
    assert!(dir.remove("subdir").is_err(), "removed a directory");
    assert_eq!(fx.names(), set(["subdir"]));
    assert_eq!(fs::read(fx.outside("victim")).expect("read"), b"secret");
    assert_eq!(mode_of(&fx.outside("victim")), 0o600);
    dir.sync_dir().expect("sync_dir");
}

/// Every flush succeeds on a healthy disk: file data, file metadata, the
/// directory.
pub fn flushes_succeed<A: Adapter>(test: &str) {
    let (_fx, mut dir) = Fixture::with::<A>(test);
    let mut file = dir.create_new("f", Mode::PRIVATE).expect("create_new");
    write_all(&mut file, b"data");
    file.sync_data().expect("sync_data");
    file.sync_all().expect("sync_all");
    drop(file);
    dir.sync_dir().expect("sync_dir");
    let mut file = dir
        .open_write("f", Mode::PRIVATE)
        .expect("open_write")
        .expect("exists");
    file.sync_data().expect("sync_data of a reopened file");
    let mut file = dir.open_read("f").expect("open_read").expect("exists");
    file.sync_all().expect("sync_all of a read-only file");
}

/// `for_each_entry` visits every name once (dot files and non-ASCII names
/// included, `.` and `..` excluded) and stops at `Break`.
pub fn for_each_entry_lists_every_name<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    for name in [
        "a.json",
        ".hidden",
        "ünïcode",
        ".a.json.0123456789abcdef.tmp",
        "a.json.lock",
    ] {
        plant_file(&fx.path(name), b"x", 0o600);
    }
    fs::create_dir(fx.path("sub")).expect("mkdir");
    let mut seen = Vec::new();
    dir.for_each_entry(&mut |name| {
        seen.push(name.to_owned());
        ControlFlow::Continue(())
    })
    .expect("for_each_entry");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a name was visited twice: {seen:?}"
    );
    assert_eq!(unique, fx.names());
    let mut visits = 0;
    dir.for_each_entry(&mut |_| {
        visits += 1;
        ControlFlow::Break(())
    })
    .expect("for_each_entry");
    assert_eq!(visits, 1, "did not stop at Break");
}

/// Tokens do not repeat: 20,000 from two handles and two threads.
pub fn unique_tokens_do_not_repeat<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    let spawn = |path: std::path::PathBuf| {
        thread::spawn(move || {
            let mut dir = A::open(&path).expect("open");
            (0..10_000)
                .map(|_| dir.unique_token().expect("token"))
                .collect::<Vec<u64>>()
        })
    };
    let a = spawn(fx.dir.clone());
    let b = spawn(fx.dir.clone());
    let mut all = a.join().expect("thread");
    all.extend(b.join().expect("thread"));
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a token repeated");
    // 64 bits, not a counter in disguise: the high halves vary too.
    let high: BTreeSet<u64> = all.iter().map(|t| t >> 32).collect();
    assert!(
        high.len() > all.len() / 2,
        "tokens vary only in their low bits"
    );
}

/// A new lock file gets exactly the mode asked, and stays empty.
pub fn lock_file_gets_the_lock_mode<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    for bits in [0o600, 0o644, 0o640] {
        let name = format!("l{bits:o}.lock");
        let lock = dir.lock(&name, mode(bits)).expect("lock");
        assert_eq!(fx.mode(&name), bits);
        drop(lock);
        assert_eq!(fs::metadata(fx.path(&name)).expect("stat").len(), 0);
        // Locking again reuses the file and keeps its mode.
        let snap = fx.snap(&name);
        drop(dir.lock(&name, mode(bits)).expect("lock again"));
        assert_eq!(fx.snap(&name), snap);
        // A narrower mode asked narrows it (bytes and inode kept); a wider
        // one never widens it.
        drop(dir.lock(&name, mode(0o600)).expect("lock narrower"));
        assert_eq!(fx.mode(&name), 0o600);
        assert_eq!(fx.snap(&name).inode, snap.inode);
        drop(dir.lock(&name, mode(0o644)).expect("lock wider"));
        assert_eq!(fx.mode(&name), 0o600);
    }
}

/// The lock excludes another handle in another thread until it is dropped,
/// and is visible to `std::fs::File::try_lock` on the same file (so the
/// adapters, and the Go daemon's `flock`, exclude each other).
pub fn lock_excludes_every_other_holder<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    let name = "x.json.lock";
    let held = dir.lock(name, Mode::PRIVATE).expect("lock");
    let probe = fs::File::open(fx.path(name)).expect("open lock file");
    assert!(
        matches!(probe.try_lock(), Err(fs::TryLockError::WouldBlock)),
        "the lock is not visible to another open file"
    );
    let (got, got_rx) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let path = fx.dir.clone();
    let other = thread::spawn(move || {
        let mut dir = A::open(&path).expect("open");
        let lock = dir.lock(name, Mode::PRIVATE).expect("second lock");
        got.send(()).expect("send");
        let _ = release_rx.recv();
        drop(lock);
    });
    // While held, the other thread must not get it. (A broken lock is
    // caught here; a working one always passes, however slow the machine.)
    assert!(
        got_rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "a second handle took a held lock"
    );
    drop(held);
    got_rx
        .recv()
        .expect("the second locker never got the released lock");
    assert!(matches!(
        probe.try_lock(),
        Err(fs::TryLockError::WouldBlock)
    ));
    release.send(()).expect("release");
    other.join().expect("thread");
    probe.try_lock().expect("the lock outlived its holder");
}

/// Taking the lock never writes or truncates an existing lock file. One
/// of ours with one link and a mode wider than asked is narrowed (bytes
/// and inode kept); one owned by another user (a writer sharing the state
/// through a group) is used as it is.
pub fn lock_never_writes_an_existing_lock_file<A: Adapter>(test: &str) {
    let (fx, mut dir) = Fixture::with::<A>(test);
    plant_file(&fx.path("a.lock"), b"pid 1234\n", 0o664);
    let before = fx.snap("a.lock");
    drop(dir.lock("a.lock", Mode::PRIVATE).expect("lock"));
    let after = fx.snap("a.lock");
    assert_eq!(after.mode & 0o7777, 0o600, "not narrowed");
    assert_eq!(
        (after.bytes, after.inode, after.links),
        (before.bytes, before.inode, before.links)
    );
    plant_file(&fx.path("b.lock"), b"pid 1234\n", 0o644);
    if !super::give_away(&fx.path("b.lock")) {
        return;
    }
    let before = fx.snap("b.lock");
    drop(dir.lock("b.lock", Mode::PRIVATE).expect("lock"));
    assert_eq!(fx.snap("b.lock"), before);
}

/// `create_all` makes the missing directories, outermost first, each with
/// exactly the mode asked; names only those it made; the result works.
pub fn create_all_makes_durable_dirs_with_exact_mode<A: Adapter>(test: &str) {
    let fx = Fixture::new::<A>(test);
    fs::create_dir(fx.path("a")).expect("mkdir");
    fs::set_permissions(fx.path("a"), fs::Permissions::from_mode(0o755)).expect("chmod");
    let deep = fx.dir.join("a/b/c");
    let (mut dir, made) = A::create_all(&deep, mode(0o750)).expect("create_all");
    assert_eq!(made, vec![fx.dir.join("a/b"), fx.dir.join("a/b/c")]);
    for d in &made {
        assert_eq!(mode_of(d), 0o750, "{}", d.display());
    }
    assert_eq!(fx.mode("a"), 0o755, "an existing directory was changed");
    drop(
        dir.create_new("probe", Mode::PRIVATE)
            .expect("create in the new dir"),
    );
    assert!(deep.join("probe").is_file());
    let (_, again) = A::create_all(&deep, mode(0o700)).expect("create_all again");
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(mode_of(&deep), 0o750);
    plant_file(&fx.path("file"), b"x", 0o600);
    assert!(A::create_all(&fx.dir.join("file/sub"), mode(0o700)).is_err());
}
