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
//! whether renaming over a name is crash-atomic there.
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
    /// Its name (`"ext4"`, `"vfat"`), or `"unknown"`.
    pub name: &'static str,
    /// Whether renaming over an existing name is crash-atomic there.
    pub atomic_replace: bool,
}

impl Filesystem {
    /// The filesystem with `statfs` magic `magic`.
    pub fn from_magic(magic: u64) -> Filesystem {
        let (name, atomic_replace) = match magic {
            0xEF53 => ("ext4", true),
            0x5846_5342 => ("xfs", true),
            0x9123_683E => ("btrfs", true),
            0xF2F5_2010 => ("f2fs", true),
            0x2405_1905 => ("ubifs", true),
            0x72B6 => ("jffs2", true),
            0x0102_1994 => ("tmpfs", true),
            0x794C_7630 => ("overlayfs", true),
            0x6969 => ("nfs", true),
            0x5346_544E => ("ntfs", true),
            0x7366_746E => ("ntfs3", true),
            0x2FC1_2FC1 => ("zfs", true),
            0x4D44 => ("vfat", false),
            0x2011_BAB0 => ("exfat", false),
            _ => ("unknown", true),
        };
        Filesystem {
            magic,
            name,
            atomic_replace,
        }
    }
}

/// A directory held open by file descriptor: the Linux [`fsatomic::Dir`].
#[derive(Debug)]
pub struct LinuxDir {
    fd: OwnedFd,
    filesystem: Filesystem,
    flushes: Arc<AtomicU64>,
}

impl LinuxDir {
    /// Open the existing directory `path`.
    ///
    /// The path is resolved once, here; every later operation is relative
    /// to the descriptor.
    pub fn open(path: impl AsRef<Path>) -> io::Result<LinuxDir> {
        let fd = retry(|| {
            rfs::open(
                path.as_ref(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                rfs::Mode::empty(),
            )
        })?;
        LinuxDir::from_fd(fd)
    }

    /// Open the directory `path`, first creating it and any missing parents
    /// with permissions `mode` (exactly, whatever the umask). Returns the
    /// directory and the directories that were made, outermost first.
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
                            let child = open_dir_at(parent, name)?;
                            retry(|| rfs::fchmod(&child, rmode(mode)))?;
                            retry(|| rfs::fsync(parent))?;
                            made.push(current.clone());
                            fd = Some(child);
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            fd = Some(open_dir_at(parent, name)?);
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
        })
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

fn open_dir_at(parent: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<OwnedFd> {
    retry(|| {
        rfs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
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

impl fsatomic::Dir for LinuxDir {
    type Error = io::Error;
    type File = LinuxFile;
    type Lock = LinuxLock;

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.filesystem.atomic_replace, self.filesystem.name)
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
        // The file was created with `mode` cut by the umask; widen it to
        // exactly `mode`. It was never wider.
        retry(|| rfs::fchmod(&fd, rmode(mode)))?;
        Ok(self.file(fd))
    }

    fn open_read(&mut self, name: &str) -> io::Result<Option<LinuxFile>> {
        self.open_checked(name, OFlags::RDONLY, false)
    }

    fn open_write(&mut self, name: &str) -> io::Result<Option<LinuxFile>> {
        self.open_checked(name, OFlags::RDWR, true)
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        retry(|| rfs::renameat(&self.fd, from, &self.fd, to))
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
        // first (read-only, checked to be a regular file; never chmod or
        // write it — it might be a hard link planted to another file), and
        // create it only when it is missing.
        let fd = match self.open_checked(name, OFlags::RDONLY, true)? {
            Some(file) => file.fd,
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
                    retry(|| rfs::fchmod(&fd, rmode(mode)))?;
                    fd
                }
                // Created by another writer meanwhile: open that one.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return self.lock(name, mode),
                Err(e) => return Err(e),
            },
        };
        retry(|| rfs::flock(&fd, FlockOperation::LockExclusive))?;
        Ok(LinuxLock { _fd: fd })
    }
}
