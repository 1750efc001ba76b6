//! TLS to the broker and the broker password: read from the files the configuration names,
//! with errors that name the file and what was wrong with it.

use std::path::Path;
use std::sync::Arc;

use janitoo_config::{BrokerConfig, TlsConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::error::ActorError;

/// The environment variable that may hold the broker password.
pub const PASSWORD_VARIABLE: &str = "JANITOO_BROKER_PASSWORD";

fn refuse(file: &Path, reason: impl Into<String>) -> ActorError {
    ActorError::Tls {
        file: file.display().to_string(),
        reason: reason.into(),
    }
}

fn certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, ActorError> {
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

fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, ActorError> {
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
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, ActorError> {
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
                return Err(ActorError::Tls {
                    file: "the system's CA certificates".into(),
                    reason: "none found: name one with [broker] ca_file".into(),
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ActorError::Tls {
            file: "TLS".into(),
            reason: err.to_string(),
        })?
        .with_root_certificates(roots);
    let config = match &tls.client {
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|err| refuse(key, format!("does not go with {}: {err}", cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The broker password: `password`, else the first line of `password_file`, else the
/// environment variable [`PASSWORD_VARIABLE`].
pub fn password(broker: &BrokerConfig) -> Result<Option<String>, ActorError> {
    if let Some(password) = &broker.password {
        return Ok(Some(password.clone()));
    }
    if let Some(file) = &broker.password_file {
        let text = std::fs::read_to_string(file).map_err(|err| ActorError::Password {
            file: file.display().to_string(),
            reason: format!("cannot read it: {err}"),
        })?;
        let line = text.lines().next().unwrap_or_default().trim_end();
        if line.is_empty() {
            return Err(ActorError::Password {
                file: file.display().to_string(),
                reason: "it is empty".into(),
            });
        }
        return Ok(Some(line.to_owned()));
    }
    Ok(std::env::var(PASSWORD_VARIABLE)
        .ok()
        .filter(|p| !p.is_empty()))
}
