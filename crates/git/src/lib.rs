//! driftless's Git source.
//!
//! One bare mirror per repository URL under the data directory, shared by every application that
//! uses it; fetches are incremental and serialised per repository. Applications read their path at
//! a resolved commit straight from the object database (`ls-tree` + `cat-file --batch`) into an
//! in-memory [`driftless_files::FileTree`], so applications at different revisions never share a
//! mutable work tree.
//!
//! Every path that comes out of a tree is hostile until checked (`driftless_files::check_path`):
//! git stores trees with entries named `..` or `.git` when objects are not verified, so fetches
//! verify them (`transfer.fsckObjects`) and reads check each path again, for mirrors fetched
//! before.
//!
//! Everything runs the `git` program with a hardened invocation (see `command.rs`): an allow-list
//! of transports (no `ext::`), no hooks, no system or user configuration, no prompts, credentials
//! passed through the environment of the one process that needs them and never on a command line
//! (nor, when written in a repository URL, in the mirror's files), and every URL scrubbed of
//! credentials (`driftless_secrets::scrub_url`) before it reaches an error or a log.
//!
//! Commit signatures (SSH and OpenPGP) are verified in-process against a [`SignaturePolicy`]
//! ([`verify_commit`], [`Mirrors::verify_commits`]), never through `gpg` or `ssh-keygen`.

mod command;
mod credentials;
mod mirrors;
mod signatures;

pub use credentials::CredentialsError;
pub use mirrors::{CatFileError, CommitId, GitError, LsTreeError, Mirrors, VerifyError};
pub use signatures::{
    AllowedSignersError, PgpKeysError, SignatureError, SignaturePolicy, SignedCommit, Signer, committer_time,
    verify_commit,
};
