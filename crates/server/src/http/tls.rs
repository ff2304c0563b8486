//! HTTPS (issue 22): the certificate chain and private key come from PEM files
//! (`tls_cert_file`, `tls_key_file`); when both are set the HTTP listener speaks TLS only.
//! [`Tls::reload`] (on SIGHUP, `main.rs`) reads the files again: new handshakes get the new
//! certificate, connections already open keep theirs, nothing is dropped. A reload that
//! fails (missing file, key not matching) keeps the old certificate and says why.
//!
//! Not here: the accept loop (`serve.rs` hands each accepted socket to [`Tls::acceptor`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{anyhow, Context, Result};
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// The server's TLS setup, reloadable.
pub struct Tls {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

/// The certificate new handshakes get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

impl Tls {
    /// Reads the PEM files; fails with the reason (unreadable file, no certificate, no or
    /// unsupported key, key not matching the certificate).
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Tls> {
        let key = certified_key(cert_file, key_file)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        // `ring` rather than rustls' default aws-lc-rs, which needs cmake and a C build
        // (the build needs nothing but cargo). rustls marks it deprecated because it has
        // no post-quantum key exchange; the classical suites it offers are sound.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("TLS protocol versions: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads the files again and uses them for the next handshakes.
    pub fn reload(&self) -> Result<()> {
        let key = certified_key(&self.cert_file, &self.key_file)?;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(())
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

fn certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading tls_cert_file {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing tls_cert_file {}", cert_file.display()))?;
    if chain.is_empty() {
        return Err(anyhow!(
            "tls_cert_file {} holds no PEM certificate",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).with_context(|| {
        format!(
            "reading a private key from tls_key_file {}",
            key_file.display()
        )
    })?;
    let signing = any_supported_type(&key)
        .map_err(|e| anyhow!("tls_key_file {}: {e}", key_file.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| anyhow!("tls_key_file does not match tls_cert_file: {e}"))?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_refused_and_a_failed_reload_keeps_the_old_one()
    {
        let dir = tempfile::tempdir().unwrap();
        let (a_crt, a_key) = write_pair(dir.path(), "a.test");
        let (_, b_key) = write_pair(dir.path(), "b.test");
        let tls = Tls::load(&a_crt, &a_key).unwrap();
        let e = Tls::load(&a_crt, &b_key).err().unwrap().to_string();
        assert!(e.contains("does not match"), "{e}");
        let missing = Tls::load(&dir.path().join("nope.crt"), &a_key)
            .err()
            .unwrap();
        assert!(format!("{missing:#}").contains("nope.crt"), "{missing:#}");
        std::fs::write(&a_crt, "not a certificate").unwrap();
        assert!(tls.reload().is_err());
        let still = tls.current.0.read().unwrap().cert[0].clone();
        assert!(!still.is_empty(), "the old certificate stays");
    }
}
