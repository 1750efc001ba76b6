//! The asking side of a lease (`hadd = "auto"`): sans-IO. A bus or a component with no address
//! yet asks `/dhcp/lease/new`; one that holds an address from an earlier lease sends `lock`.
//! It waits for the answer on `/reply/<rep_uuid>`, asks again with backoff when none comes,
//! and never makes an address up.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fields::Data;
use crate::lease::{LeasePart, LeaseReply, LeaseRequest};
use crate::topic::LeaseOp;
use crate::Hadd;

/// The first wait for an answer; doubled at each silence up to [`LONGEST_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_secs(2);
/// The longest wait between two requests.
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// What is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A new controller address (a bus).
    Controller,
    /// A new node address under this controller (a component of a bus).
    NodeOf(u16),
    /// The address held from an earlier lease, kept (`lock`).
    Kept(Hadd),
}

/// What the caller does.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseAction {
    /// Publish `request` on `/dhcp/lease/<op>` (and listen on `/reply/<rep_uuid>`).
    Send {
        /// The operation.
        op: LeaseOp,
        /// The request.
        request: LeaseRequest,
    },
    /// The address is leased: start on it (and write it into the file when it is new).
    Leased(Hadd),
    /// The server refused, saying why; the client asks again after its wait.
    Refused(String),
    /// No answer came: asked again, `attempt` times so far (for the log).
    Unanswered {
        /// Requests sent without an answer.
        attempt: u32,
    },
}

/// The client.
#[derive(Debug, Clone)]
pub struct LeaseClient {
    wanted: Wanted,
    options: BTreeMap<String, Data>,
    /// Makes each request's `rep_uuid` (`<prefix>-<attempt>`).
    prefix: String,
    attempt: u32,
    /// The `rep_uuid` of the request waiting for its answer, and until when.
    waiting: Option<(String, Duration)>,
    wait: Duration,
    leased: Option<Hadd>,
}

impl LeaseClient {
    /// A client asking for `wanted`, with the node's `name`, `location` and `cmd_classes`; its
    /// answers come on `/reply/<prefix>-<n>` (the prefix: a fresh uuid of the process).
    pub fn new(
        wanted: Wanted,
        name: &str,
        location: &str,
        cmd_classes: Data,
        prefix: &str,
    ) -> Self {
        let options = BTreeMap::from([
            ("name".to_owned(), Data::from(name)),
            ("location".to_owned(), Data::from(location)),
            ("cmd_classes".to_owned(), cmd_classes),
        ]);
        LeaseClient {
            wanted,
            options,
            prefix: prefix.to_owned(),
            attempt: 0,
            waiting: None,
            wait: FIRST_WAIT,
            leased: None,
        }
    }

    /// The address leased, once it is.
    pub fn leased(&self) -> Option<Hadd> {
        self.leased
    }

    /// The `rep_uuid` whose answer is awaited.
    pub fn awaited(&self) -> Option<&str> {
        self.waiting.as_ref().map(|(uuid, _)| uuid.as_str())
    }

    /// Starts at `now`: the first request.
    pub fn start(&mut self, now: Duration) -> Vec<LeaseAction> {
        vec![self.ask(now)]
    }

    fn ask(&mut self, now: Duration) -> LeaseAction {
        self.attempt += 1;
        let rep_uuid = format!("{}-{}", self.prefix, self.attempt);
        self.waiting = Some((rep_uuid.clone(), now + self.wait));
        let part = |number: i64| LeasePart::Number(number);
        let (op, add_ctrl, add_node) = match self.wanted {
            Wanted::Controller => (LeaseOp::New, part(-1), part(-1)),
            Wanted::NodeOf(ctrl) => (LeaseOp::New, part(ctrl.into()), part(-1)),
            Wanted::Kept(hadd) => (
                LeaseOp::Lock,
                part(hadd.ctrl.into()),
                part(hadd.node.into()),
            ),
        };
        LeaseAction::Send {
            op,
            request: LeaseRequest {
                rep_uuid,
                add_ctrl,
                add_node,
                options: Some(self.options.clone()),
            },
        }
    }

    /// Time passes: a request unanswered past its wait is sent again, after a longer wait.
    pub fn on_tick(&mut self, now: Duration) -> Vec<LeaseAction> {
        match &self.waiting {
            Some((_, until)) if now >= *until && self.leased.is_none() => {
                let attempt = self.attempt;
                self.wait = (self.wait * 2).min(LONGEST_WAIT);
                vec![LeaseAction::Unanswered { attempt }, self.ask(now)]
            }
            _ => Vec::new(),
        }
    }

    /// An answer arrived on `/reply/<rep_uuid>`: ignored unless it answers the request awaited
    /// (anyone may publish there). A refusal waits for the next tick to ask again.
    pub fn on_reply(&mut self, reply: &LeaseReply, now: Duration) -> Vec<LeaseAction> {
        if self.awaited() != Some(reply.rep_uuid.as_str()) || self.leased.is_some() {
            return Vec::new();
        }
        if reply.msg_status != 200 {
            let why = reply
                .msg_error
                .clone()
                .unwrap_or_else(|| format!("status {}", reply.msg_status));
            // A lease that is gone (a lock refused) is asked for anew, under its controller.
            if let Wanted::Kept(hadd) = self.wanted {
                self.wanted = if hadd.is_controller() {
                    Wanted::Controller
                } else {
                    Wanted::NodeOf(hadd.ctrl)
                };
            }
            self.waiting = Some((reply.rep_uuid.clone(), now + self.wait));
            return vec![LeaseAction::Refused(why)];
        }
        let address = match (&reply.add_ctrl, &reply.add_node) {
            (Some(LeasePart::Number(ctrl)), Some(LeasePart::Number(node))) => {
                u16::try_from(*ctrl).ok().zip(u16::try_from(*node).ok())
            }
            _ => None,
        };
        let fits = |hadd: Hadd| match self.wanted {
            Wanted::Controller => hadd.is_controller(),
            Wanted::NodeOf(ctrl) => hadd.ctrl == ctrl && !hadd.is_controller(),
            Wanted::Kept(kept) => hadd == kept,
        };
        match address.map(|(ctrl, node)| Hadd::new(ctrl, node)) {
            Some(hadd) if fits(hadd) => {
                self.leased = Some(hadd);
                self.waiting = None;
                vec![LeaseAction::Leased(hadd)]
            }
            _ => {
                self.waiting = Some((reply.rep_uuid.clone(), now + self.wait));
                vec![LeaseAction::Refused(
                    "the answer's address is not one this node asked for".to_owned(),
                )]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(wanted: Wanted) -> LeaseClient {
        LeaseClient::new(wanted, "pond", "garden", Data::from("0x1050"), "p")
    }

    fn reply(rep_uuid: &str, status: u16, at: Option<Hadd>) -> LeaseReply {
        LeaseReply {
            msg_error: (status != 200).then(|| "add_ctrl: no controller".to_owned()),
            add_ctrl: at.map(|hadd| LeasePart::Number(hadd.ctrl.into())),
            add_node: at.map(|hadd| LeasePart::Number(hadd.node.into())),
            ..LeaseReply::status(status, rep_uuid)
        }
    }

    fn sent(actions: &[LeaseAction]) -> (LeaseOp, LeaseRequest) {
        actions
            .iter()
            .find_map(|action| match action {
                LeaseAction::Send { op, request } => Some((*op, request.clone())),
                _ => None,
            })
            .expect("a request sent")
    }

    #[test]
    fn a_new_node_asks_under_its_controller_and_takes_the_answer() {
        let mut client = client(Wanted::NodeOf(220));
        let (op, request) = sent(&client.start(Duration::ZERO));
        assert_eq!(op, LeaseOp::New);
        assert_eq!(
            (request.add_ctrl, request.add_node),
            (LeasePart::Number(220), LeasePart::Number(-1))
        );
        assert_eq!(request.options.unwrap()["name"], "pond");
        let at = Hadd::new(220, 5);
        assert_eq!(
            client.on_reply(&reply("p-1", 200, Some(at)), Duration::from_secs(1)),
            [LeaseAction::Leased(at)]
        );
        assert_eq!(client.leased(), Some(at));
        assert!(
            client.on_tick(Duration::from_secs(60)).is_empty(),
            "nothing more once leased"
        );
    }

    /// A controller asks for any controller address (-1, -1), and takes only one: a node's
    /// address or another controller's node is refused.
    #[test]
    fn a_new_controller_asks_for_any_and_takes_only_a_controller_address() {
        let mut client = client(Wanted::Controller);
        let (op, request) = sent(&client.start(Duration::ZERO));
        assert_eq!(op, LeaseOp::New);
        assert_eq!(
            (request.add_ctrl, request.add_node),
            (LeasePart::Number(-1), LeasePart::Number(-1))
        );
        let refused = client.on_reply(&reply("p-1", 200, Some(Hadd::new(11, 1))), Duration::ZERO);
        assert!(
            matches!(refused[..], [LeaseAction::Refused(_)]),
            "{refused:?}"
        );
        assert_eq!(client.leased(), None);
    }

    /// A node takes only a node under its own controller.
    #[test]
    fn a_new_node_refuses_an_address_not_under_its_controller() {
        for wrong in [Hadd::new(221, 5), Hadd::new(220, 0)] {
            let mut client = client(Wanted::NodeOf(220));
            client.start(Duration::ZERO);
            let refused = client.on_reply(&reply("p-1", 200, Some(wrong)), Duration::ZERO);
            assert!(
                matches!(refused[..], [LeaseAction::Refused(_)]),
                "{wrong}: {refused:?}"
            );
            assert_eq!(client.leased(), None, "{wrong}");
        }
    }

    #[test]
    fn silence_is_met_with_longer_and_longer_waits_never_an_address() {
        let mut client = client(Wanted::Controller);
        client.start(Duration::ZERO);
        assert!(client.on_tick(Duration::from_millis(1999)).is_empty());
        let mut at = Duration::ZERO;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let due = at + client.wait;
            let actions = client.on_tick(due);
            assert!(matches!(actions[0], LeaseAction::Unanswered { .. }));
            let (_, request) = sent(&actions);
            assert_eq!(request.rep_uuid, format!("p-{}", client.attempt));
            waits.push((due - at).as_secs());
            at = due;
        }
        assert_eq!(waits, [2, 4, 8, 16, 30, 30]);
        assert_eq!(client.leased(), None);
    }

    #[test]
    fn only_the_awaited_answer_counts() {
        let mut client = client(Wanted::Controller);
        client.start(Duration::ZERO);
        let at = Hadd::new(10, 0);
        // Someone else's rep_uuid, or an address that is no controller: ignored or refused.
        assert!(client
            .on_reply(&reply("q-1", 200, Some(at)), Duration::ZERO)
            .is_empty());
        let wrong = client.on_reply(&reply("p-1", 200, Some(Hadd::new(10, 3))), Duration::ZERO);
        assert!(matches!(wrong[0], LeaseAction::Refused(_)));
        assert_eq!(client.leased(), None);
        // An old request's answer after a new one went: ignored.
        client.on_tick(Duration::from_secs(2));
        assert!(client
            .on_reply(&reply("p-1", 200, Some(at)), Duration::ZERO)
            .is_empty());
        assert_eq!(
            client.on_reply(&reply("p-2", 200, Some(at)), Duration::ZERO),
            [LeaseAction::Leased(at)]
        );
    }

    #[test]
    fn a_kept_address_is_locked_and_asked_anew_when_refused() {
        let kept = Hadd::new(220, 5);
        let mut client = client(Wanted::Kept(kept));
        let (op, request) = sent(&client.start(Duration::ZERO));
        assert_eq!(op, LeaseOp::Lock);
        assert_eq!(request.add_node, LeasePart::Number(5));
        let refused = client.on_reply(&reply("p-1", 400, None), Duration::ZERO);
        assert_eq!(
            refused,
            [LeaseAction::Refused("add_ctrl: no controller".into())]
        );
        let (op, request) = sent(&client.on_tick(FIRST_WAIT));
        assert_eq!(op, LeaseOp::New);
        assert_eq!(request.add_node, LeasePart::Number(-1));
        assert_eq!(request.add_ctrl, LeasePart::Number(220));
    }
}
