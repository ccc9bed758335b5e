//! fsatomic-std's Windows code paths, run under Wine by boards/test: the
//! workspace's own std-adapter tests are Unix-only, so these are the ones
//! that exercise the replacing rename, the locks and the directory of a
//! Windows build.

use std::path::PathBuf;

use fsatomic::{Dir, Mode, Protocol, Store};
use fsatomic_std::StdDir;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct Settings {
    launches: u32,
    ssh: bool,
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("fsatomic-windows-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn runs_on_windows() {
    assert_eq!(
        std::env::consts::OS,
        "windows",
        "this check is for the Windows build"
    );
}

#[test]
fn commits_replace_an_existing_file_and_load_back() {
    let scratch = Scratch::new("replace");
    let mut dir = StdDir::open(&scratch.0).unwrap();
    let store: Store<Settings> = Store::new("settings.json", Mode::PRIVATE);
    let mut buf = [0u8; 256];
    assert_eq!(store.load(&mut dir, &mut buf).unwrap(), None);
    for launches in 1..=5 {
        let value = Settings {
            launches,
            ssh: launches % 2 == 0,
        };
        // From the second commit on, the rename replaces an existing file.
        store.save(&mut dir, &mut buf, &value).unwrap();
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(value));
    }
    let text = std::fs::read_to_string(scratch.0.join("settings.json")).unwrap();
    assert!(text.starts_with("{\n  \"launches\": 5,"), "{text}");
    assert!(text.ends_with("}\n"), "{text}");
}

#[test]
fn update_holds_the_lock_and_a_second_update_follows() {
    let scratch = Scratch::new("update");
    let mut dir = StdDir::open(&scratch.0).unwrap();
    let store: Store<Settings> = Store::new("counter.json", Mode::PRIVATE);
    let mut buf = [0u8; 256];
    for expected in 1..=3 {
        let got = store
            .update(&mut dir, &mut buf, |s| {
                s.launches += 1;
                s.launches
            })
            .unwrap();
        assert_eq!(got, expected);
    }
}

#[test]
fn recovery_sweeps_orphans_and_leaves_other_files() {
    let scratch = Scratch::new("recover");
    let mut dir = StdDir::open(&scratch.0).unwrap();
    let orphan = fsatomic::name::temp_name("state.json", 0x1234);
    std::fs::write(scratch.0.join(orphan.as_str()), b"half").unwrap();
    std::fs::write(scratch.0.join("state.json.tmp"), b"not ours").unwrap();
    let removed = fsatomic::recover::recover(&mut dir, "state.json", Mode::PRIVATE)
        .unwrap()
        .orphans;
    assert_eq!(removed, 1);
    assert!(!scratch.0.join(orphan.as_str()).exists());
    assert!(scratch.0.join("state.json.tmp").exists());
}

#[test]
fn slots_commit_and_load_the_newest() {
    let scratch = Scratch::new("slots");
    let mut dir = StdDir::open(&scratch.0).unwrap();
    let store: Store<Settings> =
        Store::new("usb.json", Mode::PRIVATE).with_protocol(Protocol::Slots);
    let mut buf = [0u8; 256];
    for launches in 1..=3 {
        let value = Settings {
            launches,
            ssh: true,
        };
        store.save(&mut dir, &mut buf, &value).unwrap();
        assert_eq!(store.load(&mut dir, &mut buf).unwrap(), Some(value));
    }
    assert!(scratch.0.join("usb.json.a").exists());
    assert!(scratch.0.join("usb.json.b").exists());
}

#[test]
fn the_directory_lists_and_reports_its_filesystem() {
    let scratch = Scratch::new("list");
    let mut dir = StdDir::open(&scratch.0).unwrap();
    std::fs::write(scratch.0.join("a.json"), b"1\n").unwrap();
    let mut names = Vec::new();
    dir.for_each_entry(&mut |n| {
        names.push(n.to_owned());
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(names, ["a.json"]);
    eprintln!("capabilities: {:?}", dir.capabilities());
}
