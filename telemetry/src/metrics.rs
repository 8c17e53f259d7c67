//! Metric registries, the lock-free histogram and bounded label values.
//!
//! Every process (and every server in a test process) builds its own [`Registry`] with
//! [`registry`], registers its metrics at start, and serves [`encode`]d text at `/metrics`
//! ([`crate::http`]). There is no global recorder: `ferry dev` runs a control plane and three
//! agents in one process, and each must report only its own numbers.
//!
//! # Pieces
//! - [`Registry`], [`Counter`], [`Gauge`], [`Family`] and [`Collector`] are prometheus-client's,
//!   re-exported so the other crates name one source.
//! - [`AtomicHistogram`]: fixed buckets, one atomic add per bucket hit, and a [`snapshot`]
//!   that reads the buckets out (prometheus-client's own histogram takes a mutex per observation
//!   and has no public read-out, which the console's percentiles need).
//! - [`LabelCap`]: a label whose values come from users (topic names) admits a bounded number of
//!   values; beyond the bound every new value shares one overflow series, so a client that
//!   creates 10 000 topics cannot make a scrape 10 000 series longer per metric.
//!
//! # Names
//! The registry prefixes every name with `ferry_`. Counters are registered without `_total`
//! (the text encoder appends it, as OpenMetrics requires); unit suffixes are part of the name
//! (`..._seconds`, `..._bytes`).
//!
//! [`snapshot`]: AtomicHistogram::snapshot

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
pub use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::TypedMetric;

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder,
    LabelValueEncoder,
};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

/// The prefix of every Ferry metric name.
pub const PREFIX: &str = "ferry";

/// The media type of [`encode`]'s output (OpenMetrics text 1.0.0, which Prometheus negotiates;
/// people with curl see the same text, ending in `# EOF`).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: from half a millisecond to 30 s (the longest a Fetch may wait).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A new, empty registry whose metric names start with [`PREFIX`].
pub fn registry() -> Registry {
    Registry::with_prefix(PREFIX)
}

/// The registry's metrics in the OpenMetrics text format, ending in `# EOF`.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .expect("writing to a String cannot fail");
    text
}

/// A histogram with fixed buckets whose observations are atomic adds (no lock), cheap to clone
/// (clones share the buckets), and readable with [`Self::snapshot`].
#[derive(Clone)]
pub struct AtomicHistogram {
    /// The buckets, shared by every clone.
    cells: Arc<HistogramCells>,
}

/// The shared state of an [`AtomicHistogram`].
struct HistogramCells {
    /// Upper bounds (inclusive), strictly increasing; the `+Inf` bucket is implicit.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative): `bounds.len()` buckets and then `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of the observations, as `f64` bits (added with a compare-and-swap loop).
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram over `bounds` (inclusive upper bounds, finite, strictly increasing).
    ///
    /// # Panics
    /// If `bounds` is not strictly increasing or holds a value that is not finite: bucket sets
    /// are constants, so that is a bug.
    pub fn new(bounds: &'static [f64]) -> Self {
        assert!(
            bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]),
            "histogram bounds must be finite and strictly increasing"
        );
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            cells: Arc::new(HistogramCells {
                bounds,
                counts,
                sum_bits: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// A histogram over [`LATENCY_BUCKETS`].
    pub fn latency() -> Self {
        Self::new(LATENCY_BUCKETS)
    }

    /// Records one observation. NaN is ignored (it belongs in no bucket and would poison the
    /// sum).
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let cells = &self.cells;
        // The first bucket whose upper bound is at least `value`, or +Inf.
        let bucket = cells.bounds.partition_point(|bound| *bound < value);
        cells.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = cells
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(elapsed.as_secs_f64());
    }

    /// The counts and sum now. Concurrent observations may land between the reads of two
    /// buckets, so a snapshot is exact only when nothing observes meanwhile; each bucket is
    /// never behind an earlier snapshot.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let cells = &self.cells;
        HistogramSnapshot {
            bounds: cells.bounds,
            counts: cells
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: f64::from_bits(cells.sum_bits.load(Ordering::Relaxed)),
        }
    }
}

impl fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicHistogram")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let snapshot = self.snapshot();
        let buckets: Vec<(f64, u64)> = snapshot
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(snapshot.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(snapshot.sum, snapshot.count(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// What an [`AtomicHistogram`] held at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// The inclusive upper bounds; the last bucket, `+Inf`, is implicit.
    pub bounds: &'static [f64],
    /// Observations per bucket, not cumulative: one per bound, then `+Inf`.
    pub counts: Vec<u64>,
    /// The sum of the observations.
    pub sum: f64,
}

impl HistogramSnapshot {
    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Cumulative counts (Prometheus' `le` buckets): observations at or below each bound,
    /// then the total.
    pub fn cumulative(&self) -> Vec<u64> {
        self.counts
            .iter()
            .scan(0u64, |total, c| {
                *total += c;
                Some(*total)
            })
            .collect()
    }
}

/// A gauge without labels whose value is read at each scrape by calling a function (a value
/// owned elsewhere: an applied offset, free disk space). Nothing is encoded while the
/// function returns `None`. Register it with [`Registry::register_collector`]; the function
/// runs on the scrape's task, so it must be quick and must not block.
pub struct GaugeFn {
    /// The name, without the registry's prefix.
    name: &'static str,
    /// The help text.
    help: &'static str,
    /// Reads the value.
    read: Box<dyn Fn() -> Option<i64> + Send + Sync>,
}

impl GaugeFn {
    /// A gauge `name` whose value is `read()` at each scrape.
    pub fn new(
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Option<i64> + Send + Sync + 'static,
    ) -> Box<Self> {
        Box::new(Self {
            name,
            help,
            read: Box::new(read),
        })
    }
}

impl fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaugeFn").field("name", &self.name).finish()
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(value) = (self.read)() else {
            return Ok(());
        };
        encoder
            .encode_descriptor(self.name, self.help, None, MetricType::Gauge)?
            .encode_gauge(&value)
    }
}

/// A family of [`AtomicHistogram`]s over [`LATENCY_BUCKETS`], one per label set.
pub type LatencyFamily<S> = Family<S, AtomicHistogram, fn() -> AtomicHistogram>;

/// An empty [`LatencyFamily`].
pub fn latency_family<S: Clone + std::hash::Hash + Eq>() -> LatencyFamily<S> {
    Family::new_with_constructor(AtomicHistogram::latency as fn() -> AtomicHistogram)
}

/// Builds the handles of one label value (the series of every family that carries the label).
type BuildHandles<H> = Box<dyn Fn(&str) -> H + Send + Sync>;
/// Removes the series of one label value from every family that carries the label.
type RetireSeries = Box<dyn Fn(&str) + Send + Sync>;

/// Bounds the values of one label (a topic name, say) that metrics carry.
///
/// The first `max` distinct values each get their own handles (`H`: the counters of every
/// family labelled with the value, cheap to clone); every further value gets the handles of
/// the overflow value (e.g. `topic="(other)"`), built when first needed. [`Self::remove`]
/// frees a value's slot and removes its series (a deleted topic), so a later value may take
/// the slot. The overflow series is never removed: what was counted there stays counted.
///
/// Lookups of admitted values take a read lock and a hash; the write lock is taken only to
/// admit a value while there is room, so a flood of new values at the bound costs readers
/// nothing.
pub struct LabelCap<H> {
    /// Most values with their own series.
    max: usize,
    /// The value that every value beyond `max` is counted under.
    overflow_value: &'static str,
    /// Handles of the admitted values.
    admitted: RwLock<HashMap<Arc<str>, H>>,
    /// Handles of the overflow value, once a value overflowed.
    overflow: OnceLock<H>,
    /// Builds a value's handles.
    build: BuildHandles<H>,
    /// Removes a value's series.
    retire: RetireSeries,
}

impl<H: Clone> LabelCap<H> {
    /// A cap of `max` values, counting the rest under `overflow_value`; `build` creates the
    /// series of a value and returns their handles, `retire` removes them.
    pub fn new(
        max: usize,
        overflow_value: &'static str,
        build: impl Fn(&str) -> H + Send + Sync + 'static,
        retire: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self {
            max,
            overflow_value,
            admitted: RwLock::new(HashMap::new()),
            overflow: OnceLock::new(),
            build: Box::new(build),
            retire: Box::new(retire),
        }
    }

    /// The handles to count `value` with: its own while it is admitted or there is room,
    /// else the overflow value's.
    pub fn get(&self, value: &str) -> H {
        {
            let admitted = self.admitted.read().expect("label cap lock poisoned");
            if let Some(handles) = admitted.get(value) {
                return handles.clone();
            }
            if admitted.len() >= self.max {
                return self.overflowed();
            }
        }
        let mut admitted = self.admitted.write().expect("label cap lock poisoned");
        if let Some(handles) = admitted.get(value) {
            return handles.clone();
        }
        if admitted.len() >= self.max {
            return self.overflowed();
        }
        let handles = (self.build)(value);
        admitted.insert(Arc::from(value), handles.clone());
        handles
    }

    /// Calls `f` with the handles to count `value` with (as [`Self::get`]), without cloning
    /// them when `value` is admitted: the read lock is held while `f` runs, so keep it to
    /// counting.
    pub fn with<R>(&self, value: &str, f: impl FnOnce(&H) -> R) -> R {
        {
            let admitted = self.admitted.read().expect("label cap lock poisoned");
            if let Some(handles) = admitted.get(value) {
                return f(handles);
            }
        }
        f(&self.get(value))
    }

    /// Removes `value`'s series and frees its slot; `false` if it had none (never admitted,
    /// or counted under the overflow value).
    pub fn remove(&self, value: &str) -> bool {
        let mut admitted = self.admitted.write().expect("label cap lock poisoned");
        if admitted.remove(value).is_none() {
            return false;
        }
        (self.retire)(value);
        true
    }

    /// Whether `value` has its own series.
    pub fn is_admitted(&self, value: &str) -> bool {
        let admitted = self.admitted.read().expect("label cap lock poisoned");
        admitted.contains_key(value)
    }

    /// The number of values with their own series.
    pub fn len(&self) -> usize {
        self.admitted.read().expect("label cap lock poisoned").len()
    }

    /// Whether no value has its own series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some value was counted under the overflow value.
    pub fn has_overflowed(&self) -> bool {
        self.overflow.get().is_some()
    }

    fn overflowed(&self) -> H {
        self.overflow
            .get_or_init(|| (self.build)(self.overflow_value))
            .clone()
    }
}

impl<H> fmt::Debug for LabelCap<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelCap")
            .field("max", &self.max)
            .field("overflow_value", &self.overflow_value)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A family keyed by one `topic` label, as the brokers use.
    type TopicFamily = Family<[(&'static str, String); 1], Counter>;

    fn topic(name: &str) -> [(&'static str, String); 1] {
        [("topic", name.to_string())]
    }

    /// A cap of `max` topics over one counter family registered as `bytes_in`.
    fn capped(max: usize) -> (Registry, TopicFamily, LabelCap<Counter>) {
        let mut registry = registry();
        let family = TopicFamily::default();
        registry.register("bytes_in", "Bytes appended per topic", family.clone());
        let (build, retire) = (family.clone(), family.clone());
        let cap = LabelCap::new(
            max,
            "(other)",
            move |name| build.get_or_create_owned(&topic(name)),
            move |name| {
                retire.remove(&topic(name));
            },
        );
        (registry, family, cap)
    }

    /// Sample lines of `text` for metric `name` (not comments).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| !l.starts_with('#') && l.starts_with(name))
            .collect()
    }

    #[test]
    fn values_beyond_the_cap_share_the_overflow_series() {
        let (registry, family, cap) = capped(2);
        cap.get("a").inc_by(1);
        cap.get("b").inc_by(2);
        cap.get("c").inc_by(4);
        cap.get("d").inc_by(8);
        cap.with("a", |c| c.inc_by(16));
        cap.with("e", |c| c.inc_by(32));
        assert_eq!(cap.len(), 2);
        assert!(cap.has_overflowed());
        assert!(!cap.is_admitted("c"));
        assert_eq!(family.get(&topic("a")).unwrap().get(), 17);
        assert_eq!(family.get(&topic("b")).unwrap().get(), 2);
        assert_eq!(family.get(&topic("(other)")).unwrap().get(), 44);
        assert!(family.get(&topic("c")).is_none());
        let text = encode(&registry);
        assert_eq!(samples(&text, "ferry_bytes_in").len(), 3, "{text}");
    }

    #[test]
    fn removal_drops_the_series_and_frees_the_slot() {
        let (registry, family, cap) = capped(1);
        cap.get("a").inc_by(5);
        cap.get("b").inc_by(7); // overflow
        assert!(cap.remove("a"));
        assert!(!cap.remove("a"), "a second removal finds nothing");
        assert!(
            !cap.remove("b"),
            "an overflowed value has no series of its own"
        );
        assert!(family.get(&topic("a")).is_none());
        let text = encode(&registry);
        assert!(!text.contains("topic=\"a\""), "{text}");
        // The freed slot goes to the next value; the overflow keeps what it counted.
        cap.get("c").inc_by(3);
        assert!(cap.is_admitted("c"));
        assert_eq!(family.get(&topic("c")).unwrap().get(), 3);
        assert_eq!(family.get(&topic("(other)")).unwrap().get(), 7);
        // A value that comes back after removal starts from zero.
        assert!(cap.remove("c"));
        cap.get("a").inc_by(1);
        assert_eq!(family.get(&topic("a")).unwrap().get(), 1);
    }

    #[test]
    fn ten_thousand_topic_names_make_at_most_cap_plus_one_series() {
        const CAP: usize = 100;
        let (registry, _family, cap) = capped(CAP);
        for i in 0..10_000 {
            cap.get(&format!("attack-{i}")).inc();
        }
        let text = encode(&registry);
        let series = samples(&text, "ferry_bytes_in_total");
        assert_eq!(series.len(), CAP + 1, "the cap plus the overflow series");
        let overflow: u64 = series
            .iter()
            .find(|l| l.contains("(other)"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .expect("an overflow series");
        assert_eq!(overflow, 10_000 - CAP as u64);
    }

    #[test]
    fn histogram_matches_a_reference_count() {
        let histogram = AtomicHistogram::latency();
        // Values on, between, below and above the bounds, including exact bound values
        // (an upper bound is inclusive).
        let mut values = vec![
            0.0, 0.0001, 0.0005, 0.0006, 0.001, 0.003, 1.0, 2.6, 30.0, 31.0,
        ];
        values.extend((0..1000).map(|i| f64::from(i) * 0.037));
        for v in &values {
            histogram.observe(*v);
        }
        histogram.observe(f64::NAN);
        let snapshot = histogram.snapshot();
        // The reference: for each bound, how many values are at or below it.
        let expected: Vec<u64> = LATENCY_BUCKETS
            .iter()
            .map(|b| values.iter().filter(|v| *v <= b).count() as u64)
            .chain([values.len() as u64])
            .collect();
        assert_eq!(snapshot.cumulative(), expected);
        assert_eq!(snapshot.count(), values.len() as u64);
        let sum: f64 = values.iter().sum();
        assert!(
            (snapshot.sum - sum).abs() < 1e-9,
            "{} vs {sum}",
            snapshot.sum
        );
    }

    #[test]
    fn histogram_counts_every_observation_from_many_threads() {
        let histogram = AtomicHistogram::new(&[1.0, 2.0]);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = histogram.clone();
                std::thread::spawn(move || (0..10_000).for_each(|i| h.observe(f64::from(i % 3))))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count(), 40_000);
        assert_eq!(snapshot.counts[0] + snapshot.counts[1], 40_000);
        assert_eq!(snapshot.counts[2], 0);
        // 0 + 1 + 2 repeated: the sum of 0..10000 % 3 is 9999, times 4 threads.
        assert_eq!(snapshot.sum, 4.0 * 9999.0);
    }

    #[test]
    fn gauge_functions_are_read_at_each_scrape() {
        let value = Arc::new(AtomicU64::new(5));
        let mut registry = registry();
        let read = value.clone();
        registry.register_collector(GaugeFn::new("offset", "An offset", move || {
            let v = read.load(Ordering::Relaxed);
            (v > 0).then_some(v as i64)
        }));
        assert!(encode(&registry).contains("# TYPE ferry_offset gauge\nferry_offset 5\n"));
        value.store(9, Ordering::Relaxed);
        assert!(encode(&registry).contains("ferry_offset 9\n"));
        value.store(0, Ordering::Relaxed);
        assert!(
            !encode(&registry).contains("ferry_offset"),
            "None encodes nothing"
        );
    }

    #[test]
    #[should_panic(expected = "strictly increasing")]
    fn unordered_bounds_are_a_bug() {
        AtomicHistogram::new(&[1.0, 1.0]);
    }

    #[test]
    fn encoding_is_the_openmetrics_text() {
        let mut registry = registry();
        let requests = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register("requests", "Requests served", requests.clone());
        let open = Gauge::<i64>::default();
        registry.register("connections", "Open connections", open.clone());
        let duration = AtomicHistogram::new(&[0.1, 1.0]);
        registry.register(
            "request_duration_seconds",
            "Time to answer",
            duration.clone(),
        );
        requests.get_or_create(&[("api", "Produce")]).inc_by(3);
        open.set(2);
        duration.observe(0.05);
        duration.observe(0.5);
        duration.observe(0.5);
        duration.observe(4.0);
        let expected = "\
# HELP ferry_requests Requests served.
# TYPE ferry_requests counter
ferry_requests_total{api=\"Produce\"} 3
# HELP ferry_connections Open connections.
# TYPE ferry_connections gauge
ferry_connections 2
# HELP ferry_request_duration_seconds Time to answer.
# TYPE ferry_request_duration_seconds histogram
ferry_request_duration_seconds_sum 5.05
ferry_request_duration_seconds_count 4
ferry_request_duration_seconds_bucket{le=\"0.1\"} 1
ferry_request_duration_seconds_bucket{le=\"1.0\"} 3
ferry_request_duration_seconds_bucket{le=\"+Inf\"} 4
# EOF
";
        assert_eq!(encode(&registry), expected);
    }
}
