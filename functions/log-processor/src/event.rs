//! What an invocation's payload asks for. The processor is wired to S3 in several ways,
//! and each wraps the same notification differently:
//! - S3 → Lambda: `{"Records": [{"eventSource": "aws:s3", ...}]}`;
//! - S3 → SNS → Lambda: SNS records whose `Sns.Message` is that S3 notification;
//! - S3 → SQS (or S3 → SNS → SQS) → Lambda: SQS records whose body is one of the above,
//!   answered per message (`batchItemFailures`);
//! - S3 → EventBridge → Lambda: an "Object Created" event (its key is not URL-encoded).
//!
//! `s3:TestEvent` (sent when a notification is configured) and non-create events are
//! acknowledged and ignored. A record that cannot be understood is reported as invalid,
//! never silently dropped.

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key, URL-decoded.
    pub key: String,
    /// The version the notification is about, when the bucket is versioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ObjectRef {
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        Self { bucket: bucket.into(), key: key.into(), version_id: None, etag: None }
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what}")]
pub struct EventError {
    pub what: String,
}

fn invalid(what: impl Into<String>) -> EventError {
    EventError { what: what.into() }
}

/// One unit of work named by a notification.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Object(ObjectRef),
    /// Acknowledged without work: a test event or a non-create event.
    Ignored(String),
    Invalid(EventError),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SqsMessage {
    pub message_id: String,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// Direct S3, SNS or EventBridge: the invocation fails if any item fails.
    Items(Vec<Item>),
    /// An SQS batch: only the failed messages are reported back for retry.
    Sqs(Vec<SqsMessage>),
}

/// S3 event keys are URL-encoded as in an HTML form: `+` is a space, `%XX` a byte.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, p| v.get(p))?.as_str()
}

/// Reads an invocation payload.
pub fn parse(payload: &Value) -> Delivery {
    if let Some(records) = payload.get("Records").and_then(Value::as_array)
        && records.first().and_then(|r| str_at(r, &["eventSource"])) == Some("aws:sqs")
    {
        let messages = records
            .iter()
            .map(|record| {
                let message_id = str_at(record, &["messageId"]).unwrap_or_default().to_owned();
                let items = match str_at(record, &["body"]).map(serde_json::from_str::<Value>) {
                    Some(Ok(body)) => notification_items(&body),
                    Some(Err(e)) => vec![Item::Invalid(invalid(format!("message body is not JSON: {e}")))],
                    None => vec![Item::Invalid(invalid("message has no body"))],
                };
                SqsMessage { message_id, items }
            })
            .collect();
        return Delivery::Sqs(messages);
    }
    Delivery::Items(notification_items(payload))
}

/// The items of one notification: S3, SNS-wrapped S3, or EventBridge.
fn notification_items(value: &Value) -> Vec<Item> {
    if str_at(value, &["Event"]) == Some("s3:TestEvent") {
        return vec![Item::Ignored("s3:TestEvent".into())];
    }
    // SNS → SQS without raw message delivery: the SNS envelope itself.
    if str_at(value, &["Type"]) == Some("Notification")
        && let Some(message) = str_at(value, &["Message"])
    {
        return sns_message(message);
    }
    if str_at(value, &["source"]) == Some("aws.s3") {
        return vec![eventbridge_item(value)];
    }
    let Some(records) = value.get("Records").and_then(Value::as_array) else {
        return vec![Item::Invalid(invalid("not an S3, SNS or EventBridge notification"))];
    };
    if records.is_empty() {
        return vec![Item::Ignored("a notification without records".into())];
    }
    records
        .iter()
        .enumerate()
        .flat_map(|(index, record)| {
            let source = str_at(record, &["eventSource"]).or_else(|| str_at(record, &["EventSource"]));
            match source {
                Some("aws:s3") => vec![s3_record(index, record)],
                Some("aws:sns") => match str_at(record, &["Sns", "Message"]) {
                    Some(message) => sns_message(message),
                    None => {
                        vec![Item::Invalid(invalid(format!("record {index}: SNS record without a message")))]
                    }
                },
                other => {
                    vec![Item::Invalid(invalid(format!("record {index}: unexpected event source {other:?}")))]
                }
            }
        })
        .collect()
}

fn sns_message(message: &str) -> Vec<Item> {
    match serde_json::from_str::<Value>(message) {
        Ok(inner) => notification_items(&inner),
        Err(e) => vec![Item::Invalid(invalid(format!("SNS message is not JSON: {e}")))],
    }
}

fn s3_record(index: usize, record: &Value) -> Item {
    let name = str_at(record, &["eventName"]).unwrap_or_default();
    if !name.starts_with("ObjectCreated:") {
        return Item::Ignored(format!("record {index}: {name}"));
    }
    let Some(bucket) = str_at(record, &["s3", "bucket", "name"]) else {
        return Item::Invalid(invalid(format!("record {index}: no bucket name")));
    };
    let Some(raw) = str_at(record, &["s3", "object", "key"]) else {
        return Item::Invalid(invalid(format!("record {index}: no object key")));
    };
    let Some(key) = decode_key(raw) else {
        return Item::Invalid(invalid(format!("record {index}: key {raw:?} is not valid URL-encoded UTF-8")));
    };
    Item::Object(ObjectRef {
        bucket: bucket.to_owned(),
        key,
        version_id: str_at(record, &["s3", "object", "versionId"]).map(str::to_owned),
        etag: str_at(record, &["s3", "object", "eTag"]).map(str::to_owned),
    })
}

fn eventbridge_item(event: &Value) -> Item {
    let kind = str_at(event, &["detail-type"]).unwrap_or_default();
    if kind != "Object Created" {
        return Item::Ignored(kind.to_owned());
    }
    match (str_at(event, &["detail", "bucket", "name"]), str_at(event, &["detail", "object", "key"])) {
        (Some(bucket), Some(key)) => Item::Object(ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: str_at(event, &["detail", "object", "version-id"]).map(str::to_owned),
            etag: str_at(event, &["detail", "object", "etag"]).map(str::to_owned),
        }),
        _ => Item::Invalid(invalid("EventBridge event without detail.bucket.name or detail.object.key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_form_decoded() {
        assert_eq!(decode_key("a+b%2Bc%20d").as_deref(), Some("a b+c d"));
        assert_eq!(decode_key("caf%C3%A9/%E6%97%A5.log").as_deref(), Some("café/日.log"));
        assert_eq!(decode_key("plain/key.gz").as_deref(), Some("plain/key.gz"));
        assert_eq!(decode_key("bad%FF"), None);
    }

    fn s3_event(key: &str) -> Value {
        serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "logs"}, "object": {"key": key, "eTag": "abc", "versionId": "v1"}}}]})
    }

    fn object(key: &str) -> Item {
        Item::Object(ObjectRef {
            bucket: "logs".into(),
            key: key.into(),
            version_id: Some("v1".into()),
            etag: Some("abc".into()),
        })
    }

    #[test]
    fn every_wrapping_yields_the_same_object() {
        let direct = s3_event("a+b%C3%A9.log");
        assert_eq!(parse(&direct), Delivery::Items(vec![object("a bé.log")]));
        let sns = serde_json::json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": direct.to_string()}}]});
        assert_eq!(parse(&sns), Delivery::Items(vec![object("a bé.log")]));
        let envelope = serde_json::json!({"Type": "Notification", "Message": direct.to_string()});
        let sqs = serde_json::json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "m1", "body": direct.to_string()},
            {"eventSource": "aws:sqs", "messageId": "m2", "body": envelope.to_string()},
            {"eventSource": "aws:sqs", "messageId": "m3", "body": "not json"}]});
        let Delivery::Sqs(messages) = parse(&sqs) else { panic!() };
        assert_eq!(messages[0], SqsMessage { message_id: "m1".into(), items: vec![object("a bé.log")] });
        assert_eq!(messages[1].items, vec![object("a bé.log")]);
        assert!(matches!(&messages[2].items[..], [Item::Invalid(e)] if e.what.contains("not JSON")));
        let eventbridge = serde_json::json!({"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "logs"}, "object": {"key": "a b.log", "etag": "abc", "version-id": "v1"}}});
        assert_eq!(parse(&eventbridge), Delivery::Items(vec![object("a b.log")]));
    }

    #[test]
    fn test_events_and_removals_are_ignored_and_broken_records_reported() {
        let test = serde_json::json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "logs"});
        assert_eq!(parse(&test), Delivery::Items(vec![Item::Ignored("s3:TestEvent".into())]));
        let removal =
            serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete"}]});
        assert!(
            matches!(&parse(&removal), Delivery::Items(items) if matches!(items[..], [Item::Ignored(_)]))
        );
        let broken = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]});
        assert!(
            matches!(&parse(&broken), Delivery::Items(items) if matches!(&items[..], [Item::Invalid(e)] if e.what.contains("no bucket")))
        );
        assert!(
            matches!(&parse(&serde_json::json!({"hello": 1})), Delivery::Items(items) if matches!(items[..], [Item::Invalid(_)]))
        );
    }
}

/// Fuzzing the event decoding on stable Rust: arbitrary JSON never panics, and every record
/// comes back as an object, ignored, or invalid.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("aws:s3".to_owned()),
                Just("aws:sqs".to_owned()),
                Just("aws:sns".to_owned()),
                Just("ObjectCreated:Put".to_owned()),
                Just("Notification".to_owned()),
                "\\PC{0,20}"
            ]
            .prop_map(Value::from),
        ];
        let keys = prop_oneof![
            Just("Records".to_owned()),
            Just("eventSource".to_owned()),
            Just("EventSource".to_owned()),
            Just("eventName".to_owned()),
            Just("s3".to_owned()),
            Just("bucket".to_owned()),
            Just("object".to_owned()),
            Just("name".to_owned()),
            Just("key".to_owned()),
            Just("body".to_owned()),
            Just("Sns".to_owned()),
            Just("Message".to_owned()),
            Just("Type".to_owned()),
            Just("source".to_owned()),
            Just("detail".to_owned()),
            "[a-z]{1,5}"
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(keys.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(payload in json()) {
            match parse(&payload) {
                Delivery::Items(items) => prop_assert!(!items.is_empty()),
                Delivery::Sqs(messages) => prop_assert!(messages.iter().all(|m| !m.items.is_empty())),
            }
        }

        #[test]
        fn arbitrary_keys_decode_or_fail_cleanly(raw in "\\PC{0,100}") {
            let _ = decode_key(&raw);
        }
    }
}
