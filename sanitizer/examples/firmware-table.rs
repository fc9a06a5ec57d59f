//! Prints the firmware-view model (`sanitizer/src/firmware.rs`) in Markdown, as doc/rules.md's
//! "What the firmware reads" section shows it, between `<!-- firmware-view:begin -->` and
//! `<!-- firmware-view:end -->` (a test keeps the two equal):
//!
//!     cargo run -q -p mfiguard-sanitizer --example firmware-table
#![allow(clippy::print_stdout)] // printing the table is the point

fn main() {
    print!("{}", mfiguard_sanitizer::firmware::markdown());
}
