//! The process's Prometheus metrics, served as `/metrics` by `driftless-server`. Labels hold only
//! bounded values (results, states) — never application names — so the page can be scraped
//! without a token and says nothing about which applications exist. Metrics another crate owns
//! (the server's requests) join the same registry through [`Metrics::extension`], so one scrape
//! shows every metric of the process.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `succeeded`, `failed`, `interrupted`, or `error` (failed before anything was applied).
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub sync: String,
    pub health: String,
}

type Histograms = Family<ResultLabels, Histogram, fn() -> Histogram>;

fn seconds_buckets() -> Histogram {
    // 10 ms … ~40 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 13))
}

pub struct Metrics {
    registry: Mutex<Registry>,
    /// What [`Metrics::extension`] registered, by type: registered once, however often asked.
    extensions: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    pub syncs: Family<ResultLabels, Counter>,
    pub sync_seconds: Histograms,
    pub fetch_seconds: Histogram,
    pub fetch_errors: Counter,
    pub drift_events: Counter,
    pub queue_depth: Gauge,
    /// Set from the controller's statuses when scraped.
    pub applications: Family<StateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Self {
            registry: Mutex::new(Registry::with_prefix("driftless")),
            extensions: Mutex::new(HashMap::new()),
            syncs: Family::default(),
            sync_seconds: Family::new_with_constructor(seconds_buckets),
            fetch_seconds: seconds_buckets(),
            fetch_errors: Counter::default(),
            drift_events: Counter::default(),
            queue_depth: Gauge::default(),
            applications: Family::default(),
        };
        {
            let mut registry = metrics
                .registry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            registry.register("syncs", "Syncs by result", metrics.syncs.clone());
            registry.register(
                "sync_duration_seconds",
                "How long syncs took, by result",
                metrics.sync_seconds.clone(),
            );
            registry.register(
                "git_fetch_duration_seconds",
                "How long Git fetches (and resolving the revision) took",
                metrics.fetch_seconds.clone(),
            );
            registry.register(
                "git_fetch_errors",
                "Git fetches that failed",
                metrics.fetch_errors.clone(),
            );
            registry.register(
                "drift_events",
                "Drift detected in live objects",
                metrics.drift_events.clone(),
            );
            registry.register(
                "reconcile_queue_depth",
                "Applications waiting for a reconcile",
                metrics.queue_depth.clone(),
            );
            registry.register(
                "applications",
                "Applications by sync and health state",
                metrics.applications.clone(),
            );
        }
        metrics
    }
}

impl Metrics {
    pub(crate) fn record_sync(&self, result: &str, seconds: f64) {
        let labels = ResultLabels {
            result: result.to_owned(),
        };
        self.syncs.get_or_create(&labels).inc();
        self.sync_seconds.get_or_create(&labels).observe(seconds);
    }

    /// The metrics of type `T` that another crate keeps in this registry: made and registered by
    /// `register` the first time they are asked for, the same ones (handles sharing their values)
    /// every time after — so two servers of one engine count into one family, registered once.
    pub fn extension<T: Clone + Send + Sync + 'static>(
        &self,
        register: impl FnOnce(&mut Registry) -> T,
    ) -> T {
        let mut extensions = self
            .extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = extensions
            .get(&TypeId::of::<T>())
            .and_then(|known| known.downcast_ref::<T>())
        {
            return known.clone();
        }
        let made = register(
            &mut self
                .registry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        extensions.insert(TypeId::of::<T>(), Box::new(made.clone()));
        made
    }

    /// The OpenMetrics text of every metric.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_is_registered_once_and_encoded_with_the_rest() {
        let metrics = Metrics::default();
        let register = |registry: &mut Registry| {
            let things = Counter::<u64>::default();
            registry.register("things", "Things counted elsewhere", things.clone());
            things
        };
        metrics.extension(register).inc();
        metrics.extension(register).inc();
        let text = metrics.encode();
        assert_eq!(
            text.matches("# TYPE driftless_things counter").count(),
            1,
            "{text}"
        );
        assert!(text.contains("\ndriftless_things_total 2\n"), "{text}");
        assert!(text.contains("# TYPE driftless_drift_events counter"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
