use driftless_core::application::{Cluster, ClusterConnection};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Returned by [`connect`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cluster {cluster}: cannot read kubeconfig {path}")]
    Kubeconfig {
        cluster: String,
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "cluster {cluster}: kubeconfig user {user:?} runs an exec credential plugin ({command:?}); \
         plugins run programs on this machine and are refused unless allowed (allowExecPlugins)"
    )]
    ExecPluginRefused {
        cluster: String,
        user: String,
        command: String,
    },
    #[error("cluster {cluster}: not running inside a Kubernetes pod with a service account")]
    InCluster {
        cluster: String,
        #[source]
        source: kube::config::InClusterError,
    },
    #[error("cluster {cluster}: invalid client configuration")]
    Config {
        cluster: String,
        #[source]
        source: kube::Error,
    },
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Allow kubeconfig `exec` credential plugins (they run arbitrary programs).
    pub allow_exec_plugins: bool,
}

/// A client for `cluster`.
pub async fn connect(cluster: &Cluster, options: ConnectOptions) -> Result<kube::Client, ConnectError> {
    let config = match &cluster.connection {
        ClusterConnection::InCluster => {
            kube::Config::incluster().map_err(|source| ConnectError::InCluster {
                cluster: cluster.name.clone(),
                source,
            })?
        }
        ClusterConnection::Kubeconfig { path, context } => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                cluster: cluster.name.clone(),
                path: path.display().to_string(),
                source,
            })?;
            if !options.allow_exec_plugins {
                refuse_exec_plugins(&cluster.name, &kubeconfig)?;
            }
            let options = KubeConfigOptions {
                context: context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|source| ConnectError::Kubeconfig {
                    cluster: cluster.name.clone(),
                    path: path.display().to_string(),
                    source,
                })?
        }
    };
    kube::Client::try_from(config).map_err(|source| ConnectError::Config {
        cluster: cluster.name.clone(),
        source,
    })
}

/// Any user entry with `exec` is refused, used or not: a kubeconfig is read as a whole and the
/// context can change.
fn refuse_exec_plugins(cluster: &str, kubeconfig: &Kubeconfig) -> Result<(), ConnectError> {
    for named in &kubeconfig.auth_infos {
        if let Some(exec) = named.auth_info.as_ref().and_then(|auth| auth.exec.as_ref()) {
            return Err(ConnectError::ExecPluginRefused {
                cluster: cluster.to_owned(),
                user: named.name.clone(),
                command: exec.command.clone().unwrap_or_default(),
            });
        }
    }
    Ok(())
}
