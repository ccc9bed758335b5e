//! The `ops_powercuts` fuzz driver, run over seeded random inputs, so that
//! `cargo test` exercises it deterministically (the fuzz target explores
//! further: `fuzz/run.sh`).

use fsatomic_testkit::mutate::Mutation;
use fsatomic_testkit::powercut::{self, Outcome};
use fsatomic_testkit::rng::SplitMix64;

fn inputs(seed: u64, n: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(move |_| {
        let len = 8 + rng.below(120) as usize;
        (0..len).map(|_| rng.next_u64() as u8).collect()
    })
}

#[test]
fn random_sequences_with_several_power_cuts_match_the_model() {
    let n = if cfg!(debug_assertions) { 150 } else { 1500 };
    let mut total = Outcome::default();
    let mut several = 0;
    for (i, input) in inputs(0xc0ffee, n).enumerate() {
        let out = powercut::run(&input).unwrap_or_else(|e| panic!("input #{i} {input:02x?}:\n{e}"));
        total.ops += out.ops;
        total.commits += out.commits;
        total.cuts += out.cuts;
        total.cuts_in_commit += out.cuts_in_commit;
        total.cuts_in_recovery += out.cuts_in_recovery;
        several += usize::from(out.cuts >= 3);
    }
    println!("{n} inputs: {total:?}; {several} with three or more cuts");
    // The driver must really cut power, inside commits and recoveries, and
    // many times per input.
    assert!(total.cuts_in_commit > n as u32 / 4, "{total:?}");
    assert!(total.cuts_in_recovery > 0, "{total:?}");
    assert!(several > n / 4, "{several}");
    assert!(total.commits > n as u32, "{total:?}");
}

#[test]
fn the_driver_notices_a_filesystem_that_skips_flushes() {
    for m in [Mutation::SkipFileFlush, Mutation::SkipDirFlush] {
        let caught = inputs(7, 200)
            .filter(|input| powercut::run_wrapped(input, &m).is_err())
            .count();
        println!("{m}: {caught} of 200 inputs caught it");
        assert!(caught > 0, "{m} went unnoticed");
    }
}
