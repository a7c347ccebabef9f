//! Crash and resume: the controller is SIGKILLed at many random points of a rollout (the seed
//! is printed; `LOCKSTEP_CRASH_SEED` replays it). After `resume`, every run reaches the right end
//! state, no installer ran twice, and the lab's invariant checker passes.

use rand::SeedableRng;

use crate::util::{crash_seed, lab_inventory, Lab};

const KILLS_PER_PLAYBOOK: usize = 10;

#[test]
fn sigkill_at_random_points_then_resume_completes_without_repeating_an_installer() {
    let seed = crash_seed("crash test");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Simulated durations twice the default, so that kills land inside installs and reboots too.
    let lab = Lab::start(Some("time_scale: 0.001\n"));
    let inv = lab_inventory();
    let mut total_kills = 0;
    for pb in ["e3-fb", "e3-cluster", "e2-fb", "e2-active-passive"] {
        let mut args = Lab::run_args_on(&inv, pb);
        args.extend(["-e", "evs_upgrade_tool=labctl evs upgrade"].map(str::to_owned));
        total_kills += lab.run_through_kills(
            &args,
            KILLS_PER_PLAYBOOK,
            1000,
            &mut rng,
            &format!("seed {seed}, {pb}"),
        );
    }
    assert!(
        total_kills >= 30,
        "seed {seed}: only {total_kills} kills landed mid-run"
    );
    lab.assert_invariants();
    lab.assert_each_installer_once(&format!("seed {seed}"));
}
