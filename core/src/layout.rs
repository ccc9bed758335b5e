//! The protocol model: which files a state owns, which protocol a state is
//! on, and which directory entries are a state's orphans.
//!
//! A state `NAME` is kept with exactly one protocol, and each protocol owns
//! a fixed set of names beside `NAME`:
//!
//! | file | role | owned by |
//! |---|---|---|
//! | `NAME` | the document (Replace), or the snapshot (Journal) | Replace, Journal |
//! | `NAME.journal` | the record log | Journal |
//! | `NAME.a`, `NAME.b` | the two slots | Slots |
//! | `NAME.lock` | the writers' lock, never replaced | every protocol |
//! | `.NAME.<16 hex>.tmp`, `.NAME.journal.<16 hex>.tmp` | a Replace commit in flight (or its orphan) | Replace, Journal |
//! | `NAME.prev` | the previous version, where it is kept | Replace |
//! | `NAME.replaced` | a second name of the version a commit in flight replaces | Replace |
//! | `NAME.tentative` | a tentative version, current until confirmed or rolled back | Replace |
//! | `NAME.deadline` | until when recovery leaves the tentative version waiting | Replace |
//!
//! The last four are companions of a Replace document ([`crate::history`]):
//! they do not change which protocol a state is on.
//!
//! Which protocol a state is on is told by the files that exist
//! ([`Files::protocol`]): a journal makes it Journal, a slot makes it Slots,
//! `NAME` alone makes it Replace. Slots beside a journal or a plain `NAME`
//! is [`Mixed`]: nothing fsatomic writes leaves that, and it will not guess
//! which is current.
//!
//! Every name in the table is derived from `NAME` by a suffix or the
//! temporary pattern, and a caller may not name a state with one of those
//! suffixes ([`crate::name::validate`] refuses them): so every directory
//! entry belongs to exactly one state ([`owner`]), and no state can be
//! written over another state's lock, journal or slot.
//!
//! Everything here is pure name logic plus [`Files::probe`], which asks the
//! directory which of a state's files exist; the CLI, `check`, the stores,
//! the boards and the test kit ask this module instead of spelling suffixes.

use crate::error::IoError;
use crate::fs::{Dir, Op};
use crate::name::{self, FileName};
use crate::protocol::Protocol;

/// Suffix of the writers' lock file, `NAME.lock`.
pub const LOCK_SUFFIX: &str = ".lock";
/// Suffix of the journal's record log, `NAME.journal`.
pub const JOURNAL_SUFFIX: &str = ".journal";
/// Suffixes of the two slot files, `NAME.a` and `NAME.b`.
pub const SLOT_SUFFIXES: [&str; 2] = [".a", ".b"];
/// Suffix of the previous version, `NAME.prev`.
pub const PREVIOUS_SUFFIX: &str = ".prev";
/// Suffix of the version a commit in flight replaces, `NAME.replaced`.
pub const REPLACED_SUFFIX: &str = ".replaced";
/// Suffix of a tentative version, `NAME.tentative`.
pub const TENTATIVE_SUFFIX: &str = ".tentative";
/// Suffix of a tentative version's deadline, `NAME.deadline`.
pub const DEADLINE_SUFFIX: &str = ".deadline";
/// Every suffix a protocol derives from a state's name. A state may not be
/// named with one of them.
pub const SIDECAR_SUFFIXES: [&str; 8] = [
    LOCK_SUFFIX,
    JOURNAL_SUFFIX,
    ".a",
    ".b",
    PREVIOUS_SUFFIX,
    REPLACED_SUFFIX,
    TENTATIVE_SUFFIX,
    DEADLINE_SUFFIX,
];

/// What a file is to the state that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// `NAME`: the document of a Replace state, or a journal's snapshot.
    Document,
    /// `NAME.journal`: the journal's record log.
    Journal,
    /// `NAME.a` (0) or `NAME.b` (1): a slot.
    Slot(u8),
    /// `NAME.lock`: the writers' lock.
    Lock,
    /// `NAME.prev`: the previous version.
    Previous,
    /// `NAME.replaced`: a second name of the version a commit in flight
    /// replaces, until it becomes `NAME.prev`.
    Replaced,
    /// `NAME.tentative`: a tentative version.
    Tentative,
    /// `NAME.deadline`: until when the tentative version may wait.
    Deadline,
    /// A temporary file of a Replace commit of `NAME` or of its tentative
    /// version (`journal: false`), or of `NAME.journal` (`journal: true`).
    Temp {
        /// Whether the commit was of the journal file.
        journal: bool,
    },
}

impl Role {
    /// The role's word, as `check` prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Document => "document",
            Role::Journal => "journal",
            Role::Slot(_) => "slot",
            Role::Lock => "lock",
            Role::Previous => "previous version",
            Role::Replaced => "replaced version",
            Role::Tentative => "tentative version",
            Role::Deadline => "tentative version's deadline",
            Role::Temp { .. } => "temporary file",
        }
    }
}

/// Whether `name` ends in one of [`SIDECAR_SUFFIXES`] (and has something
/// before it).
pub fn is_sidecar(name: &str) -> bool {
    SIDECAR_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
}

/// The file of `name` that plays `role`. A [`Role::Temp`] has no fixed
/// name (it carries a token); asked for one, this returns the name whose
/// commit it belongs to (`NAME` or `NAME.journal`).
///
/// ```
/// use fsatomic::layout::{file_name, Role};
/// assert_eq!(file_name("users.json", Role::Slot(1)).as_str(), "users.json.b");
/// assert_eq!(file_name("users.json", Role::Journal).as_str(), "users.json.journal");
/// ```
pub fn file_name(name: &str, role: Role) -> FileName {
    match role {
        Role::Document | Role::Temp { journal: false } => name::owned(name),
        Role::Journal | Role::Temp { journal: true } => name::with_suffix(name, JOURNAL_SUFFIX),
        Role::Slot(i) => name::with_suffix(name, if i == 0 { ".a" } else { ".b" }),
        Role::Lock => name::with_suffix(name, LOCK_SUFFIX),
        Role::Previous => name::with_suffix(name, PREVIOUS_SUFFIX),
        Role::Replaced => name::with_suffix(name, REPLACED_SUFFIX),
        Role::Tentative => name::with_suffix(name, TENTATIVE_SUFFIX),
        Role::Deadline => name::with_suffix(name, DEADLINE_SUFFIX),
    }
}

/// The state a directory entry belongs to, and its role there; `None` for
/// an entry that is no name fsatomic could have made (`.`, a name with a
/// control character, an over-long name).
///
/// ```
/// use fsatomic::layout::{owner, Role};
/// assert_eq!(owner("a.json.journal"), Some(("a.json", Role::Journal)));
/// assert_eq!(owner(".a.json.journal.00000000000000ff.tmp"), Some(("a.json", Role::Temp { journal: true })));
/// assert_eq!(owner("a.json"), Some(("a.json", Role::Document)));
/// ```
pub fn owner(entry: &str) -> Option<(&str, Role)> {
    if let Some(target) = name::temp_target(entry) {
        let of = |suffix: &str| target.strip_suffix(suffix).filter(|s| !s.is_empty());
        return Some(if let Some(state) = of(JOURNAL_SUFFIX) {
            (state, Role::Temp { journal: true })
        } else if let Some(state) = of(TENTATIVE_SUFFIX).or_else(|| of(DEADLINE_SUFFIX)) {
            // A tentative version and its deadline are committed with
            // Replace too.
            (state, Role::Temp { journal: false })
        } else {
            (target, Role::Temp { journal: false })
        });
    }
    name::validate_file(entry).ok()?;
    let sidecar = |suffix: &str, role| {
        entry
            .strip_suffix(suffix)
            .filter(|state| !state.is_empty())
            .map(|state| (state, role))
    };
    sidecar(LOCK_SUFFIX, Role::Lock)
        .or_else(|| sidecar(JOURNAL_SUFFIX, Role::Journal))
        .or_else(|| sidecar(".a", Role::Slot(0)))
        .or_else(|| sidecar(".b", Role::Slot(1)))
        .or_else(|| sidecar(PREVIOUS_SUFFIX, Role::Previous))
        .or_else(|| sidecar(REPLACED_SUFFIX, Role::Replaced))
        .or_else(|| sidecar(TENTATIVE_SUFFIX, Role::Tentative))
        .or_else(|| sidecar(DEADLINE_SUFFIX, Role::Deadline))
        .or(Some((entry, Role::Document)))
}

/// If `entry` is a temporary file of a commit of the state `NAME` (of
/// `NAME` itself or of `NAME.journal`), that state's name: an orphan, once
/// the caller holds `NAME`'s writers' lock.
pub fn orphan_of(entry: &str) -> Option<&str> {
    match owner(entry)? {
        (state, Role::Temp { .. }) => Some(state),
        _ => None,
    }
}

/// Which of a state's files exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Files {
    /// `NAME`.
    pub document: bool,
    /// `NAME.journal`.
    pub journal: bool,
    /// `NAME.a` and `NAME.b`.
    pub slots: [bool; 2],
    /// `NAME.prev` or `NAME.replaced`: the state keeps its previous
    /// version, and every commit must go on keeping it.
    pub previous: bool,
    /// `NAME.tentative`: a tentative version waits for its confirmation.
    pub tentative: bool,
}

/// A state whose files say two protocols at once: slots beside a journal
/// or beside a plain `NAME`. Nothing fsatomic writes leaves this, so it is
/// somebody else's doing, and fsatomic will not guess which is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mixed {
    /// The files that exist.
    pub files: Files,
}

impl core::fmt::Display for Mixed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("stored in two ways at once (slot files beside ")?;
        f.write_str(if self.files.journal {
            "a journal"
        } else {
            "a plain file"
        })?;
        f.write_str("); fsatomic will not guess which is current: keep one, remove the others")
    }
}

impl core::error::Error for Mixed {}

impl Files {
    /// Ask `dir` which files of the state `name` exist (seven look-ups, no
    /// listing: the cost does not grow with the directory).
    pub fn probe<D: Dir>(dir: &mut D, name: &str) -> Result<Files, IoError<D::Error>> {
        let mut files = Files::default();
        let mut ask = |role| {
            let file = file_name(name, role);
            dir.exists(&file)
                .map_err(|e| IoError::new(Op::Open, &file, e))
        };
        files.document = ask(Role::Document)?;
        files.journal = ask(Role::Journal)?;
        files.slots = [ask(Role::Slot(0))?, ask(Role::Slot(1))?];
        files.previous = ask(Role::Previous)? || ask(Role::Replaced)?;
        files.tentative = ask(Role::Tentative)?;
        Ok(files)
    }

    /// Note that a file with `role` exists (for a caller that lists the
    /// directory once and sorts the entries with [`owner`]).
    pub fn note(&mut self, role: Role) {
        match role {
            Role::Document => self.document = true,
            Role::Journal => self.journal = true,
            Role::Slot(i) => {
                if let Some(slot) = self.slots.get_mut(usize::from(i)) {
                    *slot = true;
                }
            }
            Role::Previous | Role::Replaced => self.previous = true,
            Role::Tentative => self.tentative = true,
            Role::Lock | Role::Deadline | Role::Temp { .. } => {}
        }
    }

    /// Whether no file of the state exists (it was never committed).
    pub fn is_empty(&self) -> bool {
        !self.document && !self.journal && !self.slots.iter().any(|s| *s) && !self.tentative
    }

    /// The protocol the state is on: `Ok(None)` if it has no file yet.
    pub fn protocol(&self) -> Result<Option<Protocol>, Mixed> {
        let slots = self.slots.iter().any(|s| *s);
        if slots && (self.journal || self.document) {
            return Err(Mixed { files: *self });
        }
        Ok(if self.journal {
            Some(Protocol::Journal)
        } else if slots {
            Some(Protocol::Slots)
        } else if self.document || self.tentative {
            Some(Protocol::Replace)
        } else {
            None
        })
    }

    /// The roles of the files that exist, in the order of the table above
    /// (`NAME.replaced` counted as [`Role::Previous`]).
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        [
            (self.document, Role::Document),
            (self.journal, Role::Journal),
            (self.slots[0], Role::Slot(0)),
            (self.slots[1], Role::Slot(1)),
            (self.previous, Role::Previous),
            (self.tentative, Role::Tentative),
        ]
        .into_iter()
        .filter_map(|(present, role)| present.then_some(role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_one_owner_and_round_trips() {
        for role in [
            Role::Document,
            Role::Journal,
            Role::Slot(0),
            Role::Slot(1),
            Role::Lock,
            Role::Previous,
            Role::Replaced,
            Role::Tentative,
            Role::Deadline,
        ] {
            let file = file_name("s.json", role);
            assert_eq!(owner(&file), Some(("s.json", role)), "{file}");
        }
        let temp = name::temp_name("s.json", 1);
        assert_eq!(
            owner(&temp),
            Some(("s.json", Role::Temp { journal: false }))
        );
        let temp = name::temp_name("s.json.journal", 1);
        assert_eq!(owner(&temp), Some(("s.json", Role::Temp { journal: true })));
        let tentative = name::temp_name("s.json.tentative", 1);
        assert_eq!(orphan_of(&tentative), Some("s.json"));
        assert_eq!(orphan_of(&temp), Some("s.json"));
        assert_eq!(orphan_of("s.json.journal"), None);
        assert_eq!(owner(".journal"), Some((".journal", Role::Document)));
        assert_eq!(owner("a\nb"), None);
    }

    #[test]
    fn the_files_tell_the_protocol() {
        let mut f = Files::default();
        assert_eq!(f.protocol(), Ok(None));
        f.note(Role::Document);
        assert_eq!(f.protocol(), Ok(Some(Protocol::Replace)));
        f.note(Role::Journal);
        assert_eq!(f.protocol(), Ok(Some(Protocol::Journal)));
        f.note(Role::Slot(1));
        assert!(f.protocol().is_err());
        let mut g = Files::default();
        g.note(Role::Slot(1));
        assert_eq!(g.protocol(), Ok(Some(Protocol::Slots)));
    }
}
