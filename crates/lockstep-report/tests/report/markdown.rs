//! The Markdown report: snapshots of a halted and a finished E3-CLUSTER run, and its rules.

use lockstep_core::StepState;

use crate::fixture;

#[test]
fn halted_two_node_run_snapshot() {
    let run = fixture::halted_two_node();
    insta::assert_snapshot!("halted_two_node", lockstep_report::markdown(&run));
}

#[test]
fn finished_two_node_run_snapshot() {
    let run = fixture::finished_two_node();
    insta::assert_snapshot!("finished_two_node", lockstep_report::markdown(&run));
}

#[test]
fn halted_report_names_the_halt_and_the_node_off_target() {
    let md = lockstep_report::markdown(&fixture::halted_two_node());
    assert!(md.contains("**Halted (version-mismatch)** at step `PRG-N2/install-sp` on `PRG-N2`"));
    assert!(md.contains(
        lockstep_core::HaltClass::VersionMismatch
            .next_step()
            .split('`')
            .next()
            .unwrap()
    ));
    assert!(md.contains("Version 6.5 (Build 7638.2: Service Pack 2)"));
    // PRG-N1 reached SP2, PRG-N2 stayed at SP1 (E3-CLUSTER.14, E3-CLUSTER.18).
    let n1 = md
        .lines()
        .find(|l| l.starts_with("| `PRG-N1` | prague"))
        .unwrap();
    assert!(
        n1.contains("`6.5.7226.6` SP1")
            && n1.contains("`6.5.7638.2` SP2")
            && n1.ends_with("| yes |")
    );
    let n2 = md
        .lines()
        .find(|l| l.starts_with("| `PRG-N2` | prague"))
        .unwrap();
    assert!(n2.contains("NO: not at target"), "{n2}");
}

#[test]
fn only_failed_and_waiting_outputs_are_fenced() {
    let run = fixture::halted_two_node();
    let md = lockstep_report::markdown(&run);
    assert_eq!(md.matches("```text").count(), 1);
    assert!(md.contains("ServicePackBuild 7226.6 (unchanged)"));
    // A done step's output stays out of the ticket.
    assert!(!md.contains("Service Pack 2 setup on PRG-N1"));
    assert!(
        run.steps
            .iter()
            .any(|s| s.state == StepState::Done
                && s.output.contains("Service Pack 2 setup on PRG-N1"))
    );
}

#[test]
fn long_output_keeps_its_last_lines_and_a_fence_it_cannot_close() {
    let mut run = fixture::halted_two_node();
    let failed = run
        .steps
        .iter_mut()
        .find(|s| s.state == StepState::Failed)
        .unwrap();
    failed.output =
        (1..=100).map(|i| format!("line {i}\n")).collect::<String>() + "```\nnot code\n";
    let md = lockstep_report::markdown(&run);
    assert!(md.contains("[... 62 earlier lines not shown ...]"));
    assert!(!md.contains("line 62\n") && md.contains("line 63\n") && md.contains("line 100\n"));
    assert!(md.contains("````text\n"));
}

#[test]
fn waiting_run_shows_what_is_awaited() {
    let run = fixture::simulate(
        fixture::plan(&fixture::two_node(), &["canary"]),
        |id| {
            if id.ends_with("upgrade-evs") {
                fixture::Outcome::Wait
            } else {
                fixture::Outcome::Ok
            }
        },
        None,
    );
    let md = lockstep_report::markdown(&run);
    assert!(md.starts_with("# Lockstep run `r20261121T080000-7k2q`: waiting\n"));
    assert!(
        md.contains("> **Waiting for an operator:** operator step `PRGCL1/EVS1 Group/upgrade-evs`"),
        "{md}"
    );
    assert!(md.contains("| Elapsed so far |"));
    // The operator step has no output of its own; it is listed, not fenced.
    assert!(md.contains("### `PRGCL1/EVS1 Group/upgrade-evs` (waiting, E3-CLUSTER.11)\n"));
    assert!(md.contains("No output."));
}

#[test]
fn table_cells_cannot_break_out() {
    let mut run = fixture::halted_two_node();
    run.steps[0].message = "a | b\n<script>x</script> `c|d` `e".into();
    let md = lockstep_report::markdown(&run);
    let line = md.lines().find(|l| l.contains("PRGCL1/backup")).unwrap();
    assert!(
        line.contains("a \\| b \\<script\\>x\\</script\\> `c\\|d` \\`e |"),
        "{line}"
    );
    assert_eq!(line.matches(" | ").count(), 7, "{line}");
}
