//! The node-to-node channel's TLS: the cluster's CA and this node's
//! certificate, the same files the node uses for etcd. Both sides
//! authenticate: the server asks for a client certificate signed by the
//! CA, the client checks the server's against the CA and the address it
//! dialled (so the certificate's SANs must name the node's address).
//!
//! rustls with the ring provider, as etcd-client's TLS already links.
//!
//! Must not: accept a peer without a certificate from the cluster's CA.

use crate::store::etcd::TlsFiles;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::{
    self,
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    ClientConfig, RootCertStore, ServerConfig,
};

/// Why the cluster's certificates cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{path}: no {what} in it (PEM expected)")]
    Empty {
        what: &'static str,
        path: std::path::PathBuf,
    },
    #[error("the cluster's certificates: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the cluster's CA: {0}")]
    Verifier(String),
}

/// Server and client configurations for the node-to-node channel.
#[derive(Clone)]
pub struct PeerTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Read {
            what,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

impl PeerTls {
    pub fn load(files: &TlsFiles) -> Result<PeerTls, TlsError> {
        let mut roots = RootCertStore::empty();
        for ca in certificates("CA certificate", &files.ca)? {
            roots.add(ca)?;
        }
        let roots = Arc::new(roots);
        let chain = certificates("certificate", &files.cert)?;
        let key_pem = read("key", &files.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Read {
            what: "key",
            path: files.key.clone(),
            reason: e.to_string(),
        })?;

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}
