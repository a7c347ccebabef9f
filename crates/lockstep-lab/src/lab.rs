//! [`Lab`]: the simulated fleet ([`World`]) behind its WinRM endpoints ([`LabServer`]), started
//! together from an inventory. What `lockstep lab` and `lockstep demo` run.

use std::collections::BTreeMap;
use std::sync::Arc;

use lockstep_core::Fleet;

use crate::model::{LabConfig, World};
use crate::record::Recorder;
use crate::server::{LabServer, ServerConfig, ServerError};

/// A running lab.
pub struct Lab {
    world: Arc<World>,
    server: LabServer,
}

impl Lab {
    /// Builds the fleet's model and serves every host on its own loopback endpoint.
    pub async fn start(
        fleet: &Fleet,
        config: LabConfig,
        server: ServerConfig,
        recorder: Recorder,
    ) -> Result<Lab, ServerError> {
        let world = World::new(fleet, config, recorder);
        let server = LabServer::start(world.clone(), server).await?;
        Ok(Lab { world, server })
    }

    /// Host name to WinRM URL (`http://127.0.0.1:PORT/wsman`).
    pub fn endpoints(&self) -> BTreeMap<String, String> {
        self.server.endpoints()
    }

    /// The generated certificate (PEM) when serving HTTPS.
    pub fn cert_pem(&self) -> Option<String> {
        self.server.cert_pem()
    }

    /// What the endpoints served (see [`LabServer::stats`]).
    pub fn stats(&self) -> crate::server::ServerStats {
        self.server.stats()
    }

    /// Shells open on each host now (see [`LabServer::open_shells`]).
    pub fn open_shells(&self) -> BTreeMap<String, usize> {
        self.server.open_shells()
    }

    /// The simulated fleet: faults, snapshots.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
