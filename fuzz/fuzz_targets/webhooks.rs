//! Push webhook payloads (GitHub, GitLab, Gitea/Forgejo, Bitbucket, our generic one) never panic
//! the parser, whatever the body: every input is read as each provider's push. A push it accepts
//! always names a repository URL.
#![no_main]

use driftless_server::webhooks::parse_push_payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for provider in ["github", "gitlab", "gitea", "bitbucket", "generic"] {
        let parsed = parse_push_payload(provider, data).expect("a known provider");
        if let Ok(Some(push)) = parsed {
            assert!(!push.urls.is_empty(), "{provider}: a push without a repository URL");
        }
    }
});
