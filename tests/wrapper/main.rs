//! End-to-end tests of `mfiguard-run` (the native program of `cli/`, built by `tests/common`)
//! and `mfiguard-probe`, each spawning real processes; one file a subject: the command line
//! (`cli`), which library a tool gets (`tool`), `--check` (`check`), the policy, which the
//! wrapper and the library read alike (`config`; the reader, `core/src/config/`, is unit-tested
//! there), and the runs with the real guard (`guard`). The operator integrations are in
//! `tests/integrations.rs`; the helpers in `tests/common/wrapper.rs`.
//!
//! Most tests need only *a* library that loads: a "stand-in", a symlink named `libmfiguard.so`
//! to the C library this process already uses, which loads everywhere and guards nothing. They
//! do not depend on the state of the preload crate. The tests whose names end in `_with_the_guard`
//! load the real `libmfiguard.so` (built by `tests/common`, or `MFIGUARD_TEST_LIB`) and check
//! that it intercepts through the wrapper.
//!
//! `MFIGUARD_TEST_WRAPPER=/usr/bin/mfiguard-run` tests an installed wrapper instead of the tree's.
//!
//! With `MFIGUARD_TEST_TARGET=i686-unknown-linux-gnu` (or a 32-bit `MFIGUARD_TEST_LIB`) the guard
//! is 32-bit: the tests with the guard put it where the wrapper looks for 32-bit programs
//! (`MFIGUARD_LIB_DIR/i386/`) and run 32-bit programs (an i686 probe and client) through the
//! wrapper. `both_libraries_...` lays out both classes (building the other one) and runs a
//! client of each through one wrapper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

#[path = "../common/mod.rs"]
mod common;

mod check;
mod cli;
mod config;
mod guard;
mod tool;
