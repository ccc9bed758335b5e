//! Windows: replacing renames retried while other processes hold a file
//! open, reparse points refused, no directory flush.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::windows::fs::OpenOptionsExt;
use std::path::Path;
use std::thread;
use std::time::Duration;

use fsatomic::{Mode, Owner};

use crate::{RENAME_ATTEMPTS, check_regular};

/// `ERROR_ACCESS_DENIED`.
const ACCESS_DENIED: i32 = 5;
/// `ERROR_SHARING_VIOLATION`.
const SHARING_VIOLATION: i32 = 32;
/// `FILE_FLAG_OPEN_REPARSE_POINT`: open a symbolic link or junction
/// itself, not its target.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// Run `f` up to [`RENAME_ATTEMPTS`] times while it fails because another
/// process holds the file open, pausing 5, 10, 20, … 200 ms in between.
fn retry_busy<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pause = Duration::from_millis(5);
    for _ in 1..RENAME_ATTEMPTS {
        match f() {
            Err(e) if matches!(e.raw_os_error(), Some(ACCESS_DENIED | SHARING_VIOLATION)) => {
                thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return other,
        }
    }
    f()
}

/// `CREATE_NEW`: fails if anything, a link included, has the name. Windows
/// has no mode bits; the file takes the directory's ACL.
pub(crate) fn create_new(path: &Path, _mode: Mode, _owner: Owner) -> io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// Open the existing regular file at `path`, refusing a reparse point
/// (symbolic link, junction). Windows std cannot read the hard-link count,
/// so `write` opens are not checked for it.
pub(crate) fn open_existing(path: &Path, name: &str, write: bool) -> io::Result<Option<fs::File>> {
    let file = match OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    check_regular(&file.metadata()?, name)?;
    Ok(Some(file))
}

/// A file to write in place, opened as [`open_existing`] does. Windows
/// std can read neither the owner nor the hard-link count, and there are
/// no mode bits to narrow: only the reparse point and the file type are
/// checked (see the crate docs). Never narrowed.
pub(crate) fn open_in_place(
    path: &Path,
    name: &str,
    _mode: Mode,
    _owner: Owner,
) -> io::Result<Option<(fs::File, bool)>> {
    Ok(open_existing(path, name, true)?.map(|f| (f, false)))
}

/// An existing lock file, opened read-only as [`open_existing`] does.
pub(crate) fn open_lock(path: &Path, name: &str, _mode: Mode) -> io::Result<Option<fs::File>> {
    open_existing(path, name, false)
}

/// `std::fs::rename` (`MoveFileExW` with `MOVEFILE_REPLACE_EXISTING`),
/// retried while the file is busy. Never deletes the target first.
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    retry_busy(|| fs::rename(from, to))
}

/// `DeleteFileW`, retried while the file is busy.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    retry_busy(|| fs::remove_file(path))
}

/// Windows cannot flush a directory through std: a no-op (see the crate
/// docs).
pub(crate) fn flush_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// `CreateDirectoryW`; `mode` is ignored.
pub(crate) fn make_dir(path: &Path, _mode: Mode) -> io::Result<()> {
    fs::create_dir(path)
}
