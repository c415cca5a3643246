//! The diff normaliser and redaction never panic on any pair of JSON objects and ignore rules.
#![no_main]

use driftless_core::ObjectRef;
use driftless_core::application::IgnoreDifference;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // Three JSON values, one per line: live, desired, and ignore pointers.
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let parse = |line: Option<&str>| line.and_then(|l| serde_json::from_str::<Value>(l).ok());
    let (Some(live), Some(desired)) = (parse(lines.next()), parse(lines.next())) else {
        return;
    };
    let pointers = parse(lines.next())
        .and_then(|p| p.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    let rules = vec![IgnoreDifference {
        group: None,
        kind: "Secret".into(),
        name: None,
        namespace: None,
        json_pointers: pointers,
        managed_fields_managers: vec!["kubectl".into()],
    }];
    let reference = ObjectRef {
        group: String::new(),
        kind: "Secret".into(),
        namespace: Some("fuzz".into()),
        name: "fuzz".into(),
    };
    let sensitive = driftless_core::application::SensitiveData {
        annotations: vec!["example.com/token".into()],
        fields: vec![driftless_core::application::SensitiveField {
            group: None,
            kind: "Secret".into(),
            json_pointers: rules[0].json_pointers.clone(),
        }],
    };
    let redaction = driftless_core::diff::Redaction {
        salt: b"salt",
        sensitive: &sensitive,
    };
    let _ = driftless_core::diff::compare(&reference, Some(&live), &desired, &rules, &redaction);
    let _ = driftless_core::diff::compare(&reference, None, &desired, &rules, &redaction);
});
