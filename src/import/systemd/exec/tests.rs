use super::*;
use crate::import::systemd::specifiers::UnitName;

fn ctx_for(unit: &UnitName) -> Context<'_> {
    Context {
        unit,
        fragment: "/etc/systemd/system/app@blue.service",
        hostname: Some("box"),
    }
}

fn parse_one(value: &str) -> Command {
    let unit = UnitName::parse("app@blue.service").unwrap();
    let mut notes = Vec::new();
    let mut cmds = parse(value, &ctx_for(&unit), &mut notes).expect(value);
    assert_eq!(cmds.len(), 1, "{value}");
    cmds.remove(0)
}

fn env() -> BTreeMap<String, String> {
    [
        ("OPTS", "-v --name 'two words'"),
        ("PORT", "6380"),
        ("EMPTY", ""),
        ("BRACES", "${literal}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn argv(value: &str) -> Vec<String> {
    let unit_env = env();
    let e = Env {
        unit: &unit_env,
        inherited: &["HOME", "PATH"],
    };
    to_argv(&parse_one(value), &e).0
}

#[test]
fn quoting_and_escapes_as_systemd_reads_them() {
    let cases: &[(&str, &[&str])] = &[
        ("/bin/echo a b", &["/bin/echo", "a", "b"]),
        (
            "/usr/sbin/nginx -g 'daemon on; master_process on;'",
            &["/usr/sbin/nginx", "-g", "daemon on; master_process on;"],
        ),
        ("/bin/echo \"a b\" 'c d'", &["/bin/echo", "a b", "c d"]),
        // Quotes anywhere in a word.
        ("/bin/echo a\"b c\"d", &["/bin/echo", "ab cd"]),
        ("/bin/echo \"\"", &["/bin/echo", ""]),
        (
            "/bin/echo a\\sb \\x41 \\101 \\u00e9",
            &["/bin/echo", "a b", "A", "A", "é"],
        ),
        ("/bin/echo \"tab\\there\"", &["/bin/echo", "tab\there"]),
        ("/bin/echo 'it\\'s'", &["/bin/echo", "it's"]),
        // An unknown escape is kept as written.
        ("/bin/echo \\q", &["/bin/echo", "\\q"]),
        ("/bin/echo x \\; y", &["/bin/echo", "x", ";", "y"]),
        // Specifiers, %% included.
        (
            "/bin/echo %i %p %n 100%%",
            &["/bin/echo", "blue", "app", "app@blue.service", "100%"],
        ),
        // Plain names are looked up in PATH.
        ("sleep 1", &["sleep", "1"]),
    ];
    for (value, want) in cases {
        assert_eq!(argv(value), *want, "{value}");
    }
}

#[test]
fn variables_expand_as_systemd_expands_them() {
    let cases: &[(&str, &[&str])] = &[
        // $NAME alone: split into words (quotes respected), now.
        ("/bin/x $OPTS", &["/bin/x", "-v", "--name", "two words"]),
        ("/bin/x \"$OPTS\"", &["/bin/x", "-v", "--name", "two words"]),
        ("/bin/x $EMPTY", &["/bin/x"]),
        ("/bin/x $UNSET", &["/bin/x"]),
        // ${NAME}: one argument; drover expands it from the same env.
        ("/bin/x ${OPTS}", &["/bin/x", "${OPTS}"]),
        ("/bin/x --port=${PORT}", &["/bin/x", "--port=${PORT}"]),
        ("/bin/x --home=${HOME}", &["/bin/x", "--home=${HOME}"]),
        ("/bin/x $HOME", &["/bin/x", "${HOME}"]),
        // Unset in a word: nothing, the rest of the word stays.
        ("/bin/x a${UNSET}b", &["/bin/x", "ab"]),
        // Braceless inside a word and $$ are literal.
        ("/bin/x a$PORT", &["/bin/x", "a$PORT"]),
        ("/bin/x $$PORT", &["/bin/x", "$PORT"]),
        ("/bin/x $${PORT}", &["/bin/x", "$${PORT}"]),
        // A literal `$` right before a reference: the value goes in.
        ("/bin/x $$${PORT}", &["/bin/x", "$6380"]),
        // Unsupported syntax is literal, and a literal `${` is drover's `$${`.
        ("/bin/x ${PORT:-1}", &["/bin/x", "$${PORT:-1}"]),
        ("/bin/x ${PORT", &["/bin/x", "$${PORT"]),
        // A value holding `${` stays a reference (env carries it escaped).
        ("/bin/x ${BRACES}", &["/bin/x", "${BRACES}"]),
        ("/bin/x $BRACES", &["/bin/x", "$${literal}"]),
        // `:` turns expansion off.
        (":/bin/x ${PORT} $OPTS", &["/bin/x", "$${PORT}", "$OPTS"]),
    ];
    for (value, want) in cases {
        assert_eq!(argv(value), *want, "{value}");
    }
}

#[test]
fn prefixes() {
    let c = parse_one("-/bin/false");
    assert!(c.ignore_failure);
    assert_eq!(c.path, "/bin/false");
    let c = parse_one("@/usr/bin/daemon my-daemon --fg");
    assert_eq!(c.argv0.as_deref(), Some("my-daemon"));
    assert_eq!(c.args, vec!["--fg"]);
    assert_eq!(
        argv("@/usr/bin/daemon my-daemon --fg"),
        vec!["/usr/bin/daemon", "--fg"]
    );
    assert_eq!(parse_one("+/bin/x").privilege, Privilege::Full);
    assert_eq!(parse_one("!/bin/x").privilege, Privilege::NoSetuid);
    assert_eq!(parse_one("!!/bin/x").privilege, Privilege::AmbientFallback);
    let c = parse_one("-:+/bin/x");
    assert!(c.ignore_failure && c.no_env_expand);
    assert_eq!(c.privilege, Privilege::Full);
    // Prefixes inside quotes count too (systemd unquotes the word first).
    assert!(parse_one("\"-/bin/x\"").ignore_failure);
}

#[test]
fn semicolons_separate_commands() {
    let unit = UnitName::parse("app@blue.service").unwrap();
    let cmds = parse("/bin/a 1 ; /bin/b 2", &ctx_for(&unit), &mut Vec::new()).unwrap();
    let paths: Vec<&str> = cmds.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, vec!["/bin/a", "/bin/b"]);
    assert_eq!(cmds[0].args, vec!["1"]);
}

#[test]
fn lines_systemd_would_reject() {
    let unit = UnitName::parse("app@blue.service").unwrap();
    let ctx = ctx_for(&unit);
    let err = |v: &str| parse(v, &ctx, &mut Vec::new()).unwrap_err();
    assert_eq!(err("/bin/echo \"open"), ExecError::Unbalanced);
    assert_eq!(err(""), ExecError::Empty);
    assert_eq!(err("-"), ExecError::Empty);
    assert_eq!(err("bin/x"), ExecError::RelativePath("bin/x".into()));
    assert!(matches!(err("/bin/x %b"), ExecError::Specifier(_)));
}

#[test]
fn notes_say_what_was_decided() {
    let unit_env = env();
    let e = Env {
        unit: &unit_env,
        inherited: &[],
    };
    let (_, notes) = to_argv(&parse_one("/bin/x $OPTS $MAINPID"), &e);
    assert!(notes[0].contains("split into words here"), "{notes:?}");
    assert!(
        notes[1].contains("$MAINPID exists only in ExecReload"),
        "{notes:?}"
    );
}
