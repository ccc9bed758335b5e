//! Slots on raw NOR flash under the NOR crash model: every erase and
//! program of the standard scenario cut, with 64 crash states each (what
//! the cut leaves: units erased or not, a prefix programmed, the unit in
//! flight partly programmed and reading unstably), at write units of 1, 4
//! and 16 bytes; 0 violations. Each mutant of the commit's order is
//! caught — except header-first, which the CRC makes harmless (asserted,
//! so that it is known, not assumed).

use fsatomic_testkit::explorer::Scenario;
use fsatomic_testkit::nor::{NorMutant, NorReport, explore};
use fsatomic_testkit::oracle;

const SEEDS: u64 = 64;

/// Twelve values of 300 to 700 bytes: records appended to a 4 KiB region
/// until it is full, then the other region erased and started — twice.
fn scenario() -> Scenario {
    Scenario::new(
        "nor: appends and region switches",
        (1..=12)
            .map(|n| oracle::value(n, 300 + (n as usize * 97) % 400))
            .collect(),
    )
}

fn all(mutant: NorMutant) -> Vec<NorReport> {
    let s = scenario();
    vec![
        explore::<1>(&s, mutant, SEEDS),
        explore::<4>(&s, mutant, SEEDS),
        explore::<16>(&s, mutant, SEEDS),
    ]
}

#[test]
fn slots_on_nor_hold_at_every_cut_and_unit() {
    println!("protocol   unit  mutant                 points   states  violations");
    for r in all(NorMutant::Plain) {
        println!("{}", r.row());
        assert_eq!(r.violations, 0, "{r:#?}");
        assert!(r.points >= 12, "every commit erases and programs: {r:#?}");
    }
}

#[test]
fn the_nor_mutants_are_caught_but_header_first() {
    for m in NorMutant::ALL {
        for r in all(m) {
            println!("{}", r.row());
            if let Some(e) = r.examples.first() {
                println!("  {e}");
            }
            if m == NorMutant::HeaderFirst {
                // The CRC covers the payload: a header programmed first
                // still fails it until the payload is whole.
                assert_eq!(r.violations, 0, "{r:#?}");
            } else {
                assert!(r.violations > 0, "{} went unnoticed: {r:#?}", m.name());
            }
        }
    }
}

#[test]
fn wear_per_commit_of_a_200_byte_document() {
    use fsatomic::nor::NorSlots;
    use fsatomic::nor::ram::RamNor;
    // The figures of docs/performance.md: the document plus a 32-byte
    // header programmed per commit, and one erase of a 4 KiB sector each
    // time a region is full: every 17 commits of 232 bytes.
    let doc = fsatomic_testkit::oracle::value(7, 200);
    let mut slots = NorSlots::new(RamNor::<8192, 4, 4096>::default(), 0, 4096).unwrap();
    for _ in 0..170 {
        slots.commit(&doc).unwrap();
    }
    let (erases, bytes) = slots.flash().wear();
    println!(
        "nor-slots: 170 commits of 200 B: {erases} sector erases ({:.3} per commit), {bytes} bytes programmed",
        f64::from(erases) / 170.0
    );
    assert_eq!(erases, 10);
    assert_eq!(bytes, 170 * (200 + 32));
}
