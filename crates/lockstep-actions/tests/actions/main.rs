//! Behaviour of every action against a scripted transport (no network): exact command lines,
//! judgement of exit codes, probes, T2, never installing twice, reboots, discovery.

mod cluster;
mod discovery;
mod evs;
mod gates;
mod install;
mod reboot;
mod render;
mod scripted;
mod services;
