//! [`read_build`]: the installed Exchange build and edition of a node, from the registry.

use lockstep_core::{Edition, Name, Transport, Version};

use crate::remote::Node;
use lockstep_core::StepError;

/// What the registry says is installed on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeBuild {
    /// `MsiProductMajor.MsiProductMinor.MsiBuildMajor.MsiBuildMinor`.
    pub build: Version,
    /// The `Edition` value, when the key has one.
    pub edition: Option<Edition>,
}

/// Reads `HKLM\SOFTWARE\Microsoft\Exchange\Setup` on `host` (`reg query`, registry data: never
/// localised). A node without the key (or without the build values) is a
/// [`lockstep_core::HaltClass::Precondition`] error; an unreachable node is
/// [`lockstep_core::HaltClass::NodeUnreachable`].
pub async fn read_build(t: &dyn Transport, host: &Name) -> Result<NodeBuild, StepError> {
    Node::new(t, host).build().await
}
