//! `%` specifiers (systemd.unit(5), "Specifiers") as the system manager
//! resolves them: the unit's own names (`%n %N %p %P %i %I %j %J %f`),
//! the system directories (`%t %S %C %L %E %T %V`), the manager's user
//! (`%u %U %g %G %h`, root), `%s`, `%y %Y` and this host's name (`%H %l`,
//! which the caller supplies). Boot id, machine id, kernel and OS release
//! are facts of the machine the unit will run on, not of the one importing
//! it: they are refused, not guessed.

/// A unit's name, split as systemd splits it: `foo@bar.service` is prefix
/// `foo`, instance `bar`, type `service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitName {
    pub full: String,
    pub prefix: String,
    pub instance: Option<String>,
    pub suffix: String,
}

impl UnitName {
    /// None for a name without a type suffix.
    pub fn parse(full: &str) -> Option<UnitName> {
        let (stem, suffix) = full.rsplit_once('.')?;
        if stem.is_empty() || suffix.is_empty() {
            return None;
        }
        let (prefix, instance) = match stem.split_once('@') {
            Some((p, i)) => (p.to_string(), Some(i.to_string())),
            None => (stem.to_string(), None),
        };
        Some(UnitName {
            full: full.to_string(),
            prefix,
            instance,
            suffix: suffix.to_string(),
        })
    }

    /// The name without its type suffix (`%N`): `foo@bar`.
    pub fn stem(&self) -> &str {
        &self.full[..self.full.len() - self.suffix.len() - 1]
    }

    /// A template (`foo@.service`) has an empty instance.
    pub fn is_template(&self) -> bool {
        self.instance.as_deref() == Some("")
    }
}

/// What specifiers resolve against.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub unit: &'a UnitName,
    /// The unit file's path as given (`%y`).
    pub fragment: &'a str,
    pub hostname: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecifierError {
    #[error("`%{0}` is not a systemd specifier")]
    Unknown(char),
    #[error(
        "`%{0}` ({1}) cannot be resolved ahead of time: it is a fact of the host the unit runs on"
    )]
    Unresolvable(char, &'static str),
    #[error("a lone `%` at the end (write `%%` for a percent sign)")]
    Trailing,
}

/// Resolves the specifiers in `text`. `notes` gets a line for each value
/// taken from the importing host (`%H`).
pub fn resolve(
    text: &str,
    ctx: &Context,
    notes: &mut Vec<String>,
) -> Result<String, SpecifierError> {
    if !text.contains('%') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or(SpecifierError::Trailing)?;
        out.push_str(&one(spec, ctx, notes)?);
    }
    Ok(out)
}

fn one(spec: char, ctx: &Context, notes: &mut Vec<String>) -> Result<String, SpecifierError> {
    let u = ctx.unit;
    let instance = u.instance.clone().unwrap_or_default();
    let host = |notes: &mut Vec<String>, what: &str| match ctx.hostname {
        Some(h) => {
            let value = if what == "l" {
                h.split('.').next().unwrap_or(h).to_string()
            } else {
                h.to_string()
            };
            notes.push(format!(
                "`%{what}` resolved to this host's name `{value}`: the unit names this host"
            ));
            Ok(value)
        }
        None => Err(SpecifierError::Unresolvable(
            if what == "l" { 'l' } else { 'H' },
            "the host name, unknown here",
        )),
    };
    Ok(match spec {
        '%' => "%".into(),
        'n' => u.full.clone(),
        'N' => u.stem().to_string(),
        'p' => u.prefix.clone(),
        'P' => unescape(&u.prefix),
        'i' => instance,
        'I' => unescape(&instance),
        'j' => last_component(&u.prefix).to_string(),
        'J' => unescape(last_component(&u.prefix)),
        'f' => {
            let raw = u.instance.as_deref().unwrap_or(&u.prefix);
            let path = unescape(raw);
            if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            }
        }
        't' => "/run".into(),
        'S' => "/var/lib".into(),
        'C' => "/var/cache".into(),
        'L' => "/var/log".into(),
        'E' => "/etc".into(),
        'T' => "/tmp".into(),
        'V' => "/var/tmp".into(),
        // The system manager runs as root: these are root's.
        'u' | 'g' => "root".into(),
        'U' | 'G' => "0".into(),
        'h' => "/root".into(),
        's' => "/bin/sh".into(),
        'y' => ctx.fragment.to_string(),
        'Y' => match ctx.fragment.rsplit_once('/') {
            Some(("", _)) => "/".into(),
            Some((dir, _)) => dir.to_string(),
            None => ".".into(),
        },
        'H' => host(notes, "H")?,
        'l' => host(notes, "l")?,
        'b' => return Err(SpecifierError::Unresolvable('b', "the boot id")),
        'm' => return Err(SpecifierError::Unresolvable('m', "the machine id")),
        'v' => return Err(SpecifierError::Unresolvable('v', "the kernel release")),
        'a' => return Err(SpecifierError::Unresolvable('a', "the architecture")),
        'd' => {
            return Err(SpecifierError::Unresolvable(
                'd',
                "the credentials directory",
            ))
        }
        'q' => return Err(SpecifierError::Unresolvable('q', "the pretty host name")),
        'o' | 'w' | 'W' | 'B' | 'A' | 'M' => {
            return Err(SpecifierError::Unresolvable(spec, "a field of os-release"))
        }
        other => return Err(SpecifierError::Unknown(other)),
    })
}

fn last_component(prefix: &str) -> &str {
    prefix.rsplit_once('-').map_or(prefix, |(_, last)| last)
}

/// systemd's unit name unescaping: `\xNN` is that byte, `-` is `/`.
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' => out.push(b'/'),
            b'\\' if bytes.get(i + 1) == Some(&b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 4;
                        continue;
                    }
                    None => out.push(b'\\'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(unit: &str, text: &str) -> Result<String, SpecifierError> {
        let name = UnitName::parse(unit).unwrap();
        let ctx = Context {
            unit: &name,
            fragment: "/lib/systemd/system/x.service",
            hostname: Some("box.example.org"),
        };
        resolve(text, &ctx, &mut Vec::new())
    }

    #[test]
    fn specifiers_resolve_as_the_system_manager_does() {
        let cases = [
            ("getty@tty1.service", "%n", "getty@tty1.service"),
            ("getty@tty1.service", "%N", "getty@tty1"),
            ("getty@tty1.service", "%p", "getty"),
            ("getty@tty1.service", "%i", "tty1"),
            ("foo@dev-sda1.service", "%I", "dev/sda1"),
            ("foo@dev-sda1.service", "%f", "/dev/sda1"),
            ("foo@a\\x2db.service", "%I", "a-b"),
            ("systemd-fsck@x.service", "%j", "fsck"),
            ("redis.service", "%t/%p", "/run/redis"),
            (
                "redis.service",
                "%S %C %L %E %T %V",
                "/var/lib /var/cache /var/log /etc /tmp /var/tmp",
            ),
            (
                "redis.service",
                "%u:%U %g:%G %h %s",
                "root:0 root:0 /root /bin/sh",
            ),
            ("redis.service", "100%%", "100%"),
            ("redis.service", "%H %l", "box.example.org box"),
            ("redis.service", "%Y", "/lib/systemd/system"),
        ];
        for (unit, text, want) in cases {
            assert_eq!(run(unit, text).as_deref(), Ok(want), "{unit} {text}");
        }
    }

    #[test]
    fn facts_of_the_running_host_are_refused() {
        assert!(matches!(
            run("x.service", "%b"),
            Err(SpecifierError::Unresolvable('b', _))
        ));
        assert_eq!(run("x.service", "%z"), Err(SpecifierError::Unknown('z')));
        assert_eq!(run("x.service", "50%"), Err(SpecifierError::Trailing));
    }

    #[test]
    fn unit_names_split() {
        let n = UnitName::parse("foo@.service").unwrap();
        assert!(n.is_template());
        assert_eq!(n.stem(), "foo@");
        let n = UnitName::parse("nginx.service").unwrap();
        assert_eq!((n.prefix.as_str(), n.instance), ("nginx", None));
        assert_eq!(UnitName::parse("noext"), None);
    }
}
