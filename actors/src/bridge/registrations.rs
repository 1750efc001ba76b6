//! Who registers with the bridge, and what it subscribes to for them: buses (their requests),
//! observers (the protocol's messages) and raw observers (Home Assistant's topics).

use actix::prelude::*;
use rumqttc::{QoS, SubscribeFilter};
use tracing::warn;

use super::{MqttBridge, Observer};
use crate::messages::{ConnectionChanged, Observe, ObserveRaw, RegisterBus, Resubscribe};
use crate::metrics::ActorKind;

impl MqttBridge {
    /// Subscribes to `filters` in one SUBSCRIBE; the buses announce themselves once it is
    /// acknowledged, so that nobody sees a heartbeat before requests can be served.
    pub(super) fn subscribe(&mut self, filters: Vec<String>) {
        self.link.announce_on_suback = true;
        self.send_subscribe(filters);
    }

    /// One SUBSCRIBE for `filters`.
    fn send_subscribe(&self, filters: Vec<String>) {
        let client = self.client.clone();
        let filters: Vec<SubscribeFilter> = filters
            .into_iter()
            .map(|filter| SubscribeFilter::new(filter, QoS::AtMostOnce))
            .collect();
        actix::spawn(async move {
            if let Err(err) = client.subscribe_many(filters).await {
                warn!(%err, "subscriptions not sent");
            }
        });
    }
}

impl MqttBridge {
    /// Drops `filters` (after what is already sent: the tasks run in order).
    fn unsubscribe(&self, filters: Vec<String>) {
        if filters.is_empty() {
            return;
        }
        let client = self.client.clone();
        actix::spawn(async move {
            for filter in filters {
                if let Err(err) = client.unsubscribe(filter).await {
                    warn!(%err, "unsubscription not sent");
                }
            }
        });
    }
}

impl Handler<Resubscribe> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Resubscribe, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        if self.link.connected {
            self.send_subscribe(msg.filters);
        }
    }
}

impl Handler<ObserveRaw> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: ObserveRaw, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        self.filters.extend(msg.filters.iter().cloned());
        if self.link.connected {
            self.subscribe(msg.filters.clone());
        }
        self.inbound.observe_raw(msg.filters);
        self.raw_observers.push(msg.observer);
    }
}

impl Handler<RegisterBus> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: RegisterBus, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let filter = janitoo_protocol::topic::filters::nodes_of(msg.ctrl);
        self.buses.insert(msg.ctrl, msg.requests);
        self.inbound.serve(msg.ctrl);
        self.announcers.push(msg.announce);
        let mut filters = self.watch_own(&msg.hadds);
        self.hadds.extend(msg.hadds);
        filters.push(filter);
        self.filters.extend(filters.iter().cloned());
        if self.link.connected {
            self.subscribe(filters);
        }
    }
}

impl Handler<Observe> for MqttBridge {
    type Result = ();

    fn handle(&mut self, msg: Observe, _ctx: &mut Context<Self>) {
        let _handling = self.metrics.handling(ActorKind::Bridge);
        let covered = self.own_filters_covered_by(&msg.filters);
        self.filters.extend(msg.filters.iter().cloned());
        if self.link.connected {
            // A late observer: its filters now, and the news that the connection is up (so
            // that it asks what it missed).
            self.subscribe(msg.filters);
            self.unsubscribe(covered);
            self.metrics.sent(msg.kind);
            msg.connection
                .do_send(ConnectionChanged { connected: true });
        }
        self.inbound.observe();
        self.observers.push(Observer {
            messages: msg.observer,
            connection: msg.connection,
            kind: msg.kind,
        });
    }
}
