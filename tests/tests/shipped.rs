//! The crash explorer over the shipped code above the core's stores:
//! group commit's batch path (`fsatomic::group::GroupJournal`, and its
//! `Pipeline` with a batch written before the previous one is flushed) and each of
//! the seven NAS stores (`fsatomic_linux::nas`), run over the simulator
//! through the calls the daemon makes, on every profile whose rename is
//! crash-atomic (the stores' own protocol choice puts FAT on Slots,
//! explored in `explore.rs`), at every granularity, against the one
//! oracle. Then the same scenarios under a mutant that skips the file
//! flushes: each must be caught.
//!
//! Writing these found that `GroupJournal::compact` did not grow its
//! buffer as `append` does: a daemon's compaction failed once the state
//! outgrew the buffer sized at open (the snapshot database, without any
//! power cut; the sessions after recovery).
//!
//! Budget as in `explore.rs`: `FSATOMIC_BOUND`, `FSATOMIC_SAMPLES` and
//! `FSATOMIC_SEED` override it.

use fsatomic_testkit::explorer::{Plain, Scenario, sweep};
use fsatomic_testkit::mutate::Mutation;
use fsatomic_testkit::profile::Profile;
use fsatomic_testkit::protocol::Protocol;
use fsatomic_testkit::shipped::{Group, stores};

/// The scenario holds on every atomic-rename profile, and the explorer
/// catches the same code running over a filesystem that skips file
/// flushes (under `posix-worst`, which punishes every missing flush, at
/// every granularity; the other profiles would only slow the run).
fn holds_and_mutant_is_caught<P: Protocol>(protocol: &P) {
    let scenario = Scenario::standard();
    for r in sweep(protocol, &scenario, &Plain, Profile::atomic_replace) {
        r.assert_clean();
        assert!(r.crash_points > 0, "nothing explored:\n{r}");
    }
    let worst = |p: Profile| p == Profile::PosixWorst;
    for r in sweep(protocol, &scenario, &Mutation::SkipFileFlush, worst) {
        assert!(
            r.violations > 0,
            "{}: skipping the file flushes went unnoticed:\n{r}",
            protocol.name()
        );
    }
}

/// One test per shipped path: `name: protocol;`.
macro_rules! holds {
    ($($name:ident: $protocol:expr;)*) => {$(
        #[test]
        fn $name() {
            holds_and_mutant_is_caught(&$protocol);
        }
    )*};
}

holds! {
    group_commit_batch_path_holds: Group::default();
    group_commit_pipeline_holds: Group { pipelined: true, ..Group::default() };
    nas_users_holds: stores::users();
    nas_firstboot_holds: stores::firstboot();
    nas_updates_index_holds: stores::updates();
    nas_shares_holds: stores::shares();
    nas_sessions_holds: stores::sessions();
    nas_ratelimit_holds: stores::ratelimit();
    nas_snapdb_holds: stores::snapdb();
}
