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
    client(config).map_err(|source| ConnectError::Config {
        cluster: cluster.name.clone(),
        source,
    })
}

/// kube's own client, except that its connections set `TCP_NODELAY` (kube-rs/kube#2056): with
/// Nagle's algorithm on, the first request on each connection waits for the delayed ACK of the
/// TLS handshake's last message, ~40 ms, which was a fifth of a no-op `driftless sync`. The
/// service stack is kube's (base URI, auth, extra headers, retry of 429/503/504, timeouts, a debug
/// span per request). Proxies and exec-plugin client certificates keep kube's builder as is.
fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt as _;
    use tower::ServiceBuilder;

    let exec_credentials = config.auth_info.exec.is_some();
    if config.proxy_url.is_some() || exec_credentials {
        return kube::Client::try_from(config);
    }
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let mut connector =
        hyper_timeout::TimeoutConnector::new(config.rustls_https_connector_with_connector(http)?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let http_client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, kube::client::Body>(connector);
    let retry = config
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &http::Request<_>| {
                let verb = request
                    .extensions()
                    .get::<&'static str>()
                    .copied()
                    .unwrap_or("request");
                tracing::debug_span!("HTTP", http.method = %request.method(), http.url = %request.uri(), verb)
            }),
        )
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(kube::Client::new(service, config.default_namespace))
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

/// The URL of the API server `cluster`'s kubeconfig context names (so an Argo CD destination
/// that names a cluster by its `server` finds it); `None` in-cluster or when it cannot be read.
pub fn api_server_url(cluster: &Cluster) -> Option<String> {
    let ClusterConnection::Kubeconfig { path, context } = &cluster.connection else {
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(path).ok()?;
    let context = context.clone().or_else(|| kubeconfig.current_context.clone())?;
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|named| named.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    kubeconfig
        .clusters
        .iter()
        .find(|named| named.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .clone()
}
