//! Who is calling: bearer API keys (stored as SHA-256 hashes) turned into the
//! [`RequestContext`] every transport passes to the registry, so scopes are enforced the same way
//! on REST, WebSocket and MCP. With no keys configured only loopback peers are served, as the
//! trusted principal `local`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use mcp_core::{Error, RequestContext, Scopes};

use crate::config::{hash_key, ApiKey};

/// The configured keys, indexed by hash. Cheap to clone (the handlers' state holds one).
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    by_hash: Arc<HashMap<String, (String, Scopes)>>,
}

impl KeyRing {
    /// Indexes `keys` by their (lowercased) hash.
    pub fn new(keys: &[ApiKey]) -> Self {
        KeyRing {
            by_hash: Arc::new(
                keys.iter()
                    .map(|key| {
                        (
                            key.hash.to_ascii_lowercase(),
                            (
                                key.principal.clone(),
                                Scopes::new(key.scopes.iter().cloned()),
                            ),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Whether any key is configured (otherwise only loopback peers are accepted).
    pub fn is_open(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The context for a request from `peer` carrying the `Authorization` header value
    /// `authorization`: [`Error::Unauthenticated`] for a missing or unknown key,
    /// [`Error::PermissionDenied`] for a non-loopback peer when no keys are configured.
    pub fn authenticate(
        &self,
        peer: Option<SocketAddr>,
        authorization: Option<&str>,
    ) -> Result<RequestContext, Error> {
        if self.is_open() {
            return match peer {
                Some(addr) if !addr.ip().is_loopback() => Err(Error::PermissionDenied(
                    "no API keys are configured, so only loopback clients are served".into(),
                )),
                _ => Ok(RequestContext::local()),
            };
        }
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::Unauthenticated("a bearer API key is required".into()))?;
        let (principal, scopes) = self
            .by_hash
            .get(&hash_key(token))
            .ok_or_else(|| Error::Unauthenticated("unknown API key".into()))?;
        Ok(RequestContext::anonymous()
            .with_principal(principal.clone())
            .with_scopes(scopes.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(&[ApiKey {
            hash: hash_key("s3cret"),
            principal: "agent".into(),
            scopes: vec!["memory:retrieve".into()],
        }])
    }

    #[test]
    fn bearer_keys_map_to_principal_and_scopes() {
        let ctx = ring().authenticate(None, Some("Bearer s3cret")).unwrap();
        assert_eq!(ctx.principal(), Some("agent"));
        assert!(ctx.scopes().allows("memory", "retrieve"));
        assert!(!ctx.scopes().allows("memory", "store"));
        assert!(matches!(
            ring().authenticate(None, None),
            Err(Error::Unauthenticated(_))
        ));
        assert!(matches!(
            ring().authenticate(None, Some("Bearer nope")),
            Err(Error::Unauthenticated(_))
        ));
    }

    #[test]
    fn without_keys_only_loopback_is_served() {
        let open = KeyRing::default();
        let local = open
            .authenticate(Some(SocketAddr::from(([127, 0, 0, 1], 1))), None)
            .unwrap();
        assert_eq!(local.principal(), Some("local"));
        assert!(matches!(
            open.authenticate(Some(SocketAddr::from(([10, 0, 0, 1], 1))), None),
            Err(Error::PermissionDenied(_))
        ));
    }
}
