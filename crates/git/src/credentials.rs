//! Repository credentials, matched by URL prefix and handed to one git process at a time.

use std::fmt::Write as _;
use std::path::PathBuf;

use driftless_core::application::{RepositoryCredentials, SecretSource};
use tempfile::NamedTempFile;

/// Returned when configured credentials cannot be read. Names the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {what} from file {}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: environment variable {name} is not set")]
    Env { what: &'static str, name: String },
    #[error("cannot write a private temporary file for {what}")]
    TempFile {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What one git process needs to authenticate: environment variables and the temporary files they
/// point at (deleted when this is dropped).
#[derive(Default)]
pub(crate) struct Prepared {
    pub env: Vec<(String, String)>,
    pub config: Vec<String>,
    /// Key and known_hosts files the environment points at; deleted on drop.
    temp_files: Vec<NamedTempFile>,
}

/// Reads a configured secret (a password, a key); errors name the source, never the value.
pub fn read_secret(source: &SecretSource, what: &'static str) -> Result<String, CredentialsError> {
    match source {
        SecretSource::File(path) => std::fs::read_to_string(path).map_err(|source| CredentialsError::File {
            what,
            path: path.clone(),
            source,
        }),
        SecretSource::Env(name) => std::env::var(name).map_err(|_| CredentialsError::Env {
            what,
            name: name.clone(),
        }),
    }
}

fn private_file(contents: &str, what: &'static str) -> Result<NamedTempFile, CredentialsError> {
    use std::io::Write as _;
    // tempfile creates files readable by the owner only (0600), as ssh requires for keys.
    let mut file = NamedTempFile::new().map_err(|source| CredentialsError::TempFile { what, source })?;
    file.write_all(contents.as_bytes())
        .map_err(|source| CredentialsError::TempFile { what, source })?;
    if !contents.ends_with('\n') {
        file.write_all(b"\n")
            .map_err(|source| CredentialsError::TempFile { what, source })?;
    }
    Ok(file)
}

/// Single-quotes a path for the shell that git runs `GIT_SSH_COMMAND` with.
fn shell_quote(path: &std::path::Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// The HTTPS credential helper: a shell function that answers git's `get` with values from the
/// environment of this one git process, so the secret never appears on a command line.
const CREDENTIAL_HELPER: &str = "credential.helper=!f() { test \"$1\" = get || exit 0; \
     echo \"username=${DRIFTLESS_GIT_USERNAME}\"; echo \"password=${DRIFTLESS_GIT_PASSWORD}\"; }; f";

pub(crate) fn prepare(credentials: Option<&RepositoryCredentials>) -> Result<Prepared, CredentialsError> {
    let mut prepared = Prepared::default();
    // Host keys are always checked; without configured known_hosts, the user's apply.
    let mut ssh = String::from("ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes");
    if let Some(credentials) = credentials {
        if let Some(password) = &credentials.password {
            let password = read_secret(password, "repository password")?;
            let username = credentials.username.clone().unwrap_or_else(|| "git".to_owned());
            prepared.config.push(CREDENTIAL_HELPER.to_owned());
            prepared.env.push(("DRIFTLESS_GIT_USERNAME".to_owned(), username));
            prepared.env.push((
                "DRIFTLESS_GIT_PASSWORD".to_owned(),
                password.trim_end().to_owned(),
            ));
        }
        if let Some(key) = &credentials.ssh_private_key {
            let file = private_file(&read_secret(key, "ssh private key")?, "ssh private key")?;
            let _ = write!(ssh, " -o IdentitiesOnly=yes -i {}", shell_quote(file.path()));
            prepared.temp_files.push(file);
        }
        if let Some(known_hosts) = &credentials.known_hosts {
            let file = private_file(&read_secret(known_hosts, "known_hosts")?, "known_hosts")?;
            let _ = write!(ssh, " -o UserKnownHostsFile={}", shell_quote(file.path()));
            prepared.temp_files.push(file);
        }
    }
    prepared.env.push(("GIT_SSH_COMMAND".to_owned(), ssh));
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(prefix: &str) -> RepositoryCredentials {
        RepositoryCredentials {
            url_prefix: prefix.to_owned(),
            username: None,
            password: None,
            ssh_private_key: None,
            known_hosts: None,
        }
    }

    #[test]
    fn a_missing_secret_names_its_source_not_a_value() {
        let mut credentials = creds("https://h/");
        credentials.password = Some(SecretSource::Env("DRIFTLESS_TEST_UNSET_VARIABLE_1234".to_owned()));
        let err = prepare(Some(&credentials))
            .err()
            .expect("the variable is not set");
        assert_eq!(
            err.to_string(),
            "repository password: environment variable DRIFTLESS_TEST_UNSET_VARIABLE_1234 is not set"
        );
    }

    #[test]
    fn secrets_go_to_the_environment_and_private_files_never_the_command_line() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().expect("tempdir");
        let password = dir.path().join("token");
        std::fs::write(&password, "s3cret-token\n").expect("write");
        let key = dir.path().join("id");
        std::fs::write(
            &key,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
        )
        .expect("write");
        let mut credentials = creds("https://h/");
        credentials.password = Some(SecretSource::File(password));
        credentials.ssh_private_key = Some(SecretSource::File(key));
        let prepared = prepare(Some(&credentials)).expect("prepared");
        assert!(
            prepared.config.iter().all(|c| !c.contains("s3cret")),
            "no secret in git -c arguments"
        );
        assert!(
            prepared
                .env
                .contains(&("DRIFTLESS_GIT_PASSWORD".to_owned(), "s3cret-token".to_owned()))
        );
        let ssh = &prepared
            .env
            .iter()
            .find(|(k, _)| k == "GIT_SSH_COMMAND")
            .expect("ssh command")
            .1;
        assert!(
            ssh.contains("StrictHostKeyChecking=yes") && ssh.contains("-i '"),
            "{ssh}"
        );
        let key_file = &prepared.temp_files[0];
        assert_eq!(
            key_file.path().metadata().expect("stat").permissions().mode() & 0o077,
            0,
            "key file is private"
        );
    }
}
