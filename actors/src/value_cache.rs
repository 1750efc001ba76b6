//! [`ValueCache`]: the process's stored values as their actors last told them. Each value
//! actor keeps its own entries, on its bus's thread; the bridge, on its own thread, answers a
//! get of a stored value from here, without a round trip through the bus's thread (a get of
//! a component's value still reads the component, through the actors).

use std::sync::Arc;

use dashmap::DashMap;
use janitoo_protocol::{Hadd, ValueDescriptor};

/// A value instance: its node, its uuid, its index.
type Key = (Hadd, String, u32);

/// The values a get may be answered with at once: readable, stored (not read from a
/// component), as their actors would answer.
#[derive(Clone, Default)]
pub struct ValueCache(Arc<DashMap<Key, ValueDescriptor>>);

impl ValueCache {
    /// Keeps `value` of node `hadd` as the answer to a get of it (its actor calls this at
    /// start and whenever the answer changes).
    pub fn keep(&self, hadd: Hadd, value: ValueDescriptor) {
        self.0
            .insert((hadd, value.uuid.clone(), value.index), value);
    }

    /// The answer to a get of instance `index` of `uuid` on node `hadd`, if it is kept.
    pub fn get(&self, hadd: Hadd, uuid: &str, index: u32) -> Option<ValueDescriptor> {
        self.0
            .get(&(hadd, uuid.to_owned(), index))
            .map(|value| value.clone())
    }
}
