//! The Lockstep lab: a simulated Windows Server / failover cluster / Exchange fleet that speaks
//! the real WinRM protocol on loopback.
//!
//! KB 328839 (G7) asks for every service pack to be tested in a laboratory first; this crate is
//! that laboratory, and the fleet every engine test drives through the same transport that talks
//! to Windows. [`server`] is the WinRM/WS-Management server (HTTP, SOAP 1.2, Basic, NTLMv2 and Kerberos,
//! optional HTTPS, code pages, WQL enumeration); [`model`] is the Windows, cluster and Exchange
//! model behind it (services, processes, registry, cluster groups and resources, installers,
//! reboots, faults, the recorder and the invariant checker). [`backend::Backend`] is the seam
//! between the two. This crate depends on `lockstep-core` only and must never reuse the client
//! code of `lockstep-winrm`: it stays an independent implementation of the server side.
#![deny(missing_docs)]

pub mod backend;
pub mod kdc;
mod lab;
pub mod model;
pub mod record;
pub mod server;
pub mod verify;

pub use lab::Lab;
pub use model::{Fault, LabConfig, World};
pub use record::Recorder;
pub use server::{LabServer, ServerConfig, DEFAULT_LAB_PASSWORD, DEFAULT_LAB_USER};
pub use verify::{verify, verify_declared, verify_file, Violation};
