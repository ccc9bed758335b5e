//! The adapter conformance suite: the behaviour every [`fsatomic::Dir`]
//! adapter must show, checked for real on the machine's filesystem.
//!
//! Each check is a `pub fn NAME<A: Adapter>(test: &str)` that builds its own
//! scratch directory, exercises the adapter `A` — directly through the
//! trait, through the protocols of the core, or wrapped in the
//! [`crate::wrap`] directories — and checks the outcome *out of band*, with
//! `std::fs` on the same paths (bytes, modes, inode numbers, timestamps,
//! names). A check panics when the adapter falls short.
//!
//! The checks come in areas, one integration test binary per area:
//!
//! | area | what it checks |
//! |---|---|
//! | [`fs_ops`] | each trait method: exclusive create, exact modes, no-follow opens, replacing rename, remove, listing, tokens, locks, `create_all` |
//! | [`protocol`] | Replace and `Store` round trips, orphan sweeps, readers that change nothing |
//! | [`durability`] | two flushes per commit in the right order; injected `EIO`s; corrupt files reported and left alone |
//! | [`security`] | names refused before I/O; symbolic and hard links planted at the target, at temporary names and at the lock file; stale temporary files |
//! | [`concurrency`] | writers in threads and processes losing nothing; readers never breaking a writer; locks dying with their process |
//! | [`umask`] | exact modes under umask 000 and 077, in child processes |
//!
//! An adapter crate runs them with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```text
//! // linux-adapter/tests/security.rs
//! struct Linux;
//! impl fsatomic_testkit::conformance::Adapter for Linux {
//!     type Dir = fsatomic_linux::LinuxDir;
//!     const NAME: &'static str = "linux";
//!     fn open(path: &std::path::Path) -> std::io::Result<Self::Dir> { Self::Dir::open(path) }
//!     fn create_all(path: &std::path::Path, mode: fsatomic::Mode)
//!         -> std::io::Result<(Self::Dir, Vec<std::path::PathBuf>)> { Self::Dir::create_all(path, mode) }
//! }
//! fsatomic_testkit::conformance_tests!(Linux: security);
//! ```
//!
//! Checks that need a process of their own (the umask is process-wide; a
//! lock must die with its process) re-run the test binary itself as a child
//! with `--exact TEST`, and tell the child its role through environment
//! variables; that is why every check takes the name of the test running it.
//!
//! The suite needs a Unix system (symbolic links, modes, `sh` for the umask).
//! Scratch directories live under `$FSATOMIC_TEST_DIR` if set, else the
//! system's temporary directory; point it at the filesystem under test.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fsatomic::{Dir, Mode};
use serde::{Deserialize, Serialize};

pub mod concurrency;
pub mod durability;
pub mod fs_ops;
pub mod protocol;
pub mod security;
pub mod umask;

/// An adapter under test: how to open (and create) a directory with it.
pub trait Adapter: 'static {
    /// The adapter's directory.
    type Dir: Dir<Error = io::Error> + Send + 'static;
    /// A short name for scratch directories and messages (`"linux"`).
    const NAME: &'static str;
    /// Open the existing directory `path`.
    fn open(path: &Path) -> io::Result<Self::Dir>;
    /// Open `path`, creating it and its missing parents with exactly
    /// `mode`; return the directories made, outermost first.
    fn create_all(path: &Path, mode: Mode) -> io::Result<(Self::Dir, Vec<PathBuf>)>;
    /// The flush barriers the adapter itself counted through `dir` (its
    /// own telemetry, below the trait).
    fn flush_count(dir: &Self::Dir) -> u64;
    /// Bound `dir`'s lock waits (`None`: wait as long as it takes;
    /// `Some(Duration::ZERO)`: one try).
    fn set_lock_timeout(dir: &mut Self::Dir, limit: Option<std::time::Duration>);
    /// Give the files `dir` creates to `owner` (the adapter's `set_owner`).
    fn set_owner(dir: &mut Self::Dir, owner: fsatomic::Owner) -> io::Result<()>;
}

/// Generate one `#[test]` per check of the named areas, for an adapter
/// type implementing [`conformance::Adapter`](crate::conformance::Adapter).
///
/// ```text
/// fsatomic_testkit::conformance_tests!(Linux: fs_ops, protocol);
/// ```
///
/// Each area becomes a module of the test binary
/// (`fs_ops::rename_replaces_the_target`), with the checks its file lists
/// (`__conformance_fs_ops!` and so on, next to the checks themselves).
#[macro_export]
macro_rules! conformance_tests {
    ($adapter:ty : $($area:ident),+ $(,)?) => {
        $( $crate::conformance_tests!(@area $adapter, $area); )+
    };
    (@area $adapter:ty, fs_ops) => {
        $crate::__conformance_fs_ops!($crate::__conformance_area!($adapter, fs_ops,));
    };
    (@area $adapter:ty, protocol) => {
        $crate::__conformance_protocol!($crate::__conformance_area!($adapter, protocol,));
    };
    (@area $adapter:ty, durability) => {
        $crate::__conformance_durability!($crate::__conformance_area!($adapter, durability,));
    };
    (@area $adapter:ty, security) => {
        $crate::__conformance_security!($crate::__conformance_area!($adapter, security,));
    };
    (@area $adapter:ty, concurrency) => {
        $crate::__conformance_concurrency!($crate::__conformance_area!($adapter, concurrency,));
    };
    (@area $adapter:ty, umask) => {
        $crate::__conformance_umask!($crate::__conformance_area!($adapter, umask,));
    };
}

/// Implementation detail of [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_area {
    ($adapter:ty, $area:ident, [$($name:ident),+ $(,)?]) => {
        mod $area {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let test = $crate::conformance::test_name(module_path!(), stringify!($name));
                    $crate::conformance::$area::$name::<$adapter>(&test);
                }
            )+
        }
    };
}

/// The libtest name of the test function `name` in the module
/// `module_path` (the crate's own name, its first segment, is not part of
/// test names).
pub fn test_name(module_path: &str, name: &str) -> String {
    match module_path.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Scratch directories
// ---------------------------------------------------------------------------

static FIXTURES: AtomicU64 = AtomicU64::new(0);

/// A scratch tree for one check, removed when dropped:
///
/// ```text
/// ROOT/            (unique per check)
///   dir/           the directory under test
///   outside/       files a planted link points at; must never change
/// ```
#[derive(Debug)]
pub struct Fixture {
    root: PathBuf,
    /// The directory under test.
    pub dir: PathBuf,
    /// A sibling directory for the victims of planted links.
    pub outside: PathBuf,
    keep: bool,
}

impl Fixture {
    /// A fresh scratch tree, labelled with the adapter and the check.
    pub fn new<A: Adapter>(label: &str) -> Fixture {
        let base = std::env::var_os("FSATOMIC_TEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let n = FIXTURES.fetch_add(1, Ordering::Relaxed);
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let root = base.join(format!(
            "fsatomic-{}-{}-{}-{n}",
            A::NAME,
            label,
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&root);
        let fixture = Fixture::at(root);
        for d in [&fixture.dir, &fixture.outside] {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", d.display()));
        }
        fixture
    }

    /// The scratch tree rooted at `root`, made by another process (a child
    /// attaches to its parent's tree); not removed when dropped.
    pub fn attach(root: PathBuf) -> Fixture {
        let mut fixture = Fixture::at(root);
        fixture.keep = true;
        fixture
    }

    fn at(root: PathBuf) -> Fixture {
        Fixture {
            dir: root.join("dir"),
            outside: root.join("outside"),
            root,
            keep: false,
        }
    }

    /// The scratch tree's root (for markers between processes).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `dir/NAME`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `outside/NAME`.
    pub fn outside(&self, name: &str) -> PathBuf {
        self.outside.join(name)
    }

    /// The bytes of `dir/NAME`, read out of band.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.path(name);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The permission bits of `dir/NAME` (the link itself if it is one).
    pub fn mode(&self, name: &str) -> u32 {
        mode_of(&self.path(name))
    }

    /// A [`Snapshot`] of `dir/NAME`.
    pub fn snap(&self, name: &str) -> Snapshot {
        Snapshot::of(&self.path(name))
    }

    /// A [`Snapshot`] of `outside/NAME`.
    pub fn snap_outside(&self, name: &str) -> Snapshot {
        Snapshot::of(&self.outside(name))
    }

    /// A fresh scratch tree, as [`Fixture::new`], and a handle of adapter
    /// `A` on its directory under test.
    pub fn with<A: Adapter>(label: &str) -> (Fixture, A::Dir) {
        let fixture = Fixture::new::<A>(label);
        let dir = fixture.open::<A>();
        (fixture, dir)
    }

    /// A new handle of adapter `A` on the directory under test.
    pub fn open<A: Adapter>(&self) -> A::Dir {
        A::open(&self.dir)
            .unwrap_or_else(|e| panic!("{}: open {}: {e}", A::NAME, self.dir.display()))
    }

    /// Every name in the directory under test, read out of band.
    pub fn names(&self) -> BTreeSet<String> {
        names_in(&self.dir)
    }

    /// The names in the directory under test that have the shape of a
    /// temporary file (`.NAME.<16 hex>.tmp`).
    pub fn temp_names(&self) -> Vec<String> {
        self.names()
            .into_iter()
            .filter(|n| fsatomic::name::temp_target(n).is_some())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// `names` as a set, to compare with [`Fixture::names`].
pub fn set<const N: usize>(names: [&str; N]) -> BTreeSet<String> {
    names.into_iter().map(str::to_owned).collect()
}

/// Every name in `dir`, read with `std::fs`.
pub fn names_in(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("read_dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Write `bytes` to `path` with exactly `mode`, out of band (replacing what
/// was there).
pub fn plant_file(path: &Path, bytes: &[u8], mode: u32) {
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| io::Write::write_all(&mut f, bytes))
        .unwrap_or_else(|e| panic!("plant {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Plant a symbolic link at `link` pointing at `target`.
pub fn plant_symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {}: {e}", link.display(), target.display()));
}

/// The user other users' files are given to: `nobody` on Linux.
pub const OTHER_UID: u32 = 65534;

/// Give the file at `path` (not following a link) to [`OTHER_UID`], as if
/// another user had planted it; `false` if this process may not (it is
/// not root), and the caller skips the check.
pub fn give_away(path: &Path) -> bool {
    match std::os::unix::fs::lchown(path, Some(OTHER_UID), Some(OTHER_UID)) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            println!("not root: cannot plant a file of another user; check skipped");
            false
        }
        Err(e) => panic!("chown {}: {e}", path.display()),
    }
}

/// The owner of the file at `path` (not following a link).
pub fn uid_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .uid()
}

/// The permission bits of `path` (the link itself if it is one).
pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Everything about a file that a write, a truncation, a `chmod`, a
/// rename over it or a new hard link would change (all but the access
/// time), read without following a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The content (empty for anything but a regular file).
    pub bytes: Vec<u8>,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    /// `(st_dev, st_ino)`.
    pub inode: (u64, u64),
    /// `st_nlink`.
    pub links: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime` in nanoseconds.
    pub mtime: i128,
    /// `st_ctime` in nanoseconds (changes with any metadata change).
    pub ctime: i128,
}

impl Snapshot {
    /// Take a snapshot of `path`.
    pub fn of(path: &Path) -> Snapshot {
        let meta =
            fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let bytes = if meta.is_file() {
            fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        } else {
            Vec::new()
        };
        Snapshot {
            bytes,
            mode: meta.mode(),
            inode: (meta.dev(), meta.ino()),
            links: meta.nlink(),
            size: meta.size(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

// ---------------------------------------------------------------------------
// The document the store checks commit
// ---------------------------------------------------------------------------

/// How many copies of the count a [`Counter`] carries.
pub const FILLER: usize = 24;

/// A counter document whose every field repeats the count, so that a torn
/// or mixed read shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// The count.
    pub hits: u64,
    /// `FILLER` copies of `hits`.
    pub filler: [u64; FILLER],
}

impl Counter {
    /// A counter at `hits`.
    pub fn at(hits: u64) -> Counter {
        Counter {
            hits,
            filler: [hits; FILLER],
        }
    }

    /// Count one more.
    pub fn bump(&mut self) -> u64 {
        *self = Counter::at(self.hits + 1);
        self.hits
    }

    /// Whether every copy agrees: the document was written by one commit.
    pub fn is_whole(&self) -> bool {
        self.filler.iter().all(|&f| f == self.hits)
    }
}

/// A buffer that holds any [`Counter`] document.
pub const BUF: usize = 4096;

/// The counter store every concurrency check uses.
pub const COUNTER: fsatomic::Store<'static, Counter> =
    fsatomic::Store::new("counter.json", Mode::PRIVATE);

/// A journal record: one hit from an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The address.
    pub ip: u32,
}

/// The state a journal of [`Hit`]s folds into: how many, their sum, and
/// how many times a sequence number did not follow the one before (a lost
/// or doubled record shows there).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hits {
    /// How many hits.
    pub count: u64,
    /// The sum of their addresses.
    pub sum: u64,
    /// The sequence number of the last record folded in.
    pub last_seq: u64,
    /// Records whose sequence number was not the last one plus one.
    pub gaps: u64,
}

impl Hits {
    /// Whether this is the state after one hit from each address in `ips`,
    /// each folded in once, in sequence.
    pub fn is(&self, ips: std::ops::Range<u32>) -> bool {
        self.count == u64::from(ips.end - ips.start)
            && self.sum == ips.map(u64::from).sum::<u64>()
            && self.gaps == 0
    }
}

impl fsatomic::store::Fold<Hit> for Hits {
    fn apply(&mut self, seq: u64, record: &Hit) {
        if self.count > 0 && seq != self.last_seq + 1 {
            self.gaps += 1;
        }
        self.count += 1;
        self.sum += u64::from(record.ip);
        self.last_seq = seq;
    }
}

/// `store.save` of `Counter::at(hits)` through `dir`, which must succeed.
#[track_caller]
pub fn save_at<D: Dir<Error = io::Error>>(
    store: &fsatomic::Store<Counter>,
    dir: &mut D,
    hits: u64,
) {
    let saved = store.save(dir, &mut [0u8; BUF], &Counter::at(hits));
    saved.unwrap_or_else(|e| panic!("save {hits}: {e}"));
}

/// `store.load` through `dir`, which must succeed.
#[track_caller]
pub fn load_of<D: Dir<Error = io::Error>>(
    store: &fsatomic::Store<Counter>,
    dir: &mut D,
) -> Option<Counter> {
    let loaded = store.load(dir, &mut [0u8; BUF]);
    loaded.unwrap_or_else(|e| panic!("load: {e}"))
}

/// `store.update` with [`Counter::bump`] through `dir`, which must
/// succeed: the new count.
#[track_caller]
pub fn bump<D: Dir<Error = io::Error>>(store: &fsatomic::Store<Counter>, dir: &mut D) -> u64 {
    let bumped = store.update(dir, &mut [0u8; BUF], Counter::bump);
    bumped.unwrap_or_else(|e| panic!("update: {e}"))
}

/// The journal of [`Hit`]s, `hits.json`, that the journal checks use.
pub fn hits_journal(mode: Mode) -> fsatomic::JournalStore<'static, Hits, Hit> {
    fsatomic::JournalStore::new("hits.json", mode).expect("name")
}

/// `journal.append` of a hit from `ip` through `dir`, which must succeed:
/// its sequence number.
#[track_caller]
pub fn append_hit<D: Dir<Error = io::Error>>(
    journal: &mut fsatomic::JournalStore<Hits, Hit>,
    dir: &mut D,
    ip: u32,
) -> u64 {
    let appended = journal.append(dir, &mut [0u8; BUF], &Hit { ip });
    appended.unwrap_or_else(|e| panic!("append {ip}: {e}"))
}

/// The bytes a commit of `value` puts on disk.
pub fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = vec![0u8; BUF];
    let n = fsatomic::codec::encode(value, &mut buf).expect("encode");
    buf.truncate(n);
    buf
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// The environment variable that gives a child its role.
const ROLE_VAR: &str = "FSATOMIC_TESTKIT_ROLE";
/// The environment variable that gives a child its scratch tree.
const ROOT_VAR: &str = "FSATOMIC_TESTKIT_ROOT";

/// If this process is a child started by [`spawn_child`] for the test
/// `test`: its role and its scratch tree.
pub(crate) fn child_role(test: &str) -> Option<(String, Fixture)> {
    let role = std::env::var(ROLE_VAR).ok()?;
    let (for_test, role) = role.split_once('=')?;
    if for_test != test {
        return None;
    }
    let root = std::env::var_os(ROOT_VAR)?;
    Some((role.to_owned(), Fixture::attach(PathBuf::from(root))))
}

/// Re-run this test binary as a child that runs only `test`, in the role
/// `role`, on the scratch tree of `fixture`; under `sh -c 'umask U; exec …'`
/// if `umask` is given.
pub(crate) fn spawn_child(test: &str, role: &str, fixture: &Fixture, umask: Option<&str>) -> Child {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = match umask {
        Some(mask) => crate::runner::command_with_umask(mask, &exe),
        None => crate::runner::command(&exe),
    };
    spawn(child_command(&mut cmd, test, role, fixture), &exe)
}

/// [`spawn_child`], the child running as user and group `uid` (this
/// process must be root).
pub(crate) fn spawn_child_as(test: &str, role: &str, fixture: &Fixture, uid: u32) -> Child {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = crate::runner::command(&exe);
    spawn(
        child_command(&mut cmd, test, role, fixture)
            .uid(uid)
            .gid(uid),
        &exe,
    )
}

/// The arguments, role and pipes of a child running `test`.
fn child_command<'c>(
    cmd: &'c mut std::process::Command,
    test: &str,
    role: &str,
    fixture: &Fixture,
) -> &'c mut std::process::Command {
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, format!("{test}={role}"))
        .env(ROOT_VAR, fixture.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

fn spawn(cmd: &mut std::process::Command, exe: &Path) -> Child {
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()))
}

/// Wait for a child; panic with its output unless it succeeded and left the
/// marker `done-ROLE` (which proves the child ran the check, not zero tests).
/// Returns the marker's content.
pub(crate) fn finish_child(child: Child, role: &str, fixture: &Fixture) -> String {
    let out = child.wait_with_output().expect("wait for child");
    let marker = fixture.root().join(format!("done-{role}"));
    let report = fs::read_to_string(&marker);
    assert!(
        out.status.success() && report.is_ok(),
        "child {role} failed ({}; marker: {report:?})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    report.unwrap_or_default()
}

/// Run `test` in a child process for each of `roles`, all at once, and
/// [`finish_child`] each.
pub(crate) fn run_children(test: &str, roles: [&str; 2], fixture: &Fixture) {
    let children = roles.map(|role| (role, spawn_child(test, role, fixture, None)));
    for (role, child) in children {
        finish_child(child, role, fixture);
    }
}

/// In a child: leave the marker `done-ROLE` with `report`.
pub(crate) fn child_done(fixture: &Fixture, role: &str, report: &str) {
    fs::write(fixture.root().join(format!("done-{role}")), report).expect("write child marker");
}

/// Wait until `path` exists; panics after `limit` (a hung child, not a
/// timing assertion: the wait normally ends in milliseconds).
pub(crate) fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < limit,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
