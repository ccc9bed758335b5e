//! Arbitrary bytes as a JSON state file, through every JSON loader: the
//! validator, `load::read_json` (with room and without), the serde codec
//! and `Store::load`. Each must give a value, `Corrupt`, `TooLarge` (for a
//! buffer that is too small) or — exactly when the validator says the JSON
//! nests deeper than it supports — `Unsupported`; never panic, never
//! another error; and they must agree with each other.
#![no_main]

use fsatomic::error::{LoadError, StoreError, Unsupported};
use fsatomic::json::JsonErrorKind;
use fsatomic::{Mode, Store};
use fsatomic_testkit::profile::Profile;
use fsatomic_testkit::sim::{Image, SimFs};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Default)]
struct User {
    name: heapless::String<24>,
    uid: u32,
    admin: bool,
    groups: heapless::Vec<heapless::String<8>, 4>,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Default)]
struct Users {
    users: heapless::Vec<User, 4>,
    version: Option<u16>,
}

/// Whether `e` is the error for JSON nested too deep, which must be given
/// exactly when the validator stops at its depth limit.
fn too_deep<E>(e: &LoadError<E>, deep: bool) -> bool {
    let unsupported = matches!(
        e,
        LoadError::Unsupported {
            what: Unsupported::TooDeep,
            ..
        }
    );
    assert_eq!(unsupported, deep, "deep JSON and Unsupported disagree");
    unsupported
}

fuzz_target!(|data: &[u8]| {
    let len = data.len();
    let checked = fsatomic::json::validate(data);
    let valid = checked.is_ok();
    let deep = matches!(checked, Err(e) if e.kind == JsonErrorKind::TooDeep);
    match fsatomic::load::check_json("f.json", data) {
        Ok(()) => assert!(valid),
        Err(c) => {
            assert!(!valid);
            assert!(c.offset <= len as u64, "{c} beyond {len} bytes");
        }
    }

    let image = Image::new().with_file("state.json", data, 0o600);
    let mut fs = SimFs::from_image(image, Profile::PosixWorst, 4096, 0);
    let mut buf = vec![0u8; len + 1];
    match fsatomic::load::read_json(&mut fs, "state.json", &mut buf) {
        Ok(Some(n)) => {
            assert!(valid);
            assert_eq!(&buf[..n], data);
        }
        Ok(None) => panic!("the file exists"),
        Err(LoadError::Corrupt(c)) => {
            assert!(!valid && !deep);
            assert!(c.offset <= len as u64);
        }
        Err(e) if too_deep(&e, deep) => {}
        Err(e) => panic!("read_json: {e}"),
    }
    if len > 1 {
        let mut small = vec![0u8; len / 2];
        match fsatomic::load::read_json(&mut fs, "state.json", &mut small) {
            Err(LoadError::TooLarge { size, .. }) => assert_eq!(size, len as u64),
            other => panic!("a too-small buffer gave {other:?}"),
        }
    }

    let mut buf = vec![0u8; len + 256];
    buf[..len].copy_from_slice(data);
    match fsatomic::codec::decode::<Users, ()>("users.json", &mut buf, len) {
        Ok(users) => {
            assert!(valid);
            // What decodes re-encodes, and decodes back to the same value.
            let mut out = vec![0u8; 8192];
            let n = fsatomic::codec::encode(&users, &mut out).expect("re-encode");
            let mut again = out[..n].to_vec();
            again.resize(n + 256, 0);
            let back: Users =
                fsatomic::codec::decode::<_, ()>("users.json", &mut again, n).unwrap();
            assert_eq!(back, users);
        }
        Err(LoadError::Corrupt(_)) => assert!(!deep),
        Err(LoadError::TooLarge { .. }) => {}
        Err(e) if too_deep(&e, deep) => {}
        Err(e) => panic!("decode: {e:?}"),
    }

    let store: Store<Users> = Store::new("state.json", Mode::PRIVATE);
    let mut buf = vec![0u8; len + 256];
    match store.load(&mut fs, &mut buf) {
        Ok(Some(_)) => assert!(valid),
        Ok(None) => panic!("the file exists"),
        Err(StoreError::Load(LoadError::Corrupt(_))) => assert!(!deep),
        Err(StoreError::Load(LoadError::TooLarge { .. })) => {}
        Err(StoreError::Load(e)) if too_deep(&e, deep) => {}
        Err(e) => panic!("Store::load: {e}"),
    }
    // Loading changed nothing.
    assert_eq!(fs.live().file("state.json"), Some(data));
});
