//! Dynamic addresses in the network core: the acting primary serves leases from its table and
//! publishes each change, retained, on `/dhcp/leases/<hadd>`; every network controller keeps
//! the table from those records, so the next primary has it whole.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use super::{Command, Counter, NetworkCore, Note, Out};
use crate::hadd::Hadd;
use crate::lease::{LeaseRecord, LeaseRequest};
use crate::lease_table::{Applied, Context, Lease, LeaseChange};
use crate::message::Message;
use crate::model::NodeState;
use crate::topic::{filters, LeaseOp, LookupKind, Topic};

impl NetworkCore {
    /// `/dhcp/lease/<op>`: served when this controller acts as primary (others stay silent:
    /// one answer per request).
    pub(super) fn serve_lease(
        &mut self,
        op: LeaseOp,
        request: &LeaseRequest,
        now: Duration,
        out: &mut Out,
    ) {
        let Some(epoch) = self.acting_epoch(now) else {
            return;
        };
        let taken = self.addresses_in_use();
        let served = self.leases.serve(
            op,
            request,
            Context {
                taken: &taken,
                now,
                epoch,
            },
        );
        if let Some(reply) = served.reply {
            out.push(Command::Count(if reply.msg_status == 200 {
                Counter::LeaseAnswered
            } else {
                Counter::LeaseRefused
            }));
            out.publish(
                Topic::ReplyByUuid(reply.rep_uuid.clone()),
                Message::LeaseReply(reply),
            );
        }
        self.publish_changes(served.changes, epoch, out);
    }

    /// `/dhcp/resolv/hadd`: the lease of an address, answered by the acting primary. (The
    /// original's look-ups by name and by command class are not served.)
    pub(super) fn resolve_lease(
        &mut self,
        kind: LookupKind,
        request: &LeaseRequest,
        now: Duration,
        out: &mut Out,
    ) {
        if kind != LookupKind::Hadd || self.acting_epoch(now).is_none() {
            return;
        }
        if let Some(reply) = self.leases.resolve(request) {
            out.publish(
                Topic::ReplyByUuid(reply.rep_uuid.clone()),
                Message::LeaseReply(reply),
            );
        }
    }

    /// A heartbeat from `hadd`: its lease, if any, is confirmed (by the acting primary, which
    /// publishes the change).
    pub(super) fn lease_heard(
        &mut self,
        hadd: Hadd,
        state: NodeState,
        now: Duration,
        out: &mut Out,
    ) {
        let Some(epoch) = self.acting_epoch(now) else {
            return;
        };
        let wall_ms = self.wall_ms(now);
        if let Some(change) = self.leases.heard(hadd, state, wall_ms) {
            self.publish_changes(vec![change], epoch, out);
        }
    }

    /// Time passes: the acting primary withdraws the leases never confirmed; a controller that
    /// refused records from a primary it did not know yet reads them again once it does.
    pub(super) fn leases_on_tick(&mut self, now: Duration, out: &mut Out) {
        if let Some(epoch) = self.acting_epoch(now) {
            let withdrawn = self.leases.expire(now);
            if !withdrawn.is_empty() {
                out.push(Command::Count(Counter::LeaseWithdrawn));
            }
            self.publish_changes(withdrawn, epoch, out);
        }
        if self.connected
            && self
                .records_ahead
                .is_some_and(|ahead| ahead <= self.epoch())
        {
            self.records_ahead = None;
            out.push(Command::Resubscribe(vec![filters::LEASE_RECORDS.into()]));
        }
    }

    /// A record on `/dhcp/leases/<hadd>`, published by a primary (this one's own included).
    pub(super) fn on_lease_record(
        &mut self,
        hadd: Hadd,
        record: &LeaseRecord,
        now: Duration,
        out: &mut Out,
    ) {
        if record.epoch > self.epoch() {
            // From a primary not heard of yet, or forged: read again once that epoch is known.
            let ahead = self
                .records_ahead
                .map_or(record.epoch, |it| it.min(record.epoch));
            self.records_ahead = Some(ahead);
            out.push(Command::Count(Counter::Fenced));
            return;
        }
        let Some(lease) = Lease::from_record(hadd, record, now) else {
            self.leases.apply_removed(hadd, record.epoch);
            return;
        };
        let applied = self.leases.apply(lease);
        if applied == Applied::Full {
            out.push(Command::Count(Counter::Crowded));
        }
        if let Applied::Conflict { kept, displaced } = applied {
            out.push(Command::Count(Counter::LeaseConflict));
            out.push(Command::Note(Note::LeaseConflict {
                hadd,
                kept_epoch: kept.epoch,
                displaced_epoch: displaced.epoch,
            }));
            if let Some(epoch) = self.acting_epoch(now) {
                // The record on the broker may be the displaced one: the standing one again.
                self.publish_changes(vec![LeaseChange::Put(*kept)], epoch, out);
            }
        }
    }

    /// Publishes `changes`, retained, with `epoch` on a removal.
    fn publish_changes(&mut self, changes: Vec<LeaseChange>, epoch: u64, out: &mut Out) {
        for change in changes {
            let (hadd, record) = match change {
                LeaseChange::Put(lease) => (lease.hadd, lease.record()),
                LeaseChange::Removed(hadd) => (hadd, LeaseRecord { epoch, held: None }),
            };
            out.push(Command::PublishRetained {
                topic: Topic::LeaseRecord(hadd),
                message: Message::LeaseRecord(record),
            });
        }
    }

    /// Every address in use besides the leases: heard on the network, on the map, watched,
    /// or heard once and forgotten since.
    fn addresses_in_use(&self) -> BTreeSet<Hadd> {
        self.view
            .nodes()
            .keys()
            .copied()
            .chain(self.view.map().nodes().map(|node| node.hadd))
            .chain(self.liveness.states().map(|(hadd, _)| hadd))
            .chain(self.forgotten.iter())
            .chain(std::iter::once(self.setup.hadd))
            .collect()
    }

    /// The wall clock at `now`, in milliseconds.
    fn wall_ms(&self, now: Duration) -> i64 {
        self.wall_origin_ms
            .saturating_add(i64::try_from(now.as_millis()).unwrap_or(i64::MAX))
    }
}

/// Addresses remembered after their node was forgotten, at most (the oldest go first).
pub const FORGOTTEN_ADDRESSES: usize = 4_096;

/// The addresses of nodes forgotten once FAILED (heard by their heartbeats alone, never
/// described: a bus whose process froze or died before the primary asked it). Their node may
/// come back, so none of them is leased; the memory of a node (its values, its watch) is still
/// let go, and a stranger's made-up addresses cost a bounded set.
#[derive(Debug, Default, Clone)]
pub(super) struct Forgotten {
    order: VecDeque<Hadd>,
    addresses: BTreeSet<Hadd>,
}

impl Forgotten {
    pub(super) fn remember(&mut self, hadd: Hadd) {
        if !self.addresses.insert(hadd) {
            return;
        }
        self.order.push_back(hadd);
        if self.order.len() > FORGOTTEN_ADDRESSES {
            if let Some(oldest) = self.order.pop_front() {
                self.addresses.remove(&oldest);
            }
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Hadd> + '_ {
        self.addresses.iter().copied()
    }
}
