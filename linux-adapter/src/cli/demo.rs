//! `fsatomic demo [DIR]`: the NAS daemon's seven stores
//! ([`fsatomic_linux::nas`]) under `DIR` (default `./nas-state`), each
//! committed for real as the daemon does, and a table of what that cost:
//! the flushes of each store's last commit (its own `flush_count()`) and
//! its file's mode (`stat`). Then commit-confirmed on a network
//! configuration: one tentative change rolled back by a simulated reboot,
//! one confirmed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use fsatomic_linux::LinuxDir;
use fsatomic_linux::nas::{
    FirstBoot, Hit, Nas, NasError, NasPaths, RateLimit, SessionEvent, Share, Shares, SnapDb,
    Transaction, UpdateEntry, UpdatesIndex, User, Users,
};
use rustix::fs::{AtFlags, CWD, statat};

use super::args::{self, Spec};
use super::failure::Failure;
use super::target::{absolute, lossy};

/// What `demo` accepts.
pub const SPEC: Spec = Spec {
    command: "demo",
    options: &[],
    takes_command: false,
};

/// Where the stores go when no `DIR` is given.
pub const DEFAULT_DIR: &str = "./nas-state";

/// The demo's clock: every event happens at this Unix time plus a few
/// seconds, so that the output is the same on every machine.
pub const EPOCH: u64 = 1_700_000_000;

/// The rate-limited key the demo hits.
const RATE_KEY: &str = "login:10.0.0.7";

/// Run `demo`.
pub fn main(args: Vec<OsString>) -> Result<(), Failure> {
    let parsed = args::parse(&SPEC, args)?;
    if parsed.help {
        return super::help::print("demo");
    }
    let root = match parsed.positional.as_slice() {
        [] => PathBuf::from(DEFAULT_DIR),
        [dir] => PathBuf::from(dir),
        [_, extra, ..] => {
            return Err(SPEC.usage(format_args!(
                "unexpected argument {:?} (one DIR only)",
                lossy(extra)
            )));
        }
    };
    let paths = NasPaths::under(&root);
    let nas = Nas::open_paths(&paths).map_err(|e| fail(&root, e))?;
    let fs = LinuxDir::open(&root)
        .map_err(|e| Failure::error(format!("cannot open {}: {e}", absolute(&root).display())))?
        .filesystem();

    let rows = run(&nas, &root).map_err(|e| fail(&root, e))?;
    let confirmed =
        commit_confirmed(&root).map_err(|e| fail(&root, format_args!("commit-confirmed: {e}")))?;

    println!(
        "fsatomic {} demo: the NAS daemon's seven stores under {}, each committed just now",
        fsatomic::VERSION,
        root.display()
    );
    println!(
        "filesystem: {} ({}): {}",
        fs.name,
        absolute(&root).display(),
        if fs.atomic_replace {
            "renaming over a file is crash-atomic; documents use replace, records journal"
        } else {
            "renaming over a file is NOT crash-atomic; every store uses slots"
        }
    );
    println!();
    print_table(&rows);
    println!();
    println!(
        "flushes/commit: fsync and fdatasync calls counted around each store's last commit (replace: the temporary file, then the directory; journal: the appended record; slots: the slot written)."
    );
    println!();
    println!("commit-confirmed ({}):", NETWORK);
    for line in &confirmed {
        println!("  {line}");
    }
    println!();
    println!(
        "Run it again: documents change only where they lack something (users are added once), journals keep appending (more hits, more transactions)."
    );
    let me = program();
    let lib = root.join("var/lib/nos");
    println!("Inspect the files:");
    println!("  {me} check {}", lib.display());
    println!("  {me} check {}", lib.join("snapshots").display());
    println!(
        "  {me} load {}",
        lib.join("snapshots/snapdb.json").display()
    );
    Ok(())
}

/// The network configuration of the commit-confirmed part, under the root.
const NETWORK: &str = "etc/nos/network.json";

/// A network configuration: what a tentative change would cut the box off
/// with.
#[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
struct Network {
    address: String,
}

/// Commit-confirmed for real on `etc/nos/network.json`: a confirmed
/// address, a tentative one rolled back by a simulated reboot (the boot's
/// recovery), and a tentative one confirmed before the reboot, which stays
/// and keeps the one it replaced as the previous version. One line each.
fn commit_confirmed(root: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    use fsatomic::{Mode, Store, recover};
    let path = root.join(NETWORK);
    let dir_path = path.parent().unwrap_or(root);
    let mut dir =
        LinuxDir::open(dir_path).map_err(|e| format!("{}: {e}", absolute(dir_path).display()))?;
    let store: Store<Network> = Store::new("network.json", Mode::PRIVATE).with_previous();
    let mut buf = vec![0u8; 4096];
    let net = |a: &str| Network {
        address: a.to_string(),
    };
    let show = |dir: &mut LinuxDir, buf: &mut [u8]| -> Result<String, Box<dyn std::error::Error>> {
        let now = store.load(dir, buf)?;
        let before = store.load_previous(dir, buf)?;
        Ok(format!(
            "current {}, previous {}",
            now.map_or("none".into(), |n| n.address),
            before.map_or("none".into(), |n| n.address)
        ))
    };
    let reboot = |dir: &mut LinuxDir| recover::recover(dir, "network.json", Mode::PRIVATE);
    let mut lines = Vec::new();
    // A rolled-back change left by an earlier run is rolled back first.
    reboot(&mut dir)?;
    store.save(&mut dir, &mut buf, &net("10.0.0.2"))?;
    lines.push(format!("save 10.0.0.2: {}", show(&mut dir, &mut buf)?));
    store.save_tentative(&mut dir, &mut buf, &net("10.0.0.99"))?;
    lines.push(format!(
        "save --tentative 10.0.0.99: {}",
        show(&mut dir, &mut buf)?
    ));
    let rolled = reboot(&mut dir)?.rolled_back;
    lines.push(format!(
        "reboot, never confirmed: {} -> {}",
        if rolled {
            "rolled back"
        } else {
            "NOT rolled back"
        },
        show(&mut dir, &mut buf)?
    ));
    store.save_tentative(&mut dir, &mut buf, &net("10.0.0.3"))?;
    store.confirm(&mut dir)?;
    let rolled = reboot(&mut dir)?.rolled_back;
    lines.push(format!(
        "save --tentative 10.0.0.3, confirm, reboot: {} -> {}",
        if rolled { "rolled back" } else { "kept" },
        show(&mut dir, &mut buf)?
    ));
    Ok(lines)
}

/// How to call this program again, as the user called it.
fn program() -> String {
    std::env::args()
        .next()
        .filter(|p| p.contains('/'))
        .unwrap_or_else(|| "fsatomic".to_string())
}

fn fail(root: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::error(format!("demo under {}: {e}", absolute(root).display()))
}

/// Count the flushes of `commit` on a store whose counter is `count`.
fn measured<T>(
    count: impl Fn() -> u64,
    commit: impl FnOnce() -> Result<T, NasError>,
) -> Result<(T, u64), NasError> {
    let before = count();
    let out = commit()?;
    Ok((out, count().saturating_sub(before)))
}

/// The file that holds a store's data for `protocol`: the journal file
/// for a journal, slot `a` for slots, else the document itself.
fn data_file(path: &Path, protocol: &str) -> PathBuf {
    use fsatomic::layout::{Role, file_name};
    let role = match fsatomic::Protocol::parse(protocol) {
        Some(fsatomic::Protocol::Journal) => Role::Journal,
        Some(fsatomic::Protocol::Slots) => Role::Slot(0),
        _ => Role::Document,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(file_name(&name, role).as_str())
}

/// The permissions of `file`, as `0600`, or `?`.
fn mode_of(file: &Path) -> String {
    statat(CWD, file, AtFlags::SYMLINK_NOFOLLOW).map_or_else(
        |_| "?".to_string(),
        |st| format!("{:04o}", st.st_mode & 0o7777),
    )
}

/// One row of the table: store, file (under `root`), protocol, the mode
/// of its data file, flushes of the last commit, last value.
fn row(
    root: &Path,
    store: &str,
    path: &Path,
    protocol: &str,
    flushes: u64,
    last: String,
) -> [String; 6] {
    [
        store.to_string(),
        path.strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string(),
        protocol.to_string(),
        mode_of(&data_file(path, protocol)),
        flushes.to_string(),
        last,
    ]
}

fn user(name: &str, role: &str, at: u64) -> User {
    User {
        username: name.to_string(),
        // The daemon's hash format; a fixed, fake one for the demo.
        password_hash: format!("$argon2id$v=19$m=65536,t=3,p=4$demo${name}"),
        role: role.to_string(),
        created_at: at,
    }
}

/// Commit to every store; one row per store.
fn run(nas: &Nas, root: &Path) -> Result<Vec<[String; 6]>, NasError> {
    let mut rows = Vec::new();

    // Users: one update per account, added only if missing.
    let mut flushes = 0;
    for (name, role, at) in [("admin", "admin", EPOCH), ("alice", "user", EPOCH + 60)] {
        let ((), n) = measured(
            || nas.users.flush_count(),
            || {
                nas.users.update(|users: &mut Users| {
                    if !users.users.iter().any(|u| u.username == name) {
                        users.users.push(user(name, role, at));
                    }
                })
            },
        )?;
        flushes = n;
    }
    let users = nas.users.load()?.unwrap_or_default();
    let names: Vec<&str> = users.users.iter().map(|u| u.username.as_str()).collect();
    rows.push(row(
        root,
        "users",
        nas.users.path(),
        nas.users.protocol().as_str(),
        flushes,
        format!(
            "{} user{} ({})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ),
    ));

    // First boot: completed once; a second run keeps the first time.
    let (at, flushes) = measured(
        || nas.firstboot.flush_count(),
        || {
            nas.firstboot.update(|f: &mut FirstBoot| {
                if !f.completed {
                    f.completed = true;
                    f.completed_at = Some(EPOCH + 120);
                }
                f.completed_at
            })
        },
    )?;
    rows.push(row(
        root,
        "first boot",
        nas.firstboot.path(),
        nas.firstboot.protocol().as_str(),
        flushes,
        match at {
            Some(at) => format!("completed at {at}"),
            None => "not completed".to_string(),
        },
    ));

    // Sessions: three logins, one logout.
    for (token, name, at) in [
        ("tok-1", "admin", EPOCH + 200),
        ("tok-2", "alice", EPOCH + 210),
        ("tok-3", "alice", EPOCH + 220),
    ] {
        nas.sessions
            .append(SessionEvent::create(token, name, at, 3600))?;
    }
    let (_, flushes) = measured(
        || nas.sessions.flush_count(),
        || {
            nas.sessions
                .append(SessionEvent::revoke("tok-2", EPOCH + 230))
        },
    )?;
    let live = nas.sessions.with_state(|s| {
        s.sessions
            .values()
            .filter(|session| session.expires_at > s.clock)
            .count()
    })?;
    rows.push(row(
        root,
        "sessions",
        nas.sessions.path(),
        nas.sessions.protocol_name(),
        flushes,
        format!("{live} live session{}", if live == 1 { "" } else { "s" }),
    ));

    // Rate limit: ten attempts from one address, each durable.
    let mut flushes = 0;
    for i in 0..10 {
        let (_, n) = measured(
            || nas.ratelimit.flush_count(),
            || {
                nas.ratelimit.append(Hit {
                    key: RATE_KEY.to_string(),
                    at: EPOCH + 300 + i,
                })
            },
        )?;
        flushes = n;
    }
    let hits = nas
        .ratelimit
        .with_state(|r: &RateLimit| r.count(RATE_KEY, r.clock))?;
    rows.push(row(
        root,
        "rate limit",
        nas.ratelimit.path(),
        nas.ratelimit.protocol_name(),
        flushes,
        format!("{hits} hits on {RATE_KEY}"),
    ));

    // Snapshot database: three transactions, numbered after the last one.
    let before = nas.snapdb.with_state(|db: &SnapDb| db.transactions.len())?;
    let mut flushes = 0;
    let kinds = ["pre-update", "scheduled", "manual"];
    for (i, kind) in kinds.iter().enumerate() {
        let n = before + i + 1;
        let (_, f) = measured(
            || nas.snapdb.flush_count(),
            || {
                nas.snapdb.append(Transaction {
                    tx: format!("tx-{n:04}"),
                    at: EPOCH + 400 + n as u64,
                    kind: kind.to_string(),
                    snapshots: vec![format!("@root-{n:04}"), format!("@data-{n:04}")],
                })
            },
        )?;
        flushes = f;
    }
    let (count, latest) = nas.snapdb.with_state(|db: &SnapDb| {
        (
            db.transactions.len(),
            db.recent(1)
                .next()
                .map(|t| t.tx.clone())
                .unwrap_or_default(),
        )
    })?;
    let first_tx = format!("tx-{:04}", before + 1);
    let snapdb = row(
        root,
        "snapshot db",
        nas.snapdb.path(),
        nas.snapdb.protocol_name(),
        flushes,
        format!("{count} transactions, latest {latest}"),
    );

    // Updates index: 1.2.0 installed, recorded once.
    let (last, flushes) = measured(
        || nas.updates.flush_count(),
        || {
            nas.updates.update(|index: &mut UpdatesIndex| {
                if !index.updates.iter().any(|u| u.version == "1.2.0") {
                    index.updates.push(UpdateEntry {
                        version: "1.2.0".to_string(),
                        channel: "stable".to_string(),
                        state: "installed".to_string(),
                        at: EPOCH + 500,
                        snapshot_tx: Some(first_tx.clone()),
                    });
                }
                index
                    .updates
                    .last()
                    .map(|u| format!("{} {}", u.version, u.state))
                    .unwrap_or_default()
            })
        },
    )?;
    rows.push(row(
        root,
        "updates index",
        nas.updates.path(),
        nas.updates.protocol().as_str(),
        flushes,
        last,
    ));
    rows.push(snapdb);

    // Shares: publish (or re-publish) the media share.
    let (last, flushes) = measured(
        || nas.shares.flush_count(),
        || {
            nas.shares.update(|shares: &mut Shares| {
                let media = Share {
                    name: "media".to_string(),
                    path: "/srv/media".to_string(),
                    protocols: vec!["smb".to_string()],
                    read_only: false,
                    users: vec!["admin".to_string(), "alice".to_string()],
                };
                match shares.shares.iter_mut().find(|s| s.name == media.name) {
                    Some(existing) => *existing = media,
                    None => shares.shares.push(media),
                }
                shares
                    .shares
                    .iter()
                    .map(|s| format!("{} -> {} ({})", s.name, s.path, s.protocols.join("+")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        },
    )?;
    rows.push(row(
        root,
        "shares",
        nas.shares.path(),
        nas.shares.protocol().as_str(),
        flushes,
        last,
    ));
    Ok(rows)
}

fn print_table(rows: &[[String; 6]]) {
    let header = [
        "store",
        "file",
        "protocol",
        "mode",
        "flushes/commit",
        "last value",
    ]
    .map(String::from);
    let mut widths = [0; 6];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows) {
        let text: String = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}  "))
            .collect();
        println!("{}", text.trim_end());
    }
}
