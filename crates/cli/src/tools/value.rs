//! `janitoo get` and `janitoo set`: one value of one node, its answer's status as the exit code.

use std::time::Duration;

use janitoo_protocol::{CommandClass, Genre, Message, Request, Topic};

use super::client::{hadd_argument, no_answer, ToolClient};
use super::output::{emit, parse_data, print_json, refused, show_data};
use super::{block_on, GenreArg};
use crate::connect::BrokerArg;
use crate::run::Failure;
use crate::{parse_seconds, seconds};

/// The value `get` and `set` address.
#[derive(clap::Args)]
pub struct ValueTarget {
    #[command(flatten)]
    broker: BrokerArg,
    /// The node's address, like 0220/0001.
    hadd: String,
    /// The value's uuid, like temperature.
    uuid: String,
    /// The instance.
    #[arg(long, default_value = "0")]
    index: u32,
    /// The genre the request names.
    #[arg(long, value_enum, default_value = "user")]
    genre: GenreArg,
    /// The value's command class (the original's nodes need it: 112 is sent for config and
    /// system values, and this for the others, like 37 for a switch).
    #[arg(long, value_name = "N")]
    cmd_class: Option<u16>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    wait: f64,
    /// One JSON object instead of a line.
    #[arg(long)]
    json: bool,
}

/// `janitoo set`: the value, and its new data.
#[derive(clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    target: ValueTarget,
    /// The new data: JSON (1, 2.5, true, "text") or plain text.
    #[arg(allow_hyphen_values = true)]
    data: String,
}

/// `janitoo set`.
pub fn set(args: SetArgs) -> Result<(), Failure> {
    get_or_set(args.target, Some(args.data))
}

/// `janitoo get` and `janitoo set` (with `data`).
pub fn get_or_set(target: ValueTarget, data: Option<String>) -> Result<(), Failure> {
    let hadd = hadd_argument(&target.hadd)?;
    let broker = target.broker.settings()?;
    let genre = Genre::from(target.genre);
    let wait = seconds(target.wait);
    let uuid = target.uuid;
    // The original answers config and system requests on the value's topic only.
    let value_topic = Topic::Value {
        genre,
        hadd,
        uuid: uuid.clone(),
    }
    .to_string();
    block_on(async {
        let mut tool =
            ToolClient::connect(&broker, &[value_topic.as_str()], Duration::from_secs(3)).await?;
        // The original's nodes drop a request whose command class is not the one they expect:
        // 112 for config and system values, the value's own for the others, asked of the node
        // when not given.
        // A set asks first too: the original's nodes answer 200 to a set of a read-only value
        // (and change nothing), so the tool refuses what discovery says is read-only.
        let fixed_class =
            target.cmd_class.is_some() || matches!(genre, Genre::Config | Genre::System);
        let described = if data.is_some() || !fixed_class {
            tool.value_described(hadd, genre, &uuid, target.index, wait)
                .await?
        } else {
            None
        };
        if data.is_some() && described.as_ref().and_then(|value| value.is_readonly) == Some(true) {
            return Err(Failure::Usage(anyhow::anyhow!(
                "{uuid}[{}] of {hadd} is read-only (its node's discovery says so): nothing sent",
                target.index
            )));
        }
        let cmd_class = match (target.cmd_class, genre) {
            (Some(class), _) => CommandClass(class),
            (None, Genre::Config | Genre::System) => CommandClass::CONFIGURATION,
            (None, genre) => {
                CommandClass::for_request(genre, described.map(|value| value.cmd_class))
            }
        };
        let mut request = match &data {
            Some(text) => Request::set(hadd, &uuid, genre, cmd_class, parse_data(text)),
            None => Request::get(hadd, &uuid, genre, cmd_class),
        };
        request.index = Some(target.index);
        let answer = tool.ask(request, wait).await?;
        let Some(Message::ValueReply(reply)) = answer else {
            let hint = if cmd_class == CommandClass::default() {
                " (the original's nodes drop a request without the value's command class: \
                 give it with --cmd-class)"
            } else {
                ""
            };
            return Err(no_answer(&format!("node {hadd}{hint}"), wait));
        };
        if target.json {
            print_json(&Message::ValueReply(reply.clone()).to_tree());
        } else {
            let value = &reply.value;
            emit(&format!(
                "{hadd} {}[{}] = {}  ({} {})\n",
                value.uuid,
                value.index,
                show_data(&value.data, value.units.as_deref()),
                reply.status().0,
                reply.error.as_deref().unwrap_or("OK"),
            ));
        }
        if !reply.status().is_success() {
            return Err(refused(&reply));
        }
        if reply.value.index != target.index {
            // The original's nodes answer (and set) their value's own instance, whatever the
            // request's index.
            let what = if data.is_some() {
                format!("the set went to instance {}", reply.value.index)
            } else {
                "the data shown is not the instance asked".to_owned()
            };
            return Err(Failure::Other(anyhow::anyhow!(
                "{hadd} answered for {uuid}[{}], not [{}]: {what} (the original's nodes                  ignore the index of a get or a set)",
                reply.value.index,
                target.index
            )));
        }
        Ok(())
    })
}
