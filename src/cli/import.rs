//! `drover import systemd FILE... | supervisord FILE...`: write drover
//! units from systemd services and timers or supervisord programs.
//!
//! The conversion is `crate::import` (pure); this verb gives it the real
//! file system, environment and host name, prints what was not carried
//! over, checks every unit as `drover validate` does, and writes.

use super::{print, CliError};
use crate::import::draft::Field;
use crate::import::{emit, supervisord, systemd, Draft, Host, Outcome, Severity, Warning};
use crate::units::{self, Diagnostic, Diagnostics};
use chrono::Utc;
use std::io;
use std::path::{Path, PathBuf};

const AFTER_HELP: &str = "\
Output:
  Without -o, the unit is printed on stdout (as kubectl's --dry-run=client
  -o yaml does), so `drover import systemd nginx.service > nginx.toml`
  works; a conversion that gives several units needs -o DIR, which writes
  DIR/NAME.toml for each (DIR is created if missing; existing files are
  kept unless --force). Each unit's header lists what was not carried over.

  What cannot be converted is printed on stderr with the file and line it
  came from (`nginx.service:24: warning: ExecReload= ...`); notes say what
  was converted differently. A file that cannot be converted at all (a
  Type=forking service without PIDFile=, a timer with no OnCalendar=) is
  an error: then nothing is written and the exit status is 1.

Examples:
  drover import systemd /lib/systemd/system/redis-server.service > redis-server.toml
  drover import systemd -o /etc/drover/units nginx.service php-fpm.service
  drover import systemd -o units/ logrotate.timer    # with logrotate.service beside it
  drover import supervisord -o units/ /etc/supervisor/conf.d/*.conf";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(clap::Subcommand, Debug)]
enum From {
    /// Convert systemd .service and .timer files (a timer and its service become a CronJob)
    #[command(after_help = AFTER_HELP)]
    Systemd(Files),
    /// Convert the [program:x] sections of supervisord config files
    #[command(after_help = AFTER_HELP)]
    Supervisord(Files),
}

#[derive(clap::Args, Debug)]
struct Files {
    /// The files to convert
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Write each unit to DIR/NAME.toml instead of printing it
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Overwrite unit files that already exist in DIR
    #[arg(long)]
    force: bool,
}

/// The machine as the conversion may see it.
struct LocalHost;

impl Host for LocalHost {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn hostname(&self) -> Option<String> {
        Some(crate::paths::hostname())
    }
    fn current_dir(&self) -> Option<PathBuf> {
        std::env::current_dir().ok()
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (tool, files, mut outcome) = match args.from {
        From::Systemd(f) => {
            let o = systemd::convert(&strings(&f.files), &LocalHost);
            ("drover import systemd", f, o)
        }
        From::Supervisord(f) => {
            let o = supervisord::convert(&strings(&f.files), &LocalHost);
            ("drover import supervisord", f, o)
        }
    };
    if !outcome.refusals.is_empty() {
        eprint!("{}", warning_lines(&outcome));
        let mut text = String::new();
        for r in &outcome.refusals {
            text.push_str(&format!("error: {r}\n"));
        }
        text.push_str("nothing was written");
        return Err(CliError::Diagnostics(text).into());
    }
    if files.output.is_none() && outcome.drafts.len() > 1 {
        eprint!("{}", warning_lines(&outcome));
        let names: Vec<&str> = outcome.drafts.iter().map(|d| d.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "{} units to write ({}): give -o DIR to write them as DIR/NAME.toml",
            names.len(),
            names.join(", ")
        ))
        .into());
    }
    let units = render_all(tool, &mut outcome)?;
    match &files.output {
        None => match units.first() {
            Some((_, text)) => print(text)?,
            None => eprintln!("nothing to convert"),
        },
        Some(dir) => write_all(dir, &units, files.force)?,
    }
    Ok(())
}

fn strings(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// The warnings and notes, one per line, then a count.
fn warning_lines(outcome: &Outcome) -> String {
    let mut text = String::new();
    for w in &outcome.warnings {
        text.push_str(&format!("{w}\n"));
    }
    let warnings = outcome
        .warnings
        .iter()
        .filter(|w| w.severity == Severity::Warning)
        .count();
    let notes = outcome.warnings.len() - warnings;
    if !outcome.warnings.is_empty() {
        text.push_str(&format!(
            "{warnings} warning(s): not carried over; {notes} note(s)\n"
        ));
    }
    text
}

/// Every unit as (name, TOML), each checked as `drover validate` checks
/// it: a unit import writes and drover rejects is a bug in import, with
/// one exception. The unit keeps what the service needs even when this
/// version of drover does not take it yet (init processes, a pid file,
/// resource limits): the unit is then checked without those, and a
/// warning says that drover refuses it until it does.
fn render_all(tool: &str, outcome: &mut Outcome) -> anyhow::Result<Vec<(String, String)>> {
    let now = Utc::now();
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for d in &outcome.drafts {
        match check(d, tool, now) {
            Ok(refused) => checked.push((d.clone(), refused)),
            Err(mut diags) => problems.append(&mut diags),
        }
    }
    if !problems.is_empty() {
        eprint!("{}", warning_lines(outcome));
        let mut text = Diagnostics::new(problems).to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(
            "error: drover import wrote units drover does not accept (a bug in drover \
             import); nothing was written",
        );
        return Err(CliError::Diagnostics(text).into());
    }
    for (d, refused) in &checked {
        for field in refused {
            outcome.warnings.push(not_taken_yet(d, *field));
        }
    }
    outcome.sort_warnings();
    eprint!("{}", warning_lines(outcome));
    Ok(checked
        .iter()
        .map(|(d, _)| {
            let warnings: Vec<_> = outcome.warnings_of(d).collect();
            (d.name.clone(), emit::render(d, tool, &warnings))
        })
        .collect())
}

/// The fields a drover may parse but not run yet.
const OPTIONAL: [Field; 3] = [Field::InitProcesses, Field::PidFile, Field::Resources];

/// Validates `d`; if this drover refuses it, the fewest of its optional
/// fields without which it validates. Err: the unit's own diagnostics.
fn check(d: &Draft, tool: &str, now: chrono::DateTime<Utc>) -> Result<Vec<Field>, Vec<Diagnostic>> {
    let used: Vec<Field> = OPTIONAL.into_iter().filter(|f| d.uses(*f)).collect();
    let file = format!("{}.toml", d.name);
    let mut subsets: Vec<Vec<Field>> = (0..1u32 << used.len())
        .map(|bits| {
            used.iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, f)| *f)
                .collect()
        })
        .collect();
    subsets.sort_by_key(Vec::len);
    let mut first_error = None;
    for subset in subsets {
        let without = subset.iter().fold(d.clone(), |d, f| d.without(*f));
        let text = emit::render(&without, tool, &[]);
        match units::parse_unit(Path::new(&file), &text, now) {
            Ok(_) => return Ok(subset),
            Err(diags) => {
                first_error.get_or_insert(diags);
            }
        }
    }
    Err(first_error.unwrap_or_default())
}

fn not_taken_yet(d: &Draft, field: Field) -> Warning {
    let file = d.sources.last().map(String::as_str).unwrap_or("");
    let mut w = Warning::new(
        file,
        None,
        format!(
            "the unit {} needs `{}`, which this version of drover does not take yet: drover \
             validate and apply refuse the unit until it does",
            d.name,
            field.name()
        ),
    );
    w.unit = Some(d.name.clone());
    w
}

/// Writes DIR/NAME.toml for each unit; refuses (before writing any) when
/// one exists, unless `force`.
fn write_all(dir: &Path, units: &[(String, String)], force: bool) -> anyhow::Result<()> {
    let targets: Vec<(PathBuf, &String)> = units
        .iter()
        .map(|(name, text)| (dir.join(format!("{name}.toml")), text))
        .collect();
    if !force {
        let existing: Vec<String> = targets
            .iter()
            .filter(|(p, _)| p.exists())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(CliError::Diagnostics(format!(
                "error: {} exist(s) already; nothing was written (--force overwrites)",
                existing.join(", ")
            ))
            .into());
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    for (path, text) in &targets {
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn the_verb_parses() {
        let cli = Cli::try_parse_from(["drover", "import", "systemd", "a.service", "b.timer"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from([
            "drover",
            "import",
            "supervisord",
            "-o",
            "units",
            "--force",
            "x.conf",
        ]);
        assert!(cli.is_ok(), "{cli:?}");
        assert!(Cli::try_parse_from(["drover", "import", "systemd"]).is_err());
        assert!(Cli::try_parse_from(["drover", "import", "upstart", "x"]).is_err());
    }

    #[test]
    fn help_says_where_the_output_goes() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let import = cmd.find_subcommand_mut("import").expect("import");
        let help = import.render_long_help().to_string();
        assert!(
            help.contains("Without -o, the unit is printed on stdout"),
            "{help}"
        );
        for from in ["systemd", "supervisord"] {
            let sub = import.find_subcommand_mut(from).expect(from);
            let help = sub.render_long_help().to_string();
            assert!(help.contains("Without -o, the unit is printed"), "{help}");
            assert!(help.contains("--output-dir <DIR>"), "{help}");
            assert!(help.contains("--force"), "{help}");
        }
    }

    #[test]
    fn existing_files_are_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let units = vec![("a".to_string(), "kind = \"Pod\"\n".to_string())];
        std::fs::write(dir.path().join("a.toml"), "mine").unwrap();
        let err = write_all(dir.path(), &units, false).unwrap_err();
        assert!(err.to_string().contains("exist"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.toml")).unwrap(),
            "mine"
        );
        write_all(dir.path(), &units, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.toml")).unwrap(),
            "kind = \"Pod\"\n"
        );
    }
}
