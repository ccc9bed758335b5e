//! Running the binary and making scratch directories.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `fsatomic` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_fsatomic");

/// A scratch directory, removed when dropped.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A fresh, empty directory under the system's temporary directory.
    pub fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("fsatomic-cli-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory as a `&str`, for an argument.
    pub fn dir(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `name`'s full path as a `String`.
    pub fn file(&self, name: &str) -> String {
        self.join(name).to_str().unwrap().to_string()
    }

    /// Write `name` directly (not through fsatomic).
    pub fn write(&self, name: &str, bytes: &[u8]) {
        fs::write(self.join(name), bytes).unwrap();
    }

    /// Read `name` directly.
    pub fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.join(name)).unwrap()
    }

    /// The directory's entries, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Every entry with its bytes, sorted by name.
    pub fn contents(&self) -> Vec<(String, Vec<u8>)> {
        let names = self.entries().into_iter();
        names
            .map(|n| (self.read(&n), n))
            .map(|(b, n)| (n, b))
            .collect()
    }

    /// The size of `name` in bytes.
    pub fn size(&self, name: &str) -> u64 {
        fs::symlink_metadata(self.join(name)).unwrap().len()
    }

    /// Append `bytes` to `name` directly.
    pub fn append(&self, name: &str, bytes: &[u8]) {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.join(name))
            .unwrap();
        file.write_all(bytes).unwrap();
    }

    /// The permission bits of `name`.
    pub fn mode(&self, name: &str) -> u32 {
        fs::symlink_metadata(self.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Out {
    /// The command line, runner and all.
    pub args: Vec<String>,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output, as bytes.
    pub stdout: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Out {
    /// Standard output, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard output's lines.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_string).collect()
    }
}

/// A run of the binary being set up.
pub struct Run {
    command: Command,
    stdin: Vec<u8>,
}

impl Run {
    /// `fsatomic ARGS...`, in the current directory, with empty stdin.
    pub fn new(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Run {
        Run::of(fsatomic_testkit::runner::command(BIN), args)
    }

    /// `fsatomic ARGS...` started by `sh` after `umask MASK`.
    pub fn with_umask(mask: &str, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Run {
        Run::of(
            fsatomic_testkit::runner::command_with_umask(mask, BIN),
            args,
        )
    }

    fn of(mut command: Command, args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Run {
        command.args(args);
        Run {
            command,
            stdin: Vec::new(),
        }
    }

    /// Feed `bytes` on stdin.
    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Run {
        self.stdin = bytes.as_ref().to_vec();
        self
    }

    /// Set the environment variable `key` to `value`.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Run {
        self.command.env(key, value);
        self
    }

    /// Remove the environment variable `key`.
    pub fn env_remove(mut self, key: &str) -> Run {
        self.command.env_remove(key);
        self
    }

    /// Run as user and group `id` (the test must run as root).
    pub fn user(mut self, id: u32) -> Run {
        use std::os::unix::process::CommandExt;
        self.command.uid(id).gid(id);
        self
    }

    /// Run in directory `dir`.
    pub fn cwd(mut self, dir: &Path) -> Run {
        self.command.current_dir(dir);
        self
    }

    /// Run to the end.
    pub fn run(mut self) -> Out {
        let program = std::iter::once(self.command.get_program());
        let args = program.chain(self.command.get_args());
        let args = args.map(|a| a.to_string_lossy().into_owned()).collect();
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = std::mem::take(&mut self.stdin);
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        Out {
            args,
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `fsatomic ARGS...` with `stdin`, run to the end.
pub fn fsatomic(args: impl IntoIterator<Item = impl AsRef<OsStr>>, stdin: &[u8]) -> Out {
    Run::new(args).stdin(stdin).run()
}

/// `fsatomic ARGS...` with `stdin`, which must exit 0.
#[track_caller]
pub fn ok(args: impl IntoIterator<Item = impl AsRef<OsStr>>, stdin: &[u8]) -> Out {
    let out = fsatomic(args, stdin);
    assert_code(&out, 0);
    out
}

/// `fsatomic ARGS...` with `stdin`, which must fail as [`assert_fails`]
/// says.
#[track_caller]
pub fn fails(
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    stdin: &[u8],
    code: i32,
    needles: &[&str],
) -> Out {
    let out = fsatomic(args, stdin);
    assert_fails(&out, code, needles);
    out
}

/// Assert that `text` contains `needle`, showing `text` if not.
#[track_caller]
pub fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "lacks {needle:?}:\n{text}");
}

/// Assert that `text` does not contain `needle`, showing `text` if it does.
#[track_caller]
pub fn assert_lacks(text: &str, needle: &str) {
    assert!(!text.contains(needle), "has {needle:?}:\n{text}");
}

/// Assert that `out` ended with `code`, showing everything if not.
#[track_caller]
pub fn assert_code(out: &Out, code: i32) {
    assert_eq!(
        out.code,
        Some(code),
        "{:?}: expected exit {code}; stdout: {:?}; stderr: {}",
        out.args,
        out.text(),
        out.stderr
    );
}

/// Assert that `out` failed with `code` and a message on stderr that
/// starts with `fsatomic: ` and contains every piece of `needles`.
#[track_caller]
pub fn assert_fails(out: &Out, code: i32, needles: &[&str]) {
    assert_code(out, code);
    assert!(
        out.stderr.starts_with("fsatomic: "),
        "{:?}: stderr does not start with 'fsatomic: ': {}",
        out.args,
        out.stderr
    );
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "{:?}: stderr lacks {needle:?}: {}",
            out.args,
            out.stderr
        );
    }
}

/// A process running in the background, killed if the test ends (or
/// panics) before it was waited for.
pub struct Background(pub Option<std::process::Child>);

impl Background {
    /// Start `command`.
    pub fn spawn(command: &mut Command) -> Background {
        Background(Some(command.spawn().unwrap()))
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Wait for it to end; whether it succeeded.
    pub fn wait(mut self) -> bool {
        self.0.take().unwrap().wait().unwrap().success()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Wait until `ready` holds (an event, not a duration: the bound only
/// stops a broken test from hanging).
pub fn wait_for(mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "gave up waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run `round(worker, i)` for `rounds` rounds on each of `workers` threads
/// at once, and wait for them all (a panic in one fails the test).
pub fn in_parallel(workers: usize, rounds: usize, round: impl Fn(usize, usize) + Sync) {
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let round = &round;
            scope.spawn(move || (0..rounds).for_each(|i| round(worker, i)));
        }
    });
}
