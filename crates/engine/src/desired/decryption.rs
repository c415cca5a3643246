//! An application's SOPS keys, read when it renders and dropped with the render: from files and
//! environment variables named in `driftless.yaml`, or from a Secret on its destination cluster.

use base64::Engine as _;
use driftless_core::ObjectRef;
use driftless_core::application::{Application, KeySource};
use driftless_kube::ApiResource;
use driftless_render::Keys;

use crate::clusters::ClusterHandle;
use crate::error::Failure;

fn secrets() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Secret".into(),
        plural: "secrets".into(),
    }
}

/// Loads the keys of `app` (none when it has no `decryption`). A key that cannot be read fails
/// the render of this application only. Without a cluster (an offline plan), keys kept in a
/// Secret are unavailable.
pub(crate) async fn load_keys(app: &Application, cluster: Option<&ClusterHandle>) -> Result<Keys, Failure> {
    let mut keys = Keys::new();
    let Some(decryption) = &app.decryption else {
        return Ok(keys);
    };
    let failed = Failure::DecryptionKeys;
    for source in &decryption.keys {
        match source {
            KeySource::File(path) => {
                let name = format!("file {}", path.display());
                let contents = zeroize::Zeroizing::new(
                    std::fs::read(path).map_err(|err| failed(format!("cannot read {name}: {err}")))?,
                );
                keys.add(&contents, &name)
                    .map_err(|err| failed(err.to_string()))?;
            }
            KeySource::Env(variable) => {
                let name = format!("environment variable {variable}");
                let contents = zeroize::Zeroizing::new(
                    std::env::var(variable).map_err(|_| failed(format!("{name} is not set")))?,
                );
                keys.add(contents.as_bytes(), &name)
                    .map_err(|err| failed(err.to_string()))?;
            }
            KeySource::Secret { namespace, name, key } => {
                let reference = ObjectRef {
                    group: String::new(),
                    kind: "Secret".into(),
                    namespace: Some(namespace.clone()),
                    name: name.clone(),
                };
                let Some(cluster) = cluster else {
                    return Err(failed(format!(
                        "the key in Secret {namespace}/{name} needs the cluster, which this run does not reach"
                    )));
                };
                let secret = cluster
                    .objects
                    .get(&secrets(), &reference)
                    .await
                    .map_err(|err| failed(format!("cannot read Secret {namespace}/{name}: {err}")))?
                    .ok_or_else(|| failed(format!("Secret {namespace}/{name} does not exist")))?;
                let data = secret["data"].as_object().cloned().unwrap_or_default();
                let wanted: Vec<&String> = match key {
                    Some(key) => vec![key],
                    None => data.keys().collect(),
                };
                if wanted.is_empty() {
                    return Err(failed(format!("Secret {namespace}/{name} holds no keys")));
                }
                for entry in wanted {
                    let shown = format!("Secret {namespace}/{name} key {entry}");
                    let encoded = data
                        .get(entry.as_str())
                        .and_then(serde_json::Value::as_str)
                        .ok_or_else(|| failed(format!("{shown} does not exist")))?;
                    let contents = zeroize::Zeroizing::new(
                        base64::engine::general_purpose::STANDARD
                            .decode(encoded)
                            .map_err(|_| failed(format!("{shown} is not base64")))?,
                    );
                    keys.add(&contents, &shown)
                        .map_err(|err| failed(err.to_string()))?;
                }
            }
        }
    }
    Ok(keys)
}
