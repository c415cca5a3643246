//! The configuration as written: serde types that mirror the YAML one to one. Leaves that need
//! validating are `Spanned` so errors can name their line. Nothing here is trusted yet; `validate`
//! turns these into the types in `model`.
//!
//! Kubernetes style (camelCase, `apiVersion`/`kind`/`metadata`/`spec`) so that the very same
//! Application objects can later be served as CRDs. Unknown fields are errors: a typo such as
//! `selfheal` must not silently turn self-healing off.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawConfig {
    pub api_version: Text,
    pub kind: Text,
    #[serde(default)]
    pub data_dir: Option<Text>,
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub repositories: Vec<RawRepository>,
    #[serde(default)]
    pub projects: Vec<RawProject>,
    #[serde(default)]
    pub limits: Option<RawLimits>,
    #[serde(default)]
    pub redaction: Option<RawRedaction>,
    #[serde(default)]
    pub webhooks: Option<RawWebhooks>,
    #[serde(default)]
    pub notifications: Option<RawNotifications>,
    #[serde(default)]
    pub policy: Option<RawPolicy>,
    #[serde(default)]
    pub applications: Vec<RawApplication>,
}

/// Rules every rendered object must pass, in `driftless plan` and before every sync applies.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawPolicy {
    /// The starter rules' action: `deny`, `warn` or `off` (the default).
    #[serde(default)]
    pub starter: Option<Text>,
    #[serde(default)]
    pub rules: Vec<RawPolicyRule>,
}

/// A CEL rule; without `expression`, a change to the starter rule of that name (its action,
/// or `off`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawPolicyRule {
    pub name: Text,
    #[serde(default)]
    pub action: Option<Text>,
    #[serde(default)]
    pub kinds: Vec<Text>,
    #[serde(default)]
    pub operations: Vec<Text>,
    #[serde(default)]
    pub expression: Option<Text>,
    #[serde(default)]
    pub message: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawNotifications {
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default)]
    pub subscriptions: Vec<RawSubscription>,
}

/// One of `slack`, `webhook`, `email`, `github` and `gitlab`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawTarget {
    pub name: Text,
    #[serde(default)]
    pub slack: Option<RawSlackTarget>,
    #[serde(default)]
    pub webhook: Option<RawWebhookTarget>,
    #[serde(default)]
    pub email: Option<RawEmailTarget>,
    #[serde(default)]
    pub github: Option<RawCommitStatusTarget>,
    #[serde(default)]
    pub gitlab: Option<RawCommitStatusTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawEmailTarget {
    pub host: Text,
    #[serde(default)]
    pub port: Option<u16>,
    pub from: Text,
    pub to: Vec<Text>,
    #[serde(default)]
    pub username: Option<Text>,
    #[serde(default)]
    pub password: Option<RawSecretRef>,
    #[serde(default)]
    pub ca_file: Option<Text>,
}

/// A commit status on GitHub or GitLab: the API's base URL (defaults to the public service),
/// a token and the status's name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawCommitStatusTarget {
    #[serde(default, rename = "apiURL")]
    pub api_url: Option<Text>,
    pub token: RawSecretRef,
    #[serde(default)]
    pub context: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSlackTarget {
    /// The incoming webhook's URL holds its token: a secret.
    pub url: RawSecretRef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhookTarget {
    pub url: Text,
    #[serde(default)]
    pub secret: Option<RawSecretRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSubscription {
    #[serde(default)]
    pub applications: Vec<Text>,
    #[serde(default)]
    pub on: Vec<Text>,
    pub targets: Vec<Text>,
    #[serde(default)]
    pub template: Option<Text>,
}

/// Each receiver's secret (a file or an environment variable).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhooks {
    #[serde(default)]
    pub github: Option<RawSecretRef>,
    #[serde(default)]
    pub gitlab: Option<RawSecretRef>,
    #[serde(default)]
    pub gitea: Option<RawSecretRef>,
    #[serde(default)]
    pub bitbucket: Option<RawSecretRef>,
    #[serde(default)]
    pub generic: Option<RawSecretRef>,
}

/// What else is sensitive besides Secret values.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRedaction {
    #[serde(default)]
    pub annotations: Vec<Text>,
    #[serde(default)]
    pub fields: Vec<RawSensitiveField>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSensitiveField {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: Text,
    pub json_pointers: Vec<Text>,
}

/// Sizes are whole numbers of bytes or with a binary suffix (`16Mi`, `1Gi`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default)]
    pub max_files: Option<Text>,
    #[serde(default)]
    pub max_repository_bytes: Option<Text>,
    #[serde(default)]
    pub max_file_bytes: Option<Text>,
    #[serde(default)]
    pub max_documents: Option<Text>,
    #[serde(default)]
    pub render_timeout: Option<Text>,
}

/// Tenancy guards (Argo CD's AppProject). Omitted lists mean "any", except the cluster-scoped
/// whitelist, whose omission allows no cluster-scoped kind at all.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawProject {
    pub name: Text,
    #[serde(default)]
    pub source_repos: Option<Vec<Text>>,
    #[serde(default)]
    pub destinations: Option<Vec<RawProjectDestination>>,
    #[serde(default)]
    pub cluster_resource_whitelist: Vec<RawGroupKind>,
    #[serde(default)]
    pub namespace_resource_blacklist: Vec<RawGroupKind>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawProjectDestination {
    pub cluster: Text,
    pub namespace: Text,
}

/// `group` is required: defaulting it to the core group would make `{kind: Role}` in a
/// blacklist refuse nothing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawGroupKind {
    pub group: Text,
    pub kind: Text,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawCluster {
    pub name: Text,
    #[serde(default)]
    pub kubeconfig: Option<Text>,
    #[serde(default)]
    pub context: Option<Text>,
    #[serde(default)]
    pub in_cluster: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRepository {
    /// Credentials apply to every repository URL starting with this.
    pub url: Text,
    #[serde(default)]
    pub username: Option<Text>,
    #[serde(default)]
    pub password: Option<RawSecretRef>,
    #[serde(default)]
    pub ssh_private_key: Option<RawSecretRef>,
    #[serde(default)]
    pub known_hosts: Option<RawSecretRef>,
    #[serde(default)]
    pub verify: Option<RawVerify>,
}

/// Trusted commit signers: public keys, from a file or an environment variable.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawVerify {
    #[serde(default)]
    pub mode: Option<Text>,
    #[serde(default)]
    pub ssh: Option<RawSecretRef>,
    #[serde(default)]
    pub pgp: Option<RawSecretRef>,
}

/// A secret is never written inline: it is read from a file or an environment variable.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum RawSecretRef {
    File(Text),
    Env(Text),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawApplication {
    pub api_version: Text,
    pub kind: Text,
    pub metadata: RawMetadata,
    pub spec: RawApplicationSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawMetadata {
    pub name: Text,
    /// Accepted so Kubernetes-style objects parse; standalone driftless does not use it.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted for Kubernetes compatibility, unused in standalone mode"
    )]
    pub namespace: Option<Text>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "accepted for Kubernetes compatibility, unused in standalone mode"
    )]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawApplicationSpec {
    pub source: RawSource,
    pub destination: RawDestination,
    #[serde(default)]
    pub sync_policy: RawSyncPolicy,
    #[serde(default)]
    pub ignore_differences: Vec<RawIgnoreDifference>,
    #[serde(default)]
    pub decryption: Option<RawDecryption>,
    #[serde(default)]
    pub project: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDecryption {
    pub keys: Vec<RawKeySource>,
}

/// A decryption key, never inline: a file, an environment variable or a Kubernetes Secret.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum RawKeySource {
    File(Text),
    Env(Text),
    Secret(RawSecretKeyRef),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSecretKeyRef {
    pub name: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
    #[serde(default)]
    pub key: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSource {
    #[serde(rename = "repoURL")]
    pub repo_url: Text,
    #[serde(default)]
    pub revision: Option<Text>,
    #[serde(default)]
    pub path: Option<Text>,
    #[serde(default)]
    pub directory: Option<RawDirectory>,
    #[serde(default)]
    pub kustomize: Option<RawKustomize>,
    #[serde(default)]
    pub helm: Option<RawHelm>,
    #[serde(default)]
    pub verify: Option<RawVerify>,
    #[serde(default)]
    pub post_build: Option<RawPostBuild>,
}

/// Flux's `spec.postBuild`, under the source.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawPostBuild {
    #[serde(default)]
    pub substitute: BTreeMap<String, Text>,
    #[serde(default)]
    pub substitute_from: Vec<RawSubstituteReference>,
    /// `WithVariables` (the default) or `Always`.
    #[serde(default)]
    pub substitute_strategy: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSubstituteReference {
    pub kind: Text,
    pub name: Text,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawHelm {
    /// A chart from a chart repository instead of the one at the source's path.
    #[serde(default)]
    pub chart: Option<RawHelmChart>,
    #[serde(default)]
    pub release_name: Option<Text>,
    #[serde(default)]
    pub namespace: Option<Text>,
    #[serde(default)]
    pub value_files: Vec<Text>,
    /// A mapping, or YAML text holding one (Argo CD's `values: |`).
    #[serde(default)]
    pub values: Option<serde_json::Value>,
    #[serde(default)]
    pub parameters: Vec<RawHelmParameter>,
    #[serde(default)]
    pub kube_version: Option<Text>,
    #[serde(default)]
    pub api_versions: Vec<Text>,
    #[serde(default)]
    pub skip_crds: bool,
    /// Accepted for Argo CD compatibility; CRDs are included unless `skipCrds`.
    #[serde(default, rename = "includeCRDs")]
    pub include_crds: Option<bool>,
}

/// `repository` is `https://…` (an `index.yaml`) or `oci://host/path`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawHelmChart {
    pub repository: Text,
    pub name: Text,
    #[serde(default)]
    pub version: Option<Text>,
    #[serde(default)]
    pub plain_http: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawHelmParameter {
    pub name: Text,
    pub value: Text,
    #[serde(default)]
    pub force_string: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDirectory {
    #[serde(default)]
    pub recurse: bool,
    #[serde(default)]
    pub include: Option<Text>,
    #[serde(default)]
    pub exclude: Option<Text>,
    #[serde(default)]
    pub jsonnet: Option<RawJsonnet>,
}

/// Argo CD's `directory.jsonnet`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawJsonnet {
    #[serde(default)]
    pub ext_vars: Vec<RawJsonnetVariable>,
    #[serde(default)]
    pub tlas: Vec<RawJsonnetVariable>,
    #[serde(default)]
    pub libs: Vec<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawJsonnetVariable {
    pub name: Text,
    pub value: Text,
    #[serde(default)]
    pub code: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawKustomize {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDestination {
    pub cluster: Text,
    #[serde(default)]
    pub namespace: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSyncPolicy {
    #[serde(default)]
    pub automated: Option<RawAutomated>,
    #[serde(default)]
    pub interval: Option<Text>,
    #[serde(default)]
    pub retry: Option<RawRetry>,
    #[serde(default)]
    pub sync_options: Vec<Text>,
    /// An empty render is intended, for manual syncs too (`automated.allowEmpty` covers
    /// automated ones, as in Argo CD).
    #[serde(default)]
    pub allow_empty: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawAutomated {
    #[serde(default)]
    pub prune: bool,
    #[serde(default)]
    pub self_heal: bool,
    #[serde(default)]
    pub allow_empty: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRetry {
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub backoff: Option<RawBackoff>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawBackoff {
    #[serde(default)]
    pub duration: Option<Text>,
    #[serde(default)]
    pub factor: Option<u32>,
    #[serde(default)]
    pub max_duration: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawIgnoreDifference {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: Text,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub json_pointers: Vec<Text>,
    #[serde(default)]
    pub managed_fields_managers: Vec<String>,
}
