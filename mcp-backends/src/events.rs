//! `EventBus`: publish/subscribe on named topics, used to carry cache invalidations and
//! change notifications between instances.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::Result;

/// A message on a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The topic it was published on.
    pub topic: String,
    /// Opaque payload (services use JSON).
    pub payload: Vec<u8>,
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The next event.
    Event(Event),
    /// The subscriber fell behind and `missed` events were dropped; a cache must treat this
    /// as "anything may have changed".
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
}

/// A subscription; dropping it unsubscribes.
pub struct Subscription {
    receiver: mpsc::Receiver<Delivery>,
}

impl Subscription {
    /// Wraps the receiving end that a backend feeds.
    pub fn new(receiver: mpsc::Receiver<Delivery>) -> Self {
        Subscription { receiver }
    }

    /// The next delivery; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.receiver.recv().await
    }
}

/// Publish/subscribe.
///
/// Semantics every backend must share (checked by the conformance suite):
/// - A subscriber receives every event published on its topic after `subscribe` returned, in
///   publish order per publisher, or a [`Delivery::Lagged`] marker where it fell behind.
/// - Topics are exact names; events on other topics are not delivered.
/// - Publishing with no subscribers succeeds.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Backend name.
    fn backend(&self) -> &'static str;

    /// Publishes `payload` on `topic`.
    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<()>;

    /// Subscribes to `topic`.
    async fn subscribe(&self, topic: &str) -> Result<Subscription>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}
