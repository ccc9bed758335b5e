//! Wrapping directories: put one around any [`Dir`] to watch or disturb
//! what the protocols do to it.
//!
//! - [`Counting`] records every call, in order, with the names it touched,
//!   so a test can assert "exactly two flushes per commit, the file flush
//!   before the rename, the directory flush after".
//! - [`Faulty`] makes the Nth call of one kind fail (an `EIO` by default)
//!   *instead of* performing it.
//! - [`PresetTokens`] hands out known [`Dir::unique_token`] values first, so a
//!   test can plant files at the temporary names a commit will try.
//!
//! They stack: `Counting<Faulty<PresetTokens<LinuxDir>>>` records the
//! injected failure as a failed call. Every wrapper is `Send` when the
//! wrapped directory is, so that threads can each hold one.
//!
//! ```
//! # fn demo<D: fsatomic::Dir<Error = std::io::Error>>(dir: D) {
//! use fsatomic_testkit::wrap::{Call, Counting, FaultPoint, Faulty};
//! let mut dir = Counting::new(Faulty::eio(dir, FaultPoint::SyncFile, 1));
//! let log = dir.log();
//! let err = fsatomic::replace::commit(&mut dir, "a.json", b"{}\n", fsatomic::Mode::PRIVATE);
//! assert!(err.is_err());
//! assert_eq!(log.count(Call::is_flush), 1); // tried once, never retried
//! # }
//! ```

use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fsatomic::{Capabilities, Dir, File, Mode};

// ---------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------

/// One kind of call on a [`Dir`], a [`File`] or a held lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Call {
    /// [`Dir::unique_token`].
    Token,
    /// [`Dir::create_new`].
    Create,
    /// [`Dir::open_read`].
    OpenRead,
    /// [`Dir::open_write`].
    OpenWrite,
    /// `Read::read` on a file.
    Read,
    /// `Write::write` on a file.
    Write,
    /// `Seek::seek` on a file.
    Seek,
    /// [`File::sync_data`].
    SyncData,
    /// [`File::sync_all`].
    SyncAll,
    /// [`File::set_len`].
    SetLen,
    /// [`Dir::rename`].
    Rename,
    /// [`Dir::remove`].
    Remove,
    /// [`Dir::sync_dir`].
    SyncDir,
    /// [`Dir::for_each_entry`].
    List,
    /// [`Dir::lock`].
    Lock,
    /// A held lock was dropped.
    Unlock,
}

impl Call {
    /// `true` for the file flushes, [`Call::SyncData`] and [`Call::SyncAll`].
    pub fn is_file_flush(self) -> bool {
        matches!(self, Call::SyncData | Call::SyncAll)
    }

    /// `true` for every durability barrier: file and directory flushes.
    pub fn is_flush(self) -> bool {
        self.is_file_flush() || self == Call::SyncDir
    }

    /// `true` for calls that change what is on disk (or may: flushes).
    pub fn changes_disk(self) -> bool {
        matches!(
            self,
            Call::Create
                | Call::Write
                | Call::SetLen
                | Call::Rename
                | Call::Remove
                | Call::SyncData
                | Call::SyncAll
                | Call::SyncDir
                | Call::Lock
        )
    }

    /// The call as a short word (`"sync_all"`, `"rename"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Token => "token",
            Call::Create => "create",
            Call::OpenRead => "open_read",
            Call::OpenWrite => "open_write",
            Call::Read => "read",
            Call::Write => "write",
            Call::Seek => "seek",
            Call::SyncData => "sync_data",
            Call::SyncAll => "sync_all",
            Call::SetLen => "set_len",
            Call::Rename => "rename",
            Call::Remove => "remove",
            Call::SyncDir => "sync_dir",
            Call::List => "list",
            Call::Lock => "lock",
            Call::Unlock => "unlock",
        }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What was called.
    pub call: Call,
    /// The name it was called on: the file's name for file calls, the
    /// source for a rename, `"."` for the directory itself.
    pub name: String,
    /// The destination of a rename.
    pub to: Option<String>,
    /// Whether the call succeeded.
    pub ok: bool,
}

impl Event {
    fn new(call: Call, name: &str, ok: bool) -> Event {
        Event {
            call,
            name: name.to_owned(),
            to: None,
            ok,
        }
    }
}

impl fmt::Display for Event {
    /// `sync_all .a.json.00000000000000ff.tmp`, `rename x -> y`,
    /// `create x (failed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.call, self.name)?;
        if let Some(to) = &self.to {
            write!(f, " -> {to}")?;
        }
        if !self.ok {
            f.write_str(" (failed)")?;
        }
        Ok(())
    }
}

/// The shared record of a [`Counting`] directory and of every file and
/// lock it handed out. Cloning gives another view of the same record.
#[derive(Clone, Debug, Default)]
pub struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    fn guard(&self) -> MutexGuard<'_, Vec<Event>> {
        // A panicking test thread poisons nothing we care about.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, event: Event) {
        self.guard().push(event);
    }

    /// Every call so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.guard().clone()
    }

    /// The kinds of the calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.guard().iter().map(|e| e.call).collect()
    }

    /// How many calls so far satisfy `which`.
    pub fn count(&self, which: impl Fn(Call) -> bool) -> usize {
        self.guard().iter().filter(|e| which(e.call)).count()
    }

    /// `true` if nothing was called yet.
    pub fn is_empty(&self) -> bool {
        self.guard().is_empty()
    }

    /// Forget every call so far.
    pub fn clear(&self) {
        self.guard().clear();
    }

    /// The calls so far as text, one per element, with consecutive reads,
    /// writes and seeks of one file merged into one (`write x ×3`): the
    /// shape of a protocol, whatever the sizes of its I/O.
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<(Event, usize)> = Vec::new();
        for event in self.guard().iter() {
            let merges = matches!(event.call, Call::Read | Call::Write | Call::Seek);
            match out.last_mut() {
                Some((last, n)) if merges && *last == *event => *n += 1,
                _ => out.push((event.clone(), 1)),
            }
        }
        out.into_iter()
            .map(|(e, n)| {
                if n > 1 {
                    format!("{e} ×{n}")
                } else {
                    e.to_string()
                }
            })
            .collect()
    }
}

/// A directory that records every call made on it, its files and its
/// locks, in one shared [`Log`].
#[derive(Debug)]
pub struct Counting<D> {
    inner: D,
    log: Log,
}

impl<D: Dir> Counting<D> {
    /// Wrap `inner` with a new, empty log.
    pub fn new(inner: D) -> Self {
        Counting {
            inner,
            log: Log::default(),
        }
    }

    /// Wrap `inner`, recording into an existing `log` (so that several
    /// directories share one record).
    pub fn with_log(inner: D, log: Log) -> Self {
        Counting { inner, log }
    }

    /// The record; it keeps filling as calls are made.
    pub fn log(&self) -> Log {
        self.log.clone()
    }

    /// The wrapped directory.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The wrapped directory, mutably (calls made through it are not
    /// recorded).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn record<T, E>(&self, call: Call, name: &str, result: Result<T, E>) -> Result<T, E> {
        self.log.push(Event::new(call, name, result.is_ok()));
        result
    }
}

/// A file of a [`Counting`] directory.
#[derive(Debug)]
pub struct CountingFile<F> {
    inner: F,
    name: String,
    log: Log,
}

impl<F> CountingFile<F> {
    fn record<T, E>(&self, call: Call, result: Result<T, E>) -> Result<T, E> {
        self.log.push(Event::new(call, &self.name, result.is_ok()));
        result
    }
}

impl<F: embedded_io::ErrorType> embedded_io::ErrorType for CountingFile<F> {
    type Error = F::Error;
}

impl<F: embedded_io::Read> embedded_io::Read for CountingFile<F> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, F::Error> {
        let r = self.inner.read(buf);
        self.record(Call::Read, r)
    }
}

impl<F: embedded_io::Write> embedded_io::Write for CountingFile<F> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, F::Error> {
        let r = self.inner.write(buf);
        self.record(Call::Write, r)
    }

    fn flush(&mut self) -> Result<(), F::Error> {
        self.inner.flush()
    }
}

impl<F: embedded_io::Seek> embedded_io::Seek for CountingFile<F> {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, F::Error> {
        let r = self.inner.seek(pos);
        self.record(Call::Seek, r)
    }
}

impl<F: File> File for CountingFile<F> {
    fn sync_data(&mut self) -> Result<(), F::Error> {
        let r = self.inner.sync_data();
        self.record(Call::SyncData, r)
    }

    fn sync_all(&mut self) -> Result<(), F::Error> {
        let r = self.inner.sync_all();
        self.record(Call::SyncAll, r)
    }

    fn set_len(&mut self, len: u64) -> Result<(), F::Error> {
        let r = self.inner.set_len(len);
        self.record(Call::SetLen, r)
    }
}

/// A lock of a [`Counting`] directory; records [`Call::Unlock`] when
/// dropped, after the wrapped lock was released.
#[derive(Debug)]
pub struct CountingLock<L> {
    inner: Option<L>,
    name: String,
    log: Log,
}

impl<L> Drop for CountingLock<L> {
    fn drop(&mut self) {
        drop(self.inner.take());
        self.log.push(Event::new(Call::Unlock, &self.name, true));
    }
}

impl<D: Dir> Dir for Counting<D> {
    type Error = D::Error;
    type File = CountingFile<D::File>;
    type Lock = CountingLock<D::Lock>;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn unique_token(&mut self) -> Result<u64, D::Error> {
        let r = self.inner.unique_token();
        let name = r.as_ref().map(|t| format!("{t:016x}")).unwrap_or_default();
        self.record(Call::Token, &name, r)
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<Self::File, D::Error> {
        let r = self.inner.create_new(name, mode);
        let r = self.record(Call::Create, name, r);
        r.map(|inner| CountingFile {
            inner,
            name: name.to_owned(),
            log: self.log.clone(),
        })
    }

    fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, D::Error> {
        let r = self.inner.open_read(name);
        let r = self.record(Call::OpenRead, name, r);
        r.map(|f| {
            f.map(|inner| CountingFile {
                inner,
                name: name.to_owned(),
                log: self.log.clone(),
            })
        })
    }

    fn open_write(&mut self, name: &str) -> Result<Option<Self::File>, D::Error> {
        let r = self.inner.open_write(name);
        let r = self.record(Call::OpenWrite, name, r);
        r.map(|f| {
            f.map(|inner| CountingFile {
                inner,
                name: name.to_owned(),
                log: self.log.clone(),
            })
        })
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), D::Error> {
        let r = self.inner.rename(from, to);
        let mut event = Event::new(Call::Rename, from, r.is_ok());
        event.to = Some(to.to_owned());
        self.log.push(event);
        r
    }

    fn remove(&mut self, name: &str) -> Result<(), D::Error> {
        let r = self.inner.remove(name);
        self.record(Call::Remove, name, r)
    }

    fn sync_dir(&mut self) -> Result<(), D::Error> {
        let r = self.inner.sync_dir();
        self.record(Call::SyncDir, ".", r)
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), D::Error> {
        let r = self.inner.for_each_entry(visit);
        self.record(Call::List, ".", r)
    }

    fn lock(&mut self, name: &str, mode: Mode) -> Result<Self::Lock, D::Error> {
        let r = self.inner.lock(name, mode);
        let r = self.record(Call::Lock, name, r);
        r.map(|inner| CountingLock {
            inner: Some(inner),
            name: name.to_owned(),
            log: self.log.clone(),
        })
    }
}

// ---------------------------------------------------------------------------
// Faulty
// ---------------------------------------------------------------------------

/// Where [`Faulty`] injects its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultPoint {
    /// [`Dir::unique_token`].
    Token,
    /// [`Dir::create_new`].
    Create,
    /// [`Dir::open_read`] or [`Dir::open_write`].
    Open,
    /// A read of a file.
    Read,
    /// A write to a file.
    Write,
    /// [`File::sync_data`] or [`File::sync_all`].
    SyncFile,
    /// [`File::set_len`].
    SetLen,
    /// [`Dir::rename`].
    Rename,
    /// [`Dir::remove`].
    Remove,
    /// [`Dir::sync_dir`].
    SyncDir,
    /// [`Dir::for_each_entry`].
    List,
    /// [`Dir::lock`].
    Lock,
}

/// The plan of a [`Faulty`] directory, shared with its files.
struct Plan<E> {
    point: FaultPoint,
    nth: usize,
    seen: AtomicUsize,
    make: Box<dyn Fn() -> E + Send + Sync>,
}

impl<E> Plan<E> {
    /// Count one call at `point`; the error to return instead of doing it,
    /// if this is the chosen one.
    fn hit(&self, point: FaultPoint) -> Option<E> {
        if point != self.point {
            return None;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        (n == self.nth).then(|| (self.make)())
    }
}

impl<E> fmt::Debug for Plan<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("point", &self.point)
            .field("nth", &self.nth)
            .field("seen", &self.seen.load(Ordering::SeqCst))
            .finish()
    }
}

/// A directory whose `nth` call (counting from 1) at one [`FaultPoint`]
/// fails with an injected error instead of being performed. Every other
/// call goes through unchanged.
#[derive(Debug)]
pub struct Faulty<D: Dir> {
    inner: D,
    plan: Arc<Plan<D::Error>>,
}

/// `EIO`, as the kernel reports a failed write-back.
pub fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl<D: Dir<Error = io::Error>> Faulty<D> {
    /// Fail the `nth` call at `point` with `EIO`.
    pub fn eio(inner: D, point: FaultPoint, nth: usize) -> Self {
        Faulty::new(inner, point, nth, eio)
    }
}

impl<D: Dir> Faulty<D> {
    /// Fail the `nth` call (from 1) at `point` with the error `make` builds.
    pub fn new(
        inner: D,
        point: FaultPoint,
        nth: usize,
        make: impl Fn() -> D::Error + Send + Sync + 'static,
    ) -> Self {
        Faulty {
            inner,
            plan: Arc::new(Plan {
                point,
                nth,
                seen: AtomicUsize::new(0),
                make: Box::new(make),
            }),
        }
    }

    /// How many calls at the fault point were made so far (the failed one
    /// included).
    pub fn seen(&self) -> usize {
        self.plan.seen.load(Ordering::SeqCst)
    }

    /// Whether the error was injected.
    pub fn fired(&self) -> bool {
        self.seen() >= self.plan.nth
    }

    /// The wrapped directory.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn check(&self, point: FaultPoint) -> Result<(), D::Error> {
        self.plan.hit(point).map_or(Ok(()), Err)
    }

    fn wrap_file(&self, inner: D::File) -> FaultyFile<D::File, D::Error> {
        FaultyFile {
            inner,
            plan: self.plan.clone(),
        }
    }
}

/// A file of a [`Faulty`] directory.
pub struct FaultyFile<F, E> {
    inner: F,
    plan: Arc<Plan<E>>,
}

impl<F: fmt::Debug, E> fmt::Debug for FaultyFile<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile")
            .field("inner", &self.inner)
            .field("plan", &self.plan)
            .finish()
    }
}

impl<F, E> FaultyFile<F, E> {
    fn check(&self, point: FaultPoint) -> Result<(), E> {
        self.plan.hit(point).map_or(Ok(()), Err)
    }
}

impl<F: embedded_io::ErrorType> embedded_io::ErrorType for FaultyFile<F, F::Error> {
    type Error = F::Error;
}

impl<F: embedded_io::Read> embedded_io::Read for FaultyFile<F, F::Error> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, F::Error> {
        self.check(FaultPoint::Read)?;
        self.inner.read(buf)
    }
}

impl<F: embedded_io::Write> embedded_io::Write for FaultyFile<F, F::Error> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, F::Error> {
        self.check(FaultPoint::Write)?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> Result<(), F::Error> {
        self.inner.flush()
    }
}

impl<F: embedded_io::Seek> embedded_io::Seek for FaultyFile<F, F::Error> {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, F::Error> {
        self.inner.seek(pos)
    }
}

impl<F: File> File for FaultyFile<F, F::Error> {
    fn sync_data(&mut self) -> Result<(), F::Error> {
        self.check(FaultPoint::SyncFile)?;
        self.inner.sync_data()
    }

    fn sync_all(&mut self) -> Result<(), F::Error> {
        self.check(FaultPoint::SyncFile)?;
        self.inner.sync_all()
    }

    fn set_len(&mut self, len: u64) -> Result<(), F::Error> {
        self.check(FaultPoint::SetLen)?;
        self.inner.set_len(len)
    }
}

impl<D: Dir> Dir for Faulty<D> {
    type Error = D::Error;
    type File = FaultyFile<D::File, D::Error>;
    type Lock = D::Lock;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn unique_token(&mut self) -> Result<u64, D::Error> {
        self.check(FaultPoint::Token)?;
        self.inner.unique_token()
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<Self::File, D::Error> {
        self.check(FaultPoint::Create)?;
        let file = self.inner.create_new(name, mode)?;
        Ok(self.wrap_file(file))
    }

    fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, D::Error> {
        self.check(FaultPoint::Open)?;
        Ok(self.inner.open_read(name)?.map(|f| self.wrap_file(f)))
    }

    fn open_write(&mut self, name: &str) -> Result<Option<Self::File>, D::Error> {
        self.check(FaultPoint::Open)?;
        Ok(self.inner.open_write(name)?.map(|f| self.wrap_file(f)))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), D::Error> {
        self.check(FaultPoint::Rename)?;
        self.inner.rename(from, to)
    }

    fn remove(&mut self, name: &str) -> Result<(), D::Error> {
        self.check(FaultPoint::Remove)?;
        self.inner.remove(name)
    }

    fn sync_dir(&mut self) -> Result<(), D::Error> {
        self.check(FaultPoint::SyncDir)?;
        self.inner.sync_dir()
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), D::Error> {
        self.check(FaultPoint::List)?;
        self.inner.for_each_entry(visit)
    }

    fn lock(&mut self, name: &str, mode: Mode) -> Result<Self::Lock, D::Error> {
        self.check(FaultPoint::Lock)?;
        self.inner.lock(name, mode)
    }
}

// ---------------------------------------------------------------------------
// PresetTokens
// ---------------------------------------------------------------------------

/// A directory whose [`Dir::unique_token`] returns the given tokens first,
/// in order, and then the wrapped directory's.
#[derive(Debug)]
pub struct PresetTokens<D> {
    inner: D,
    tokens: std::collections::VecDeque<u64>,
    handed_out: usize,
}

impl<D: Dir> PresetTokens<D> {
    /// Hand out `tokens` before the wrapped directory's own.
    pub fn new(inner: D, tokens: impl IntoIterator<Item = u64>) -> Self {
        PresetTokens {
            inner,
            tokens: tokens.into_iter().collect(),
            handed_out: 0,
        }
    }

    /// How many preset tokens were handed out so far.
    pub fn handed_out(&self) -> usize {
        self.handed_out
    }

    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: Dir> Dir for PresetTokens<D> {
    type Error = D::Error;
    type File = D::File;
    type Lock = D::Lock;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn unique_token(&mut self) -> Result<u64, D::Error> {
        match self.tokens.pop_front() {
            Some(token) => {
                self.handed_out += 1;
                Ok(token)
            }
            None => self.inner.unique_token(),
        }
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<D::File, D::Error> {
        self.inner.create_new(name, mode)
    }

    fn open_read(&mut self, name: &str) -> Result<Option<D::File>, D::Error> {
        self.inner.open_read(name)
    }

    fn open_write(&mut self, name: &str) -> Result<Option<D::File>, D::Error> {
        self.inner.open_write(name)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), D::Error> {
        self.inner.rename(from, to)
    }

    fn remove(&mut self, name: &str) -> Result<(), D::Error> {
        self.inner.remove(name)
    }

    fn sync_dir(&mut self) -> Result<(), D::Error> {
        self.inner.sync_dir()
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), D::Error> {
        self.inner.for_each_entry(visit)
    }

    fn lock(&mut self, name: &str, mode: Mode) -> Result<D::Lock, D::Error> {
        self.inner.lock(name, mode)
    }
}
