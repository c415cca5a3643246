//! Server-side apply, its dry-run, get and delete of single objects.

use std::collections::BTreeMap;

use driftless_core::{DesiredObject, ObjectRef};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::ApiResource;
use serde_json::Value;

/// The field manager of every apply driftless makes.
pub const FIELD_MANAGER: &str = driftless_core::plan::FIELD_MANAGER;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Take fields owned by other managers instead of failing with a conflict.
    pub force: bool,
    /// Ask the server what the object would become, and change nothing.
    pub dry_run: bool,
    /// Tell the server to ignore unknown and duplicate fields instead of refusing them (Argo CD's
    /// `Validate=false`; servers older than 1.25 ignore the request and do not validate anyway).
    pub skip_validation: bool,
}

/// Returned for one object. The message is the API server's, which names fields and managers but
/// never values (and this adapter never includes the manifest).
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(
        "{object}: conflict with another field manager: {message} (sync with force to take the fields over)"
    )]
    Conflict { object: String, message: String },
    #[error("{object}: rejected by the API server: {message}")]
    Rejected {
        object: String,
        code: u16,
        message: String,
    },
    #[error("{object}: the API server failed ({code}): {message}")]
    ServerError {
        object: String,
        code: u16,
        message: String,
    },
    #[error("{object}: cannot reach the API server: {}", root_cause(.source))]
    Unreachable {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: request failed: {source}")]
    Request {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{object}: cannot read the server's answer: {message}")]
    Decode { object: String, message: String },
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which says
/// more than kube's outer "client error (Connect)".
/// Whether the API server could not be reached at all (no answer, as opposed to a refusal).
pub(crate) fn is_unreachable(err: &kube::Error) -> bool {
    matches!(err, kube::Error::HyperError(_) | kube::Error::Service(_))
}

pub(crate) fn root_cause(err: &kube::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl ObjectError {
    fn from_kube(object: &ObjectRef, err: kube::Error) -> Self {
        Self::about(object.to_string(), err)
    }

    /// For requests about more than one object (`what` names them, e.g. a list).
    fn about(object: String, err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) if status.code == 409 => Self::Conflict {
                object,
                message: status.message,
            },
            kube::Error::Api(status) if (400..500).contains(&status.code) => Self::Rejected {
                object,
                code: status.code,
                message: status.message,
            },
            kube::Error::Api(status) => Self::ServerError {
                object,
                code: status.code,
                message: status.message,
            },
            source if is_unreachable(&source) => Self::Unreachable { object, source },
            source => Self::Request { object, source },
        }
    }

    /// The same error with the Secret's own values removed from the server's message.
    #[must_use]
    fn without_secret_values(mut self, desired: &DesiredObject) -> Self {
        if let Self::Conflict { message, .. }
        | Self::Rejected { message, .. }
        | Self::ServerError { message, .. } = &mut self
        {
            *message =
                driftless_core::diff::scrub_secret_values(message, &desired.reference, &desired.manifest);
        }
        self
    }

    /// Whether retrying later may help (server or network trouble, not a bad object).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::Request { .. } | Self::ServerError { .. } => true,
            Self::Rejected { code, .. } => *code == 429,
            Self::Conflict { .. } | Self::Decode { .. } => false,
        }
    }
}

fn listing(resource: &ApiResource, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("{} in namespace {namespace}", resource.plural),
        None => resource.plural.clone(),
    }
}

/// A LIST answer; only its items are read.
#[derive(serde::Deserialize)]
struct Items<T> {
    /// `null` in some empty lists (metadata-only ones).
    items: Option<Vec<T>>,
}

/// What a metadata-only LIST tells of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedMetadata {
    #[serde(default)]
    pub name: String,
    /// Changes with every write to the object, its status included.
    #[serde(default)]
    pub resource_version: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl ListedMetadata {
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }

    #[must_use]
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// Single-object operations against one cluster.
#[derive(Clone)]
pub struct Objects {
    /// The client as given, for watches (whose requests are not counted).
    client: kube::Client,
    /// The same client below a layer that counts every HTTP request: every operation here sends
    /// through it.
    counted: kube::Client,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Objects {
    /// # Panics
    /// Outside a Tokio runtime (the counting client's request buffer is a task).
    #[must_use]
    pub fn new(client: kube::Client) -> Self {
        let requests = std::sync::Arc::default();
        Self {
            counted: crate::counted::counted(&client, std::sync::Arc::clone(&requests)),
            client,
            requests,
        }
    }

    /// How many HTTP requests these operations (and their clones) have sent: reads and writes of
    /// objects and lists, counted where each request goes to the client (a LIST is one, a replace
    /// a GET and a PUT; a retry kube makes by itself after 429/503/504 is not counted again).
    /// Watches (through [`Objects::client`]) and discovery are not counted. For statistics, and
    /// for tests that a no-op costs none.
    #[must_use]
    pub fn request_count(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The client underneath, for watches; requests sent through it are not counted.
    #[must_use]
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(namespace) => Api::namespaced_with(self.counted.clone(), namespace, resource),
            None => Api::all_with(self.counted.clone(), resource),
        }
    }

    /// Server-side applies `desired` as field manager `driftless`; returns the object as the
    /// server has it afterwards (or would have it, on a dry-run).
    pub async fn apply(
        &self,
        resource: &ApiResource,
        desired: &DesiredObject,
        options: ApplyOptions,
    ) -> Result<Value, ObjectError> {
        let reference = &desired.reference;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if options.force {
            params = params.force();
        }
        if options.dry_run {
            params = params.dry_run();
        }
        if options.skip_validation {
            params = params.validation_ignore();
        }
        self.send_about(resource, desired, "patch", |request| {
            request.patch(&reference.name, &params, &Patch::Apply(&desired.manifest))
        })
        .await
    }

    /// [`Objects::send`] of a request about `desired`: its error names the object and never
    /// holds the Secret's values.
    async fn send_about(
        &self,
        resource: &ApiResource,
        desired: &DesiredObject,
        verb: &'static str,
        build: impl FnOnce(&kube::core::Request) -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Value, ObjectError> {
        let reference = &desired.reference;
        self.send(resource, reference.namespace.as_deref(), verb, build)
            .await
            .map_err(|err| ObjectError::from_kube(reference, err).without_secret_values(desired))
    }

    /// Sends a request built on `resource`'s URL and parses the answer straight into `T` — JSON
    /// values, not `DynamicObject`, whose typed metadata (managedFields included) would be parsed
    /// and serialised back for every object (most of the cost of a large LIST or of many applies).
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        verb: &'static str,
        build: impl FnOnce(&kube::core::Request) -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<T, kube::Error> {
        let api = self.api(resource, namespace);
        let mut request =
            build(&kube::core::Request::new(api.resource_url())).map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert(verb);
        self.counted.request(request).await
    }

    /// The live object, `None` when it does not exist (also when its kind is not served, e.g. a
    /// CRD that is not installed yet: the server then answers a bare 404).
    pub async fn get(
        &self,
        resource: &ApiResource,
        reference: &ObjectRef,
    ) -> Result<Option<Value>, ObjectError> {
        let found = self
            .send(resource, reference.namespace.as_deref(), "get", |request| {
                request.get(&reference.name, &kube::api::GetParams::default())
            })
            .await;
        match found {
            Ok(found) => Ok(Some(found)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(err) => Err(ObjectError::from_kube(reference, err)),
        }
    }

    /// Every object of `resource` in `namespace` (all namespaces when `None`) that matches
    /// `label_selector`: one LIST request instead of a GET per object.
    pub async fn list(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, ObjectError> {
        let params = kube::api::ListParams::default().labels(label_selector);
        let list: Items<Value> = self
            .send(resource, namespace, "list", |request| request.list(&params))
            .await
            .map_err(|err| ObjectError::about(listing(resource, namespace), err))?;
        Ok(list.items.unwrap_or_default())
    }

    /// The metadata of every object of `resource` in `namespace` that matches `label_selector`
    /// (every object when `None`), from a metadata-only LIST: no bodies, and managedFields are
    /// skipped unparsed, so it stays cheap where a namespace holds many objects.
    pub async fn list_metadata(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<ListedMetadata>, ObjectError> {
        #[derive(serde::Deserialize)]
        struct Item {
            metadata: ListedMetadata,
        }
        let mut params = kube::api::ListParams::default();
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let list: Items<Item> = self
            .send(resource, namespace, "list", |request| {
                request.list_metadata(&params)
            })
            .await
            .map_err(|err| ObjectError::about(listing(resource, namespace), err))?;
        Ok(list
            .items
            .into_iter()
            .flatten()
            .map(|item| item.metadata)
            .collect())
    }

    /// Deletes the object (dependents in the background, as kubectl does); `false` if it was
    /// already gone.
    pub async fn delete(&self, resource: &ApiResource, reference: &ObjectRef) -> Result<bool, ObjectError> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match self
            .api(resource, reference.namespace.as_deref())
            .delete(&reference.name, &params)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(err) => Err(ObjectError::from_kube(reference, err)),
        }
    }

    /// Creates the object (POST): for a hook that names only its `metadata.generateName`, so that
    /// the server gives each sync's object a fresh name. Returns the object as created.
    pub async fn create(
        &self,
        resource: &ApiResource,
        desired: &DesiredObject,
        options: ApplyOptions,
    ) -> Result<Value, ObjectError> {
        let reference = &desired.reference;
        let params = kube::api::PostParams {
            dry_run: options.dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let body = serde_json::to_vec(&desired.manifest).map_err(|err| decode_error(reference, &err))?;
        self.send_about(resource, desired, "create", |request| {
            request.create(&params, body)
        })
        .await
    }

    /// Replaces the object wholesale (PUT, or create when absent) instead of server-side applying
    /// it: for objects that must lose fields other managers set, or whose apply the server refuses.
    pub async fn replace(
        &self,
        resource: &ApiResource,
        desired: &DesiredObject,
        options: ApplyOptions,
    ) -> Result<Value, ObjectError> {
        let reference = &desired.reference;
        let api = self.api(resource, reference.namespace.as_deref());
        let params = kube::api::PostParams {
            dry_run: options.dry_run,
            field_manager: Some(FIELD_MANAGER.to_owned()),
        };
        let mut object: DynamicObject =
            serde_json::from_value(desired.manifest.clone()).map_err(|err| decode_error(reference, &err))?;
        let result = match self.get(resource, reference).await? {
            Some(live) => {
                object.metadata.resource_version = live
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                api.replace(&reference.name, &params, &object).await
            }
            None => api.create(&params, &object).await,
        };
        let replaced =
            result.map_err(|err| ObjectError::from_kube(reference, err).without_secret_values(desired))?;
        to_json(reference, replaced)
    }
}

/// `what` names the object (or the list) whose answer could not be read.
fn decode_error(what: &dyn std::fmt::Display, err: &serde_json::Error) -> ObjectError {
    ObjectError::Decode {
        object: what.to_string(),
        message: err.to_string(),
    }
}

/// The server's answer as plain JSON.
fn to_json(what: &dyn std::fmt::Display, object: DynamicObject) -> Result<Value, ObjectError> {
    serde_json::to_value(object).map_err(|err| decode_error(what, &err))
}
