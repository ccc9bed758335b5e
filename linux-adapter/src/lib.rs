//! [`fsatomic`] on Linux, straight over the syscalls through `rustix`.
//!
//! [`LinuxDir`] holds one directory file descriptor and does everything
//! relative to it (`openat`, `renameat`, `unlinkat`, `fsync(dirfd)`), so a
//! path swapped under a running commit redirects nothing. Files are created
//! with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` and then `fchmod`ed to the
//! exact mode, so the umask never widens or narrows what the caller asked
//! for, and a file never exists with a wider mode than asked. Temporary names
//! carry 64 bits from `getrandom`. Locks are `flock` on a sidecar file that is
//! never replaced. `statfs` tells which filesystem the directory is on, and
//! whether renaming over a name is crash-atomic there: only filesystems
//! known to make it so say yes ([`Filesystem::from_magic`] has the list);
//! FUSE, network and FAT-like filesystems and unknown ones say no, so they
//! get the Slots protocol by default.
//!
//! `EINTR` is retried everywhere. A failed flush is never retried: after an
//! `EIO` from `fsync` the kernel may have dropped the dirty pages, and a
//! second `fsync` could report success for data that is gone.
//!
//! ```no_run
//! use fsatomic::{Mode, Store};
//! use fsatomic_linux::LinuxDir;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct FirstBoot { done: bool }
//!
//! let mut dir = LinuxDir::open("/var/lib/nos/state")?;
//! let store: Store<FirstBoot> = Store::new("firstboot.json", Mode::PRIVATE);
//! let mut buf = [0u8; 256];
//! store.save(&mut dir, &mut buf, &FirstBoot { done: true })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fsatomic::{Capabilities, Mode};
use rustix::fs::{self as rfs, AtFlags, FileType, FlockOperation, OFlags};
use rustix::io::Errno;

pub mod array;
pub mod nas;

/// Retry `f` while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

fn rmode(mode: Mode) -> rfs::Mode {
    rfs::Mode::from_bits_truncate(mode.bits())
}

/// A filesystem, as `statfs` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filesystem {
    /// The `f_type` magic number.
    pub magic: u64,
    /// Its name (`"ext2/ext3/ext4"`, `"vfat/msdos"`, `"fuse/fuseblk"`), or
    /// `"unknown (0x…)"` with the magic number in hex.
    pub name: &'static str,
    /// Whether renaming over an existing name is crash-atomic there.
    pub atomic_replace: bool,
}

/// The filesystems this adapter knows: magic, name, whether renaming over a
/// name is crash-atomic, and why.
///
/// It is an allow-list: only filesystems known to make a rename over an
/// existing name crash-atomic (after a power cut the name is the old file
/// or the new one, never absent, never a mix) get `true`, and with it the
/// Replace protocol by default. Every other filesystem, named here or not,
/// gets `false`, so `Protocol::Auto` picks Slots, which needs no atomic
/// rename and is correct on any filesystem; it costs a little more (two
/// slot files, a fixed size), never safety. Getting a `true` wrong loses
/// files; getting a `false` wrong costs space.
const KNOWN: &[(u64, &str, bool, &str)] = &[
    // Crash-atomic rename.
    (
        0xEF53,
        "ext2/ext3/ext4",
        true,
        "ext3 and ext4 journal the rename as one transaction; ext2, which shares the magic, rewrites the inode number of the existing entry in place (one sector)",
    ),
    (
        0x5846_5342,
        "xfs",
        true,
        "the rename is one transaction of the metadata journal",
    ),
    (
        0x9123_683E,
        "btrfs",
        true,
        "copy-on-write trees: the rename lands with one transaction commit or not at all",
    ),
    (
        0xF2F5_2010,
        "f2fs",
        true,
        "directory updates reach the disk through its atomic checkpoints; Android's AtomicFile relies on it",
    ),
    (
        0x2405_1905,
        "ubifs",
        true,
        "journaled: every metadata operation, rename included, is atomic",
    ),
    (
        0x72B6,
        "jffs2",
        true,
        "log-structured: the new entry is one checksummed node that supersedes the old one, or is ignored if torn",
    ),
    (
        0x2FC1_2FC1,
        "zfs",
        true,
        "copy-on-write transaction groups: the rename lands whole or not at all",
    ),
    (
        0xCA45_1A4E,
        "bcachefs",
        true,
        "the rename is one journaled btree transaction",
    ),
    (0x0102_1994, "tmpfs", true, IN_MEMORY),
    (0x8584_58F6, "ramfs", true, IN_MEMORY),
    // Not crash-atomic, or not known to be.
    (
        0x4D44,
        "vfat/msdos",
        false,
        "FAT has no journal: a rename is several separate updates of directory entries and the allocation table",
    ),
    (
        0x2011_BAB0,
        "exfat",
        false,
        "exFAT has no journal: a rename is several separate updates of directory entries",
    ),
    (
        0x5346_544E,
        "ntfs",
        false,
        "the Linux NTFS drivers do not journal their own updates in $LogFile: a rename is several separate updates",
    ),
    (
        0x7366_746E,
        "ntfs3",
        false,
        "the Linux NTFS drivers do not journal their own updates in $LogFile (ntfs3 only replays it at mount): a rename is several separate updates",
    ),
    (
        0x482B,
        "hfsplus",
        false,
        "the Linux driver does not write the HFS+ journal: a rename is several separate updates",
    ),
    (
        0x6573_5546,
        "fuse/fuseblk",
        false,
        "a FUSE daemon (ntfs-3g, exfat-fuse, sshfs...) decides what a rename does, and statfs does not say which",
    ),
    (
        0x6969,
        "nfs",
        false,
        "a network filesystem: the rename happens on a server whose filesystem and durability (async exports) the client cannot see",
    ),
    (0xFF53_4D42, "cifs", false, NETWORK),
    (0xFE53_4D42, "smb2", false, NETWORK),
    (0x0102_1997, "9p", false, NETWORK),
    (
        0x00C3_6400,
        "ceph",
        false,
        "a network filesystem: the rename happens on servers whose durability the client cannot see",
    ),
    (
        0x794C_7630,
        "overlayfs",
        false,
        "a stacked filesystem: a rename is as atomic as the upper filesystem, which statfs does not tell",
    ),
    (
        0xF15F,
        "ecryptfs",
        false,
        "a stacked filesystem: a rename is as atomic as the lower filesystem, which statfs does not tell",
    ),
    (0x7371_7368, "squashfs", false, READ_ONLY),
    (0xE0F5_E1E2, "erofs", false, READ_ONLY),
];

/// Why [`KNOWN`]'s in-memory filesystems count as crash-atomic.
const IN_MEMORY: &str =
    "in memory: nothing survives a power cut, and a rename is atomic for every reader";
/// Why [`KNOWN`]'s network filesystems do not.
const NETWORK: &str = "a network filesystem: the rename happens on a server whose filesystem and durability the client cannot see";
/// Why [`KNOWN`]'s read-only filesystems do not.
const READ_ONLY: &str = "read-only: nothing can be committed there";

/// Why an unknown filesystem is not trusted with Replace.
const UNKNOWN_WHY: &str =
    "a filesystem this adapter does not know is not assumed to rename crash-atomically";

impl Filesystem {
    /// The filesystem with `statfs` magic `magic` (only the low 32 bits
    /// count, as the kernel's magic numbers are 32-bit).
    ///
    /// Renaming over a name is taken as crash-atomic only on filesystems
    /// known to make it so (ext2/3/4, xfs, btrfs, f2fs, ubifs, jffs2, zfs,
    /// bcachefs, tmpfs, ramfs); everywhere else — FAT, exFAT, NTFS, FUSE
    /// (`fuseblk` included), network filesystems, overlayfs, and any
    /// filesystem not in the table — it is not, and `Protocol::Auto` picks
    /// Slots. [`Filesystem::why`] says why.
    ///
    /// ```
    /// use fsatomic_linux::Filesystem;
    /// assert!(Filesystem::from_magic(0xEF53).atomic_replace);
    /// assert!(!Filesystem::from_magic(0x6573_5546).atomic_replace); // fuseblk
    /// assert_eq!(Filesystem::from_magic(0x1234).name, "unknown (0x1234)");
    /// ```
    pub fn from_magic(magic: u64) -> Filesystem {
        let magic = magic & 0xFFFF_FFFF;
        match KNOWN.iter().find(|(m, ..)| *m == magic) {
            Some(&(_, name, atomic_replace, _)) => Filesystem {
                magic,
                name,
                atomic_replace,
            },
            None => Filesystem {
                magic,
                name: unknown_name(magic),
                atomic_replace: false,
            },
        }
    }

    /// Why renaming over a name is, or is not, crash-atomic here: one
    /// clause, for messages (`fsatomic check` prints it).
    pub fn why(&self) -> &'static str {
        KNOWN
            .iter()
            .find(|(m, ..)| *m == self.magic)
            .map_or(UNKNOWN_WHY, |&(.., why)| why)
    }
}

/// `"unknown (0x…)"` for `magic`, interned: one small string per distinct
/// unknown magic number seen by the process, which mounts bound.
fn unknown_name(magic: u64) -> &'static str {
    use std::sync::Mutex;
    static NAMES: Mutex<Vec<(u64, &'static str)>> = Mutex::new(Vec::new());
    let mut names = NAMES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&(_, name)) = names.iter().find(|(m, _)| *m == magic) {
        return name;
    }
    let name: &'static str = Box::leak(format!("unknown (0x{magic:x})").into_boxed_str());
    names.push((magic, name));
    name
}

/// A directory held open by file descriptor: the Linux [`fsatomic::Dir`].
#[derive(Debug)]
pub struct LinuxDir {
    fd: OwnedFd,
    filesystem: Filesystem,
    flushes: Arc<AtomicU64>,
    lock_timeout: Option<std::time::Duration>,
    owner: fsatomic::Owner,
}

impl LinuxDir {
    /// Open the existing directory `path`.
    ///
    /// The path is resolved once, here; every later operation is relative
    /// to the descriptor.
    pub fn open(path: impl AsRef<Path>) -> io::Result<LinuxDir> {
        LinuxDir::from_fd(open_dir_path(path.as_ref())?)
    }

    /// Open the directory `path`, first creating it and any missing parents
    /// with permissions `mode` (exactly, whatever the umask). Returns the
    /// directory and the directories that were made, outermost first.
    ///
    /// Symbolic links among the existing components are followed, as
    /// [`LinuxDir::open`] follows them (`/var/run/x` with `/var/run` a link
    /// to `/run` opens `/run/x`); a directory this call made is opened
    /// without following, so a link swapped in for it is refused. A
    /// dangling link is not made into a directory: that fails (`NotFound`).
    ///
    /// Each new directory is made durable before the next step: after
    /// `mkdirat`, its parent is flushed, so a power cut cannot lose a
    /// directory that a later commit's success depends on.
    pub fn create_all(path: impl AsRef<Path>, mode: Mode) -> io::Result<(LinuxDir, Vec<PathBuf>)> {
        let path = path.as_ref();
        let mut made = Vec::new();
        let mut current = PathBuf::new();
        let mut fd: Option<OwnedFd> = None;
        for component in path.components() {
            match component {
                Component::RootDir => current.push("/"),
                Component::CurDir => {
                    if current.as_os_str().is_empty() {
                        current.push(".");
                    }
                    continue;
                }
                Component::Prefix(_) => {}
                Component::ParentDir | Component::Normal(_) => {
                    current.push(component);
                    if fd.is_none() {
                        fd = Some(open_dir_path(
                            current
                                .parent()
                                .filter(|p| !p.as_os_str().is_empty())
                                .unwrap_or(Path::new(".")),
                        )?);
                    }
                    let Some(parent) = fd.as_ref() else { continue };
                    let name = component.as_os_str();
                    match retry(|| rfs::mkdirat(parent, name, rmode(mode))) {
                        Ok(()) => {
                            // The directory just made: never a link.
                            let child = open_dir_at(parent, name, false)?;
                            retry(|| rfs::fchmod(&child, rmode(mode)))?;
                            retry(|| rfs::fsync(parent))?;
                            made.push(current.clone());
                            fd = Some(child);
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            // An existing component is followed if it is a
                            // symbolic link, as `open` follows it (and as
                            // `mkdir -p` does): `/var/run` -> `/run`.
                            fd = Some(open_dir_at(parent, name, true)?);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let fd = match fd {
            Some(fd) => fd,
            None => open_dir_path(if current.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &current
            })?,
        };
        Ok((LinuxDir::from_fd(fd)?, made))
    }

    fn from_fd(fd: OwnedFd) -> io::Result<LinuxDir> {
        let st = retry(|| rfs::fstatfs(&fd))?;
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        let magic = st.f_type as u64 & 0xFFFF_FFFF;
        Ok(LinuxDir {
            fd,
            filesystem: Filesystem::from_magic(magic),
            flushes: Arc::new(AtomicU64::new(0)),
            lock_timeout: None,
            owner: fsatomic::Owner::default(),
        })
    }

    /// Give every file this handle creates from now on — temporary files,
    /// journals, slots, lock files — to `owner` (`fchown` right after the
    /// exclusive create, before the mode is set and before any write), and
    /// accept files owned by `owner.uid` for writing in place (slots, a
    /// journal), besides the process's own.
    ///
    /// Only root may give a file to another user: for another process,
    /// asking for a uid other than its own fails here (`PermissionDenied`),
    /// before anything is touched. A group is checked by the kernel at the
    /// first create (a member of the group may give it).
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use fsatomic::Owner;
    /// let mut dir = fsatomic_linux::LinuxDir::open("/var/lib/app")?;
    /// dir.set_owner(Owner { uid: Some(998), gid: Some(998) })?; // app:app
    /// # Ok(()) }
    /// ```
    pub fn set_owner(&mut self, owner: fsatomic::Owner) -> io::Result<()> {
        let euid = rustix::process::geteuid().as_raw();
        if let Some(uid) = owner.uid.filter(|&u| u != euid && euid != 0) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "only root can give files to another user (uid {uid}); this process is uid {euid}"
                ),
            ));
        }
        if owner.uid == Some(u32::MAX) || owner.gid == Some(u32::MAX) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "uid or gid 4294967295 (-1) is not an id",
            ));
        }
        self.owner = owner;
        Ok(())
    }

    /// `fchown` a file this handle just created to the configured owner.
    fn give(&self, fd: &OwnedFd) -> io::Result<()> {
        if self.owner.is_none() {
            return Ok(());
        }
        let uid = self.owner.uid.map(rustix::process::Uid::from_raw);
        let gid = self.owner.gid.map(rustix::process::Gid::from_raw);
        retry(|| rfs::fchown(fd, uid, gid)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "giving it to uid {} gid {} with fchown failed ({e})",
                    self.owner.uid.map_or("-".into(), |u| u.to_string()),
                    self.owner.gid.map_or("-".into(), |g| g.to_string())
                ),
            )
        })
    }

    /// Bound the wait of every later [`fsatomic::Dir::lock`] through this
    /// handle — so of every `save`, `update`, `append` and compaction that
    /// takes the writers' lock: `None` (the default) waits as long as
    /// another writer holds it; `Some(limit)` gives up after `limit`
    /// (`Duration::ZERO`: one try, like `flock -n`) with an error whose
    /// kind is `TimedOut`, before any file is touched
    /// ([`fsatomic::Error::is_lock_busy`]).
    ///
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let mut dir = fsatomic_linux::LinuxDir::open("/var/lib/app")?;
    /// dir.set_lock_timeout(Some(std::time::Duration::from_secs(5)));
    /// # Ok(()) }
    /// ```
    pub fn set_lock_timeout(&mut self, limit: Option<std::time::Duration>) {
        self.lock_timeout = limit;
    }

    /// How many flush barriers (`fsync`, `fdatasync`, on files of this
    /// directory or on the directory itself) succeeded through this handle
    /// and the files it opened. Telemetry for reports and benchmarks: the
    /// protocols' cost is counted in these.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn file(&self, fd: OwnedFd) -> LinuxFile {
        LinuxFile {
            fd,
            flushes: self.flushes.clone(),
        }
    }

    /// The filesystem the directory is on.
    pub fn filesystem(&self) -> Filesystem {
        self.filesystem
    }

    fn open_checked(
        &self,
        name: &str,
        flags: OFlags,
        single_link: bool,
    ) -> io::Result<Option<LinuxFile>> {
        let fd = match retry(|| {
            rfs::openat(
                &self.fd,
                name,
                flags | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
                rfs::Mode::empty(),
            )
        }) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{name} is a symbolic link; refusing to follow it"),
                ));
            }
            Err(e) => return Err(e),
        };
        check_regular(&fd, name, single_link)?;
        Ok(Some(self.file(fd)))
    }

    /// `fchmod` the open file `fd`, of status `st`, to `st`'s mode
    /// narrowed to `mode` if it is wider; `Ok(true)` if it was narrowed.
    fn narrow(fd: &OwnedFd, st: &rfs::Stat, mode: Mode) -> io::Result<bool> {
        let current = Mode::new(st.st_mode & 0o7777).unwrap_or(Mode::PRIVATE);
        if !current.is_wider_than(mode) {
            return Ok(false);
        }
        retry(|| rfs::fchmod(fd, rmode(current.narrowed_to(mode))))?;
        Ok(true)
    }
}

/// Refuse, for writing in place, a file (of status `st`) not owned by this
/// process's effective user, nor by the owner the caller gives its files
/// (`also`): planted by someone else in a shared directory, it would
/// receive our data where its owner can read it.
fn check_owner(st: &rfs::Stat, name: &str, also: Option<u32>) -> io::Result<()> {
    let euid = rustix::process::geteuid().as_raw();
    if st.st_uid != euid && Some(st.st_uid) != also {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{name} is owned by uid {}, not by this user (uid {euid}); refusing to write into a file someone else controls (if it is this state's, chown it to uid {euid}; else remove it)",
                st.st_uid
            ),
        ));
    }
    Ok(())
}

fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    retry(|| {
        rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rfs::Mode::empty(),
        )
    })
}

/// Open the directory `name` in `parent`; a symbolic link there is followed
/// only if `follow`.
fn open_dir_at(parent: &OwnedFd, name: &std::ffi::OsStr, follow: bool) -> io::Result<OwnedFd> {
    let nofollow = if follow {
        OFlags::empty()
    } else {
        OFlags::NOFOLLOW
    };
    retry(|| {
        rfs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | nofollow,
            rfs::Mode::empty(),
        )
    })
}

/// Refuse anything but a regular file, and (for files we write in place) a
/// file with more than one hard link.
fn check_regular(fd: &OwnedFd, name: &str, single_link: bool) -> io::Result<()> {
    let st = retry(|| rfs::fstat(fd))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not a regular file"),
        ));
    }
    if single_link && st.st_nlink != 1 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{name} has {} hard links; refusing to write through it",
                st.st_nlink
            ),
        ));
    }
    Ok(())
}

impl AsFd for LinuxDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An open file of a [`LinuxDir`].
#[derive(Debug)]
pub struct LinuxFile {
    fd: OwnedFd,
    flushes: Arc<AtomicU64>,
}

impl AsFd for LinuxFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl embedded_io::ErrorType for LinuxFile {
    type Error = io::Error;
}

impl embedded_io::Read for LinuxFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| rustix::io::read(&self.fd, &mut *buf))
    }
}

impl embedded_io::Write for LinuxFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry(|| rustix::io::write(&self.fd, buf))
    }

    /// Nothing is buffered in user space; this is not a durability barrier.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl embedded_io::Seek for LinuxFile {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            embedded_io::SeekFrom::Start(n) => rfs::SeekFrom::Start(n),
            embedded_io::SeekFrom::End(n) => rfs::SeekFrom::End(n),
            embedded_io::SeekFrom::Current(n) => rfs::SeekFrom::Current(n),
        };
        retry(|| rfs::seek(&self.fd, pos))
    }
}

impl fsatomic::File for LinuxFile {
    fn sync_data(&mut self) -> io::Result<()> {
        // EINTR only: an EIO is returned as is and never retried.
        retry(|| rfs::fdatasync(&self.fd))?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        retry(|| rfs::fsync(&self.fd))?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        retry(|| rfs::ftruncate(&self.fd, len))
    }
}

/// A held `flock(LOCK_EX)` on a sidecar lock file; closing the descriptor
/// (dropping this) releases it, and so does the death of the process.
#[derive(Debug)]
pub struct LinuxLock {
    _fd: OwnedFd,
}

/// The lock file's descriptor, e.g. to let a child process inherit the
/// lock (the `fsatomic lock` command does, as `flock(1)` does).
impl AsFd for LinuxLock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self._fd.as_fd()
    }
}

/// The lock file's descriptor, still holding the lock (the C API hands it
/// to its caller, who releases it by closing it).
impl From<LinuxLock> for OwnedFd {
    fn from(lock: LinuxLock) -> OwnedFd {
        lock._fd
    }
}

impl fsatomic::Dir for LinuxDir {
    type Error = io::Error;
    type File = LinuxFile;
    type Lock = LinuxLock;

    fn capabilities(&self) -> Capabilities {
        // Every filesystem with crash-atomic rename here commits its
        // metadata in order (a journal, a log, copy-on-write transactions;
        // ext2, which shares ext4's magic and has no journal, is the one
        // exception, docs/design.md §14).
        Capabilities::new(self.filesystem.atomic_replace, self.filesystem.name)
            .with_ordered_names(self.filesystem.atomic_replace)
    }

    fn unique_token(&mut self) -> io::Result<u64> {
        let mut bytes = [0u8; 8];
        let mut filled = 0;
        while filled < bytes.len() {
            let n = retry(|| {
                rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
            })?;
            filled += n;
        }
        Ok(u64::from_le_bytes(bytes))
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> io::Result<LinuxFile> {
        let fd = retry(|| {
            rfs::openat(
                &self.fd,
                name,
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                rmode(mode),
            )
        })?;
        // Its owner first (fchown may clear set-id bits; the mode comes
        // after). If that fails, remove it: nobody else knows its name.
        if let Err(e) = self.give(&fd) {
            drop(fd);
            let _ = rfs::unlinkat(&self.fd, name, AtFlags::empty());
            return Err(io::Error::new(
                e.kind(),
                format!("created, but {e}; removed it"),
            ));
        }
        // The file was created with `mode` cut by the umask; widen it to
        // exactly `mode`. It was never wider. If that fails, the file is
        // not the one asked for: remove it (nobody else knows its name)
        // and say that it was the mode, not the create, that failed.
        if let Err(e) = retry(|| rfs::fchmod(&fd, rmode(mode))) {
            drop(fd);
            let _ = rfs::unlinkat(&self.fd, name, AtFlags::empty());
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "created, but setting its mode to {:04o} with fchmod failed ({e}); removed it",
                    mode.bits()
                ),
            ));
        }
        Ok(self.file(fd))
    }

    fn open_read(&mut self, name: &str) -> io::Result<Option<LinuxFile>> {
        self.open_checked(name, OFlags::RDONLY, false)
    }

    /// `fstatat(AT_SYMLINK_NOFOLLOW)`: one syscall, and a symbolic link
    /// counts as existing (it is never followed).
    fn exists(&mut self, name: &str) -> io::Result<bool> {
        match retry(|| rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// As in [`fsatomic::Dir::open_write`]: `openat(O_RDWR|O_NOFOLLOW)`,
    /// then `fstat` of the descriptor opened (not of the name, so nothing
    /// can be swapped in between): a regular file, one hard link, owned by
    /// `geteuid()`, or `PermissionDenied` naming what is wrong. A mode
    /// wider than `mode` is narrowed with `fchmod` and made durable with
    /// `fsync` before the file is returned.
    fn open_write(&mut self, name: &str, mode: Mode) -> io::Result<Option<LinuxFile>> {
        let Some(file) = self.open_checked(name, OFlags::RDWR, true)? else {
            return Ok(None);
        };
        let st = retry(|| rfs::fstat(&file.fd))?;
        check_owner(&st, name, self.owner.uid)?;
        if Self::narrow(&file.fd, &st, mode)? {
            retry(|| rfs::fsync(&file.fd))?;
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(file))
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        retry(|| rfs::renameat(&self.fd, from, &self.fd, to))
    }

    fn link(&mut self, from: &str, to: &str) -> io::Result<()> {
        // No AT_SYMLINK_FOLLOW: a symbolic link is linked as itself.
        retry(|| rfs::linkat(&self.fd, from, &self.fd, to, AtFlags::empty()))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        match retry(|| rfs::unlinkat(&self.fd, name, AtFlags::empty())) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        retry(|| rfs::fsync(&self.fd))?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn for_each_entry(&mut self, visit: &mut dyn FnMut(&str) -> ControlFlow<()>) -> io::Result<()> {
        let mut entries = rfs::Dir::read_from(&self.fd)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                continue; // not UTF-8: not a name this library made
            };
            if name == "." || name == ".." {
                continue;
            }
            if visit(name).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn lock(&mut self, name: &str, mode: Mode) -> io::Result<LinuxLock> {
        // The lock file exists on every commit but the first: open it
        // first (read-only, checked to be a regular file with one link;
        // never write it), and create it only when it is missing. One of
        // ours that is wider than `mode` (older versions made lock files
        // readable by all, and whoever can open one can hold the lock
        // forever) is narrowed; with one link, it is no other file.
        let fd = match self.open_checked(name, OFlags::RDONLY, true)? {
            Some(file) => {
                let st = retry(|| rfs::fstat(&file.fd))?;
                if st.st_uid == rustix::process::geteuid().as_raw() {
                    Self::narrow(&file.fd, &st, mode)?;
                }
                file.fd
            }
            None => match retry(|| {
                rfs::openat(
                    &self.fd,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    rmode(mode),
                )
            }) {
                Ok(fd) => {
                    if let Err(e) = self.give(&fd) {
                        drop(fd);
                        let _ = rfs::unlinkat(&self.fd, name, AtFlags::empty());
                        return Err(e);
                    }
                    retry(|| rfs::fchmod(&fd, rmode(mode)))?;
                    fd
                }
                // Created by another writer meanwhile: open that one.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return self.lock(name, mode),
                Err(e) => return Err(e),
            },
        };
        fsatomic::lock::wait_bounded(
            self.lock_timeout,
            || match retry(|| rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            },
            || retry(|| rfs::flock(&fd, FlockOperation::LockExclusive)),
        )?;
        Ok(LinuxLock { _fd: fd })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_crash_atomic_filesystems_get_atomic_replace() {
        for (magic, name) in [
            (0xEF53, "ext2/ext3/ext4"),
            (0x5846_5342, "xfs"),
            (0x9123_683E, "btrfs"),
            (0xF2F5_2010, "f2fs"),
            (0x2405_1905, "ubifs"),
            (0x72B6, "jffs2"),
            (0x0102_1994, "tmpfs"),
            (0x2FC1_2FC1, "zfs"),
        ] {
            let fs = Filesystem::from_magic(magic);
            assert_eq!(fs.name, name);
            assert!(fs.atomic_replace, "{name}");
        }
        for (magic, name) in [
            (0x6573_5546, "fuse/fuseblk"),
            (0x2011_BAB0, "exfat"),
            (0x7366_746E, "ntfs3"),
            (0x5346_544E, "ntfs"),
            (0x4D44, "vfat/msdos"),
            (0x6969, "nfs"),
            (0xFF53_4D42, "cifs"),
            (0xFE53_4D42, "smb2"),
            (0x0102_1997, "9p"),
            (0x794C_7630, "overlayfs"),
        ] {
            let fs = Filesystem::from_magic(magic);
            assert_eq!(fs.name, name);
            assert!(!fs.atomic_replace, "{name} must not get Replace");
            assert!(!fs.why().is_empty());
        }
    }

    #[test]
    fn an_unknown_filesystem_is_not_atomic_and_says_its_magic() {
        let fs = Filesystem::from_magic(0x1234_5678);
        assert!(!fs.atomic_replace);
        assert_eq!(fs.name, "unknown (0x12345678)");
        assert_eq!(fs.why(), UNKNOWN_WHY);
        // The same name each time, without a new string.
        assert!(std::ptr::eq(
            fs.name,
            Filesystem::from_magic(0x1234_5678).name
        ));
        // The kernel's magic numbers are 32-bit; a sign-extended f_type
        // is the same filesystem.
        assert_eq!(Filesystem::from_magic(0xFFFF_FFFF_FF53_4D42).name, "cifs");
    }

    #[test]
    fn every_known_magic_appears_once() {
        for (i, (magic, name, ..)) in KNOWN.iter().enumerate() {
            assert!(
                KNOWN.iter().skip(i + 1).all(|(m, ..)| m != magic),
                "{name} twice"
            );
        }
    }

    #[test]
    fn the_scratch_directory_is_on_a_known_filesystem_or_refused() {
        // Whatever the machine's temporary directory is on, the adapter
        // names it and answers consistently with the table.
        let dir = LinuxDir::open(std::env::temp_dir()).unwrap();
        let fs = dir.filesystem();
        assert_eq!(fs, Filesystem::from_magic(fs.magic));
        assert_eq!(
            fsatomic::Dir::capabilities(&dir).atomic_replace,
            fs.atomic_replace
        );
    }
}
