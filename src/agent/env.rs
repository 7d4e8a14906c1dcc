//! A process's environment and argv: the base variables, the user's, the
//! unit's `env`, DROVER_* and the pod's PORT_* variables, then `${VAR}`
//! expansion in `command`. Pure.

use std::collections::BTreeMap;

/// Name of the variable that marks every process drover starts (and, by
/// inheritance, its descendants) with `INSTANCE/POD_UID/PROCESS/RUN`: a
/// stop finds double-forked grandchildren that left the process group by
/// it, and a restarted daemon finds the processes it started (INSTANCE
/// names its state dir, so daemons side by side never touch each other's).
pub const MARKER: &str = "DROVER_PROCESS_ID";

pub fn marker_value(instance: &str, pod_uid: &str, process: &str, run: u32) -> String {
    format!("{instance}/{pod_uid}/{process}/{run}")
}

/// The parts of a marker value: (instance, pod uid, process, run).
pub fn parse_marker(value: &str) -> Option<(&str, &str, &str, u32)> {
    let (instance, rest) = value.split_once('/')?;
    let (uid, rest) = rest.split_once('/')?;
    let (process, run) = rest.rsplit_once('/')?;
    Some((instance, uid, process, run.parse().ok()?))
}

/// `PORT_HTTP` for the port named `http` (`-` becomes `_`).
pub fn port_var(name: &str) -> String {
    format!("PORT_{}", name.to_ascii_uppercase().replace('-', "_"))
}

pub struct EnvInputs<'a> {
    /// This daemon's instance id (see [`MARKER`]).
    pub instance: &'a str,
    /// What every process inherits from the daemon (PATH, LANG, TZ).
    pub base: &'a [(String, String)],
    /// HOME, USER, LOGNAME, SHELL of the process's user, when it has one.
    pub user: &'a [(String, String)],
    pub spec_env: &'a BTreeMap<String, String>,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
    pub node_name: &'a str,
    pub process: &'a str,
    /// Which run of the process this is (its restart count).
    pub run: u32,
    pub ports: &'a BTreeMap<String, u16>,
}

/// Later sources override earlier ones: base < user < DROVER_* and ports <
/// the unit's own `env` (a unit may deliberately set PORT_X), except the
/// marker, which always wins.
pub fn build_env(i: &EnvInputs) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in i.base.iter().chain(i.user.iter()) {
        env.insert(k.clone(), v.clone());
    }
    env.insert("DROVER_POD_NAME".into(), i.pod_name.into());
    env.insert("DROVER_POD_UID".into(), i.pod_uid.into());
    env.insert("DROVER_NODE_NAME".into(), i.node_name.into());
    for (name, port) in i.ports {
        env.insert(port_var(name), port.to_string());
    }
    for (k, v) in i.spec_env {
        env.insert(k.clone(), expand(v, &env));
    }
    env.insert(
        MARKER.into(),
        marker_value(i.instance, i.pod_uid, i.process, i.run),
    );
    env.into_iter().collect()
}

/// Expands `${VAR}` from `env`; `$${` is a literal `${`; an unknown
/// variable expands to the empty string (validation rejects those in unit
/// files up front).
pub fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(lit) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = lit;
        } else if let Some(body) = after.strip_prefix("${") {
            match body.find('}') {
                Some(end) => {
                    if let Some(v) = env.get(&body[..end]) {
                        out.push_str(v);
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

pub fn expand_argv(argv: &[String], env: &[(String, String)]) -> Vec<String> {
    let map: BTreeMap<String, String> = env.iter().cloned().collect();
    argv.iter().map(|a| expand(a, &map)).collect()
}

/// The variables every process inherits from the daemon.
pub fn base_env_from_daemon() -> Vec<(String, String)> {
    let mut out = vec![];
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    out.push(("PATH".into(), path));
    for k in ["LANG", "LC_ALL", "TZ", "HOME", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(k) {
            out.push((k.into(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let env: BTreeMap<String, String> = [("PORT_HTTP".to_string(), "8080".to_string())].into();
        assert_eq!(expand("--port=${PORT_HTTP}", &env), "--port=8080");
        assert_eq!(expand("$${PORT_HTTP}", &env), "${PORT_HTTP}");
        assert_eq!(expand("${NOPE}x", &env), "x");
        assert_eq!(expand("$HOME and $", &env), "$HOME and $");
        assert_eq!(expand("${unterminated", &env), "${unterminated");
    }

    #[test]
    fn env_layers() {
        let base = vec![("PATH".to_string(), "/bin".to_string())];
        let user = vec![("HOME".to_string(), "/home/u".to_string())];
        let spec: BTreeMap<String, String> = [
            ("GREETING".to_string(), "hi on ${PORT_HTTP}".to_string()),
            ("PATH".to_string(), "/opt/bin".to_string()),
        ]
        .into();
        let ports: BTreeMap<String, u16> = [("http".to_string(), 8081)].into();
        let env = build_env(&EnvInputs {
            instance: "i1",
            base: &base,
            user: &user,
            spec_env: &spec,
            pod_name: "web-abcde",
            pod_uid: "u1",
            node_name: "n1",
            process: "server",
            run: 2,
            ports: &ports,
        });
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/opt/bin"));
        assert_eq!(get("HOME"), Some("/home/u"));
        assert_eq!(get("GREETING"), Some("hi on 8081"));
        assert_eq!(get("PORT_HTTP"), Some("8081"));
        assert_eq!(get("DROVER_POD_NAME"), Some("web-abcde"));
        assert_eq!(get("DROVER_NODE_NAME"), Some("n1"));
        assert_eq!(get(MARKER), Some("i1/u1/server/2"));
        assert_eq!(
            parse_marker("i1/u1/server/2"),
            Some(("i1", "u1", "server", 2))
        );
    }
}
