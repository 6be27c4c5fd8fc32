//! Whether what a log says matches where it was delivered, checked on the datums before
//! they are published: whoever can write under the log prefix must not be able to publish
//! metrics for a load balancer or bucket the key does not name, nor under dimension names
//! the processor never publishes (which a separator byte in a parsed value could forge).
//!
//! The check works on datums, not records, because the records go straight from the
//! parsers to the aggregator (`read.rs`); a datum whose dimensions fail it is skipped and
//! counted with its reason in the object's `screened`.
//!
//! What each format publishes ([`Format::published_dimensions`]) and what a key names
//! ([`Format::dimension_named_by_key`]) are format knowledge, in `formats/`.

use std::collections::BTreeMap;

use shared::metrics::{Datum, Screened};

use crate::Format;

/// What an object's key vouches for: the dimension names its format publishes and, where
/// the key names a load balancer or bucket, that one.
pub struct Vouched {
    allowed: &'static [&'static str],
    named: Option<(&'static str, String)>,
}

impl Vouched {
    /// `None` without a format: mixed formats happen only in `logs summarize` of several
    /// files, and there is nothing to compare with.
    pub fn new(key: &str, format: Option<Format>) -> Option<Self> {
        let format = format?;
        Some(Self { allowed: format.published_dimensions(), named: format.dimension_named_by_key(key) })
    }

    /// Whether the key vouches for a series under `dimensions`; else why not.
    pub fn judge(&self, dimensions: &BTreeMap<String, String>) -> Result<(), &'static str> {
        if dimensions.keys().any(|name| !self.allowed.contains(&name.as_str())) {
            return Err("a dimension name the format does not publish");
        }
        if let Some((name, expected)) = &self.named
            && dimensions.get(*name).is_some_and(|value| value != expected)
        {
            return Err("a load balancer or bucket other than the one the key names");
        }
        Ok(())
    }
}

/// The datums whose dimensions the key vouches for ([`Vouched`]); the others are counted
/// in `screened`.
pub fn check(key: &str, format: Option<Format>, datums: Vec<Datum>, screened: &mut Screened) -> Vec<Datum> {
    let Some(vouched) = Vouched::new(key, format) else { return datums };
    datums
        .into_iter()
        .filter(|datum| match vouched.judge(&datum.dimensions) {
            Ok(()) => true,
            Err(reason) => {
                screened.skip_datum(reason);
                false
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use shared::metrics::{DatumValue, Unit};

    use super::*;

    const ALB_KEY: &str = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/11/30/\
        123456789012_elasticloadbalancing_us-east-1_app.shop-alb.50dc6c495c0c9188_20261130T1205Z_10.0.0.5_2abc9f.log.gz";

    fn datum(dimensions: &[(&str, &str)]) -> Datum {
        Datum {
            name: "RequestCount".into(),
            unit: Unit::Count,
            dimensions: dimensions
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            timestamp: 0,
            value: DatumValue::Single { value: 1.0 },
        }
    }

    #[test]
    fn datums_for_another_load_balancer_or_under_forged_names_are_skipped_and_counted() {
        let ours = ("LoadBalancer", "app/shop-alb/50dc6c495c0c9188");
        let datums = vec![
            datum(&[ours]),
            datum(&[ours, ("TargetGroup", "targetgroup/shop/1")]),
            datum(&[("LoadBalancer", "app/other/1")]),
            // What `app/web/1\x1eAutoScalingGroupName\x1fweb` turns into once joined and split.
            datum(&[("LoadBalancer", "app/web/1"), ("AutoScalingGroupName", "web")]),
        ];
        let mut screened = Screened::default();
        let kept = check(ALB_KEY, Some(Format::Alb), datums.clone(), &mut screened);
        assert_eq!(kept, datums[..2]);
        assert_eq!(screened.skipped_datums, 2);
        assert_eq!(screened.reasons.values().sum::<u64>(), 2, "{screened:?}");

        // A key outside AWS's layout names nothing: only the dimension names are checked.
        let mut screened = Screened::default();
        let kept = check("logs/alb.log", Some(Format::Alb), datums.clone(), &mut screened);
        assert_eq!(kept, datums[..3]);
        assert_eq!(screened.skipped_datums, 1);
    }

    #[test]
    fn a_separator_in_a_load_balancer_name_publishes_no_forged_dimension() {
        let fixture = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/logs/alb.log"));
        let good = fixture.lines().next().unwrap();
        let forged =
            good.replace("app/shop-alb/50dc6c495c0c9188", "app/web/1\x1eAutoScalingGroupName\x1fweb");
        let log = format!("{good}\n{forged}\n");
        let options = crate::ReadOptions { key: "alb.log", max_line_bytes: 1 << 20, ..Default::default() };
        let summary = crate::summarize(log.as_bytes(), &options).unwrap();
        assert_eq!(summary.records, 2);
        let (datums, mut screened) = shared::metrics::screen(summary.metrics, None);
        let kept = check("alb.log", summary.format, datums, &mut screened);
        assert!(!kept.is_empty());
        for datum in &kept {
            assert!(!datum.dimensions.contains_key("AutoScalingGroupName"), "{datum:?}");
            assert_eq!(datum.dimensions["LoadBalancer"], "app/shop-alb/50dc6c495c0c9188", "{datum:?}");
        }
        assert!(screened.skipped_datums > 0, "{screened:?}");
    }

    /// The whole object path (read, screen, check, batch, publish) with a fixed clock: one
    /// object holding a good line, a line two months old, one for another load balancer
    /// and one with a forged dimension publishes the good line's datums alone and says
    /// why the others were left out.
    #[tokio::test]
    async fn an_object_publishes_only_what_cloudwatch_accepts_and_the_key_vouches_for() {
        use std::sync::{Arc, Mutex};

        use shared::AwsError;
        use shared::metrics::PublishError;

        use crate::{ObjectOutcome, ObjectRef, ObjectSource, OpenedObject, Processor, ProcessorConfig};

        struct Log(Vec<u8>);
        impl ObjectSource for Log {
            async fn open(&self, _object: &ObjectRef) -> Result<Option<OpenedObject>, AwsError> {
                let body = Box::new(std::io::Cursor::new(self.0.clone()));
                Ok(Some(OpenedObject { body, etag: None, version_id: None, last_modified: None }))
            }
        }
        #[derive(Clone, Default)]
        struct Recorded(Arc<Mutex<Vec<Datum>>>);
        impl crate::MetricsSink for Recorded {
            async fn put(&self, _namespace: &str, batch: &[Datum]) -> Result<(), PublishError> {
                self.0.lock().unwrap().extend_from_slice(batch);
                Ok(())
            }
        }

        let fixture = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/logs/alb.log"));
        let good = fixture.lines().next().unwrap();
        let ours = "app/shop-alb/50dc6c495c0c9188";
        let old = good.replace("2026-11-30T12:00:01", "2026-10-01T12:00:01");
        let other = good.replace(ours, "app/other/1");
        let forged = good.replace(ours, "app/shop-alb/50dc6c495c0c9188\x1eAutoScalingGroupName\x1fweb");
        let log = [good, &old, &other, &forged].join("\n").into_bytes();

        let recorded = Recorded::default();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .build(),
        );
        let processor = Processor::with_parts(
            Log(log),
            recorded.clone(),
            None::<shared::store::JsonStore>,
            s3,
            ProcessorConfig::default(),
        )
        // 2026-11-30T12:30Z, half an hour after the good line.
        .with_clock(|| 1_796_041_800);
        let outcome = processor.process_object(&ObjectRef::new("logs", ALB_KEY), "test", None).await.unwrap();
        let ObjectOutcome::Processed { records, datums_published, screened, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(records, 4);
        let published = recorded.0.lock().unwrap().clone();
        assert_eq!(published.len(), datums_published);
        assert!(!published.is_empty());
        for datum in &published {
            assert_eq!(datum.dimensions["LoadBalancer"], ours, "{datum:?}");
            assert!(datum.dimensions.keys().all(|k| k == "LoadBalancer" || k == "TargetGroup"), "{datum:?}");
            assert_eq!(datum.timestamp, 1_796_040_000, "{datum:?}");
        }
        let reasons: Vec<&str> = screened.reasons.keys().copied().collect();
        assert_eq!(
            reasons,
            [
                "a load balancer or bucket other than the one the key names",
                // The forged line's separators never split its value (aggregate.rs): its
                // datums carry a value CloudWatch refuses, and are left out for that.
                "dimension value not 1 to 1024 printable ASCII characters",
                "timestamp older than CloudWatch's 14 days",
            ],
            "{screened:?}"
        );
        println!("published {datums_published} datums; left out {screened:?}");
    }
}
