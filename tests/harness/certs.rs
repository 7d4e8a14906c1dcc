//! A throw-away PKI for TLS tests, made with the `openssl` command line
//! exactly as README's cluster set-up does it: a CA, and per name a
//! certificate for both TLS roles (serverAuth and clientAuth, SANs
//! 127.0.0.1 and localhost), so one file serves etcd and drover's
//! node-to-node listener. EC P-256 keys (fast to make).
//!
//! A second, unrelated CA ([`Pki::rogue`]) signs certificates that must
//! be refused.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    dir: PathBuf,
}

/// One certificate and its key.
#[derive(Clone, Debug)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// A new CA named `name` in `dir` (created).
    pub fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "ca.key",
            ],
        );
        let subject = format!("/CN={name}");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                &subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A certificate for `name` signed by this CA.
    pub fn issue(&self, name: &str) -> Pair {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&ext),
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(
            &self.dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key,
            ],
        );
        let subject = format!("/CN={name}");
        openssl(
            &self.dir,
            &["req", "-new", "-key", &key, "-out", &csr, "-subj", &subject],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
        Pair {
            cert: self.dir.join(crt),
            key: self.dir.join(key),
        }
    }

    /// Another CA, unrelated to this one, in a sibling folder.
    pub fn rogue(&self) -> Pki {
        Pki::new(&self.dir.join("rogue"), "rogue-ca")
    }
}
