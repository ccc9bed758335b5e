//! `--help` texts: one for the tool, one per command. `docs/cli.md` is the
//! long form.

use std::io::Write;

use super::failure::Failure;

const GLOBAL: &str = "\
fsatomic - crash-safe JSON state files

Usage:
  fsatomic save PATH [--mode OCTAL] [--owner U] [--group G] [--preserve] [--mkdir]
                [--protocol P] [--timeout S | -n]
                [--keep-previous] [--tentative [--until T]]       < JSON
  fsatomic load PATH [--previous]                               > JSON
  fsatomic update PATH [--init JSON] [save's options] -- CMD [ARG...]
  fsatomic append PATH [save's options]                         < JSON
  fsatomic confirm PATH [--keep-previous] | rollback PATH
  fsatomic lock PATH [--timeout S | -n] -- CMD [ARG...]
  fsatomic check PATH|DIR [--repair] [--json] [--now SECONDS]
  fsatomic demo [DIR]
  fsatomic --help | COMMAND --help | --version

A save replaces the document whole: a power cut leaves the old content or
the new one, never a torn, empty or missing file; once save returns 0 the
new content survives a power cut. append adds one value to an array with
one flush. Writers of one file take its lock (PATH.lock) and never lose
each other's update; load takes no lock.

Protocols (check shows which one each state uses):
  replace  PATH, replaced whole (temporary file, flush, rename, flush dir)
  journal  PATH.journal (+ the snapshot PATH): arrays made by append
  slots    PATH.a and PATH.b, overwritten in place: the default on FAT
           (vfat, exfat), where a rename is not crash-atomic
A state keeps the protocol it was created with; --protocol picks one for a
new state and is refused if it contradicts the files on disk.

History: save --keep-previous keeps the replaced version (PATH.prev) for
load --previous (slots and journals keep theirs anyway). save --tentative
commits a version that is current at once but rolled back at the next boot
(check --repair) unless 'fsatomic confirm PATH' runs first.

Exit codes:
  0  success
  1  I/O or other failure (also: invalid JSON on stdin or from CMD;
     save to a journaled array; append to a document that is not an array)
  2  usage: unknown command or option, refused file name, a --protocol
     that contradicts the files on disk
  3  load: the file does not exist (--previous: there is no previous
     version); confirm, rollback: no tentative version waits
  4  the file is corrupt (left untouched)
  8  the writers' lock stayed held past --timeout (at once with -n);
     nothing was run or written
  N  update, lock: CMD's own exit status when CMD fails

Run 'fsatomic COMMAND --help' for one command. See docs/cli.md.
";

const SAVE: &str = "\
fsatomic save PATH [--mode OCTAL] [--owner U] [--group G] [--preserve] [--mkdir]
              [--protocol P] [--timeout S | -n] [--keep-previous]
              [--tentative [--until T]]

Read one JSON value (object, array, string, number, true, false or null)
from stdin, check it, indent it (2 spaces, trailing newline) and commit it
to PATH durably, under the writers' lock of PATH. Silent on success.

  --mode OCTAL  permissions of the file, exactly, whatever the umask
                (default 0600)
  --owner U     give the files (and the lock file) to user U (name or
                number); only root may give them to another user
  --group G     give them to group G (name or number)
  --preserve    keep the existing file's owner, group and mode (never its
                set-user-id, set-group-id or sticky bits); a new file gets
                --mode and the caller's ids; --owner/--group win over it
  --mkdir       create the missing directories of PATH (mode 0755), each
                reported on stderr
  --protocol P  for a new state: replace or slots (default auto: replace,
                or slots where renaming is not crash-atomic, as on FAT).
                An existing state keeps its protocol; a --protocol that
                contradicts its files is refused (exit 2)
  --timeout S   wait at most S seconds (fractions allowed) for the writers'
                lock, then give up with exit 8, writing nothing (default:
                wait as long as another writer holds it)
  -n            do not wait for the lock at all (exit 8 if it is held)
  --keep-previous  keep the version this save replaces as PATH.prev, for
                load --previous (one hard link and one rename more; no
                flush more on ext4, xfs, btrfs, f2fs). Once kept, every
                later commit of PATH keeps it
  --tentative   commit-confirmed: the new version is current at once (as
                PATH.tentative), and the next boot's check --repair rolls
                it back to the confirmed one unless 'fsatomic confirm
                PATH' ran first ('fsatomic rollback PATH' drops it now).
                Replace only; while it waits, save and update are refused
  --until T     with --tentative: a deadline, T in seconds on a clock that
                survives reboots; check --repair --now N leaves the
                tentative version waiting while N < T

A journaled array (PATH.journal exists) is refused (exit 1): add to it with
append. Empty or invalid input is refused (exit 1, with the byte offset of the
error) and nothing on disk is touched.

  echo '{\"done\":true}' | fsatomic save /var/lib/nos/state/firstboot.json
  fsatomic save /etc/nos/network.json --tentative < new.json && reboot
  fsatomic confirm /etc/nos/network.json   # after the reboot, if it answers
";

const LOAD: &str = "\
fsatomic load PATH [--previous]

Print the document in PATH: exactly the bytes on disk (replace, slots), or,
for a journaled array, the whole array (the snapshot's elements, then
every record), indented. Takes no lock, removes nothing, repairs nothing; a
torn record at the end of a journal (an append cut short) is ignored. A
tentative version (save --tentative) is the current one until rolled back.

  --previous  print the version before the current one instead: the other
              slot (slots), the array before its last append (journal),
              PATH.prev (replace, kept by save --keep-previous), or the
              confirmed version while a tentative one waits. Exit 3 if
              there is none

Exit 3 if PATH does not exist (a missing directory is exit 1: it may be an
unmounted disk); exit 4 if it is corrupt (empty, cut short, not JSON, a
bad checksum): the message gives the file and the byte offset, and the
file is left untouched.

  if users=$(fsatomic load /etc/nos/users.json); then ...
";

const UPDATE: &str = "\
fsatomic update PATH [--mode OCTAL] [--init JSON] [--owner U] [--group G] [--preserve]
                [--mkdir] [--protocol P] [--timeout S | -n] -- CMD [ARG...]

Under the writers' lock of PATH, run CMD with the current document (indented,
ending with a newline) on its stdin; if CMD exits 0 and prints one JSON
value, commit it (indented). Otherwise PATH is left untouched and update
fails with CMD's own exit status, or with 1 if CMD's output is not JSON.

  --init JSON   the document CMD gets when PATH does not exist
                (default: null)
  --mode OCTAL  permissions of the file, exactly (default 0600)
  --mkdir       create the missing directories of PATH (mode 0755)
  --protocol P  for a new state: replace or slots (default auto), as save
  --owner U, --group G, --preserve   who owns the files, as save
  --keep-previous  keep the replaced version for load --previous, as save
  --timeout S   wait at most S seconds for the lock, else exit 8 before CMD
                runs; -n: do not wait at all

A corrupt PATH fails with exit 4 before CMD runs; a journaled array is
refused (exit 1) before CMD runs.

  fsatomic update /var/lib/nos/counter.json --init 0 -- sh -c 'read n; echo $((n+1))'
";

const APPEND: &str = "\
fsatomic append PATH [--mode OCTAL] [--owner U] [--group G] [--preserve] [--mkdir]
                [--protocol P] [--timeout S | -n]

Read one JSON value from stdin and add it at the end of the JSON array in
PATH, durably, under the writers' lock of PATH. Silent on success.

Where renaming is crash-atomic the array is a journal: PATH.journal gets
one record and one flush per append, whatever the array's length, and is
folded into the snapshot PATH when it outgrows 64 KiB and the snapshot.
On FAT (or for a state kept in slots) the whole array is rewritten with
slots. A plain array file (from save, or another program) is converted to
a journal once, with a note on stderr; a document that is not an array is
refused (exit 1). load prints the whole array.

  --mode OCTAL  permissions of the files append creates (default: those
                of the existing state, else 0600)
  --mkdir       create the missing directories of PATH (mode 0755)
  --protocol P  for a new array: journal or slots (default auto: journal,
                or slots where renaming is not crash-atomic)
  --owner U, --group G, --preserve   who owns the files, as save
  --timeout S   wait at most S seconds for the lock, else exit 8, writing
                nothing; -n: do not wait at all

  echo '{\"at\":1700000000,\"event\":\"login\"}' | fsatomic append /var/lib/nos/events.json
";

const LOCK: &str = "\
fsatomic lock PATH [--timeout S | -n] -- CMD [ARG...]

Run CMD holding the writers' lock of PATH (the file PATH.lock, locked with
flock), like flock(1); exit with CMD's status. CMD inherits the lock: it
stays held until CMD ends, even if fsatomic is killed.

  --timeout S   wait at most S seconds (fractions allowed) for the lock,
                else exit 8 without running CMD (flock -w)
  -n            do not wait: exit 8 at once if the lock is held (flock -n)

Do not save or update PATH from inside CMD: they wait for the same lock,
forever (or until --timeout). Use update for read-modify-write; load takes no
lock and works.

  fsatomic lock /var/lib/nos/shares.json -- /usr/sbin/apply-shares
";

const CONFIRM: &str = "\
fsatomic confirm PATH [--keep-previous] [--timeout S | -n]
fsatomic rollback PATH [--timeout S | -n]

End the tentative version of PATH that 'save --tentative' committed.
confirm makes it the confirmed version (one rename, one flush), keeping the
version it replaces as PATH.prev if --keep-previous is given or PATH.prev
exists; rollback drops it (one remove, one flush), so that the confirmed
version is current again, as the next boot's 'check --repair' would. A
power cut during either leaves the tentative version or the result.

Exit 3 if no tentative version waits (already confirmed, or rolled back);
exit 8 if the writers' lock stays held past --timeout.

  fsatomic save /etc/nos/network.json --tentative < new.json && reboot
  # after the reboot, from the new network:
  fsatomic confirm /etc/nos/network.json
";

const CHECK: &str = "\
fsatomic check PATH|DIR [--repair] [--json] [--now SECONDS]

Report the filesystem and the protocol new states get there, the mount,
its options and the device's write cache (warning of options that weaken
a flush, such as nobarrier), then one line per state: 'ok (PROTOCOL, ...)', 'absent', or 'corrupt at byte N:
reason (PROTOCOL: FILE)'; then every orphaned temporary file
(.NAME.<16 hex digits>.tmp, left by a commit cut short); then a summary.
For a DIR, the states are every *.json file, every *.json.journal and
*.json.a/.b (journal and slots states), and every name with an orphan.
Without --repair, check takes no lock and changes nothing.

  --repair  under each state's lock: remove orphaned temporary files,
            cut a journal's torn tail (an append cut short), finish a
            commit that keeps the previous version, and roll back a
            tentative version nobody confirmed (run it at boot); nothing
            else is ever removed or repaired
  --now N   with --repair: the time on the clock of tentative versions'
            deadlines (save --until); one whose deadline is later waits
  --json    instead, one JSON object per state (the durability receipt:
            protocol and why, mount, write cache, flushes per commit,
            generation or sequence, previous version, pending tentative
            version, orphans); the
            fields are listed in docs/cli.md

Exit 0 if every file is ok or absent, 4 if any is corrupt, 1 if any could
not be read or repaired.

  fsatomic check /var/lib/nos --repair   # at boot
";

const DEMO: &str = "\
fsatomic demo [DIR]

Open the NAS daemon's seven stores under DIR (default ./nas-state; the
shares file at $NOS_SHARES_PATH if set), commit to each one for real (users,
first boot, sessions, rate limit, updates index, snapshot database,
shares), and print a table: store, file, protocol, mode, the flushes of
its last commit (counted, not assumed) and its last value. Running it
again keeps the documents (users are added once) and appends more records
to the journals.

  cargo run --release -p fsatomic-linux -- demo
";

/// The help text of `command` (`""` for the tool), if there is one.
pub fn text(command: &str) -> Option<&'static str> {
    Some(match command {
        "" => GLOBAL,
        "save" => SAVE,
        "load" => LOAD,
        "update" => UPDATE,
        "append" => APPEND,
        "lock" => LOCK,
        "confirm" | "rollback" => CONFIRM,
        "check" => CHECK,
        "demo" => DEMO,
        _ => return None,
    })
}

/// Print the help of `command` (`""` for the tool) on stdout.
pub fn print(command: &str) -> Result<(), Failure> {
    let text = text(command).unwrap_or(GLOBAL);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| super::failure::stdout_failure(&e))
}
