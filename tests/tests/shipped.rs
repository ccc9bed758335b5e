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

use std::time::Instant;

use fsatomic_testkit::explorer::{Explorer, Plain, Report, Scenario, Wrap, matrix};
use fsatomic_testkit::mutate::Mutation;
use fsatomic_testkit::profile::Profile;
use fsatomic_testkit::protocol::Protocol;
use fsatomic_testkit::shipped::{Group, stores};

fn explorer(profile: Profile, granularity: u64) -> Explorer {
    Explorer::budgeted(profile, granularity)
}

/// Explore `protocol` with the standard scenario over the profiles `keep`
/// accepts, wrapped by `wrap`; print the table and return it.
fn sweep<P: Protocol, W: Wrap>(
    protocol: &P,
    wrap: &W,
    keep: impl Fn(Profile) -> bool,
) -> Vec<Report> {
    let start = Instant::now();
    let scenario = Scenario::standard();
    let mut out = Vec::new();
    let mut lines = vec![Report::header()];
    for (p, g) in matrix().into_iter().filter(|(p, _)| keep(*p)) {
        let t = Instant::now();
        let r = explorer(p, g).explore_wrapped(protocol, &scenario, wrap);
        lines.push(format!("{} {:>8.1?}", r.row(), t.elapsed()));
        out.push(r);
    }
    let total: u64 = out.iter().map(Report::total_states).sum();
    let violations: u64 = out.iter().map(|r| r.violations).sum();
    lines.push(format!(
        "{} [{}]: {total} crash states, {violations} violations in {:.1?} ({} build)",
        protocol.name(),
        wrap.label(),
        start.elapsed(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    ));
    // One print, so that parallel tests do not interleave their tables.
    println!("{}", lines.join("\n"));
    out
}

/// The scenario holds on every atomic-rename profile, and the explorer
/// catches the same code running over a filesystem that skips file
/// flushes (under `posix-worst`, which punishes every missing flush, at
/// every granularity; the other profiles would only slow the run).
fn holds_and_mutant_is_caught<P: Protocol>(protocol: &P) {
    for r in sweep(protocol, &Plain, Profile::atomic_replace) {
        r.assert_clean();
        assert!(r.crash_points > 0, "nothing explored:\n{r}");
    }
    let worst = |p: Profile| p == Profile::PosixWorst;
    for r in sweep(protocol, &Mutation::SkipFileFlush, worst) {
        assert!(
            r.violations > 0,
            "{}: skipping the file flushes went unnoticed:\n{r}",
            protocol.name()
        );
    }
}

#[test]
fn group_commit_batch_path_holds() {
    holds_and_mutant_is_caught(&Group::default());
}

#[test]
fn group_commit_pipeline_holds() {
    holds_and_mutant_is_caught(&Group {
        pipelined: true,
        ..Group::default()
    });
}

#[test]
fn nas_users_holds() {
    holds_and_mutant_is_caught(&stores::users());
}

#[test]
fn nas_firstboot_holds() {
    holds_and_mutant_is_caught(&stores::firstboot());
}

#[test]
fn nas_updates_index_holds() {
    holds_and_mutant_is_caught(&stores::updates());
}

#[test]
fn nas_shares_holds() {
    holds_and_mutant_is_caught(&stores::shares());
}

#[test]
fn nas_sessions_holds() {
    holds_and_mutant_is_caught(&stores::sessions());
}

#[test]
fn nas_ratelimit_holds() {
    holds_and_mutant_is_caught(&stores::ratelimit());
}

#[test]
fn nas_snapdb_holds() {
    holds_and_mutant_is_caught(&stores::snapdb());
}
