//! The mutation check: a crash suite that stays green while its filesystem
//! skips a flush, or reorders a rename before a flush, is broken. Under
//! each mutation the explorer must report a violation of the Replace
//! protocol under `posix-worst`, at every granularity; and the same
//! explorer without the mutation must report none (so it is the mutation
//! that is caught, not noise).

use fsatomic_testkit::explorer::{Explorer, Plain, Report, Scenario};
use fsatomic_testkit::mutate::Mutation;
use fsatomic_testkit::profile::Profile;
use fsatomic_testkit::protocol::{
    ArrayAppend, Converting, Journal, Protocol, Tentative, Via, Whole,
};

fn explorer(profile: Profile, g: u64) -> Explorer {
    // Mutations are caught within a few states; keep debug runs short.
    Explorer::new(profile, g).samples(64)
}

#[test]
fn every_mutation_is_caught_under_posix_worst_at_every_granularity() {
    println!("{}", Report::header());
    let (replace, standard) = (Whole::replace(), Scenario::standard());
    for g in [1, 512, 4096] {
        let clean = explorer(Profile::PosixWorst, g).explore_wrapped(&replace, &standard, &Plain);
        println!("{}", clean.row());
        clean.assert_clean();
        for m in Mutation::ALL {
            let r = explorer(Profile::PosixWorst, g).explore_wrapped(&replace, &standard, &m);
            println!("{}  <- {m}", r.row());
            assert!(r.violations > 0, "{m} at {g} B went unnoticed:\n{r}");
            let first = &r.examples[0];
            println!("{first}");
            match m {
                // The renamed file's data never became durable: the file
                // reads as torn or empty.
                Mutation::SkipFileFlush | Mutation::RenameBeforeFlush => assert!(
                    r.by_kind.contains_key("corrupt") || r.by_kind.contains_key("torn"),
                    "{m}: {r}"
                ),
                // The rename never became durable: an acknowledged value is
                // lost.
                Mutation::SkipDirFlush => assert!(
                    r.by_kind.contains_key("stale") || r.by_kind.contains_key("absent"),
                    "{m}: {r}"
                ),
                _ => {}
            }
        }
    }
}

#[test]
fn which_profiles_catch_which_mutation() {
    // Not every filesystem punishes every mistake: ext4 (auto_da_alloc)
    // and jffs2 (one ordered log) hide a missing file flush before a
    // rename over an existing file, but not before the first create. The
    // table is printed for docs/crash-testing.md; the assertions pin the
    // cases the model must get right.
    println!("{:<22} profile: violations", "mutation");
    for m in Mutation::ALL {
        let mut line = format!("{:<22}", m.to_string());
        for p in Profile::ALL {
            let r = explorer(p, 512).explore_wrapped(&Whole::replace(), &Scenario::standard(), &m);
            line.push_str(&format!(" {p}: {}", r.violations));
            if p == Profile::PosixWorst || p == Profile::Fat {
                assert!(r.violations > 0, "{m} on {p}");
            }
            if m == Mutation::SkipDirFlush {
                assert!(r.violations > 0, "{m} on {p}: the rename is not durable");
            }
        }
        println!("{line}");
    }
}

/// Explore `protocol` with `scenario` under each of `mutants` on
/// posix-worst at 512 B; print the rows and add each mutant nothing
/// killed to `missed`.
fn mutant_rows<P: Protocol>(
    protocol: &P,
    scenario: &Scenario,
    mutants: &[Mutation],
    missed: &mut Vec<String>,
) {
    for &m in mutants {
        let r = explorer(Profile::PosixWorst, 512).explore_wrapped(protocol, scenario, &m);
        println!(
            "{:<16} {:<22} {:>8} {:>10}",
            protocol.name(),
            m.to_string(),
            r.violations,
            r.total_states()
        );
        if r.total_states() == 0
            && let Some(v) = r.examples.first()
        {
            // Caught before any power cut: the mutant breaks the path outright.
            println!("  (without a power cut: {})", v.message);
        }
        if r.violations == 0 {
            missed.push(format!("{} under {m}", protocol.name()));
        }
    }
}

/// The mutant table of `docs/crash-testing.md`: every flush and every
/// ordering constraint of every shipped path, removed or reversed one at
/// a time, must make the explorer fail. A mutant nothing kills is a hole
/// in the proof.
#[test]
fn every_shipped_path_fails_under_each_of_its_mutants() {
    use Mutation::*;
    let standard = Scenario::standard();
    println!(
        "{:<16} {:<22} {:>8} {:>10}",
        "path", "mutant", "violations", "states"
    );
    let mut missed = Vec::new();
    // The flushes and the order of a rename, and those of keeping the
    // replaced version.
    let rename = [SkipTempFlush, SkipDirFlush, RenameBeforeFlush];
    let link = [SkipLinkFlush, SkipPromoteFlush, LinkAfterRename];
    let kept = [&rename[..], &link].concat();
    for whole in [Whole::replace(), Whole::replace().via(Via::Update)] {
        let mutants = [&[SkipFileFlush][..], &rename].concat();
        mutant_rows(&whole, &standard, &mutants, &mut missed);
    }
    let keep = Whole::replace().keeping_previous();
    for whole in [keep, keep.via(Via::Update)] {
        mutant_rows(&whole, &standard, &kept, &mut missed);
    }
    let tentative = [&kept[..], &[SkipRollback]].concat();
    mutant_rows(&Tentative::default(), &standard, &tentative, &mut missed);
    mutant_rows(&Tentative::until(), &standard, &rename, &mut missed);
    for whole in [Whole::slots(), Whole::slots().via(Via::Update)] {
        let mutants = [SkipFileFlush, SkipSlotFlush];
        mutant_rows(&whole, &standard, &mutants, &mut missed);
    }
    for journal in [Journal::default(), Journal::default().batched()] {
        let mutants = [
            &[SkipFileFlush, SkipJournalFlush][..],
            &rename,
            &[ResetBeforeSnapshot],
        ]
        .concat();
        mutant_rows(&journal, &standard, &mutants, &mut missed);
    }
    let append = [&[SkipJournalFlush][..], &rename, &[ResetBeforeSnapshot]].concat();
    let array = ArrayAppend::scenario();
    mutant_rows(&ArrayAppend::default(), &array, &append, &mut missed);
    let moving = [&[SkipSlotFlush][..], &rename].concat();
    mutant_rows(&Converting::default(), &standard, &moving, &mut missed);
    assert!(missed.is_empty(), "mutants nothing killed: {missed:?}");
}
