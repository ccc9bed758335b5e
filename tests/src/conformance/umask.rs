//! Modes under a hostile umask. The umask is process-wide, so each umask
//! runs in a child process of its own (`sh -c 'umask U && exec TEST'`), and
//! this process never changes its own.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use fsatomic::{Dir, Mode, Store, replace};

use super::{
    Adapter, Counter, Fixture, bump, child_done, child_role, finish_child, mode_of, save_at,
    spawn_child,
};

/// This area's checks, in order: [`conformance_tests!`](crate::conformance_tests)
/// makes one test of each. A check not listed here never runs.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_umask {
    ($($then:ident)::+ ! ($($args:tt)*)) => {
        $($then)::+! { $($args)* [
            modes_are_exact_whatever_the_umask,
        ] }
    };
}

/// The umasks tried: none at all (a file would be world-writable if the
/// library relied on `open`'s mode plus the umask being sane) and the
/// strictest usual one (a `0644` file would come out `0600`).
pub const UMASKS: [u32; 2] = [0o000, 0o077];

/// Under umask 000 and 077, every file the library makes has exactly the
/// mode asked: Store files (0600, 0644, 0640), lock files, exclusive
/// creates, `create_all` directories; and a stale 0666 temporary file is
/// never reused, the committed file ending 0600.
pub fn modes_are_exact_whatever_the_umask<A: Adapter>(test: &str) {
    if let Some((role, fx)) = child_role(test) {
        let umask = u32::from_str_radix(&role, 8).expect("umask role");
        check_modes::<A>(&fx, umask);
        child_done(&fx, &role, "ok");
        return;
    }
    for umask in UMASKS {
        let fx = Fixture::new::<A>(test);
        // The child writes in the tree; let it, whatever its umask.
        let role = format!("{umask:03o}");
        let child = spawn_child(test, &role, &fx, Some(&role));
        finish_child(child, &role, &fx);
    }
}

fn check_modes<A: Adapter>(fx: &Fixture, umask: u32) {
    // The umask really is in force in this process.
    let probe = fx.root().join("probe");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&probe)
        .expect("probe");
    assert_eq!(
        fs::metadata(&probe).expect("stat").permissions().mode() & 0o777,
        0o666 & !umask,
        "the child does not run under umask {umask:03o}"
    );

    let mut dir = fx.open::<A>();
    for (name, bits) in [
        ("private.json", 0o600),
        ("public.json", 0o644),
        ("group.json", 0o640),
    ] {
        let mode = Mode::new(bits).expect("mode");
        let store: Store<Counter> = Store::new(name, mode);
        save_at(&store, &mut dir, 1);
        assert_eq!(fx.mode(name), bits, "{name} after save");
        bump(&store, &mut dir);
        assert_eq!(fx.mode(name), bits, "{name} after update");
        let lock = format!("{name}.lock");
        assert_eq!(fx.mode(&lock), mode.lock_mode().bits(), "{lock}");
    }
    replace::commit(
        &mut dir,
        "wide.json",
        b"{}\n",
        Mode::new(0o666).expect("mode"),
    )
    .expect("commit");
    assert_eq!(fx.mode("wide.json"), 0o666);
    drop(
        dir.create_new("created", Mode::new(0o604).expect("mode"))
            .expect("create_new"),
    );
    assert_eq!(fx.mode("created"), 0o604);
    let (_, made) = A::create_all(&fx.dir.join("new/sub"), Mode::new(0o751).expect("mode"))
        .expect("create_all");
    assert_eq!(made.len(), 2);
    for d in &made {
        assert_eq!(mode_of(d), 0o751, "{}", d.display());
    }
    // A stale temp file with mode 0666, as a crash of the Go package's
    // writer would leave it, is never reused; the commit's file is 0600.
    super::security::stale_world_readable_temp_is_never_reused::<A>(&format!("umask-{umask:03o}"));
}
