//! `include/fsatomic.h` cannot drift from the Rust declarations: each
//! exported function's C prototype is derived here from its Rust type (a
//! changed parameter changes the string) and compared with the header's,
//! after resolving the header's typedefs; the header's `#define`s are
//! compared with [`crate::code::ALL`]. `boards/capi/run` checks the other
//! direction: every `fsatomic_*` symbol the library exports is declared.
//! And a few calls through the C ABI, as a C caller makes them.

use std::ffi::{c_char, c_int, c_void};

use crate::code;
use crate::ffi::{self, FsatomicLock};

/// A Rust type's C spelling in `fsatomic.h`.
trait CType {
    fn c() -> String;
}

macro_rules! c_types {
    ($($t:ty => $c:literal),* $(,)?) => {
        $(impl CType for $t { fn c() -> String { $c.to_string() } })*
    };
}

// `c_char` is `i8` or `u8` by target; no other parameter uses either.
c_types!(c_int => "int", u32 => "uint32_t", i64 => "int64_t", usize => "size_t",
    c_char => "char", c_void => "void", FsatomicLock => "fsatomic_lock_handle");

impl<T: CType> CType for *const T {
    fn c() -> String {
        format!("const {} *", T::c())
    }
}

impl<T: CType> CType for *mut T {
    fn c() -> String {
        format!("{} *", T::c())
    }
}

/// A function type's C prototype pieces: the return type and the
/// parameter types.
trait CFn {
    fn sig() -> (String, Vec<String>);
}

macro_rules! c_fns {
    ($($a:ident),*) => {
        impl<R: CType, $($a: CType),*> CFn for unsafe extern "C" fn($($a),*) -> R {
            fn sig() -> (String, Vec<String>) {
                (R::c(), vec![$($a::c()),*])
            }
        }
        impl<R: CType, $($a: CType),*> CType for Option<unsafe extern "C" fn($($a),*) -> R> {
            fn c() -> String {
                format!("{} (*)({})", R::c(), [$($a::c()),*].join(", "))
            }
        }
    };
}

c_fns!(A);
c_fns!(A, B);
c_fns!(A, B, C);
c_fns!(A, B, C, D);
c_fns!(A, B, C, D, E);
c_fns!(A, B, C, D, E, F);

/// `name` and its prototype, from the Rust type of `_f`.
fn rust<F: CFn>(name: &str, _f: F) -> (String, String) {
    let (ret, params) = F::sig();
    (
        name.to_string(),
        norm(&format!("{ret} {name}({})", params.join(", "))),
    )
}

/// Each function of `ffi` by its name and Rust type (`P` for the
/// parameters that are C strings, `_` for the others).
macro_rules! exported {
    ($($f:ident($($p:ty),*)),* $(,)?) => {
        vec![$(rust(stringify!($f), ffi::$f as unsafe extern "C" fn($($p),*) -> _)),*]
    };
}

/// Every exported function, by its Rust type.
fn exported() -> Vec<(String, String)> {
    type P = *const c_char;
    exported![
        fsatomic_save(P, P, _, _, _, _),
        fsatomic_load(P, P, _, _, _),
        fsatomic_update(P, P, _, _, _),
        fsatomic_append(P, P, _, _, _),
        fsatomic_lock(P, P, _, _),
        fsatomic_unlock(_),
        fsatomic_check(P, P),
        fsatomic_last_error_message(_, _),
    ]
}

/// C spelled one way: single spaces, none around `*`, `(`, `)`, `,`.
fn norm(c: &str) -> String {
    let words = c.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    for ch in words.chars() {
        if matches!(ch, '*' | '(' | ')' | ',') && out.ends_with(' ') {
            out.pop();
        }
        if ch == ' ' && out.ends_with(['*', '(', ')', ',']) {
            continue;
        }
        out.push(ch);
    }
    out
}

/// A parameter declaration without its name ("const char *dir" ->
/// "const char *"). Every parameter in the header must be named.
fn unnamed(param: &str) -> String {
    let param = param.trim();
    let start = param
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    assert!(start > 0, "an unnamed parameter in fsatomic.h: {param:?}");
    param[..start].to_string()
}

/// Split at top-level commas.
fn split_params(params: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, ch) in params.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&params[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&params[start..]);
    out
}

/// The header without comments and preprocessor lines.
fn declarations(header: &str) -> String {
    let mut text = String::new();
    let mut rest = header;
    while let Some(i) = rest.find("/*") {
        text.push_str(&rest[..i]);
        rest = rest[i..].split_once("*/").map_or("", |(_, after)| after);
    }
    text.push_str(rest);
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The header's prototypes (typedefs resolved, parameter names dropped),
/// by name.
fn header_prototypes(header: &str) -> Vec<(String, String)> {
    let decls = declarations(header);
    let mut typedefs: Vec<(String, String)> = Vec::new();
    let mut protos = Vec::new();
    for decl in decls.split(';').map(str::trim) {
        let Some(open) = decl.find('(') else {
            continue;
        };
        if decl.starts_with("extern \"C\"") || decl.starts_with('}') {
            continue;
        }
        let close = decl.rfind(')').expect("a ')' after '('");
        if let Some(fnptr) = decl.strip_prefix("typedef ") {
            // typedef RET (*NAME)(PARAMS)
            let open = fnptr.find("(*").expect("a function pointer typedef");
            let name_end = open + fnptr[open..].find(')').expect("(*NAME)");
            let name = fnptr[open + 2..name_end].trim().to_string();
            let params = &fnptr[name_end + 1..];
            let params = params
                .trim()
                .strip_prefix('(')
                .and_then(|p| p.strip_suffix(')'));
            let params = params.expect("(PARAMS)");
            let params: Vec<String> = split_params(params).iter().map(|p| unnamed(p)).collect();
            let c = norm(&format!("{} (*)({})", &fnptr[..open], params.join(", ")));
            typedefs.push((name, c));
            continue;
        }
        let head = decl[..open].trim();
        let name_at = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let (ret, name) = head.split_at(name_at);
        let params: Vec<String> = split_params(&decl[open + 1..close])
            .iter()
            .map(|p| {
                let ty = norm(&unnamed(p));
                typedefs
                    .iter()
                    .find(|(t, _)| *t == ty)
                    .map_or(ty, |(_, c)| c.clone())
            })
            .collect();
        protos.push((
            name.to_string(),
            norm(&format!("{ret} {name}({})", params.join(", "))),
        ));
    }
    protos
}

const HEADER: &str = include_str!("../include/fsatomic.h");

#[test]
fn the_header_declares_every_function_as_the_library_defines_it() {
    let mut header = header_prototypes(HEADER);
    let mut rust = exported();
    header.sort();
    rust.sort();
    assert_eq!(
        header, rust,
        "include/fsatomic.h has drifted from src/ffi.rs"
    );
}

#[test]
fn the_header_defines_every_code_as_the_library_does() {
    let mut defined: Vec<(String, i32)> = HEADER
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("#define FSATOMIC_")?.split_whitespace();
            let name = words.next()?.to_string();
            let value = words.next()?.parse().ok()?;
            Some((name, value))
        })
        .collect();
    let mut rust: Vec<(String, i32)> = code::ALL.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    defined.sort();
    rust.sort();
    assert_eq!(
        defined, rust,
        "include/fsatomic.h's codes have drifted from code::ALL"
    );
}

#[test]
fn the_check_sees_a_changed_parameter() {
    let header = HEADER.replace("int64_t timeout_ms", "int timeout_ms");
    assert_ne!(header_prototypes(&header), header_prototypes(HEADER));
    let mine = header_prototypes(HEADER);
    assert!(mine.iter().any(|(_, p)| p.contains("fsatomic_update(const char*,const char*,uint32_t,int(*)(void*,const void*,size_t,void*,size_t,size_t*),void*)")), "{mine:?}");
}

/// A fresh directory under the system's temporary directory.
fn scratch(tag: &str) -> std::ffi::CString {
    let dir = std::env::temp_dir().join(format!(
        "fsatomic-capi-{tag}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    std::ffi::CString::new(dir.into_os_string().into_encoded_bytes()).expect("no NUL")
}

#[allow(unsafe_code)]
mod through_the_abi {
    use std::ffi::{CStr, c_int, c_void};

    use super::*;

    fn message() -> String {
        let mut buf = [0 as c_char; 256];
        // SAFETY: a 256-byte buffer.
        unsafe { ffi::fsatomic_last_error_message(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by the call.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    fn load(dir: &CStr, name: &CStr) -> Result<String, c_int> {
        let mut buf = [0u8; 4096];
        let mut len = 0;
        // SAFETY: valid strings, a 4096-byte buffer, a local length.
        let rc = unsafe {
            ffi::fsatomic_load(
                dir.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut len,
            )
        };
        if rc == code::OK {
            Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
        } else {
            Err(rc)
        }
    }

    fn save(dir: &CStr, name: &CStr, doc: &[u8], mode: u32) -> c_int {
        // SAFETY: valid strings and a valid document.
        unsafe {
            ffi::fsatomic_save(
                dir.as_ptr(),
                name.as_ptr(),
                doc.as_ptr().cast(),
                doc.len(),
                mode,
                code::PROTOCOL_AUTO,
            )
        }
    }

    unsafe extern "C" fn add_one(
        ctx: *mut c_void,
        current: *const c_void,
        current_len: usize,
        out: *mut c_void,
        out_cap: usize,
        out_len: *mut usize,
    ) -> c_int {
        let current = if current.is_null() {
            &[][..]
        } else {
            // SAFETY: as fsatomic_update promises.
            unsafe { std::slice::from_raw_parts(current.cast::<u8>(), current_len) }
        };
        let n: u64 = std::str::from_utf8(current)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let text = format!("{}", n + 1);
        assert!(text.len() <= out_cap);
        // SAFETY: as fsatomic_update promises; ctx is a &mut u32.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), text.len());
            *out_len = text.len();
            *ctx.cast::<u32>() += 1;
        }
        0
    }

    #[test]
    fn save_load_update_append_lock_check() {
        let dir = scratch("abi");
        let name = c"state.json";
        let doc = br#"{"users":["root"],"n":1}"#;
        // SAFETY: valid strings.
        let rc = unsafe { ffi::fsatomic_check(dir.as_ptr(), name.as_ptr()) };
        assert_eq!(rc, code::ABSENT);
        assert_eq!(save(&dir, name, doc, 0o640), code::OK);
        assert_eq!(
            load(&dir, name).unwrap(),
            "{\n  \"users\": [\n    \"root\"\n  ],\n  \"n\": 1\n}\n"
        );
        assert_eq!(save(&dir, name, b"{", 0), code::INVALID);
        let m = message();
        assert!(m.contains("not valid JSON at byte 1"), "{m}");
        assert_eq!(save(&dir, c"../x", doc, 0), code::BAD_NAME);
        // SAFETY: valid strings, a 4-byte buffer, a local length.
        unsafe {
            let mut tiny = [0u8; 4];
            let mut len = 0;
            assert_eq!(
                ffi::fsatomic_load(
                    dir.as_ptr(),
                    name.as_ptr(),
                    tiny.as_mut_ptr().cast(),
                    4,
                    &mut len
                ),
                code::TOO_LARGE
            );
            assert!(len > 4);
        }
        let counter = c"counter.json";
        let mut calls = 0u32;
        for _ in 0..3 {
            // SAFETY: add_one keeps to the buffers; ctx is a live u32.
            let rc = unsafe {
                ffi::fsatomic_update(
                    dir.as_ptr(),
                    counter.as_ptr(),
                    0,
                    Some(add_one),
                    (&raw mut calls).cast(),
                )
            };
            assert_eq!(rc, code::OK, "{}", message());
        }
        assert_eq!((load(&dir, counter).unwrap().as_str(), calls), ("3\n", 3));
        let log = c"log.json";
        for v in [&b"{\"tx\":1}"[..], b"2"] {
            // SAFETY: valid strings and values.
            let rc = unsafe {
                ffi::fsatomic_append(dir.as_ptr(), log.as_ptr(), v.as_ptr().cast(), v.len(), 0)
            };
            assert_eq!(rc, code::OK, "{}", message());
        }
        assert_eq!(
            load(&dir, log).unwrap(),
            "[\n  {\n    \"tx\": 1\n  },\n  2\n]\n"
        );
        // SAFETY: valid strings; handles written by fsatomic_lock.
        unsafe {
            assert_eq!(ffi::fsatomic_check(dir.as_ptr(), log.as_ptr()), code::OK);
            let mut held = std::ptr::null_mut();
            assert_eq!(
                ffi::fsatomic_lock(dir.as_ptr(), name.as_ptr(), 0, &mut held),
                code::OK
            );
            let mut second = std::ptr::null_mut();
            assert_eq!(
                ffi::fsatomic_lock(dir.as_ptr(), name.as_ptr(), 30, &mut second),
                code::LOCK_TIMEOUT
            );
            assert!(message().contains("gave up after 0.030 s"), "{}", message());
            assert_eq!(ffi::fsatomic_unlock(held), code::OK);
            assert_eq!(
                ffi::fsatomic_lock(dir.as_ptr(), name.as_ptr(), 30, &mut second),
                code::OK
            );
            assert_eq!(ffi::fsatomic_unlock(second), code::OK);
            assert_eq!(ffi::fsatomic_unlock(std::ptr::null_mut()), code::INVALID);
        }
        use std::os::unix::ffi::OsStrExt;
        let _ = std::fs::remove_dir_all(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    }
}
