//! Stack high-water marks by painting: fill the free stack below the
//! current stack pointer with a pattern, run the code, and find the lowest
//! word that no longer holds the pattern.
//!
//! # Safety
//!
//! This is the firmware's only `unsafe` code. It writes and reads, with
//! volatile accesses, the words between the end of `.bss`/`.uninit`
//! (`__sheap`, from cortex-m-rt's linker script) and a little below the
//! current stack pointer. Nothing lives there: the firmware has no heap,
//! that memory belongs to the part of the stack not in use, and no
//! interrupt handler runs (none is enabled), so no frame can be in that
//! range while it is painted or scanned. The window is limited to
//! [`WINDOW`] bytes below the stack pointer and never extends below
//! `__sheap`.

#![allow(unsafe_code)]

use core::ptr;

/// The pattern painted on free stack.
const PAINT: u32 = 0x5EA1_5EA1;
/// How far below the stack pointer to paint.
pub const WINDOW: usize = 64 * 1024;
/// Bytes left unpainted just below the painter's own stack pointer, for
/// its frame.
const MARGIN: usize = 64;

unsafe extern "C" {
    /// End of the statically allocated RAM (cortex-m-rt's `link.x`).
    static __sheap: u32;
}

fn heap_start() -> usize {
    // Only the symbol's address is taken; it is never read.
    (&raw const __sheap) as usize
}

fn stack_pointer() -> usize {
    cortex_m::register::msp::read() as usize
}

/// The lowest address painted for a stack pointer at `sp`.
fn window_bottom(sp: usize) -> usize {
    heap_start().max(sp.saturating_sub(WINDOW)) & !3
}

/// Paint the free stack below this function's frame; return the painted
/// range's top.
#[inline(never)]
fn paint() -> usize {
    let top = (stack_pointer() - MARGIN) & !3;
    let mut at = window_bottom(top);
    while at < top {
        // SAFETY: `at` is word-aligned, in RAM between `__sheap` and below
        // the current stack pointer: free stack (see the module docs).
        unsafe { ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
    top
}

/// The lowest address below `top` whose word no longer holds the pattern.
fn lowest_touched(top: usize) -> usize {
    let mut at = window_bottom(top);
    while at < top {
        // SAFETY: as in `paint`; the range is the one painted.
        if unsafe { ptr::read_volatile(at as *const u32) } != PAINT {
            return at;
        }
        at += 4;
    }
    top
}

#[inline(never)]
fn call<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Run `f` and return its result with the most stack it used, in bytes,
/// measured from the caller's stack pointer (a few words of this
/// function's own frame included). `None` if `f` used the whole window.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Option<usize>) {
    let base = stack_pointer();
    let top = paint();
    let result = call(f);
    let low = lowest_touched(top);
    let used = (low > window_bottom(top)).then(|| base - low);
    (result, used)
}
