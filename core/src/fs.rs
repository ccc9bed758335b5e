//! The filesystem the protocols run on: one directory, held open.
//!
//! Every protocol in this crate names files *inside* a directory it holds —
//! plain `&str` names, never paths — so that each operation is relative to
//! one directory handle (`openat`, `renameat`, `unlinkat` on Linux) and a
//! path swapped under the library redirects nothing.
//!
//! Two traits make the surface: [`Dir`], the directory handle, and [`File`],
//! an open file in it. Reading, writing and seeking go through
//! [`embedded_io`]; the durability barriers ([`File::sync_data`],
//! [`File::sync_all`], [`Dir::sync_dir`]) are separate methods, because
//! `embedded_io::Write::flush` only empties user-space buffers and promises
//! nothing about a power cut.
//!
//! # The power-cut contract
//!
//! Each method says what a power cut *during* the call may leave behind, in
//! the terms of the crash model the protocols are proven against
//! (`docs/design.md`, "Crash model"):
//!
//! - Nothing written is durable until a flush says so. A file flush makes
//!   that file's data, size and mode durable — **not its name**. A directory
//!   flush makes the names in that directory durable.
//! - Until then, a power cut may keep any subset of the unflushed operations
//!   that respects their dependencies: a write may land in part, as zeros,
//!   or as garbage; a rename may be lost, kept, or (on filesystems whose
//!   [`Capabilities::atomic_replace`] is false) torn into its three steps.
//!
//! An implementation may be *stronger* than this model (most journaling
//! filesystems are), never weaker. An implementation must never retry a
//! failed flush and then report success: after an `EIO` from `fsync` the
//! dirty pages may already be gone.

use core::ops::ControlFlow;

/// Permission bits of a file, as in `chmod` (`0o600`, `0o644`).
///
/// Only the low twelve bits (`0o7777`) are kept. Boards without permissions
/// ignore the mode; Unix adapters apply it *exactly*, whatever the umask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mode(u16);

impl Mode {
    /// `0o600`: readable and writable by the owner only. The default for
    /// state that may hold secrets.
    pub const PRIVATE: Mode = Mode(0o600);
    /// `0o644`: writable by the owner, readable by all.
    pub const PUBLIC_READ: Mode = Mode(0o644);

    /// A mode from permission bits; `None` if any bit above `0o7777` is set.
    ///
    /// ```
    /// use fsatomic::Mode;
    /// assert_eq!(Mode::new(0o640).map(|m| m.bits()), Some(0o640));
    /// assert!(Mode::new(0o10644).is_none());
    /// ```
    pub const fn new(bits: u32) -> Option<Mode> {
        if bits & !0o7777 == 0 {
            Some(Mode(bits as u16))
        } else {
            None
        }
    }

    /// The permission bits.
    pub const fn bits(self) -> u32 {
        self.0 as u32
    }

    /// The mode of the sidecar lock file that guards a file of this mode.
    ///
    /// Whoever can open the lock file can hold its lock forever and stall
    /// every writer, so it is openable only by those who may write the
    /// state: the owner always reads and writes it; group and others may
    /// *read* it (a lock needs no more) only if they may write the state.
    /// Never executable, never writable by group or others, so nobody but
    /// the owner can plant content in it.
    ///
    /// ```
    /// use fsatomic::Mode;
    /// let lock = |bits| Mode::new(bits).unwrap().lock_mode().bits();
    /// assert_eq!(lock(0o600), 0o600);
    /// assert_eq!(lock(0o644), 0o600); // readers must not block writers
    /// assert_eq!(lock(0o664), 0o640);
    /// assert_eq!(lock(0o666), 0o644);
    /// assert_eq!(lock(0o400), 0o600);
    /// ```
    pub const fn lock_mode(self) -> Mode {
        let mut bits = 0o600;
        if self.0 & 0o020 != 0 {
            bits |= 0o040;
        }
        if self.0 & 0o002 != 0 {
            bits |= 0o004;
        }
        Mode(bits)
    }

    /// Whether a file of mode `self` is open to someone a file of mode
    /// `asked` would not be: any permission bit set that `asked` lacks.
    ///
    /// ```
    /// use fsatomic::Mode;
    /// let m = |bits| Mode::new(bits).unwrap();
    /// assert!(m(0o644).is_wider_than(m(0o600)));
    /// assert!(m(0o666).is_wider_than(m(0o644)));
    /// assert!(!m(0o600).is_wider_than(m(0o644)));
    /// assert!(!m(0o600).is_wider_than(m(0o600)));
    /// ```
    pub const fn is_wider_than(self, asked: Mode) -> bool {
        self.0 & !asked.0 != 0
    }

    /// `self` narrowed to what `asked` allows: the bits both have. An
    /// in-place file of mode `self` written by a call that asks `asked`
    /// gets this mode: never wider than asked, and never wider than it was
    /// (it still holds content written under its old mode).
    ///
    /// ```
    /// use fsatomic::Mode;
    /// let m = |bits| Mode::new(bits).unwrap();
    /// assert_eq!(m(0o644).narrowed_to(m(0o600)), m(0o600));
    /// assert_eq!(m(0o640).narrowed_to(m(0o604)), m(0o600));
    /// assert_eq!(m(0o600).narrowed_to(m(0o644)), m(0o600));
    /// ```
    pub const fn narrowed_to(self, asked: Mode) -> Mode {
        Mode(self.0 & asked.0)
    }
}

impl Default for Mode {
    fn default() -> Mode {
        Mode::PRIVATE
    }
}

/// What the filesystem under a [`Dir`] guarantees, so that a caller can pick
/// a protocol that is safe there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// `true` if renaming over an existing name is crash-atomic: after a
    /// power cut the name refers to the old file or the new one, never to
    /// nothing and never to a mix. True on ext4, xfs, btrfs, f2fs, ubifs,
    /// jffs2, tmpfs; false on FAT (vfat, exFAT), where a rename is three
    /// separate directory updates, and on every filesystem an adapter does
    /// not know to be safe (FUSE, NTFS, network filesystems). Where it is
    /// false, use the Slots protocol.
    pub atomic_replace: bool,
    /// The filesystem's name as the adapter learned it (`"ext4"`, `"vfat"`,
    /// `"ram"`), or `"unknown"`. For messages and reports only.
    pub filesystem: &'static str,
    /// `true` if the filesystem may keep a small file's data inside its
    /// inode and move it out when the file grows (f2fs inline data, btrfs
    /// inline extents, ext4 with `inline_data`): one write of the new block
    /// and one of the inode, unordered before a flush. A journal file is
    /// then taken out of the inode before it holds anything (two
    /// `set_len` calls, `docs/design.md`, 6). True unless the adapter knows
    /// better: [`Capabilities::new`] says true; a RAM directory, whose
    /// files never move and may be smaller than 4 KiB, says false.
    pub inline_data: bool,
    /// `true` if changes to names in this directory reach the disk in the
    /// order they were made, so that a power cut keeps a prefix of them:
    /// a filesystem that journals or logs its metadata in order (ext4,
    /// xfs, btrfs, f2fs, ubifs, jffs2), or a RAM directory whose names
    /// land all or none. A commit that keeps the previous version relies
    /// on it to order two renames without a flush between them, and adds
    /// that flush where it is false ([`crate::history`]). False unless the
    /// adapter knows better ([`Capabilities::new`] says false).
    pub ordered_names: bool,
}

impl Capabilities {
    /// Capabilities with the given rename atomicity and filesystem name
    /// (and [`Capabilities::inline_data`] true).
    pub const fn new(atomic_replace: bool, filesystem: &'static str) -> Capabilities {
        Capabilities {
            atomic_replace,
            filesystem,
            inline_data: true,
            ordered_names: false,
        }
    }

    /// The same capabilities with [`Capabilities::inline_data`] set.
    pub const fn with_inline_data(mut self, inline_data: bool) -> Capabilities {
        self.inline_data = inline_data;
        self
    }

    /// The same capabilities with [`Capabilities::ordered_names`] set.
    pub const fn with_ordered_names(mut self, ordered_names: bool) -> Capabilities {
        self.ordered_names = ordered_names;
        self
    }
}

/// Who owns the files an adapter creates: a Unix user and group id, each
/// `None` to keep the creating process's own.
///
/// Set on a directory handle by the Linux and std adapters
/// (`set_owner`), so that a root process that commits a service's state
/// (`/var/lib/app/state.json`, owned by `app:app`) leaves every file it
/// makes — temporary file, journal, slots, lock file — owned by `app:app`.
/// The owner is given to a new file right after its exclusive creation,
/// before its mode is set exactly and before any byte is written, so the
/// mode guarantee holds at every instant; set-user-id and set-group-id
/// bits are never added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// The user id, or `None` for the process's own.
    pub uid: Option<u32>,
    /// The group id, or `None` for the process's own.
    pub gid: Option<u32>,
}

impl Owner {
    /// Whether neither id is set (files keep the creating process's).
    pub const fn is_none(&self) -> bool {
        self.uid.is_none() && self.gid.is_none()
    }
}

/// An open file inside a [`Dir`].
///
/// Reads and writes go through [`embedded_io::Read`], [`embedded_io::Write`]
/// and [`embedded_io::Seek`]; a write at the current position extends the
/// file if needed. Dropping the handle closes it; closing makes nothing
/// durable.
pub trait File: embedded_io::Read + embedded_io::Write + embedded_io::Seek {
    /// `fdatasync(fd)`: make this file's data and size durable.
    ///
    /// On return, every byte written through this handle (and the file's
    /// length) survives a power cut. The file's *name* is not made durable:
    /// that takes [`Dir::sync_dir`].
    ///
    /// **Power cut during the call:** any subset of the unflushed writes may
    /// have landed, in part, as zeros or as garbage.
    ///
    /// **Must not:** return `Ok` unless the data really reached stable
    /// storage; retry after a failure and then report success (the kernel
    /// may have dropped the dirty pages with the first error).
    fn sync_data(&mut self) -> Result<(), Self::Error>;

    /// `fsync(fd)`: like [`File::sync_data`], and also the file's metadata
    /// (mode, timestamps).
    ///
    /// **Power cut during the call:** as for [`File::sync_data`]; the mode
    /// was fixed when the file was created, so it is never wider than asked.
    ///
    /// **Must not:** as for [`File::sync_data`].
    fn sync_all(&mut self) -> Result<(), Self::Error>;

    /// `ftruncate(fd, len)`: cut the file to `len` bytes (or extend it with
    /// zeros). Not durable until [`File::sync_data`].
    ///
    /// **Power cut during the call, or before the next flush:** the file may
    /// keep its old length or take the new one.
    fn set_len(&mut self, len: u64) -> Result<(), Self::Error>;
}

/// A directory held open; the protocols' only view of the filesystem.
///
/// # Names
///
/// Every `name` is a single file name inside this directory: no `/`, no
/// `\`, no NUL, not `.` or `..`. The protocols validate names before they
/// reach the trait (see [`crate::name`]); an implementation must still treat
/// a name as a name and never as a path.
///
/// # Contract for implementations
///
/// - Operate relative to the directory itself (`openat(dirfd, ...)`), never
///   through a path re-resolved at each call, where the platform allows it.
/// - Never follow a symbolic link at the final component of a name.
/// - Never retry a failed flush; retry `EINTR` on any other call.
/// - Report "no such file" as `Ok(None)` where the signature allows it, and
///   as an error whose [`embedded_io::Error::kind`] is
///   [`embedded_io::ErrorKind::NotFound`] elsewhere. Report an exclusive
///   create that found the name taken as
///   [`embedded_io::ErrorKind::AlreadyExists`].
pub trait Dir {
    /// The error of every operation of this directory and its files.
    type Error: embedded_io::Error;
    /// An open file in this directory.
    type File: File + embedded_io::ErrorType<Error = Self::Error>;
    /// A held exclusive lock; dropping it releases the lock.
    type Lock;

    /// What the filesystem under this directory guarantees.
    fn capabilities(&self) -> Capabilities;

    /// A fresh 64-bit token for a unique temporary name.
    ///
    /// Tokens need not be secret, but must not repeat within the life of
    /// the directory's contents, even across reboots and across processes
    /// (Linux: 64 random bits from `getrandom`; a board: a persisted boot
    /// counter and a counter in RAM). The protocols still create temporary
    /// files exclusively, so a repeated token costs a retry, never data.
    fn unique_token(&mut self) -> Result<u64, Self::Error>;

    /// Create `name` exclusively, for reading and writing, with exactly the
    /// permissions `mode` (`O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, then
    /// `fchmod`).
    ///
    /// Fails with [`embedded_io::ErrorKind::AlreadyExists`] if anything —
    /// file, directory, symbolic link, dangling or not — already has the
    /// name.
    ///
    /// **Power cut during the call, or before the next [`Dir::sync_dir`]:**
    /// the name may or may not exist; if it exists, the file may be empty.
    ///
    /// **Must not:** let the file exist, even for a moment, with permissions
    /// wider than `mode` (create with `mode` cut by the umask, then widen to
    /// exactly `mode`); open an existing file; follow a symbolic link.
    fn create_new(&mut self, name: &str, mode: crate::Mode) -> Result<Self::File, Self::Error>;

    /// Open the existing regular file `name` for reading only, or `Ok(None)`
    /// if no file has that name.
    ///
    /// **Power cut during the call:** nothing changes.
    ///
    /// **Must not:** create, truncate or modify anything; follow a symbolic
    /// link (a link at `name` is an error, not `None`).
    fn open_read(&mut self, name: &str) -> Result<Option<Self::File>, Self::Error>;

    /// Whether anything — file, directory, symbolic link — has the name
    /// `name`. The protocol model ([`crate::layout::Files::probe`]) asks
    /// this to tell which protocol a state is on.
    ///
    /// The default opens the name for reading; an adapter with a cheaper
    /// look-up (`fstatat` without following links) should override it.
    ///
    /// **Power cut during the call:** nothing changes.
    ///
    /// **Must not:** create, modify or follow anything.
    fn exists(&mut self, name: &str) -> Result<bool, Self::Error> {
        Ok(self.open_read(name)?.is_some())
    }

    /// Open the existing regular file `name` for reading and writing,
    /// positioned at its start, without truncating it, for a call that
    /// writes with permissions `mode`; `Ok(None)` if no file has that name.
    /// Used to append to journals and to overwrite slots in place.
    ///
    /// A file written in place keeps its inode, its owner and its mode, so
    /// before anything is written into it the implementation checks that
    /// it is a file the caller would have created itself:
    ///
    /// - a regular file, opened without following a symbolic link;
    /// - with exactly one hard link (writing through a second name would
    ///   change a file elsewhere);
    /// - owned by the caller's effective user, where the platform has
    ///   owners (a file planted by another user in a shared directory would
    ///   receive the caller's data, and its owner could read it or keep a
    ///   descriptor open on it);
    ///
    /// and refuses any other file with an error whose
    /// [`embedded_io::Error::kind`] is
    /// [`embedded_io::ErrorKind::PermissionDenied`] and whose message
    /// names the file and what is wrong with it. Then, if the file's mode
    /// [is wider](crate::Mode::is_wider_than) than `mode`, it
    /// [narrows](crate::Mode::narrowed_to) it (`fchmod`) and makes the
    /// narrowing durable (`fsync`) before returning, so no data of this
    /// call is ever in a file more readable than asked, even after a power
    /// cut. A mode narrower than `mode` is kept: the file still holds
    /// content written under it. Platforms without permissions (boards,
    /// Windows) skip what they cannot check and say so in their docs.
    ///
    /// **Power cut during the call:** nothing changes but the mode, which
    /// is the old one or the narrowed one.
    ///
    /// **Must not:** create or truncate; follow a symbolic link; open a file
    /// with more than one hard link or owned by someone else for writing;
    /// return a file whose mode is wider than `mode`; widen a mode.
    fn open_write(
        &mut self,
        name: &str,
        mode: crate::Mode,
    ) -> Result<Option<Self::File>, Self::Error>;

    /// `renameat(dir, from, dir, to)`: give the file `from` the name `to`,
    /// replacing whatever `to` named. Not durable until [`Dir::sync_dir`].
    ///
    /// **Power cut during the call, or before the next [`Dir::sync_dir`]:**
    /// where [`Capabilities::atomic_replace`] holds, `to` names the old file
    /// or the new one, and `from` may still exist. Where it does not, any
    /// prefix of (remove `to`, create `to`, remove `from`) may have happened.
    ///
    /// **Must not:** remove `to` first and rename afterwards (that opens a
    /// window in which a power cut leaves no file at all); follow a symbolic
    /// link at either name.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), Self::Error>;

    /// `linkat(dir, from, dir, to, 0)`: give the file `from` a second name
    /// `to`, which must not exist. Not durable until [`Dir::sync_dir`].
    /// Used to keep the version a commit replaces ([`crate::history`]).
    ///
    /// Fails with [`embedded_io::ErrorKind::NotFound`] if `from` does not
    /// exist, with [`embedded_io::ErrorKind::AlreadyExists`] if `to` does,
    /// and with [`embedded_io::ErrorKind::Unsupported`] where the
    /// filesystem has no hard links (FAT): a state kept there has its
    /// previous version in its slots instead.
    ///
    /// **Power cut during the call, or before the next [`Dir::sync_dir`]:**
    /// `to` may or may not exist; if it exists, it is the file `from` named.
    ///
    /// **Must not:** replace an existing `to`; follow a symbolic link at
    /// either name (a link at `from` is linked as the link itself).
    fn link(&mut self, from: &str, to: &str) -> Result<(), Self::Error>;

    /// `unlinkat(dir, name)`: remove the name. Removing a name that does not
    /// exist succeeds. Not durable until [`Dir::sync_dir`].
    ///
    /// **Power cut during the call, or before the next [`Dir::sync_dir`]:**
    /// the name may still exist.
    ///
    /// **Must not:** remove a directory; follow a symbolic link (a link is
    /// removed, not its target).
    fn remove(&mut self, name: &str) -> Result<(), Self::Error>;

    /// `fsync(dirfd)`: make every name created, renamed or removed in this
    /// directory durable. On platforms that cannot flush a directory
    /// (Windows), an implementation makes renames durable by other means
    /// (`MoveFileEx` with `MOVEFILE_WRITE_THROUGH`) and this is a no-op.
    ///
    /// **Power cut during the call:** any subset of the unflushed name
    /// changes may have become durable.
    ///
    /// **Must not:** as for [`File::sync_data`].
    fn sync_dir(&mut self) -> Result<(), Self::Error>;

    /// Call `visit` with the name of every entry of the directory (not `.`
    /// or `..`), in no particular order, until it returns
    /// [`ControlFlow::Break`].
    ///
    /// Used only to find orphaned temporary files; a visitor must not
    /// assume a consistent snapshot if other processes change the directory.
    ///
    /// **Power cut during the call:** nothing changes.
    fn for_each_entry(
        &mut self,
        visit: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), Self::Error>;

    /// Take the exclusive lock on the sidecar lock file `name`, waiting as
    /// long as another holder keeps it. The lock file is created with
    /// `mode` if it does not exist, and is never replaced, truncated or
    /// written.
    ///
    /// The lock excludes every other holder: other processes, and other
    /// calls in this process (each call takes its own lock). It dies with
    /// its holder: a process that crashes or loses power holds nothing.
    ///
    /// An adapter may bound the wait (a timeout, or a single try, as the
    /// Linux and std adapters' `set_lock_timeout` do): when another holder
    /// keeps the lock past it, the call fails with an error whose kind is
    /// [`embedded_io::ErrorKind::TimedOut`], holding nothing; the commit
    /// that asked for the lock then fails before touching any file, and
    /// [`crate::IoError::is_lock_busy`] tells it apart.
    ///
    /// **Power cut during the call:** the lock file may exist, empty. That
    /// is its normal state.
    ///
    /// An existing lock file that is a regular file with one hard link,
    /// owned by the caller's effective user, and whose mode is wider than
    /// `mode` (older versions made lock files readable by all, and anyone
    /// who can open a lock file can hold the lock forever) is narrowed to
    /// `mode` ([`crate::Mode::narrowed_to`]). One owned by someone else is
    /// used as it is (writers sharing a state through a group own each
    /// other's lock files).
    ///
    /// **Must not:** follow a symbolic link; write to or truncate an
    /// existing lock file, or change the mode of one with more than one
    /// hard link (it may be a hard link planted to another file); widen a
    /// lock file's mode; leave a lock behind when the holder dies.
    fn lock(&mut self, name: &str, mode: crate::Mode) -> Result<Self::Lock, Self::Error>;
}

/// Where an I/O error happened: the operation of the [`Dir`] or [`File`]
/// trait that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// [`Dir::unique_token`].
    Token,
    /// [`Dir::create_new`].
    Create,
    /// [`Dir::open_read`], or [`Dir::open_write`] where it failed for
    /// another reason than [`Op::OpenInPlace`]'s.
    Open,
    /// [`Dir::open_write`] refused the file a call was about to write in
    /// place (a slot, a journal): not a regular file, more than one hard
    /// link, or owned by someone else (the adapter's error says which).
    /// Nothing was written to it.
    OpenInPlace,
    /// A read.
    Read,
    /// A write.
    Write,
    /// A seek.
    Seek,
    /// [`File::sync_data`] or [`File::sync_all`].
    SyncFile,
    /// [`File::set_len`].
    Truncate,
    /// [`Dir::rename`].
    Rename,
    /// [`Dir::link`].
    Link,
    /// Erasing flash sectors (`crate::nor`).
    Erase,
    /// [`Dir::remove`].
    Remove,
    /// [`Dir::sync_dir`].
    SyncDir,
    /// [`Dir::for_each_entry`].
    List,
    /// [`Dir::lock`].
    Lock,
}

impl Op {
    /// The operation as a short word for messages (`"fsync"`, `"rename"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Token => "unique token",
            Op::Create => "exclusive create",
            Op::Open => "open",
            Op::OpenInPlace => "in-place write check",
            Op::Read => "read",
            Op::Write => "write",
            Op::Seek => "seek",
            Op::SyncFile => "file flush (fsync)",
            Op::Truncate => "truncate",
            Op::Rename => "rename",
            Op::Link => "hard link",
            Op::Erase => "erase",
            Op::Remove => "remove",
            Op::SyncDir => "directory flush (fsync)",
            Op::List => "list directory",
            Op::Lock => "lock",
        }
    }
}

impl core::fmt::Display for Op {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`Dir::open_write`] for a protocol's in-place write, its error named:
/// a refusal ([`embedded_io::ErrorKind::PermissionDenied`]: not a regular
/// file, more than one link, owned by someone else) as
/// [`Op::OpenInPlace`], anything else as [`Op::Open`].
pub(crate) fn open_in_place<D: Dir>(
    dir: &mut D,
    name: &str,
    mode: crate::Mode,
) -> Result<Option<D::File>, crate::error::IoError<D::Error>> {
    use embedded_io::Error as _;
    dir.open_write(name, mode).map_err(|e| {
        let op = if e.kind() == embedded_io::ErrorKind::PermissionDenied {
            Op::OpenInPlace
        } else {
            Op::Open
        };
        crate::error::IoError::new(op, name, e)
    })
}
