//! driftless's handling of secrets, in one place every crate may use.
//!
//! - [`read_secret`]: the value of a configured secret (a file or an environment variable, as
//!   `driftless_core::application::SecretSource` says where); its error names the source, never
//!   the value.
//! - [`scrub_url`]: credentials written in a URL (`user:password@`) removed from any text, before
//!   it reaches an error, a log or an answer.
//! - [`is_loopback`]: whether a host is this machine, the only place a token may go over plain
//!   HTTP.
//!
//! Who may receive a secret (git's environment, a chart repository, a forge's API) is decided by
//! the crate that sends it.

mod loopback;
mod read;
mod scrub;

pub use loopback::is_loopback;
pub use read::{ReadSecretError, read_secret};
pub use scrub::scrub_url;
