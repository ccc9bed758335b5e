//! A `PATH` argument split into the directory the core holds open and the
//! file name it works on.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fsatomic::{Dir, Mode, lock, name};
use fsatomic_linux::LinuxDir;

use super::args::{Parsed, Spec};
use super::failure::{self, Failure};
use super::owner;

/// The mode of directories made by `--mkdir`.
pub const DIR_MODE: Mode = Mode::new(0o755).unwrap();

/// A state file: its directory (as given, and absolute for messages) and
/// its validated name.
#[derive(Debug, Clone)]
pub struct Target {
    /// The directory as given on the command line (`.` when none was).
    pub dir: PathBuf,
    /// The directory made absolute (not canonical: symbolic links are
    /// kept), for messages.
    pub shown: PathBuf,
    /// The file name inside the directory.
    pub name: String,
}

impl Target {
    /// Split `path` at its last `/` and validate the name with the core's
    /// rules. A refused name is a usage error (exit 2).
    pub fn parse(path: &OsStr) -> Result<Target, Failure> {
        let bytes = path.as_bytes();
        let (dir, file) = match bytes.iter().rposition(|&b| b == b'/') {
            Some(0) => (OsStr::new("/"), &bytes[1..]),
            Some(i) => (OsStr::from_bytes(&bytes[..i]), &bytes[i + 1..]),
            None => (OsStr::new("."), bytes),
        };
        let dir = PathBuf::from(dir);
        let shown = absolute(&dir);
        let Ok(name) = std::str::from_utf8(file) else {
            return Err(failure::name(
                &shown,
                &String::from_utf8_lossy(file),
                &"the name is not UTF-8",
            ));
        };
        if let Err(error) = name::validate(name) {
            let error = match error {
                name::NameError::Empty => {
                    "the name is empty; give the path of a file, not of a directory".to_string()
                }
                other => other.to_string(),
            };
            return Err(failure::name(&shown, name, &error));
        }
        Ok(Target {
            dir,
            shown,
            name: name.to_string(),
        })
    }

    /// The file's full path, for messages.
    pub fn path(&self) -> String {
        failure::in_dir(&self.shown, &self.name)
    }

    /// Open the directory. Without `mkdir`, a missing directory is an
    /// error (exit 1): it may be an unmounted disk, which must not pass
    /// for "no state yet". With `mkdir`, missing directories are made
    /// (mode 0755, each made durable) and reported on stderr.
    pub fn open(&self, mkdir: bool) -> Result<LinuxDir, Failure> {
        if !mkdir {
            return open_dir(&self.dir, &self.shown);
        }
        let (dir, made) = LinuxDir::create_all(&self.dir, DIR_MODE).map_err(|e| {
            Failure::error(format!(
                "cannot create directory {}: {e}; nothing was written",
                self.shown.display()
            ))
        })?;
        for path in made {
            failure::note(format_args!(
                "created directory {}",
                absolute(&path).display()
            ));
        }
        Ok(dir)
    }
}

/// What a command that takes the writers' lock parses first, in this
/// order: `PATH`, `--timeout`/`-n`, `--owner`/`--group`/`--preserve`,
/// `--mode` (0600 without it), `--mkdir` (options the command's spec
/// lacks are simply absent).
#[derive(Debug)]
pub struct Writer {
    /// The state.
    pub target: Target,
    wait: Option<Duration>,
    owners: owner::Request,
    mode: Mode,
    mkdir: bool,
}

impl Writer {
    /// Parse the writer's options of `spec`; a bad one is a usage error.
    pub fn parse(parsed: &Parsed, spec: &Spec) -> Result<Writer, Failure> {
        Ok(Writer {
            target: Target::parse(parsed.one_path(spec)?)?,
            wait: parsed.lock_timeout(spec)?,
            owners: owner::requested(parsed, spec)?,
            mode: parsed.mode(spec, Mode::PRIVATE)?,
            mkdir: parsed.flag("--mkdir"),
        })
    }

    /// Open the directory, give it the owners ([`owner::apply`]) and take
    /// the writers' lock: the directory, the mode to commit with, the lock.
    pub fn lock(&self) -> Result<(LinuxDir, Mode, <LinuxDir as Dir>::Lock), Failure> {
        let target = &self.target;
        let mut dir = target.open(self.mkdir)?;
        dir.set_lock_timeout(self.wait);
        let mode = owner::apply(&mut dir, target, self.owners, self.mode)?;
        let guard = lock::lock(&mut dir, &target.name, mode)
            .map_err(|e| failure::lock(&target.shown, &e))?;
        Ok((dir, mode, guard))
    }
}

/// Open an existing directory, with a message that says what to do when
/// it is missing.
pub fn open_dir(dir: &Path, shown: &Path) -> Result<LinuxDir, Failure> {
    LinuxDir::open(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Failure::error(format!(
            "directory {} does not exist (is the disk mounted?); create it, or pass --mkdir to save or update; nothing was changed",
            shown.display()
        )),
        io::ErrorKind::NotADirectory => Failure::error(format!(
            "{} is not a directory; nothing was changed",
            shown.display()
        )),
        _ => Failure::error(format!(
            "cannot open directory {}: {e}; nothing was changed",
            shown.display()
        )),
    })
}

/// `path` made absolute against the current directory, without resolving
/// symbolic links; `path` itself if that fails.
pub fn absolute(path: &Path) -> PathBuf {
    if path == Path::new(".")
        && let Ok(cwd) = std::env::current_dir()
    {
        return cwd;
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// On a filesystem where renaming over a file is not known to be
/// crash-atomic (FAT, FUSE, network filesystems, unknown ones), the Replace
/// commit cannot promise old-or-new; say so, and why, on stderr.
pub fn warn_if_unsafe(dir: &LinuxDir, shown: &Path) {
    let fs = dir.filesystem();
    if !fs.atomic_replace {
        failure::note(format_args!(
            "warning: {} is on {}, where renaming over a file is not known to be crash-atomic ({}); a power cut during this commit may lose the file",
            shown.display(),
            fs.name,
            fs.why()
        ));
    }
}

/// The argument as a `String` for messages.
pub fn lossy(arg: &OsString) -> String {
    arg.to_string_lossy().into_owned()
}
