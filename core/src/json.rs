//! A streaming JSON validator and re-indenter over bytes: no allocation, no
//! recursion, no panics.
//!
//! The protocols commit bytes; JSON is the layer above. This module checks
//! that bytes are exactly one well-formed JSON value (RFC 8259: strict
//! numbers, escapes, UTF-8, paired surrogates; nesting up to [`MAX_DEPTH`])
//! and writes it indented by two spaces with a trailing newline — the form
//! operators read by hand, and the form every commit of this crate puts on
//! disk. An error says the byte offset where the input went wrong.
//!
//! ```
//! use fsatomic::json;
//! let mut out = [0u8; 64];
//! let n = json::pretty(br#"{"admin":{"uid":0},"tags":[]}"#, &mut out).unwrap();
//! assert_eq!(&out[..n], b"{\n  \"admin\": {\n    \"uid\": 0\n  },\n  \"tags\": []\n}\n");
//!
//! let err = json::validate(b"[1, 2,]").unwrap_err();
//! assert_eq!(err.offset, 6);
//! ```

use core::fmt;

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 128;

/// What is wrong with a JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// Only whitespace (or nothing) where a value was expected.
    NoValue,
    /// The text ends in the middle of a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte(u8),
    /// A control character (below 0x20) inside a string.
    ControlInString,
    /// A backslash escape that JSON does not define.
    BadEscape,
    /// A `\u` escape of half a surrogate pair.
    LoneSurrogate,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// A number that does not follow the JSON grammar.
    BadNumber,
    /// A number whose integer part has a leading zero (`01`, `-007`),
    /// which JSON forbids; the offset is that of the zero.
    LeadingZero,
    /// Something other than `true`, `false` or `null`.
    BadLiteral,
    /// An object key that is not a string.
    KeyNotString,
    /// More than one value: bytes after the end of the document.
    TrailingData,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonErrorKind::NoValue => f.write_str("no value (empty or only whitespace)"),
            JsonErrorKind::UnexpectedEnd => f.write_str("unexpected end of the document"),
            JsonErrorKind::UnexpectedByte(b) if b.is_ascii_graphic() => {
                write!(f, "unexpected character '{}'", *b as char)
            }
            JsonErrorKind::UnexpectedByte(b) => write!(f, "unexpected byte 0x{b:02x}"),
            JsonErrorKind::ControlInString => f.write_str("control character inside a string"),
            JsonErrorKind::BadEscape => f.write_str("invalid escape sequence"),
            JsonErrorKind::LoneSurrogate => f.write_str("unpaired UTF-16 surrogate escape"),
            JsonErrorKind::InvalidUtf8 => f.write_str("invalid UTF-8"),
            JsonErrorKind::BadNumber => f.write_str("malformed number"),
            JsonErrorKind::LeadingZero => {
                f.write_str("number with a leading zero (JSON allows none: write 1, not 01)")
            }
            JsonErrorKind::BadLiteral => f.write_str("expected true, false or null"),
            JsonErrorKind::KeyNotString => f.write_str("object key is not a string"),
            JsonErrorKind::TrailingData => f.write_str("data after the end of the document"),
            JsonErrorKind::TooDeep => f.write_str("nested deeper than 128 levels"),
        }
    }
}

/// A JSON text is malformed at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the first byte that is wrong (the length of the input
    /// if it ends too early).
    pub offset: usize,
    /// What is wrong.
    pub kind: JsonErrorKind,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

impl core::error::Error for JsonError {}

/// Re-indenting failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrettyError {
    /// The input is not one well-formed JSON value.
    Json(JsonError),
    /// The output buffer is too small; nothing useful was written.
    BufferTooSmall {
        /// Bytes the indented document needs.
        needed: usize,
        /// Bytes the buffer has.
        capacity: usize,
    },
}

impl fmt::Display for PrettyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrettyError::Json(e) => e.fmt(f),
            PrettyError::BufferTooSmall { needed, capacity } => write!(
                f,
                "the indented document needs {needed} bytes but the buffer holds {capacity}"
            ),
        }
    }
}

impl core::error::Error for PrettyError {}

/// Check that `input` is exactly one well-formed JSON value, with optional
/// whitespace around it.
pub fn validate(input: &[u8]) -> Result<(), JsonError> {
    let mut out = Count { input, n: 0 };
    run(&mut out, false).map_err(json_only)
}

/// The size of `input` indented by [`pretty`], trailing newline included.
pub fn pretty_len(input: &[u8]) -> Result<usize, JsonError> {
    let mut out = Count { input, n: 0 };
    run(&mut out, true).map_err(json_only)?;
    Ok(out.n)
}

/// Write `input` into `out` indented by two spaces, with a trailing newline
/// (the layout of `serde_json::to_string_pretty` and Go's `MarshalIndent`),
/// and return the number of bytes written. Empty arrays and objects stay on
/// one line (`[]`, `{}`); strings and numbers are copied byte for byte.
pub fn pretty(input: &[u8], out: &mut [u8]) -> Result<usize, PrettyError> {
    let mut sink = Slice { input, out, n: 0 };
    run(&mut sink, true).map_err(|e| match e {
        Fail::Json(e) => PrettyError::Json(e),
        Fail::Full => PrettyError::BufferTooSmall {
            needed: 0,
            capacity: 0,
        },
    })?;
    if sink.n > sink.out.len() {
        return Err(PrettyError::BufferTooSmall {
            needed: sink.n,
            capacity: sink.out.len(),
        });
    }
    Ok(sink.n)
}

/// Indent the JSON held in `buf[start..]` into `buf[..n]`, in place, and
/// return `n`. Needs no second buffer.
///
/// The output is written from the front while the input is read from the
/// back; it never overtakes the input when the input is compact (no
/// whitespace, as `serde-json-core` writes it) and the indented size fits
/// `buf`. Should it ever overtake, the call fails with
/// [`PrettyError::BufferTooSmall`] instead of clobbering unread input; `buf`
/// is garbage after any error.
pub fn pretty_in_place(buf: &mut [u8], start: usize) -> Result<usize, PrettyError> {
    let capacity = buf.len();
    let input = buf.get(start..).ok_or(PrettyError::BufferTooSmall {
        needed: start,
        capacity,
    })?;
    let needed = pretty_len(input).map_err(PrettyError::Json)?;
    if needed > capacity {
        return Err(PrettyError::BufferTooSmall { needed, capacity });
    }
    indent_in_place(buf, start, needed)
}

/// The indenting pass of [`pretty_in_place`], once the input at
/// `buf[start..]` is known to be JSON whose indented form takes `needed`
/// bytes, no more than `buf` holds.
fn indent_in_place(buf: &mut [u8], start: usize, needed: usize) -> Result<usize, PrettyError> {
    let capacity = buf.len();
    let mut sink = InPlace {
        buf,
        base: start,
        w: 0,
    };
    run(&mut sink, true).map_err(|e| match e {
        Fail::Json(e) => PrettyError::Json(e),
        Fail::Full => PrettyError::BufferTooSmall { needed, capacity },
    })?;
    Ok(sink.w)
}

/// Remove the insignificant whitespace of the JSON in `buf[..len]`, in
/// place, and return the compact length. The input is validated first; on
/// error `buf` is unchanged.
pub fn compact_in_place(buf: &mut [u8], len: usize) -> Result<usize, JsonError> {
    let input = buf.get(..len).unwrap_or_default();
    validate(input)?;
    let mut w = 0;
    let mut r = 0;
    let mut in_string = false;
    let mut escaped = false;
    while r < len {
        let Some(&b) = buf.get(r) else { break };
        r += 1;
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if is_ws(b) {
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        if let Some(slot) = buf.get_mut(w) {
            *slot = b;
        }
        w += 1;
    }
    Ok(w)
}

/// Indent the compact JSON in `buf[..len]` into `buf[..n]` and return `n`
/// (the layout of [`pretty`]); `buf` needs room for the indented form only.
pub fn pretty_from_front(buf: &mut [u8], len: usize) -> Result<usize, PrettyError> {
    let capacity = buf.len();
    let input = buf.get(..len).ok_or(PrettyError::BufferTooSmall {
        needed: len,
        capacity,
    })?;
    let needed = pretty_len(input).map_err(PrettyError::Json)?;
    if needed > capacity {
        return Err(PrettyError::BufferTooSmall { needed, capacity });
    }
    let start = capacity - len;
    buf.copy_within(..len, start);
    // Checked and measured above: one pass fewer than `pretty_in_place`.
    indent_in_place(buf, start, needed)
}

/// Call `visit(key, value)` for each member of the JSON object `input`
/// (validated first), where `key` is the raw key between its quotes
/// (escapes not decoded) and `value` the byte range of the member's value.
///
/// ```
/// let doc = br#"{ "seq": 7, "state": [1, 2] }"#;
/// let mut state = 0..0;
/// fsatomic::json::for_each_member(doc, |key, value| {
///     if key == b"state" { state = value; }
/// }).unwrap();
/// assert_eq!(&doc[state], b"[1, 2]");
/// ```
pub fn for_each_member(
    input: &[u8],
    mut visit: impl FnMut(&[u8], core::ops::Range<usize>),
) -> Result<(), JsonError> {
    for_each_child(input, b'{', |key, value| visit(key, value))
}

/// Call `visit(value)` with the byte range of each element of the JSON
/// array `input` (validated first).
pub fn for_each_element(
    input: &[u8],
    mut visit: impl FnMut(core::ops::Range<usize>),
) -> Result<(), JsonError> {
    for_each_child(input, b'[', |_, value| visit(value))
}

fn for_each_child(
    input: &[u8],
    open: u8,
    mut visit: impl FnMut(&[u8], core::ops::Range<usize>),
) -> Result<(), JsonError> {
    validate(input)?;
    let mut pos = skip_ws(input, 0);
    match input.get(pos) {
        Some(&b) if b == open => pos += 1,
        Some(&b) => {
            return Err(JsonError {
                offset: pos,
                kind: JsonErrorKind::UnexpectedByte(b),
            });
        }
        None => {
            return Err(JsonError {
                offset: pos,
                kind: JsonErrorKind::NoValue,
            });
        }
    }
    loop {
        pos = skip_ws(input, pos);
        match input.get(pos) {
            Some(b'}' | b']') | None => return Ok(()),
            Some(b',') => {
                pos += 1;
                continue;
            }
            _ => {}
        }
        let mut key: &[u8] = &[];
        if open == b'{' {
            let end = skip_value(input, pos);
            key = input
                .get(pos + 1..end.saturating_sub(1))
                .unwrap_or_default();
            pos = skip_ws(input, end);
            pos = skip_ws(input, pos + 1); // the colon
        }
        let end = skip_value(input, pos);
        visit(key, pos..end);
        pos = end;
    }
}

/// The end of the (already validated) value starting at `pos`.
fn skip_value(input: &[u8], pos: usize) -> usize {
    match input.get(pos) {
        Some(b'"') => scan_string(input, pos).unwrap_or(input.len()),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = pos;
            while let Some(&b) = input.get(i) {
                match b {
                    b'"' => {
                        i = scan_string(input, i).unwrap_or(input.len());
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            input.len()
        }
        _ => {
            let mut i = pos;
            while input
                .get(i)
                .is_some_and(|&b| !is_ws(b) && !matches!(b, b',' | b']' | b'}'))
            {
                i += 1;
            }
            i
        }
    }
}

fn json_only(e: Fail) -> JsonError {
    match e {
        Fail::Json(e) => e,
        // Counting sinks never report full.
        Fail::Full => JsonError {
            offset: 0,
            kind: JsonErrorKind::NoValue,
        },
    }
}

enum Fail {
    Json(JsonError),
    Full,
}

fn err(offset: usize, kind: JsonErrorKind) -> Fail {
    Fail::Json(JsonError { offset, kind })
}

/// Where the formatter's output goes. Positions are offsets in `input()`.
trait Sink {
    fn input(&self) -> &[u8];
    /// Copy `input()[start..end]` to the output.
    fn copy(&mut self, start: usize, end: usize) -> Result<(), Fail>;
    /// Append `bytes`; nothing at or after `unread` in the input has been
    /// consumed yet.
    fn put(&mut self, bytes: &[u8], unread: usize) -> Result<(), Fail>;
}

struct Count<'a> {
    input: &'a [u8],
    n: usize,
}

impl Sink for Count<'_> {
    fn input(&self) -> &[u8] {
        self.input
    }
    fn copy(&mut self, start: usize, end: usize) -> Result<(), Fail> {
        self.n += end - start;
        Ok(())
    }
    fn put(&mut self, bytes: &[u8], _: usize) -> Result<(), Fail> {
        self.n += bytes.len();
        Ok(())
    }
}

/// Writes what fits and keeps counting, so a too-small buffer learns the
/// size it needs.
struct Slice<'a, 'b> {
    input: &'a [u8],
    out: &'b mut [u8],
    n: usize,
}

impl Slice<'_, '_> {
    fn emit(&mut self, from: &[u8]) {
        let end = self.n + from.len();
        if let Some(dst) = self.out.get_mut(self.n..end) {
            dst.copy_from_slice(from);
        }
        self.n = end;
    }
}

impl Sink for Slice<'_, '_> {
    fn input(&self) -> &[u8] {
        self.input
    }
    fn copy(&mut self, start: usize, end: usize) -> Result<(), Fail> {
        let input = self.input;
        self.emit(input.get(start..end).unwrap_or_default());
        Ok(())
    }
    fn put(&mut self, bytes: &[u8], _: usize) -> Result<(), Fail> {
        self.emit(bytes);
        Ok(())
    }
}

struct InPlace<'a> {
    buf: &'a mut [u8],
    base: usize,
    w: usize,
}

impl Sink for InPlace<'_> {
    fn input(&self) -> &[u8] {
        self.buf.get(self.base..).unwrap_or_default()
    }
    fn copy(&mut self, start: usize, end: usize) -> Result<(), Fail> {
        let src = self.base + start;
        if self.w > src {
            return Err(Fail::Full);
        }
        self.buf.copy_within(src..self.base + end, self.w);
        self.w += end - start;
        Ok(())
    }
    fn put(&mut self, bytes: &[u8], unread: usize) -> Result<(), Fail> {
        let end = self.w + bytes.len();
        if end > self.base + unread {
            return Err(Fail::Full);
        }
        let dst = self.buf.get_mut(self.w..end).ok_or(Fail::Full)?;
        dst.copy_from_slice(bytes);
        self.w = end;
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (at the top, after `[`, `,` in an array, or `:`).
    Value,
    /// An object key (after `,` in an object).
    Key,
    /// `,` or the end of the enclosing container, or the end of the input.
    Next,
}

const SPACES: &[u8; 64] = b"                                                                ";

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(input: &[u8], mut pos: usize) -> usize {
    while input.get(pos).is_some_and(|&b| is_ws(b)) {
        pos += 1;
    }
    pos
}

fn newline<S: Sink>(s: &mut S, depth: usize, unread: usize, pretty: bool) -> Result<(), Fail> {
    if !pretty {
        return Ok(());
    }
    s.put(b"\n", unread)?;
    let mut left = depth * 2;
    while left > 0 {
        let n = left.min(SPACES.len());
        s.put(SPACES.get(..n).unwrap_or_default(), unread)?;
        left -= n;
    }
    Ok(())
}

/// The one pass behind every public function: validate and, if `pretty`,
/// emit the indented form.
fn run<S: Sink>(s: &mut S, pretty: bool) -> Result<(), Fail> {
    // Bit i of `objects` is set when nesting level i is an object.
    let mut objects = [0u8; MAX_DEPTH / 8];
    let mut depth = 0usize;
    let len = s.input().len();
    let mut pos = skip_ws(s.input(), 0);
    if pos >= len {
        return Err(err(pos, JsonErrorKind::NoValue));
    }
    let mut expect = Expect::Value;
    loop {
        let input = s.input();
        match expect {
            Expect::Value | Expect::Key => {
                let Some(&c) = input.get(pos) else {
                    return Err(err(len, JsonErrorKind::UnexpectedEnd));
                };
                if expect == Expect::Key && c != b'"' {
                    return Err(err(pos, JsonErrorKind::KeyNotString));
                }
                match c {
                    b'{' | b'[' => {
                        let is_object = c == b'{';
                        let close = if is_object { b'}' } else { b']' };
                        let next = skip_ws(input, pos + 1);
                        if input.get(next) == Some(&close) {
                            s.put(if is_object { b"{}" } else { b"[]" }, next + 1)?;
                            pos = next + 1;
                            expect = Expect::Next;
                            continue;
                        }
                        if depth >= MAX_DEPTH {
                            return Err(err(pos, JsonErrorKind::TooDeep));
                        }
                        let byte = objects.get_mut(depth / 8).ok_or(Fail::Full)?;
                        if is_object {
                            *byte |= 1 << (depth % 8);
                        } else {
                            *byte &= !(1 << (depth % 8));
                        }
                        depth += 1;
                        s.put(&[c], next)?;
                        newline(s, depth, next, pretty)?;
                        pos = next;
                        expect = if is_object {
                            Expect::Key
                        } else {
                            Expect::Value
                        };
                    }
                    b'"' => {
                        let end = scan_string(input, pos)?;
                        s.copy(pos, end)?;
                        pos = end;
                        if expect == Expect::Key {
                            let colon = skip_ws(s.input(), pos);
                            match s.input().get(colon) {
                                Some(b':') => {}
                                Some(&b) => {
                                    return Err(err(colon, JsonErrorKind::UnexpectedByte(b)));
                                }
                                None => return Err(err(len, JsonErrorKind::UnexpectedEnd)),
                            }
                            pos = skip_ws(s.input(), colon + 1);
                            s.put(if pretty { b": " } else { b":" }, pos)?;
                            expect = Expect::Value;
                        } else {
                            expect = Expect::Next;
                        }
                    }
                    b'-' | b'0'..=b'9' => {
                        let end = scan_number(input, pos)?;
                        s.copy(pos, end)?;
                        pos = end;
                        expect = Expect::Next;
                    }
                    b't' | b'f' | b'n' => {
                        let word: &[u8] = match c {
                            b't' => b"true",
                            b'f' => b"false",
                            _ => b"null",
                        };
                        if input.get(pos..pos + word.len()) != Some(word) {
                            return Err(err(pos, JsonErrorKind::BadLiteral));
                        }
                        s.copy(pos, pos + word.len())?;
                        pos += word.len();
                        expect = Expect::Next;
                    }
                    _ => return Err(err(pos, JsonErrorKind::UnexpectedByte(c))),
                }
            }
            Expect::Next => {
                let next = skip_ws(input, pos);
                if depth == 0 {
                    if next < len {
                        return Err(err(next, JsonErrorKind::TrailingData));
                    }
                    if pretty {
                        s.put(b"\n", len)?;
                    }
                    return Ok(());
                }
                let Some(&c) = input.get(next) else {
                    return Err(err(len, JsonErrorKind::UnexpectedEnd));
                };
                let level = depth - 1;
                let in_object = objects
                    .get(level / 8)
                    .is_some_and(|byte| byte & (1 << (level % 8)) != 0);
                let close = if in_object { b'}' } else { b']' };
                if c == b',' {
                    pos = skip_ws(input, next + 1);
                    s.put(b",", pos)?;
                    newline(s, depth, pos, pretty)?;
                    expect = if in_object {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                } else if c == close {
                    depth -= 1;
                    pos = next + 1;
                    newline(s, depth, pos, pretty)?;
                    s.put(&[close], pos)?;
                } else {
                    return Err(err(next, JsonErrorKind::UnexpectedByte(c)));
                }
            }
        }
    }
}

/// The end (one past the closing quote) of the string starting at `start`.
fn scan_string(input: &[u8], start: usize) -> Result<usize, Fail> {
    let mut i = start + 1;
    loop {
        let Some(&b) = input.get(i) else {
            return Err(err(input.len(), JsonErrorKind::UnexpectedEnd));
        };
        match b {
            b'"' => return Ok(i + 1),
            b'\\' => {
                let Some(&e) = input.get(i + 1) else {
                    return Err(err(input.len(), JsonErrorKind::UnexpectedEnd));
                };
                match e {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let unit = hex4(input, i + 2)?;
                        if (0xDC00..0xE000).contains(&unit) {
                            return Err(err(i, JsonErrorKind::LoneSurrogate));
                        }
                        if (0xD800..0xDC00).contains(&unit) {
                            let low = i + 6;
                            if input.get(low..low + 2) != Some(b"\\u") {
                                return Err(err(i, JsonErrorKind::LoneSurrogate));
                            }
                            let unit = hex4(input, low + 2)?;
                            if !(0xDC00..0xE000).contains(&unit) {
                                return Err(err(i, JsonErrorKind::LoneSurrogate));
                            }
                            i = low + 6;
                        } else {
                            i += 6;
                        }
                    }
                    _ => return Err(err(i, JsonErrorKind::BadEscape)),
                }
            }
            0x00..=0x1f => return Err(err(i, JsonErrorKind::ControlInString)),
            0x20..=0x7f => i += 1,
            _ => {
                let width = match b {
                    0xC2..=0xDF => 2,
                    0xE0..=0xEF => 3,
                    0xF0..=0xF4 => 4,
                    _ => return Err(err(i, JsonErrorKind::InvalidUtf8)),
                };
                match input.get(i..i + width) {
                    Some(seq) if core::str::from_utf8(seq).is_ok() => i += width,
                    _ => return Err(err(i, JsonErrorKind::InvalidUtf8)),
                }
            }
        }
    }
}

fn hex4(input: &[u8], at: usize) -> Result<u32, Fail> {
    let mut v = 0u32;
    for k in at..at + 4 {
        let n = match input.get(k) {
            Some(&d @ b'0'..=b'9') => d - b'0',
            Some(&d @ b'a'..=b'f') => d - b'a' + 10,
            Some(&d @ b'A'..=b'F') => d - b'A' + 10,
            Some(_) => return Err(err(k, JsonErrorKind::BadEscape)),
            None => return Err(err(input.len(), JsonErrorKind::UnexpectedEnd)),
        };
        v = v * 16 + u32::from(n);
    }
    Ok(v)
}

/// The end of the number starting at `start`.
fn scan_number(input: &[u8], start: usize) -> Result<usize, Fail> {
    let digit = |i: usize| input.get(i).is_some_and(|b| b.is_ascii_digit());
    let digits = |mut i: usize| {
        while digit(i) {
            i += 1;
        }
        i
    };
    let mut i = start;
    if input.get(i) == Some(&b'-') {
        i += 1;
    }
    match input.get(i) {
        Some(b'0') if digit(i + 1) => return Err(err(i, JsonErrorKind::LeadingZero)),
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i),
        _ => return Err(err(i, JsonErrorKind::BadNumber)),
    }
    if input.get(i) == Some(&b'.') {
        if !digit(i + 1) {
            return Err(err(i + 1, JsonErrorKind::BadNumber));
        }
        i = digits(i + 1);
    }
    if matches!(input.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(input.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digit(i) {
            return Err(err(i, JsonErrorKind::BadNumber));
        }
        i = digits(i);
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty_str(input: &str) -> Result<heapless::String<512>, PrettyError> {
        let mut out = [0u8; 512];
        let n = pretty(input.as_bytes(), &mut out)?;
        let mut s = heapless::String::new();
        s.push_str(core::str::from_utf8(&out[..n]).unwrap())
            .unwrap();
        Ok(s)
    }

    fn kind(input: &str) -> (usize, JsonErrorKind) {
        let e = validate(input.as_bytes()).unwrap_err();
        (e.offset, e.kind)
    }

    #[test]
    fn scalars_and_empty_containers() {
        for (i, o) in [
            ("null", "null\n"),
            (" true ", "true\n"),
            ("-0.5e+10", "-0.5e+10\n"),
            ("\"a\\u00e9\\ud83d\\ude00\"", "\"a\\u00e9\\ud83d\\ude00\"\n"),
            ("[ ]", "[]\n"),
            ("{\n}", "{}\n"),
        ] {
            assert_eq!(pretty_str(i).unwrap().as_str(), o, "input {i:?}");
        }
    }

    #[test]
    fn nested_layout_matches_serde_json_pretty() {
        let out = pretty_str(r#"{"a":[1,{"b":null,"c":[]}],"d":{}}"#).unwrap();
        assert_eq!(
            out.as_str(),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": null,\n      \"c\": []\n    }\n  ],\n  \"d\": {}\n}\n"
        );
        // Already indented input comes out the same.
        assert_eq!(pretty_str(&out).unwrap(), out);
    }

    #[test]
    fn errors_point_at_the_offending_byte() {
        assert_eq!(kind(""), (0, JsonErrorKind::NoValue));
        assert_eq!(kind("  \n"), (3, JsonErrorKind::NoValue));
        assert_eq!(kind("{"), (1, JsonErrorKind::UnexpectedEnd));
        assert_eq!(kind("{\"a\":1"), (6, JsonErrorKind::UnexpectedEnd));
        assert_eq!(kind("[1,]"), (3, JsonErrorKind::UnexpectedByte(b']')));
        assert_eq!(kind("{1:2}"), (1, JsonErrorKind::KeyNotString));
        assert_eq!(kind("{\"a\" 1}"), (5, JsonErrorKind::UnexpectedByte(b'1')));
        assert_eq!(kind("01"), (0, JsonErrorKind::LeadingZero));
        assert_eq!(kind("1 2"), (2, JsonErrorKind::TrailingData));
        assert_eq!(kind("-"), (1, JsonErrorKind::BadNumber));
        assert_eq!(kind("1."), (2, JsonErrorKind::BadNumber));
        assert_eq!(kind("1e"), (2, JsonErrorKind::BadNumber));
        assert_eq!(kind("tru"), (0, JsonErrorKind::BadLiteral));
        assert_eq!(kind("\"a\tb\""), (2, JsonErrorKind::ControlInString));
        assert_eq!(kind("\"\\x\""), (1, JsonErrorKind::BadEscape));
        assert_eq!(kind("\"\\ud800\""), (1, JsonErrorKind::LoneSurrogate));
        assert_eq!(kind("\"\\udc00\""), (1, JsonErrorKind::LoneSurrogate));
        assert_eq!(kind("\"\\u12\""), (5, JsonErrorKind::BadEscape));
        assert_eq!(
            validate(b"\"\xff\"").unwrap_err().kind,
            JsonErrorKind::InvalidUtf8
        );
        assert_eq!(
            validate(b"\"\xe2\x82\"").unwrap_err(),
            JsonError {
                offset: 1,
                kind: JsonErrorKind::InvalidUtf8
            }
        );
        assert_eq!(kind("\"abc"), (4, JsonErrorKind::UnexpectedEnd));
    }

    #[test]
    fn a_leading_zero_is_its_own_error_at_the_zero() {
        assert_eq!(kind("01"), (0, JsonErrorKind::LeadingZero));
        assert_eq!(kind("-007"), (1, JsonErrorKind::LeadingZero));
        assert_eq!(kind("[1, 02]"), (4, JsonErrorKind::LeadingZero));
        assert_eq!(kind("{\"a\": 00.5}"), (6, JsonErrorKind::LeadingZero));
        // A lone zero, a zero with a fraction or an exponent stay valid.
        for ok in ["0", "-0", "0.5", "0e3", "[0,0]", "-0.0E-1"] {
            assert!(validate(ok.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let mut deep = [b'['; MAX_DEPTH + 1];
        assert_eq!(validate(&deep).unwrap_err().kind, JsonErrorKind::TooDeep);
        let mut ok = [0u8; MAX_DEPTH * 2];
        ok[..MAX_DEPTH].fill(b'[');
        ok[MAX_DEPTH..].fill(b']');
        assert!(validate(&ok).is_ok());
        deep[MAX_DEPTH] = b']';
        assert!(validate(&deep).is_err());
    }

    #[test]
    fn too_small_buffers_learn_the_size_they_need() {
        let mut out = [0u8; 4];
        let needed = pretty_len(b"[1,2]").unwrap();
        assert_eq!(
            pretty(b"[1,2]", &mut out),
            Err(PrettyError::BufferTooSmall {
                needed,
                capacity: 4
            })
        );
    }

    #[test]
    fn compact_then_pretty_from_front_round_trips() {
        let text = b"{ \"a\" : [ 1 , \"x y\\\" z\" ] ,\n \"b\": {} }";
        let mut buf = [0u8; 128];
        buf[..text.len()].copy_from_slice(text);
        let n = compact_in_place(&mut buf, text.len()).unwrap();
        assert_eq!(&buf[..n], b"{\"a\":[1,\"x y\\\" z\"],\"b\":{}}");
        let m = pretty_from_front(&mut buf, n).unwrap();
        let mut two = [0u8; 128];
        let k = pretty(text, &mut two).unwrap();
        assert_eq!(&buf[..m], &two[..k]);
    }

    #[test]
    fn members_and_elements_give_value_ranges() {
        let doc = br#"{"seq": 12, "k\"ey": {"x": [1, "]"]}, "state": ["a", {"b": 2}, 3]}"#;
        let mut seen = heapless::Vec::<(heapless::String<8>, core::ops::Range<usize>), 4>::new();
        for_each_member(doc, |k, v| {
            let mut key = heapless::String::new();
            key.push_str(core::str::from_utf8(k).unwrap()).unwrap();
            seen.push((key, v)).unwrap();
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(&doc[seen[0].1.clone()], b"12");
        assert_eq!(seen[1].0.as_str(), "k\\\"ey");
        assert_eq!(&doc[seen[1].1.clone()], br#"{"x": [1, "]"]}"#);
        let state = &doc[seen[2].1.clone()];
        let mut elements = heapless::Vec::<core::ops::Range<usize>, 4>::new();
        for_each_element(state, |r| elements.push(r).unwrap()).unwrap();
        assert_eq!(&state[elements[1].clone()], br#"{"b": 2}"#);
        assert_eq!(&state[elements[2].clone()], b"3");
        let mut none = 0;
        for_each_element(b"[]", |_| none += 1).unwrap();
        assert_eq!(none, 0);
        assert!(for_each_element(b"{}", |_| ()).is_err());
    }

    #[test]
    fn in_place_matches_two_buffer_output() {
        let compact = br#"{"users":[{"name":"root","uid":0,"tags":["a","b"]},{"name":"x","uid":1000,"tags":[]}],"ok":true}"#;
        let mut two = [0u8; 256];
        let n = pretty(compact, &mut two).unwrap();
        // Exactly the size needed, input at the tail.
        let mut buf = [0u8; 256];
        let start = n - compact.len();
        buf[start..n].copy_from_slice(compact);
        let m = pretty_in_place(&mut buf[..n], start).unwrap();
        assert_eq!(&buf[..m], &two[..n]);
        // One byte short is refused, not clobbered into something wrong.
        let mut short = [0u8; 256];
        short[start - 1..n - 1].copy_from_slice(compact);
        assert!(matches!(
            pretty_in_place(&mut short[..n - 1], start - 1),
            Err(PrettyError::BufferTooSmall { .. })
        ));
    }
}
