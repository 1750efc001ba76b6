//! What answering a get or a set publishes, wherever it is answered (by its bus, or by the
//! bridge from the value cache): the reply to the requester first, then, when it went through,
//! the value on its topic (news for everyone else).

use janitoo_protocol::{
    Hadd, Message, Request, Status, Topic, ValueDescriptor, ValuePublication, ValueReply,
};

use crate::messages::Failure;

/// The publications answering `request` for node `target` with `outcome`, in order.
pub fn publications(
    target: Hadd,
    request: &Request,
    outcome: Result<ValueDescriptor, Failure>,
) -> Vec<(Topic, Message)> {
    let mut out = Vec::with_capacity(2);
    let (reply, news) = match outcome {
        Ok(mut value) => {
            value.reply_hadd = request.reply_hadd;
            let topic = Topic::Value {
                genre: value.genre,
                hadd: target,
                uuid: value.uuid.clone(),
            };
            let news = (
                topic,
                Message::Value(ValuePublication::Single(Box::new(value.clone()))),
            );
            let reply = ValueReply {
                value,
                status: Some(Status::OK),
                error: None,
                request_id: request.request_id.clone(),
            };
            (reply, Some(news))
        }
        Err(failure) => (echo_refusal(target, request, failure), None),
    };
    if let Some(reply_hadd) = request.reply_hadd {
        out.push((Topic::NodeReply(reply_hadd), Message::ValueReply(reply)));
    }
    out.extend(news);
    out
}

/// The answer to a refused request: the request echoed, with the status and the reason.
fn echo_refusal(target: Hadd, request: &Request, failure: Failure) -> ValueReply {
    ValueReply {
        value: ValueDescriptor {
            uuid: request.uuid.clone(),
            hadd: Some(target),
            index: request.instance(),
            genre: request.genre,
            cmd_class: request.cmd_class,
            reply_hadd: request.reply_hadd,
            data: request.data.clone(),
            ..ValueDescriptor::default()
        },
        status: Some(failure.status),
        error: Some(failure.error),
        request_id: request.request_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use janitoo_protocol::{CommandClass, Data, Genre};

    use super::*;

    const NODE: Hadd = Hadd::new(220, 1);
    const ASKER: Hadd = Hadd::new(9999, 9990);

    fn get(reply_hadd: Option<Hadd>) -> Request {
        let mut request = Request::get(NODE, "name", Genre::Config, CommandClass::CONFIGURATION);
        request.reply_hadd = reply_hadd;
        request.request_id = Some("r-1".into());
        request
    }

    #[test]
    fn a_value_answered_is_replied_first_then_published() {
        let value = ValueDescriptor {
            uuid: "name".into(),
            genre: Genre::Config,
            data: Data::from("Ambiance"),
            ..ValueDescriptor::default()
        };
        let out = publications(NODE, &get(Some(ASKER)), Ok(value));
        let topics: Vec<String> = out.iter().map(|(topic, _)| topic.to_string()).collect();
        assert_eq!(
            topics,
            ["/nodes/9999/9990/reply", "/values/config/0220/0001/name"]
        );
        let Message::ValueReply(reply) = &out[0].1 else {
            panic!("{:?}", out[0]);
        };
        assert_eq!(reply.status(), Status::OK);
        assert_eq!(reply.request_id.as_deref(), Some("r-1"));
        assert_eq!(reply.value.reply_hadd, Some(ASKER));
        assert_eq!(reply.value.data, Data::from("Ambiance"));
    }

    #[test]
    fn a_refusal_echoes_the_request_to_whoever_asked_and_publishes_nothing() {
        let mut set = Request::set(
            NODE,
            "pin",
            Genre::Config,
            CommandClass::CONFIGURATION,
            Data::from(99),
        );
        set.index = Some(2);
        set.reply_hadd = Some(ASKER);
        let out = publications(
            NODE,
            &set,
            Err(Failure::new(Status::BAD_REQUEST, "out of range")),
        );
        let Message::ValueReply(reply) = &out[0].1 else {
            panic!("{:?}", out[0]);
        };
        let echoed = &reply.value;
        assert_eq!(
            (
                echoed.index,
                echoed.cmd_class,
                echoed.reply_hadd,
                &echoed.data
            ),
            (2, CommandClass::CONFIGURATION, Some(ASKER), &Data::from(99)),
            "the request, echoed"
        );
        let failure = Failure::new(Status::NOT_FOUND, "no such value");
        let out = publications(NODE, &get(Some(ASKER)), Err(failure.clone()));
        assert_eq!(out.len(), 1);
        let Message::ValueReply(reply) = &out[0].1 else {
            panic!("{:?}", out[0]);
        };
        assert_eq!(
            (reply.status(), reply.error.as_deref()),
            (Status::NOT_FOUND, Some("no such value"))
        );
        assert_eq!(
            (
                reply.value.uuid.as_str(),
                reply.value.hadd,
                reply.value.genre
            ),
            ("name", Some(NODE), Genre::Config)
        );
        assert!(publications(NODE, &get(None), Err(failure)).is_empty());
    }
}
