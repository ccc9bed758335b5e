//! The seven appliance stores on the real filesystem: paths, modes,
//! protocols, durability across reopen, session expiry, every rate-limit hit,
//! the snapshot database, and group commit under contention.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use fsatomic_linux::nas::{
    FirstBoot, Hit, Nas, NasPaths, SessionEvent, Share, Shares, Transaction, UpdateEntry, User,
};

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fsatomic-nas-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn tx(n: u64) -> Transaction {
    Transaction {
        tx: format!("tx-{n:05}"),
        at: 1_700_000_000 + n,
        kind: "scheduled".into(),
        snapshots: vec![format!("@auto-{n}")],
    }
}

#[test]
fn every_store_lands_at_its_path_with_its_mode_and_protocol() {
    let root = scratch("paths");
    let paths = NasPaths::with_shares(&root, None);
    let nas = Nas::open_paths(&paths).unwrap();
    nas.users
        .update(|u| {
            u.users.push(User {
                username: "admin".into(),
                password_hash: "$argon2id$v=19$...".into(),
                role: "admin".into(),
                created_at: 1,
            })
        })
        .unwrap();
    nas.firstboot
        .save(&FirstBoot {
            completed: true,
            completed_at: Some(2),
        })
        .unwrap();
    nas.sessions
        .append(SessionEvent::create("t1", "admin", 10, 60))
        .unwrap();
    nas.ratelimit
        .append(Hit {
            key: "login:10.0.0.7".into(),
            at: 10,
        })
        .unwrap();
    nas.updates
        .update(|i| {
            i.updates.push(UpdateEntry {
                version: "1.2.0".into(),
                channel: "stable".into(),
                state: "installed".into(),
                at: 3,
                snapshot_tx: Some("tx-00001".into()),
            })
        })
        .unwrap();
    nas.snapdb.append(tx(1)).unwrap();
    nas.shares
        .save(&Shares {
            shares: vec![Share {
                name: "media".into(),
                path: "/srv/media".into(),
                protocols: vec!["smb".into()],
                read_only: false,
                users: vec!["admin".into()],
            }],
        })
        .unwrap();

    for (path, want) in [
        (&paths.users, 0o600),
        (&paths.firstboot, 0o600),
        (&paths.updates, 0o644),
        (&paths.shares, 0o600),
    ] {
        assert_eq!(mode(path), want, "{}", path.display());
    }
    for (path, want) in [
        (&paths.sessions, 0o600),
        (&paths.ratelimit, 0o600),
        (&paths.snapdb, 0o644),
    ] {
        let journal = path.with_extension("json.journal");
        assert_eq!(mode(&journal), want, "{}", journal.display());
    }
    assert_eq!(mode(&root.join("etc/nos")), 0o700);
    assert_eq!(nas.users.protocol().as_str(), "replace");
    assert_eq!(nas.sessions.protocol_name(), "journal");
    let text = std::fs::read_to_string(&paths.firstboot).unwrap();
    assert_eq!(
        text,
        "{\n  \"completed\": true,\n  \"completed_at\": 2\n}\n"
    );

    // Reopen: everything acknowledged is there.
    drop(nas);
    let nas = Nas::open_paths(&paths).unwrap();
    assert_eq!(
        nas.users.load().unwrap().unwrap().users[0].username,
        "admin"
    );
    assert!(nas.firstboot.load().unwrap().unwrap().completed);
    assert!(
        nas.sessions
            .with_state(|s| s.get("t1", 20).is_some())
            .unwrap()
    );
    assert_eq!(
        nas.ratelimit
            .with_state(|r| r.count("login:10.0.0.7", 11))
            .unwrap(),
        1
    );
    assert_eq!(nas.updates.load().unwrap().unwrap().updates.len(), 1);
    assert_eq!(
        nas.snapdb
            .with_state(|d| d.find("tx-00001").cloned())
            .unwrap(),
        Some(tx(1))
    );
    assert_eq!(nas.shares.load().unwrap().unwrap().shares[0].name, "media");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn shares_path_comes_from_the_environment_variable() {
    let root = scratch("shares-env");
    let paths = NasPaths::with_shares(&root, Some("devdata/shares.json".into()));
    assert_eq!(paths.shares, root.join("devdata/shares.json"));
    let abs = NasPaths::with_shares(&root, Some("/x/shares.json".into()));
    assert_eq!(abs.shares, Path::new("/x/shares.json"));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sessions_expire_at_compaction_and_revocations_stick() {
    let root = scratch("sessions");
    let paths = NasPaths::with_shares(&root, None);
    let nas = Nas::open_paths(&paths).unwrap();
    // Enough traffic to pass the compaction threshold several times.
    for i in 0..2000u64 {
        let token = format!("tok-{i:05}");
        nas.sessions
            .append(SessionEvent::create(&token, "alice", 1_000 + i, 100))
            .unwrap();
        if i % 2 == 0 {
            nas.sessions
                .append(SessionEvent::revoke(&token, 1_000 + i))
                .unwrap();
        }
    }
    // Automatic compactions happened along the way (the journal passed its
    // threshold); force one more so the snapshot reflects the end.
    nas.sessions.compact().unwrap();
    let live = nas.sessions.with_state(|s| s.sessions.len()).unwrap();
    // Compaction dropped every session expired by the journal's clock
    // (2999): only odd tokens created after 2899 remain.
    assert_eq!(live, 50, "expired sessions were kept");
    assert!(
        nas.sessions
            .with_state(|s| s.get("tok-01999", 2_000).is_some())
            .unwrap()
    );
    assert!(
        nas.sessions
            .with_state(|s| s.get("tok-01998", 2_000).is_none())
            .unwrap()
    );
    let snapshot = std::fs::read_to_string(&paths.sessions).unwrap();
    assert!(snapshot.starts_with("{\n  \"seq\": "), "{snapshot:.40}");
    assert!(
        !snapshot.contains("tok-00001"),
        "an expired session is still in the snapshot"
    );
    drop(nas);
    let nas = Nas::open_paths(&paths).unwrap();
    assert!(
        nas.sessions
            .with_state(|s| s.get("tok-01999", 2_000).is_some())
            .unwrap()
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn every_rate_limit_hit_is_durable_on_return() {
    let root = scratch("ratelimit");
    let paths = NasPaths::with_shares(&root, None);
    for n in 1..=25u64 {
        // A fresh open per hit: the count read back is what is on disk.
        let nas = Nas::open_paths(&paths).unwrap();
        nas.ratelimit
            .append(Hit {
                key: "login:10.0.0.9".into(),
                at: 5_000 + n,
            })
            .unwrap();
        drop(nas);
        let nas = Nas::open_paths(&paths).unwrap();
        assert_eq!(
            nas.ratelimit
                .with_state(|r| r.count("login:10.0.0.9", 5_000 + n))
                .unwrap(),
            n as usize
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn snapshot_database_finds_by_id_and_lists_most_recent() {
    let root = scratch("snapdb");
    let paths = NasPaths::with_shares(&root, None);
    let nas = Nas::open_paths(&paths).unwrap();
    for n in 1..=300 {
        let seq = nas.snapdb.append(tx(n)).unwrap();
        assert_eq!(seq, n);
    }
    let recent: Vec<String> = nas
        .snapdb
        .with_state(|d| d.recent(3).map(|t| t.tx.clone()).collect())
        .unwrap();
    assert_eq!(recent, ["tx-00300", "tx-00299", "tx-00298"]);
    assert_eq!(
        nas.snapdb
            .with_state(|d| d.find("tx-00042").cloned())
            .unwrap(),
        Some(tx(42))
    );
    drop(nas);
    let nas = Nas::open_paths(&paths).unwrap();
    assert_eq!(
        nas.snapdb.with_state(|d| d.transactions.len()).unwrap(),
        300
    );
    nas.snapdb.compact().unwrap();
    assert_eq!(
        mode(&paths.snapdb),
        0o644,
        "the compacted snapshot keeps 0644"
    );
    drop(nas);
    let nas = Nas::open_paths(&paths).unwrap();
    assert_eq!(
        nas.snapdb.with_state(|d| d.transactions.len()).unwrap(),
        300
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn concurrent_appenders_share_flushes_and_lose_nothing() {
    let root = scratch("group");
    let paths = NasPaths::with_shares(&root, None);
    let nas = Arc::new(Nas::open_paths(&paths).unwrap());
    let before = nas.ratelimit.flush_count();
    let threads = 16;
    let per_thread = 40;
    let seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let nas = nas.clone();
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            nas.ratelimit
                                .append(Hit {
                                    key: format!("login:10.0.{t}.{i}"),
                                    at: 9_000,
                                })
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let appends = (threads * per_thread) as u64;
    let flushes = nas.ratelimit.flush_count() - before;
    println!("group commit: {appends} appends from {threads} threads took {flushes} flushes");
    assert!(
        flushes < appends,
        "no flush was shared: {flushes} flushes for {appends} appends"
    );
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len() as u64,
        appends,
        "every appender got its own sequence number"
    );
    assert_eq!(sorted.last().unwrap() - sorted[0] + 1, appends, "no gaps");
    let total: usize = nas
        .ratelimit
        .with_state(|r| r.hits.values().map(Vec::len).sum())
        .unwrap();
    assert_eq!(total as u64, appends);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_shares_file_of_schema_1_is_migrated_at_start_and_kept_as_the_previous_version() {
    let root = scratch("schema");
    let paths = NasPaths::with_shares(&root, None);
    std::fs::create_dir_all(paths.shares.parent().unwrap()).unwrap();
    // What the daemon wrote before the shares had a schema.
    let v1 = "{\n  \"shares\": [\n    {\n      \"name\": \"media\",\n      \"path\": \"/srv/media\",\n      \"protocol\": \"nfs\",\n      \"read_only\": true,\n      \"users\": [\n        \"admin\"\n      ]\n    }\n  ]\n}\n";
    std::fs::write(&paths.shares, v1).unwrap();
    std::fs::set_permissions(&paths.shares, std::fs::Permissions::from_mode(0o600)).unwrap();
    let nas = Nas::open_paths(&paths).unwrap();
    let shares = nas.shares.load().unwrap().unwrap();
    assert_eq!(shares.shares[0].protocols, ["nfs"]);
    assert!(shares.shares[0].read_only);
    let text = std::fs::read_to_string(&paths.shares).unwrap();
    assert!(
        text.starts_with("{\n  \"schema\": 2,\n  \"value\": {\n"),
        "{text}"
    );
    let previous = paths.shares.with_extension("json.prev");
    assert_eq!(std::fs::read_to_string(&previous).unwrap(), v1);
    assert_eq!(mode(&previous), 0o600);
    drop(nas);
    // Opening again migrates nothing; a newer schema is refused, untouched.
    Nas::open_paths(&paths).unwrap();
    assert_eq!(std::fs::read_to_string(&previous).unwrap(), v1);
    let v3 = "{\n  \"schema\": 3,\n  \"value\": {}\n}\n";
    std::fs::write(&paths.shares, v3).unwrap();
    let err = Nas::open_paths(&paths)
        .err()
        .expect("a newer schema is refused");
    assert!(
        err.to_string().contains("schema 3, newer than the 2"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&paths.shares).unwrap(), v3);
}
