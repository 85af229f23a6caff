//! Middleware that lets a call through only when the caller is authenticated and holds the
//! `service:action` scope.

use crate::ActionOutput;
use async_trait::async_trait;

use super::{Call, Middleware, Next};
use crate::{Error, Result};

/// Rejects calls without a principal ([`Error::Unauthenticated`]) or without the
/// `service:action` scope ([`Error::PermissionDenied`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Authorize;

#[async_trait]
impl Middleware for Authorize {
    async fn handle<'a>(&'a self, call: Call<'a>, next: Next<'a>) -> Result<ActionOutput> {
        if call.ctx.principal().is_none() {
            return Err(Error::Unauthenticated(
                "no valid credentials were presented".into(),
            ));
        }
        if !call.ctx.scopes().allows(call.service, &call.action.name) {
            return Err(Error::PermissionDenied(format!(
                "scope `{}:{}` is not granted to this caller",
                call.service, call.action.name
            )));
        }
        next.run(call).await
    }
}
