//! Bus values computed from the bus's own components: the tutorial's `<bus>_temperature`, the
//! average of every temperature read on the bus.
//!
//! Each component value actor of a bus records its successful numeric reads in the bus's
//! [`BusReadings`] (and forgets them when a read fails, so a broken sensor does not hold a
//! stale number in the average). The bus controller node carries a [`BusAggregates`]
//! component whose values read that store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use janitoo_config::AggregateFunction;
use janitoo_protocol::{data_as_f64, Data, Hadd, ValueType};
use tokio::time::Instant;

use crate::component::{Component, ComponentError, ComponentInfo, ValueSpec};

/// A reading's key: the value uuid, the node, the instance.
type ReadingKey = (String, Hadd, u32);

/// How long a reading counts: three times the tutorial's 300 s poll. A component whose
/// polling was turned off drops out of the aggregate after that, instead of staying in it
/// with its last number forever.
pub const READING_MAX_AGE: Duration = Duration::from_secs(900);

/// The latest good numeric reading of the component values of one bus that its aggregates
/// use, with when it was read. Other values cost nothing: no lock, no allocation.
#[derive(Clone, Default)]
pub struct BusReadings {
    watched: Arc<BTreeSet<String>>,
    latest: Arc<RwLock<BTreeMap<ReadingKey, (f64, Instant)>>>,
}

impl BusReadings {
    /// A store for the values `uuids` (the sources of a bus's aggregates).
    pub fn watching(uuids: impl IntoIterator<Item = String>) -> Self {
        BusReadings {
            watched: Arc::new(uuids.into_iter().collect()),
            latest: Arc::default(),
        }
    }

    /// Records a read of a watched value: a number is kept, anything else forgets the instance.
    pub fn record(&self, uuid: &str, hadd: Hadd, index: u32, data: &Data) {
        if !self.watched.contains(uuid) {
            return;
        }
        let key = (uuid.to_owned(), hadd, index);
        let Ok(mut latest) = self.latest.write() else {
            return;
        };
        match data_as_f64(data).filter(|number| number.is_finite()) {
            Some(number) => latest.insert(key, (number, Instant::now())),
            None => latest.remove(&key),
        };
    }

    /// Forgets a reading after a failed read.
    pub fn forget(&self, uuid: &str, hadd: Hadd, index: u32) {
        if !self.watched.contains(uuid) {
            return;
        }
        if let Ok(mut latest) = self.latest.write() {
            latest.remove(&(uuid.to_owned(), hadd, index));
        }
    }

    /// Every current reading of value `uuid` (at most [`READING_MAX_AGE`] old), node by node.
    pub fn of(&self, uuid: &str) -> Vec<f64> {
        self.of_within(uuid, READING_MAX_AGE)
    }

    /// Every reading of value `uuid` at most `max_age` old.
    pub fn of_within(&self, uuid: &str, max_age: Duration) -> Vec<f64> {
        let Ok(latest) = self.latest.read() else {
            return Vec::new();
        };
        latest
            .iter()
            .filter(|((value, _, _), (_, at))| value == uuid && at.elapsed() <= max_age)
            .map(|(_, (number, _))| *number)
            .collect()
    }
}

/// Combines readings; `None` when there are none.
pub fn combine(function: AggregateFunction, readings: &[f64]) -> Option<f64> {
    if readings.is_empty() {
        return None;
    }
    Some(match function {
        AggregateFunction::Average => readings.iter().sum::<f64>() / readings.len() as f64,
        AggregateFunction::Min => readings.iter().copied().fold(f64::INFINITY, f64::min),
        AggregateFunction::Max => readings.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// One aggregate of a bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The value uuid it combines (`temperature`).
    pub source: String,
    /// How.
    pub function: AggregateFunction,
    /// Units, from the components' spec of `source`.
    pub units: Option<String>,
}

/// The component of a bus controller node with aggregates: one user value
/// `<bus oid>_<source>` per aggregate, polled every 300 s as the original tutorial did.
pub struct BusAggregates {
    bus: String,
    aggregates: Vec<Aggregate>,
    readings: BusReadings,
}

impl BusAggregates {
    /// The aggregates of bus `bus` over `readings`.
    pub fn new(bus: &str, aggregates: Vec<Aggregate>, readings: BusReadings) -> Self {
        BusAggregates {
            bus: bus.to_owned(),
            aggregates,
            readings,
        }
    }

    fn uuid_of(&self, aggregate: &Aggregate) -> String {
        format!("{}_{}", self.bus, aggregate.source)
    }
}

fn function_name(function: AggregateFunction) -> &'static str {
    match function {
        AggregateFunction::Average => "average",
        AggregateFunction::Min => "lowest",
        AggregateFunction::Max => "highest",
    }
}

impl Component for BusAggregates {
    fn info(&self) -> ComponentInfo {
        // The controller node describes itself as its bus; this is only the part's name.
        ComponentInfo::software("Bus aggregates")
    }

    fn values(&self) -> Vec<ValueSpec> {
        self.aggregates
            .iter()
            .map(|aggregate| {
                let what = function_name(aggregate.function);
                let help = format!(
                    "The {what} {} of the components of bus {}",
                    aggregate.source, self.bus
                );
                let spec = ValueSpec::sensor(&self.uuid_of(aggregate), ValueType::Decimal)
                    .label(&format!("{what} {}", aggregate.source))
                    .help(&help)
                    .poll(300.0)
                    .cheap_read();
                match &aggregate.units {
                    Some(units) => spec.units(units),
                    None => spec,
                }
            })
            .collect()
    }

    fn read(&self, uuid: &str, _index: u32) -> Result<Data, ComponentError> {
        let aggregate = self
            .aggregates
            .iter()
            .find(|aggregate| self.uuid_of(aggregate) == uuid)
            .ok_or_else(|| ComponentError::NoSuchValue(uuid.to_owned()))?;
        let readings = self.readings.of(&aggregate.source);
        combine(aggregate.function, &readings)
            .map(|number| Data::from((number * 1000.0).round() / 1000.0))
            .ok_or_else(|| {
                ComponentError::NotSupported(format!(
                    "no {} has been read on bus {} yet",
                    aggregate.source, self.bus
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hadd(node: u16) -> Hadd {
        Hadd::new(225, node)
    }

    #[test]
    fn combines_the_latest_reading_of_each_node() {
        let readings = BusReadings::watching(["temperature".to_owned(), "humidity".to_owned()]);
        readings.record("temperature", hadd(1), 0, &Data::from(20.0));
        readings.record("temperature", hadd(2), 0, &Data::from(23.0));
        readings.record("temperature", hadd(1), 0, &Data::from(21.0));
        readings.record("humidity", hadd(1), 0, &Data::from(60.0));
        let mut of = readings.of("temperature");
        of.sort_by(f64::total_cmp);
        assert_eq!(of, vec![21.0, 23.0]);
        assert_eq!(combine(AggregateFunction::Average, &of), Some(22.0));
        assert_eq!(combine(AggregateFunction::Min, &of), Some(21.0));
        assert_eq!(combine(AggregateFunction::Max, &of), Some(23.0));
        assert_eq!(combine(AggregateFunction::Average, &[]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_non_numeric_read_leaves_the_average() {
        let readings = BusReadings::watching(["temperature".to_owned(), "humidity".to_owned()]);
        readings.record("temperature", hadd(1), 0, &Data::from(20.0));
        readings.record("temperature", hadd(2), 0, &Data::from(30.0));
        readings.forget("temperature", hadd(2), 0);
        assert_eq!(readings.of("temperature"), vec![20.0]);
        tokio::time::advance(Duration::from_millis(20)).await;
        assert!(
            readings
                .of_within("temperature", Duration::from_millis(10))
                .is_empty(),
            "an old reading is left out"
        );
        readings.record("temperature", hadd(1), 0, &Data::Null);
        assert!(readings.of("temperature").is_empty());
    }

    #[test]
    fn the_bus_value_reads_the_store_and_says_when_nothing_was_read() {
        let readings = BusReadings::watching(["temperature".to_owned(), "humidity".to_owned()]);
        let bus = BusAggregates::new(
            "tutorial2",
            vec![Aggregate {
                source: "temperature".to_owned(),
                function: AggregateFunction::Average,
                units: Some("°C".to_owned()),
            }],
            readings.clone(),
        );
        let specs = bus.values();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].uuid, "tutorial2_temperature");
        assert_eq!(specs[0].units.as_deref(), Some("°C"));
        assert_eq!(specs[0].poll_delay, 300.0);
        assert!(matches!(
            bus.read("tutorial2_temperature", 0),
            Err(ComponentError::NotSupported(why)) if why.contains("no temperature")
        ));
        readings.record("temperature", hadd(1), 0, &Data::from(20.0));
        readings.record("temperature", hadd(2), 0, &Data::from(21.0));
        readings.record("temperature", hadd(3), 0, &Data::from(45.5));
        assert_eq!(bus.read("tutorial2_temperature", 0), Ok(Data::from(28.833)));
        assert!(matches!(
            bus.read("tutorial2_humidity", 0),
            Err(ComponentError::NoSuchValue(_))
        ));
    }
}
