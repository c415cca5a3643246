//! Repository credentials, matched by URL prefix and handed to one git process at a time.

use std::fmt::Write as _;

use driftless_core::application::RepositoryCredentials;
use driftless_secrets::{ReadSecretError, read_secret};
use tempfile::NamedTempFile;

/// Returned when configured credentials cannot be read or handed to git. Names the source, never
/// the value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Read(#[from] ReadSecretError),
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
/// environment of this one git process, so the secret never appears on a command line. It
/// answers only when git asks for the repository's own scheme and host[:port]: git follows a
/// redirect of its first request to another host and asks the helper again for that host, which
/// must get nothing.
const CREDENTIAL_HELPER: &str = "credential.helper=!f() { test \"$1\" = get || exit 0; p=; h=; \
     while IFS= read -r l && test -n \"$l\"; do case \"$l\" in protocol=*) p=${l#protocol=};; \
     host=*) h=${l#host=};; esac; done; \
     test \"$p\" = \"$DRIFTLESS_GIT_PROTOCOL\" && test \"$h\" = \"$DRIFTLESS_GIT_HOST\" || exit 0; \
     echo \"username=${DRIFTLESS_GIT_USERNAME}\"; echo \"password=${DRIFTLESS_GIT_PASSWORD}\"; }; f";

/// The `protocol` and `host` git sends its credential helper for `url` (userinfo already taken
/// out): the scheme in lower case and the authority as written (host[:port]).
fn credential_target(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    Some((scheme.to_ascii_lowercase(), authority.to_owned()))
}

/// Credentials written in a repository URL (`https://user:token@host/…`), percent-decoded.
pub(crate) struct Userinfo {
    username: String,
    password: Option<String>,
}

/// The URL git is given, and the credentials taken out of it. Git writes the URL it fetches into
/// the mirror's `config` and `FETCH_HEAD`, so an HTTP(S) URL loses its userinfo (handed to the
/// credential helper instead: a token is often the user name alone); other schemes keep the
/// user name (ssh needs it) and lose any password, which they cannot use anyway.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<Userinfo>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let (userinfo, host_and_path) = (&rest[..at], &rest[at + 1..]);
    let (username, password) = match userinfo.split_once(':') {
        Some((username, password)) => (username, Some(password)),
        None => (userinfo, None),
    };
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        let userinfo = Userinfo {
            username: percent_decode(username),
            password: password.map(percent_decode),
        };
        (format!("{scheme}://{host_and_path}"), Some(userinfo))
    } else if password.is_some() {
        (format!("{scheme}://{username}@{host_and_path}"), None)
    } else {
        (url.to_owned(), None)
    }
}

/// `%XX` escapes decoded as git decodes a URL's userinfo; anything malformed is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `credentials` are the configured ones for the URL; `from_url` what [`split_userinfo`] took out
/// of it, which wins as it did when git read it from the URL (a configured password still
/// completes a URL that names only the user).
pub(crate) fn prepare(
    git_url: &str,
    credentials: Option<&RepositoryCredentials>,
    from_url: Option<Userinfo>,
) -> Result<Prepared, CredentialsError> {
    let mut prepared = Prepared::default();
    // Host keys are always checked; without configured known_hosts, the user's apply.
    let mut ssh = String::from("ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes");
    let configured_password = credentials
        .and_then(|c| c.password.as_ref())
        .map(|source| read_secret(source, "repository password"))
        .transpose()?;
    let username_and_password = match from_url {
        Some(Userinfo { username, password }) => {
            Some((username, password.or(configured_password).unwrap_or_default()))
        }
        None => configured_password.map(|password| {
            let username = credentials
                .and_then(|c| c.username.clone())
                .unwrap_or_else(|| "git".to_owned());
            (username, password)
        }),
    };
    if let Some((username, password)) = username_and_password
        && let Some((protocol, host)) = credential_target(git_url)
    {
        prepared.config.push(CREDENTIAL_HELPER.to_owned());
        prepared.env.push(("DRIFTLESS_GIT_PROTOCOL".to_owned(), protocol));
        prepared.env.push(("DRIFTLESS_GIT_HOST".to_owned(), host));
        prepared.env.push(("DRIFTLESS_GIT_USERNAME".to_owned(), username));
        prepared.env.push((
            "DRIFTLESS_GIT_PASSWORD".to_owned(),
            password.trim_end().to_owned(),
        ));
    }
    if let Some(credentials) = credentials {
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
    use driftless_core::application::SecretSource;

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
        let err = prepare("https://git.example.com/r.git", Some(&credentials), None)
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
        let prepared = prepare("https://git.example.com/r.git", Some(&credentials), None).expect("prepared");
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

    #[test]
    fn credentials_in_a_url_leave_it_for_the_credential_helper() {
        let (url, userinfo) = split_userinfo("https://bot:t%40ken@git.example.com:8443/org/r.git");
        assert_eq!(url, "https://git.example.com:8443/org/r.git");
        let userinfo = userinfo.expect("taken out");
        assert_eq!(
            (userinfo.username.as_str(), userinfo.password.as_deref()),
            ("bot", Some("t@ken"))
        );
        let (url, userinfo) = split_userinfo("http://ghp_token@h/r");
        assert_eq!(url, "http://h/r");
        assert_eq!(userinfo.expect("taken out").password, None);
        assert_eq!(
            split_userinfo("ssh://git:secret@h/r").0,
            "ssh://git@h/r",
            "ssh keeps its user name, never a password"
        );
        assert_eq!(split_userinfo("ssh://git@h/r").0, "ssh://git@h/r");
        assert_eq!(split_userinfo("file:///srv/r@x").0, "file:///srv/r@x");
        assert_eq!(split_userinfo("https://h/r@x").0, "https://h/r@x");

        let prepared =
            prepare("https://h/r", None, split_userinfo("https://bot:tok@h/r").1).expect("prepared");
        assert!(prepared.config.iter().all(|c| !c.contains("tok")));
        assert!(
            prepared
                .env
                .contains(&("DRIFTLESS_GIT_PASSWORD".to_owned(), "tok".to_owned()))
        );
    }
}
