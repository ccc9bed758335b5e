//! Random operation sequences over the crash-model filesystem with several
//! power cuts per input (inside commits and inside recovery), Replace,
//! Journal and Slots side by side, checked against a `HashMap` model of the
//! acknowledged values: `fsatomic_testkit::powercut`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fsatomic_testkit::powercut::run(data) {
        panic!("{e}");
    }
});
