//! Built-in TLS (`--tls-cert`, `--tls-key`): rustls with the ring provider,
//! HTTP/2 and HTTP/1.1 offered by ALPN, and a certificate that can be
//! swapped while the server runs (`SIGHUP` reloads both files; open
//! connections keep the certificate they were made with, new ones get the
//! new one). A pair that does not belong together is refused: at start the
//! server does not start, on reload the old pair stays.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// The TLS side of the server: its acceptor and the pair it serves.
#[derive(Clone)]
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<Reloadable>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.current.cert)
            .finish()
    }
}

/// The certificate files and what was last loaded from them.
#[derive(Debug)]
struct Reloadable {
    cert: PathBuf,
    key: PathBuf,
    loaded: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.loaded
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Loads the pair and builds the acceptor; the error is one line for
    /// the operator.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let pair = load_pair(cert, key)?;
        let current = Arc::new(Reloadable {
            cert: cert.to_owned(),
            key: key.to_owned(),
            loaded: RwLock::new(Arc::new(pair)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
        })
    }

    /// Reads the files again; on any error the pair in use stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let pair = load_pair(&self.current.cert, &self.current.key)?;
        *self
            .current
            .loaded
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// A certificate chain and its private key, checked to belong together.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).map_err(|e| format!("cannot read {what} {}: {e}", p.display()))
    };
    let cert_pem = read(cert, "--tls-cert")?;
    let key_pem = read(key, "--tls-key")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert {}: not a PEM certificate: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no certificate in it (expected PEM `BEGIN CERTIFICATE`)",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "--tls-key {}: no usable PEM private key: {e}",
            key.display()
        )
    })?;
    let pair = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| {
        format!(
            "--tls-key {} does not match --tls-cert {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(pair)
        }
        Err(e) => Err(format!(
            "--tls-key {} does not match --tls-cert {}: {e}",
            key.display(),
            cert.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_matching_pair_loads_and_a_mismatched_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = pair(dir.path(), "a");
        let (b_cert, b_key) = pair(dir.path(), "b");
        let tls = Tls::load(&a_cert, &a_key).unwrap();
        let e = Tls::load(&a_cert, &b_key).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        assert!(Tls::load(&a_key, &a_key)
            .unwrap_err()
            .contains("no certificate"));
        assert!(Tls::load(&a_cert, &a_cert)
            .unwrap_err()
            .contains("private key"));
        // A reload that fails keeps the pair in use; one that works swaps it.
        std::fs::copy(&b_key, &a_key).unwrap();
        assert!(tls.reload().is_err());
        std::fs::copy(&b_cert, &a_cert).unwrap();
        tls.reload().unwrap();
    }
}
