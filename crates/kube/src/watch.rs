//! Watching the objects of one kind that carry a label: kube-runtime's watcher, its events
//! turned into plain JSON so that callers keep no Kubernetes client types.

use futures::StreamExt as _;
use futures::stream::BoxStream;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;

/// What a watch tells, in order: a (re)list — [`WatchEvent::Listing`], one
/// [`WatchEvent::Listed`] per object, [`WatchEvent::ListDone`] — then changes as they happen.
/// After [`WatchEvent::Failed`] the stream ends; a new watch starts with a new list.
#[derive(Debug)]
pub enum WatchEvent {
    Listing,
    Listed(Value),
    ListDone,
    Applied(Value),
    /// Deleted, or no longer labelled.
    Deleted(Value),
    Failed(String),
}

/// Watches every object of `resource` (in every namespace) labelled `label` on `client`'s
/// cluster.
pub fn watch_labelled(
    client: &kube::Client,
    resource: &ApiResource,
    label: &str,
) -> BoxStream<'static, WatchEvent> {
    let api = Api::<DynamicObject>::all_with(client.clone(), resource);
    let config = watcher::Config::default().labels(label);
    let json = |object: DynamicObject| serde_json::to_value(object).unwrap_or(Value::Null);
    let events = watcher::watcher(api, config).map(move |event| match event {
        Ok(Event::Init) => WatchEvent::Listing,
        Ok(Event::InitApply(object)) => WatchEvent::Listed(json(object)),
        Ok(Event::InitDone) => WatchEvent::ListDone,
        Ok(Event::Apply(object)) => WatchEvent::Applied(json(object)),
        Ok(Event::Delete(object)) => WatchEvent::Deleted(json(object)),
        Err(err) => WatchEvent::Failed(err.to_string()),
    });
    // The first failure ends the stream: the caller restarts with a fresh list.
    events
        .scan(false, |failed, event| {
            if *failed {
                return futures::future::ready(None);
            }
            *failed = matches!(event, WatchEvent::Failed(_));
            futures::future::ready(Some(event))
        })
        .boxed()
}
