//! Conformance suite for [`EventBus`].

use std::time::Duration;

use tokio::time::timeout;

use super::unique_prefix;
use crate::events::{Delivery, EventBus, Subscription};

async fn next_payload(subscription: &mut Subscription) -> Vec<u8> {
    match timeout(Duration::from_secs(5), subscription.recv()).await {
        Ok(Some(Delivery::Event(event))) => event.payload,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Runs every EventBus check.
pub async fn run_all(bus: &dyn EventBus) {
    delivery_in_order(bus).await;
    topics_are_isolated(bus).await;
}

/// Every subscriber gets every event, in publish order; publishing to nobody succeeds.
pub async fn delivery_in_order(bus: &dyn EventBus) {
    let topic = format!("{}topic", unique_prefix());
    bus.publish(&topic, b"before anyone listens".to_vec())
        .await
        .unwrap();
    let mut first = bus.subscribe(&topic).await.unwrap();
    let mut second = bus.subscribe(&topic).await.unwrap();
    for i in 0..20u8 {
        bus.publish(&topic, vec![i]).await.unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(next_payload(&mut first).await, vec![i]);
        assert_eq!(next_payload(&mut second).await, vec![i]);
    }
    drop(first);
    bus.publish(&topic, b"after drop".to_vec()).await.unwrap();
    assert_eq!(next_payload(&mut second).await, b"after drop".to_vec());
    bus.ping().await.unwrap();
}

/// Events on another topic are not delivered.
pub async fn topics_are_isolated(bus: &dyn EventBus) {
    let p = unique_prefix();
    let mut a = bus.subscribe(&format!("{p}a")).await.unwrap();
    bus.publish(&format!("{p}b"), b"b".to_vec()).await.unwrap();
    bus.publish(&format!("{p}a"), b"a".to_vec()).await.unwrap();
    assert_eq!(next_payload(&mut a).await, b"a".to_vec());
    let nothing = timeout(Duration::from_millis(200), a.recv()).await;
    assert!(nothing.is_err(), "unexpected delivery {nothing:?}");
}
