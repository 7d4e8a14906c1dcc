//! `--setup`: installs the peers from their usual sources (the only step
//! that uses the network), builds the workload and drover's release
//! binary. A peer that cannot be installed leaves its reason in
//! `target/bench/peers/NAME.skipped`, and the measurement run reports it as
//! skipped.

use crate::adapters::PM2_VERSION;
use crate::Env;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

pub const HORUST_VERSION: &str = "0.1.14";

/// Peers from Debian: (adapter name, program that proves it, package).
const DEBIAN: [(&str, &str, &str); 3] = [
    ("supervisord", "supervisord", "supervisor"),
    ("runit", "runsvdir", "runit"),
    ("s6", "s6-svscan", "s6"),
];

fn run(cmd: &mut Command) -> Result<(), String> {
    let what = format!("{cmd:?}");
    println!("setup: {what}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

fn mark(env: &Env, name: &str, result: &Result<(), String>) {
    let marker = env.peers.join(format!("{name}.skipped"));
    match result {
        Ok(()) => {
            let _ = fs::remove_file(marker);
            println!("setup: {name}: ok");
        }
        Err(reason) => {
            let _ = fs::write(&marker, format!("{reason}\n"));
            println!("setup: {name}: SKIPPED: {reason}");
        }
    }
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn debian(env: &Env) {
    let missing: Vec<_> = DEBIAN.iter().filter(|(_, p, _)| !have(p)).collect();
    for (name, _, _) in DEBIAN.iter().filter(|(_, p, _)| have(p)) {
        mark(env, name, &Ok(()));
    }
    if missing.is_empty() {
        return;
    }
    let result = if !nix_is_root() {
        Err("apt-get needs root".to_string())
    } else {
        // Installing must not start system-wide services (supervisor's
        // init script would): a policy-rc.d that says "no" while we
        // install, unless the host already has one.
        let policy = Path::new("/usr/sbin/policy-rc.d");
        let ours = !policy.exists();
        if ours {
            let _ = fs::write(
                policy,
                "#!/bin/sh\n# drover benchmark setup: no service starts\nexit 101\n",
            );
            let _ =
                fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755));
        }
        let packages: Vec<&str> = missing.iter().map(|(_, _, pkg)| *pkg).collect();
        let r = run(Command::new("apt-get").args(["update", "-qq"])).and_then(|()| {
            run(Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&packages)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        });
        if ours {
            let _ = fs::remove_file(policy);
        }
        r
    };
    for (name, program, package) in missing {
        let r = match &result {
            Ok(()) if have(program) => Ok(()),
            Ok(()) => Err(format!("Debian package {package} installed no {program}")),
            Err(e) => Err(format!("Debian package {package}: {e}")),
        };
        mark(env, name, &r);
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn horust(env: &Env) {
    let root = env.peers.join("horust");
    let r = if root.join("bin/horust").is_file() {
        Ok(())
    } else {
        run(Command::new("cargo")
            .args([
                "install",
                "horust",
                "--locked",
                "--version",
                HORUST_VERSION,
                "--root",
            ])
            .arg(&root))
    };
    mark(
        env,
        "Horust",
        &r.map_err(|e| format!("crates.io horust {HORUST_VERSION}: {e}")),
    );
}

fn pm2(env: &Env) {
    let prefix = env.peers.join("pm2");
    let r = if !have("npm") || !have("node") {
        Err("node/npm not installed".to_string())
    } else if prefix.join("node_modules/.bin/pm2").is_file() {
        Ok(())
    } else {
        fs::create_dir_all(&prefix)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                fs::write(
                    prefix.join("package.json"),
                    "{ \"private\": true, \"description\": \"drover benchmark: PM2\" }\n",
                )
                .map_err(|e| e.to_string())
            })
            .and_then(|()| {
                run(Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund"])
                    .arg(format!("pm2@{PM2_VERSION}"))
                    .current_dir(&prefix))
            })
    };
    mark(
        env,
        "PM2",
        &r.map_err(|e| format!("npm pm2@{PM2_VERSION}: {e}")),
    );
}

pub fn setup(env: &Env) -> bool {
    let _ = fs::create_dir_all(&env.peers);
    let mut ok = true;
    match crate::workload::build(&env.bench) {
        Ok(p) => println!("setup: workload: {}", p.display()),
        Err(e) => {
            println!("setup: workload: FAILED: {e}");
            ok = false;
        }
    }
    if let Err(e) = crate::ensure_drover(env) {
        println!("setup: drover: FAILED: {e}");
        ok = false;
    }
    debian(env);
    horust(env);
    pm2(env);
    ok
}
