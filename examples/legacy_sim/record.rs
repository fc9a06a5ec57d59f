//! The JSON record of each call (the tests' oracle), the verbosity and delay knobs, and names.

use super::*;

// ---- the JSON record -----------------------------------------------------------------------

/// A JSON object written field by field (the simulator has no serde).
pub(crate) struct Json(String);

impl Json {
    pub(crate) fn new() -> Json {
        Json(String::from("{"))
    }
    pub(crate) fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "\"{k}\":");
    }
    pub(crate) fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push_str(&quote(v));
        self
    }
    pub(crate) fn hex(&mut self, k: &str, v: u64) -> &mut Self {
        self.str(k, &format!("{v:#x}"))
    }
    pub(crate) fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.0.push_str(v);
        self
    }
    pub(crate) fn null(&mut self, k: &str) -> &mut Self {
        self.raw(k, "null")
    }
    pub(crate) fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn json_array<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let parts: Vec<String> = items.iter().map(f).collect();
    format!("[{}]", parts.join(","))
}

/// Appends one line to `MFISIM_RECORD` with a single `write` on an `O_APPEND` descriptor.
pub(crate) fn append_record(line: &str) {
    let Some(path) = std::env::var_os("MFISIM_RECORD") else {
        return;
    };
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(&buf);
    }
}

/// `MFISIM_VERBOSE`: unset or `0` quiet, `1` one line per call, `2` (or `explain`) the call
/// told step by step, driver then firmware, as the demo shows it.
pub(crate) fn verbosity() -> u8 {
    static V: OnceLock<u8> = OnceLock::new();
    *V.get_or_init(|| match std::env::var("MFISIM_VERBOSE").as_deref() {
        Err(_) | Ok("" | "0") => 0,
        Ok("2" | "explain") => 2,
        Ok(_) => 1,
    })
}

/// `MFISIM_DELAY_US`: how long the driver waits for the firmware in each
/// `MEGASAS_IOC_FIRMWARE` call (default 0). The wait resumes after a signal handler ran, as
/// the driver's own wait does, so the call always takes at least this long.
pub(crate) fn delay_us() -> u64 {
    static D: OnceLock<u64> = OnceLock::new();
    *D.get_or_init(|| {
        std::env::var("MFISIM_DELAY_US")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Waits `MFISIM_DELAY_US` inside the call: a thread blocked in the "kernel", where a signal
/// can interrupt it (std's sleep restarts after `EINTR` with the time that remains).
pub(crate) fn firmware_delay() {
    let us = delay_us();
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

pub(crate) fn verbose() -> bool {
    verbosity() > 0
}

pub(crate) static SEQ: AtomicU32 = AtomicU32::new(1);

// ---- names ---------------------------------------------------------------------------------

pub(crate) fn cmd_name(cmd: u8) -> String {
    const NAMES: [&str; 11] = [
        "INIT",
        "LD_READ",
        "LD_WRITE",
        "LD_SCSI_IO",
        "PD_SCSI_IO",
        "DCMD",
        "ABORT",
        "SMP",
        "STP",
        "NVME",
        "TOOLBOX",
    ];
    NAMES
        .get(usize::from(cmd))
        .map_or_else(|| format!("{cmd:#04x}"), |s| (*s).to_owned())
}

pub(crate) fn status_name(status: u8) -> &'static str {
    match status {
        0x00 => "OK",
        0x01 => "INVALID_CMD",
        0x02 => "INVALID_DCMD",
        0x03 => "INVALID_PARAMETER",
        0x05 => "ABORT_NOT_POSSIBLE",
        0x0C => "DEVICE_NOT_FOUND",
        0x2D => "SCSI_DONE_WITH_ERROR",
        0x2E => "SCSI_IO_FAILED",
        0xFF => "INVALID_STATUS",
        _ => "OTHER",
    }
}

pub(crate) fn flags_name(flags: u16) -> String {
    let mut parts = Vec::new();
    for (bit, name) in [
        (MFI_FRAME_IEEE, "IEEE"),
        (MFI_FRAME_SGL64, "SGL64"),
        (MFI_FRAME_SENSE64, "SENSE64"),
        (0x0001, "DONT_POST_IN_REPLY_QUEUE"),
    ] {
        if flags & bit != 0 {
            parts.push(name.to_owned());
        }
    }
    match flags & 0x0018 {
        0x0008 => parts.push("DIR_WRITE".into()),
        0x0010 => parts.push("DIR_READ".into()),
        0x0018 => parts.push("DIR_BOTH".into()),
        _ => {}
    }
    let unknown = flags & !0x003F;
    if unknown != 0 {
        parts.push(format!("{unknown:#06x}"));
    }
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join("|")
    }
}
