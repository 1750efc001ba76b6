//! TLS to the broker, from the files `[broker]` names (or the tools' options), with errors that
//! name the file and what was wrong with it.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::broker::TlsConfig;
use crate::error::ConfigError;

fn refuse(file: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError::Tls {
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = std::fs::read(file).map_err(|err| refuse(file, format!("cannot read it: {err}")))?;
    let certificates = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| refuse(file, format!("not PEM certificates: {err}")))?;
    if certificates.is_empty() {
        return Err(refuse(
            file,
            "no certificate in it (expected PEM, BEGIN CERTIFICATE)",
        ));
    }
    Ok(certificates)
}

fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = std::fs::read(file).map_err(|err| refuse(file, format!("cannot read it: {err}")))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|err| refuse(file, format!("not a PEM private key: {err}")))?
        .ok_or_else(|| {
            refuse(
                file,
                "no private key in it (expected PEM, BEGIN PRIVATE KEY)",
            )
        })
}

/// The rustls client configuration of `tls`: its CA file's certificates (else the system's),
/// and its client certificate when it names one.
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore::empty();
    match &tls.ca_file {
        Some(file) => {
            for certificate in certificates(file)? {
                roots
                    .add(certificate)
                    .map_err(|err| refuse(file, format!("not a usable CA certificate: {err}")))?;
            }
        }
        None => {
            let system = rustls_native_certs::load_native_certs();
            for certificate in system.certs {
                let _ = roots.add(certificate);
            }
            if roots.is_empty() {
                return Err(ConfigError::Tls {
                    file: "the system's CA certificates".into(),
                    reason: "none found: name one with [broker] ca_file".into(),
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_error = |reason: String| ConfigError::Tls {
        file: "TLS".into(),
        reason,
    };
    let versions = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| tls_error(err.to_string()))?;
    let builder = match &tls.server_name {
        None => versions.with_root_certificates(roots),
        Some(name) => {
            let name = ServerName::try_from(name.clone()).map_err(|_| ConfigError::Tls {
                file: "[broker] server_name".into(),
                reason: format!("{name:?} is not a DNS name or an IP address"),
            })?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| tls_error(err.to_string()))?;
            versions
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NamedVerifier { inner, name }))
        }
    };
    let config = match &tls.client {
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|err| refuse(key, format!("does not go with {}: {err}", cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Verifies the broker's certificate as the standard verifier does, against a name of our
/// choosing (`[broker] server_name`) rather than the address's host.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
