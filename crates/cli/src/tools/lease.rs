//! `janitoo lease`: the network's leases (`hadd = "auto"`). `list` reads the table every
//! network controller keeps, as the primaries published it (retained, `/dhcp/leases/#`);
//! `remove` asks the primary to drop a lease (`/dhcp/lease/remove`, the original's message).

use std::time::Duration;

use janitoo_protocol::topic::filters;
use janitoo_protocol::{Hadd, LeaseOp, LeasePart, LeaseRecord, LeaseRequest, Message, Topic};
use tokio::time::Instant;

use super::block_on;
use super::client::{hadd_argument, rand_id, ToolClient};
use super::output::{emit, print_json, table};
use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::{parse_seconds, seconds};

/// What `janitoo lease` does.
#[derive(clap::Subcommand)]
pub enum LeaseCommand {
    /// Every lease of the network: address, node name and location, state, whether a
    /// heartbeat confirmed it, and the epoch of the primary that granted it.
    List {
        /// The broker.
        #[command(flatten)]
        broker: BrokerArg,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drop the lease of an address (every node of a controller: cccc/-1 is not accepted
    /// here; remove them one by one). The node keeps running on it until it restarts.
    Remove {
        /// The broker.
        #[command(flatten)]
        broker: BrokerArg,
        /// The leased address, like 0010/0001.
        hadd: String,
        /// Seconds to wait for the primary's answer.
        #[arg(long, default_value = "5", value_parser = parse_seconds)]
        wait: f64,
    },
}

/// `janitoo lease list` or `janitoo lease remove`.
pub fn lease(what: LeaseCommand) -> Result<(), Failure> {
    match what {
        LeaseCommand::List { broker, json } => list(broker, json),
        LeaseCommand::Remove { broker, hadd, wait } => remove(broker, &hadd, seconds(wait)),
    }
}

/// How long the retained records may take to arrive after the subscription: they come at
/// once, one after the other; a pause this long ends them.
const QUIET: Duration = Duration::from_millis(500);

fn list(broker: BrokerArg, json: bool) -> Result<(), Failure> {
    let broker = broker.settings()?;
    let leases = block_on(async {
        let mut tool =
            ToolClient::connect(&broker, &[filters::LEASE_RECORDS], Duration::from_secs(3)).await?;
        let mut leases: Vec<(Hadd, LeaseRecord)> = Vec::new();
        while let Some(received) = tool.next(Instant::now() + QUIET).await? {
            if let Ok((Topic::LeaseRecord(hadd), Message::LeaseRecord(record))) = received.decode()
            {
                leases.retain(|(held, _)| *held != hadd);
                leases.push((hadd, record));
            }
        }
        Ok::<_, Failure>(leases)
    })?;
    let mut held: Vec<_> = leases
        .into_iter()
        .filter_map(|(hadd, record)| record.held.clone().map(|lease| (hadd, record.epoch, lease)))
        .collect();
    held.sort_by_key(|(hadd, _, _)| *hadd);
    if json {
        let rows: Vec<serde_json::Value> = held
            .iter()
            .map(|(hadd, epoch, lease)| lease.listing(*hadd, *epoch))
            .collect();
        print_json(&serde_json::Value::Array(rows));
        return Ok(());
    }
    if held.is_empty() {
        emit("no lease on this network (the nodes have fixed addresses, or no network controller leased any)\n");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = held
        .iter()
        .map(|(hadd, epoch, lease)| {
            [
                hadd.to_string(),
                lease.name.clone(),
                lease.location.clone(),
                lease.state.as_str().to_owned(),
                if lease.confirmed { "yes" } else { "not yet" }.to_owned(),
                epoch.to_string(),
            ]
        })
        .collect();
    emit(&table(
        &["HADD", "NAME", "LOCATION", "STATE", "HEARD", "EPOCH"],
        &rows,
    ));
    Ok(())
}

fn remove(broker: BrokerArg, hadd: &str, wait: Duration) -> Result<(), Failure> {
    let hadd = hadd_argument(hadd)?;
    let broker = broker.settings()?;
    let rep_uuid = format!("janitoo-lease-{}-{}", std::process::id(), rand_id());
    let answer = Topic::ReplyByUuid(rep_uuid.clone()).to_string();
    block_on(async {
        let mut tool = ToolClient::connect(&broker, &[&answer], Duration::from_secs(3)).await?;
        let request = LeaseRequest {
            rep_uuid: rep_uuid.clone(),
            add_ctrl: LeasePart::Number(hadd.ctrl.into()),
            add_node: LeasePart::Number(hadd.node.into()),
            options: None,
        };
        tool.send(&Topic::Lease(LeaseOp::Remove), Message::Lease(request))
            .await?;
        let deadline = Instant::now() + wait;
        while let Some(received) = tool.next(deadline).await? {
            let Ok((_, Message::LeaseReply(reply))) = received.decode() else {
                continue;
            };
            if reply.rep_uuid != rep_uuid {
                continue;
            }
            if reply.msg_status == 200 {
                emit(&format!("lease of {hadd} removed\n"));
                return Ok(());
            }
            return Err(Failure::Refused(format!(
                "{} {}",
                reply.msg_status,
                reply.msg_error.as_deref().unwrap_or("refused")
            )));
        }
        Err(Failure::Other(anyhow::anyhow!(
            "no answer within {wait:?}: is a network controller primary?"
        )))
    })
}
