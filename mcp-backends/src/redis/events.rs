//! Redis `EventBus` on pub/sub. Each subscription holds its own pub/sub connection and
//! re-subscribes after the server comes back; since events published meanwhile are lost, it
//! then delivers `Delivery::Lagged` so caches drop everything they hold.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::{connect_manager, map_err, open_client, DEFAULT_TIMEOUT};
use crate::events::{Delivery, Event, EventBus, Subscription};
use crate::Result;

/// How many deliveries a subscription buffers before the forwarding task waits.
const BUFFER: usize = 1024;

/// Publish/subscribe over a Redis server.
#[derive(Clone)]
pub struct RedisEventBus {
    client: redis::Client,
    conn: ConnectionManager,
}

impl RedisEventBus {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = open_client(url)?;
        let conn = connect_manager(client.clone()).await?;
        Ok(RedisEventBus { client, conn })
    }
}

async fn open_subscription(client: &redis::Client, topic: &str) -> Result<redis::aio::PubSub> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(topic).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(DEFAULT_TIMEOUT, connect).await {
        Ok(result) => result.map_err(map_err),
        Err(_) => Err(crate::Error::Timeout { backend: "redis" }),
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<()> {
        let _: u64 = redis::cmd("PUBLISH")
            .arg(topic)
            .arg(payload)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription> {
        // Subscribe before returning, so events published after this call are delivered.
        let first = open_subscription(&self.client, topic).await?;
        let (sender, receiver) = mpsc::channel(BUFFER);
        let client = self.client.clone();
        let topic = topic.to_owned();
        tokio::spawn(async move {
            let mut pubsub = Some(first);
            loop {
                let Some(connection) = pubsub.take() else {
                    if sender.is_closed() {
                        return;
                    }
                    match open_subscription(&client, &topic).await {
                        Ok(connection) => {
                            if sender.send(Delivery::Lagged { missed: 0 }).await.is_err() {
                                return;
                            }
                            pubsub = Some(connection);
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    }
                    continue;
                };
                let mut messages = connection.into_on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                let event = Event {
                                    topic: message.get_channel_name().to_owned(),
                                    payload: message.get_payload_bytes().to_vec(),
                                };
                                if sender.send(Delivery::Event(event)).await.is_err() {
                                    return;
                                }
                            }
                            None => break, // connection lost: reconnect above
                        },
                        _ = sender.closed() => return,
                    }
                }
            }
        });
        Ok(Subscription::new(receiver))
    }

    async fn ping(&self) -> Result<()> {
        super::ping(&self.conn).await
    }
}
