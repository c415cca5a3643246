//! Bounded, adaptive concurrency for requests to one API server: additive increase while latency
//! stays near the best seen, multiplicative decrease when it rises or the server pushes back
//! (429, 5xx, unreachable), with retries of the pushed-back requests after a backoff.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

const START: f64 = 4.0;
const MAX: f64 = 32.0;
const RETRIES: u32 = 3;
/// Latency above this multiple of the best seen counts as the server slowing down.
const SLOW: f64 = 3.0;

/// The limit's state; pure arithmetic, unit-tested.
#[derive(Debug, Clone)]
pub(crate) struct AdaptiveLimit {
    limit: f64,
    best: Option<Duration>,
}

impl Default for AdaptiveLimit {
    fn default() -> Self {
        Self {
            limit: START,
            best: None,
        }
    }
}

impl AdaptiveLimit {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn current(&self) -> usize {
        self.limit.floor().max(1.0) as usize
    }

    pub(crate) fn succeeded(&mut self, latency: Duration) {
        let best = *self.best.get_or_insert(latency);
        if latency < best {
            self.best = Some(latency);
        }
        if latency.as_secs_f64() > best.as_secs_f64() * SLOW && latency > Duration::from_millis(20) {
            self.limit = (self.limit * 0.75).max(1.0);
        } else {
            // About one more per round of `limit` completions.
            self.limit = (self.limit + 1.0 / self.limit).min(MAX);
        }
    }

    pub(crate) fn pushed_back(&mut self) {
        self.limit = (self.limit / 2.0).max(1.0);
    }
}

/// Runs `call` for every item with adaptive concurrency; a result for which `retry` says yes is
/// retried (up to three times, with exponential backoff) after the limit is lowered. Results come
/// back in the items' order (not the answers'), with each item's index, so what callers report
/// is the same from run to run.
pub(crate) async fn run_adaptive<T, R, F, Fut>(
    items: &[T],
    limit: &mut AdaptiveLimit,
    call: F,
    retry: impl Fn(&R) -> bool,
) -> Vec<(usize, R)>
where
    F: Fn(&T) -> Fut,
    Fut: Future<Output = R>,
{
    let mut queue: std::collections::VecDeque<(usize, u32)> = (0..items.len()).map(|i| (i, 0)).collect();
    let mut running = FuturesUnordered::new();
    let mut results = Vec::with_capacity(items.len());
    loop {
        while running.len() < limit.current() {
            let Some((index, attempt)) = queue.pop_front() else {
                break;
            };
            let future = call(&items[index]);
            running.push(async move {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(attempt - 1)).await;
                }
                let started = Instant::now();
                let result = future.await;
                (index, attempt, started.elapsed(), result)
            });
        }
        let Some((index, attempt, latency, result)) = running.next().await else {
            break;
        };
        if retry(&result) {
            limit.pushed_back();
            if attempt < RETRIES {
                queue.push_back((index, attempt + 1));
                continue;
            }
        } else {
            limit.succeeded(latency);
        }
        results.push((index, result));
    }
    results.sort_unstable_by_key(|(index, _)| *index);
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_while_fast_and_shrinks_when_slow_or_pushed_back() {
        let mut limit = AdaptiveLimit::default();
        for _ in 0..200 {
            limit.succeeded(Duration::from_millis(5));
        }
        let grown = limit.current();
        assert!(grown > 10, "grows on fast answers: {grown}");
        assert!(grown <= 32, "never above the maximum: {grown}");
        limit.succeeded(Duration::from_millis(100));
        assert!(limit.current() < grown, "shrinks when latency rises");
        for _ in 0..10 {
            limit.pushed_back();
        }
        assert_eq!(limit.current(), 1, "never below one");
    }

    #[tokio::test]
    async fn retries_what_the_server_pushed_back_and_returns_every_item() {
        let attempts = std::sync::Mutex::new(std::collections::HashMap::<usize, u32>::new());
        let items: Vec<usize> = (0..20).collect();
        let mut limit = AdaptiveLimit::default();
        let results = run_adaptive(
            &items,
            &mut limit,
            |&item| {
                let count = {
                    let mut attempts = attempts.lock().expect("lock");
                    let count = attempts.entry(item).or_default();
                    *count += 1;
                    *count
                };
                // Item 3 is refused twice ("429"), then accepted.
                async move {
                    if item == 3 && count <= 2 {
                        Err(429)
                    } else {
                        Ok(item)
                    }
                }
            },
            |result: &Result<usize, u16>| result.is_err(),
        )
        .await;
        assert_eq!(
            results.iter().map(|(index, _)| *index).collect::<Vec<_>>(),
            items,
            "in the items' order, though item 3 answered last"
        );
        assert!(results.iter().all(|(index, result)| result == &Ok(*index)));
        assert_eq!(attempts.lock().expect("lock")[&3], 3);
    }
}
