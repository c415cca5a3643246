//! Schema validation and the starter policy rules never panic, loop or exhaust the stack on any
//! object a hostile repository could render: validated against the bundled schemas (as its kind,
//! or as a CRD's custom kind when it declares one), checked as a creation, update and deletion.
#![no_main]

use std::sync::OnceLock;

use driftless_core::schema::Schemas;
use driftless_policy::{Action, Admission, Operation, Policies, starter_rules};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| Policies::new(starter_rules(Action::Deny)).expect("the starter rules compile"))
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(Schemas::bundled)
}

fuzz_target!(|data: &[u8]| {
    let Ok(object) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = schemas().validate(&object);
    if object["kind"] == "CustomResourceDefinition" {
        let mut with_crd = schemas().clone();
        if with_crd.add_crd(&object).is_ok() {
            let _ = with_crd.validate(&object);
        }
    }
    for (operation, new, old) in [
        (Operation::Create, Some(&object), None),
        (Operation::Update, Some(&object), Some(&object)),
        (Operation::Delete, None, Some(&object)),
    ] {
        let _ = policies().check(&Admission {
            operation,
            object: new,
            old_object: old,
        });
    }
});
