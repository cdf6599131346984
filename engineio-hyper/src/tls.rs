//! The clients' TLS settings, shared by the bindings (which own the TLS streams).

/// TLS settings of a client (the bindings' [`Runtime::TlsConfig`](crate::Runtime)).
///
/// The default trusts the Mozilla root certificates shipped by `webpki-roots` (with the
/// `rustls` feature). `TlsConfig::with_rustls` uses your own `rustls::ClientConfig`:
/// private roots, client certificates, ALPN...
#[derive(Clone, Default)]
pub struct TlsConfig {
    #[cfg(feature = "rustls")]
    client: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

#[cfg(feature = "rustls")]
impl TlsConfig {
    /// Uses this rustls client configuration for `https` and `wss`.
    pub fn with_rustls(config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        TlsConfig {
            client: Some(config),
        }
    }

    /// The rustls configuration to connect with: the application's, or a default one
    /// trusting the webpki roots (built once).
    pub fn rustls_config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        static DEFAULT: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> =
            std::sync::OnceLock::new();
        match &self.client {
            Some(c) => c.clone(),
            None => DEFAULT
                .get_or_init(|| {
                    let roots = rustls::RootCertStore::from_iter(
                        webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
                    );
                    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                    let config = match rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                    {
                        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
                        // ring supports the default versions; this branch cannot be taken.
                        Err(_) => rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    };
                    std::sync::Arc::new(config)
                })
                .clone(),
        }
    }

    /// The server name to verify for `host`.
    pub fn server_name(host: &str) -> std::io::Result<rustls::pki_types::ServerName<'static>> {
        rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }
}

/// The error for `https`/`wss` without TLS support compiled in.
pub fn unsupported(binding: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("https and wss need the `rustls` feature of {binding}"),
    )
}
