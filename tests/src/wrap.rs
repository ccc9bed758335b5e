//! One interception wrapper: put an [`Intercept`] around any [`Dir`] to
//! watch or disturb what the protocols do to it. It forwards every call of
//! the directory, its files and its locks through a [`Hook`], whose default
//! methods do nothing; a hook may fail a call instead of making it, skip
//! it, run calls of its own on the directory around it, or hand out a
//! token of its own. The hooks of the test kit:
//!
//! - [`Log`] ([`Counting`]) records every call, in order, with the names it
//!   touched, so a test can assert "exactly two flushes per commit, the
//!   file flush before the rename, the directory flush after".
//! - [`Fault`] ([`Faulty`]) makes the Nth call of one kind fail (an `EIO`
//!   by default) *instead of* performing it.
//! - [`Tokens`] ([`PresetTokens`]) hands out known [`Dir::unique_token`]
//!   values first, so a test can plant files at the temporary names a
//!   commit will try.
//! - [`crate::mutate::Mutation`] skips or reorders flushes.
//!
//! They stack: `Counting<Faulty<PresetTokens<LinuxDir>>>` records the
//! injected failure as a failed call. A wrapper is `Send` when the wrapped
//! directory and its hook are, so that threads can each hold one.
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

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use embedded_io::{ErrorType, Read, Seek, SeekFrom, Write};
use fsatomic::{Capabilities, Dir, File, Mode};

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
    /// [`Dir::link`].
    Link,
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
            Call::Link => "link",
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

// Intercept and Hook

/// What a [`Hook`] decides before a call.
#[derive(Debug)]
pub enum Verdict<E> {
    /// Make the call.
    Go,
    /// Do not make the call and report success. Only calls that return
    /// nothing (flushes, rename, remove, `set_len`) and writes (which
    /// report every byte written) can be skipped; others are made.
    Skip,
    /// Do not make the call; fail it with this error.
    Fail(E),
}

/// What an [`Intercept`] does around every call. Every method has a
/// default that changes nothing. Hooks are cloned into every file and
/// lock, so their state is shared (`Arc`, `Rc`).
pub trait Hook<D: Dir>: Clone {
    /// Before `call` on `name` (the file's name for file calls, the source
    /// of a rename, `"."` for the directory, `""` for a token).
    fn before(&self, _call: Call, _name: &str) -> Verdict<D::Error> {
        Verdict::Go
    }

    /// After `call`, made, skipped or failed; `to` is a rename's target.
    fn after(&self, _call: Call, _name: &str, _to: Option<&str>, _ok: bool) {}

    /// Around a directory call that goes ahead, with the directory in
    /// hand: before it (`done` false) and after it succeeded (`done` true).
    /// An error fails the call.
    fn around(
        &self,
        _dir: &mut D,
        _call: Call,
        _name: &str,
        _to: Option<&str>,
        _done: bool,
    ) -> Result<(), D::Error> {
        Ok(())
    }

    /// A token to hand out instead of asking the directory.
    fn token(&self) -> Option<u64> {
        None
    }
}

/// A directory whose every call, and every call on its files and locks,
/// goes through the hook `H`.
#[derive(Debug)]
pub struct Intercept<D, H> {
    inner: D,
    hook: H,
}

/// Run `call` through `hook`: `skipped` is what a skipped call returns
/// (`None`: it cannot be skipped).
fn through<D: Dir, H: Hook<D>, T>(
    hook: &H,
    call: Call,
    name: &str,
    skipped: Option<T>,
    f: impl FnOnce() -> Result<T, D::Error>,
) -> Result<T, D::Error> {
    let r = match (hook.before(call, name), skipped) {
        (Verdict::Fail(e), _) => Err(e),
        (Verdict::Skip, Some(v)) => Ok(v),
        _ => f(),
    };
    hook.after(call, name, None, r.is_ok());
    r
}

impl<D: Dir, H: Hook<D>> Intercept<D, H> {
    /// Wrap `inner`, with `hook` around every call.
    pub fn with(inner: D, hook: H) -> Self {
        Intercept { inner, hook }
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The wrapped directory.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }

    /// A directory call through the hook, with [`Hook::around`].
    fn dir_call<T>(
        &mut self,
        call: Call,
        name: &str,
        to: Option<&str>,
        skipped: Option<T>,
        f: impl FnOnce(&mut D) -> Result<T, D::Error>,
    ) -> Result<T, D::Error> {
        let (hook, dir) = (&self.hook, &mut self.inner);
        let r = match (hook.before(call, name), skipped) {
            (Verdict::Fail(e), _) => Err(e),
            (Verdict::Skip, Some(v)) => Ok(v),
            _ => hook.around(dir, call, name, to, false).and_then(|()| {
                let v = f(dir)?;
                hook.around(dir, call, name, to, true).map(|()| v)
            }),
        };
        hook.after(call, name, to, r.is_ok());
        r
    }

    fn file(&self, inner: D::File, name: &str) -> InterceptFile<D, H> {
        InterceptFile {
            inner,
            name: name.to_owned(),
            hook: self.hook.clone(),
        }
    }
}

/// A file of an [`Intercept`] directory.
pub struct InterceptFile<D: Dir, H> {
    inner: D::File,
    name: String,
    hook: H,
}

impl<D: Dir, H: Hook<D>> InterceptFile<D, H> {
    /// A file call through the hook.
    fn call<T>(
        &mut self,
        call: Call,
        skipped: Option<T>,
        f: impl FnOnce(&mut D::File) -> Result<T, D::Error>,
    ) -> Result<T, D::Error> {
        through(&self.hook, call, &self.name, skipped, || f(&mut self.inner))
    }
}

impl<D: Dir, H: Hook<D>> ErrorType for InterceptFile<D, H> {
    type Error = D::Error;
}

impl<D: Dir, H: Hook<D>> Read for InterceptFile<D, H> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, D::Error> {
        self.call(Call::Read, None, |f| f.read(buf))
    }
}

impl<D: Dir, H: Hook<D>> Write for InterceptFile<D, H> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, D::Error> {
        self.call(Call::Write, Some(buf.len()), |f| f.write(buf))
    }

    fn flush(&mut self) -> Result<(), D::Error> {
        self.inner.flush()
    }
}

impl<D: Dir, H: Hook<D>> Seek for InterceptFile<D, H> {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, D::Error> {
        self.call(Call::Seek, None, |f| f.seek(pos))
    }
}

impl<D: Dir, H: Hook<D>> File for InterceptFile<D, H> {
    fn sync_data(&mut self) -> Result<(), D::Error> {
        self.call(Call::SyncData, Some(()), |f| f.sync_data())
    }

    fn sync_all(&mut self) -> Result<(), D::Error> {
        self.call(Call::SyncAll, Some(()), |f| f.sync_all())
    }

    fn set_len(&mut self, len: u64) -> Result<(), D::Error> {
        self.call(Call::SetLen, Some(()), |f| f.set_len(len))
    }
}

/// A lock of an [`Intercept`] directory; reports [`Call::Unlock`] to the
/// hook when dropped, after the wrapped lock was released.
pub struct InterceptLock<D: Dir, H: Hook<D>> {
    inner: Option<D::Lock>,
    name: String,
    hook: H,
}

impl<D: Dir, H: Hook<D>> Drop for InterceptLock<D, H> {
    fn drop(&mut self) {
        drop(self.inner.take());
        self.hook.after(Call::Unlock, &self.name, None, true);
    }
}

impl<D: Dir, H: Hook<D>> Dir for Intercept<D, H> {
    type Error = D::Error;
    type File = InterceptFile<D, H>;
    type Lock = InterceptLock<D, H>;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn unique_token(&mut self) -> Result<u64, D::Error> {
        let r = match (self.hook.before(Call::Token, ""), self.hook.token()) {
            (Verdict::Fail(e), _) => Err(e),
            (_, Some(token)) => Ok(token),
            _ => self.inner.unique_token(),
        };
        let name = r.as_ref().map(|t| format!("{t:016x}")).unwrap_or_default();
        self.hook.after(Call::Token, &name, None, r.is_ok());
        r
    }

    fn create_new(&mut self, name: &str, mode: Mode) -> Result<Self::File, D::Error> {
        let f = self.dir_call(Call::Create, name, None, None, |d| d.create_new(name, mode))?;
        Ok(self.file(f, name))
    }

    fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, D::Error> {
        let f = self.dir_call(Call::OpenRead, name, None, None, |d| d.open_read(name))?;
        Ok(f.map(|f| self.file(f, name)))
    }

    fn open_write(&mut self, name: &str, mode: Mode) -> Result<Option<Self::File>, D::Error> {
        let f = self.dir_call(Call::OpenWrite, name, None, None, |d| {
            d.open_write(name, mode)
        })?;
        Ok(f.map(|f| self.file(f, name)))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), D::Error> {
        self.dir_call(Call::Rename, from, Some(to), Some(()), |d| {
            d.rename(from, to)
        })
    }

    fn link(&mut self, from: &str, to: &str) -> Result<(), D::Error> {
        self.dir_call(Call::Link, from, Some(to), Some(()), |d| d.link(from, to))
    }

    fn remove(&mut self, name: &str) -> Result<(), D::Error> {
        self.dir_call(Call::Remove, name, None, Some(()), |d| d.remove(name))
    }

    fn sync_dir(&mut self) -> Result<(), D::Error> {
        self.dir_call(Call::SyncDir, ".", None, Some(()), D::sync_dir)
    }

    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), D::Error> {
        self.dir_call(Call::List, ".", None, None, |d| d.for_each_entry(visit))
    }

    fn lock(&mut self, name: &str, mode: Mode) -> Result<Self::Lock, D::Error> {
        let lock = self.dir_call(Call::Lock, name, None, None, |d| d.lock(name, mode))?;
        Ok(InterceptLock {
            inner: Some(lock),
            name: name.to_owned(),
            hook: self.hook.clone(),
        })
    }
}

// The hooks: counting, faults, preset tokens

impl<D: Dir> Hook<D> for Log {
    fn after(&self, call: Call, name: &str, to: Option<&str>, ok: bool) {
        self.guard().push(Event {
            call,
            name: name.to_owned(),
            to: to.map(str::to_owned),
            ok,
        });
    }
}

/// A directory that records every call made on it, its files and its
/// locks, in one shared [`Log`].
pub type Counting<D> = Intercept<D, Log>;

impl<D: Dir> Intercept<D, Log> {
    /// Wrap `inner` with a new, empty log.
    pub fn new(inner: D) -> Self {
        Intercept::with(inner, Log::default())
    }

    /// The record; it keeps filling as calls are made.
    pub fn log(&self) -> Log {
        self.hook.clone()
    }
}

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
    /// [`Dir::link`].
    Link,
    /// [`Dir::remove`].
    Remove,
    /// [`Dir::sync_dir`].
    SyncDir,
    /// [`Dir::for_each_entry`].
    List,
    /// [`Dir::lock`].
    Lock,
}

impl FaultPoint {
    /// The fault point of `call`, if it has one.
    fn of(call: Call) -> Option<FaultPoint> {
        Some(match call {
            Call::Token => FaultPoint::Token,
            Call::Create => FaultPoint::Create,
            Call::OpenRead | Call::OpenWrite => FaultPoint::Open,
            Call::Read => FaultPoint::Read,
            Call::Write => FaultPoint::Write,
            Call::SyncData | Call::SyncAll => FaultPoint::SyncFile,
            Call::SetLen => FaultPoint::SetLen,
            Call::Rename => FaultPoint::Rename,
            Call::Link => FaultPoint::Link,
            Call::Remove => FaultPoint::Remove,
            Call::SyncDir => FaultPoint::SyncDir,
            Call::List => FaultPoint::List,
            Call::Lock => FaultPoint::Lock,
            Call::Seek | Call::Unlock => return None,
        })
    }
}

/// The hook that fails the `nth` call (from 1) at one [`FaultPoint`] with
/// an injected error instead of making it.
pub struct Fault<E>(Arc<Plan<E>>);

struct Plan<E> {
    point: FaultPoint,
    nth: usize,
    seen: AtomicUsize,
    make: Box<dyn Fn() -> E + Send + Sync>,
}

impl<E> Clone for Fault<E> {
    fn clone(&self) -> Self {
        Fault(self.0.clone())
    }
}

impl<E> fmt::Debug for Fault<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("point", &self.0.point)
            .field("nth", &self.0.nth)
            .field("seen", &self.0.seen.load(Ordering::SeqCst))
            .finish()
    }
}

impl<D: Dir> Hook<D> for Fault<D::Error> {
    fn before(&self, call: Call, _name: &str) -> Verdict<D::Error> {
        let plan = &self.0;
        if FaultPoint::of(call) != Some(plan.point) {
            return Verdict::Go;
        }
        match plan.seen.fetch_add(1, Ordering::SeqCst) + 1 == plan.nth {
            true => Verdict::Fail((plan.make)()),
            false => Verdict::Go,
        }
    }
}

/// A directory whose `nth` call (counting from 1) at one [`FaultPoint`]
/// fails with an injected error instead of being performed. Every other
/// call goes through unchanged.
pub type Faulty<D> = Intercept<D, Fault<<D as Dir>::Error>>;

/// `EIO`, as the kernel reports a failed write-back.
pub fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl<D: Dir<Error = io::Error>> Intercept<D, Fault<io::Error>> {
    /// Fail the `nth` call at `point` with `EIO`.
    pub fn eio(inner: D, point: FaultPoint, nth: usize) -> Self {
        Faulty::new(inner, point, nth, eio)
    }
}

impl<D: Dir> Intercept<D, Fault<D::Error>> {
    /// Fail the `nth` call (from 1) at `point` with the error `make` builds.
    pub fn new(
        inner: D,
        point: FaultPoint,
        nth: usize,
        make: impl Fn() -> D::Error + Send + Sync + 'static,
    ) -> Self {
        let seen = AtomicUsize::new(0);
        let make = Box::new(make);
        Intercept::with(
            inner,
            Fault(Arc::new(Plan {
                point,
                nth,
                seen,
                make,
            })),
        )
    }

    /// How many calls at the fault point were made so far (the failed one
    /// included).
    pub fn seen(&self) -> usize {
        self.hook.0.seen.load(Ordering::SeqCst)
    }

    /// Whether the error was injected.
    pub fn fired(&self) -> bool {
        self.seen() >= self.hook.0.nth
    }
}

/// The hook that hands out preset tokens first, in order, and then lets
/// the directory's own through.
#[derive(Clone, Debug, Default)]
pub struct Tokens(Arc<Mutex<(VecDeque<u64>, usize)>>);

impl<D: Dir> Hook<D> for Tokens {
    fn token(&self) -> Option<u64> {
        let mut tokens = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let token = tokens.0.pop_front()?;
        tokens.1 += 1;
        Some(token)
    }
}

/// A directory whose [`Dir::unique_token`] returns the given tokens first,
/// in order, and then the wrapped directory's.
pub type PresetTokens<D> = Intercept<D, Tokens>;

impl<D: Dir> Intercept<D, Tokens> {
    /// Hand out `tokens` before the wrapped directory's own.
    pub fn new(inner: D, tokens: impl IntoIterator<Item = u64>) -> Self {
        let tokens = (tokens.into_iter().collect(), 0);
        Intercept::with(inner, Tokens(Arc::new(Mutex::new(tokens))))
    }

    /// How many preset tokens were handed out so far.
    pub fn handed_out(&self) -> usize {
        self.hook.0.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}
