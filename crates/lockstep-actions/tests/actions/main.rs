//! Behaviour of every action against a scripted transport (no network): exact command lines,
//! judgement of exit codes, probes, T2, never installing twice, reboots, discovery.

mod cluster;
mod discovery;
mod evs;
mod gates;
mod generic;
mod install;
mod reboot;
mod render;
mod scripted;
mod services;
mod story;

/// The engine spawns these futures on a multi-threaded runtime: they must be `Send`.
#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let t = scripted::Scripted::new();
    let f = scripted::fleet();
    let s = scripted::step(scripted::N1, lockstep_core::Action::Reboot);
    let c = scripted::ctx(&t, &f, &s);
    let host = lockstep_core::Name::host(scripted::N1).unwrap();
    assert_send(&lockstep_actions::execute(&c));
    assert_send(&lockstep_actions::probe(&c));
    assert_send(&lockstep_actions::read_build(&t, &host));
    assert_send(&lockstep_actions::discover(&t, &f, &[]));
}
