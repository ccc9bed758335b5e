//! The size budget: the smallest firmware a settings struct needs — one
//! serde struct kept with [`fsatomic::nor::NorSlots`] in two 2 KiB
//! sectors, no error formatting, no directory, no journal. Built at
//! opt-level "z" with LTO like the main firmware; `boards/lib/bare-metal.sh`
//! sums its symbols by crate (the library's own code) and runs it under
//! qemu, where it paints the stack around one commit and one load and
//! prints the two figures.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[path = "../stack.rs"]
mod stack;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use fsatomic::nor::NorSlots;
use fsatomic::nor::ram::RamNor;
use serde::{Deserialize, Serialize};

/// The caller's buffer: the document, and room to unescape its strings.
const BUF: usize = 128;

#[derive(Serialize, Deserialize, Default, PartialEq)]
struct Settings {
    volume: u8,
    muted: bool,
    name: heapless::String<16>,
}

type Flash = RamNor<4096, 4, 2048>;

#[entry]
fn main() -> ! {
    static mut FLASH: Flash = Flash::zeroed();
    let flash: &mut Flash = FLASH;
    flash.erase_all();
    let Ok(mut slots) = NorSlots::new(flash, 0, 2048) else {
        fail("layout")
    };
    let mut buf = [0u8; BUF];
    let mut settings = Settings::default();
    let _ = settings.name.push_str("kitchen");
    let mut ok = true;
    // One commit first, so that the measured one replaces a version.
    ok &= slots.save(&mut buf, &settings).is_ok();
    settings.volume = 7;
    let save = stack::measure(|| slots.save(&mut buf, &settings).is_ok());
    ok &= save.0;
    let load = stack::measure(|| slots.load_value::<Settings>(&mut buf));
    ok &= matches!(load.0, Ok(Some(ref s)) if *s == settings);
    hprintln!(
        "minimal: stack of a commit (NorSlots::save) {} B, of a load (NorSlots::load_value) {} B, beside the caller's {}-byte buffer",
        save.1.unwrap_or(0),
        load.1.unwrap_or(0),
        BUF
    );
    if !ok {
        fail("a commit or a load failed")
    }
    hprintln!("RESULT: PASS");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

fn fail(what: &str) -> ! {
    hprintln!("minimal: {}", what);
    hprintln!("RESULT: FAIL");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    fail("panic")
}
