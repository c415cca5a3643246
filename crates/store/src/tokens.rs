//! API tokens: only a SHA-256 of each secret is stored (tokens are 256 random bits, so a fast
//! hash is enough: there is nothing to guess), with its grant. The secret is shown once, when it
//! is created.

use std::fmt::Write as _;
use std::io::Read as _;

use driftless_core::access::{Grant, Role};
use rusqlite::{OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};

use crate::{Store, StoreError, sql};

/// Every token starts so, which makes a leaked one easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "dlt_";
/// Last use is recorded at most this often per token, so reads do not all become writes.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub name: String,
    pub grant: Grant,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

fn digest(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .map_err(|err| StoreError::Corrupt {
            action: "create a token",
            message: format!("no randomness from /dev/urandom: {err}"),
        })?;
    let mut secret = String::from(TOKEN_PREFIX);
    for byte in bytes {
        let _ = write!(secret, "{byte:02x}");
    }
    Ok(secret)
}

impl Store {
    /// Creates a token called `name` and returns its secret (the only time it is available).
    pub fn create_token(&self, name: &str, grant: &Grant, at: i64) -> Result<String, StoreError> {
        let secret = new_secret()?;
        let applications = serde_json::to_string(&grant.applications).unwrap_or_else(|_| "[]".into());
        let labels = serde_json::to_string(&grant.labels).unwrap_or_else(|_| "{}".into());
        let connection = self.connection();
        let exists: Option<i64> = connection
            .query_row("SELECT 1 FROM tokens WHERE name = ?1", params![name], |row| {
                row.get(0)
            })
            .optional()
            .map_err(sql("look up a token"))?;
        if exists.is_some() {
            return Err(StoreError::Exists {
                what: format!("a token named {name:?}"),
            });
        }
        connection
            .execute(
                "INSERT INTO tokens (name, hash, role, applications, labels, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, digest(&secret), grant.role.as_str(), applications, labels, at],
            )
            .map_err(sql("create a token"))?;
        Ok(secret)
    }

    /// The grant of the token whose secret this is; `None` for an unknown or revoked one.
    pub fn token_grant(&self, secret: &str, at: i64) -> Result<Option<Grant>, StoreError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = digest(secret);
        let connection = self.connection();
        let found: Option<(String, String, String)> = connection
            .query_row(
                "SELECT role, applications, labels FROM tokens WHERE hash = ?1",
                params![hash],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(sql("look up a token"))?;
        let Some((role, applications, labels)) = found else {
            return Ok(None);
        };
        connection
            .execute(
                "UPDATE tokens SET last_used_at = ?2 WHERE hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                params![hash, at, at - LAST_USED_RESOLUTION_MS],
            )
            .map_err(sql("record a token's use"))?;
        Ok(Some(grant_of("look up a token", &role, &applications, &labels)?))
    }

    /// Deletes the token; `false` when there was none of that name.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self
            .connection()
            .execute("DELETE FROM tokens WHERE name = ?1", params![name])
            .map_err(sql("revoke a token"))?;
        Ok(deleted > 0)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT name, role, applications, created_at, last_used_at, labels FROM tokens ORDER BY name",
            )
            .map_err(sql("list tokens"))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })
            .map_err(sql("list tokens"))?;
        rows.map(|row| {
            let (name, role, applications, created_at, last_used_at, labels) =
                row.map_err(sql("list tokens"))?;
            Ok(TokenRecord {
                name,
                grant: grant_of("list tokens", &role, &applications, &labels)?,
                created_at,
                last_used_at,
            })
        })
        .collect()
    }
}

fn grant_of(action: &'static str, role: &str, applications: &str, labels: &str) -> Result<Grant, StoreError> {
    Ok(Grant {
        role: Role::parse(role).ok_or_else(|| StoreError::Corrupt {
            action,
            message: format!("unknown role {role:?}"),
        })?,
        applications: crate::from_text(action, applications)?,
        labels: crate::from_text(action, labels)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_scoped_and_revocable() {
        let store = Store::open_in_memory().expect("store");
        let grant = Grant {
            role: Role::Operator,
            applications: vec!["shop-*".into()],
            labels: std::collections::BTreeMap::from([("team".to_owned(), "shop".to_owned())]),
        };
        let secret = store.create_token("ci", &grant, 1_000).expect("created");
        assert!(secret.starts_with(TOKEN_PREFIX) && secret.len() == TOKEN_PREFIX.len() + 64);
        assert!(matches!(
            store.create_token("ci", &grant, 1_000),
            Err(StoreError::Exists { .. })
        ));
        assert_eq!(
            store.token_grant(&secret, 2_000).expect("lookup"),
            Some(grant.clone())
        );
        assert_eq!(store.token_grant("dlt_guess", 2_000).expect("lookup"), None);
        assert_eq!(
            store
                .token_grant(&secret[..secret.len() - 1], 2_000)
                .expect("lookup"),
            None
        );
        let listed = store.tokens().expect("list");
        assert_eq!(
            (listed[0].name.as_str(), listed[0].last_used_at),
            ("ci", Some(2_000))
        );
        assert_eq!(listed[0].grant, grant, "labels and patterns kept");
        let stored: String = store
            .connection()
            .query_row("SELECT hash FROM tokens", [], |row| row.get(0))
            .expect("hash");
        assert!(
            !stored.contains(&secret[TOKEN_PREFIX.len()..]),
            "only a digest is stored"
        );
        assert!(store.revoke_token("ci").expect("revoke"));
        assert_eq!(store.token_grant(&secret, 3_000).expect("lookup"), None);
        assert!(!store.revoke_token("ci").expect("revoke"));
    }
}
