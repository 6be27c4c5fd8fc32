//! The state store's conditional writes when a reply is lost: the SDK retries the write
//! with the same condition, which the first attempt (applied by S3) now fails. The write
//! succeeded, and says so; a real conflict is still one.

use integration_tests::Moto;
use integration_tests::fault_proxy::{Fault, FaultKind, FaultProxy};
use serde_json::json;
use shared::store::{JsonStore, StoreError, Version};

#[tokio::test]
async fn a_conditional_write_whose_reply_was_lost_is_not_a_conflict_with_itself() {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    aws_sdk_s3::Client::new(&config).create_bucket().bucket("state").send().await.unwrap();
    let uri = "s3://state/p".parse().unwrap();
    // Both the create and the replace: applied by moto, their replies lost.
    let lose =
        Fault { matches: "PUT /state/p/marker.json", kind: FaultKind::LoseResponse, times: 2, after: 0 };
    let proxy = FaultProxy::start(&moto.endpoint, vec![lose]).await;
    let store = JsonStore::new(aws_sdk_s3::Client::new(&proxy.sdk_config(&config)), &uri);

    let created = store.write("marker.json", &json!({"n": 1}), &Version(None)).await.expect("create");
    let replaced = store.write("marker.json", &json!({"n": 2}), &created).await.expect("replace");
    assert_eq!(proxy.injected().len(), 2, "both replies were lost");
    let direct = JsonStore::new(aws_sdk_s3::Client::new(&config), &uri);
    let (stored, version) = direct.read::<serde_json::Value>("marker.json").await.unwrap();
    assert_eq!((stored, &version), (Some(json!({"n": 2})), &replaced));

    // Another writer's object at the expected version is a conflict, as before.
    let stale = store.write("marker.json", &json!({"n": 3}), &created).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict { .. }), "{stale}");
    let taken = store.write("marker.json", &json!({"n": 4}), &Version(None)).await.unwrap_err();
    assert!(matches!(taken, StoreError::Conflict { .. }), "{taken}");
}
