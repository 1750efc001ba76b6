//! What the oracle watches after each event, and the checks at the end of a schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use janitoo_protocol::{Hadd, NodeState};

use super::*;

impl World {
    /// After each event: who can hear whom, and who acts as primary.
    pub(super) fn observe(&mut self) {
        let mut clear = BTreeSet::new();
        let listeners: Vec<(Hadd, usize)> = self
            .controllers
            .iter()
            .filter(|c| c.process.running && !c.process.frozen)
            .map(|c| (c.hadd, c.process.client))
            .collect();
        let beaters = self
            .nodes
            .iter()
            .filter(|n| n.process.running && !n.hung)
            .flat_map(|n| n.hadds.iter().map(move |h| (*h, n.process.client)))
            .chain(
                self.autos
                    .iter()
                    .filter(|a| a.process.running)
                    .filter_map(|a| a.leased.map(|hadd| (hadd, a.process.client))),
            )
            .chain(listeners.iter().copied());
        for (beater, from) in beaters {
            for (listener, to) in &listeners {
                if beater != *listener && self.broker.reaches(from, *to) {
                    clear.insert((beater, *listener));
                }
            }
        }
        self.oracle.update_reach(&clear, self.now);
        let now = self.now;
        let acting: Vec<Hadd> = self
            .controllers
            .iter()
            .filter(|c| {
                !c.process.frozen
                    && c.core
                        .as_ref()
                        .is_some_and(|core| core.acting_epoch(now).is_some())
            })
            .map(|c| c.hadd)
            .collect();
        self.oracle.record_acting(acting, now);
    }

    /// The two nodes of node process `node`.
    pub fn node_hadds(&self, node: usize) -> [Hadd; 2] {
        self.nodes[node].hadds
    }

    /// What the controller acting as primary at the end says of `hadd` (its view: what the
    /// network was told), if one acts.
    pub fn primary_says(&self, hadd: Hadd) -> Option<NodeState> {
        let (_, acting) = self.oracle.acting.last()?;
        let primary = acting.first()?;
        let core = self
            .controllers
            .iter()
            .find(|c| c.hadd == *primary)?
            .core
            .as_ref()?;
        Some(core.view().state(hadd))
    }

    /// Checks what must hold at the end; the outcome on success.
    pub fn verdict(&self) -> Result<Outcome, String> {
        if let Some(first) = self.oracle.violations.first() {
            return Err(format!(
                "{} violations; first: {first}",
                self.oracle.violations.len()
            ));
        }
        if let Some(deadline) = self.step_down_deadline() {
            return self.verdict_beside_original(deadline);
        }
        let (settled_after, overlap) = self
            .oracle
            .settling(self.calm_from, self.now)
            .map_err(|why| format!("{why}; controllers: {}", self.controllers_now()))?;
        if overlap > Duration::from_millis(2_500) {
            return Err(format!(
                "two primaries acted at once for {overlap:?} after the faults ended"
            ));
        }
        if settled_after > self.bound {
            return Err(format!(
                "a single primary only {settled_after:?} after the faults ended (bound {:?})",
                self.bound
            ));
        }
        let primary = self.oracle.acting.last().map(|(_, set)| set[0]);
        let mut checked_hang = false;
        if let Some((node, hung_at)) = self.calm_hang {
            for hadd in self.nodes[node].hadds {
                let told = self.oracle.told(hadd, hung_at);
                let states: Vec<NodeState> = told.iter().map(|(_, _, s)| *s).collect();
                if states != [NodeState::Pending, NodeState::Failed] {
                    let believed: Vec<String> = self
                        .controllers
                        .iter()
                        .filter_map(|c| {
                            c.core.as_ref().map(|core| {
                                format!(
                                    "{}: {:?} {}",
                                    c.hadd,
                                    core.liveness().period(hadd),
                                    core.liveness().state(hadd)
                                )
                            })
                        })
                        .collect();
                    return Err(format!(
                        "{hadd} (periods {:?}) hung at {hung_at:?} but was told {told:?} by the end at {:?}; periods believed {believed:?}",
                        self.nodes[node].periods, self.now
                    ));
                }
                if told.iter().any(|(_, by, _)| Some(*by) != primary) {
                    return Err(format!("{hadd} told by another than the primary: {told:?}"));
                }
            }
            checked_hang = true;
        }
        // Nodes that stopped during the faults: the primary ends up having told FAILED (or
        // OFFLINE, when their process's Will came too), after PENDING.
        let primary_sim = self.controllers.iter().find(|c| Some(c.hadd) == primary);
        let primary_core = primary_sim.and_then(|c| c.core.as_ref());
        // A primary that took over watches the nodes it adopts from then on (it cannot tell
        // how long they were silent before): its windows start there at the latest.
        let acting_since = primary.map_or(Duration::ZERO, |primary| {
            self.oracle
                .acting
                .iter()
                .rev()
                .take_while(|(_, set)| set.contains(&primary))
                .last()
                .map_or(Duration::ZERO, |(at, _)| *at)
        });
        let disrupted = primary_sim.map_or(Duration::ZERO, |c| c.disrupted.max(acting_since));
        let held_by_live_auto: BTreeSet<Hadd> = self
            .autos
            .iter()
            .filter(|a| a.process.running)
            .filter_map(|a| a.leased)
            .collect();
        let mut crashes_checked = 0;
        let mut silent_deaths_checked = 0;
        for node in &self.nodes {
            let calm = self
                .calm_hang
                .is_some_and(|(at, _)| self.nodes[at].hadds == node.hadds);
            // Hung (its connection kept) or crashed for good (its Will published, when its
            // broker was up to publish it).
            let silent_from = match node.crashed_at {
                Some(crashed_at) if !node.process.running => crashed_at,
                _ if node.hung && !calm => node.hung_at,
                _ => continue,
            };
            for hadd in node.hadds {
                let Some(core) = primary_core else { continue };
                if held_by_live_auto.contains(&hadd) {
                    // A live auto node beats there now (leased while this node was unheard):
                    // the address is rightly alive.
                    continue;
                }
                let period = core.liveness().period(hadd);
                // FAILED is due 6 tolerant periods after the last beat, or after the
                // primary's last reconnection (plus the rejoin allowance) or pause.
                let due =
                    silent_from.max(disrupted) + period.mul_f64(6.6) + Duration::from_secs(11);
                let told = core.view().state(hadd);
                let said: Vec<NodeState> = self
                    .oracle
                    .told(hadd, Duration::ZERO)
                    .iter()
                    .map(|(_, _, s)| *s)
                    .collect();
                let failed_after_pending = said
                    .iter()
                    .rposition(|s| *s == NodeState::Failed)
                    .is_some_and(|last| said[..last].contains(&NodeState::Pending));
                if self.now >= due && !node.process.running {
                    crashes_checked += 1;
                }
                if self.now >= due && node.died_silently {
                    silent_deaths_checked += 1;
                }
                let ok = match told {
                    _ if self.now < due => true,
                    NodeState::Unknown => core.liveness().state(hadd) == NodeState::Unknown,
                    NodeState::Failed | NodeState::Dead => failed_after_pending,
                    // Dead with its broker, it has no Will: its silence alone tells it, unless
                    // an earlier Will was the last word the primary heard.
                    NodeState::Offline => true,
                    _ => false,
                };
                if !ok {
                    let judged = core.liveness().state(hadd);
                    return Err(format!(
                        "{hadd} silent from {silent_from:?} (hung {}, crashed {:?}) during the faults; the primary's view says {told}, its liveness {judged:?}, dispatches {said:?} (period {period:?}, due {due:?}, disrupted {disrupted:?})",
                        node.hung, node.crashed_at
                    ));
                }
            }
        }
        let home_assistant_topics = match primary {
            Some(primary) => self.verdict_home_assistant(primary)?,
            None => 0,
        };
        let (autos_leased, duplicates_checked) =
            self.verdict_leases(self.calm_from + settled_after)?;
        Ok(Outcome {
            takeovers: self.oracle.claims.len().saturating_sub(1),
            settled_after,
            overlap,
            dispatches: self.oracle.dispatches.len(),
            forged_refused: self.oracle.forged_refused,
            floods: self.oracle.floods,
            pretended: self.oracle.pretended,
            offlines_forged: self.oracle.offlines_forged,
            faults: self.faults,
            checked_hang,
            crashes_checked,
            beside_live_original: false,
            home_assistant_topics,
            pi_deaths: self.pi_deaths,
            silent_deaths_checked,
            switches: self.switches,
            standby_carried: self.broker.standby_carried,
            autos_leased,
            lease_moves: self.autos.iter().map(|a| u64::from(a.moves)).sum(),
            shared_moves: self.autos.iter().map(|a| u64::from(a.shared_moves)).sum(),
            duplicates_checked,
        })
    }

    /// No two live nodes (running, not hung) hold the same address: auto nodes leased from
    /// primaries that may have been apart (a partition) move once one primary stands, within
    /// [`LEASES_SETTLE`] of it, and one on the address of a fixed node that comes back moves
    /// once it hears it.
    /// How many auto nodes held a lease at the end, and whether the end came late enough after
    /// the single primary to check.
    fn verdict_leases(&self, settled: Duration) -> Result<(usize, bool), String> {
        let fixed: BTreeSet<Hadd> = self
            .nodes
            .iter()
            .filter(|n| n.process.running && !n.hung)
            .flat_map(|n| n.hadds)
            .chain(self.controllers.iter().map(|c| c.hadd))
            .collect();
        let mut holders: BTreeMap<Hadd, Vec<&str>> = BTreeMap::new();
        for auto in self.autos.iter().filter(|a| a.process.running) {
            if let Some(hadd) = auto.leased {
                holders.entry(hadd).or_default().push(&auto.name);
            }
        }
        let leased = holders.values().map(Vec::len).sum();
        let checked = self.now >= settled + LEASES_SETTLE;
        if !checked {
            return Ok((leased, false));
        }
        for (hadd, names) in &holders {
            if names.len() > 1 || fixed.contains(hadd) {
                return Err(format!(
                    "{hadd} held by {names:?}{} at the end ({:?}), {:?} after a single primary stood",
                    if fixed.contains(hadd) { " and a fixed node" } else { "" },
                    self.now,
                    self.now - settled
                ));
            }
        }
        Ok((leased, true))
    }

    /// Beside an original primary alive at the end: none of ours acts as primary once it has
    /// been heard (by `deadline`), and every one follows it.
    fn verdict_beside_original(&self, deadline: Duration) -> Result<Outcome, String> {
        let late: Vec<&(Duration, Vec<Hadd>)> = self
            .oracle
            .acting
            .iter()
            .filter(|(at, set)| !set.is_empty() && *at >= deadline)
            .collect();
        let at_deadline = self
            .oracle
            .acting
            .iter()
            .rev()
            .find(|(at, _)| *at < deadline)
            .filter(|(_, set)| !set.is_empty());
        if let Some((_, set)) = at_deadline.or(late.first().copied()) {
            return Err(format!(
                "{set:?} still acting as primary beside the live original after {deadline:?}"
            ));
        }
        for controller in &self.controllers {
            let Some(core) = &controller.core else {
                continue;
            };
            let expected = Standing::Follower {
                primary: Some((schedule::ORIGINAL, 0)),
            };
            if core.standing() != expected {
                return Err(format!(
                    "{} stands {:?} at the end, beside the live original",
                    controller.hadd,
                    core.standing()
                ));
            }
        }
        Ok(Outcome {
            takeovers: self.oracle.claims.len(),
            settled_after: Duration::ZERO,
            overlap: Duration::ZERO,
            dispatches: self.oracle.dispatches.len(),
            forged_refused: self.oracle.forged_refused,
            floods: self.oracle.floods,
            pretended: self.oracle.pretended,
            offlines_forged: self.oracle.offlines_forged,
            faults: self.faults,
            checked_hang: false,
            crashes_checked: 0,
            autos_leased: 0,
            lease_moves: 0,
            shared_moves: 0,
            duplicates_checked: false,
            beside_live_original: true,
            home_assistant_topics: 0,
            pi_deaths: self.pi_deaths,
            silent_deaths_checked: 0,
            switches: self.switches,
            standby_carried: self.broker.standby_carried,
        })
    }

    /// What Home Assistant reads on the broker is what the primary's view says: the
    /// availability of every node (ONLINE or not), the config of every value, nothing for a
    /// node DEAD or not on the map. A topic someone else wrote in the last second may be
    /// waiting to be put right.
    /// The number of topics compared.
    fn verdict_home_assistant(&self, primary: Hadd) -> Result<usize, String> {
        use janitoo_protocol::homeassistant::{
            availability_payload, availability_topic, node_configs, node_states,
        };
        let Some(sim) = self.controllers.iter().find(|c| c.hadd == primary) else {
            return Ok(0);
        };
        let (Some(core), client) = (&sim.core, sim.process.client) else {
            return Ok(0);
        };
        if !self.broker.is_up(client) {
            return Ok(0);
        }
        let mut compared = 0;
        let settings = super::discovery_settings();
        let view = core.view();
        let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for node in view.map().nodes() {
            let state = view.state(node.hadd);
            if state == NodeState::Dead {
                continue;
            }
            expected.insert(
                availability_topic(&settings, node.hadd),
                availability_payload(state).as_bytes().to_vec(),
            );
            let configs = node_configs(&settings, view.map(), node.hadd, primary);
            for config in configs
                .into_iter()
                .chain(node_states(&settings, view.map(), node.hadd))
            {
                let payload = config.payload.map(|p| p.to_string().into_bytes());
                expected.insert(config.topic, payload.unwrap_or_default());
            }
        }
        let ours = |topic: &str| {
            topic.starts_with("janitoo/janitoo/availability/")
                || topic.starts_with("janitoo/janitoo/state/")
                || topic.contains("/janitoo_janitoo_")
        };
        let half = self.broker.clients[client].half;
        let halves: Vec<usize> = if self.broker.joined() {
            vec![0, 1]
        } else {
            vec![half]
        };
        for half in halves {
            let held = &self.broker.retained[half];
            let topics: BTreeSet<&str> = held
                .keys()
                .map(|topic| &**topic)
                .filter(|topic| ours(topic))
                .chain(expected.keys().map(String::as_str))
                .collect();
            for topic in topics {
                compared += 1;
                let want = expected.get(topic).map(Vec::as_slice).unwrap_or_default();
                let entry = held.get(topic);
                let got = entry.map(|held| &*held.payload).unwrap_or_default();
                if want == got {
                    continue;
                }
                let pending = entry.is_some_and(|held| {
                    held.by != client && self.now.saturating_sub(held.at) < Duration::from_secs(1)
                });
                if !pending {
                    return Err(format!(
                        "Home Assistant reads {:?} on {topic} (half {half}, written by client {:?} at {:?}), the primary {primary}'s view says {:?} at {:?}",
                        String::from_utf8_lossy(got),
                        entry.map(|held| held.by),
                        entry.map(|held| held.at),
                        String::from_utf8_lossy(want),
                        self.now
                    ));
                }
            }
        }
        Ok(compared)
    }

    /// Each controller now: running, frozen, connected, on which half, its standing.
    fn controllers_now(&self) -> String {
        self.controllers
            .iter()
            .map(|c| {
                let client = c.process.client;
                format!(
                    "{} running {} frozen {} connected {} half {} standing {:?}",
                    c.hadd,
                    c.process.running,
                    c.process.frozen,
                    self.broker.is_up(client),
                    self.broker.clients[client].half,
                    c.core.as_ref().map(|core| core.standing()),
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn log(&self) -> String {
        self.log.join("\n")
    }
}
