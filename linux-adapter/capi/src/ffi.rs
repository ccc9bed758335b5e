//! The C ABI: the only `unsafe` of the library.
//!
//! Why it is sound: every pointer from C is checked for null before use
//! and turned into a slice or string only for the duration of the call,
//! with the length the caller gave (each function's `# Safety` says what
//! the caller promises: that the pointer is valid for that many bytes and
//! not written by another thread meanwhile). Nothing borrowed from C is
//! kept after a call returns; the lock handle is a `Box` that only
//! `fsatomic_unlock` turns back into one, once. The update callback is
//! called with pointers into buffers this module owns, valid for the
//! call. No panic crosses the boundary: each body runs inside
//! `catch_unwind` and a panic becomes [`code::INTERNAL`] (a build with
//! `panic = "abort"` aborts instead, which does not unwind into C
//! either). Everything else is the safe Rust of `ops`.

use std::cell::RefCell;
use std::ffi::{CStr, OsStr, c_char, c_int, c_void};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::code;
use crate::ops::{self, Failure};

thread_local! {
    /// The message of the last call on this thread that failed.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A held writers' lock (`fsatomic_lock`; `fsatomic_lock_handle` in C), opaque to C.
pub struct FsatomicLock {
    _fd: OwnedFd,
}

/// The update callback's type (`fsatomic_update_fn` in `fsatomic.h`).
pub type UpdateFn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        current: *const c_void,
        current_len: usize,
        out: *mut c_void,
        out_cap: usize,
        out_len: *mut usize,
    ) -> c_int,
>;

/// Run `body`, catching any panic; record a failure's message for
/// `fsatomic_last_error_message` and return its code.
fn run(body: impl FnOnce() -> ops::Result<()>) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        Err(Failure::new(
            code::INTERNAL,
            format!("internal error (please report): {what}"),
        ))
    });
    match outcome {
        Ok(()) => code::OK,
        Err(f) => {
            LAST_ERROR.with(|m| *m.borrow_mut() = f.message);
            f.code
        }
    }
}

/// A null pointer where one is required.
fn null(what: &str) -> Failure {
    Failure::new(code::INVALID, format!("{what} is a null pointer"))
}

/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
unsafe fn c_str<'a>(p: *const c_char, what: &str) -> ops::Result<&'a CStr> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: not null, and NUL-terminated and valid by the caller's promise.
    Ok(unsafe { CStr::from_ptr(p) })
}

/// # Safety
/// As [`c_str`].
unsafe fn dir_path<'a>(p: *const c_char) -> ops::Result<&'a Path> {
    // SAFETY: passed on from the caller.
    let s = unsafe { c_str(p, "dir") }?;
    Ok(Path::new(OsStr::from_bytes(s.to_bytes())))
}

/// # Safety
/// As [`c_str`].
unsafe fn file_name<'a>(p: *const c_char) -> ops::Result<&'a str> {
    // SAFETY: passed on from the caller.
    let s = unsafe { c_str(p, "name") }?;
    s.to_str()
        .map_err(|_| Failure::new(code::BAD_NAME, "the name is not UTF-8"))
}

/// # Safety
/// `p` is null only if `len` is 0; otherwise valid for reads of `len`
/// bytes, unchanged during the call.
unsafe fn bytes<'a>(p: *const c_void, len: usize, what: &str) -> ops::Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: not null, valid for `len` bytes by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// Commit the JSON document `data` (`len` bytes) as the state `name` in
/// the existing directory `dir`, indented as `fsatomic save` writes it,
/// under the writers' lock. `mode` is the file's permission bits (0 for
/// 0600); `protocol` is `FSATOMIC_PROTOCOL_AUTO`, `_REPLACE` or `_SLOTS`
/// (a state on disk keeps its own). Durable when it returns 0.
///
/// # Safety
/// `dir` and `name` are NUL-terminated strings; `data` is valid for reads
/// of `len` bytes (it may be null if `len` is 0). All stay valid and
/// unchanged until the call returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_save(
    dir: *const c_char,
    name: *const c_char,
    data: *const c_void,
    len: usize,
    mode: u32,
    protocol: c_int,
) -> c_int {
    run(|| {
        // SAFETY: the caller's promises above.
        let (dir, name, data) =
            unsafe { (dir_path(dir)?, file_name(name)?, bytes(data, len, "data")?) };
        ops::save(dir, name, data, mode, protocol)
    })
}

/// Read the state `name` of `dir` into `buf` (`cap` bytes) and set `*len`
/// to its length: the bytes on disk, or for a journaled array the whole
/// array, indented. `FSATOMIC_ABSENT` if there is none;
/// `FSATOMIC_TOO_LARGE` with `*len` set to the size needed (0 if unknown)
/// if it does not fit. Takes no lock, changes nothing. No NUL is added.
///
/// # Safety
/// `dir` and `name` are NUL-terminated strings; `buf` is valid for writes
/// of `cap` bytes (null if `cap` is 0) and not accessed by anything else
/// during the call; `len` points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_load(
    dir: *const c_char,
    name: *const c_char,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> c_int {
    run(|| {
        if len.is_null() {
            return Err(null("len"));
        }
        // SAFETY: the caller's promises above.
        let (dir, name) = unsafe { (dir_path(dir)?, file_name(name)?) };
        let buf: &mut [u8] = if cap == 0 {
            &mut []
        } else if buf.is_null() {
            return Err(null("buf"));
        } else {
            // SAFETY: not null, valid and exclusive for `cap` bytes by the
            // caller's promise.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) }
        };
        let outcome = ops::load(dir, name, buf);
        let n = match &outcome {
            Ok(n) => *n,
            Err(f) => f.needed,
        };
        // SAFETY: not null, writable by the caller's promise.
        unsafe { len.write(n) };
        outcome.map(drop)
    })
}

/// Read-modify-write under the writers' lock: `callback(ctx, current,
/// current_len, out, out_cap, &out_len)` gets the current document
/// (`current` null and `current_len` 0 if there is none), writes the new
/// one into `out` (at most `out_cap` bytes; at least 64 KiB, and twice the
/// current document) and sets `out_len`. It returns 0 to commit; or
/// `FSATOMIC_TOO_LARGE` with `out_len` set to the size it needs, to be
/// called once more with a buffer that large; or any other value to
/// cancel (`FSATOMIC_CANCELED`, nothing written). `mode` as for
/// `fsatomic_save`. A journaled array is `FSATOMIC_UNSUPPORTED`.
///
/// # Safety
/// `dir` and `name` are NUL-terminated strings, valid until the call
/// returns; `callback` is a function of that type that reads at most
/// `current_len` bytes of `current`, writes at most `out_cap` bytes of
/// `out`, keeps neither pointer after it returns, and returns normally
/// (no `longjmp` out of it). It may be called from this thread only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_update(
    dir: *const c_char,
    name: *const c_char,
    mode: u32,
    callback: UpdateFn,
    ctx: *mut c_void,
) -> c_int {
    run(|| {
        // SAFETY: the caller's promises above.
        let (dir, name) = unsafe { (dir_path(dir)?, file_name(name)?) };
        let callback = callback.ok_or_else(|| null("callback"))?;
        let mut modify = |current: Option<&[u8]>, out: &mut [u8]| -> ops::Result<usize> {
            let (ptr, cur_len) = current.map_or((std::ptr::null(), 0), |c| (c.as_ptr(), c.len()));
            let mut out_len = 0usize;
            // SAFETY: `ptr` is valid for `cur_len` bytes and `out` for
            // `out.len()` bytes for the call; `out_len` is a local; the
            // callback keeps to them by the caller's promise.
            let rc = unsafe {
                callback(
                    ctx,
                    ptr.cast(),
                    cur_len,
                    out.as_mut_ptr().cast(),
                    out.len(),
                    &mut out_len,
                )
            };
            match rc {
                0 => Ok(out_len),
                code::TOO_LARGE => Err(Failure {
                    code: code::TOO_LARGE,
                    message: format!(
                        "the callback needs {out_len} bytes for the new document, more than the {}-byte buffer; nothing was changed",
                        out.len()
                    ),
                    needed: out_len,
                }),
                rc => Err(Failure::new(
                    code::CANCELED,
                    format!("the callback returned {rc}; nothing was changed"),
                )),
            }
        };
        ops::update(dir, name, mode, &mut modify)
    })
}

/// Append the JSON value `value` (`len` bytes) to the journaled array
/// `name` of `dir`: one record and one flush (a plain array file is
/// converted first, an absent state becomes `[value]`), under the
/// writers' lock. `mode` 0 keeps the state's mode (0600 for a new one).
///
/// # Safety
/// `dir` and `name` are NUL-terminated strings; `value` is valid for reads
/// of `len` bytes. All stay valid and unchanged until the call returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_append(
    dir: *const c_char,
    name: *const c_char,
    value: *const c_void,
    len: usize,
    mode: u32,
) -> c_int {
    run(|| {
        // SAFETY: the caller's promises above.
        let (dir, name, value) = unsafe {
            (
                dir_path(dir)?,
                file_name(name)?,
                bytes(value, len, "value")?,
            )
        };
        ops::append(dir, name, value, mode)
    })
}

/// Take the writers' lock of `name` in `dir` (`NAME.lock`, the lock every
/// commit and `fsatomic lock` take), waiting at most `timeout_ms`
/// milliseconds (0: one try; negative: for ever). On success `*handle`
/// holds it until `fsatomic_unlock`; on `FSATOMIC_LOCK_TIMEOUT` another
/// writer holds it. While this process holds it, its own
/// `fsatomic_save`/`update`/`append` of `name` would wait for ever: it is
/// for excluding other processes (and `fsatomic` commands) while the
/// caller does something else.
///
/// # Safety
/// `dir` and `name` are NUL-terminated strings, valid until the call
/// returns; `handle` points to a writable `fsatomic_lock_handle *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_lock(
    dir: *const c_char,
    name: *const c_char,
    timeout_ms: i64,
    handle: *mut *mut FsatomicLock,
) -> c_int {
    run(|| {
        if handle.is_null() {
            return Err(null("handle"));
        }
        // SAFETY: the caller's promises above.
        let (dir, name) = unsafe { (dir_path(dir)?, file_name(name)?) };
        let fd = ops::lock(dir, name, timeout_ms)?;
        let held = Box::into_raw(Box::new(FsatomicLock { _fd: fd }));
        // SAFETY: not null, writable by the caller's promise.
        unsafe { handle.write(held) };
        Ok(())
    })
}

/// Release a lock taken by `fsatomic_lock` and free its handle.
///
/// # Safety
/// `handle` is null (`FSATOMIC_INVALID`) or a handle from `fsatomic_lock`
/// not yet unlocked; it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_unlock(handle: *mut FsatomicLock) -> c_int {
    run(|| {
        if handle.is_null() {
            return Err(null("handle"));
        }
        // SAFETY: made by Box::into_raw in fsatomic_lock and, by the
        // caller's promise, not freed before.
        drop(unsafe { Box::from_raw(handle) });
        Ok(())
    })
}

/// Check the state `name` of `dir`: 0 if it reads back whole and
/// well-formed, `FSATOMIC_ABSENT` if it does not exist,
/// `FSATOMIC_CORRUPT` (with the file and byte offset in the message) if a
/// file is torn or not JSON. Takes no lock, repairs nothing.
///
/// # Safety
/// `dir` and `name` are NUL-terminated strings, valid until the call
/// returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_check(dir: *const c_char, name: *const c_char) -> c_int {
    run(|| {
        // SAFETY: the caller's promises above.
        let (dir, name) = unsafe { (dir_path(dir)?, file_name(name)?) };
        ops::check(dir, name)
    })
}

/// Copy the message of this thread's last failed call into `buf` (at most
/// `cap - 1` bytes and a NUL; nothing if `cap` is 0) and return its full
/// length without the NUL, as `snprintf` does. An empty string if no call
/// failed yet.
///
/// # Safety
/// `buf` is valid for writes of `cap` bytes (null if `cap` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fsatomic_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    LAST_ERROR.with(|m| {
        let m = m.borrow();
        if cap > 0 && !buf.is_null() {
            let n = m.len().min(cap - 1);
            // SAFETY: `buf` is valid for `cap` > `n` bytes by the caller's
            // promise, and does not overlap the message we own.
            unsafe {
                std::ptr::copy_nonoverlapping(m.as_ptr(), buf.cast::<u8>(), n);
                buf.add(n).write(0);
            }
        }
        m.len()
    })
}
