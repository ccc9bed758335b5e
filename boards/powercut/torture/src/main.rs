//! The power-cut torture program, run by the guest's init on the emulated
//! arm64 board (`boards/powercut/`).
//!
//! ```text
//! torture MODE DIR [--verify] [--base N] [--pace MS]
//!   MODE     replace | replace-forced | slots | journal | unsynced | nodirsync
//!   DIR      the directory on the filesystem under test
//!   --verify print what the last power cut left and exit (the clean check boot)
//!   --base N the highest version the host saw acknowledged (used to keep
//!            versions increasing after a tear the program cannot read past)
//!   --pace MS wait MS milliseconds after each ACK before the next commit
//!            (the write-cache run reads the disk's write log at each ACK:
//!            the pause keeps the next commit's writes out of that reading)
//! ```
//!
//! On start it runs the boot-time recovery of the public API
//! ([`fsatomic::recover::recover`] for whole documents,
//! [`JournalStore::open`] for the journal), then prints exactly one verdict:
//!
//! - `FOUND v=N` — the state is intact and at version N;
//! - `MISSING` — no state at all (only right before the first commit);
//! - `TORN v=N <why>` — the file parsed, but its content is not a version any
//!   commit wrote (a mix of two versions, a record missing from the journal);
//! - `CORRUPT <error>` — fsatomic refused the file (empty, cut short, bad
//!   checksum), naming the file and the byte offset;
//! - `ERROR <error>` — recovery itself failed (an I/O error).
//!
//! `CORRUPT` and `ERROR` are told apart in one place, [`failure`], by one
//! match on the flat [`fsatomic::Error`], whichever call failed (a journal's
//! damage comes out of [`JournalStore::open`]'s recovery, a document's out
//! of [`Store::load`]). The program names no file of the library's but
//! `state.json` itself: the journal's file comes from [`fsatomic::layout`].
//!
//! Then, unless `--verify`, it commits versions N+1, N+2, … forever and
//! prints `ACK v=N` only after the commit call returned `Ok`, flushing
//! stdout (the serial console) before the next commit starts. The host cuts
//! the power at a random moment and checks, on the next boot, that the
//! version found is at least the last acknowledged one and intact.
//!
//! `unsynced` is the harness's litmus test, not a use of the library: it
//! writes each version to a temporary file and renames it over the
//! document with plain `std::fs` and no flush at all, and acknowledges at
//! once (the first version on a fresh disk is committed through the
//! library, so that later cuts find an older version rather than
//! nothing). A power cut must lose acknowledged versions there; if the harness
//! did not see that, it could not see a lost commit either. `nodirsync` is
//! the second litmus test, of the write-cache run: the same loop, but each
//! temporary file is flushed (`sync_all`) before its rename, and the
//! directory never is — Replace without its directory flush. A disk whose
//! cache drops the rename's journal writes must lose acknowledged versions.
//!
//! Each version's document carries a padding of [`PAD`] characters whose
//! every byte depends on the version, and a checksum over both, so a file
//! that mixes pages of two versions is caught even when it is valid JSON.

use std::io::Write;
use std::process::ExitCode;

use fsatomic::layout::{self, Files, Role};
use fsatomic::store::Fold;
use fsatomic::{Dir, JournalStore, Mode, Protocol, Store};
use fsatomic_linux::LinuxDir;
use serde::{Deserialize, Serialize};

/// The document's file.
const NAME: &str = "state.json";
/// Padding per document: the file spans three 4 KiB pages (and many FAT
/// sectors), so a tear between pages is possible and visible.
const PAD: usize = 10_000;
/// Padding per journal record.
const RECORD_PAD: usize = 300;
/// Compact the journal past this many bytes, so cuts land inside
/// compactions too (about one compaction per 25 appends).
const COMPACT_AFTER: u64 = 8 * 1024;
/// The caller's buffer: the document twice over (load needs room after it)
/// and the slot size for Slots.
const BUF: usize = 32 * 1024;

#[derive(Serialize, Deserialize, Default)]
struct Doc {
    v: u64,
    pad: heapless::String<PAD>,
    sum: u64,
}

/// The byte at position `i` of version `v`'s padding: consecutive versions
/// differ at every position.
fn pattern(v: u64, i: usize) -> u8 {
    let i = i as u64;
    b'a' + (v.wrapping_mul(7).wrapping_add(i * 11 + (i / 26) * 3) % 26) as u8
}

fn padding<const N: usize>(v: u64) -> heapless::String<N> {
    let mut s = heapless::String::new();
    for i in 0..N {
        let _ = s.push(pattern(v, i) as char);
    }
    s
}

/// FNV-1a over the version and the padding.
fn checksum(v: u64, pad: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_le_bytes().iter().chain(pad.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Doc {
    fn new(v: u64) -> Doc {
        let pad = padding::<PAD>(v);
        let sum = checksum(v, &pad);
        Doc { v, pad, sum }
    }

    /// Why this document is not one that version `v` wrote, if it is not.
    fn torn(&self) -> Option<String> {
        if self.pad.len() != PAD {
            return Some(format!("padding is {} bytes, not {PAD}", self.pad.len()));
        }
        if let Some(i) = (0..PAD).find(|&i| self.pad.as_bytes()[i] != pattern(self.v, i)) {
            return Some(format!(
                "padding differs from version {} at byte {i}",
                self.v
            ));
        }
        if self.sum != checksum(self.v, &self.pad) {
            return Some(format!("checksum {:#x} does not match", self.sum));
        }
        None
    }
}

/// One journal record: version `v`, with a padding of its own.
#[derive(Serialize, Deserialize)]
struct Rec {
    v: u64,
    pad: heapless::String<RECORD_PAD>,
}

/// The journaled state: the last version and how many records led to it.
/// Every record must be the previous one plus one, with its own padding.
#[derive(Serialize, Deserialize, Default)]
struct Tally {
    last: u64,
    count: u64,
    bad: u64,
    first_bad: u64,
}

impl Fold<Rec> for Tally {
    fn apply(&mut self, _seq: u64, r: &Rec) {
        let pad_ok = r.pad.len() == RECORD_PAD
            && r.pad.bytes().enumerate().all(|(i, b)| b == pattern(r.v, i));
        if r.v == self.last + 1 && pad_ok {
            self.last = r.v;
            self.count += 1;
        } else {
            if self.bad == 0 {
                self.first_bad = r.v;
            }
            self.bad += 1;
        }
    }
}

/// The verdict line for a failed call: `CORRUPT` when fsatomic refused a
/// file (what a power cut must never leave), `ERROR what: …` for anything
/// else — one match on the flat error, whichever call's error it was.
fn failure<E: std::fmt::Display>(what: &str, error: impl Into<fsatomic::Error<E>>) -> String {
    match error.into() {
        fsatomic::Error::Corrupt(c) => format!("CORRUPT {c}"),
        e => format!("ERROR {what}: {e}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Replace,
    ReplaceForced,
    Slots,
    Journal,
    Unsynced,
    NoDirSync,
}

struct Args {
    mode: Kind,
    dir: String,
    verify: bool,
    base: u64,
    pace: std::time::Duration,
}

/// Print `ACK v=N` (the commit call returned), then wait `--pace`.
fn ack(args: &Args, v: u64) {
    say(&format!("ACK v={v}"));
    if !args.pace.is_zero() {
        std::thread::sleep(args.pace);
    }
}

/// An option's argument as a number.
fn number(arg: Option<String>) -> Option<u64> {
    arg?.parse().ok()
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = match it.next().as_deref() {
        Some("replace") => Kind::Replace,
        Some("replace-forced") => Kind::ReplaceForced,
        Some("slots") => Kind::Slots,
        Some("journal") => Kind::Journal,
        Some("unsynced") => Kind::Unsynced,
        Some("nodirsync") => Kind::NoDirSync,
        other => return Err(format!("unknown mode {other:?}")),
    };
    let dir = it.next().ok_or("no directory")?;
    let (mut verify, mut base, mut pace) = (false, 0, 0);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--verify" => verify = true,
            "--base" => base = number(it.next()).ok_or("--base needs a number")?,
            "--pace" => pace = number(it.next()).ok_or("--pace needs milliseconds")?,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(Args {
        mode,
        dir,
        verify,
        base,
        pace: std::time::Duration::from_millis(pace),
    })
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            say(&format!("ERROR usage: {e}"));
            return ExitCode::from(2);
        }
    };
    // The state's directory is made by the library too: a directory it
    // creates is durable (its parent flushed) before the first commit.
    let dir_mode = Mode::new(0o700).unwrap_or(Mode::PRIVATE);
    let mut dir = match LinuxDir::create_all(&args.dir, dir_mode) {
        Ok((d, made)) => {
            for m in made {
                say(&format!("MKDIR {}", m.display()));
            }
            d
        }
        Err(e) => {
            say(&format!("ERROR open {}: {e}", args.dir));
            return ExitCode::from(1);
        }
    };
    let code = match args.mode {
        Kind::Journal => journal(&mut dir, &args),
        _ => document(&mut dir, &args),
    };
    ExitCode::from(code)
}

/// Replace, forced Replace, or Slots: one whole document per commit.
fn document(dir: &mut LinuxDir, args: &Args) -> u8 {
    let protocol = match args.mode {
        Kind::Slots => Protocol::Slots,
        Kind::ReplaceForced => Protocol::Replace,
        _ => Protocol::Auto,
    };
    let store: Store<Doc> = Store::new(NAME, Mode::PRIVATE).with_protocol(protocol);
    let caps = dir.capabilities();
    say(&format!(
        "FS name={} atomic_replace={} protocol={}",
        caps.filesystem,
        caps.atomic_replace,
        protocol.resolve(caps)
    ));
    if matches!(args.mode, Kind::Replace | Kind::Unsynced | Kind::NoDirSync)
        && protocol.resolve(caps) != Protocol::Replace
    {
        say("ERROR replace mode on a filesystem where Auto does not pick Replace");
        return 2;
    }
    match fsatomic::recover::recover(dir, NAME, Mode::PRIVATE) {
        Ok(done) => say(&format!("RECOVER removed={}", done.orphans)),
        Err(e) => {
            say(&failure("recover", e));
            return 1;
        }
    }
    let mut buf = vec![0u8; BUF];
    let mut intact = false;
    let found = match store.load(dir, &mut buf) {
        Ok(None) => {
            say("MISSING");
            intact = true;
            0
        }
        Ok(Some(doc)) => match doc.torn() {
            None => {
                say(&format!("FOUND v={}", doc.v));
                intact = true;
                doc.v
            }
            Some(why) => {
                say(&format!("TORN v={} {why}", doc.v));
                0
            }
        },
        Err(e) => {
            say(&failure("load", e));
            0
        }
    };
    if args.verify {
        return 0;
    }
    // The first commit, and the one after a tear (the file cannot be read
    // back), is a plain `save`, from past the highest version the host saw
    // acknowledged.
    let mut v = found.max(args.base);
    if !intact || v == 0 {
        v += 1;
        if let Err(e) = store.save(dir, &mut buf, &Doc::new(v)) {
            say(&format!("FAIL commit v={v}: {e}"));
            return 1;
        }
        ack(args, v);
    }
    if matches!(args.mode, Kind::Unsynced | Kind::NoDirSync) {
        // After one durable commit through the library (above, on a fresh
        // disk), the litmus loop: a cut must then find an older version
        // than the last acknowledged one.
        return unsynced(args, v, &mut buf);
    }
    loop {
        // The read-modify-write of every store: lock, load, check that the
        // file holds the version last acknowledged, commit the next.
        let expect = v;
        let r = store.update(dir, &mut buf, |doc| {
            let seen = (doc.v, doc.torn());
            *doc = Doc::new(expect + 1);
            seen
        });
        match r {
            Ok((seen, None)) if seen == expect => {}
            Ok((seen, torn)) => {
                say(&format!(
                    "FAIL read back v={seen} before committing v={}, expected v={expect}{}",
                    expect + 1,
                    torn.map(|t| format!(" ({t})")).unwrap_or_default()
                ));
                return 1;
            }
            Err(e) => {
                say(&format!("FAIL commit v={}: {e}", expect + 1));
                return 1;
            }
        }
        v = expect + 1;
        ack(args, v);
    }
}

/// Journal: one record per commit, each with the next version.
fn journal(dir: &mut LinuxDir, args: &Args) -> u8 {
    let caps = dir.capabilities();
    say(&format!(
        "FS name={} atomic_replace={} protocol=journal",
        caps.filesystem, caps.atomic_replace
    ));
    let existed = match Files::probe(dir, NAME) {
        Ok(files) => files.document || files.journal,
        Err(e) => {
            say(&failure("probe", e));
            return 1;
        }
    };
    let mut store = match JournalStore::<Tally, Rec>::new(NAME, Mode::PRIVATE) {
        Ok(s) => s.compact_after(COMPACT_AFTER),
        Err(e) => {
            say(&format!("ERROR name: {e}"));
            return 2;
        }
    };
    let journal_file =
        std::path::Path::new(&args.dir).join(layout::file_name(NAME, Role::Journal).as_str());
    let journal_len = || std::fs::metadata(&journal_file).map(|m| m.len()).ok();
    let before = journal_len();
    let mut buf = vec![0u8; BUF];
    match store.open(dir, &mut buf) {
        Ok(()) => {
            // A shorter journal after open: recovery cut a torn tail (or
            // finished a compaction the cut interrupted).
            if let (Some(b), Some(a)) = (before, journal_len()) {
                say(&format!("RECOVER journal bytes={b} after={a}"));
            }
        }
        Err(e) => {
            say(&failure("open", e));
            return 1;
        }
    }
    let t = store.state();
    if t.bad > 0 || t.count != t.last {
        say(&format!(
            "TORN v={} {} records out of sequence or damaged (first v={}), {} records for {} versions",
            t.last, t.bad, t.first_bad, t.count, t.last
        ));
        return 1;
    }
    if !existed && t.last == 0 {
        say("MISSING");
    } else {
        say(&format!("FOUND v={} records={}", t.last, t.count));
    }
    if args.verify {
        return 0;
    }
    let mut v = t.last;
    loop {
        let rec = Rec {
            v: v + 1,
            pad: padding::<RECORD_PAD>(v + 1),
        };
        if let Err(e) = store.append(dir, &mut buf, &rec) {
            say(&format!("FAIL append v={}: {e}", v + 1));
            return 1;
        }
        v += 1;
        if store.state().last != v {
            say(&format!(
                "FAIL state at v={} after appending v={v}",
                store.state().last
            ));
            return 1;
        }
        ack(args, v);
    }
}

/// The litmus loops: temporary file and rename through `std::fs`, no flush
/// at all (`unsynced`) or the file's flush only (`nodirsync`), acknowledged
/// at once (see the module's documentation).
fn unsynced(args: &Args, mut v: u64, buf: &mut [u8]) -> u8 {
    let tmp = std::path::Path::new(&args.dir).join("litmus.tmp");
    let dst = std::path::Path::new(&args.dir).join(NAME);
    let flush_file = args.mode == Kind::NoDirSync;
    loop {
        v += 1;
        let len = match fsatomic::codec::encode(&Doc::new(v), buf) {
            Ok(n) => n,
            Err(e) => {
                say(&format!("FAIL encode v={v}: {e}"));
                return 1;
            }
        };
        let r = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&buf[..len])?;
                if flush_file { f.sync_all() } else { Ok(()) }
            })
            .and_then(|()| std::fs::rename(&tmp, &dst));
        if let Err(e) = r {
            say(&format!("FAIL write v={v}: {e}"));
            return 1;
        }
        ack(args, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory.
    fn scratch(test: &str) -> (std::path::PathBuf, LinuxDir) {
        let path = std::env::temp_dir().join(format!("torture-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        let (dir, _) = LinuxDir::create_all(&path, Mode::PRIVATE).expect("scratch directory");
        (path, dir)
    }

    /// The verdict the journal mode's boot gives a damaged journal: before
    /// the flat error, `JournalStore::open`'s `StoreError::Recover(..)`
    /// fell through to `ERROR`.
    #[test]
    fn a_corrupt_journal_is_corrupt() {
        let (path, mut dir) = scratch("journal");
        let mut buf = vec![0u8; BUF];
        let mut store = JournalStore::<Tally, Rec>::new(NAME, Mode::PRIVATE).unwrap();
        store.open(&mut dir, &mut buf).unwrap();
        let rec = Rec {
            v: 1,
            pad: padding::<RECORD_PAD>(1),
        };
        store.append(&mut dir, &mut buf, &rec).unwrap();
        // Flip a byte inside the journal's header: its checksum fails.
        let journal = path.join(layout::file_name(NAME, Role::Journal).as_str());
        let mut bytes = std::fs::read(&journal).unwrap();
        bytes[12] ^= 0xff;
        std::fs::write(&journal, &bytes).unwrap();

        let mut fresh = JournalStore::<Tally, Rec>::new(NAME, Mode::PRIVATE).unwrap();
        let err = fresh.open(&mut dir, &mut buf).unwrap_err();
        let line = failure("open", err);
        let _ = std::fs::remove_dir_all(&path);
        assert!(line.starts_with("CORRUPT "), "{line}");
        assert!(
            line.contains(layout::file_name(NAME, Role::Journal).as_str()),
            "{line}"
        );
    }

    /// A document cut short is `CORRUPT` too, through `Store::load`.
    #[test]
    fn a_corrupt_document_is_corrupt() {
        let (path, mut dir) = scratch("document");
        std::fs::write(path.join(NAME), b"{\"v\":1,\"pad\":\"abc").unwrap();
        let mut buf = vec![0u8; BUF];
        let store: Store<Doc> = Store::new(NAME, Mode::PRIVATE);
        let Err(err) = store.load(&mut dir, &mut buf) else {
            panic!("a document cut short was loaded");
        };
        let line = failure("load", err);
        let _ = std::fs::remove_dir_all(&path);
        assert!(line.starts_with("CORRUPT "), "{line}");
    }
}
