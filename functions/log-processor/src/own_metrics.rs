//! The processor's own metrics on Lambda (`FUNCTION_NAME` set): EMF records on stdout
//! under [`OWN_METRICS_NAMESPACE`], one per object and one per ambiguous publish.

use crate::{OWN_METRICS_NAMESPACE, ObjectOutcome};

/// The processor's own EMF record for one object (`None`: it failed), on Lambda: what the
/// dashboard and an operator read to see it keep up.
pub(crate) fn object_record(function: &str, outcome: Option<&ObjectOutcome>, timestamp_ms: u64) -> String {
    use shared::metrics::Unit;
    let mut metrics = vec![("ObjectsFailed", f64::from(u8::from(outcome.is_none())), Unit::Count)];
    if let Some(ObjectOutcome::Processed {
        records,
        malformed,
        skipped,
        datums_published,
        publish_delay_seconds,
        ..
    }) = outcome
    {
        metrics.extend([
            ("ObjectsProcessed", 1.0, Unit::Count),
            ("Records", *records as f64, Unit::Count),
            ("Malformed", *malformed as f64, Unit::Count),
            ("Skipped", *skipped as f64, Unit::Count),
            ("DatumsPublished", *datums_published as f64, Unit::Count),
        ]);
        if let Some(delay) = publish_delay_seconds {
            metrics.push(("PublishDelay", *delay as f64, Unit::Seconds));
        }
    }
    shared::emf::record(OWN_METRICS_NAMESPACE, &[("FunctionName", function)], &metrics, timestamp_ms)
}

/// The EMF record counting one ambiguous publish.
pub(crate) fn ambiguous_publishes_record(function: &str, timestamp_ms: u64) -> String {
    shared::emf::record(
        OWN_METRICS_NAMESPACE,
        &[("FunctionName", function)],
        &[("AmbiguousPublishes", 1.0, shared::metrics::Unit::Count)],
        timestamp_ms,
    )
}
