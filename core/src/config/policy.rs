//! Policy by who and what: the mode (and the allow list) the site gives each caller, from
//! `[user NAME]`, `[group NAME]` and `[tool PATH|NAME]` sections of the config file, and how a
//! command line or the environment may ask for another mode.
//!
//! - **The default** is the file's settings before its first section (`mode = ...`); it applies
//!   to a caller no section matches.
//! - **A section matches** a caller when every criterion of its header holds for one of the
//!   caller's identities (see [`Subject`]): `user` the real uid, the sudo user (`SUDO_USER`,
//!   `SUDO_UID`) or the login uid; `group` the real gid or a supplementary group, or a user of
//!   those three the group lists (`/etc/group`) or whose primary group it is (`/etc/passwd`);
//!   `tool` the executable (`/proc/PID/exe`: a path is compared whole, a name with the last
//!   component), or the program its run was started for (`MFIGUARD_RUN_TOOL`, which
//!   `mfiguard-run` sets to its TOOL unless a script that runs the wrapper named itself).
//! - **Several sections matching combine to the strictest**, in the order off < audit <
//!   enforce < readonly: the mode and the lowest mode are the strictest of theirs, the allow
//!   list the rules every one of them allows. A caller matches several sections easily (its
//!   account, its group, root through sudo, the tool), and this is the one rule under which a
//!   section can only ever tighten what it names: a section for a tool cannot loosen what is
//!   set for the monitoring account.
//! - **Claims only tighten.** What a process's environment says of it (`SUDO_USER`,
//!   `SUDO_UID`, `MFIGUARD_RUN_TOOL`: any process may set them) is weighed apart from what the
//!   kernel holds (uid, groups, login uid, executable): the policy is the stricter of what the
//!   caller's own ids give and what its claims add. A claim that matches a section weaker than
//!   the default loosens nothing, and a `lowest_mode` that lets a command line ask for less
//!   needs the caller's own ids (an administrator's login uid survives sudo).
//! - **A requested mode** (`mfiguard-run --mode`, `MFIGUARD_MODE`) is taken when it is at least
//!   the caller's lowest mode (`lowest_mode`, by default the mode the policy gives it): a
//!   stricter mode always, a weaker one only where the policy allows it (an administrator's
//!   one-off `off` run). A requested allow list (`--allow`, `MFIGUARD_ALLOW`) is taken when it
//!   allows no rule the policy does not, or where the lowest mode is `audit` or `off` (which let
//!   every call through anyway). Otherwise the policy's is used (and the wrapper refuses the
//!   run).
//! - **`preview = yes`** (top level) lets every call through as audit mode does where its mode
//!   (the policy's, or a request's) would enforce: nothing is refused on the host, and records
//!   say which mode the call would have had (`preview_of`) and what enforce and read-only would
//!   have done. Deleting the line puts the policy in force.
//! - **No mode in the file** (no file, or one that sets none): the default is `enforce` with
//!   lowest mode `off`, the behaviour before policies: there is no site policy to hold a
//!   command line to.
//!
//! Names of users and groups are looked up in `/etc/passwd` and `/etc/group` when the
//! configuration is read (no NSS module is loaded into a host process); a number works for any
//! account.

use std::fmt;

use mfiguard_sanitizer::RuleSet;

use super::{AuditLevel, GuardMode, Origin};

impl GuardMode {
    /// The order policies combine by: off < audit < enforce < readonly.
    pub const fn strictness(self) -> u8 {
        match self {
            GuardMode::Off => 0,
            GuardMode::Audit => 1,
            GuardMode::Enforce => 2,
            GuardMode::Readonly => 3,
        }
    }

    /// The stricter of two modes.
    pub const fn stricter(self, other: GuardMode) -> GuardMode {
        if other.strictness() > self.strictness() {
            other
        } else {
            self
        }
    }

    /// The weaker of two modes.
    pub const fn weaker(self, other: GuardMode) -> GuardMode {
        if other.strictness() < self.strictness() {
            other
        } else {
            self
        }
    }
}

/// What kind of caller a section criterion names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `user NAME|UID`.
    User,
    /// `group NAME|GID`.
    Group,
    /// `tool PATH|NAME`.
    Tool,
}

impl Kind {
    /// The words a section header takes.
    pub const WORDS: [&'static str; 3] = ["user", "group", "tool"];

    /// Its word.
    pub const fn word(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Tool => "tool",
        }
    }

    fn of(word: &str) -> Option<Kind> {
        match word.to_ascii_lowercase().as_str() {
            "user" => Some(Kind::User),
            "group" => Some(Kind::Group),
            "tool" => Some(Kind::Tool),
            _ => None,
        }
    }
}

/// One criterion of a section header, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// What it names.
    pub kind: Kind,
    /// The name, number or path.
    pub value: String,
}

/// Reads a section header's inside (`user nagios`, `tool /opt/x, user 0`): one or more
/// criteria separated by commas, all of which must hold. The error names the word that is
/// wrong and what is accepted.
pub fn parse_header(inside: &str) -> Result<Vec<Written>, String> {
    let mut out = Vec::new();
    if inside.trim().is_empty() {
        return Err("an empty section; write [user NAME], [group NAME] or [tool PATH]".into());
    }
    for part in inside.split(',') {
        let part = part.trim();
        let (word, value) = match part.split_once(char::is_whitespace) {
            Some((w, v)) => (w, v.trim()),
            None => (part, ""),
        };
        let Some(kind) = Kind::of(word) else {
            let valid = super::values::closest(word, &Kind::WORDS);
            return Err(format!(
                "'{word}' is not a section kind; use {}",
                super::values::or_list(&valid)
            ));
        };
        if value.is_empty() {
            return Err(format!(
                "'{}' needs {}",
                kind.word(),
                match kind {
                    Kind::User => "a user name or uid: [user nagios]",
                    Kind::Group => "a group name or gid: [group monitoring]",
                    Kind::Tool =>
                        "an executable's path or name: [tool /opt/MegaRAID/MegaCli/MegaCli64]",
                }
            ));
        }
        match kind {
            Kind::User | Kind::Group => {
                if value.contains(char::is_whitespace) {
                    return Err(format!(
                        "'{value}': one {} a criterion (several accounts: one section each)",
                        kind.word()
                    ));
                }
                if !is_account_name(value) {
                    return Err(format!(
                        "'{value}' is not a {} name or number (letters, digits, '_', '-', '.')",
                        kind.word()
                    ));
                }
            }
            Kind::Tool => {
                if !value.starts_with('/') && value.contains('/') {
                    return Err(format!(
                        "'{value}': a tool is an absolute path or a file name without '/'"
                    ));
                }
            }
        }
        if out
            .iter()
            .any(|w: &Written| w.kind == kind && w.kind != Kind::Tool)
        {
            return Err(format!(
                "two '{}' criteria in one section can never both hold; one section each",
                kind.word()
            ));
        }
        out.push(Written {
            kind,
            value: value.to_string(),
        });
    }
    Ok(out)
}

fn is_account_name(v: &str) -> bool {
    let body = v.strip_suffix('$').unwrap_or(v);
    !body.is_empty()
        && !body.starts_with('-')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// One criterion, resolved against the account files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// A user: its uid when known (a number, or a name in `/etc/passwd`), and its name when
    /// written as one (matched against `SUDO_USER` too).
    User {
        /// The uid.
        uid: Option<u32>,
        /// The name as written.
        name: Option<String>,
    },
    /// A group: its gid when known, and the users it holds (listed in `/etc/group`, or with it
    /// as their primary group in `/etc/passwd`).
    Group {
        /// The gid.
        gid: Option<u32>,
        /// The member users' uids.
        members: Vec<u32>,
        /// The member users' names.
        member_names: Vec<String>,
    },
    /// An executable: a path (compared whole) or a file name (compared with the last
    /// component).
    Tool(String),
}

/// Who a caller is, as policy sections match it: the caller's own ids and what its process
/// says of who ran it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    /// The real uid.
    pub uid: Option<u32>,
    /// The real gid and the supplementary groups.
    pub groups: &'a [u32],
    /// `SUDO_USER`.
    pub sudo_user: Option<&'a str>,
    /// `SUDO_UID`.
    pub sudo_uid: Option<u32>,
    /// The login uid.
    pub login_uid: Option<u32>,
    /// The executable (`/proc/PID/exe`).
    pub exe: &'a str,
    /// The program the caller's run was started for (`MFIGUARD_RUN_TOOL`), if its environment
    /// names one.
    pub run_tool: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// Only what the kernel holds for the process (its uid, groups, login uid, executable):
    /// without what its environment claims (`SUDO_USER`, `SUDO_UID`, `MFIGUARD_RUN_TOOL`).
    pub fn own_ids(&self) -> Subject<'a> {
        Subject {
            sudo_user: None,
            sudo_uid: None,
            run_tool: None,
            ..*self
        }
    }

    /// A subject no section matches (tests, and a configuration read for no one).
    pub const NOBODY: Subject<'static> = Subject {
        uid: None,
        groups: &[],
        sudo_user: None,
        sudo_uid: None,
        login_uid: None,
        exe: "",
        run_tool: None,
    };

    fn uids(&self) -> impl Iterator<Item = u32> {
        [self.uid, self.sudo_uid, self.login_uid]
            .into_iter()
            .flatten()
    }
}

impl Criterion {
    /// Whether it holds for `s`.
    pub fn holds(&self, s: &Subject<'_>) -> bool {
        match self {
            Criterion::User { uid, name } => {
                uid.is_some_and(|u| s.uids().any(|x| x == u))
                    || name
                        .as_deref()
                        .is_some_and(|n| s.sudo_user.is_some_and(|su| su == n))
            }
            Criterion::Group {
                gid,
                members,
                member_names,
            } => {
                gid.is_some_and(|g| s.groups.contains(&g))
                    || s.uids().any(|u| members.contains(&u))
                    || s.sudo_user
                        .is_some_and(|su| member_names.iter().any(|m| m == su))
            }
            Criterion::Tool(t) => {
                let is = |exe: &str| {
                    if t.starts_with('/') {
                        exe == t
                    } else {
                        exe.rsplit('/').next() == Some(t.as_str())
                    }
                };
                is(s.exe) || s.run_tool.is_some_and(is)
            }
        }
    }
}

/// What one scope of the policy gives: the default or a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `mode`.
    pub mode: GuardMode,
    /// `lowest_mode`: the weakest mode a command line may ask for.
    pub lowest: GuardMode,
    /// `allow`.
    pub allow: RuleSet,
}

/// One `[...]` section of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Its header as written (`user nagios`), for messages.
    pub header: String,
    /// Where it starts.
    pub origin: Origin,
    /// What must hold, all of it.
    pub criteria: Vec<Criterion>,
    /// What it gives.
    pub entry: Entry,
}

impl Section {
    /// Whether it matches `s`.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.criteria.iter().all(|c| c.holds(s))
    }
}

/// The site's policy: the default, the sections, `preview`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SitePolicy {
    /// What applies to a caller no section matches.
    pub default: Entry,
    /// The sections, in file order.
    pub sections: Vec<Section>,
    /// `preview = yes`.
    pub preview: bool,
}

impl SitePolicy {
    /// No policy: enforce, nothing allowed, and a command line may choose any mode.
    pub const NONE: SitePolicy = SitePolicy {
        default: Entry {
            mode: GuardMode::Enforce,
            lowest: GuardMode::Off,
            allow: RuleSet::EMPTY,
        },
        sections: Vec::new(),
        preview: false,
    };

    /// Whether the policy depends on who calls (it has sections).
    pub fn per_caller(&self) -> bool {
        !self.sections.is_empty()
    }

    /// The sections any of `subjects` matches.
    pub fn matching<'p>(
        &'p self,
        subjects: &'p [Subject<'p>],
    ) -> impl Iterator<Item = &'p Section> + 'p {
        self.sections
            .iter()
            .filter(move |sec| subjects.iter().any(|s| sec.matches(s)))
    }

    /// What applies to `subjects`: the stricter of what their own ids give and what their
    /// claims add ([`SitePolicy::matched_entry`] of each), so that a claim (an environment
    /// variable any process may set) can only tighten, never loosen: matching one more section
    /// that is weaker than the default does not lower a caller its own ids leave to the default.
    pub fn entry_for(&self, subjects: &[Subject<'_>]) -> Entry {
        let own: Vec<Subject<'_>> = subjects.iter().map(Subject::own_ids).collect();
        stricter_entry(self.matched_entry(subjects), self.matched_entry(&own))
    }

    /// The strictest of the sections `subjects` match, else the default.
    pub fn matched_entry(&self, subjects: &[Subject<'_>]) -> Entry {
        let mut out: Option<Entry> = None;
        for sec in &self.sections {
            if !subjects.iter().any(|s| sec.matches(s)) {
                continue;
            }
            let e = &sec.entry;
            out = Some(match out {
                None => e.clone(),
                Some(o) => Entry {
                    mode: o.mode.stricter(e.mode),
                    lowest: o.lowest.stricter(e.lowest),
                    allow: intersection(o.allow, e.allow),
                },
            });
        }
        out.unwrap_or_else(|| self.default.clone())
    }
}

/// The stricter of two entries: each mode the stricter, the rules both allow.
fn stricter_entry(a: Entry, b: Entry) -> Entry {
    Entry {
        mode: a.mode.stricter(b.mode),
        lowest: a.lowest.stricter(b.lowest),
        allow: intersection(a.allow, b.allow),
    }
}

/// The rules both sets hold.
pub fn intersection(a: RuleSet, b: RuleSet) -> RuleSet {
    a.iter()
        .filter(|r| b.contains(*r))
        .fold(RuleSet::EMPTY, RuleSet::with)
}

/// Whether every rule of `a` is in `b`.
pub fn subset(a: RuleSet, b: RuleSet) -> bool {
    a.iter().all(|r| b.contains(r))
}

/// What a command line or the environment asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requested {
    /// A mode, and where it came from.
    pub mode: Option<(GuardMode, Origin)>,
    /// An allow list, and where it came from.
    pub allow: Option<(RuleSet, Origin)>,
}

impl Requested {
    /// Nothing asked for.
    pub const NONE: Requested = Requested {
        mode: None,
        allow: None,
    };
}

/// What governs one caller's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallPolicy {
    /// The mode the calls are guarded in.
    pub mode: GuardMode,
    /// Under `preview = yes`: the mode the calls would be guarded in without it (`mode` is then
    /// audit).
    pub preview_of: Option<GuardMode>,
    /// Rules downgraded to warnings.
    pub allow: RuleSet,
    /// Which calls are recorded.
    pub audit: AuditLevel,
}

/// A request the policy does not let through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A mode weaker than the caller's lowest.
    Mode {
        /// What was asked.
        asked: GuardMode,
        /// Where.
        origin: Origin,
        /// The weakest mode allowed.
        lowest: GuardMode,
    },
    /// An allow list naming rules the policy does not allow.
    Allow {
        /// Where it was asked.
        origin: Origin,
        /// The rules the policy does not allow.
        extra: RuleSet,
        /// The caller's lowest mode.
        lowest: GuardMode,
    },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Mode {
                asked,
                origin,
                lowest,
            } => write!(
                f,
                "{origin} asks for mode {}, weaker than the policy lets this caller choose (at least {}; lowest_mode in the config file says what may be asked for)",
                asked.name(),
                lowest.name()
            ),
            Refused::Allow {
                origin,
                extra,
                lowest,
            } => {
                let ids: Vec<&str> = extra.iter().map(|r| r.name()).collect();
                write!(
                    f,
                    "{origin} allows {}, which the policy does not allow this caller (its lowest mode is {}: only a lowest_mode of audit or off lets a command line allow rules)",
                    ids.join(","),
                    lowest.name()
                )
            }
        }
    }
}

/// The policy for `subjects` with `requested` laid over it (see the module docs); what was
/// refused of the request, if anything. `audit`: the level the configuration names, if it
/// names one (else all in audit mode, findings otherwise).
pub fn resolve(
    site: &SitePolicy,
    requested: &Requested,
    audit: Option<AuditLevel>,
    subjects: &[Subject<'_>],
) -> (CallPolicy, Vec<Refused>) {
    let e = site.entry_for(subjects);
    let lowest = e.lowest.weaker(e.mode);
    let mut refused = Vec::new();
    let chosen = match &requested.mode {
        Some((asked, _)) if asked.strictness() >= lowest.strictness() => *asked,
        other => {
            if let Some((asked, origin)) = other {
                refused.push(Refused::Mode {
                    asked: *asked,
                    origin: origin.clone(),
                    lowest,
                });
            }
            e.mode
        }
    };
    let (mode, preview_of) = if site.preview && chosen.enforcing() {
        (GuardMode::Audit, Some(chosen))
    } else {
        (chosen, None)
    };
    let allow = match &requested.allow {
        None => e.allow,
        Some((asked, _)) if subset(*asked, e.allow) => *asked,
        Some((asked, _)) if lowest.strictness() <= GuardMode::Audit.strictness() => *asked,
        Some((asked, origin)) => {
            let extra = asked
                .iter()
                .filter(|r| !e.allow.contains(*r))
                .fold(RuleSet::EMPTY, RuleSet::with);
            refused.push(Refused::Allow {
                origin: origin.clone(),
                extra,
                lowest,
            });
            e.allow
        }
    };
    let audit = audit.unwrap_or(if mode == GuardMode::Audit {
        AuditLevel::All
    } else {
        AuditLevel::Findings
    });
    (
        CallPolicy {
            mode,
            preview_of,
            allow,
            audit,
        },
        refused,
    )
}

/// The accounts of `/etc/passwd` and `/etc/group` a policy names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    /// `(name, uid, primary gid)`.
    pub users: Vec<(String, u32, u32)>,
    /// `(name, gid, member names)`.
    pub groups: Vec<(String, u32, Vec<String>)>,
}

/// The largest account file read.
const ACCOUNTS_MAX: u64 = 4 * 1024 * 1024;

impl Accounts {
    /// The host's, from `/etc/passwd` and `/etc/group` (what cannot be read is empty).
    pub fn of_host() -> Accounts {
        let read = |p: &str| -> String {
            use std::io::Read;
            let mut s = String::new();
            if let Ok(f) = std::fs::File::open(p) {
                let _ = f.take(ACCOUNTS_MAX).read_to_string(&mut s);
            }
            s
        };
        Accounts::parse(&read("/etc/passwd"), &read("/etc/group"))
    }

    /// From the files' texts.
    pub fn parse(passwd: &str, group: &str) -> Accounts {
        let mut a = Accounts::default();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(uid), Some(gid)) = (f.first(), f.get(2), f.get(3)) {
                if let (Ok(uid), Ok(gid)) = (uid.parse(), gid.parse()) {
                    a.users.push(((*name).to_string(), uid, gid));
                }
            }
        }
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let (Some(name), Some(gid)) = (f.first(), f.get(2)) {
                if let Ok(gid) = gid.parse() {
                    let members = f
                        .get(3)
                        .map(|m| {
                            m.split(',')
                                .map(str::trim)
                                .filter(|m| !m.is_empty())
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default();
                    a.groups.push(((*name).to_string(), gid, members));
                }
            }
        }
        a
    }

    fn uid(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|u| u.0 == name).map(|u| u.1)
    }

    /// A criterion as written, resolved; a note when a name is not found here (the section
    /// then matches only what it can: a `SUDO_USER` of that name).
    pub fn resolve(&self, w: &Written) -> (Criterion, Option<String>) {
        match w.kind {
            Kind::User => {
                if let Ok(uid) = w.value.parse::<u32>() {
                    let name = self.users.iter().find(|u| u.1 == uid).map(|u| u.0.clone());
                    return (
                        Criterion::User {
                            uid: Some(uid),
                            name,
                        },
                        None,
                    );
                }
                let uid = self.uid(&w.value);
                let note = uid.is_none().then(|| {
                    format!(
                        "no user '{}' in /etc/passwd here: the section matches only a sudo user of that name (give a uid for accounts that live elsewhere)",
                        w.value
                    )
                });
                (
                    Criterion::User {
                        uid,
                        name: Some(w.value.clone()),
                    },
                    note,
                )
            }
            Kind::Group => {
                let by_number = w.value.parse::<u32>().ok();
                let found = self
                    .groups
                    .iter()
                    .find(|g| Some(g.1) == by_number || g.0 == w.value);
                let gid = by_number.or(found.map(|g| g.1));
                let mut member_names: Vec<String> = found.map(|g| g.2.clone()).unwrap_or_default();
                for u in &self.users {
                    if Some(u.2) == gid && !member_names.contains(&u.0) {
                        member_names.push(u.0.clone());
                    }
                }
                let members = member_names.iter().filter_map(|n| self.uid(n)).collect();
                let note = gid.is_none().then(|| {
                    format!(
                        "no group '{}' in /etc/group here: the section matches no one (give a gid for groups that live elsewhere)",
                        w.value
                    )
                });
                (
                    Criterion::Group {
                        gid,
                        members,
                        member_names,
                    },
                    note,
                )
            }
            Kind::Tool => {
                // A path is compared with /proc/PID/exe, which has every link resolved.
                let tool = if w.value.starts_with('/') {
                    std::fs::canonicalize(&w.value)
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|_| w.value.clone())
                } else {
                    w.value.clone()
                };
                (Criterion::Tool(tool), None)
            }
        }
    }
}

#[cfg(test)]
mod tests;
