//! What a program file is, read from its own headers: an ELF program's class and whether it has
//! a `PT_INTERP` (dynamically linked: the loader runs, and reads `LD_PRELOAD`), or a `#!`
//! script's interpreter line. Only the parts needed are read (`ReadCache`), not the whole file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use object::elf::{FileHeader32, FileHeader64, PT_INTERP};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, ReadCache};

/// An ELF program's class and linking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf {
    /// 32 or 64.
    pub class: u8,
    /// The `PT_INTERP` path; `None`: statically linked.
    pub interp: Option<String>,
}

impl Elf {
    /// "dynamically" or "statically".
    pub fn linking(&self) -> &'static str {
        if self.interp.is_some() {
            "dynamically"
        } else {
            "statically"
        }
    }
}

/// What a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ELF program.
    Elf(Elf),
    /// A `#!` script.
    Script {
        /// The `#!` line without `#!`, as written (at most 254 bytes).
        line: String,
        /// The program that runs it (`env NAME` followed through `PATH`), if the line names one.
        interp: Option<PathBuf>,
        /// That program, when it is a readable ELF program.
        elf: Option<Elf>,
    },
    /// Neither.
    Other,
    /// Not readable by this user.
    Unreadable,
}

impl Kind {
    /// The ELF program the loader would run: the file's own, or its interpreter's.
    pub fn elf(&self) -> Option<&Elf> {
        match self {
            Kind::Elf(e) => Some(e),
            Kind::Script { elf, .. } => elf.as_ref(),
            _ => None,
        }
    }
}

/// Reads an ELF file's class and `PT_INTERP`; `None` if it is not one (or is truncated).
pub fn read_elf(path: &Path) -> Option<Elf> {
    let mut file = File::open(path).ok()?;
    let mut ident = [0u8; 5];
    file.read_exact(&mut ident).ok()?;
    if ident[..4] != *b"\x7fELF" {
        return None;
    }
    let cache = ReadCache::new(file);
    match ident[4] {
        1 => elf_of::<FileHeader32<Endianness>>(&cache, 32),
        2 => elf_of::<FileHeader64<Endianness>>(&cache, 64),
        _ => None,
    }
}

fn elf_of<H: FileHeader<Endian = Endianness>>(cache: &ReadCache<File>, class: u8) -> Option<Elf> {
    let header = H::parse(cache).ok()?;
    let endian = header.endian().ok()?;
    let mut interp = None;
    for ph in header.program_headers(endian, cache).ok()? {
        if ph.p_type(endian) == PT_INTERP {
            let data = ph.data(endian, cache).ok()?;
            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            interp = Some(String::from_utf8_lossy(&data[..end]).into_owned());
        }
    }
    Some(Elf { class, interp })
}

/// Describes `path`, following a script's `#!` line (and `env NAME`) to its interpreter.
pub fn describe(path: &Path, find: impl Fn(&str) -> Option<PathBuf>) -> Kind {
    let Ok(mut file) = File::open(path) else {
        return Kind::Unreadable;
    };
    let mut head = [0u8; 256];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return Kind::Unreadable,
        }
    }
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = String::from_utf8_lossy(&rest[..end]).into_owned();
        let interp = script_interpreter(&line, find);
        let elf = interp.as_deref().and_then(read_elf);
        return Kind::Script { line, interp, elf };
    }
    match read_elf(path) {
        Some(e) => Kind::Elf(e),
        None => Kind::Other,
    }
}

/// The program a `#!` line runs: its first word, or for `/usr/bin/env [-S] [VAR=x] NAME` the
/// NAME found through `PATH`.
fn script_interpreter(line: &str, find: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if !first.ends_with("/env") {
        return Some(PathBuf::from(first));
    }
    let name = words.find(|w| !w.starts_with('-') && !w.contains('='))?;
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    Some(find(name).unwrap_or_else(|| PathBuf::from(name)))
}
