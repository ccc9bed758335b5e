//! The std adapter as the conformance suite sees it.

use std::io;
use std::path::{Path, PathBuf};

use fsatomic::Mode;
use fsatomic_std::StdDir;
use fsatomic_testkit::conformance::Adapter;

/// `fsatomic_std::StdDir` under test.
pub struct Std;

impl Adapter for Std {
    type Dir = StdDir;
    const NAME: &'static str = "std";

    fn open(path: &Path) -> io::Result<StdDir> {
        StdDir::open(path)
    }

    fn create_all(path: &Path, mode: Mode) -> io::Result<(StdDir, Vec<PathBuf>)> {
        StdDir::create_all(path, mode)
    }

    fn flush_count(dir: &StdDir) -> u64 {
        dir.flush_count()
    }
    fn set_lock_timeout(dir: &mut StdDir, limit: Option<std::time::Duration>) {
        dir.set_lock_timeout(limit);
    }
    fn set_owner(dir: &mut StdDir, owner: fsatomic::Owner) -> std::io::Result<()> {
        dir.set_owner(owner)
    }
}
