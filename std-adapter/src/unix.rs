//! Unix: `O_NOFOLLOW` opens, exact modes through `fchmod`, `fsync` of the
//! directory, all through std's `std::os::unix` extensions.

use std::fs::{self, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use fsatomic::{Mode, Owner};

use crate::{check_regular, symlink_error};

/// `(O_NOFOLLOW, O_NONBLOCK)` for this target, copied from its kernel's
/// headers (std does not export them); `None` where this crate does not know
/// them, and [`open_checked_identity`] compares `lstat` with `fstat` instead.
const OPEN_FLAGS: Option<(i32, i32)> = if cfg!(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)) {
    Some((0x100, 0x4))
} else if !cfg!(any(target_os = "linux", target_os = "android")) {
    None
} else if cfg!(any(
    target_arch = "arm",
    target_arch = "aarch64",
    target_arch = "m68k",
    target_arch = "powerpc",
    target_arch = "powerpc64"
)) {
    Some((0o100000, 0o4000))
} else if cfg!(any(
    target_arch = "x86",
    target_arch = "x86_64",
    target_arch = "riscv32",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "loongarch64",
    target_arch = "csky"
)) {
    Some((0o400000, 0o4000))
} else if cfg!(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "mips32r6",
    target_arch = "mips64r6"
)) {
    Some((0o400000, 0o200))
} else if cfg!(any(target_arch = "sparc", target_arch = "sparc64")) {
    Some((0o400000, 0x4000))
} else {
    None
};

/// [`OPEN_FLAGS`], or `None` when the internal feature `_lstat-fallback`
/// forces the fallback (so that it is tested on systems that have the flags).
fn open_flags() -> Option<(i32, i32)> {
    if cfg!(feature = "_lstat-fallback") {
        None
    } else {
        OPEN_FLAGS
    }
}

fn nofollow() -> i32 {
    open_flags().map_or(0, |(nofollow, _)| nofollow)
}

/// How often the fallback open tries again when the name was replaced
/// between its look and its open (a writer's rename, normally).
const FALLBACK_ATTEMPTS: u32 = 16;

/// `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC` (std adds `O_CLOEXEC` to every
/// open) with `mode`, then `fchmod` to exactly `mode`. An exclusive create
/// never follows a link at the name, even without `O_NOFOLLOW`.
pub(crate) fn create_new(path: &Path, mode: Mode, owner: Owner) -> io::Result<fs::File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode.bits())
        .custom_flags(nofollow())
        .open(path)?;
    // Its owner first (fchown may clear set-id bits; the mode comes after).
    if !owner.is_none()
        && let Err(e) = std::os::unix::fs::fchown(&file, owner.uid, owner.gid)
    {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io::Error::new(
            e.kind(),
            format!(
                "created, but giving it to uid {:?} gid {:?} with fchown failed ({e}); removed it",
                owner.uid, owner.gid
            ),
        ));
    }
    // Created with `mode` narrowed by the umask; now exactly `mode`. It was
    // never wider.
    if let Err(e) = file.set_permissions(Permissions::from_mode(mode.bits())) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// Open the existing regular file at `path` without following a link,
/// for reading (and writing if `write`, then only with a single hard link).
/// `Ok(None)` if nothing has the name.
pub(crate) fn open_existing(path: &Path, name: &str, write: bool) -> io::Result<Option<fs::File>> {
    let Some(file) = open_nofollow(path, name, write)? else {
        return Ok(None);
    };
    if write {
        check_single_link(&file, name)?;
    }
    Ok(Some(file))
}

/// A file to write in place, as in [`fsatomic::Dir::open_write`]: opened
/// for reading and writing without following a link; refused unless it is
/// a regular file with a single hard link owned by this process's
/// effective user ([`effective_uid`]); narrowed to `mode` if wider, the
/// narrowing made durable (`fsync`). Returns the file and whether it was
/// narrowed (the flush is the caller's to count).
pub(crate) fn open_in_place(
    path: &Path,
    name: &str,
    mode: Mode,
    owner: Owner,
) -> io::Result<Option<(fs::File, bool)>> {
    let Some(file) = open_existing(path, name, true)? else {
        return Ok(None);
    };
    let meta = file.metadata()?;
    let euid = effective_uid()?;
    if meta.uid() != euid && Some(meta.uid()) != owner.uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{name} is owned by uid {}, not by this user (uid {euid}); refusing to write into a file someone else controls (if it is this state's, chown it to uid {euid}; else remove it)",
                meta.uid()
            ),
        ));
    }
    let narrowed = narrow(&file, &meta, mode)?;
    if narrowed {
        file.sync_all()?;
    }
    Ok(Some((file, narrowed)))
}

/// `fchmod` `file` (whose metadata is `meta`) to its mode narrowed to
/// `mode`, if it is wider; `Ok(true)` if it was narrowed.
fn narrow(file: &fs::File, meta: &fs::Metadata, mode: Mode) -> io::Result<bool> {
    let current = Mode::new(meta.mode() & 0o7777).unwrap_or(Mode::PRIVATE);
    if !current.is_wider_than(mode) {
        return Ok(false);
    }
    file.set_permissions(Permissions::from_mode(current.narrowed_to(mode).bits()))?;
    Ok(true)
}

/// The effective user id of this process, which std does not expose: the
/// owner of a pipe made for the purpose. The kernel gives a new pipe the
/// owner it gives a new file (Linux: the filesystem uid, which follows
/// the effective uid; macOS and the BSDs: the effective uid), and making
/// one writes nothing anywhere.
pub(crate) fn effective_uid() -> io::Result<u32> {
    let (reader, _writer) = io::pipe()?;
    let pipe = fs::File::from(std::os::fd::OwnedFd::from(reader));
    Ok(pipe.metadata()?.uid())
}

/// An existing lock file: opened read-only without following a link;
/// refused unless it is a regular file with a single hard link (a planted
/// hard link would let us lock, or reveal, someone else's file). One owned
/// by this process's effective user whose mode is wider than `mode` is
/// narrowed (whoever can open a lock file can hold the lock forever).
pub(crate) fn open_lock(path: &Path, name: &str, mode: Mode) -> io::Result<Option<fs::File>> {
    let Some(file) = open_nofollow(path, name, false)? else {
        return Ok(None);
    };
    check_single_link(&file, name)?;
    let meta = file.metadata()?;
    if meta.uid() == effective_uid()? {
        narrow(&file, &meta, mode)?;
    }
    Ok(Some(file))
}

fn check_single_link(file: &fs::File, name: &str) -> io::Result<()> {
    let links = file.metadata()?.nlink();
    if links != 1 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{name} has {links} hard links; refusing to write through it"),
        ));
    }
    Ok(())
}

fn open_nofollow(path: &Path, name: &str, write: bool) -> io::Result<Option<fs::File>> {
    let Some((nofollow, nonblock)) = open_flags() else {
        return open_checked_identity(path, name, write);
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(nofollow | nonblock)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // ELOOP on Linux and macOS, EMLINK on FreeBSD: name it plainly.
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(symlink_error(name));
            }
            return Err(e);
        }
    };
    check_regular(&file.metadata()?, name)?;
    Ok(Some(file))
}

/// Without `O_NOFOLLOW`: look (`lstat`), refuse anything but a regular
/// file, open, and check (`fstat`) that the file opened is the one seen. A
/// name replaced in between — by a writer's rename, normally — is looked at
/// again, up to [`FALLBACK_ATTEMPTS`] times.
fn open_checked_identity(path: &Path, name: &str, write: bool) -> io::Result<Option<fs::File>> {
    for _ in 0..FALLBACK_ATTEMPTS {
        let seen = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        check_regular(&seen, name)?;
        let file = match OpenOptions::new().read(true).write(write).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if (seen.dev(), seen.ino()) == (meta.dev(), meta.ino()) {
            check_regular(&meta, name)?;
            return Ok(Some(file));
        }
    }
    Err(io::Error::other(format!(
        "{name} was replaced {FALLBACK_ATTEMPTS} times while being opened"
    )))
}

/// `rename(2)`: replaces `to` atomically; follows neither name.
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

/// `unlink(2)`: removes a link, not its target; refuses a directory.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    fs::remove_file(path)
}

/// `open(dir)` then `fsync`; the error of the flush is returned as is.
pub(crate) fn flush_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path)?.sync_all()
}

/// `mkdir(path, mode)`, then `fchmod` to exactly `mode` through a
/// descriptor opened without following a link.
pub(crate) fn make_dir(path: &Path, mode: Mode) -> io::Result<()> {
    fs::DirBuilder::new().mode(mode.bits()).create(path)?;
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(path)?;
    dir.set_permissions(Permissions::from_mode(mode.bits()))
}
