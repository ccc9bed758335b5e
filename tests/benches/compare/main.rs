//! `cargo bench -p fsatomic-testkit --bench compare -- [--dir DIR] [--quick] [--write-docs]`
//!
//! One run, one filesystem, every configuration interleaved round by round
//! so that the noise of a shared machine hits all of them alike; medians,
//! p99 and ratios within the run, never single times. See
//! `docs/performance.md` for what is measured and why, and
//! `tests/benches/report.sh` for the one command that regenerates it.
//!
//! - **commit**: one durable commit of a ~200 B and a 64 KiB document by
//!   fsatomic's protocols, the original Go package's protocol, the crates
//!   users would pick, and raw append + `fdatasync`.
//! - **growth**: the snapshot-database append at 10 … 10,000 entries,
//!   the original read-all-rewrite-all pattern against our journal.
//! - **group**: 1 … 16 concurrent appenders, grouped and independent.
//! - **load**: the seven NAS stores at realistic sizes.
//!
//! Flushes are counted, not assumed: our adapter counts its own
//! (`LinuxDir::flush_count`); every configuration is also re-run for a
//! few commits under `strace -c` (when strace is installed), which counts
//! `fsync`, `fdatasync`, `msync`, `sync_file_range`, `syncfs` and `sync`
//! calls and all syscalls. Bytes written per commit come from
//! `/proc/self/io` (`wchar`: bytes handed to `write`; `write_bytes`: page
//! cache dirtied), heap allocations from a counting global allocator.
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it prints
//! how to run it and exits: a benchmark is not a test.

mod commit;
mod db;
mod group;
mod growth;
mod load;
mod report;
mod siblings;
mod stats;
mod svg;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use commit::{Committer, Kind, Size};
use stats::Samples;

/// Counts heap allocations (including reallocations) of the whole process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a relaxed atomic that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// A busy process at the lowest priority (`nice 19`), paused and resumed
/// with SIGSTOP/SIGCONT.
///
/// On this shared machine the CPUs are usually busy with other people's
/// compilers; a thread woken by an I/O completion then often waits for the
/// next scheduler tick (4 ms here) before it runs, so every synchronous
/// wait of a commit costs a tick, whatever the device did. With this
/// companion running, the woken thread preempts it at once and the
/// numbers show the I/O path instead — what an appliance with idle CPUs
/// sees. It takes a CPU only when nothing else wants one.
pub struct Companion {
    child: Option<std::process::Child>,
}

impl Companion {
    /// Start it (paused), unless `enabled` is false.
    fn start(enabled: bool) -> Result<Companion> {
        let child = if enabled {
            Some(
                Command::new("nice")
                    .args(["-n", "19", "sh", "-c", "while :; do :; done"])
                    .spawn()?,
            )
        } else {
            None
        };
        let c = Companion { child };
        c.set(false);
        Ok(c)
    }

    /// Whether there is one.
    pub fn enabled(&self) -> bool {
        self.child.is_some()
    }

    /// Resume (`true`) or pause it.
    pub fn set(&self, on: bool) {
        if let Some(child) = &self.child
            && let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32)
        {
            let sig = if on {
                rustix::process::Signal::CONT
            } else {
                rustix::process::Signal::STOP
            };
            let _ = rustix::process::kill_process(pid, sig);
            if on {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How long and how thoroughly to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// `--quick`: a smoke run of a few seconds.
    pub quick: bool,
    /// Commit rounds.
    pub commit_rounds: usize,
    /// Commits per configuration per round.
    pub commit_batch: usize,
    /// Commits per strace probe.
    pub probe_commits: usize,
    /// Growth rounds.
    pub growth_rounds: usize,
    /// Growth appends per size and pattern per round.
    pub growth_batch: usize,
    /// Group commit rounds.
    pub group_rounds: usize,
    /// Group appends per writer per round.
    pub group_per_writer: usize,
    /// Load rounds.
    pub load_rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        // Each number: quick, full.
        let pick = |q, f| if quick { q } else { f };
        Plan {
            quick,
            commit_rounds: pick(3, 40),
            commit_batch: pick(3, 10),
            probe_commits: pick(5, 20),
            growth_rounds: pick(1, 16),
            growth_batch: pick(2, 5),
            group_rounds: pick(1, 30),
            group_per_writer: pick(4, 32),
            load_rounds: pick(2, 20),
        }
    }
}

/// One configuration's per-commit results.
#[derive(Default)]
pub struct CommitResult {
    /// Who.
    pub kind: Kind,
    /// Which document.
    pub size: Size,
    /// Its length in bytes.
    pub doc_bytes: usize,
    /// Latencies (with the companion running, if there is one).
    pub samples: Samples,
    /// Latencies with the companion paused (CPUs contended); empty
    /// without a companion.
    pub contended: Samples,
    /// Flushes per commit counted by our adapter (ours only).
    pub own_flushes: Option<f64>,
    /// Flushes and syscalls per commit counted by strace.
    pub traced: Option<Traced>,
    /// `wchar` per commit: bytes passed to `write`.
    pub wchar: f64,
    /// `write_bytes` per commit: page cache dirtied.
    pub dirtied: f64,
    /// Heap allocations per commit.
    pub allocs: f64,
    /// Reading the document back and parsing it (empty where not
    /// measured).
    pub load: Samples,
}

/// What `strace -c` counted per commit.
#[derive(Clone, Copy, Debug)]
pub struct Traced {
    /// fsync, fdatasync, msync, sync_file_range, syncfs, sync.
    pub flushes: f64,
    /// Every syscall.
    pub syscalls: f64,
}

/// `/proc/self/io`: (wchar, write_bytes).
fn proc_io() -> (u64, u64) {
    let text = fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("write_bytes:"))
}

/// Per-commit comparison, round-robin over every (kind, size).
fn run_commits(root: &Path, plan: &Plan, companion: &Companion) -> Result<Vec<CommitResult>> {
    // Every configuration, with the number of users its document holds.
    let (mut configs, mut results) = (Vec::new(), Vec::new());
    for size in Size::ALL {
        let users = size.users();
        for kind in Kind::ALL {
            configs.push((commit::setup(kind, size, root)?, users.users.len()));
            results.push(CommitResult {
                kind,
                size,
                doc_bytes: commit::indented(&users).len(),
                ..CommitResult::default()
            });
        }
    }
    let batch = |c: &mut Committer, s: &mut Samples, round| -> Result<()> {
        for _ in 0..plan.commit_batch {
            let t = Instant::now();
            c.commit()?;
            s.push(round, t.elapsed());
        }
        Ok(())
    };
    let n = configs.len();
    for round in 0..plan.commit_rounds {
        // Rotate the starting configuration every round.
        for j in 0..n {
            let i = (j + round) % n;
            let ((c, _), r) = (&mut configs[i], &mut results[i]);
            if companion.enabled() {
                // The same configuration with the CPUs contended, right
                // before: same round, same conditions otherwise.
                companion.set(false);
                c.maintain()?;
                batch(c, &mut r.contended, round)?;
                companion.set(true);
            }
            c.maintain()?;
            let flushes0 = c.flushes();
            let (w0, d0) = proc_io();
            let a0 = allocations();
            batch(c, &mut r.samples, round)?;
            let a1 = allocations();
            let (w1, d1) = proc_io();
            r.wchar += (w1 - w0) as f64;
            r.dirtied += (d1 - d0) as f64;
            r.allocs += (a1 - a0) as f64;
            if let (Some(f0), Some(f1)) = (flushes0, c.flushes()) {
                *r.own_flushes.get_or_insert(0.0) += (f1 - f0) as f64;
            }
        }
    }
    companion.set(false);
    // Loads of what was committed, interleaved the same way.
    for round in 0..plan.commit_rounds {
        for j in 0..n {
            let i = (j + round) % n;
            let (c, want) = &mut configs[i];
            for _ in 0..plan.commit_batch {
                let t = Instant::now();
                let Some(users) = c.load()? else { break };
                let elapsed = t.elapsed();
                let got = users.users.len();
                if got != *want {
                    let kind = results[i].kind.label();
                    return Err(format!("{kind}: loaded {got} users, committed {want}").into());
                }
                results[i].load.push(round, elapsed);
            }
        }
    }
    // Totals per commit.
    let commits = (plan.commit_rounds * plan.commit_batch) as f64;
    for r in &mut results {
        r.wchar /= commits;
        r.dirtied /= commits;
        r.allocs /= commits;
        if let Some(f) = &mut r.own_flushes {
            *f /= commits;
        }
    }
    Ok(results)
}

/// The syscall counts of `strace -c` output: (flush calls, all calls).
fn parse_strace(text: &str) -> (u64, u64) {
    let mut flushes = 0;
    let mut total = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 {
            continue;
        }
        let Ok(calls) = f[3].parse::<u64>() else {
            continue;
        };
        let name = f[f.len() - 1];
        if name == "total" {
            total = calls;
        } else if matches!(
            name,
            "fsync" | "fdatasync" | "msync" | "sync_file_range" | "syncfs" | "sync"
        ) {
            flushes += calls;
        }
    }
    (flushes, total)
}

fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Re-run `kind`/`size` under strace with 0 and `n` commits after the
/// warm-up; the difference over `n` is the count per commit.
fn probe(root: &Path, kind: Kind, size: Size, n: usize) -> Result<Traced> {
    let exe = std::env::current_exe()?;
    let mut counts = Vec::new();
    for commits in [0, n] {
        let tag = format!("{}-{}-{commits}", kind.key(), size.key());
        let dir = root.join(format!("probe-{tag}"));
        fs::create_dir_all(&dir)?;
        let out = root.join(format!("strace-{tag}.txt"));
        let status = Command::new("strace")
            .args(["-f", "-c", "-o"])
            .arg(&out)
            .arg(&exe)
            .args(["--probe", kind.key(), size.key(), &commits.to_string()])
            .arg(&dir)
            .status()?;
        if !status.success() {
            return Err(format!("strace probe of {} failed", kind.key()).into());
        }
        counts.push(parse_strace(&fs::read_to_string(&out)?));
    }
    let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / n as f64;
    Ok(Traced {
        flushes: per(counts[0].0, counts[1].0),
        syscalls: per(counts[0].1, counts[1].1),
    })
}

/// The child of [`probe`]: set up, warm up, `n` commits, exit.
fn probe_child(args: &[String]) -> Result<()> {
    let [kind, size, n, dir] = args else {
        return Err("--probe KIND SIZE N DIR".into());
    };
    let kind = Kind::from_key(kind).ok_or("kind")?;
    let size = Size::from_key(size).ok_or("size")?;
    let n: usize = n.parse()?;
    let mut c = commit::setup(kind, size, Path::new(dir))?;
    for _ in 0..n {
        c.commit()?;
    }
    Ok(())
}

/// The machine and the run's conditions.
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Filesystem of the bench directory, as `statfs` says.
    pub fs: String,
    /// Its mount: device, mount point, options.
    pub mount: String,
    /// The device's journal and write cache, as the kernel reports them.
    pub storage: String,
    /// Median append + fdatasync latency: alone at the start, beside a
    /// `nice 19` busy process, alone at the end (see [`wake_probe`]).
    pub wake: (f64, f64, f64),
    /// Load average (1, 5, 15 min) at the start and at the end.
    pub load: (String, String),
    /// When (UTC).
    pub date: String,
    /// Compiler.
    pub rustc: String,
    /// Wall time of the run.
    pub seconds: f64,
    /// Whether a `nice 19` companion kept a CPU busy (see [`Companion`]).
    pub companion: bool,
}

fn cmd(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mount holding `dir`: "SOURCE on MOUNTPOINT (OPTIONS)".
fn mount_of(dir: &Path) -> String {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(dash) = f.iter().position(|&x| x == "-") else {
            continue;
        };
        let (Some(mp), Some(opts), Some(fstype), Some(src)) =
            (f.get(4), f.get(5), f.get(dash + 1), f.get(dash + 2))
        else {
            continue;
        };
        if dir.starts_with(mp) && best.as_ref().is_none_or(|(l, _)| mp.len() >= *l) {
            best = Some((mp.len(), format!("{src} on {mp} ({fstype}, {opts})")));
        }
    }
    best.map(|(_, s)| s).unwrap_or_else(|| "unknown".into())
}

/// Median latency of a 200-byte append + `fdatasync` in `dir`, alone or
/// beside a [`Companion`]: the two side by side tell which regime the run
/// was in (see there).
fn wake_probe(dir: &Path, companion: bool) -> Result<f64> {
    use std::io::Write as _;
    let busy = Companion::start(companion)?;
    busy.set(true);
    if busy.enabled() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let path = dir.join("wake-probe.log");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let mut s = Samples::default();
    for _ in 0..40 {
        let t = Instant::now();
        f.write_all(&[b'x'; 200])?;
        f.sync_data()?;
        s.push(0, t.elapsed());
    }
    fs::remove_file(&path)?;
    Ok(s.median())
}

/// For the device of `mount` (as [`mount_of`] prints it): whether the
/// kernel runs a jbd2 journal for it, and its write cache mode.
fn storage(mount: &str) -> String {
    let src = mount.split_whitespace().next().unwrap_or("");
    let dev = Path::new(src)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if dev.is_empty() {
        return "unknown device".into();
    }
    let journal = fs::read_dir("/proc/fs/jbd2")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .find(|n| n.starts_with(&format!("{dev}-")))
        })
        .ok()
        .flatten();
    let journal = match journal {
        Some(j) => format!("jbd2 journal {j}"),
        None => format!("no jbd2 journal (no /proc/fs/jbd2/{dev}-* entry)"),
    };
    let cache = fs::read_to_string(format!("/sys/block/{dev}/queue/write_cache"))
        .map(|c| format!("write cache: {}", c.trim()))
        .unwrap_or_else(|_| "write cache: unknown".into());
    format!("{dev}: {journal}; {cache}")
}

/// The machine, its load and its wake-up latency now.
fn machine(dir: &Path) -> Result<Machine> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let fsname = fsatomic_linux::LinuxDir::open(dir)?.filesystem().name;
    Ok(Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_string(),
        fs: fsname.to_string(),
        mount: mount_of(dir),
        storage: storage(&mount_of(dir)),
        load: (loadavg(), String::new()),
        date: cmd("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        rustc: cmd("rustc", &["-V"]),
        seconds: 0.0,
        companion: false,
        // Probed last: the load average above is the one before them.
        wake: (wake_probe(dir, false)?, wake_probe(dir, true)?, 0.0),
    })
}

/// Everything one run measured.
pub struct Run {
    /// Where and when.
    pub machine: Machine,
    /// The plan.
    pub plan: Plan,
    /// Per-commit results.
    pub commits: Vec<CommitResult>,
    /// Growth.
    pub growth: Option<growth::Growth>,
    /// Group commit.
    pub group: Option<group::Group>,
    /// Load.
    pub load: Vec<load::StoreLoad>,
}

/// Any error, for its message: the bench reports errors, it does not
/// handle them.
pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The repository root (the testkit is `tests/` in it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

#[derive(Default)]
struct Options {
    dir: Option<PathBuf>,
    quick: bool,
    write_docs: bool,
    alloc_log: Option<PathBuf>,
    only: Option<Vec<String>>,
    no_companion: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => {}
            "--quick" => o.quick = true,
            "--no-companion" => o.no_companion = true,
            "--write-docs" => o.write_docs = true,
            "--dir" => o.dir = Some(it.next().ok_or("--dir DIR")?.into()),
            "--only" => {
                let list = it.next().ok_or("--only commit,growth,group,load")?;
                o.only = Some(list.split(',').map(str::to_string).collect());
            }
            "--alloc-log" => o.alloc_log = Some(it.next().ok_or("--alloc-log FILE")?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--probe") {
        if let Err(e) = probe_child(&args[1..]) {
            eprintln!("probe: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "compare: a benchmark, not a test; run `cargo bench -p fsatomic-testkit --bench compare -- [--quick] [--dir DIR] [--write-docs]`"
        );
        return;
    }
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "compare: {e}\nusage: compare [--dir DIR] [--quick] [--write-docs] [--alloc-log FILE] [--only commit,growth,group,load,siblings] [--no-companion]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(options) {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> Result<()> {
    let started = Instant::now();
    let plan = Plan::new(options.quick);
    // The default directory is a temporary one on the working tree's
    // filesystem (its target directory), removed at the end.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let base = options.dir.clone().unwrap_or(target);
    fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("fsatomic-bench-")
        .tempdir_in(&base)?;
    let root = tmp.path();
    let mut machine = machine(root)?;
    let companion = Companion::start(!options.no_companion)?;
    machine.companion = companion.enabled();
    eprintln!(
        "compare: {} mode in {} ({}, {}); load {}",
        if plan.quick { "quick" } else { "full" },
        root.display(),
        machine.fs,
        machine.mount,
        machine.load.0
    );

    eprintln!(
        "compare: per-commit latency ({} rounds × {} commits × {} configurations)",
        plan.commit_rounds,
        plan.commit_batch,
        Kind::ALL.len() * Size::ALL.len()
    );
    let wants = |s: &str| {
        options
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == s))
    };
    let mut commits = wants("commit")
        .then(|| run_commits(root, &plan, &companion))
        .transpose()?
        .unwrap_or_default();
    if commits.is_empty() {
        // --only without commit: nothing to probe.
    } else if have_strace() {
        eprintln!("compare: counting flushes and syscalls under strace");
        for r in &mut commits {
            r.traced = Some(probe(root, r.kind, r.size, plan.probe_commits)?);
        }
    } else {
        eprintln!("compare: strace not found; peers' flushes are not counted");
    }
    let sizes: &[usize] = &[10, 100, 1_000, 5_000, 10_000];
    eprintln!("compare: growth of the snapshot database ({sizes:?} entries)");
    companion.set(true);
    let growth = wants("growth")
        .then(|| growth::run(root, sizes, plan.growth_rounds, plan.growth_batch))
        .transpose()?;
    eprintln!("compare: group commit");
    let group = wants("group")
        .then(|| {
            group::run(
                root,
                &[1, 2, 4, 8, 16],
                plan.group_rounds,
                plan.group_per_writer,
                &companion,
            )
        })
        .transpose()?;
    companion.set(true);
    eprintln!("compare: loading the seven stores");
    let load = wants("load")
        .then(|| load::run(root, plan.load_rounds))
        .transpose()?
        .unwrap_or_default();
    companion.set(false);
    if wants("siblings") {
        let (rounds, per) = if plan.quick { (2, 3) } else { (20, 10) };
        let (alone, crowded) = siblings::run(root, rounds, per)?;
        let (n, ratio) = (siblings::SIBLINGS, crowded / alone);
        println!(
            "\n## A commit beside {n} other files\n\nStore::save of the 200 B users document (median, {rounds} rounds x {per} commits each, interleaved): {alone:.0} µs alone, {crowded:.0} µs beside {n} files — {ratio:.2}x (target <= 1.10x)"
        );
    }
    machine.load.1 = loadavg();
    machine.wake.2 = wake_probe(root, false)?;
    machine.seconds = started.elapsed().as_secs_f64();
    let run = Run {
        machine,
        plan,
        commits,
        growth,
        group,
        load,
    };
    let blocks = report::blocks(&run, options.alloc_log.as_deref());
    for (name, text) in &blocks {
        println!("\n## {name}\n\n{text}");
    }
    if options.write_docs {
        if options.only.is_some() {
            return Err("--write-docs needs every section (no --only)".into());
        }
        report::write_docs(&run, &blocks)?;
        eprintln!("compare: wrote docs/performance.md and docs/perf/*.svg");
    }
    Ok(())
}
