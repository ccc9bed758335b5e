//! The JSON validator and re-indenter: `validate` accepts exactly what
//! `pretty_len` and `pretty` accept; the indented output re-validates, is
//! its own indentation (idempotent), ends in a newline; compacting first
//! changes nothing; the in-place variants agree with `pretty`; a buffer one
//! byte short is an error, not a panic or a cut document.
#![no_main]

use fsatomic::json::{self, PrettyError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let valid = json::validate(data).is_ok();
    let needed = json::pretty_len(data);
    assert_eq!(needed.is_ok(), valid);
    let mut compact = data.to_vec();
    let compacted = json::compact_in_place(&mut compact, data.len());
    assert_eq!(compacted.is_ok(), valid);
    let Ok(n) = needed else {
        let mut out = vec![0u8; data.len() * 4 + 64];
        assert!(matches!(
            json::pretty(data, &mut out),
            Err(PrettyError::Json(_))
        ));
        return;
    };

    let mut out = vec![0u8; n];
    assert_eq!(json::pretty(data, &mut out), Ok(n));
    assert!(
        json::validate(&out).is_ok(),
        "indented output does not validate"
    );
    assert_eq!(out.last(), Some(&b'\n'));
    let mut again = vec![0u8; n];
    assert_eq!(json::pretty(&out, &mut again), Ok(n));
    assert_eq!(again, out, "indenting is not idempotent");
    if n > 0 {
        let mut short = vec![0u8; n - 1];
        assert!(matches!(
            json::pretty(data, &mut short),
            Err(PrettyError::BufferTooSmall { .. })
        ));
    }

    let m = compacted.unwrap();
    let compact = &compact[..m];
    assert!(json::validate(compact).is_ok());
    let mut from_compact = vec![0u8; n];
    assert_eq!(json::pretty(compact, &mut from_compact), Ok(n));
    assert_eq!(from_compact, out, "compacting changed the document");

    let cap = n.max(m);
    let mut front = vec![0u8; cap];
    front[..m].copy_from_slice(compact);
    assert_eq!(json::pretty_from_front(&mut front, m), Ok(n));
    assert_eq!(&front[..n], &out[..]);

    let mut back = vec![0u8; cap];
    back[cap - m..].copy_from_slice(compact);
    assert_eq!(json::pretty_in_place(&mut back, cap - m), Ok(n));
    assert_eq!(&back[..n], &out[..]);
});
