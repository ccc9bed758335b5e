//! Arbitrary bytes as the binary files of the Slots and Journal protocols:
//! `slots::load` over two slot files, and a journal (snapshot + framed
//! records) through the lock-free replay and the repairing recovery. Each
//! must give a value, `Corrupt`, `TooLarge` or (a snapshot nested deeper
//! than the validator supports) `Unsupported`, never panic; a journal
//! that recovered replays the same records again, and takes an append
//! that replays last.
#![no_main]

use fsatomic::error::{LoadError, RecoverError};
use fsatomic::journal::{Entry, Journal};
use fsatomic::{Dir, Mode};
use fsatomic_testkit::profile::Profile;
use fsatomic_testkit::sim::{Image, SimFs};
use libfuzzer_sys::fuzz_target;

/// The journal's entries as replay (or, if `repair`, recovery) visits
/// them; `Err` if it is corrupt or unsupported.
fn records<D: Dir>(j: &Journal<'_>, dir: &mut D, repair: bool) -> Result<Vec<(u64, Vec<u8>)>, ()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = Vec::new();
    let mut visit = |e: Entry<'_>, _: &mut [u8]| {
        match e {
            Entry::Snapshot { seq, state } => {
                seen.clear();
                seen.push((seq, state.to_vec()));
            }
            Entry::Record { seq, payload, .. } => seen.push((seq, payload.to_vec())),
        }
        Ok(())
    };
    let r = if repair {
        j.recover(dir, &mut buf, &mut visit)
            .map(drop)
            .map_err(|e| match e {
                RecoverError::Corrupt(_) | RecoverError::Unsupported { .. } => {}
                e => panic!("recover: {e}"),
            })
    } else {
        j.replay(dir, &mut buf, &mut visit)
            .map(drop)
            .map_err(|e| match e {
                LoadError::Corrupt(_)
                | LoadError::TooLarge { .. }
                | LoadError::Unsupported { .. } => {}
                e => panic!("replay: {e}"),
            })
    };
    r.map(|()| seen)
}

/// An image of the files `(bit, name, content)` whose bit in `flags` is
/// clear.
fn with_files(flags: u8, files: [(u8, &str, &[u8]); 2]) -> Image {
    let mut image = Image::new();
    for (bit, name, content) in files {
        if flags & bit == 0 {
            image = image.with_file(name, content, 0o600);
        }
    }
    image
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let cut = if rest.is_empty() {
        0
    } else {
        usize::from(flags) * rest.len() / 256
    };
    let (first, second) = rest.split_at(cut);

    // Slots: `first` and `second` as the two slot files (either may be
    // missing).
    let image = with_files(flags, [(1, "cfg.json.a", first), (2, "cfg.json.b", second)]);
    let mut fs = SimFs::from_image(image, Profile::Fat, 512, 0);
    let mut buf = vec![0u8; 1 << 16];
    match fsatomic::slots::load(&mut fs, "cfg.json", &mut buf) {
        Ok(_) | Err(LoadError::Corrupt(_) | LoadError::TooLarge { .. }) => {}
        Err(e) => panic!("slots::load: {e}"),
    }

    // Journal: `first` as the snapshot, `second` as the journal file.
    let image = with_files(flags, [(4, "s.json", first), (8, "s.json.journal", second)]);
    let mut fs = SimFs::from_image(image, Profile::PosixWorst, 4096, 1);
    let j = Journal::new("s.json", Mode::PRIVATE).unwrap();
    let read = records(&j, &mut fs, false);
    let Ok(recovered) = records(&j, &mut fs, true) else {
        return;
    };
    // Recovery keeps what a reader saw (it only cuts a torn tail, which
    // readers ignore, or finishes a compaction).
    if let Ok(read) = read {
        assert_eq!(read.last(), recovered.last(), "recovery changed the state");
    }
    // After recovery: replay is clean and agrees; an append lands last.
    assert_eq!(records(&j, &mut fs, false).as_ref().ok(), Some(&recovered));
    let mut buf = vec![0u8; 1 << 16];
    let tail = j
        .recover(&mut fs, &mut buf, &mut |_, _| Ok(()))
        .expect("a recovered journal recovers again");
    let mut tail = tail.tail;
    let seq = j
        .append(&mut fs, &mut tail, &[b"{\"k\":1}"])
        .expect("append after recovery");
    let after = records(&j, &mut fs, false).expect("replay after append");
    assert_eq!(after.last(), Some(&(seq, b"{\"k\":1}".to_vec())));
});
