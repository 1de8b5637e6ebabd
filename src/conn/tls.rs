//! TLS for our sessions: rustls (ring provider) configured for libpq's
//! `sslmode` meanings and root certificate settings.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{ConnError, ConnSpec, Env, SslMode};

impl ConnSpec {
    /// The TLS connector for this `sslmode`.
    pub fn tls(&self, env: &dyn Env) -> Result<MakeRustlsConnect, ConnError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnError::Tls(e.to_string()))?;
        let roots = self.root_store(env)?;
        let config = match (self.sslmode, roots) {
            (SslMode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots).with_no_client_auth(),
            // libpq: with a root certificate at hand, `require` checks the chain like verify-ca.
            (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer, Some(roots)) => {
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| ConnError::Tls(e.to_string()))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(inner))).with_no_client_auth()
            }
            (SslMode::VerifyCa, None) => return Err(ConnError::MissingRootCert("verify-ca")),
            (SslMode::VerifyFull, None) => return Err(ConnError::MissingRootCert("verify-full")),
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, None) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth(),
            (SslMode::Disable, Some(_)) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn root_store(&self, env: &dyn Env) -> Result<Option<RootCertStore>, ConnError> {
        let explicit = self.sslrootcert.as_deref();
        let path = match explicit {
            Some("system") => {
                let mut store = RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = store.add(cert);
                }
                return Ok(Some(store));
            }
            Some(p) => PathBuf::from(p),
            None => match env.home() {
                Some(h) if h.join(".postgresql/root.crt").is_file() => h.join(".postgresql/root.crt"),
                _ => return Ok(None),
            },
        };
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| ConnError::RootCert { path: path.clone(), reason: e.to_string() })?;
        let mut store = RootCertStore::empty();
        for cert in certs {
            let cert = cert.map_err(|e| ConnError::RootCert { path: path.clone(), reason: e.to_string() })?;
            store.add(cert).map_err(|e| ConnError::RootCert { path: path.clone(), reason: e.to_string() })?;
        }
        if store.is_empty() {
            return Err(ConnError::RootCert { path, reason: "no certificate in the file".into() });
        }
        Ok(Some(store))
    }
}

/// Accepts any server certificate, but still checks that the handshake is
/// signed by it (what libpq's `sslmode=require` does without a root file).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain against the roots but not the host name (`verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
