use std::fmt::Write as _;

use driftless_core::sync_order::InvalidWave;

/// Returned by [`crate::Engine`] operations; every variant says which application and step.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no application named {0:?} in the configuration")]
    UnknownApplication(String),
    #[error(
        "{application}: invalid Application manifests in its source:{}",
        list(problems)
    )]
    Children {
        application: String,
        problems: Vec<String>,
    },
    #[error("no cluster named {0:?} in the configuration")]
    UnknownCluster(String),
    #[error("{application}: {source}")]
    Git {
        application: String,
        #[source]
        source: Box<driftless_git::GitError>,
    },
    #[error("{application}: render failed: {source}")]
    Render {
        application: String,
        #[source]
        source: Box<driftless_render::RenderError>,
    },
    #[error("{application}: trusted signing keys: {message}")]
    SignaturePolicy { application: String, message: String },
    #[error("{application}: commit {commit} is not trusted: {reason}")]
    Untrusted {
        application: String,
        /// Abbreviated.
        commit: String,
        reason: String,
    },
    #[error("{application}: {message}")]
    Project { application: String, message: String },
    #[error("policy: {0}")]
    InvalidPolicy(String),
    #[error("{application}: its project refuses {} object(s); nothing is applied or pruned:{}", objects.len(), list(objects))]
    ProjectObjects {
        application: String,
        /// `object: why`, one per refused object.
        objects: Vec<String>,
    },
    #[error("{application}: no project named {project:?} in the configuration")]
    UnknownProject { application: String, project: String },
    #[error("{application}: decryption keys: {message}")]
    DecryptionKeys { application: String, message: String },
    #[error("{application}: {source}")]
    Resolve {
        application: String,
        #[source]
        source: Box<driftless_kube::ResolveError>,
    },
    #[error("{application}: invalid sync waves:{}", list(.errors))]
    Waves {
        application: String,
        errors: Vec<InvalidWave>,
    },
    #[error(transparent)]
    Connect(#[from] Box<driftless_kube::ConnectError>),
    #[error("{application}: {source}")]
    Cluster {
        application: String,
        #[source]
        source: Box<driftless_kube::ObjectError>,
    },
    #[error("{application}: {source}")]
    Discovery {
        application: String,
        #[source]
        source: Box<driftless_kube::DiscoveryError>,
    },
    #[error("history database")]
    Store(#[from] Box<driftless_store::StoreError>),
    #[error(
        "{application}: revision {revision} was never synced successfully, so it cannot be rolled back to"
    )]
    NotInHistory { application: String, revision: String },
    #[error("{application}: never synced successfully, so there is no deployed revision to pin")]
    NeverSynced { application: String },
}

/// One item per line, indented.
fn list<T: std::fmt::Display>(errors: &[T]) -> String {
    errors.iter().fold(String::new(), |mut text, err| {
        let _ = write!(text, "\n  {err}");
        text
    })
}

impl From<driftless_store::StoreError> for EngineError {
    fn from(err: driftless_store::StoreError) -> Self {
        Self::Store(Box::new(err))
    }
}

impl From<driftless_kube::ConnectError> for EngineError {
    fn from(err: driftless_kube::ConnectError) -> Self {
        Self::Connect(Box::new(err))
    }
}
