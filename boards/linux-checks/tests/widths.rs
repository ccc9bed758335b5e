//! What differs on a 32-bit board: `usize` is 32 bits there, but file
//! sizes, file offsets and times must not be. Each check goes through the
//! same code a NAS daemon runs: `fsatomic-linux` over rustix, the core's
//! loader, serde-json-core.
//!
//! boards/test runs these for every Linux board and sets
//! `BOARD_POINTER_BITS`, so that a run also proves it ran on the width it
//! claims.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use embedded_io::{Read, Seek, SeekFrom, Write};
use fsatomic::{Dir, File, LoadError, Mode, Store, StoreError};
use fsatomic_linux::LinuxDir;
use serde::{Deserialize, Serialize};

const GIB: u64 = 1 << 30;

/// A scratch directory under the system's temporary directory, removed
/// when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "fsatomic-board-checks-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn dir(&self) -> LinuxDir {
        LinuxDir::open(&self.0).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_board_has_the_pointer_width_it_claims() {
    eprintln!(
        "usize is {} bits on {}",
        usize::BITS,
        std::env::consts::ARCH
    );
    if let Ok(bits) = std::env::var("BOARD_POINTER_BITS") {
        assert_eq!(usize::BITS.to_string(), bits);
    }
}

#[test]
fn a_file_past_4_gib_is_reported_with_its_whole_size() {
    let scratch = Scratch::new("size");
    let mut dir = scratch.dir();
    let size = 5 * GIB + 3;
    let mut file = dir.create_new("big.json", Mode::PRIVATE).unwrap();
    file.set_len(size).unwrap(); // sparse: no disk space used
    assert_eq!(file.seek(SeekFrom::End(0)).unwrap(), size);
    drop(file);
    assert_eq!(
        std::fs::metadata(scratch.path().join("big.json"))
            .unwrap()
            .len(),
        size
    );

    let mut buf = [0u8; 64];
    match fsatomic::load::read(&mut dir, "big.json", &mut buf) {
        Err(LoadError::TooLarge {
            size: reported,
            capacity,
            ..
        }) => {
            assert_eq!(reported, size, "size cut to {} bits?", usize::BITS);
            assert_eq!(capacity, 64);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn offsets_past_4_gib_read_and_write_where_they_say() {
    let scratch = Scratch::new("offset");
    let mut dir = scratch.dir();
    let at = 4 * GIB + 10;
    let mut file = dir.create_new("far.bin", Mode::PRIVATE).unwrap();
    assert_eq!(file.seek(SeekFrom::Start(at)).unwrap(), at);
    file.write_all(b"tail").unwrap();
    assert_eq!(file.seek(SeekFrom::Current(0)).unwrap(), at + 4);
    assert_eq!(file.seek(SeekFrom::Current(-4)).unwrap(), at);
    let mut back = [0u8; 4];
    file.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"tail");
    // The low 32 bits of the offset hold zeros, not the tail.
    file.seek(SeekFrom::Start(10)).unwrap();
    file.read_exact(&mut back).unwrap();
    assert_eq!(back, [0; 4]);
}

#[test]
fn file_times_past_2038_survive() {
    let scratch = Scratch::new("time");
    let path = scratch.path().join("stamp");
    std::fs::write(&path, b"x").unwrap();
    // 2^31 seconds is 2038-01-19; one year later needs a 64-bit time_t.
    let when = UNIX_EPOCH + Duration::from_secs((1 << 31) + 365 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(when)
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), when);
    // And the clock itself reads a present-day time, not 1970 or 1901.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    assert!(
        now > Duration::from_secs(1_700_000_000),
        "clock reads {now:?}"
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct Wide {
    generation: u64,
    offset: i64,
    count: u32,
    small: i8,
    ratio: f32,
}

#[test]
fn sixty_four_bit_values_round_trip_through_a_store() {
    let scratch = Scratch::new("store");
    let mut dir = scratch.dir();
    let store: Store<Wide> = Store::new("wide.json", Mode::PRIVATE);
    let mut buf = [0u8; 256];
    let value = Wide {
        generation: u64::MAX,
        offset: i64::MIN,
        count: u32::MAX,
        small: -128,
        ratio: 0.5,
    };
    store.save(&mut dir, &mut buf, &value).unwrap();
    let text = std::fs::read_to_string(scratch.path().join("wide.json")).unwrap();
    assert!(text.contains("18446744073709551615"), "{text}");
    assert!(text.contains("-9223372036854775808"), "{text}");
    assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(value));

    // One past u32::MAX where the type is u32 is an error, not a wrap.
    std::fs::write(
        scratch.path().join("wide.json"),
        b"{\"generation\":1,\"offset\":1,\"count\":4294967296,\"small\":0,\"ratio\":0}\n",
    )
    .unwrap();
    match store.load(&mut dir, &mut buf) {
        Err(StoreError::Load(LoadError::Corrupt(_))) => {}
        other => panic!("a u32 overflow must be Corrupt, got {other:?}"),
    }
}
