//! Push webhook payloads (GitHub, GitLab, Gitea/Forgejo, Bitbucket, our generic one) never panic
//! the parser, whatever the body: every input is read as each provider's push. A push it accepts
//! always names a repository URL.
#![no_main]

use driftless_core::webhooks::{Provider, parse_push};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["github", "gitlab", "gitea", "bitbucket", "generic"] {
        let provider = Provider::parse(name).expect("a known provider");
        if let Ok(Some(push)) = parse_push(provider, Some(provider.push_event()), data) {
            assert!(!push.urls.is_empty(), "{name}: a push without a repository URL");
        }
    }
});
