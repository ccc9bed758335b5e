//! The flush barriers the Linux adapter itself counts (`flush_count`), as
//! opposed to the trait calls the testkit's `Counting` wrapper sees: two per
//! Replace commit, one per Slots commit once set up, none for a load.
#![cfg(unix)]

use fsatomic::{Mode, Protocol, Store};
use fsatomic_testkit::conformance::{BUF, Counter, Fixture};

mod common;

#[test]
fn the_adapter_counts_two_flushes_per_replace_and_one_per_slot_commit() {
    let fx = Fixture::new::<common::Linux>("flushes");
    let mut dir = fsatomic_linux::LinuxDir::open(&fx.dir).expect("open");
    let mut buf = [0u8; BUF];
    let replace: Store<Counter> = Store::new("replace.json", Mode::PRIVATE);
    let start = dir.flush_count();
    for i in 1..=10 {
        replace
            .save(&mut dir, &mut buf, &Counter::at(i))
            .expect("save");
        assert_eq!(
            dir.flush_count() - start,
            2 * i,
            "after {i} Replace commits"
        );
    }
    let before = dir.flush_count();
    for _ in 0..10 {
        replace.load(&mut dir, &mut buf).expect("load");
    }
    assert_eq!(dir.flush_count(), before, "a load flushed");
    let slots: Store<Counter> =
        Store::new("slots.json", Mode::PRIVATE).with_protocol(Protocol::Slots);
    slots
        .save(&mut dir, &mut buf, &Counter::at(0))
        .expect("first save");
    let before = dir.flush_count();
    for i in 1..=10 {
        slots
            .save(&mut dir, &mut buf, &Counter::at(i))
            .expect("save");
        assert_eq!(dir.flush_count() - before, i, "after {i} Slots commits");
    }
}
