//! `--help` texts: one for the tool, one per command. `docs/cli.md` is the
//! long form.

use std::io::Write;

use super::failure::Failure;

const GLOBAL: &str = "\
fsatomic - crash-safe JSON state files

Usage:
  fsatomic save PATH [--mode OCTAL] [--mkdir]       < JSON
  fsatomic load PATH                                > JSON
  fsatomic update PATH [--mode OCTAL] [--init JSON] [--mkdir] -- CMD [ARG...]
  fsatomic lock PATH -- CMD [ARG...]
  fsatomic check PATH|DIR [--repair]
  fsatomic --help | COMMAND --help | --version

A save replaces the file whole: a power cut leaves the old content or the
new one, never a torn, empty or missing file; once save returns 0 the new
content survives a power cut. Writers of one file take its lock (PATH.lock)
and never lose each other's update; load takes no lock.

Exit codes:
  0  success
  1  I/O or other failure (also: invalid JSON on stdin or from CMD)
  2  usage: unknown command or option, refused file name
  3  load: the file does not exist
  4  the file is corrupt (left untouched)
  N  update, lock: CMD's own exit status when CMD fails

Run 'fsatomic COMMAND --help' for one command. See docs/cli.md.
";

const SAVE: &str = "\
fsatomic save PATH [--mode OCTAL] [--mkdir]

Read one JSON value (object, array, string, number, true, false or null)
from stdin, check it, indent it (2 spaces, trailing newline) and commit it
to PATH durably, under the writers' lock of PATH. Silent on success.

  --mode OCTAL  permissions of the file, exactly, whatever the umask
                (default 0600)
  --mkdir       create the missing directories of PATH (mode 0755), each
                reported on stderr

Empty or invalid input is refused (exit 1, with the byte offset of the
error) and nothing on disk is touched.

  echo '{\"done\":true}' | fsatomic save /var/lib/nos/state/firstboot.json
";

const LOAD: &str = "\
fsatomic load PATH

Print the document in PATH, exactly the bytes on disk. Takes no lock,
removes nothing, repairs nothing.

Exit 3 if PATH does not exist (a missing directory is exit 1: it may be an
unmounted disk); exit 4 if it is corrupt (empty, cut short, not JSON): the
message gives the byte offset, and the file is left untouched.

  if users=$(fsatomic load /etc/nos/users.json); then ...
";

const UPDATE: &str = "\
fsatomic update PATH [--mode OCTAL] [--init JSON] [--mkdir] -- CMD [ARG...]

Under the writers' lock of PATH, run CMD with the current document (indented,
ending with a newline) on its stdin; if CMD exits 0 and prints one JSON
value, commit it (indented). Otherwise PATH is left untouched and update
fails with CMD's own exit status, or with 1 if CMD's output is not JSON.

  --init JSON   the document CMD gets when PATH does not exist
                (default: null)
  --mode OCTAL  permissions of the file, exactly (default 0600)
  --mkdir       create the missing directories of PATH (mode 0755)

A corrupt PATH fails with exit 4 before CMD runs.

  fsatomic update /var/lib/nos/counter.json --init 0 -- sh -c 'read n; echo $((n+1))'
";

const LOCK: &str = "\
fsatomic lock PATH -- CMD [ARG...]

Run CMD holding the writers' lock of PATH (the file PATH.lock, locked with
flock), like flock(1); exit with CMD's status. CMD inherits the lock: it
stays held until CMD ends, even if fsatomic is killed.

Do not save or update PATH from inside CMD: they wait for the same lock,
forever. Use update for read-modify-write; load takes no lock and works.

  fsatomic lock /var/lib/nos/shares.json -- /usr/sbin/apply-shares
";

const CHECK: &str = "\
fsatomic check PATH|DIR [--repair]

Report the filesystem, then one line per state file: 'ok', 'absent', or
'corrupt at byte N: reason'; then every orphaned temporary file
(.NAME.<16 hex digits>.tmp, left by a commit cut short); then a summary.
For a DIR, the state files are every *.json file and every name with an
orphan. Without --repair, check takes no lock and changes nothing.

  --repair  remove orphaned temporary files, each name under its own
            lock; nothing else is ever removed or repaired

Exit 0 if every file is ok or absent, 4 if any is corrupt, 1 if any could
not be read or repaired.

  fsatomic check /var/lib/nos --repair   # at boot
";

/// The help text of `command` (`""` for the tool), if there is one.
pub fn text(command: &str) -> Option<&'static str> {
    Some(match command {
        "" => GLOBAL,
        "save" => SAVE,
        "load" => LOAD,
        "update" => UPDATE,
        "lock" => LOCK,
        "check" => CHECK,
        _ => return None,
    })
}

/// Print the help of `command` (`""` for the tool) on stdout.
pub fn print(command: &str) -> Result<(), Failure> {
    let text = text(command).unwrap_or(GLOBAL);
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::error(format!("writing the help failed: {e}")))
}
