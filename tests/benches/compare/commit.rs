//! One durable commit, every way a user could make one: fsatomic's
//! protocols, the original Go package's protocol re-implemented, the crates
//! users would pick instead, and the floor (append + `fdatasync`).
//!
//! Every configuration commits the same bytes (the indented users
//! document) into its own subdirectory of the bench directory, so that one
//! configuration's directory flushes never carry another's entries.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fsatomic::store::Fold;
use fsatomic::{JournalStore, Mode, Store, replace, slots};
use fsatomic_linux::LinuxDir;
use fsatomic_linux::nas::{User, Users};
use serde::{Deserialize, Serialize};

use crate::db::{Db, Engine};
use crate::svg::Role;

/// Who commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
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

    /// Stable key, for probe arguments and directory names.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Replace => "replace",
            Kind::StoreSave => "store-save",
            Kind::StorePrevious => "store-previous",
            Kind::Journal => "journal",
            Kind::Slots => "slots",
            Kind::Original => "original",
            Kind::AtomicWrites => "atomicwrites",
            Kind::AtomicWriteFile => "atomic-write-file",
            Kind::Tempfile => "tempfile",
            Kind::SqliteWal => "sqlite-wal",
            Kind::SqliteRollback => "sqlite-rollback",
            Kind::Redb => "redb",
            Kind::TwoBarrier => "two-barrier",
            Kind::RawAppend => "raw-append",
        }
    }

    /// The name in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Replace => "fsatomic Replace",
            Kind::StoreSave => "fsatomic Store::save",
            Kind::StorePrevious => "fsatomic Store::save, previous kept",
            Kind::Journal => "fsatomic Journal append",
            Kind::Slots => "fsatomic Slots",
            Kind::Original => "original (Go SaveJSON)",
            Kind::AtomicWrites => "atomicwrites 0.4",
            Kind::AtomicWriteFile => "atomic-write-file 0.3",
            Kind::Tempfile => "tempfile 3 + manual fsyncs",
            Kind::SqliteWal => Engine::SqliteWal.label(),
            Kind::SqliteRollback => Engine::SqliteRollback.label(),
            Kind::Redb => Engine::Redb.label(),
            Kind::TwoBarrier => "hand-written two-barrier replace",
            Kind::RawAppend => "raw append + fdatasync",
        }
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

    /// The database engine behind this kind, if it is one.
    pub fn engine(self) -> Option<Engine> {
        match self {
            Kind::SqliteWal => Some(Engine::SqliteWal),
            Kind::SqliteRollback => Some(Engine::SqliteRollback),
            Kind::Redb => Some(Engine::Redb),
            _ => None,
        }
    }

    /// The kind with key `key`.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// The two documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
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

    /// The users document of this size.
    pub fn users(self) -> Users {
        match self {
            Size::Small => Users {
                users: vec![user(0)],
            },
            Size::Large => {
                let mut doc = Users { users: Vec::new() };
                loop {
                    doc.users.push(user(doc.users.len()));
                    if indented(&doc).len() > 64 * 1024 {
                        doc.users.pop();
                        return doc;
                    }
                }
            }
        }
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

/// Indented JSON with a trailing newline: what every configuration writes.
pub fn indented(users: &Users) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(users).expect("users encode");
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

/// One configuration, set up and ready to commit.
pub trait Committer {
    /// One durable commit of the document.
    fn commit(&mut self) -> io::Result<()>;
    /// Flush barriers counted by our own adapter so far, if it counts.
    fn flushes(&self) -> Option<u64> {
        None
    }
    /// Between batches, outside the timed region (keeps the floor's file
    /// from growing without bound).
    fn maintain(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Read the committed document back and parse it into [`Users`]
    /// (`None`: not measured for this configuration). Handles stay open,
    /// as a daemon keeps its directory or its database connection.
    fn load(&mut self) -> Option<io::Result<Users>> {
        None
    }
}

/// `Store::<Users>::load` in `dir`, whatever protocol the state is on.
fn store_load(dir: &mut LinuxDir, buf: &mut Vec<u8>) -> io::Result<Users> {
    let store: Store<Users> = Store::new(NAME, Mode::PRIVATE);
    buf.resize(buf.len().max(256 << 10), 0);
    store
        .load(dir, buf)
        .map_err(io_err)?
        .ok_or_else(|| io_err("no document"))
}

const NAME: &str = "users.json";

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

struct ReplaceC {
    dir: LinuxDir,
    data: Vec<u8>,
    buf: Vec<u8>,
}

impl Committer for ReplaceC {
    fn commit(&mut self) -> io::Result<()> {
        replace::commit(&mut self.dir, NAME, &self.data, Mode::PRIVATE).map_err(io_err)
    }
    fn flushes(&self) -> Option<u64> {
        Some(self.dir.flush_count())
    }
    fn load(&mut self) -> Option<io::Result<Users>> {
        Some(store_load(&mut self.dir, &mut self.buf))
    }
}

struct StoreC {
    dir: LinuxDir,
    doc: Users,
    buf: Vec<u8>,
    previous: bool,
}

impl Committer for StoreC {
    fn commit(&mut self) -> io::Result<()> {
        let store: Store<Users> = Store::new(NAME, Mode::PRIVATE);
        let store = if self.previous {
            store.with_previous()
        } else {
            store
        };
        store
            .save(&mut self.dir, &mut self.buf, &self.doc)
            .map_err(io_err)
    }
    fn flushes(&self) -> Option<u64> {
        Some(self.dir.flush_count())
    }
    fn load(&mut self) -> Option<io::Result<Users>> {
        Some(store_load(&mut self.dir, &mut self.buf))
    }
}

struct SlotsC {
    dir: LinuxDir,
    data: Vec<u8>,
    buf: Vec<u8>,
}

impl Committer for SlotsC {
    fn commit(&mut self) -> io::Result<()> {
        slots::commit(
            &mut self.dir,
            NAME,
            &self.data,
            Mode::PRIVATE,
            self.data.len(),
        )
        .map_err(io_err)
    }
    fn flushes(&self) -> Option<u64> {
        Some(self.dir.flush_count())
    }
    fn load(&mut self) -> Option<io::Result<Users>> {
        Some(store_load(&mut self.dir, &mut self.buf))
    }
}

struct JournalC {
    dir: LinuxDir,
    store: JournalStore<'static, LastUsers, Users>,
    doc: Users,
    buf: Vec<u8>,
}

impl Committer for JournalC {
    fn commit(&mut self) -> io::Result<()> {
        self.store
            .append(&mut self.dir, &mut self.buf, &self.doc)
            .map(drop)
            .map_err(io_err)
    }
    fn flushes(&self) -> Option<u64> {
        Some(self.dir.flush_count())
    }
}

/// The original package's `SaveJSON`, step by step, with the flushes it
/// issues counted at the call sites (it is our re-implementation, so the
/// count is exact: three per commit).
pub struct Original {
    /// The directory.
    pub dir: PathBuf,
    /// Flushes issued so far.
    pub flushes: u64,
}

impl Original {
    /// `SaveJSON(path, v, 0600)` with `v` already marshalled into `data`.
    pub fn save(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?; // MkdirAll(dir, 0770)
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        self.flushes += 1;
        drop(f);
        self.sync_dir()?;
        fs::rename(&tmp, &path)?;
        self.sync_dir()
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()?;
        self.flushes += 1;
        Ok(())
    }
}

struct OriginalC {
    original: Original,
    data: Vec<u8>,
}

impl Committer for OriginalC {
    fn commit(&mut self) -> io::Result<()> {
        self.original.save(NAME, &self.data)
    }
}

struct AtomicWritesC {
    path: PathBuf,
    data: Vec<u8>,
}

impl Committer for AtomicWritesC {
    fn commit(&mut self) -> io::Result<()> {
        atomicwrites::AtomicFile::new(&self.path, atomicwrites::AllowOverwrite)
            .write(|f| f.write_all(&self.data))
            .map_err(io_err)
    }
}

struct AtomicWriteFileC {
    path: PathBuf,
    data: Vec<u8>,
}

impl Committer for AtomicWriteFileC {
    fn commit(&mut self) -> io::Result<()> {
        let mut f = atomic_write_file::AtomicWriteFile::open(&self.path)?;
        f.write_all(&self.data)?;
        f.commit()
    }
}

struct TempfileC {
    dir: PathBuf,
    path: PathBuf,
    data: Vec<u8>,
}

impl Committer for TempfileC {
    fn commit(&mut self) -> io::Result<()> {
        let mut t = tempfile::NamedTempFile::new_in(&self.dir)?;
        t.write_all(&self.data)?;
        t.as_file().sync_all()?;
        t.persist(&self.path).map_err(|e| e.error)?;
        File::open(&self.dir)?.sync_all()
    }
}

struct DbC {
    db: Db,
    data: Vec<u8>,
}

impl Committer for DbC {
    fn commit(&mut self) -> io::Result<()> {
        self.db.put(NAME, &self.data)
    }
    fn load(&mut self) -> Option<io::Result<Users>> {
        Some(self.db.get(NAME).and_then(|body| {
            serde_json::from_slice(&body.ok_or_else(|| io_err("no document"))?).map_err(io_err)
        }))
    }
}

/// The floor of a replace, by hand on an open directory descriptor, as our
/// adapter works: no path lookups beyond the two names, no lock, no
/// checks.
struct TwoBarrierC {
    dir: File,
    data: Vec<u8>,
}

impl Committer for TwoBarrierC {
    fn commit(&mut self) -> io::Result<()> {
        use rustix::fs::{Mode as RMode, OFlags, openat, renameat};
        const TMP: &str = "users.json.tmp";
        let fd = openat(
            &self.dir,
            TMP,
            OFlags::CREATE | OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
            RMode::from_raw_mode(0o600),
        )?;
        let mut f = File::from(fd);
        f.write_all(&self.data)?;
        f.sync_all()?;
        drop(f);
        renameat(&self.dir, TMP, &self.dir, NAME)?;
        self.dir.sync_all()
    }
}

struct RawAppendC {
    file: File,
    data: Vec<u8>,
}

impl Committer for RawAppendC {
    fn commit(&mut self) -> io::Result<()> {
        self.file.write_all(&self.data)?;
        self.file.sync_data()
    }
    fn maintain(&mut self) -> io::Result<()> {
        if self.file.metadata()?.len() > 32 << 20 {
            self.file.set_len(0)?;
            self.file.sync_all()?;
        }
        Ok(())
    }
}

/// Set up `kind` committing the `size` document in a fresh subdirectory of
/// `root`, and warm it up with two commits (files created, slots
/// formatted) so that only steady-state commits are measured.
pub fn setup(kind: Kind, size: Size, root: &Path) -> io::Result<Box<dyn Committer>> {
    let dir = root.join(format!("commit-{}-{}", kind.key(), size.key()));
    fs::create_dir_all(&dir)?;
    let doc = size.users();
    let data = indented(&doc);
    let path = dir.join(NAME);
    let mut c: Box<dyn Committer> = match kind {
        Kind::Replace => Box::new(ReplaceC {
            dir: LinuxDir::open(&dir)?,
            data,
            buf: Vec::new(),
        }),
        Kind::StoreSave | Kind::StorePrevious => Box::new(StoreC {
            dir: LinuxDir::open(&dir)?,
            doc,
            buf: vec![0; 2 * data.len() + 4096],
            previous: kind == Kind::StorePrevious,
        }),
        Kind::Slots => Box::new(SlotsC {
            dir: LinuxDir::open(&dir)?,
            data,
            buf: Vec::new(),
        }),
        Kind::Journal => {
            let mut d = LinuxDir::open(&dir)?;
            let mut buf = vec![0; 8 * data.len() + 64 * 1024];
            let mut store = JournalStore::new(NAME, Mode::PRIVATE).map_err(io_err)?;
            store.open(&mut d, &mut buf).map_err(io_err)?;
            Box::new(JournalC {
                dir: d,
                store,
                doc,
                buf,
            })
        }
        Kind::Original => Box::new(OriginalC {
            original: Original {
                dir: dir.clone(),
                flushes: 0,
            },
            data,
        }),
        Kind::AtomicWrites => Box::new(AtomicWritesC { path, data }),
        Kind::AtomicWriteFile => Box::new(AtomicWriteFileC { path, data }),
        Kind::Tempfile => Box::new(TempfileC {
            dir: dir.clone(),
            path,
            data,
        }),
        Kind::SqliteWal | Kind::SqliteRollback | Kind::Redb => Box::new(DbC {
            db: Db::open(kind.engine().expect("a database kind"), &dir)?,
            data,
        }),
        Kind::TwoBarrier => Box::new(TwoBarrierC {
            dir: File::open(&dir)?,
            data,
        }),
        Kind::RawAppend => Box::new(RawAppendC {
            file: OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(dir.join("raw.log"))?,
            data,
        }),
    };
    c.commit()?;
    c.commit()?;
    Ok(c)
}
