//! `ValueActor`: one value of a node with its instances; get and set with validation, polling,
//! change notification.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use janitoo_config::{NodeKey, SettingKey};
use janitoo_protocol::node::builtin;
use janitoo_protocol::validate::{check, Constraints};
use janitoo_protocol::{
    Data, Genre, Hadd, Message as Wire, Status, Topic, ValueDescriptor, ValueInstances,
    ValuePublication,
};
use tracing::{debug, warn};

use crate::aggregate::BusReadings;
use crate::component::{Component, ComponentError, Source, ValueSpec};
use crate::config_writer::SettingsWriter;
use crate::messages::{
    Announce, DescribeValue, Failure, GetValue, Publish, ReadOutcome, SetPollDelay, SetValue,
    ValueChanged,
};
use crate::metrics::{ActorKind, Metrics};
use crate::value_cache::ValueCache;

/// Where a value actor sends what it produces.
#[derive(Clone)]
pub struct ValueLinks {
    /// The bridge, for publications.
    pub publisher: Recipient<Publish>,
    /// The node, for changes made by a set.
    pub changes: Recipient<ValueChanged>,
    /// The node, for the outcome of component reads.
    pub reads: Recipient<ReadOutcome>,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
    /// The bus's latest readings, for its aggregates.
    pub readings: BusReadings,
    /// The settings writer and where the node's settings live, when there is a file.
    pub persist: Option<(SettingsWriter, NodeKey)>,
    /// The longest string a value may be set to, unless its spec says otherwise.
    pub max_string: usize,
    /// Where a stored value keeps the answer to a get of it, for the bridge.
    pub cache: ValueCache,
}

/// One value of a node.
pub struct ValueActor {
    spec: ValueSpec,
    hadd: Hadd,
    node_uuid: String,
    component: Option<Arc<dyn Component>>,
    instances: BTreeMap<u32, Data>,
    poll_delay: f64,
    poll_timer: Option<SpawnHandle>,
    first_retry_pending: bool,
    links: ValueLinks,
}

/// The pause between tries of a failed first read.
const FIRST_READ_RETRY: Duration = Duration::from_secs(3);
/// How many times a failed first read is tried again.
const FIRST_READ_RETRIES: u32 = 20;

impl ValueActor {
    /// A value of node `hadd` (`node_uuid`), with its initial data by instance and its poll
    /// period. `component` is `None` for the built-in values every node has.
    pub fn new(
        spec: ValueSpec,
        hadd: Hadd,
        node_uuid: String,
        component: Option<Arc<dyn Component>>,
        instances: BTreeMap<u32, Data>,
        poll_delay: f64,
        links: ValueLinks,
    ) -> Self {
        ValueActor {
            spec,
            hadd,
            node_uuid,
            component,
            instances,
            poll_delay,
            poll_timer: None,
            first_retry_pending: false,
            links,
        }
    }

    fn descriptor(&self, index: u32) -> ValueDescriptor {
        let spec = &self.spec;
        let label = if self.instances.len() > 1 {
            format!("{} ({index})", spec.label)
        } else {
            spec.label.clone()
        };
        ValueDescriptor {
            uuid: spec.uuid.clone(),
            node_uuid: Some(self.node_uuid.clone()),
            hadd: Some(self.hadd),
            index,
            genre: spec.genre,
            value_type: Some(spec.value_type),
            cmd_class: spec.cmd_class,
            label: Some(label),
            help: Some(spec.help.clone()),
            units: spec.units.clone(),
            default: spec.default.clone(),
            min: spec.min,
            max: spec.max,
            list_items: spec.list_items.clone(),
            is_readonly: Some(!spec.writable),
            is_writeonly: Some(!spec.readable),
            is_polled: Some(self.poll_delay > 0.0),
            poll_delay: Some(self.poll_delay),
            data: self.instances.get(&index).cloned().unwrap_or(Data::Null),
            ..ValueDescriptor::default()
        }
    }

    fn all_instances(&self) -> ValueInstances {
        self.instances
            .keys()
            .map(|index| (*index, self.descriptor(*index)))
            .collect()
    }

    fn publish(&self) {
        let publication = match self.instances.keys().collect::<Vec<_>>().as_slice() {
            [0] => ValuePublication::Single(Box::new(self.descriptor(0))),
            _ => ValuePublication::Instances(self.all_instances()),
        };
        let topic = Topic::Value {
            genre: self.spec.genre,
            hadd: self.hadd,
            uuid: self.spec.uuid.clone(),
        };
        self.links.metrics.sent(ActorKind::Bridge);
        self.links.publisher.do_send(Publish {
            topic,
            message: Wire::Value(publication),
        });
    }

    /// Keeps what a get of each instance answers in the value cache, when the bridge may
    /// answer it from there: a readable value not read from a component.
    fn cache_answers(&self) {
        if self.reads_component() || !self.spec.readable {
            return;
        }
        for index in self.instances.keys() {
            self.links.cache.keep(self.hadd, self.descriptor(*index));
        }
    }

    fn reads_component(&self) -> bool {
        self.spec.source == Source::Component && self.component.is_some()
    }

    fn persisted(&self) -> bool {
        self.spec.source == Source::Stored
            && matches!(self.spec.genre, Genre::Config | Genre::System)
    }

    fn schedule_polling(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.poll_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.poll_delay > 0.0 {
            let period = Duration::from_secs_f64(self.poll_delay);
            self.poll_timer = Some(ctx.run_interval(period, |act, ctx| act.poll(ctx)));
        }
    }

    /// Reads every instance (for component values) then publishes.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        if !self.reads_component() {
            self.publish();
            return;
        }
        self.read_all_then_publish(ctx, |_act, _ctx| {});
    }

    /// Reads every instance, records the outcomes, and publishes when all succeeded; calls
    /// `on_failure` otherwise.
    fn read_all_then_publish(
        &mut self,
        ctx: &mut Context<Self>,
        on_failure: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        let indexes: Vec<u32> = self.instances.keys().copied().collect();
        let reads: Vec<_> = indexes.into_iter().map(|index| self.read(index)).collect();
        ctx.spawn(
            futures_join(reads)
                .into_actor(self)
                .map(|results, act, ctx| {
                    let mut ok = true;
                    for (index, result) in results {
                        ok &= act.record_read(index, result, ctx).is_ok();
                    }
                    if ok {
                        act.publish();
                    } else {
                        on_failure(act, ctx);
                    }
                }),
        );
    }

    /// After a failed first read (a sensor still waking up, an aggregate whose sources have not
    /// been read yet), tries again every few seconds, `left` more times, instead of leaving the
    /// value empty until its poll period (300 s for the tutorial's) comes round.
    fn retry_first_read(&mut self, ctx: &mut Context<Self>, left: u32) {
        if left == 0 || self.first_retry_pending {
            return;
        }
        self.first_retry_pending = true;
        ctx.run_later(FIRST_READ_RETRY, move |act, ctx| {
            act.first_retry_pending = false;
            act.read_all_then_publish(ctx, move |act, ctx| act.retry_first_read(ctx, left - 1));
        });
    }

    /// Reads one instance on the blocking pool.
    fn read(
        &self,
        index: u32,
    ) -> impl std::future::Future<Output = (u32, Result<Data, Crash>)> + 'static {
        let component = self.component.clone();
        let uuid = self.spec.uuid.clone();
        let (timeout, cheap) = (self.spec.timeout, self.spec.cheap_read);
        async move {
            let Some(component) = component else {
                return (index, Err(Crash::Failed(ComponentError::NoSuchValue(uuid))));
            };
            if cheap {
                let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    component.read(&uuid, index)
                }));
                return (
                    index,
                    read.map_err(|_| Crash::Panicked)
                        .and_then(|read| read.map_err(Crash::Failed)),
                );
            }
            let read = tokio::task::spawn_blocking(move || component.read(&uuid, index));
            (index, bounded(timeout, read).await)
        }
    }

    /// Stores a read, tells the node how it went, and turns a failure into the answer.
    fn record_read(
        &mut self,
        index: u32,
        result: Result<Data, Crash>,
        ctx: &mut Context<Self>,
    ) -> Result<(), Failure> {
        let failure = match result {
            Ok(data) => {
                self.links
                    .readings
                    .record(&self.spec.uuid, self.hadd, index, &data);
                self.instances.insert(index, data);
                None
            }
            Err(crash) => {
                self.links
                    .readings
                    .forget(&self.spec.uuid, self.hadd, index);
                let supported = !matches!(crash, Crash::Failed(ComponentError::NotSupported(_)));
                Some((self.failure_of(crash, ctx), supported))
            }
        };
        self.links.metrics.sent(ActorKind::Node);
        self.links.reads.do_send(ReadOutcome {
            uuid: self.spec.uuid.clone(),
            failure: failure
                .as_ref()
                .filter(|(_, supported)| *supported)
                .map(|(failure, _)| failure.error.clone()),
        });
        let failure = failure.map(|(failure, _)| failure);
        failure.map_or(Ok(()), Err)
    }

    /// The answer for a component failure; a panic also restarts this actor.
    fn failure_of(&self, crash: Crash, ctx: &mut Context<Self>) -> Failure {
        match crash {
            Crash::Panicked => {
                warn!(hadd = %self.hadd, uuid = %self.spec.uuid, "the component panicked: restarting the value actor");
                ctx.stop();
                Failure::new(
                    Status::INTERNAL_ERROR,
                    format!("{} failed: the component panicked", self.spec.uuid),
                )
            }
            Crash::Refused(failure) => {
                warn!(hadd = %self.hadd, uuid = %self.spec.uuid, error = %failure.error, "set not written back: the value is unchanged");
                failure
            }
            Crash::Failed(ComponentError::BadValue(why)) => Failure::new(Status::BAD_REQUEST, why),
            Crash::Failed(ComponentError::NoSuchValue(why)) => Failure::new(Status::NOT_FOUND, why),
            Crash::Failed(ComponentError::NotSupported(why)) => {
                Failure::new(Status::INTERNAL_ERROR, why)
            }
            Crash::Failed(ComponentError::Unavailable(why)) => {
                Failure::new(Status::INTERNAL_ERROR, why)
            }
        }
    }

    fn check_instance(&self, index: u32) -> Result<(), Failure> {
        if self.instances.contains_key(&index) {
            Ok(())
        } else {
            Err(Failure::new(
                Status::NOT_FOUND,
                format!("{} has no instance {index}", self.spec.uuid),
            ))
        }
    }

    fn checked_set(&self, msg: &SetValue) -> Result<Data, Failure> {
        if !self.spec.writable {
            return Err(Failure::new(
                Status::FORBIDDEN,
                format!("{} is read-only", self.spec.uuid),
            ));
        }
        self.check_instance(msg.index)?;
        let constraints = Constraints {
            value_type: Some(self.spec.value_type),
            min: self.spec.min,
            max: self.spec.max,
            list_items: self.spec.list_items.as_deref(),
        };
        let data = check(constraints, &msg.data).map_err(|invalid| {
            Failure::new(
                Status::BAD_REQUEST,
                format!("{}: {invalid}", self.spec.uuid),
            )
        })?;
        let limit = self.spec.max_length.unwrap_or(self.links.max_string);
        match data.as_str() {
            Some(text) if text.len() > limit => Err(Failure::new(
                Status::BAD_REQUEST,
                format!(
                    "{}: a string of {} bytes is over the limit of {limit} bytes ([limits] max_string)",
                    self.spec.uuid,
                    text.len()
                ),
            )),
            _ => Ok(data),
        }
    }

    /// The write-back of a set, when the value is persisted and there is a file: a future
    /// that ends once the setting is on disk.
    fn write_back(
        &self,
        index: u32,
        data: &Data,
    ) -> Option<impl std::future::Future<Output = Result<(), Failure>> + 'static> {
        let (writer, node) = self.links.persist.clone().filter(|_| self.persisted())?;
        let setting = setting_key(&self.spec.uuid, index);
        let data = data.clone();
        Some(async move { writer.persist(node, setting, data).await })
    }

    fn store(&mut self, index: u32, data: Data) -> ValueDescriptor {
        self.instances.insert(index, data.clone());
        self.cache_answers();
        self.links.metrics.sent(ActorKind::Node);
        self.links.changes.do_send(ValueChanged {
            uuid: self.spec.uuid.clone(),
            index,
            data,
        });
        self.descriptor(index)
    }
}

/// How a component call (or the write-back of a set) ended badly.
enum Crash {
    Failed(ComponentError),
    Panicked,
    /// The write-back refused or failed: the answer to give.
    Refused(Failure),
}

fn flatten<T>(
    outcome: Result<Result<T, ComponentError>, tokio::task::JoinError>,
) -> Result<T, Crash> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(Crash::Failed(err)),
        Err(_) => Err(Crash::Panicked),
    }
}

/// Awaits a component call on the blocking pool, at most `timeout`.
async fn bounded<T>(
    timeout: Duration,
    call: tokio::task::JoinHandle<Result<T, ComponentError>>,
) -> Result<T, Crash> {
    match tokio::time::timeout(timeout, call).await {
        Ok(outcome) => flatten(outcome),
        Err(_) => Err(Crash::Failed(ComponentError::Unavailable(format!(
            "the component did not answer within {timeout:?}"
        )))),
    }
}

/// Awaits every future in order.
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut outputs = Vec::with_capacity(futures.len());
    for future in futures {
        outputs.push(future.await);
    }
    outputs
}

impl Actor for ValueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.cache_answers();
        self.schedule_polling(ctx);
        if self.reads_component() && self.spec.readable {
            let indexes: Vec<u32> = self.instances.keys().copied().collect();
            for index in indexes {
                ctx.spawn(self.read(index).into_actor(self).map(|(index, result), act, ctx| {
                    if let Err(failure) = act.record_read(index, result, ctx) {
                        debug!(uuid = %act.spec.uuid, error = %failure.error, "first read failed");
                        act.retry_first_read(ctx, FIRST_READ_RETRIES);
                    }
                }));
            }
        }
    }
}

impl Supervised for ValueActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.links
            .metrics
            .actor(ActorKind::Value)
            .restarts
            .increment();
        self.poll_timer = None;
    }
}

impl Handler<GetValue> for ValueActor {
    type Result = ResponseActFuture<Self, Result<ValueDescriptor, Failure>>;

    fn handle(&mut self, msg: GetValue, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.links.metrics.handling(ActorKind::Value);
        let _request = msg.span.enter();
        if let Err(failure) = self.check_instance(msg.index) {
            return Box::pin(fut::ready(Err(failure)));
        }
        if !self.spec.readable {
            let failure = Failure::new(
                Status::FORBIDDEN,
                format!("{} is write-only", self.spec.uuid),
            );
            return Box::pin(fut::ready(Err(failure)));
        }
        if !self.reads_component() {
            return Box::pin(fut::ready(Ok(self.descriptor(msg.index))));
        }
        let span = msg.span.clone();
        Box::pin(
            self.read(msg.index)
                .into_actor(self)
                .map(move |(index, result), act, ctx| {
                    let _request = span.enter();
                    act.record_read(index, result, ctx)?;
                    Ok(act.descriptor(index))
                }),
        )
    }
}

impl Handler<SetValue> for ValueActor {
    type Result = ResponseActFuture<Self, Result<ValueDescriptor, Failure>>;

    fn handle(&mut self, msg: SetValue, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.links.metrics.handling(ActorKind::Value);
        let _request = msg.span.enter();
        let data = match self.checked_set(&msg) {
            Ok(data) => data,
            Err(failure) => return Box::pin(fut::ready(Err(failure))),
        };
        let index = msg.index;
        // The component applies (or refuses) first; then the write-back; the running value
        // changes only when both went through, so a refused or unsaved set changes nothing.
        let apply = self.component.clone().map(|component| {
            let uuid = self.spec.uuid.clone();
            let applied = data.clone();
            let timeout = self.spec.timeout;
            async move {
                bounded(
                    timeout,
                    tokio::task::spawn_blocking(move || component.apply(&uuid, index, &applied)),
                )
                .await
            }
        });
        let write_back = self.write_back(index, &data);
        let applied = async move {
            if let Some(apply) = apply {
                apply.await?;
            }
            if let Some(write_back) = write_back {
                write_back.await.map_err(Crash::Refused)?;
            }
            Ok::<(), Crash>(())
        };
        let span = msg.span.clone();
        Box::pin(applied.into_actor(self).map(move |outcome, act, ctx| {
            let _request = span.enter();
            match outcome {
                Ok(()) => Ok(act.store(index, data)),
                Err(crash) => Err(act.failure_of(crash, ctx)),
            }
        }))
    }
}

impl Handler<DescribeValue> for ValueActor {
    type Result = MessageResult<DescribeValue>;

    fn handle(&mut self, _msg: DescribeValue, _ctx: &mut Context<Self>) -> Self::Result {
        let _handling = self.links.metrics.handling(ActorKind::Value);
        MessageResult(self.all_instances())
    }
}

impl Handler<SetPollDelay> for ValueActor {
    type Result = ();

    fn handle(&mut self, msg: SetPollDelay, ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Value);
        self.poll_delay = msg.0.max(0.0);
        self.cache_answers();
        self.schedule_polling(ctx);
    }
}

impl Handler<Announce> for ValueActor {
    type Result = ();

    fn handle(&mut self, _msg: Announce, _ctx: &mut Context<Self>) {
        let _handling = self.links.metrics.handling(ActorKind::Value);
        // A sensor not read yet has nothing to tell: no null readings on the wire.
        let unread = self.reads_component() && self.instances.values().all(Data::is_null);
        if self.spec.readable && !unread {
            self.publish();
        }
    }
}

/// Where a setting lives in the configuration file.
fn setting_key(uuid: &str, index: u32) -> SettingKey {
    match uuid {
        builtin::NAME => SettingKey::Name,
        builtin::LOCATION => SettingKey::Location,
        builtin::HADD => SettingKey::Hadd,
        builtin::HEARTBEAT => SettingKey::Heartbeat,
        builtin::CONFIG_TIMEOUT => SettingKey::ConfigTimeout,
        _ => SettingKey::Value {
            uuid: uuid.to_owned(),
            index,
        },
    }
}
