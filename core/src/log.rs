//! One logging shim: with the `log` feature, state transitions go to the
//! `log` crate at trace level; without it, they compile to nothing.

#[cfg(feature = "log")]
macro_rules! trace {
    ($($arg:tt)*) => { ::log::trace!($($arg)*) };
}

#[cfg(not(feature = "log"))]
macro_rules! trace {
    ($($arg:tt)*) => {{
        if false {
            let _ = ::core::format_args!($($arg)*);
        }
    }};
}

pub(crate) use trace;
