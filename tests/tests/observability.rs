//! What a `#[redis_lock]` call tells about itself: its `redis_lock` span (lock template,
//! interpolated name, client, waited, held, outcome), the events logged in it (timeout,
//! lost lock, the body's own), and the metrics labelled by the name template.
//!
//! One subscriber and one recorder serve the whole test binary; tests run in parallel, so
//! each uses its own lock names and templates and looks only at its own spans and series.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use redis_locked::{Lock, LockError, redis_lock};
use redis_locked_tests::RedisServer;
use tokio::sync::oneshot;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

// ---------------------------------------------------------------------------------------
// A test subscriber: every span with its fields as recorded, and every event with the
// spans it was logged in.

/// A span as the subscriber saw it.
#[derive(Clone, Debug)]
struct SpanSeen {
    /// Unique in the test binary (the registry reuses span ids).
    seq: u64,
    name: &'static str,
    fields: BTreeMap<String, String>,
    closed: bool,
}

impl SpanSeen {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("span has no field `{name}`: {self:?}"))
    }

    fn millis(&self, name: &str) -> f64 {
        let value = self.field(name);
        value
            .parse()
            .unwrap_or_else(|_| panic!("`{name}` = {value} is not a number"))
    }
}

/// An event as the subscriber saw it.
#[derive(Clone, Debug)]
struct EventSeen {
    level: Level,
    fields: BTreeMap<String, String>,
    /// The `seq` of the spans it was logged in, innermost first.
    scope: Vec<u64>,
}

impl EventSeen {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

static SPANS: Mutex<Vec<SpanSeen>> = Mutex::new(Vec::new());
static EVENTS: Mutex<Vec<EventSeen>> = Mutex::new(Vec::new());

/// A span's `seq`, kept in its extensions.
struct Seq(u64);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.to_string());
    }
}

struct Capture;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let seq = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = ctx.span(id).expect("a new span is in the registry");
        span.extensions_mut().insert(Seq(seq));
        lock(&SPANS).push(SpanSeen {
            seq,
            name: attrs.metadata().name(),
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let seq = seq_of(&ctx, id);
        let mut spans = lock(&SPANS);
        let span = spans.iter_mut().find(|s| s.seq == seq).expect("seen");
        values.record(&mut Fields(&mut span.fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let scope = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .map(|span| span.extensions().get::<Seq>().expect("seq").0)
                    .collect()
            })
            .unwrap_or_default();
        lock(&EVENTS).push(EventSeen {
            level: *event.metadata().level(),
            fields,
            scope,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let seq = seq_of(&ctx, &id);
        let mut spans = lock(&SPANS);
        spans
            .iter_mut()
            .find(|s| s.seq == seq)
            .expect("seen")
            .closed = true;
    }
}

fn seq_of<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &Context<'_, S>, id: &Id) -> u64 {
    ctx.span(id)
        .and_then(|span| span.extensions().get::<Seq>().map(|seq| seq.0))
        .expect("every span gets a seq")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the subscriber and the metrics recorder, once per test binary.
fn observe() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(Capture);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        let recorder = DebuggingRecorder::new();
        SNAPSHOTTER.set(recorder.snapshotter()).ok();
        recorder.install().expect("the only recorder");
    });
}

/// The one `redis_lock` span of lock `name`, once it is closed.
fn closed_span(name: &str) -> SpanSeen {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let spans: Vec<SpanSeen> = lock(&SPANS)
            .iter()
            .filter(|s| {
                s.name == "redis_lock" && s.fields.get("name").map(String::as_str) == Some(name)
            })
            .cloned()
            .collect();
        assert!(spans.len() <= 1, "one span per call: {spans:?}");
        if let Some(span) = spans.into_iter().find(|s| s.closed) {
            return span;
        }
        assert!(Instant::now() < deadline, "no closed span for {name}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The events whose field `lock` is `name`.
fn events_of_lock(name: &str) -> Vec<EventSeen> {
    lock(&EVENTS)
        .iter()
        .filter(|e| e.field("lock") == name)
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// A test recorder: the metrics, by name and `lock` label.

static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();

/// What one series holds: a counter's or gauge's value, or every histogram sample so far.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

/// A series: the metric's name and its labels.
type SeriesId = (String, Vec<(String, String)>);

/// Every series so far, keyed by metric name and labels. A snapshot drains what it reads
/// (counters and gauges to zero, histograms emptied), so what it read is added up here
/// across snapshots, whichever test took them: a gauge's increments and decrements too.
fn series() -> HashMap<SeriesId, Value> {
    static SEEN: Mutex<Option<HashMap<SeriesId, Value>>> = Mutex::new(None);
    let snapshot = SNAPSHOTTER.get().expect("observe() first").snapshot();
    let mut seen = lock(&SEEN);
    let seen = seen.get_or_insert_with(HashMap::new);
    for (key, _, _, value) in snapshot.into_vec() {
        let key = key.key();
        let labels = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let id = (key.name().to_string(), labels);
        match (seen.get_mut(&id), value) {
            (Some(Value::Counter(total)), DebugValue::Counter(n)) => *total += n,
            (Some(Value::Gauge(total)), DebugValue::Gauge(g)) => *total += g.into_inner(),
            (Some(Value::Histogram(all)), DebugValue::Histogram(samples)) => {
                all.extend(samples.into_iter().map(|s| s.into_inner()))
            }
            (Some(other), value) => panic!("{id:?} changed kind: {other:?}, {value:?}"),
            (None, DebugValue::Counter(n)) => drop(seen.insert(id, Value::Counter(n))),
            (None, DebugValue::Gauge(g)) => drop(seen.insert(id, Value::Gauge(g.into_inner()))),
            (None, DebugValue::Histogram(samples)) => {
                let samples = samples.into_iter().map(|s| s.into_inner()).collect();
                drop(seen.insert(id, Value::Histogram(samples)))
            }
        }
    }
    seen.clone()
}

/// The series of `metric` whose labels mention `template` (there must be one at most,
/// labelled exactly `lock = template`).
fn metric(metric: &str, template: &str) -> Option<Value> {
    let all = series();
    let mine: Vec<_> = all
        .iter()
        .filter(|((name, labels), _)| {
            name == metric && labels.iter().any(|(_, v)| v.contains(template))
        })
        .collect();
    assert!(mine.len() <= 1, "one series per template: {mine:?}");
    mine.first().map(|((_, labels), value)| {
        assert_eq!(labels, &[("lock".to_string(), template.to_string())]);
        (*value).clone()
    })
}

fn counter(name: &str, template: &str) -> u64 {
    match metric(name, template) {
        None => 0,
        Some(Value::Counter(n)) => n,
        Some(other) => panic!("{name} is not a counter: {other:?}"),
    }
}

fn gauge(name: &str, template: &str) -> f64 {
    match metric(name, template) {
        None => 0.0,
        Some(Value::Gauge(g)) => g,
        Some(other) => panic!("{name} is not a gauge: {other:?}"),
    }
}

fn histogram(name: &str, template: &str) -> Vec<f64> {
    match metric(name, template) {
        None => Vec::new(),
        Some(Value::Histogram(samples)) => samples,
        Some(other) => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// Waits until `check` holds, for at most 5 seconds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------

const BODY: Duration = Duration::from_millis(50);

#[redis_lock(name = "obs-async:{id}", client = "obs-async")]
async fn async_job(id: u32) -> Result<u32, LockError> {
    tracing::info!(id, "the body's own event");
    tokio::time::sleep(BODY).await;
    Ok(id)
}

#[redis_lock(name = "obs-sync:{id}", client = "obs-sync")]
fn sync_job(id: u32) -> Result<u32, LockError> {
    tracing::info!(id, "the body's own event");
    std::thread::sleep(BODY);
    Ok(id)
}

/// The span of a completed call, and the body's event nested in it.
fn assert_completed(name: &str, template: &str, client: &str) {
    let span = closed_span(name);
    assert_eq!(span.field("lock"), template);
    assert_eq!(span.field("client"), client);
    assert_eq!(span.field("outcome"), "completed");
    assert!(span.millis("waited_ms") >= 0.0, "{span:?}");
    let held = span.millis("held_ms");
    assert!(
        held >= BODY.as_secs_f64() * 1000.0,
        "held {held} ms: {span:?}"
    );
    let id = name.rsplit(':').next().unwrap();
    let body_events: Vec<EventSeen> = lock(&EVENTS)
        .iter()
        .filter(|e| e.field("message") == "the body's own event" && e.field("id") == id)
        .filter(|e| e.scope.contains(&span.seq))
        .cloned()
        .collect();
    assert_eq!(body_events.len(), 1, "the body's event is in the span");
    assert_eq!(body_events[0].scope[0], span.seq, "innermost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_call_has_one_span_and_counts_once_per_template() {
    observe();
    let server = RedisServer::start();
    redis_locked::register("obs-async", &server.url()).unwrap();
    let template = "obs-async:{id}";

    assert_eq!(async_job(1).await.unwrap(), 1);
    assert_completed("obs-async:1", template, "obs-async");
    assert_eq!(async_job(2).await.unwrap(), 2);
    assert_completed("obs-async:2", template, "obs-async");

    // Two names, one series: labelled by the template.
    assert_eq!(counter("redis_lock_acquired_total", template), 2);
    assert_eq!(histogram("redis_lock_wait_seconds", template).len(), 2);
    let held = histogram("redis_lock_hold_seconds", template);
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|&s| s >= BODY.as_secs_f64()), "{held:?}");
    assert_eq!(gauge("redis_lock_waiters", template), 0.0);
    assert_eq!(counter("redis_lock_timeouts_total", template), 0);
    assert_eq!(counter("redis_lock_lost_total", template), 0);
    assert!(
        series()
            .keys()
            .all(|(_, labels)| labels.iter().all(|(_, v)| !v.starts_with("obs-async:1"))),
        "no series is labelled with an interpolated name"
    );
}

#[test]
fn a_sync_call_has_one_span_with_the_body_inside() {
    observe();
    let server = RedisServer::start();
    redis_locked::register("obs-sync", &server.url()).unwrap();
    let template = "obs-sync:{id}";

    assert_eq!(sync_job(1).unwrap(), 1);
    assert_completed("obs-sync:1", template, "obs-sync");
    assert_eq!(sync_job(2).unwrap(), 2);
    assert_completed("obs-sync:2", template, "obs-sync");
    assert_eq!(counter("redis_lock_acquired_total", template), 2);
    assert_eq!(histogram("redis_lock_hold_seconds", template).len(), 2);
    assert_eq!(gauge("redis_lock_waiters", template), 0.0);
}

#[redis_lock(name = "obs-timeout:{id}", client = "obs-timeout", timeout = 0.2)]
async fn impatient(id: u32) -> Result<(), LockError> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_is_a_debug_event_and_counted() {
    observe();
    let server = RedisServer::start();
    redis_locked::register("obs-timeout", &server.url()).unwrap();
    let template = "obs-timeout:{id}";
    let holder = Lock::with_client("obs-timeout", "obs-timeout:1")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();

    let result = impatient(1).await;
    assert!(
        matches!(result, Err(LockError::Timeout { .. })),
        "{result:?}"
    );
    let span = closed_span("obs-timeout:1");
    assert_eq!(span.field("outcome"), "timeout");
    assert!(span.millis("waited_ms") >= 200.0, "{span:?}");
    assert!(!span.fields.contains_key("held_ms"), "never held: {span:?}");
    let events = events_of_lock("obs-timeout:1");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].level, Level::DEBUG);
    assert_eq!(events[0].scope.first(), Some(&span.seq));

    assert_eq!(counter("redis_lock_timeouts_total", template), 1);
    assert_eq!(counter("redis_lock_acquired_total", template), 0);
    assert_eq!(gauge("redis_lock_waiters", template), 0.0);
    holder.release().await.unwrap();
}

#[redis_lock(name = "obs-wait:{id}", client = "obs-wait")]
async fn patient(id: u32) -> Result<(), LockError> {
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiters_gauge_counts_waiting_calls_until_they_acquire_or_are_cancelled() {
    observe();
    let server = RedisServer::start();
    redis_locked::register("obs-wait", &server.url()).unwrap();
    let template = "obs-wait:{id}";
    let holder = Lock::with_client("obs-wait", "obs-wait:1")
        .unwrap()
        .acquire(None)
        .await
        .unwrap();

    // Two calls waiting for the lock.
    let first = tokio::spawn(patient(1));
    let second = tokio::spawn(patient(1));
    eventually("two waiters", || {
        gauge("redis_lock_waiters", template) == 2.0
    })
    .await;

    // A cancelled waiter leaves the gauge; its call ends `cancelled`.
    second.abort();
    assert!(second.await.unwrap_err().is_cancelled());
    eventually("one waiter", || {
        gauge("redis_lock_waiters", template) == 1.0
    })
    .await;

    holder.release().await.unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(gauge("redis_lock_waiters", template), 0.0);
    assert_eq!(counter("redis_lock_acquired_total", template), 1);

    let spans: Vec<SpanSeen> = lock(&SPANS)
        .iter()
        .filter(|s| s.fields.get("name").map(String::as_str) == Some("obs-wait:1"))
        .cloned()
        .collect();
    let mut outcomes: Vec<&str> = spans.iter().map(|s| s.field("outcome")).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["cancelled", "completed"], "{spans:?}");
}

#[redis_lock(name = "obs-lost:{id}", client = "obs-lost", expire = 0.6, auto_renew)]
async fn outlives_its_lock(id: u32, entered: oneshot::Sender<()>) -> Result<(), LockError> {
    entered.send(()).unwrap();
    // Long enough for two renewals: the first after the key is gone finds it lost.
    tokio::time::sleep(Duration::from_millis(700)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_is_one_warning_in_the_span_and_counted_once() {
    observe();
    let server = RedisServer::start();
    redis_locked::register("obs-lost", &server.url()).unwrap();
    let template = "obs-lost:{id}";

    let (entered, in_body) = oneshot::channel();
    let call = tokio::spawn(outlives_its_lock(1, entered));
    in_body.await.unwrap();
    let deleted: i64 = redis::cmd("DEL")
        .arg("lock:{obs-lost:1}")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(deleted, 1);
    call.await.unwrap().unwrap();

    let span = closed_span("obs-lost:1");
    assert_eq!(span.field("outcome"), "lost");
    let warnings: Vec<EventSeen> = events_of_lock("obs-lost:1")
        .into_iter()
        .filter(|e| e.level == Level::WARN)
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per loss: {warnings:?}");
    assert!(
        warnings[0].field("message").contains("lost"),
        "{warnings:?}"
    );
    assert_eq!(
        warnings[0].scope.first(),
        Some(&span.seq),
        "in the call's span"
    );
    assert_eq!(counter("redis_lock_lost_total", template), 1);
    assert_eq!(counter("redis_lock_acquired_total", template), 1);
}

#[redis_lock(name = "obs-renew:{id}", client = "obs-renew", expire = 3, auto_renew)]
async fn rides_out_an_outage(
    id: u32,
    entered: oneshot::Sender<()>,
    done: oneshot::Receiver<()>,
) -> Result<(), LockError> {
    entered.send(()).unwrap();
    done.await.unwrap();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_failures_warn_once_per_outage_and_recovery_is_told() {
    observe();
    // Persisted, so the restarted server still has the lock.
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    redis_locked::register("obs-renew", &server.url()).unwrap();

    let (entered, in_body) = oneshot::channel();
    let (finish, done) = oneshot::channel();
    let call = tokio::spawn(rides_out_an_outage(1, entered, done));
    in_body.await.unwrap();
    // Renewals every second, retried every third of that while they fail: down from about
    // the first renewal to after the third, back before the lease (3 s) runs out.
    server.kill();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    server.start_again();
    eventually("renewing works again", || {
        events_of_lock("obs-renew:1")
            .iter()
            .any(|e| e.level == Level::INFO)
    })
    .await;
    finish.send(()).unwrap();
    call.await.unwrap().unwrap();

    let span = closed_span("obs-renew:1");
    assert_eq!(span.field("outcome"), "completed");
    let events = events_of_lock("obs-renew:1");
    let levels: Vec<Level> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels[0], Level::WARN, "{events:?}");
    assert!(
        levels[1..levels.len() - 1]
            .iter()
            .all(|&l| l == Level::DEBUG),
        "{events:?}"
    );
    assert!(levels.len() >= 3, "retries failed too: {events:?}");
    assert_eq!(levels[levels.len() - 1], Level::INFO, "{events:?}");
    assert!(
        events.iter().all(|e| e.scope.first() == Some(&span.seq)),
        "{events:?}"
    );
    assert_eq!(counter("redis_lock_lost_total", "obs-renew:{id}"), 0);
}

#[redis_lock(name = "obs-no-client:{id}", client = "obs-never-registered")]
async fn on_a_missing_client(id: u32) -> Result<(), LockError> {
    Ok(())
}

/// A call whose client is not registered failed: its span says so and one warning names
/// the lock, with the error once, as a field (not repeated in the message).
#[tokio::test]
async fn a_missing_client_is_a_failed_call_with_one_warning() {
    observe();
    let result = on_a_missing_client(1).await;
    assert!(
        matches!(result, Err(LockError::UnknownClient { .. })),
        "{result:?}"
    );
    let span = closed_span("obs-no-client:1");
    assert_eq!(span.field("outcome"), "failed", "not `cancelled`: {span:?}");
    let events = events_of_lock("obs-no-client:1");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].level, Level::WARN);
    let error = result.unwrap_err().to_string();
    assert_eq!(events[0].field("error"), error);
    assert!(
        !events[0].field("message").contains(&error),
        "the error is told once: {events:?}"
    );
}
