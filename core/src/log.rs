//! One logging shim: with the `log` feature, state transitions go to the
//! `log` crate at trace level; with `defmt`, to `defmt` (the strings as
//! strings, the states through their `Display`); without either, they
//! compile to nothing.

use core::fmt::Display;

/// Log one state transition of a machine of `kind` on `file`.
#[allow(unused_variables)]
pub(crate) fn transition(kind: &str, file: &str, old: &dyn Display, new: &dyn Display) {
    #[cfg(feature = "log")]
    ::log::trace!("{kind} {file}: {old} => {new}");
    #[cfg(feature = "defmt")]
    ::defmt::trace!(
        "{=str} {=str}: {} => {}",
        kind,
        file,
        ::defmt::Display2Format(old),
        ::defmt::Display2Format(new)
    );
}
