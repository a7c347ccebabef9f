//! What both reports derive from a run: versions per node (with the fallback to other
//! build-like facts), the halt step, counts.

use lockstep_core::{Fact, HaltClass, Name, RunStatus, StepState};
use lockstep_report::view::{AtTarget, RunView};

use crate::fixture;

fn fact(host: &str, key: &str, value: &str, at_ms: u64) -> Fact {
    Fact {
        host: Name::host(host).unwrap(),
        key: key.into(),
        value: value.into(),
        at_ms,
    }
}

#[test]
fn versions_fall_back_to_other_build_facts() {
    let mut run = fixture::finished_two_node();
    run.facts.clear();
    // PRG-N1: only discovery readings (`exchange.build`), learnt out of order.
    run.facts.push(fact(
        "PRG-N1",
        "exchange.build",
        "6.5.7638.2",
        fixture::T0 + 9_000,
    ));
    run.facts.push(fact(
        "PRG-N1",
        "exchange.build",
        "6.5.7226.6",
        fixture::T0 + 1_000,
    ));
    // PRG-N2: one reading only: before is known, after is not.
    run.facts.push(fact(
        "PRG-N2",
        "exchange.build",
        "6.5.7226.6",
        fixture::T0 + 2_000,
    ));
    // A host outside the plan, with an explicit before/after pair; unrelated facts ignored.
    run.facts.push(fact(
        "PRG-X9",
        "build.after",
        "6.5.7638.2",
        fixture::T0 + 8_000,
    ));
    run.facts.push(fact(
        "PRG-X9",
        "build.before",
        "6.5.6944.4",
        fixture::T0 + 3_000,
    ));
    run.facts
        .push(fact("PRG-X9", "boot.time", "6.5.1.1", fixture::T0 + 9_500));
    let view = RunView::new(&run);
    let rows: Vec<_> = view
        .versions
        .iter()
        .map(|n| {
            (
                n.host,
                n.before.map(|f| f.value.as_str()),
                n.after.map(|f| f.value.as_str()),
                n.at_target,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "PRG-N1",
                Some("6.5.7226.6"),
                Some("6.5.7638.2"),
                AtTarget::Yes
            ),
            ("PRG-N2", Some("6.5.7226.6"), None, AtTarget::Unknown),
            (
                "PRG-X9",
                Some("6.5.6944.4"),
                Some("6.5.7638.2"),
                AtTarget::Yes
            ),
        ]
    );
    let md = lockstep_report::markdown(&run);
    assert!(
        md.contains("| `PRG-N2` | prague | cluster PRGCL1 | `6.5.7226.6` SP1 | — | not verified |"),
        "{md}"
    );
    assert!(
        md.contains("| `PRG-X9` |  |  | `6.5.6944.4` RTM | `6.5.7638.2` SP2 | yes |"),
        "{md}"
    );
}

#[test]
fn an_unparsable_build_is_not_at_target() {
    let mut run = fixture::finished_two_node();
    for f in &mut run.facts {
        if f.host.as_str() == "PRG-N2" && f.key == "build.after" {
            f.value = "garbage".into();
        }
    }
    let view = RunView::new(&run);
    assert_eq!(view.versions[1].at_target, AtTarget::No);
}

#[test]
fn an_operator_stop_marks_the_last_known_time() {
    let mut run = fixture::finished_two_node();
    run.status = RunStatus::Halted {
        class: HaltClass::OperatorStop,
        reason: "stopped by `lockstep stop`".into(),
    };
    let view = RunView::new(&run);
    assert_eq!(view.halt_step, None);
    let doc = lockstep_report::html(&run);
    let halt = &doc[doc.find("<g class=\"halt\">").unwrap()..];
    assert!(halt.contains(">halt: operator-stop</text>"));
    // The plot's right edge is the last known time.
    assert!(
        halt.starts_with("<g class=\"halt\"><line x1=\"1172.0\""),
        "{}",
        &halt[..80]
    );
    assert!(doc.contains(
        HaltClass::OperatorStop
            .next_step()
            .split('`')
            .nth(2)
            .unwrap()
    ));
}

#[test]
fn a_record_the_plan_no_longer_has_is_listed_without_a_row() {
    let mut run = fixture::halted_two_node();
    let mut extra = run.steps[0].clone();
    extra.step = "PRG-OLD/dropped-by-replan".into();
    run.steps.push(extra);
    let view = RunView::new(&run);
    assert_eq!(view.steps.last().unwrap().host(), "?");
    let rows: usize = view.groups.iter().map(|g| g.hosts.len()).sum();
    assert_eq!(rows, 2);
    let doc = lockstep_report::html(&run);
    assert!(doc.contains("<code>PRG-OLD/dropped-by-replan</code>"));
    let started_in_plan = view
        .steps
        .iter()
        .filter(|r| r.plan.is_some() && r.rec.started_ms.is_some())
        .count();
    assert_eq!(doc.matches("<rect class=\"bar").count(), started_in_plan);
}

#[test]
fn counts_follow_the_records() {
    let run = fixture::halted_two_node();
    let view = RunView::new(&run);
    let n = |s: StepState| run.steps.iter().filter(|r| r.state == s).count();
    assert_eq!(
        view.counts(),
        vec![
            (StepState::Done, n(StepState::Done)),
            (StepState::Skipped, 1),
            (StepState::Failed, 1),
            (StepState::Pending, n(StepState::Pending)),
        ]
    );
    assert_eq!(
        view.counts_sentence(),
        format!(
            "{} done, 1 skipped, 1 failed, {} pending ({} steps)",
            n(StepState::Done),
            n(StepState::Pending),
            run.plan.steps.len()
        )
    );
}

/// A node's out-of-service window runs from the start of its Cluster service stop to the end of
/// the step that brings it back, in one piece, and the nodes of a cluster take turns (E3-C1).
#[test]
fn out_of_service_windows_span_the_marked_steps_and_nodes_take_turns() {
    use lockstep_core::Action;
    let mut run = fixture::finished_two_node();
    // Mark each node's steps from its Cluster service stop to its start, as the planner does.
    let mut open: Vec<Name> = Vec::new();
    for s in &mut run.plan.steps {
        let is_open = open.contains(&s.host);
        s.out_of_service = match s.action {
            Action::StopClusterService => {
                open.push(s.host.clone());
                true
            }
            Action::StartClusterService => {
                open.retain(|h| h != &s.host);
                true
            }
            _ => is_open,
        };
    }
    let v = RunView::new(&run);
    let span = |id: &str| {
        let r = run.steps.iter().find(|r| r.step == id).unwrap();
        (r.started_ms.unwrap(), r.finished_ms.unwrap())
    };
    let mut windows: Vec<(String, (u64, u64))> = Vec::new();
    for g in &v.groups {
        for h in &g.hosts {
            let w = v.out_of_service(h);
            let planned: Vec<_> = run
                .plan
                .steps
                .iter()
                .filter(|s| s.host.as_str() == h.host)
                .collect();
            let stop = planned
                .iter()
                .find(|s| matches!(s.action, Action::StopClusterService));
            let start = planned
                .iter()
                .rev()
                .find(|s| matches!(s.action, Action::StartClusterService));
            match (stop, start) {
                (Some(stop), Some(start)) => {
                    assert_eq!(w, vec![(span(&stop.id).0, span(&start.id).1)], "{}", h.host);
                    windows.push((h.host.to_owned(), w[0]));
                }
                _ => assert!(w.is_empty(), "{}: {w:?}", h.host),
            }
        }
    }
    assert!(windows.len() >= 2, "{windows:?}");
    for (i, (a, wa)) in windows.iter().enumerate() {
        for (b, wb) in &windows[i + 1..] {
            assert!(
                wa.1 <= wb.0 || wb.1 <= wa.0,
                "`{a}` {wa:?} and `{b}` {wb:?} out of service at once"
            );
        }
    }
}
