//! File names: validation of caller names, and the names the protocols
//! derive from them (temporary files, lock files, journals, slots).
//!
//! A caller name is one file name, never a path. The library refuses a name
//! with `/`, `\`, NUL or another control character, `.` or `..`, an empty
//! name, a name longer than [`MAX_NAME_LEN`] bytes, and a name that a
//! protocol owns for another state: the shape of the library's own temporary
//! files, or a name ending in one of [`crate::layout::SIDECAR_SUFFIXES`]
//! (`.lock`, `.journal`, `.a`, `.b`). Which file belongs to which state is
//! [`crate::layout`]'s business.
//!
//! Temporary files are named `.NAME.<16 lowercase hex digits>.tmp`, the
//! digits being a 64-bit token from [`crate::Dir::unique_token`]. Orphans
//! are recognised by that exact pattern ([`temp_target`]) and never by a
//! fixed name, so no two writers ever share a temporary file.

use core::fmt::{self, Write as _};

/// The longest caller name, in bytes. Derived names add at most 22 bytes,
/// so every name the library touches fits in [`FileName`] and in the
/// 255-byte name limit of common filesystems.
pub const MAX_NAME_LEN: usize = 128;

/// Capacity of [`FileName`].
pub const FILE_NAME_CAPACITY: usize = 160;

/// A file name owned by value, for error messages and derived names.
pub type FileName = heapless::String<FILE_NAME_CAPACITY>;

/// Suffix of the sidecar lock file, `NAME.lock`.
pub const LOCK_SUFFIX: &str = crate::layout::LOCK_SUFFIX;

const TEMP_SUFFIX: &str = ".tmp";
const TOKEN_DIGITS: usize = 16;

/// Why a name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    TooLong,
    /// The name contains `/` or `\`: it is a path, not a name.
    Separator,
    /// The name contains NUL or another control character.
    Control,
    /// The name is `.` or `..`.
    Dot,
    /// The name has the shape of the library's own temporary files.
    Reserved,
    /// The name ends in a suffix a protocol owns (`.lock`, `.journal`,
    /// `.a`, `.b`): it is, or may become, a file of another state.
    Sidecar,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::Empty => "the name is empty",
            NameError::TooLong => "the name is longer than 128 bytes",
            NameError::Separator => "the name contains '/' or '\\'; give a file name, not a path",
            NameError::Control => "the name contains NUL or a control character",
            NameError::Dot => "'.' and '..' are not file names",
            NameError::Reserved => "the name has the shape of a temporary file (.NAME.<token>.tmp)",
            NameError::Sidecar => {
                "the name ends in .lock, .journal, .a or .b, which fsatomic keeps for the lock, journal and slot files of another state; choose another name"
            }
        })
    }
}

impl core::error::Error for NameError {}

/// Check that `name` is a name a caller may give a state: a single, plain
/// file name that no protocol owns for another state.
///
/// ```
/// use fsatomic::name::{validate, NameError};
/// assert!(validate("users.json").is_ok());
/// assert_eq!(validate("../etc/passwd"), Err(NameError::Separator));
/// assert_eq!(validate(".."), Err(NameError::Dot));
/// assert_eq!(validate("a\0b"), Err(NameError::Control));
/// assert_eq!(validate("users.json.lock"), Err(NameError::Sidecar));
/// assert_eq!(validate("users.json.a"), Err(NameError::Sidecar));
/// ```
pub fn validate(name: &str) -> Result<(), NameError> {
    validate_file(name)?;
    if crate::layout::is_sidecar(name) {
        return Err(NameError::Sidecar);
    }
    Ok(())
}

/// [`validate`] `name`, a refusal as the caller's error (its `Name`
/// variant, with the name).
pub(crate) fn checked<Err: crate::error::NameRefused>(name: &str) -> Result<(), Err> {
    validate(name).map_err(|error| Err::name_refused(owned(name), error))
}

/// Check that `name` is a single, plain file name the library may touch:
/// [`validate`] without the sidecar rule, for the files a protocol derives
/// from a state's name (`NAME.journal`, `NAME.lock`).
pub fn validate_file(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dot);
    }
    for c in name.chars() {
        if c == '/' || c == '\\' {
            return Err(NameError::Separator);
        }
        if c.is_control() {
            return Err(NameError::Control);
        }
    }
    if temp_target(name).is_some() {
        return Err(NameError::Reserved);
    }
    Ok(())
}

/// `name` as an owned [`FileName`], cut at a character boundary if it is
/// too long (only ever for names that failed validation).
pub fn owned(name: &str) -> FileName {
    let mut out = FileName::new();
    for c in name.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// `NAME` followed by `suffix`, e.g. `users.json.lock`.
///
/// Never fails for a validated name and a suffix of at most 22 bytes; a
/// longer result is cut (and then cannot collide with a real name, since it
/// would fail validation).
pub fn with_suffix(name: &str, suffix: &str) -> FileName {
    let mut out = owned(name);
    for c in suffix.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// The temporary name `.NAME.<token as 16 hex digits>.tmp`.
///
/// ```
/// let t = fsatomic::name::temp_name("users.json", 0xfeed);
/// assert_eq!(t.as_str(), ".users.json.000000000000feed.tmp");
/// assert_eq!(fsatomic::name::temp_target(&t), Some("users.json"));
/// ```
pub fn temp_name(name: &str, token: u64) -> FileName {
    let mut out = FileName::new();
    // A validated name is at most 128 bytes; the result is at most 150.
    let _ = write!(out, ".{name}.{token:016x}{TEMP_SUFFIX}");
    out
}

/// If `entry` is a temporary name made by [`temp_name`], the name it was
/// meant to replace.
///
/// Only the exact pattern matches: a leading `.`, a valid name, a `.`,
/// sixteen lowercase hex digits, `.tmp`. A file merely ending in `.tmp` is
/// never taken for an orphan.
pub fn temp_target(entry: &str) -> Option<&str> {
    let rest = entry.strip_prefix('.')?.strip_suffix(TEMP_SUFFIX)?;
    let split = rest.len().checked_sub(TOKEN_DIGITS + 1)?;
    let (target, token) = rest.split_at_checked(split)?;
    let token = token.strip_prefix('.')?;
    let is_token = token.len() == TOKEN_DIGITS
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_token || target.is_empty() || target.len() > MAX_NAME_LEN {
        return None;
    }
    if target == "."
        || target == ".."
        || target
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        return None;
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_dots_controls_and_reserved_shapes() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(validate("a/b"), Err(NameError::Separator));
        assert_eq!(validate("a\\b"), Err(NameError::Separator));
        assert_eq!(validate("."), Err(NameError::Dot));
        assert_eq!(validate(".."), Err(NameError::Dot));
        assert_eq!(validate("a\0"), Err(NameError::Control));
        assert_eq!(validate("a\nb"), Err(NameError::Control));
        let long = [b'x'; MAX_NAME_LEN + 1];
        assert_eq!(
            validate(core::str::from_utf8(&long).unwrap()),
            Err(NameError::TooLong)
        );
        assert_eq!(
            validate(".x.0123456789abcdef.tmp"),
            Err(NameError::Reserved)
        );
        assert_eq!(validate("x.json.journal"), Err(NameError::Sidecar));
        assert_eq!(validate("x.json.lock"), Err(NameError::Sidecar));
        assert_eq!(validate("x.json.b"), Err(NameError::Sidecar));
        assert!(validate_file("x.json.journal").is_ok());
        assert!(validate("x.json.bak").is_ok());
        assert!(validate("..hidden").is_ok());
        assert!(validate("state.tmp").is_ok());
        assert!(validate("ünïcode.json").is_ok());
    }

    #[test]
    fn temp_names_round_trip_and_only_the_pattern_matches() {
        let t = temp_name("users.json", u64::MAX);
        assert_eq!(t.as_str(), ".users.json.ffffffffffffffff.tmp");
        assert_eq!(temp_target(&t), Some("users.json"));
        assert_eq!(temp_target("users.json.tmp"), None);
        assert_eq!(temp_target(".users.json.tmp"), None);
        assert_eq!(temp_target(".users.json.0123456789ABCDEF.tmp"), None);
        assert_eq!(temp_target("..0123456789abcdef.tmp"), None);
        assert_eq!(temp_target(".0123456789abcdef.tmp"), None);
        assert_eq!(temp_target("..json.0123456789abcdef.tmp"), Some(".json"));
        let long = [b'x'; MAX_NAME_LEN];
        let long = core::str::from_utf8(&long).unwrap();
        let t = temp_name(long, 7);
        assert_eq!(temp_target(&t), Some(long));
    }
}
