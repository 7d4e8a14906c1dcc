//! `drover import`: systemd units and supervisord programs -> drover unit
//! files.
//!
//! The conversion is a pure function of the files it is given: it reads
//! them (and the few other files a unit names, such as `EnvironmentFile=`)
//! only through [`Host`], so tests hand it text and a fake host, and the
//! CLI (`cli/import.rs`) hands it the real file system. It never writes;
//! it returns [`Draft`]s (what to write) and [`Warning`]s (what could not
//! be carried over, each with the file and line it came from), or
//! [`Refusal`]s for files that cannot be converted at all. [`emit`] turns
//! a draft into TOML with comments that say where each value came from.
//!
//! - [`systemd`]: `.service` and `.timer` files (unit file syntax, ExecStart
//!   quoting and `$VAR` expansion, `%` specifiers, OnCalendar -> cron).
//! - [`supervisord`]: `[program:x]` sections of a supervisord config.
//!
//! What must not happen here: a directive silently dropped. Every line of
//! the input is either converted, equivalent to drover's behaviour (e.g.
//! `KillSignal=SIGTERM`), or reported.

pub mod draft;
pub mod emit;
mod names;
pub mod supervisord;
pub mod systemd;

pub use draft::{Draft, DraftKind, DraftPod, DraftProcess};
pub use names::unit_name;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What a conversion may learn about the machine beyond the files it was
/// given: passed in, so the conversion stays a pure function.
pub trait Host {
    /// Reads a text file (`EnvironmentFile=`, a timer's service, a template
    /// for `foo@bar.service`).
    fn read(&self, path: &Path) -> io::Result<String>;
    /// An environment variable of the importing shell (supervisord's
    /// `%(ENV_X)s`).
    fn env(&self, name: &str) -> Option<String>;
    /// This host's name (systemd's `%H`, supervisord's
    /// `%(host_node_name)s`).
    fn hostname(&self) -> Option<String>;
    /// The importing shell's current folder (supervisord's `%(here)s` of
    /// a config file named by a relative path).
    fn current_dir(&self) -> Option<PathBuf>;
}

/// A host made of maps: for tests, and for converting text already in
/// memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryHost {
    pub files: BTreeMap<PathBuf, String>,
    pub env: BTreeMap<String, String>,
    pub hostname: Option<String>,
    pub cwd: Option<PathBuf>,
}

impl MemoryHost {
    pub fn with_file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> MemoryHost {
        self.files.insert(path.into(), text.into());
        self
    }
}

impl Host for MemoryHost {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn hostname(&self) -> Option<String> {
        self.hostname.clone()
    }
    fn current_dir(&self) -> Option<PathBuf> {
        self.cwd.clone()
    }
}

/// How much a warning matters to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Carried over differently, or not needed under drover; nothing lost.
    Note,
    /// Not carried over: the drover unit behaves differently here.
    Warning,
}

/// One line of the input that was not converted as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The file as the user named it.
    pub file: String,
    /// 1-based; None for the file as a whole.
    pub line: Option<usize>,
    pub severity: Severity,
    pub message: String,
    /// The drover unit it is about, when a file holds several (a
    /// supervisord config); None: every unit from the file.
    pub unit: Option<String>,
}

impl Warning {
    pub fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> Warning {
        Warning {
            file: file.to_string(),
            line,
            severity: Severity::Warning,
            message: message.into(),
            unit: None,
        }
    }

    pub fn note(file: &str, line: Option<usize>, message: impl Into<String>) -> Warning {
        Warning {
            severity: Severity::Note,
            ..Warning::new(file, line, message)
        }
    }

    /// `nginx.service:12` or `nginx.service`.
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

impl fmt::Display for Warning {
    /// `nginx.service:12: warning: ExecReload= has no drover equivalent: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {label}: {}", self.location(), self.message)
    }
}

/// A file that cannot be converted at all, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", self.location())]
pub struct Refusal {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl Refusal {
    pub fn new(file: &str, line: Option<usize>, reason: impl Into<String>) -> Refusal {
        Refusal {
            file: file.to_string(),
            line,
            reason: reason.into(),
        }
    }

    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

/// What a conversion produced: the units, what was not carried over, and
/// the files refused. The CLI writes nothing when any file was refused.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub drafts: Vec<Draft>,
    pub warnings: Vec<Warning>,
    pub refusals: Vec<Refusal>,
}

impl Outcome {
    /// Warnings by file (in the order files first appear), then by line;
    /// a conversion reports in the order it decides, users read by line.
    pub fn sort_warnings(&mut self) {
        let mut files: Vec<String> = Vec::new();
        for w in &self.warnings {
            if !files.contains(&w.file) {
                files.push(w.file.clone());
            }
        }
        self.warnings
            .sort_by_key(|w| (files.iter().position(|f| *f == w.file), w.line.unwrap_or(0)));
        // The same thing said twice (an expansion used by every process).
        self.warnings.dedup();
    }

    /// The warnings that belong to a draft's source files, for its header.
    pub fn warnings_of<'a>(&'a self, draft: &'a Draft) -> impl Iterator<Item = &'a Warning> {
        self.warnings
            .iter()
            .filter(move |w| draft.sources.contains(&w.file))
            .filter(move |w| w.unit.as_ref().is_none_or(|u| *u == draft.name))
    }
}
