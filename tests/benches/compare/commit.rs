//! One durable commit, every way a user could make one: fsatomic's
//! protocols, the original Go package's protocol re-implemented, the crates
//! users would pick instead, and the floor (append + `fdatasync`).
//!
//! Every configuration commits the same bytes (the indented users
//! document) into its own subdirectory of the bench directory, so that one
//! configuration's directory flushes never carry another's entries.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fsatomic::store::Fold;
use fsatomic::{JournalStore, Mode, Store, replace, slots};
use fsatomic_linux::LinuxDir;
use fsatomic_linux::nas::{User, Users};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::db::{Db, Engine};
use crate::svg::Role;

/// Who commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    /// `fsatomic::replace::commit` on `LinuxDir`: temp, fsync, rename,
    /// fsync dir.
    Replace,
    /// `Store::save` on `LinuxDir`: encode, lock, orphan sweep, Replace.
    StoreSave,
    /// `Store::with_previous().save`: the same, keeping the replaced
    /// version as `NAME.prev` (a hard link and a rename more).
    StorePrevious,
    /// `JournalStore::append` on `LinuxDir`: lock, catch up, one record,
    /// fdatasync (compaction included when it falls due).
    Journal,
    /// `fsatomic::slots::commit` on `LinuxDir`: overwrite the older slot,
    /// fdatasync.
    Slots,
    /// The Go package's `SaveJSON`: fixed `NAME.tmp` with `O_TRUNC`, fsync,
    /// fsync dir, rename, fsync dir.
    Original,
    /// `atomicwrites::AtomicFile::write` (replace allowed).
    AtomicWrites,
    /// `atomic_write_file::AtomicWriteFile` open, write, commit.
    AtomicWriteFile,
    /// `tempfile::NamedTempFile::new_in`, write, `sync_all`, `persist`,
    /// fsync of the directory by hand.
    Tempfile,
    /// SQLite (bundled), WAL, `synchronous=FULL`: the document as one row,
    /// replaced in one transaction.
    SqliteWal,
    /// SQLite (bundled), rollback journal, `synchronous=FULL`.
    SqliteRollback,
    /// redb, default (immediate) durability: the document as one value.
    Redb,
    /// A hand-written two-barrier replace on an open directory: create
    /// `NAME.tmp`, write, `fsync`, `renameat`, `fsync` of the directory.
    /// The floor of a replace.
    TwoBarrier,
    /// One file kept open with `O_APPEND`: write, `fdatasync`. The floor of
    /// one durable update.
    RawAppend,
}

impl Kind {
    /// Every configuration, in table order.
    pub const ALL: [Kind; 14] = [
        Kind::Replace,
        Kind::StoreSave,
        Kind::StorePrevious,
        Kind::Journal,
        Kind::Slots,
        Kind::Original,
        Kind::AtomicWrites,
        Kind::AtomicWriteFile,
        Kind::Tempfile,
        Kind::SqliteWal,
        Kind::SqliteRollback,
        Kind::Redb,
        Kind::TwoBarrier,
        Kind::RawAppend,
    ];

    /// Stable key (probe arguments, directory names) and the name in
    /// tables and plots.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Kind::Replace => ("replace", "fsatomic Replace"),
            Kind::StoreSave => ("store-save", "fsatomic Store::save"),
            Kind::StorePrevious => ("store-previous", "fsatomic Store::save, previous kept"),
            Kind::Journal => ("journal", "fsatomic Journal append"),
            Kind::Slots => ("slots", "fsatomic Slots"),
            Kind::Original => ("original", "original (Go SaveJSON)"),
            Kind::AtomicWrites => ("atomicwrites", "atomicwrites 0.4"),
            Kind::AtomicWriteFile => ("atomic-write-file", "atomic-write-file 0.3"),
            Kind::Tempfile => ("tempfile", "tempfile 3 + manual fsyncs"),
            Kind::SqliteWal => ("sqlite-wal", Engine::SqliteWal.label()),
            Kind::SqliteRollback => ("sqlite-rollback", Engine::SqliteRollback.label()),
            Kind::Redb => ("redb", Engine::Redb.label()),
            Kind::TwoBarrier => ("two-barrier", "hand-written two-barrier replace"),
            Kind::RawAppend => ("raw-append", "raw append + fdatasync"),
        }
    }

    /// Stable key, for probe arguments and directory names.
    pub fn key(self) -> &'static str {
        self.names().0
    }

    /// The name in tables and plots.
    pub fn label(self) -> &'static str {
        self.names().1
    }

    /// Colour role in plots.
    pub fn role(self) -> Role {
        match self {
            Kind::Replace | Kind::StoreSave | Kind::StorePrevious | Kind::Journal | Kind::Slots => {
                Role::Ours
            }
            Kind::Original => Role::Original,
            Kind::AtomicWrites | Kind::AtomicWriteFile | Kind::Tempfile => Role::Peer,
            Kind::SqliteWal | Kind::SqliteRollback | Kind::Redb => Role::Database,
            Kind::TwoBarrier | Kind::RawAppend => Role::Floor,
        }
    }

    /// Whether the flushes are counted by our own adapter
    /// (`LinuxDir::flush_count`); the others are counted with strace.
    pub fn self_counting(self) -> bool {
        self.role() == Role::Ours
    }

    /// The kind with key `key`.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// The two documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Size {
    #[default]
    /// One user: about 200 bytes.
    Small,
    /// Enough users for just under 64 KiB.
    Large,
}

impl Size {
    /// Both, small first.
    pub const ALL: [Size; 2] = [Size::Small, Size::Large];

    /// Stable key.
    pub fn key(self) -> &'static str {
        match self {
            Size::Small => "200B",
            Size::Large => "64KiB",
        }
    }

    /// The size in the goals of the report.
    pub fn label(self) -> &'static str {
        match self {
            Size::Small => "200 B",
            Size::Large => "64 KiB",
        }
    }

    /// The users document of this size.
    pub fn users(self) -> Users {
        let mut doc = Users {
            users: vec![user(0)],
        };
        while self == Size::Large && indented(&doc).len() <= 64 * 1024 {
            doc.users.push(user(doc.users.len()));
        }
        if self == Size::Large {
            doc.users.pop();
        }
        doc
    }

    /// Its size from `Size::key`.
    pub fn from_key(key: &str) -> Option<Size> {
        Size::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// A plausible account: an argon2id hash, as the daemon stores them.
pub fn user(i: usize) -> User {
    User {
        username: if i == 0 {
            "admin".into()
        } else {
            format!("user{i:04}")
        },
        password_hash: format!(
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ{i:04}$4bWr1l0gJxR9w2ZkQe3sT8yU7vPaHcNdXfM6oLiKjEs"
        ),
        role: if i == 0 { "admin" } else { "user" }.into(),
        created_at: 1_700_000_000 + i as u64,
    }
}

/// Indented JSON with a trailing newline: what every configuration writes,
/// and the original's files.
pub fn indented<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("state encodes");
    v.push(b'\n');
    v
}

/// The journal's state: the last users document appended.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct LastUsers {
    /// The document.
    pub doc: Users,
}

impl Fold<Users> for LastUsers {
    fn apply(&mut self, _seq: u64, record: &Users) {
        // `clone_from` reuses the allocations of the previous document.
        self.doc.clone_from(record);
    }
}

/// The permissions of the directories the stores create (`rwxr-xr-x`).
pub const DIR_MODE: Mode = Mode::new(0o755).expect("mode");

/// The journaled store `name` in `dir`, opened (recovered and replayed)
/// through `buf`, with its directory handle.
pub fn open_journal<S, R>(
    dir: &Path,
    name: &'static str,
    mode: Mode,
    buf: &mut [u8],
) -> Result<(LinuxDir, JournalStore<'static, S, R>)>
where
    S: Fold<R> + Serialize + DeserializeOwned + Default,
    R: Serialize + DeserializeOwned,
{
    let mut d = LinuxDir::open(dir)?;
    let mut store = JournalStore::new(name, mode)?;
    store.open(&mut d, buf)?;
    Ok((d, store))
}

/// The Go package's `SaveJSON(dir/name, v, 0600)`, step by step, with `v`
/// already marshalled into `data`: three flushes.
pub fn save_json(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?; // MkdirAll(dir, 0770)
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    File::open(dir)?.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    Ok(File::open(dir)?.sync_all()?)
}

const NAME: &str = "users.json";

/// What a configuration keeps open between commits.
enum Handle {
    /// fsatomic's protocols: our adapter's directory, and the store for
    /// Journal.
    Ours(
        LinuxDir,
        Option<Box<JournalStore<'static, LastUsers, Users>>>,
    ),
    /// A database connection.
    Db(Db),
    /// TwoBarrier: the directory; RawAppend: the log, open with `O_APPEND`.
    File(File),
    /// The original and the peer crates open by path at every commit.
    Path,
}

/// One configuration, set up and ready to commit.
pub struct Committer {
    kind: Kind,
    dir: PathBuf,
    path: PathBuf,
    doc: Users,
    data: Vec<u8>,
    buf: Vec<u8>,
    handle: Handle,
}

impl Committer {
    /// One durable commit of the document.
    pub fn commit(&mut self) -> Result<()> {
        let (data, buf, doc) = (&self.data, &mut self.buf, &self.doc);
        match (&mut self.handle, self.kind) {
            (Handle::Ours(dir, Some(journal)), _) => drop(journal.append(dir, buf, doc)?),
            (Handle::Ours(dir, _), Kind::Replace) => {
                replace::commit(dir, NAME, data, Mode::PRIVATE)?
            }
            (Handle::Ours(dir, _), Kind::Slots) => {
                slots::commit(dir, NAME, data, Mode::PRIVATE, data.len())?
            }
            (Handle::Ours(dir, _), kind) => {
                let store: Store<Users> = Store::new(NAME, Mode::PRIVATE);
                let store = if kind == Kind::StorePrevious {
                    store.with_previous()
                } else {
                    store
                };
                store.save(dir, buf, doc)?
            }
            (Handle::Db(db), _) => db.put(NAME, data)?,
            (Handle::File(dir), Kind::TwoBarrier) => two_barrier(dir, data)?,
            (Handle::File(log), _) => {
                log.write_all(data)?;
                log.sync_data()?
            }
            (Handle::Path, Kind::Original) => save_json(&self.dir, NAME, data)?,
            (Handle::Path, Kind::AtomicWrites) => {
                atomicwrites::AtomicFile::new(&self.path, atomicwrites::AllowOverwrite)
                    .write(|f| f.write_all(data))?
            }
            (Handle::Path, Kind::AtomicWriteFile) => {
                let mut f = atomic_write_file::AtomicWriteFile::open(&self.path)?;
                f.write_all(data)?;
                f.commit()?
            }
            (Handle::Path, _) => {
                // tempfile: the directory is ours to flush.
                let mut t = tempfile::NamedTempFile::new_in(&self.dir)?;
                t.write_all(data)?;
                t.as_file().sync_all()?;
                t.persist(&self.path)?;
                File::open(&self.dir)?.sync_all()?
            }
        }
        Ok(())
    }

    /// Flush barriers counted by our own adapter so far (ours only).
    pub fn flushes(&self) -> Option<u64> {
        match &self.handle {
            Handle::Ours(dir, _) => Some(dir.flush_count()),
            _ => None,
        }
    }

    /// Between batches, outside the timed region: keeps the raw append's
    /// log from growing without bound.
    pub fn maintain(&mut self) -> Result<()> {
        if let Handle::File(log) = &mut self.handle
            && self.kind == Kind::RawAppend
            && log.metadata()?.len() > 32 << 20
        {
            log.set_len(0)?;
            log.sync_all()?;
        }
        Ok(())
    }

    /// Read the committed document back and parse it into [`Users`]
    /// (`None`: not measured for this configuration). Handles stay open,
    /// as a daemon keeps its directory or its database connection.
    pub fn load(&mut self) -> Result<Option<Users>> {
        let users = match &mut self.handle {
            Handle::Ours(dir, None) => {
                let store: Store<Users> = Store::new(NAME, Mode::PRIVATE);
                self.buf.resize(self.buf.len().max(256 << 10), 0);
                store.load(dir, &mut self.buf)?
            }
            Handle::Db(db) => db
                .get(NAME)?
                .map(|b| serde_json::from_slice(&b))
                .transpose()?,
            _ => return Ok(None),
        };
        Ok(Some(users.ok_or("no document")?))
    }
}

/// The floor of a replace, by hand on an open directory descriptor, as our
/// adapter works: no path lookups beyond the two names, no lock, no
/// checks.
fn two_barrier(dir: &File, data: &[u8]) -> Result<()> {
    use rustix::fs::{Mode as RMode, OFlags, openat, renameat};
    const TMP: &str = "users.json.tmp";
    let fd = openat(
        dir,
        TMP,
        OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
        RMode::from_raw_mode(0o600),
    )?;
    let mut f = File::from(fd);
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    renameat(dir, TMP, dir, NAME)?;
    Ok(dir.sync_all()?)
}

/// Set up `kind` committing the `size` document in a fresh subdirectory of
/// `root`, and warm it up with two commits (files created, slots
/// formatted) so that only steady-state commits are measured.
pub fn setup(kind: Kind, size: Size, root: &Path) -> Result<Committer> {
    let dir = root.join(format!("commit-{}-{}", kind.key(), size.key()));
    fs::create_dir_all(&dir)?;
    let doc = size.users();
    let data = indented(&doc);
    let mut buf = match kind {
        Kind::StoreSave | Kind::StorePrevious => vec![0; 2 * data.len() + 4096],
        Kind::Journal => vec![0; 8 * data.len() + 64 * 1024],
        _ => Vec::new(),
    };
    let handle = match kind {
        Kind::Replace | Kind::StoreSave | Kind::StorePrevious | Kind::Slots => {
            Handle::Ours(LinuxDir::open(&dir)?, None)
        }
        Kind::Journal => {
            let (d, store) = open_journal(&dir, NAME, Mode::PRIVATE, &mut buf)?;
            Handle::Ours(d, Some(Box::new(store)))
        }
        Kind::Original | Kind::AtomicWrites | Kind::AtomicWriteFile | Kind::Tempfile => {
            Handle::Path
        }
        Kind::SqliteWal => Handle::Db(Db::open(Engine::SqliteWal, &dir)?),
        Kind::SqliteRollback => Handle::Db(Db::open(Engine::SqliteRollback, &dir)?),
        Kind::Redb => Handle::Db(Db::open(Engine::Redb, &dir)?),
        Kind::TwoBarrier => Handle::File(File::open(&dir)?),
        Kind::RawAppend => Handle::File(
            OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(dir.join("raw.log"))?,
        ),
    };
    let mut c = Committer {
        kind,
        path: dir.join(NAME),
        dir,
        doc,
        data,
        buf,
        handle,
    };
    c.commit()?;
    c.commit()?;
    Ok(c)
}
