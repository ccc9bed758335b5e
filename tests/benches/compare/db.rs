//! The embedded databases a daemon author would pick instead of state
//! files: SQLite (the bundled library, through `rusqlite`) in WAL and in
//! rollback-journal mode, both with `synchronous=FULL`, and redb with its
//! default durable commit (`Durability::Immediate`).
//!
//! Each does the two jobs ours do, in its own database file: replace the
//! users document (one row keyed by name, one transaction per commit), and
//! append one event to a history (one row keyed by a sequence number, one
//! transaction per append). Loading reads the rows back and parses them
//! with `serde_json`, as a daemon would.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use rusqlite::OptionalExtension;

use crate::Result;

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SQLite, `journal_mode=WAL`, `synchronous=FULL`.
    SqliteWal,
    /// SQLite, `journal_mode=DELETE` (the rollback journal), `synchronous=FULL`.
    SqliteRollback,
    /// redb, default (immediate) durability.
    Redb,
}

impl Engine {
    /// Every engine, in table order.
    pub const ALL: [Engine; 3] = [Engine::SqliteWal, Engine::SqliteRollback, Engine::Redb];

    /// The name in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Engine::SqliteWal => "SQLite WAL, synchronous=FULL",
            Engine::SqliteRollback => "SQLite rollback journal, synchronous=FULL",
            Engine::Redb => "redb 5",
        }
    }
}

const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("docs");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

enum Handle {
    Sqlite(rusqlite::Connection),
    Redb(redb::Database),
}

/// One open database: a `docs` table (name → JSON) and an `events` table
/// (sequence → JSON). SQLite handles are connections: several may be open
/// on one file, each appending.
pub struct Db {
    handle: Handle,
    next: u64,
}

impl Db {
    /// Create (or open) `engine`'s database in the directory `dir`.
    pub fn open(engine: Engine, dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(dir)?;
        let handle = match engine {
            Engine::SqliteWal | Engine::SqliteRollback => {
                let conn = rusqlite::Connection::open(dir.join("state.sqlite"))?;
                let mode = if engine == Engine::SqliteWal {
                    "WAL"
                } else {
                    "DELETE"
                };
                let set: String =
                    conn.query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))?;
                if !set.eq_ignore_ascii_case(mode) {
                    return Err(format!("SQLite kept journal_mode {set}, not {mode}").into());
                }
                // Other connections (the group-commit run's threads) may
                // hold the write lock for a moment: wait, as a daemon would.
                conn.busy_timeout(std::time::Duration::from_secs(30))?;
                conn.execute_batch(
                    "PRAGMA synchronous=FULL;
                     CREATE TABLE IF NOT EXISTS docs (name TEXT PRIMARY KEY, body BLOB NOT NULL);
                     CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);",
                )?;
                Handle::Sqlite(conn)
            }
            Engine::Redb => {
                let db = redb::Database::create(dir.join("state.redb"))?;
                let txn = db.begin_write()?;
                txn.open_table(DOCS)?;
                txn.open_table(EVENTS)?;
                txn.commit()?;
                Handle::Redb(db)
            }
        };
        let mut db = Db { handle, next: 0 };
        db.next = db.events()?.len() as u64;
        Ok(db)
    }

    /// Replace the document `name` with `body`: one durable transaction.
    pub fn put(&mut self, name: &str, body: &[u8]) -> Result<()> {
        match &mut self.handle {
            Handle::Sqlite(conn) => {
                conn.prepare_cached("INSERT OR REPLACE INTO docs (name, body) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(rusqlite::params![name, body]))?;
            }
            Handle::Redb(db) => {
                let txn = db.begin_write()?;
                txn.open_table(DOCS)?.insert(name, body)?;
                txn.commit()?;
            }
        }
        Ok(())
    }

    /// The document `name`, if there is one.
    pub fn get(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        match &mut self.handle {
            Handle::Sqlite(conn) => {
                let mut s = conn.prepare_cached("SELECT body FROM docs WHERE name = ?1")?;
                Ok(s.query_row([name], |r| r.get(0)).optional()?)
            }
            Handle::Redb(db) => {
                let txn = db.begin_read()?;
                let table = txn.open_table(DOCS)?;
                Ok(table.get(name)?.map(|v| v.value().to_vec()))
            }
        }
    }

    /// Append `body` as the next event: one durable transaction.
    pub fn append(&mut self, body: &[u8]) -> Result<()> {
        self.append_all(std::slice::from_ref(&body))
    }

    /// Append every body of `bodies`, in order, in one durable transaction
    /// (used to fill histories outside the timed region).
    pub fn append_all(&mut self, bodies: &[&[u8]]) -> Result<()> {
        let first = self.next;
        match &mut self.handle {
            Handle::Sqlite(conn) => {
                let txn = conn.transaction()?;
                {
                    // The row id numbers the events: connections of other
                    // threads append to the same table.
                    let mut s = txn.prepare_cached("INSERT INTO events (body) VALUES (?1)")?;
                    for body in bodies {
                        s.execute([body])?;
                    }
                }
                txn.commit()?;
            }
            Handle::Redb(db) => {
                let txn = db.begin_write()?;
                {
                    let mut t = txn.open_table(EVENTS)?;
                    for (i, body) in bodies.iter().enumerate() {
                        t.insert(first + i as u64, *body)?;
                    }
                }
                txn.commit()?;
            }
        }
        self.next = first + bodies.len() as u64;
        Ok(())
    }

    /// Every event, in order.
    pub fn events(&mut self) -> Result<Vec<Vec<u8>>> {
        match &mut self.handle {
            Handle::Sqlite(conn) => {
                let mut s = conn.prepare_cached("SELECT body FROM events ORDER BY seq")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
            Handle::Redb(db) => {
                let txn = db.begin_read()?;
                let table = txn.open_table(EVENTS)?;
                let events = table.iter()?.map(|e| Ok(e?.1.value().to_vec()));
                events.collect()
            }
        }
    }
}
