//! Prints the rule table in Markdown, as doc/rules.md shows it.
#![allow(clippy::print_stdout)] // printing the table is the point

fn main() {
    print!("{}", mfiguard_sanitizer::policy::rules_markdown());
}
