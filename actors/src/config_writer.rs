//! `ConfigWriter`: writes settings changed over the network into the configuration file, on its
//! own thread (a sync arbiter) so that file I/O never holds up a bus.

use actix::prelude::*;
use janitoo_config::ConfigFile;
use tracing::{error, info};

use std::sync::Arc;

use crate::messages::PersistSetting;
use crate::metrics::{ActorKind, Metrics};

/// The owner of the configuration file.
pub struct ConfigWriter {
    file: Option<ConfigFile>,
    metrics: Arc<Metrics>,
}

impl ConfigWriter {
    /// A writer for `file`.
    pub fn new(file: Option<ConfigFile>, metrics: Arc<Metrics>) -> Self {
        ConfigWriter { file, metrics }
    }
}

impl Actor for ConfigWriter {
    type Context = SyncContext<Self>;
}

impl Handler<PersistSetting> for ConfigWriter {
    type Result = ();

    fn handle(&mut self, msg: PersistSetting, _ctx: &mut SyncContext<Self>) {
        let _handling = self.metrics.handling(ActorKind::ConfigWriter);
        let Some(file) = self.file.as_mut() else {
            error!(node = %msg.node, "no configuration file to write back into");
            return;
        };
        match file.persist(&msg.node, &msg.setting, &msg.data) {
            Ok(()) => info!(node = %msg.node, setting = ?msg.setting, "setting written back"),
            Err(err) => error!(%err, "setting not written back; the file is unchanged"),
        }
    }
}
