//! `--owner`, `--group`, `--preserve` for `save`, `update` and `append`:
//! who owns the files a commit makes, so that a root script that rewrites a
//! service's state leaves it the service's.
//!
//! Names are looked up in `/etc/passwd` and `/etc/group` (the static binary
//! has no NSS: a user known only to LDAP is given by number).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;

use fsatomic::layout::{self, Role};
use fsatomic::{Mode, Owner};
use fsatomic_linux::LinuxDir;

use super::args::{Opt, Parsed, Spec};
use super::failure::Failure;
use super::target::{Target, lossy};

/// `--owner USER|UID`.
pub const OWNER_OPTION: Opt = Opt::with_value("--owner");
/// `--group GROUP|GID`.
pub const GROUP_OPTION: Opt = Opt::with_value("--group");
/// `--preserve`: keep the existing state's owner, group and mode.
pub const PRESERVE_OPTION: Opt = Opt::flag("--preserve");

/// What the command line asks for, names already resolved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request {
    owner: Owner,
    preserve: bool,
}

/// Parse `--owner`, `--group` and `--preserve`; an unknown name or a bad
/// number is a usage error (exit 2).
pub fn requested(parsed: &Parsed, spec: &Spec) -> Result<Request, Failure> {
    let id = |option: &str, db: &str| -> Result<Option<u32>, Failure> {
        let Some(text) = parsed.value(option) else {
            return Ok(None);
        };
        resolve(text, db).map(Some).ok_or_else(|| {
            spec.usage(format_args!(
                "{option} {:?}: no such {} in {db}, and not a number",
                lossy(text),
                if db == PASSWD { "user" } else { "group" }
            ))
        })
    };
    Ok(Request {
        owner: Owner {
            uid: id("--owner", PASSWD)?,
            gid: id("--group", GROUP)?,
        },
        preserve: parsed.flag("--preserve"),
    })
}

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

/// A number, or a name's id (third field) in `db`.
fn resolve(text: &OsStr, db: &str) -> Option<u32> {
    let text = text.to_str()?;
    if let Ok(n) = text.parse::<u32>() {
        return (n != u32::MAX).then_some(n);
    }
    let table = fs::read_to_string(db).ok()?;
    table.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == text)
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

/// Before the lock: give `dir` the owner to use and, with `--preserve`,
/// take the existing state's owner, group and mode (without set-user-id,
/// set-group-id and sticky bits); an explicit `--owner`/`--group` wins
/// over the preserved one. A new state keeps `mode` (from `--mode`).
/// Returns the mode to commit with.
pub fn apply(
    dir: &mut LinuxDir,
    target: &Target,
    request: Request,
    mode: Mode,
) -> Result<Mode, Failure> {
    let mut owner = request.owner;
    let mut mode = mode;
    if request.preserve
        && let Some(meta) = existing(target)
    {
        owner.uid = owner.uid.or(Some(meta.uid()));
        owner.gid = owner.gid.or(Some(meta.gid()));
        mode = Mode::new(meta.mode() & 0o777).unwrap_or(mode);
    }
    if owner.is_none() {
        return Ok(mode);
    }
    dir.set_owner(owner).map_err(|e| {
        Failure::error(format!(
            "{}: cannot give its files to {}: {e}; nothing was written (run as root, or drop --owner/--preserve)",
            target.path(),
            describe(owner)
        ))
    })?;
    Ok(mode)
}

/// The first file the state has: its document, journal or a slot.
fn existing(target: &Target) -> Option<fs::Metadata> {
    [Role::Document, Role::Journal, Role::Slot(0), Role::Slot(1)]
        .into_iter()
        .find_map(|role| {
            let name = layout::file_name(&target.name, role);
            fs::symlink_metadata(target.dir.join(name.as_str()))
                .ok()
                .filter(|m| m.is_file())
        })
}

fn describe(owner: Owner) -> String {
    let id = |v: Option<u32>| v.map_or("(unchanged)".to_string(), |v| v.to_string());
    format!("uid {} gid {}", id(owner.uid), id(owner.gid))
}
