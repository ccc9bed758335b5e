//! [`fsatomic`] over `std::fs`, for Linux, macOS and Windows desktops.
//!
//! ```no_run
//! use fsatomic::{Mode, Store};
//! use fsatomic_std::StdDir;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Default)]
//! struct Settings { launches: u32 }
//!
//! let (mut dir, _made) = StdDir::create_all("state", Mode::new(0o700).unwrap())?;
//! let store: Store<Settings> = Store::new("settings.json", Mode::PRIVATE);
//! let mut buf = [0u8; 512];
//! // Lock, load (or Default), modify, commit durably, unlock.
//! let launches = store.update(&mut dir, &mut buf, |s| { s.launches += 1; s.launches })?;
//! println!("launch #{launches}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`StdDir`] implements [`fsatomic::Dir`] with nothing but the standard
//! library. Every method keeps the trait's power-cut contract (see
//! [`fsatomic::fs`]); where std cannot give the same strength as the Linux
//! adapter, the method's documentation says so.
//!
//! # Path-based, not descriptor-based
//!
//! std has no `openat`: every operation names `directory/NAME` by path, and
//! the kernel resolves that path again at each call. The directory's path is
//! made absolute (and its symbolic links resolved) once, in
//! [`StdDir::open`], so a change of the working directory redirects nothing.
//! But an attacker who can rename or replace the directory itself, or one of
//! its parents, between two calls can redirect the later calls into a
//! directory of their choice. The final component of every name is still
//! never followed (`O_NOFOLLOW`, exclusive create), so no write goes
//! *through* a planted link. For state in directories that other users can
//! modify, on Linux, use `fsatomic-linux`, which holds the directory open
//! and does everything relative to its descriptor.
//!
//! # Unix
//!
//! - Files are created with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` and the
//!   requested mode (which the umask can only narrow), then `fchmod`ed to
//!   exactly that mode: never wider than asked, whatever the umask.
//! - Existing files are opened with `O_NOFOLLOW|O_NONBLOCK` (no FIFO can
//!   block a reader), and anything but a regular file is refused; a file
//!   opened for writing in place must have a single hard link and be owned
//!   by the effective user, and its mode is narrowed to the call's if it
//!   is wider. std has no `geteuid`: the effective user is the owner of a
//!   pipe made for the purpose, which the kernel gives the owner it gives
//!   a new file.
//! - The directory is flushed by opening it and calling `fsync` on it.
//! - `fsync`, `fdatasync`, `open` and `ftruncate` are retried on `EINTR` by
//!   std itself; this crate retries reads, writes and `flock` that report
//!   [`io::ErrorKind::Interrupted`]. A failed flush is never retried.
//! - macOS: std's [`std::fs::File::sync_all`] issues `fcntl(F_FULLFSYNC)`,
//!   the only call that pushes data past the drive's cache there; so does
//!   `sync_data` (std issues it for both).
//! - `O_NOFOLLOW` and `O_NONBLOCK` are not exported by std; their values are
//!   written below for Linux (per architecture), Android, the Apple systems
//!   and the BSDs, from their kernels' headers. On any other Unix the crate
//!   falls back to comparing `lstat` before the open with `fstat` after it,
//!   which refuses a link but cannot keep a FIFO planted at the name from
//!   blocking the open.
//!
//! # Windows
//!
//! - A replacing rename is `std::fs::rename` (`MoveFileExW` with
//!   `MOVEFILE_REPLACE_EXISTING`, or the POSIX rename of newer systems),
//!   retried up to [`RENAME_ATTEMPTS`] times with a growing pause (about
//!   one second in all) while it fails with a sharing violation or access
//!   denied — antivirus scanners and indexers open files briefly. The target
//!   is **never** deleted first.
//! - [`fsatomic::Dir::sync_dir`] is a no-op: Windows cannot flush a
//!   directory through std. NTFS journals the rename and commits its journal
//!   within seconds; std cannot pass `MOVEFILE_WRITE_THROUGH`, so a power cut
//!   in those seconds can bring back the *old* content of a file whose
//!   commit returned `Ok` — whole, never torn or missing. A program that
//!   needs every acknowledged commit to survive on Windows needs an adapter
//!   over `MoveFileExW` directly.
//! - Modes do not exist; files take the directory's ACL. A file written in
//!   place (a slot, a journal) is checked to be a regular file, not a
//!   reparse point, but std can read neither its owner nor its hard-link
//!   count: keep state in a directory only its owner can write.
//! - Locks are [`std::fs::File::lock`] (`LockFileEx`) on a sidecar file that
//!   is never deleted, so a crashed holder never locks the others out.
//!
//! # Filesystems
//!
//! std cannot ask which filesystem a directory is on.
//! [`fsatomic::Dir::capabilities`] reports `atomic_replace: true` with the
//! filesystem `"unknown"` on Unix and `"ntfs"` on Windows. On a FAT-formatted
//! stick that is wrong; the Linux adapter detects the filesystem with
//! `statfs`, and a caller that may write to removable media should use it
//! (or the Slots protocol) there.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs;
use std::hash::{BuildHasher, Hash, Hasher};
use std::io;
use std::ops::ControlFlow;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fsatomic::{Capabilities, Mode};

/// Group commit, which lives in the core (`fsatomic::group`, feature
/// `std`); re-exported here for the users of this crate.
pub use fsatomic::group;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as sys;

/// How many times a replacing rename is tried on Windows while another
/// process holds the file open (sharing violation, access denied). The
/// pauses between attempts grow from 5 ms to 200 ms, about one second in all.
pub const RENAME_ATTEMPTS: u32 = 10;

/// How many times [`fsatomic::Dir::lock`] goes back and forth between
/// "the lock file exists" and "it was removed before we could open it"
/// before it gives up. Lock files are never removed by this library.
const LOCK_OPEN_ATTEMPTS: u32 = 8;

/// Retry `f` while it fails with [`io::ErrorKind::Interrupted`].
fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The error for a symbolic link found where a file was expected.
fn symlink_error(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{name} is a symbolic link; refusing to follow it"),
    )
}

/// Refuse anything but a regular file.
fn check_regular(meta: &fs::Metadata, name: &str) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        return Err(symlink_error(name));
    }
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not a regular file"),
        ));
    }
    Ok(())
}

/// A directory, named by its absolute path: the std [`fsatomic::Dir`].
///
/// Cloning gives another handle on the same directory (sharing its
/// [`StdDir::flush_count`]); locks taken through different handles (or the
/// same one) exclude each other.
#[derive(Clone, Debug)]
pub struct StdDir {
    path: PathBuf,
    flushes: Arc<AtomicU64>,
    lock_timeout: Option<std::time::Duration>,
    owner: fsatomic::Owner,
}

impl StdDir {
    /// Open the existing directory `path`.
    ///
    /// The path is made absolute and its symbolic links are resolved once,
    /// here (`std::fs::canonicalize`); every later operation names files
    /// under that path (see the crate docs on what that means against an
    /// attacker who can swap the directory).
    pub fn open(path: impl AsRef<Path>) -> io::Result<StdDir> {
        let path = fs::canonicalize(path.as_ref())?;
        let meta = fs::metadata(&path)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(StdDir {
            path,
            flushes: Arc::new(AtomicU64::new(0)),
            lock_timeout: None,
            owner: fsatomic::Owner::default(),
        })
    }

    /// Open the directory `path`, first creating it and any missing parents
    /// with permissions `mode` (exactly, whatever the umask, on Unix).
    /// Returns the directory and the directories that were made, outermost
    /// first.
    ///
    /// On Unix each new directory is made durable before the next step: its
    /// parent is flushed after it is made, so a power cut cannot lose a
    /// directory that a later commit's success depends on. A component that
    /// exists must be a directory (a symbolic link to one is followed, as
    /// `mkdir -p` does). On Windows directories cannot be flushed through
    /// std and `mode` is ignored.
    pub fn create_all(path: impl AsRef<Path>, mode: Mode) -> io::Result<(StdDir, Vec<PathBuf>)> {
        let path = path.as_ref();
        let mut made = Vec::new();
        let mut current = PathBuf::new();
        for component in path.components() {
            current.push(component);
            if !matches!(component, Component::Normal(_)) {
                continue;
            }
            match sys::make_dir(&current, mode) {
                Ok(()) => {
                    let parent = current
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    sys::flush_dir(parent)?;
                    made.push(current.clone());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::metadata(&current)?.is_dir() {
                        return Err(io::Error::new(
                            io::ErrorKind::NotADirectory,
                            format!("{} exists and is not a directory", current.display()),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok((StdDir::open(path)?, made))
    }

    /// The directory's absolute path, as resolved by [`StdDir::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bound the wait of every later [`fsatomic::Dir::lock`] through this
    /// handle, as the Linux adapter's `set_lock_timeout`: `None` (the
    /// default) waits as long as another writer holds the lock;
    /// `Some(limit)` gives up after `limit` (`Duration::ZERO`: one try)
    /// with an error whose kind is `TimedOut`, before any file is touched
    /// ([`fsatomic::Error::is_lock_busy`]).
    pub fn set_lock_timeout(&mut self, limit: Option<std::time::Duration>) {
        self.lock_timeout = limit;
    }

    /// Give every file this handle creates from now on (temporary files,
    /// journals, slots, lock files) to `owner`, and accept files owned by
    /// `owner.uid` for writing in place, as the Linux adapter's
    /// `set_owner`. Only root may give a file to another user: for another
    /// process a uid other than its own fails here (`PermissionDenied`).
    /// Unix only: on Windows any owner but none is `Unsupported`.
    pub fn set_owner(&mut self, owner: fsatomic::Owner) -> io::Result<()> {
        #[cfg(unix)]
        {
            let euid = unix::effective_uid()?;
            if let Some(uid) = owner.uid.filter(|&u| u != euid && euid != 0) {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "only root can give files to another user (uid {uid}); this process is uid {euid}"
                    ),
                ));
            }
        }
        #[cfg(not(unix))]
        if !owner.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "file owners are a Unix notion; this platform has none",
            ));
        }
        self.owner = owner;
        Ok(())
    }

    /// How many flush barriers (file flushes through files of this handle,
    /// and directory flushes) succeeded so far, as the Linux adapter's
    /// `flush_count`. Telemetry for reports and benchmarks. On Windows the
    /// directory flush is a no-op and is not counted.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn file(&self, file: fs::File) -> StdFile {
        StdFile {
            file,
            flushes: self.flushes.clone(),
        }
    }
}

/// An open file of a [`StdDir`]: a [`std::fs::File`].
#[derive(Debug)]
pub struct StdFile {
    file: fs::File,
    flushes: Arc<AtomicU64>,
}

impl StdFile {
    /// The underlying std file.
    pub fn as_std(&self) -> &fs::File {
        &self.file
    }
}

impl embedded_io::ErrorType for StdFile {
    type Error = io::Error;
}

impl embedded_io::Read for StdFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        retry_interrupted(|| io::Read::read(&mut self.file, buf))
    }
}

impl embedded_io::Write for StdFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        retry_interrupted(|| io::Write::write(&mut self.file, buf))
    }

    /// Nothing is buffered in user space; this is not a durability barrier
    /// (that is [`fsatomic::File::sync_data`]).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl embedded_io::Seek for StdFile {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            embedded_io::SeekFrom::Start(n) => io::SeekFrom::Start(n),
            embedded_io::SeekFrom::End(n) => io::SeekFrom::End(n),
            embedded_io::SeekFrom::Current(n) => io::SeekFrom::Current(n),
        };
        retry_interrupted(|| io::Seek::seek(&mut self.file, pos))
    }
}

impl fsatomic::File for StdFile {
    /// [`std::fs::File::sync_data`]: `fdatasync` on Linux, `F_FULLFSYNC`
    /// on macOS (std issues it for `sync_data` as for `sync_all`),
    /// `FlushFileBuffers` on Windows. Keeps the power-cut contract of
    /// [`fsatomic::File::sync_data`]; `EINTR` is retried by std, any other
    /// error is returned as is and never retried.
    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// [`std::fs::File::sync_all`]: `fsync` on Linux and the BSDs,
    /// `F_FULLFSYNC` on macOS, `FlushFileBuffers` on Windows. Keeps the
    /// power-cut contract of [`fsatomic::File::sync_all`]; an error is
    /// returned as is and never retried.
    fn sync_all(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// [`std::fs::File::set_len`]; as [`fsatomic::File::set_len`], not
    /// durable until the next flush.
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

/// A held exclusive [`std::fs::File::lock`] on a sidecar lock file (`flock`
/// on Linux and macOS, `LockFileEx` on Windows). Dropping it unlocks and
/// closes the file; the death of the process releases it too.
#[derive(Debug)]
pub struct StdLock {
    file: fs::File,
}

impl Drop for StdLock {
    fn drop(&mut self) {
        // Closing releases the lock too; unlocking first makes the release
        // immediate on Windows, where a closed handle's locks are released
        // "when the system gets to it".
        let _ = self.file.unlock();
    }
}

/// A process-wide counter mixed into every token.
static TOKENS: AtomicU64 = AtomicU64::new(0);

impl fsatomic::Dir for StdDir {
    type Error = io::Error;
    type File = StdFile;
    type Lock = StdLock;

    /// `atomic_replace: true`, filesystem `"unknown"` on Unix and `"ntfs"`
    /// on Windows: std cannot learn the filesystem (see the crate docs).
    fn capabilities(&self) -> Capabilities {
        if cfg!(windows) {
            Capabilities::new(true, "ntfs")
        } else {
            Capabilities::new(true, "unknown")
        }
    }

    /// 64 bits from std's [`std::hash::RandomState`] — SipHash keyed with
    /// 128 bits the OS's random source gave the thread — over the process
    /// id, the wall-clock time in nanoseconds, a process-wide counter and the
    /// thread id. The key makes tokens unpredictable and distinct across
    /// processes and boots; the counter makes them distinct within one
    /// process even if the clock stands still. Nothing is written to disk;
    /// a power cut during the call changes nothing.
    fn unique_token(&mut self) -> io::Result<u64> {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        std::process::id().hash(&mut hasher);
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            .hash(&mut hasher);
        TOKENS.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
        std::thread::current().id().hash(&mut hasher);
        Ok(hasher.finish())
    }

    /// Exclusive create of `directory/NAME` as in
    /// [`fsatomic::Dir::create_new`]. Unix:
    /// `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` with `mode` (narrowed by the
    /// umask, never widened), then `fchmod` to exactly `mode`; if the
    /// `fchmod` fails, the new file is removed again. Windows: `CREATE_NEW`;
    /// `mode` is ignored. Keeps the power-cut contract of the trait.
    fn create_new(&mut self, name: &str, mode: Mode) -> io::Result<StdFile> {
        let file = sys::create_new(&self.join(name), mode, self.owner)?;
        Ok(self.file(file))
    }

    /// Open the regular file `directory/NAME` for reading, as in
    /// [`fsatomic::Dir::open_read`]: no symbolic link followed (a link is an
    /// error, not `None`), nothing but a regular file accepted. Changes
    /// nothing on disk.
    fn open_read(&mut self, name: &str) -> io::Result<Option<StdFile>> {
        Ok(sys::open_existing(&self.join(name), name, false)?.map(|f| self.file(f)))
    }

    /// `symlink_metadata`: a symbolic link counts as existing (it is never
    /// followed).
    fn exists(&mut self, name: &str) -> io::Result<bool> {
        match std::fs::symlink_metadata(self.join(name)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Open the regular file `directory/NAME` for reading and writing in
    /// place, as in [`fsatomic::Dir::open_write`]: no symbolic link
    /// followed, no truncation. On Unix a file with more than one hard link
    /// or owned by another user than the effective one is refused
    /// (`PermissionDenied`), and a mode wider than `mode` is narrowed
    /// (`fchmod`, then `fsync`). Windows: std can read neither the link
    /// count nor the owner, and there are no modes; not checked.
    fn open_write(&mut self, name: &str, mode: Mode) -> io::Result<Option<StdFile>> {
        let Some((file, narrowed)) = sys::open_in_place(&self.join(name), name, mode, self.owner)?
        else {
            return Ok(None);
        };
        if narrowed {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Some(self.file(file)))
    }

    /// Replacing rename within the directory, as in
    /// [`fsatomic::Dir::rename`]: `rename(2)` on Unix (neither name is
    /// followed); on Windows `std::fs::rename`, retried while another
    /// process holds a file open ([`RENAME_ATTEMPTS`]), never by deleting
    /// the target first. Not durable until [`fsatomic::Dir::sync_dir`].
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        sys::rename(&self.join(from), &self.join(to))
    }

    /// `link(2)` (`linkat` without following links on Linux; on Windows
    /// `CreateHardLinkW`) within the directory, as in
    /// [`fsatomic::Dir::link`]. Not durable until
    /// [`fsatomic::Dir::sync_dir`].
    fn link(&mut self, from: &str, to: &str) -> io::Result<()> {
        std::fs::hard_link(self.join(from), self.join(to))
    }

    /// `unlink(2)` of `directory/NAME`, as in [`fsatomic::Dir::remove`]: a
    /// symbolic link is removed, not its target; a directory is refused; a
    /// missing name is `Ok`. Not durable until [`fsatomic::Dir::sync_dir`].
    fn remove(&mut self, name: &str) -> io::Result<()> {
        match sys::remove(&self.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Unix: open the directory and `fsync` it, as in
    /// [`fsatomic::Dir::sync_dir`]; an error is returned as is and never
    /// retried. Windows: a no-op (see the crate docs for what that costs).
    fn sync_dir(&mut self) -> io::Result<()> {
        sys::flush_dir(&self.path)?;
        if cfg!(unix) {
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// [`std::fs::read_dir`], as in [`fsatomic::Dir::for_each_entry`].
    /// Names that are not UTF-8 are skipped: this library never makes them.
    fn for_each_entry(&mut self, visit: &mut dyn FnMut(&str) -> ControlFlow<()>) -> io::Result<()> {
        for entry in fs::read_dir(&self.path)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if visit(name).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Exclusive lock on the sidecar file `directory/NAME`, as in
    /// [`fsatomic::Dir::lock`]: created exclusively with exactly `mode` if
    /// missing; otherwise the existing file is opened read-only without
    /// following a link, refused unless it is a regular file with a single
    /// hard link (Unix), and never written or truncated; on Unix, one owned
    /// by the effective user whose mode is wider than `mode` is narrowed
    /// (`fchmod`: whoever can open a lock file can hold it forever). Then
    /// [`std::fs::File::lock`] waits for it (retried on `EINTR`). Each call
    /// opens its own file, so two calls in one process exclude each other.
    fn lock(&mut self, name: &str, mode: Mode) -> io::Result<StdLock> {
        let path = self.join(name);
        let mut attempts = 0;
        let file = loop {
            attempts += 1;
            match sys::create_new(&path, mode, self.owner) {
                Ok(file) => break file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if let Some(file) = sys::open_lock(&path, name, mode)? {
                        break file;
                    }
                    if attempts >= LOCK_OPEN_ATTEMPTS {
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("{name} keeps disappearing while being opened"),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        };
        fsatomic::lock::wait_bounded(
            self.lock_timeout,
            || {
                retry_interrupted(|| match file.try_lock() {
                    Ok(()) => Ok(true),
                    Err(fs::TryLockError::WouldBlock) => Ok(false),
                    Err(fs::TryLockError::Error(e)) => Err(e),
                })
            },
            || retry_interrupted(|| file.lock()),
        )?;
        Ok(StdLock { file })
    }
}
