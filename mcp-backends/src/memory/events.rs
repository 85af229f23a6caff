//! In-memory `EventBus`: one tokio broadcast channel per topic, forwarded into each
//! subscription with lag reported as `Delivery::Lagged`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};

use super::kv::poisoned;
use crate::events::{Delivery, Event, EventBus, Subscription};
use crate::Result;

/// Default number of events a slow subscriber may fall behind before it sees `Lagged`.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Publish/subscribe inside one process.
#[derive(Debug)]
pub struct MemoryEventBus {
    capacity: usize,
    topics: Mutex<HashMap<String, broadcast::Sender<Event>>>,
}

impl Default for MemoryEventBus {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryEventBus {
    /// A bus with [`DEFAULT_CAPACITY`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus whose subscribers may fall `capacity` events behind before lagging.
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryEventBus {
            capacity: capacity.max(1),
            topics: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<()> {
        let topics = self.topics.lock().map_err(|_| poisoned())?;
        if let Some(sender) = topics.get(topic) {
            // An error only means nobody is subscribed right now.
            let _ = sender.send(Event {
                topic: topic.to_owned(),
                payload,
            });
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        let mut receiver = {
            let mut topics = self.topics.lock().map_err(|_| poisoned())?;
            topics
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(self.capacity).0)
                .subscribe()
        };
        let (sender, subscription) = mpsc::channel(self.capacity);
        tokio::spawn(async move {
            loop {
                let delivery = match receiver.recv().await {
                    Ok(event) => Delivery::Event(event),
                    Err(broadcast::error::RecvError::Lagged(missed)) => Delivery::Lagged { missed },
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if sender.send(delivery).await.is_err() {
                    break; // the subscription was dropped
                }
            }
        });
        Ok(Subscription::new(subscription))
    }

    async fn ping(&self) -> Result<()> {
        self.topics.lock().map(|_| ()).map_err(|_| poisoned())
    }
}
