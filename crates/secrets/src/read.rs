//! Configured secrets read from where the configuration says they are.

use std::path::PathBuf;

use driftless_core::application::SecretSource;

/// Returned by [`read_secret`]. Names the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum ReadSecretError {
    #[error("cannot read {what} from file {}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: environment variable {name} is not set")]
    Env { what: &'static str, name: String },
}

/// Reads a configured secret (a password, a key, a webhook URL); `what` says what it is for, in
/// errors.
pub fn read_secret(source: &SecretSource, what: &'static str) -> Result<String, ReadSecretError> {
    match source {
        SecretSource::File(path) => std::fs::read_to_string(path).map_err(|source| ReadSecretError::File {
            what,
            path: path.clone(),
            source,
        }),
        SecretSource::Env(name) => std::env::var(name).map_err(|_| ReadSecretError::Env {
            what,
            name: name.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_read_and_errors_name_its_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret-value\n").expect("write");
        assert_eq!(
            read_secret(&SecretSource::File(file), "token").expect("read"),
            "s3cret-value\n"
        );
        let missing = dir.path().join("missing");
        let err = read_secret(&SecretSource::File(missing.clone()), "webhook secret").expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!("cannot read webhook secret from file {}", missing.display())
        );
        let err = read_secret(
            &SecretSource::Env("DRIFTLESS_TEST_UNSET_VARIABLE_5678".to_owned()),
            "registry password",
        )
        .expect_err("unset");
        assert_eq!(
            err.to_string(),
            "registry password: environment variable DRIFTLESS_TEST_UNSET_VARIABLE_5678 is not set"
        );
    }
}
