//! The clusters of the configuration: one client per cluster, connected the first time an
//! application needs it and shared afterwards, with its discovery cache and object operations.

use std::collections::HashMap;
use std::sync::Arc;

use driftless_core::ObjectRef;
use driftless_core::application::Cluster;
use driftless_kube::{ApiResource, ConnectOptions, Discovery, Objects, connect};
use tokio::sync::Mutex;

use crate::error::Failure;

/// A connected cluster: one client, its discovery cache and object operations.
#[derive(Clone)]
pub(crate) struct ClusterHandle {
    /// The cluster's name in the configuration.
    pub name: String,
    pub discovery: Arc<Discovery>,
    pub objects: Objects,
}

impl ClusterHandle {
    /// The API resource for an object known by reference and the version it was applied as;
    /// `None` when the server no longer serves that kind (its CRD is gone).
    pub(crate) async fn resource_for(
        &self,
        reference: &ObjectRef,
        version: &str,
    ) -> Result<Option<ApiResource>, Failure> {
        let gvk = driftless_core::GroupVersionKind {
            group: reference.group.clone(),
            version: version.to_owned(),
            kind: reference.kind.clone(),
        };
        let found = self.discovery.lookup(&gvk).await?;
        Ok(found.map(|resolved| resolved.resource))
    }
}

pub(crate) struct Clusters {
    configured: Vec<Cluster>,
    options: ConnectOptions,
    connected: Mutex<HashMap<String, ClusterHandle>>,
}

impl Clusters {
    pub(crate) fn new(configured: Vec<Cluster>, options: ConnectOptions) -> Self {
        Self {
            configured,
            options,
            connected: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration's entry for the cluster `name`.
    pub(crate) fn settings(&self, name: &str) -> Option<&Cluster> {
        self.configured.iter().find(|cluster| cluster.name == name)
    }

    /// The cluster `name`, connected on first use.
    pub(crate) async fn get(&self, name: &str) -> Result<ClusterHandle, Failure> {
        let mut connected = self.connected.lock().await;
        if let Some(handle) = connected.get(name) {
            return Ok(handle.clone());
        }
        let cluster = self
            .settings(name)
            .ok_or_else(|| Failure::UnknownCluster(name.to_owned()))?;
        let client = connect(cluster, self.options).await?;
        let handle = ClusterHandle {
            name: name.to_owned(),
            discovery: Arc::new(Discovery::new(client.clone())),
            objects: Objects::new(client),
        };
        connected.insert(name.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Requests sent to every connected cluster.
    pub(crate) async fn request_count(&self) -> u64 {
        self.connected
            .lock()
            .await
            .values()
            .map(|cluster| cluster.objects.request_count())
            .sum()
    }
}
