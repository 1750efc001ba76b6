//! The lease table's decisions: allocation, each refusal, confirmation, replication.

use super::*;

fn request(ctrl: i64, node: i64, name: Option<&str>) -> LeaseRequest {
    LeaseRequest {
        rep_uuid: "r1".into(),
        add_ctrl: LeasePart::Number(ctrl),
        add_node: LeasePart::Number(node),
        options: name.map(|name| {
            BTreeMap::from([
                ("name".to_owned(), Value::from(name)),
                ("location".to_owned(), Value::from("garden")),
                ("cmd_classes".to_owned(), Value::from("0x1050")),
            ])
        }),
    }
}

fn context(taken: &BTreeSet<Hadd>, now_s: u64) -> Context<'_> {
    Context {
        taken,
        now: Duration::from_secs(now_s),
        epoch: 7,
    }
}

fn granted(served: &Served) -> Hadd {
    let reply = served.reply.as_ref().expect("an answer");
    assert_eq!(reply.msg_status, 200, "{:?}", reply.msg_error);
    match (&reply.add_ctrl, &reply.add_node) {
        (Some(LeasePart::Number(c)), Some(LeasePart::Number(n))) => Hadd::new(*c as u16, *n as u16),
        other => panic!("no address in {other:?}"),
    }
}

fn refusal(served: &Served) -> String {
    let reply = served.reply.as_ref().expect("an answer");
    assert_eq!(reply.msg_status, 400);
    assert!(served.changes.is_empty(), "a refusal changed the table");
    reply.msg_error.clone().unwrap()
}

#[test]
fn controllers_start_at_ten_and_skip_every_address_in_use() {
    let mut table = LeaseTable::new();
    let none = BTreeSet::new();
    let first = table.serve(LeaseOp::New, &request(-1, -1, Some("a")), context(&none, 0));
    assert_eq!(granted(&first), Hadd::new(10, 0));
    assert_eq!(first.changes.len(), 1);
    // Fixed addresses on the map, heard on the network: above them.
    let taken = BTreeSet::from([Hadd::new(220, 0), Hadd::new(220, 3), Hadd::new(9999, 9990)]);
    let next = table.serve(LeaseOp::New, &request(-1, 0, Some("b")), context(&taken, 0));
    assert_eq!(
        granted(&next),
        Hadd::new(221, 0),
        "9xxx are tools, not counted"
    );
}

#[test]
fn nodes_follow_their_controllers_highest_node() {
    let mut table = LeaseTable::new();
    let taken = BTreeSet::from([Hadd::new(220, 0), Hadd::new(220, 4)]);
    let first = table.serve(
        LeaseOp::New,
        &request(220, -1, Some("dht")),
        context(&taken, 0),
    );
    assert_eq!(granted(&first), Hadd::new(220, 5));
    let second = table.serve(
        LeaseOp::New,
        &request(220, -1, Some("led")),
        context(&taken, 0),
    );
    assert_eq!(granted(&second), Hadd::new(220, 6));
    let unknown = table.serve(
        LeaseOp::New,
        &request(300, -1, Some("x")),
        context(&taken, 0),
    );
    assert!(refusal(&unknown).contains("no controller 0300/0000"));
}

#[test]
fn asking_again_for_the_same_node_gets_the_same_lease() {
    let mut table = LeaseTable::new();
    let none = BTreeSet::new();
    let first = table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("pi")),
        context(&none, 0),
    );
    let again = table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("pi")),
        context(&none, 5),
    );
    assert_eq!(granted(&first), granted(&again));
    assert!(again.changes.is_empty());
    assert_eq!(table.len(), 1);
    // Once confirmed, a new request is a new node.
    table.heard(Hadd::new(10, 0), NodeState::Online, 1);
    let other = table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("pi")),
        context(&none, 6),
    );
    assert_eq!(granted(&other), Hadd::new(11, 0));
}

#[test]
fn each_bad_field_is_named() {
    let mut table = LeaseTable::new();
    let none = BTreeSet::new();
    let mut serve =
        |request: LeaseRequest, op| refusal(&table.serve(op, &request, context(&none, 0)));
    assert!(serve(request(-1, -1, None), LeaseOp::New).starts_with("options:"));
    let mut no_location = request(-1, -1, Some("a"));
    no_location.options.as_mut().unwrap().remove("location");
    assert_eq!(
        serve(no_location, LeaseOp::New),
        "options.location: missing"
    );
    assert_eq!(
        serve(request(-1, -1, Some(" ")), LeaseOp::New),
        "options.name: empty"
    );
    let long = request(-1, -1, Some("x".repeat(MAX_TEXT + 1).as_str()));
    assert!(serve(long, LeaseOp::New).starts_with("options.name: longer"));
    let mut number = request(-1, -1, Some("a"));
    number
        .options
        .as_mut()
        .unwrap()
        .insert("location".into(), Value::from(3));
    assert!(serve(number, LeaseOp::New).starts_with("options.location: expected text"));
    let mut text = request(-1, -1, Some("a"));
    text.add_ctrl = LeasePart::Text("ten".into());
    assert_eq!(
        serve(text, LeaseOp::New),
        "add_ctrl: expected a number, got \"ten\""
    );
    assert!(serve(request(-7, -1, Some("a")), LeaseOp::New).starts_with("add_ctrl: expected -1"));
    assert!(serve(request(10, 70000, Some("a")), LeaseOp::New).starts_with("add_node: expected -1"));
    assert!(serve(request(-1, 3, Some("a")), LeaseOp::New).starts_with("add_node: -1 or 0"));
    assert!(serve(request(10, 3, Some("a")), LeaseOp::New).starts_with("add_node: -1 (allocate"));
    assert_eq!(
        serve(request(10, 1, None), LeaseOp::Lock),
        "add_node: no lease for 0010/0001"
    );
    assert!(serve(request(-1, 1, None), LeaseOp::Lock).starts_with("add_ctrl: an address"));
    assert!(serve(request(10, -1, None), LeaseOp::Release).starts_with("add_node: no lease under"));
    assert!(serve(request(-1, -1, None), LeaseOp::Remove).starts_with("add_ctrl: a controller"));
    assert!(table.is_empty());
}

#[test]
fn a_request_with_nowhere_to_answer_does_nothing() {
    let mut table = LeaseTable::new();
    let none = BTreeSet::new();
    let mut nameless = request(-1, -1, Some("a"));
    nameless.rep_uuid = String::new();
    assert_eq!(
        table.serve(LeaseOp::New, &nameless, context(&none, 0)),
        Served::default()
    );
    assert!(table.resolve(&nameless).is_none());
    assert!(table.is_empty());
}

#[test]
fn lock_release_and_remove_move_the_lease() {
    let mut table = LeaseTable::new();
    let none = BTreeSet::new();
    table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("bus")),
        context(&none, 0),
    );
    let taken = BTreeSet::from([Hadd::new(10, 0)]);
    table.serve(
        LeaseOp::New,
        &request(10, -1, Some("a")),
        context(&taken, 0),
    );
    table.serve(
        LeaseOp::New,
        &request(10, -1, Some("b")),
        context(&taken, 0),
    );
    let released = table.serve(LeaseOp::Release, &request(10, -1, None), context(&none, 1));
    assert_eq!(released.changes.len(), 3, "every node of the controller");
    assert!(table
        .leases()
        .all(|lease| lease.state == NodeState::Offline));
    let locked = table.serve(LeaseOp::Lock, &request(10, 1, None), context(&none, 2));
    assert_eq!(locked.reply.unwrap().state, Some(NodeState::Boot));
    let resolved = table.resolve(&request(10, 1, None)).unwrap();
    assert_eq!(
        (resolved.name.as_deref(), resolved.msg_status),
        (Some("a"), 200)
    );
    let removed = table.serve(LeaseOp::Remove, &request(10, 2, None), context(&none, 3));
    assert_eq!(removed.changes, [LeaseChange::Removed(Hadd::new(10, 2))]);
    assert_eq!(
        table.resolve(&request(10, 2, None)).unwrap().msg_status,
        400
    );
    assert_eq!(table.len(), 2);
}

#[test]
fn repair_keeps_a_free_or_own_address_and_moves_off_anothers() {
    let mut table = LeaseTable::new();
    let taken = BTreeSet::from([Hadd::new(220, 0), Hadd::new(220, 1)]);
    // The table lost it (a new primary without it): repaired where it was.
    let kept = table.serve(
        LeaseOp::Repair,
        &request(220, 2, Some("led")),
        context(&taken, 0),
    );
    assert_eq!(granted(&kept), Hadd::new(220, 2));
    let again = table.serve(
        LeaseOp::Repair,
        &request(220, 2, Some("led")),
        context(&taken, 1),
    );
    assert_eq!(granted(&again), Hadd::new(220, 2));
    // Someone else's (another name): a new address.
    let moved = table.serve(
        LeaseOp::Repair,
        &request(220, 2, Some("dht")),
        context(&taken, 2),
    );
    assert_eq!(granted(&moved), Hadd::new(220, 3));
    // Heard on the network with no lease (a fixed address): a new address too.
    let fixed = table.serve(
        LeaseOp::Repair,
        &request(220, 1, Some("x")),
        context(&taken, 3),
    );
    assert_eq!(granted(&fixed), Hadd::new(220, 4));
}

#[test]
fn unconfirmed_leases_are_withdrawn_and_capped() {
    let mut table = LeaseTable::new();
    let taken = BTreeSet::from([Hadd::new(220, 0)]);
    for at in 0..MAX_UNCONFIRMED_PER_CONTROLLER {
        let name = format!("n{at}");
        let served = table.serve(
            LeaseOp::New,
            &request(220, -1, Some(&name)),
            context(&taken, 0),
        );
        granted(&served);
    }
    let over = table.serve(
        LeaseOp::New,
        &request(220, -1, Some("more")),
        context(&taken, 0),
    );
    assert!(refusal(&over).contains("under 0220/0000 wait"));
    // Another controller still gets its own.
    let mut at = 0;
    while table.len() < MAX_UNCONFIRMED {
        at += 1;
        granted(&table.serve(
            LeaseOp::New,
            &request(-1, -1, Some(&format!("c{at}"))),
            context(&taken, 0),
        ));
    }
    let full = table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("last")),
        context(&taken, 0),
    );
    assert!(refusal(&full).contains("64 leases wait"));
    // A confirmed lease is kept; the others go after CONFIRM_WITHIN.
    assert!(table
        .heard(Hadd::new(220, 1), NodeState::Online, 5)
        .is_some());
    assert!(
        table
            .heard(Hadd::new(220, 1), NodeState::Online, 6)
            .is_none(),
        "no change"
    );
    let early = CONFIRM_WITHIN - Duration::from_secs(1);
    assert!(table.expire(early).is_empty());
    let withdrawn = table.expire(CONFIRM_WITHIN);
    assert_eq!(withdrawn.len(), MAX_UNCONFIRMED - 1);
    assert_eq!(
        table.leases().map(|lease| lease.hadd).collect::<Vec<_>>(),
        [Hadd::new(220, 1)]
    );
    assert_eq!(table.get(Hadd::new(220, 1)).unwrap().last_seen_ms, Some(6));
}

#[test]
fn replicated_leases_keep_the_higher_epoch_and_name_the_displaced_node() {
    let none = BTreeSet::new();
    let mut left = LeaseTable::new();
    let mut right = LeaseTable::new();
    // Two primaries apart (epochs 7 and 9) lease 0010/0000 to two different nodes.
    let ours = left.serve(LeaseOp::New, &request(-1, -1, Some("a")), context(&none, 0));
    let theirs = right.serve(
        LeaseOp::New,
        &request(-1, -1, Some("b")),
        Context {
            taken: &none,
            now: Duration::ZERO,
            epoch: 9,
        },
    );
    let (LeaseChange::Put(a), LeaseChange::Put(b)) = (&ours.changes[0], &theirs.changes[0]) else {
        panic!("grants are puts");
    };
    assert_eq!(a.hadd, b.hadd);
    // Healed: each applies the other's. Both keep b's (epoch 9), and name a as displaced.
    for (table, incoming) in [(&mut left, b.clone()), (&mut right, a.clone())] {
        match table.apply(incoming) {
            Applied::Conflict { kept, displaced } => {
                assert_eq!((kept.name.as_str(), displaced.name.as_str()), ("b", "a"));
            }
            other => panic!("no conflict seen: {other:?}"),
        }
        assert_eq!(table.get(a.hadd).unwrap().name, "b");
    }
    // The same lease again changes nothing; an older one of the same node neither.
    assert_eq!(left.apply(b.clone()), Applied::Unchanged);
    let older = Lease {
        epoch: 1,
        state: NodeState::Offline,
        ..b.clone()
    };
    assert_eq!(left.apply(older), Applied::Unchanged);
    let newer = Lease {
        epoch: 10,
        state: NodeState::Online,
        ..b.clone()
    };
    assert_eq!(left.apply(newer), Applied::Taken);
    assert_eq!(left.get(b.hadd).unwrap().state, NodeState::Online);
    // Same epoch, two names: the lower name stands, on both sides alike.
    let mut one = LeaseTable::new();
    let x = Lease {
        name: "x".into(),
        ..b.clone()
    };
    let y = Lease {
        name: "y".into(),
        ..b.clone()
    };
    one.apply(y.clone());
    assert!(matches!(one.apply(x.clone()), Applied::Conflict { ref kept, .. } if kept.name == "x"));
    let mut other = LeaseTable::new();
    other.apply(x);
    assert!(matches!(other.apply(y), Applied::Conflict { ref kept, .. } if kept.name == "x"));
    // A removal by an earlier primary leaves a lease granted since.
    assert!(!other.apply_removed(b.hadd, b.epoch - 1));
    assert!(other.apply_removed(b.hadd, b.epoch));
    assert!(!other.apply_removed(b.hadd, b.epoch));
}

#[test]
fn a_record_gives_back_the_lease_it_was_made_of() {
    let mut table = LeaseTable::new();
    let served = table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("a")),
        context(&BTreeSet::new(), 5),
    );
    let hadd = granted(&served);
    table.heard(hadd, NodeState::Online, 1_765_000_000_000);
    let lease = table.get(hadd).unwrap().clone();
    let tree = lease.record().to_tree();
    let record = crate::lease::LeaseRecord::from_tree(&tree).unwrap();
    let later = Duration::from_secs(900);
    assert_eq!(
        Lease::from_record(hadd, &record, later),
        Some(Lease {
            granted: later,
            ..lease
        })
    );
    let removed = crate::lease::LeaseRecord {
        epoch: 3,
        held: None,
    };
    let tree = removed.to_tree();
    assert_eq!(
        crate::lease::LeaseRecord::from_tree(&tree).unwrap(),
        removed
    );
    assert_eq!(Lease::from_record(hadd, &removed, later), None);
}

#[test]
fn a_full_range_falls_back_to_the_lowest_free_address() {
    let mut table = LeaseTable::new();
    let taken = BTreeSet::from([Hadd::new(CONTROLLER_CEILING, 0), Hadd::new(12, 0)]);
    let served = table.serve(
        LeaseOp::New,
        &request(-1, -1, Some("a")),
        context(&taken, 0),
    );
    assert_eq!(granted(&served), Hadd::new(CONTROLLER_FLOOR, 0));
    let nodes = BTreeSet::from([Hadd::new(30, 0), Hadd::new(30, NODE_CEILING)]);
    let served = table.serve(
        LeaseOp::New,
        &request(30, -1, Some("a")),
        context(&nodes, 0),
    );
    assert_eq!(granted(&served), Hadd::new(30, 1));
}

#[test]
fn a_lock_naming_another_node_is_refused() {
    let mut table = LeaseTable::new();
    let none = BTreeSet::new();
    let hadd = granted(&table.serve(LeaseOp::New, &request(-1, -1, Some("a")), context(&none, 0)));
    let lock = |name: Option<&str>| LeaseRequest {
        rep_uuid: "r2".into(),
        add_ctrl: LeasePart::Number(hadd.ctrl.into()),
        add_node: LeasePart::Number(hadd.node.into()),
        options: name.map(|name| BTreeMap::from([("name".to_owned(), Value::from(name))])),
    };
    // The original's lock names no node: taken as it comes.
    assert_eq!(
        granted(&table.serve(LeaseOp::Lock, &lock(None), context(&none, 1))),
        hadd
    );
    assert_eq!(
        granted(&table.serve(LeaseOp::Lock, &lock(Some("a")), context(&none, 1))),
        hadd
    );
    let why = refusal(&table.serve(LeaseOp::Lock, &lock(Some("b")), context(&none, 1)));
    assert!(why.starts_with("options.name:"), "{why}");
}
