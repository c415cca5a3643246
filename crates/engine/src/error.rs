//! Errors. Inside the engine every step returns a [`Failure`], which never names the
//! application; each operation the engine offers names it once, in its own error type
//! ([`CompareError`], [`SyncError`], …), at its entry point. [`Classified::class`] tells a front
//! end (the API server, the CLI) what kind of failure it is without matching variants.

use std::fmt::Write as _;

use driftless_core::sync_order::InvalidWave;

/// What kind of failure an error is, for a front end to answer with (an HTTP status, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The application (or something it names) does not exist.
    NotFound,
    /// Something driftless depends on did not answer: a cluster, a Git server.
    Unavailable,
    /// driftless's own state (the store) failed.
    Internal,
    /// The application, its source or the request cannot be carried out as it is.
    Refused,
}

/// Implemented by every error the engine returns.
pub trait Classified: std::error::Error {
    fn class(&self) -> ErrorClass;
}

/// Why a step failed, without the application it failed for.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no application named {0:?} in the configuration")]
    UnknownApplication(String),
    #[error("invalid Application manifests in its source:{}", list(.0))]
    Children(Vec<String>),
    /// Declared in Git as an Argo CD or Flux object, with what driftless has no equivalent for.
    #[error("not synced: its Argo CD or Flux object has what driftless has no equivalent for:{}", list(.0))]
    Unconverted(Vec<String>),
    #[error("no cluster named {0:?} in the configuration")]
    UnknownCluster(String),
    #[error(transparent)]
    Git(#[from] Box<driftless_git::GitError>),
    #[error("render failed: {0}")]
    Render(#[from] Box<driftless_render::RenderError>),
    #[error("trusted signing keys: {0}")]
    SignaturePolicy(#[from] TrustedKeysError),
    #[error("commit {commit} is not trusted: {reason}")]
    Untrusted {
        /// Abbreviated.
        commit: String,
        reason: String,
    },
    #[error("{0}")]
    Project(String),
    #[error("its project refuses {} object(s); nothing is applied or pruned:{}", .0.len(), list(.0))]
    /// `object: why`, one per refused object.
    ProjectObjects(Vec<String>),
    #[error("no project named {0:?} in the configuration")]
    UnknownProject(String),
    #[error("decryption keys: {0}")]
    DecryptionKeys(String),
    #[error(transparent)]
    Resolve(#[from] Box<driftless_kube::ResolveError>),
    #[error("invalid sync annotations (waves, hooks):{}", list(.0))]
    Waves(Vec<InvalidWave>),
    #[error(transparent)]
    Connect(#[from] Box<driftless_kube::ConnectError>),
    #[error(transparent)]
    Cluster(#[from] Box<driftless_kube::ObjectError>),
    #[error(transparent)]
    Discovery(#[from] Box<driftless_kube::DiscoveryError>),
    #[error("history database")]
    Store(#[from] Box<driftless_store::StoreError>),
    #[error("revision {0} was never synced successfully, so it cannot be rolled back to")]
    NotInHistory(String),
    #[error("never synced successfully, so there is no deployed revision to pin")]
    NeverSynced,
}

/// Why the keys an application trusts to sign its commits cannot be used. Names the file or
/// variable, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum TrustedKeysError {
    #[error("cannot read file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set")]
    Unset(String),
    #[error("{name}: {source}")]
    AllowedSigners {
        name: String,
        source: driftless_git::AllowedSignersError,
    },
    #[error("{name}: {source}")]
    PgpKeys {
        name: String,
        source: driftless_git::PgpKeysError,
    },
    #[error("no trusted key: every commit would be refused")]
    NoKey,
    #[error(transparent)]
    RepositoryUrl(#[from] driftless_core::application::RepositoryKeyError),
}

/// One item per line, indented.
fn list<T: std::fmt::Display>(errors: &[T]) -> String {
    errors.iter().fold(String::new(), |mut text, err| {
        let _ = write!(text, "\n  {err}");
        text
    })
}

impl Failure {
    /// Failures whose message already says everything (they are not about one application).
    fn stands_alone(&self) -> bool {
        matches!(
            self,
            Self::UnknownApplication(_) | Self::UnknownCluster(_) | Self::Connect(_) | Self::Store(_)
        )
    }
}

impl Classified for Failure {
    fn class(&self) -> ErrorClass {
        match self {
            Self::UnknownApplication(_) => ErrorClass::NotFound,
            Self::Connect(_) | Self::Cluster(_) | Self::Discovery(_) | Self::Git(_) => {
                ErrorClass::Unavailable
            }
            Self::Store(_) => ErrorClass::Internal,
            _ => ErrorClass::Refused,
        }
    }
}

/// `?` on an adapter's error inside the engine: each becomes its [`Failure`].
macro_rules! boxed_from {
    ($($source:ty),* $(,)?) => {$(
        impl From<$source> for Failure {
            fn from(err: $source) -> Self {
                Box::new(err).into()
            }
        }
    )*};
}

boxed_from!(
    driftless_git::GitError,
    driftless_render::RenderError,
    driftless_kube::ResolveError,
    driftless_kube::ConnectError,
    driftless_kube::ObjectError,
    driftless_kube::DiscoveryError,
    driftless_store::StoreError,
);

impl Classified for driftless_store::StoreError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Internal
    }
}

/// An error type for one operation: the application it failed for, named once, and why.
macro_rules! operation_error {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug)]
        pub struct $name {
            pub application: String,
            pub failure: Failure,
        }

        impl $name {
            pub(crate) fn new(application: &str, failure: impl Into<Failure>) -> Self {
                Self {
                    application: application.to_owned(),
                    failure: failure.into(),
                }
            }

            /// Names the application of an engine step's failure.
            pub(crate) fn of(application: &str) -> impl FnOnce(Failure) -> Self + '_ {
                move |failure| Self::new(application, failure)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if self.failure.stands_alone() {
                    write!(f, "{}", self.failure)
                } else {
                    write!(f, "{}: {}", self.application, self.failure)
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.failure.source()
            }
        }

        impl Classified for $name {
            fn class(&self) -> ErrorClass {
                self.failure.class()
            }
        }
    )*};
}

operation_error!(
    /// [`crate::Engine::compare`] failed.
    CompareError,
    /// [`crate::Engine::sync`] (or a rollback) failed before it could report per object.
    SyncError,
    /// [`crate::Engine::render`] failed.
    RenderError,
    /// An administrative operation ([`crate::Engine::pin`], `unpin`, `suspend`, `resume`) failed.
    AdminError,
    /// [`crate::Engine::resource_tree`] failed.
    TreeError,
    /// Looking an application up failed.
    LookupError,
);

/// The engine could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("policy: {0}")]
    InvalidPolicy(#[from] driftless_policy::PolicyError),
    #[error("history database")]
    Store(#[from] driftless_store::StoreError),
}
