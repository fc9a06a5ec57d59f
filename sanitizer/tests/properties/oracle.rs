//! An independent model of section 4 of the spec, and the checks the property tests and the fuzz
//! target (`fuzz/fuzz_targets/decide.rs`, which includes this file by path) run on every input.
//!
//! The model reads the packet with its own offsets (not the crate's wire structs) and states each
//! rule's condition as the rule table words it, so a slip in either shows up as a disagreement.
//! Every check returns `Err(message)` instead of panicking, so the caller can add the input.
//! Every packet a policy without allowed rules lets through is also run through the firmware-view
//! oracle (`firmware.rs`, which each includer declares next to this module): every address the
//! firmware uses must be one the driver wrote, for each driver generation.

#![allow(dead_code)] // each includer uses a different part

use super::firmware;
use mfiguard_sanitizer::readonly;
use mfiguard_sanitizer::{
    decide, Abi, Action, Decision, DecodeError, Errno, Mode, Policy, RuleId, RuleSet, Verdict,
};

/// Number of rules, in [`RuleId::ALL`] order.
pub const N: usize = RuleId::ALL.len();

/// Where the frame sits in both layouts, and its length.
pub const FRAME_AT: usize = 0x14;
pub const FRAME_LEN: usize = 128;
/// Where `sgl[]` starts in both layouts.
pub const SGL_AT: usize = 0x94;

/// The packet size of a layout, written out (the crate's own value is checked against it).
pub const fn packet_size(abi: Abi) -> usize {
    match abi {
        Abi::Lp64 => 0x94 + 16 * 16,
        Abi::Ilp32 => 0x94 + 16 * 8,
    }
}

/// The action the spec (section 4) gives each rule.
pub const fn spec_action(rule: RuleId) -> Action {
    match rule {
        RuleId::FrameAddressingFlags
        | RuleId::FrameDontPostFlag
        | RuleId::SglFixedEntryUnwritten
        | RuleId::SglStaleEntry
        | RuleId::SenseLengthMismatch => Action::Rewrite,
        RuleId::XferLength => Action::Warn,
        RuleId::IocSgeCount
        | RuleId::SglOffsetUnusual
        | RuleId::FrameLayoutUnknown
        | RuleId::SenseOffsetUnusual
        | RuleId::SglEmptyEntryPastFrame
        | RuleId::DcmdHostAddress
        | RuleId::FrameCmd
        | RuleId::FrameCmdForbidden
        | RuleId::SglBounds
        | RuleId::SenseBounds
        | RuleId::SenseLength
        | RuleId::SgeLength
        | RuleId::FrameRawPhysicalAddress
        | RuleId::ReadonlyCmd
        | RuleId::ReadonlyDcmd
        | RuleId::ReadonlyScsi
        | RuleId::ReadonlyAta
        | RuleId::ReadonlySmp => Action::Reject,
    }
}

/// The errno of a rejecting rule: EINVAL for the structural rules, EPERM for the read-only
/// policy's.
pub const fn spec_errno(rule: RuleId) -> Option<Errno> {
    match (spec_action(rule), is_readonly(rule)) {
        (Action::Reject, false) => Some(Errno::EINVAL),
        (Action::Reject, true) => Some(Errno::EPERM),
        _ => None,
    }
}

/// The read-only policy's rules.
pub const fn is_readonly(rule: RuleId) -> bool {
    matches!(
        rule,
        RuleId::ReadonlyCmd
            | RuleId::ReadonlyDcmd
            | RuleId::ReadonlyScsi
            | RuleId::ReadonlyAta
            | RuleId::ReadonlySmp
    )
}

/// A rule set from the low bits of a number (bit `i`: `RuleId::ALL[i]`).
pub fn rule_set(bits: u32) -> RuleSet {
    RuleId::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(RuleSet::EMPTY, |set, (_, r)| set.with(*r))
}

/// Position of a rule in [`RuleId::ALL`].
pub fn index(rule: RuleId) -> usize {
    RuleId::ALL
        .iter()
        .position(|r| *r == rule)
        .expect("every rule is in ALL")
}

/// The packet as the model reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Raw {
    pub sgl_off: u32,
    pub sge_count: u32,
    pub sense_off: u32,
    pub sense_len: u32,
    pub frame: [u8; FRAME_LEN],
    pub lens: [u64; 16],
}

fn ne32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn ne64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

impl Raw {
    /// Reads a packet; `None` when `bytes` is shorter than the layout.
    pub fn parse(abi: Abi, bytes: &[u8]) -> Option<Raw> {
        if bytes.len() < packet_size(abi) {
            return None;
        }
        let mut frame = [0u8; FRAME_LEN];
        frame.copy_from_slice(&bytes[FRAME_AT..FRAME_AT + FRAME_LEN]);
        let mut lens = [0u64; 16];
        for (i, len) in lens.iter_mut().enumerate() {
            *len = match abi {
                Abi::Lp64 => ne64(bytes, SGL_AT + 16 * i + 8),
                Abi::Ilp32 => u64::from(ne32(bytes, SGL_AT + 8 * i + 4)),
            };
        }
        Some(Raw {
            sgl_off: ne32(bytes, 0x04),
            sge_count: ne32(bytes, 0x08),
            sense_off: ne32(bytes, 0x0C),
            sense_len: ne32(bytes, 0x10),
            frame,
            lens,
        })
    }

    pub fn cmd(&self) -> u8 {
        self.frame[0]
    }
    pub fn hdr_sense_len(&self) -> u8 {
        self.frame[1]
    }
    pub fn hdr_sge_count(&self) -> u8 {
        self.frame[7]
    }
    pub fn flags(&self) -> u16 {
        u16::from_le_bytes([self.frame[0x10], self.frame[0x11]])
    }
    pub fn data_xferlen(&self) -> u32 {
        le32(&self.frame, 0x14)
    }
    pub fn frame_u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.frame[at..at + 8].try_into().unwrap())
    }

    /// The entries the driver looks at.
    pub fn used(&self) -> &[u64] {
        &self.lens[..(self.sge_count.min(16) as usize)]
    }
    pub fn used_sum(&self) -> u64 {
        self.used().iter().fold(0u64, |s, l| s.saturating_add(*l))
    }

    /// LD read/write and LD/PD pass-through: the frames with a sense address at 0x18.
    pub fn io_frame(&self) -> bool {
        (0x01..=0x04).contains(&self.cmd())
    }

    /// The SGL offset of the frame type, from the spec's table.
    pub fn expected_sgl_off(&self) -> Option<u32> {
        match self.cmd() {
            0x05 | 0x01 | 0x02 => Some(0x28),
            0x03 | 0x04 | 0x08 => Some(0x30),
            0x07 => Some(0x20),
            _ => None,
        }
    }

    /// Whether frame byte `at` is one of the 8 bytes of the sense address the driver writes.
    pub fn is_sense_pointer(&self, at: usize) -> bool {
        let (at, off) = (at as u64, u64::from(self.sense_off));
        self.sense_len > 0 && at >= off && at < off + 8
    }

    /// Frame bytes in the 12-byte slot of a used empty entry: the stale bytes the rule zeroes
    /// (past the header, inside the caller's 128 frame bytes, never the sense pointer).
    pub fn stale_slot_bytes(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, len) in self.used().iter().enumerate() {
            if *len != 0 {
                continue;
            }
            // The slot on a driver writing sge64 entries (12 bytes) and on one writing sge32
            // entries (8 bytes: the legacy driver, or 6.1 without 64-bit DMA).
            for size in [12u64, 8] {
                let start = u64::from(self.sgl_off) + size * i as u64;
                for at in start..start + size {
                    let inside = (0x18..FRAME_LEN as u64).contains(&at);
                    if inside
                        && !self.is_sense_pointer(at as usize)
                        && !out.contains(&(at as usize))
                    {
                        out.push(at as usize);
                    }
                }
            }
        }
        out
    }

    /// SMP and STP frames: the frame bytes of their two fixed entries' slots past `sge_count`
    /// (both strides, at the frame type's SGL offset, inside the 128 bytes past the header,
    /// never the sense pointer), which the driver never writes and the rule zeroes.
    pub fn unwritten_fixed_slot_bytes(&self) -> Vec<usize> {
        let mut out = Vec::new();
        if !matches!(self.cmd(), 0x07 | 0x08) {
            return out;
        }
        let at = u64::from(self.expected_sgl_off().expect("SMP and STP have an SGL"));
        for i in u64::from(self.sge_count)..2 {
            for size in [12u64, 8] {
                for b in at + size * i..at + size * (i + 1) {
                    let b = b as usize;
                    if (0x18..FRAME_LEN).contains(&b)
                        && !self.is_sense_pointer(b)
                        && !out.contains(&b)
                    {
                        out.push(b);
                    }
                }
            }
        }
        out
    }

    /// Which rules match, by the rule table's words. The read-only rules' allowlists are the
    /// crate's own (`readonly::*_is_read_only`); the model restates which frame, which bytes
    /// and which direction each one looks at.
    pub fn expected(&self, readonly: bool) -> [bool; N] {
        let mut hit = [false; N];
        let mut set = |r: RuleId, v: bool| hit[index(r)] = v;
        let sge_count = u64::from(self.sge_count);
        let sgl_off = u64::from(self.sgl_off);
        set(RuleId::FrameAddressingFlags, self.flags() & 0x0026 != 0);
        set(RuleId::FrameDontPostFlag, self.flags() & 0x0001 != 0);
        set(
            RuleId::SglFixedEntryUnwritten,
            self.unwritten_fixed_slot_bytes()
                .iter()
                .any(|at| self.frame[*at] != 0),
        );
        set(RuleId::IocSgeCount, self.sge_count > 16);
        set(RuleId::FrameCmd, self.cmd() >= 0x0B);
        // INIT, LD_READ, LD_WRITE, ABORT.
        set(
            RuleId::FrameCmdForbidden,
            matches!(self.cmd(), 0x00 | 0x01 | 0x02 | 0x06),
        );
        set(
            RuleId::SglBounds,
            sge_count > 0 && !(sgl_off >= 0x18 && sgl_off + 12 * sge_count <= 256),
        );
        set(
            RuleId::SenseBounds,
            self.sense_len > 0 && !(0x18..=56).contains(&self.sense_off),
        );
        set(RuleId::SenseLength, self.sense_len > 4096);
        set(
            RuleId::SgeLength,
            self.used().iter().any(|l| *l > 16 << 20) || self.used_sum() > 64 << 20,
        );
        set(
            RuleId::SglStaleEntry,
            self.stale_slot_bytes()
                .iter()
                .any(|at| self.frame[*at] != 0)
                || u32::from(self.hdr_sge_count()) > self.sge_count,
        );
        set(
            RuleId::FrameRawPhysicalAddress,
            self.io_frame()
                && self.frame_u64(0x18) != 0
                && !(self.sense_len > 0 && self.sense_off == 0x18),
        );
        set(
            RuleId::SenseLengthMismatch,
            self.io_frame() && u32::from(self.hdr_sense_len()) > self.sense_len,
        );
        set(
            RuleId::XferLength,
            u64::from(self.data_xferlen()) > self.used_sum(),
        );
        set(
            RuleId::SglOffsetUnusual,
            sge_count > 0 && self.expected_sgl_off().is_some_and(|e| e != self.sgl_off),
        );
        set(
            RuleId::FrameLayoutUnknown,
            matches!(self.cmd(), 0x09 | 0x0A),
        );
        set(
            RuleId::SenseOffsetUnusual,
            self.sense_len > 0
                && (self.cmd() < 0x0B)
                && !(self.io_frame() && self.sense_off == 0x18),
        );
        set(
            RuleId::SglEmptyEntryPastFrame,
            self.expected_sgl_off().is_some_and(|at| {
                let read = usize::from(self.hdr_sge_count());
                self.used()
                    .iter()
                    .take(read)
                    .enumerate()
                    .any(|(i, len)| *len == 0 && u64::from(at) + 12 * (i as u64 + 1) > 128)
            }),
        );
        set(
            RuleId::DcmdHostAddress,
            self.cmd() == 0x05 && {
                let mbox = &self.frame[0x1C..0x28];
                firmware::HOST_MEMORY_DCMDS.iter().any(|(op, m)| {
                    *op == le32(&self.frame, 0x18) && m.is_none_or(|(i, v)| mbox[i] == v)
                })
            },
        );
        // DIR_WRITE or DIR_BOTH: data goes to the controller.
        let writes = self.flags() & 0x0008 != 0;
        // The driver writes its SGL (every slot below sge_count) and the 8-byte sense address
        // over the frame it copied: classified bytes there are not what the firmware runs.
        let overwritten = |from: u64, to: u64| {
            let sense_off = u64::from(self.sense_off);
            (sge_count > 0 && sgl_off < to && from < sgl_off + 12 * sge_count)
                || (self.sense_len > 0 && sense_off < to && from < sense_off + 8)
        };
        let cdb_len = usize::from(self.frame[6]).min(16);
        let f = &self.frame;
        set(
            RuleId::ReadonlyCmd,
            readonly && !matches!(self.cmd(), 0x03 | 0x04 | 0x05 | 0x07 | 0x08),
        );
        set(
            RuleId::ReadonlyDcmd,
            readonly
                && self.cmd() == 0x05
                && (writes
                    || overwritten(0x18, 0x1C)
                    || !readonly::dcmd_is_read_only(le32(f, 0x18))),
        );
        set(
            RuleId::ReadonlyScsi,
            readonly
                && matches!(self.cmd(), 0x03 | 0x04)
                && (writes
                    || overwritten(0x20, 0x20 + cdb_len as u64)
                    || !readonly::scsi_cdb_is_read_only(&f[0x20..0x20 + cdb_len])),
        );
        set(
            RuleId::ReadonlyAta,
            readonly
                && self.cmd() == 0x08
                && (writes
                    || overwritten(0x18, 0x2C)
                    || !readonly::ata_fis_is_read_only(&f[0x18..0x2C])),
        );
        // Decided from the packet alone, an SMP request was never inspected: refused.
        set(RuleId::ReadonlySmp, readonly && self.cmd() == 0x07);
        hit
    }
}

/// The decision the model expects under `policy`: the first live rejecting rule's errno (the
/// structural rules come first), else a rewrite if a live rewriting rule matched, else a pass.
pub fn expected_decision(hit: &[bool; N], policy: &Policy) -> Decision {
    let live = |r: &RuleId| hit[index(*r)] && !policy.allow.contains(*r);
    if let Some(r) = RuleId::ALL
        .iter()
        .find(|r| live(r) && spec_action(**r) == Action::Reject)
    {
        Decision::Reject(spec_errno(*r).expect("a rejecting rule has an errno"))
    } else if RuleId::ALL
        .iter()
        .any(|r| live(r) && spec_action(*r) == Action::Rewrite)
    {
        Decision::Rewrite
    } else {
        Decision::Pass
    }
}

fn strictness(d: Decision) -> u8 {
    match d {
        Decision::Pass => 0,
        Decision::Rewrite => 1,
        Decision::Reject(_) => 2,
    }
}

/// The verdict agrees with the model: the same rules, each with its (possibly downgraded) action,
/// and the same decision.
pub fn check_model(policy: &Policy, raw: &Raw, v: &Verdict) -> Result<(), String> {
    let hit = raw.expected(policy.readonly);
    for rule in RuleId::ALL {
        let base = spec_action(rule);
        if rule.rule().action != base || rule.rule().errno != spec_errno(rule) {
            return Err(format!("{rule}: the table says {:?}", rule.rule()));
        }
        let got = v.finding(rule);
        if got.is_some() != hit[index(rule)] {
            return Err(format!(
                "{rule}: model says {}, verdict says {:?}",
                hit[index(rule)],
                got
            ));
        }
        if let Some(f) = got {
            let downgraded = policy.allow.contains(rule) && base != Action::Warn;
            let action = if downgraded { Action::Warn } else { base };
            if f.action != action || f.downgraded != downgraded || f.rule != rule {
                return Err(format!(
                    "{rule}: expected {action:?}/{downgraded}, got {f:?}"
                ));
            }
            if f.detail.to_string().is_empty() {
                return Err(format!("{rule}: empty detail"));
            }
        }
    }
    let want = expected_decision(&hit, policy);
    if v.decision() != want {
        return Err(format!("decision {:?}, model {want:?}", v.decision()));
    }
    if v.enforced() != (policy.mode == Mode::Enforce) {
        return Err(format!(
            "enforced() {} under {:?}",
            v.enforced(),
            policy.mode
        ));
    }
    if matches!(want, Decision::Reject(_) | Decision::Pass) != v.rewrites().is_empty() {
        return Err(format!(
            "decision {want:?} with rewrites {:?}",
            v.rewrites()
        ));
    }
    Ok(())
}

/// `after` is `before` with exactly the verdict's rewrites applied, as the model says they are:
/// addressing flags and DONT_POST_IN_REPLY_QUEUE cleared, `hdr.sge_count` lowered,
/// `hdr.sense_len` lowered, the non-zero bytes of stale slots and of unwritten SMP/STP entries
/// zeroed, and nothing else changed.
pub fn check_applied(
    policy: &Policy,
    raw: &Raw,
    v: &Verdict,
    before: &[u8],
    after: &[u8],
) -> Result<(), String> {
    if before.len() != after.len() {
        return Err("apply changed the length".into());
    }
    let hit = raw.expected(policy.readonly);
    let live = |r: RuleId| {
        hit[index(r)] && !policy.allow.contains(r) && !matches!(v.decision(), Decision::Reject(_))
    };
    let mut want = before.to_vec();
    let f = FRAME_AT;
    let mut flags = raw.flags();
    if live(RuleId::FrameAddressingFlags) {
        flags &= !0x0026;
    }
    if live(RuleId::FrameDontPostFlag) {
        flags &= !0x0001;
    }
    want[f + 0x10..f + 0x12].copy_from_slice(&flags.to_le_bytes());
    if live(RuleId::SglStaleEntry) {
        if u32::from(raw.hdr_sge_count()) > raw.sge_count {
            want[f + 7] = raw.sge_count as u8;
        }
        for at in raw.stale_slot_bytes() {
            want[f + at] = 0;
        }
    }
    if live(RuleId::SenseLengthMismatch) {
        want[f + 1] = raw.sense_len as u8;
    }
    if live(RuleId::SglFixedEntryUnwritten) {
        for at in raw.unwritten_fixed_slot_bytes() {
            want[f + at] = 0;
        }
    }
    if want != after {
        let diff: Vec<String> = (0..after.len())
            .filter(|i| want[*i] != after[*i])
            .map(|i| format!("@{i:#x}: want {:#04x} got {:#04x}", want[i], after[i]))
            .collect();
        return Err(format!("apply differs from the model: {}", diff.join(", ")));
    }
    Ok(())
}

/// What every packet a policy without allowed rules lets through satisfies once rewritten.
pub fn check_invariants(raw: &Raw) -> Result<(), String> {
    let fail = |what: &str| Err(format!("invariant broken after apply: {what}: {raw:?}"));
    if raw.flags() & 0x0026 != 0 {
        return fail("addressing flags set");
    }
    if raw.flags() & 0x0001 != 0 {
        return fail("DONT_POST_IN_REPLY_QUEUE set");
    }
    if raw.sge_count > 16 {
        return fail("sge_count > 16");
    }
    let end = u64::from(raw.sgl_off) + 12 * u64::from(raw.sge_count);
    if raw.sge_count > 0 && (raw.sgl_off < 0x18 || end > 256) {
        return fail("SGL region outside [0x18, 256)");
    }
    if raw.sense_len > 0 && !(0x18..=56).contains(&raw.sense_off) {
        return fail("sense_off outside [0x18, 56]");
    }
    if raw.sense_len > 4096 {
        return fail("sense_len > 4096");
    }
    for (i, len) in raw.used().iter().enumerate() {
        if *len > 16 << 20 {
            return fail("an iov_len > 16 MiB");
        }
        if *len != 0 {
            continue;
        }
        let start = raw.sgl_off as usize + 12 * i;
        for at in start..(start + 12).min(FRAME_LEN) {
            if raw.frame[at] != 0 && !raw.is_sense_pointer(at) {
                return fail("a used empty entry's slot holds caller bytes");
            }
        }
    }
    if raw.used_sum() > 64 << 20 {
        return fail("iov_len sum > 64 MiB");
    }
    if raw
        .unwritten_fixed_slot_bytes()
        .iter()
        .any(|at| raw.frame[*at] != 0)
    {
        return fail("an SMP or STP entry the driver does not write holds caller bytes");
    }
    if u32::from(raw.hdr_sge_count()) > raw.sge_count {
        return fail("hdr.sge_count > sge_count");
    }
    if !matches!(raw.cmd(), 0x03 | 0x04 | 0x05 | 0x07 | 0x08) {
        return fail("cmd unknown, INIT, LD_READ, LD_WRITE, ABORT, NVME or TOOLBOX");
    }
    if raw.sge_count > 0 && raw.expected_sgl_off() != Some(raw.sgl_off) {
        return fail("sgl_off is not the frame type's SGL offset");
    }
    if raw.sense_len > 0 && !(raw.io_frame() && raw.sense_off == 0x18) {
        return fail("sense_off is not the frame type's sense address slot");
    }
    if raw.io_frame() {
        if u32::from(raw.hdr_sense_len()) > raw.sense_len {
            return fail("hdr.sense_len > sense_len");
        }
        if raw.frame_u64(0x18) != 0 && !(raw.sense_len > 0 && raw.sense_off == 0x18) {
            return fail("a caller's physical address at 0x18");
        }
    }
    Ok(())
}

/// Every check on one input under one policy. Returns the verdict (if the input decoded), so
/// callers can count which rules fired.
pub fn check_all(policy: &Policy, abi: Abi, bytes: &[u8]) -> Result<Option<Verdict>, String> {
    if abi.packet_size() != packet_size(abi) {
        return Err(format!("{abi:?} packet size {}", abi.packet_size()));
    }
    let verdict = match decide(policy, abi, bytes) {
        Ok(v) => v,
        Err(e) => {
            let short = DecodeError::Short {
                needed: packet_size(abi),
                got: bytes.len(),
            };
            if bytes.len() >= packet_size(abi) || e != short {
                return Err(format!("{} bytes failed to decode: {e}", bytes.len()));
            }
            // Short: the whole-packet path below checks apply on prefixes.
            return Ok(None);
        }
    };
    if bytes.len() < packet_size(abi) {
        return Err(format!("{} bytes decoded as {abi:?}", bytes.len()));
    }
    let raw = Raw::parse(abi, bytes).expect("long enough");
    check_model(policy, &raw, &verdict)?;

    // Audit decides the same, but does not enforce.
    let audit = Policy {
        mode: Mode::Audit,
        ..*policy
    };
    let va = decide(&audit, abi, bytes).map_err(|e| e.to_string())?;
    if va.decision() != verdict.decision()
        || !va.findings().eq(verdict.findings())
        || va.rewrites() != verdict.rewrites()
        || va.enforced()
    {
        return Err(format!("audit differs: {va:?} vs {verdict:?}"));
    }

    // Apply, then decide again.
    let mut after = bytes.to_vec();
    verdict
        .apply(&mut after)
        .map_err(|e| format!("apply failed on a whole packet: {e}"))?;
    check_applied(policy, &raw, &verdict, bytes, &after)?;
    let again = decide(policy, abi, &after).map_err(|e| e.to_string())?;
    match verdict.decision() {
        Decision::Reject(_) => {
            if again != verdict {
                return Err(format!(
                    "a rejected packet changed: {again:?} vs {verdict:?}"
                ));
            }
        }
        Decision::Pass | Decision::Rewrite => {
            if let Some(f) = again.findings().find(|f| f.action == Action::Rewrite) {
                return Err(format!("not idempotent: {f:?} after apply"));
            }
            if again.decision() != Decision::Pass {
                return Err(format!("decided {:?} after apply", again.decision()));
            }
        }
    }
    let raw_after = Raw::parse(abi, &after).expect("same length");
    if policy.allow == RuleSet::EMPTY && !matches!(verdict.decision(), Decision::Reject(_)) {
        check_invariants(&raw_after)?;
        firmware::check_every_driver(abi, &after)?;
    }

    // Applying to a prefix never panics: it edits the frame or refuses.
    for cut in [0, 1, FRAME_AT, FRAME_AT + 0x18, SGL_AT - 1, SGL_AT] {
        let mut short = bytes[..cut].to_vec();
        let r = verdict.apply(&mut short);
        if r.is_ok() != (cut >= SGL_AT) {
            return Err(format!("apply on {cut} bytes: {r:?}"));
        }
    }
    Ok(Some(verdict))
}

/// Allowing rules never makes a decision stricter, and turns exactly their findings into warnings.
pub fn check_allow_monotone(allowed: &Policy, abi: Abi, bytes: &[u8]) -> Result<(), String> {
    let strict = Policy {
        allow: Default::default(),
        ..*allowed
    };
    let (Ok(a), Ok(s)) = (decide(allowed, abi, bytes), decide(&strict, abi, bytes)) else {
        return Ok(());
    };
    if strictness(a.decision()) > strictness(s.decision()) {
        return Err(format!(
            "allowing made it stricter: {:?} vs {:?}",
            a.decision(),
            s.decision()
        ));
    }
    if !a
        .findings()
        .map(|f| f.rule)
        .eq(s.findings().map(|f| f.rule))
    {
        return Err("allowing changed which rules matched".into());
    }
    for (fa, fs) in a.findings().zip(s.findings()) {
        let expect = if allowed.allow.contains(fa.rule) {
            Action::Warn
        } else {
            fs.action
        };
        if fa.action != expect || fa.detail != fs.detail {
            return Err(format!("{}: allowed {fa:?} vs strict {fs:?}", fa.rule));
        }
    }
    Ok(())
}
