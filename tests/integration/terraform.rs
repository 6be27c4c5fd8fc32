//! infra/ applied for real: Terraform (`init → validate → plan → apply → plan → destroy`)
//! against a moto server of the test's own, with the deployed functions' real binaries run
//! in the environment Terraform gave them.
//!
//! What differs from a deployment, and why (nothing deployed is weakened):
//! - a copy of infra/ gets `moto_override.tf` (the provider's endpoints → moto, dummy
//!   credentials) and placeholder zips (`lambda_zip_dir`): moto's Lambda never runs them;
//! - the function module's copy ignores `logging_config` changes: moto's Lambda does not
//!   store it, which would otherwise be a perpetual diff;
//! - moto runs through `tests/moto/server.py`, which evaluates bucket-policy conditions as
//!   AWS does (moto alone denies every request under the TLS-only Deny).
//!
//! `TF_PLUGIN_DIR` (the Makefile sets it where a local provider mirror exists) makes
//! `terraform init` work offline.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use integration_tests::{
    GroupSpec, LocalLambda, Moto, create_group, create_launch_template, desired_capacity, fixture, gzip,
    put_metric, tags, temp_dir, venv_bin, workspace_binary, workspace_root,
};
use serde_json::Value;

const STATE_BUCKET: &str = "tf-test-state";
const CREATED_LOG_BUCKET: &str = "tf-test-logs";
const EXISTING_LOG_BUCKET: &str = "tf-existing-logs";
const OUTPUT_BUCKET: &str = "tf-test-output";
/// moto's account.
const ACCOUNT: &str = "123456789012";

fn terraform_program() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("terraform")).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("terraform not found on PATH: install Terraform >= 1.9 (README, Deploy); make test applies infra/ with it")
        })
}

/// A copy of infra/ pointed at a moto server, initialized.
struct Stack {
    dir: PathBuf,
    zips: PathBuf,
}

impl Stack {
    fn new(moto: &Moto, name: &str) -> Stack {
        let root = temp_dir(name);
        let dir = root.join("infra");
        copy_configuration(&workspace_root().join("infra"), &dir);
        let services = ["autoscaling", "cloudwatch", "events", "iam", "lambda", "logs", "s3", "sqs", "sts"];
        let endpoints: String =
            services.iter().map(|s| format!("    {s} = \"{}\"\n", moto.endpoint)).collect();
        std::fs::write(
            dir.join("moto_override.tf"),
            format!(
                "provider \"aws\" {{\n  region = \"us-east-1\"\n  access_key = \"testing\"\n  secret_key = \"testing\"\n  \
                 skip_credentials_validation = true\n  skip_metadata_api_check = true\n  skip_requesting_account_id = true\n  \
                 s3_use_path_style = true\n  endpoints {{\n{endpoints}  }}\n}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("modules/function/moto_override.tf"),
            "resource \"aws_lambda_function\" \"function\" {\n  lifecycle {\n    ignore_changes = [logging_config]\n  }\n}\n",
        )
        .unwrap();
        let zips = root.join("zips");
        for function in ["metric-poller", "log-processor"] {
            let zip = zips.join(function).join("bootstrap.zip");
            std::fs::create_dir_all(zip.parent().unwrap()).unwrap();
            let made = Command::new(venv_bin("python"))
                .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('bootstrap', 'placeholder')"])
                .arg(&zip)
                .status()
                .unwrap();
            assert!(made.success(), "placeholder zip");
        }
        let stack = Stack { dir, zips };
        let mut init = vec!["init", "-input=false", "-backend=false"];
        let plugin_dir = std::env::var("TF_PLUGIN_DIR").unwrap_or_default();
        let plugin_arg = format!("-plugin-dir={plugin_dir}");
        if !plugin_dir.is_empty() {
            init.push(&plugin_arg);
        }
        stack.ok(&init);
        stack
    }

    /// The placeholder zips, for every command.
    fn use_placeholder_zips(&self) {
        let text = format!("lambda_zip_dir = \"{}\"\n", self.zips.display());
        std::fs::write(self.dir.join("test.auto.tfvars"), text).unwrap();
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(terraform_program())
            .arg(format!("-chdir={}", self.dir.display()))
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .envs(
                ["plan", "apply", "validate", "init", "show"]
                    .map(|c| (format!("TF_CLI_ARGS_{c}"), "-no-color")),
            )
            .envs(env.iter().copied())
            .output()
            .expect("run terraform")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args, &[]);
        assert!(output.status.success(), "terraform {}:\n{}", args.join(" "), both(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    /// `plan -detailed-exitcode` must find nothing to do.
    fn assert_clean_plan(&self, vars: &[&str]) {
        let mut args = vec!["plan", "-input=false", "-detailed-exitcode"];
        args.extend(vars);
        let output = self.run(&args, &[]);
        assert_eq!(output.status.code(), Some(0), "the re-plan is not clean:\n{}", both(&output));
    }

    /// Every resource in the state, by address, with its attribute values.
    fn resources(&self) -> Vec<(String, Value)> {
        let state: Value = serde_json::from_str(&self.ok(&["show", "-json"])).unwrap();
        let mut out = Vec::new();
        let mut modules = vec![&state["values"]["root_module"]];
        while let Some(module) = modules.pop() {
            for resource in module["resources"].as_array().into_iter().flatten() {
                out.push((resource["address"].as_str().unwrap().to_owned(), resource["values"].clone()));
            }
            modules.extend(module["child_modules"].as_array().into_iter().flatten());
        }
        out
    }

    fn destroy(&self, vars: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(workspace_root().join("scripts/terraform-destroy.sh"))
            .arg(&self.dir)
            .args(vars)
            .env("TF_IN_AUTOMATION", "1")
            .envs(["apply", "destroy"].map(|c| (format!("TF_CLI_ARGS_{c}"), "-no-color")))
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/terraform-destroy.sh")
    }
}

fn both(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// infra/'s .tf files (and modules) and its provider lock file, without local state or
/// user variables: `init` then checks the providers against the committed hashes.
fn copy_configuration(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != ".terraform" {
                copy_configuration(&path, &to.join(&name));
            }
        } else if name.ends_with(".tf") || name.ends_with(".tftpl") || name == ".terraform.lock.hcl" {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

fn resource<'a>(resources: &'a [(String, Value)], address: &str) -> &'a Value {
    &resources.iter().find(|(a, _)| a == address).unwrap_or_else(|| panic!("{address} not in the state")).1
}

fn environment(resources: &[(String, Value)], module: &str) -> Vec<(String, String)> {
    let function = resource(resources, &format!("{module}.aws_lambda_function.function"));
    function["environment"][0]["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
}

async fn bucket_policy(s3: &aws_sdk_s3::Client, bucket: &str) -> Value {
    let policy = s3.get_bucket_policy().bucket(bucket).send().await.expect("GetBucketPolicy");
    serde_json::from_str(policy.policy().unwrap()).unwrap()
}

/// `pattern` with IAM's `*` wildcard matches `text`.
fn iam_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| iam_match(tail, &text[head.len() + i..]))
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stack_applies_replans_clean_runs_and_destroys() {
    let moto = Moto::start();
    let config = moto.sdk_config(shared::aws::RetryProfile::Latency).await;
    let s3 = aws_sdk_s3::Client::new(&config);
    let stack = Stack::new(&moto, "terraform-apply");
    let sharded = fixture("terraform/sharded.tfvars");
    let var_file = format!("-var-file={}", sharded.display());

    // 1. A sharded fleet and a log bucket created by the stack.
    stack.use_placeholder_zips();
    stack.ok(&["validate"]);
    stack.ok(&["plan", "-input=false", "-out=tfplan", &var_file]);
    stack.ok(&["apply", "-input=false", "tfplan"]);
    stack.assert_clean_plan(&[&var_file]);

    let resources = stack.resources();
    let web = environment(&resources, "module.poller[\"web\"]");
    let has = |env: &[(String, String)], key: &str, value: &str| {
        assert!(env.iter().any(|(k, v)| k == key && v == value), "{key}={value} not in {env:?}")
    };
    has(&web, "POLICY_URI", &format!("s3://{STATE_BUCKET}/policy/web.json"));
    has(&web, "STATE_URI", &format!("s3://{STATE_BUCKET}/poller/web"));
    has(&web, "DRY_RUN", "false");
    has(&environment(&resources, "module.poller[\"batch\"]"), "DRY_RUN", "true");
    has(
        &environment(&resources, "module.processor"),
        "STATE_URI",
        &format!("s3://{STATE_BUCKET}/log-processor"),
    );
    let concurrency = |key: &str| {
        resource(&resources, &format!("module.poller[\"{key}\"].aws_lambda_function.function"))
            ["reserved_concurrent_executions"]
            .as_i64()
    };
    assert_eq!((concurrency("web"), concurrency("batch")), (Some(1), Some(-1)));
    for key in ["web", "batch"] {
        let schedule = resource(&resources, &format!("aws_cloudwatch_event_rule.poller_schedule[\"{key}\"]"));
        assert_eq!(schedule["schedule_expression"], "rate(1 minute)");
        // What Terraform wrote is a policy the poller accepts, whatever its shape.
        let object =
            s3.get_object().bucket(STATE_BUCKET).key(format!("policy/{key}.json")).send().await.unwrap();
        let text = object.body.collect().await.unwrap().into_bytes();
        let document: Value = serde_json::from_slice(&text).unwrap();
        metric_poller::policy::parse_policy(&document).unwrap_or_else(|e| panic!("policy/{key}.json: {e}"));
    }
    let processor_arn = resource(&resources, "module.processor.aws_lambda_function.function")["arn"].clone();
    let notification = resource(&resources, "aws_s3_bucket_notification.logs[0]");
    assert_eq!(notification["lambda_function"][0]["lambda_function_arn"], processor_arn);
    assert_eq!(resource(&resources, "aws_sqs_queue.processor_failures")["sqs_managed_sse_enabled"], true);
    // A dashboard per poller and the processor's (their metrics: alarms.rs).
    for address in ["aws_cloudwatch_dashboard.poller[\"web\"]", "aws_cloudwatch_dashboard.poller[\"batch\"]"]
    {
        let body: Value =
            serde_json::from_str(resource(&resources, address)["dashboard_body"].as_str().unwrap()).unwrap();
        assert_eq!(body["widgets"].as_array().map(Vec::len), Some(6), "{address}");
    }
    resource(&resources, "aws_cloudwatch_dashboard.processor");
    let alarms = resources.iter().filter(|(a, _)| a.contains("aws_cloudwatch_metric_alarm")).count();
    assert_eq!(alarms, 3 * 2 + 2 * 2 + 1, "Errors and Throttles per function, 2 per poller, failed events");

    // The buckets' policies, read back from the emulator.
    let logs_policy = bucket_policy(&s3, CREATED_LOG_BUCKET).await;
    let keys = format!("arn:aws:s3:::{CREATED_LOG_BUCKET}/*AWSLogs/{ACCOUNT}/*");
    let elb = statement(&logs_policy, "ElbAccessLogs");
    assert_eq!(elb["Resource"], keys.as_str());
    // us-east-1's Elastic Load Balancing account, from the provider's own table.
    assert_eq!(elb["Principal"]["AWS"], "arn:aws:iam::127311923021:root");
    assert_eq!(elb["Principal"]["Service"], "logdelivery.elasticloadbalancing.amazonaws.com");
    let delivery = statement(&logs_policy, "LogDeliveryWrite");
    assert_eq!(delivery["Principal"]["Service"], "delivery.logs.amazonaws.com");
    assert_eq!(delivery["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
    assert_eq!(delivery["Condition"]["StringEquals"]["s3:x-amz-acl"], "bucket-owner-full-control");
    let source_arn = format!("arn:aws:logs:us-east-1:{ACCOUNT}:*");
    assert_eq!(delivery["Condition"]["ArnLike"]["aws:SourceArn"], source_arn.as_str());
    let acl_check = statement(&logs_policy, "LogDeliveryAclCheck");
    assert_eq!(acl_check["Condition"]["ArnLike"]["aws:SourceArn"], source_arn.as_str());
    // Every other writer is denied: the Deny applies unless the writer is one of the
    // delivery services or the region's ELB account.
    let others = statement(&logs_policy, "DenyWritesExceptLogDelivery");
    assert_eq!((&others["Effect"], &others["Action"]), (&"Deny".into(), &"s3:PutObject".into()));
    assert_eq!(
        (&others["Principal"], &others["Resource"]),
        (&"*".into(), &format!("arn:aws:s3:::{CREATED_LOG_BUCKET}/*").into())
    );
    let mut services: Vec<&str> = others["Condition"]["StringNotEquals"]["aws:PrincipalServiceName"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    services.sort();
    assert_eq!(services, ["delivery.logs.amazonaws.com", "logdelivery.elasticloadbalancing.amazonaws.com"]);
    assert_eq!(others["Condition"]["StringNotEquals"]["aws:PrincipalAccount"], "127311923021");
    let state_policy = bucket_policy(&s3, STATE_BUCKET).await;
    for policy in [&logs_policy, &state_policy] {
        let tls = statement(policy, "DenyInsecureTransport");
        assert_eq!(
            (&tls["Effect"], &tls["Action"], &tls["Condition"]["Bool"]["aws:SecureTransport"]),
            (&"Deny".into(), &"s3:*".into(), &"false".into()),
            "every action, not a list of some"
        );
    }
    // The policy documents: written by the deploying principal only (moto's caller, an
    // IAM user: its ARN as is; an assumed role's would be resolved to the role's).
    let documents = statement(&state_policy, "DenyPolicyWritesExceptDeployer");
    assert_eq!(documents["Effect"], "Deny");
    assert_eq!(documents["Resource"], format!("arn:aws:s3:::{STATE_BUCKET}/policy/*").as_str());
    let writes = documents["Action"].as_array().unwrap();
    assert!(
        writes.contains(&"s3:PutObject".into()) && writes.contains(&"s3:DeleteObject".into()),
        "{writes:?}"
    );
    let deployer = &resource(&resources, "data.aws_caller_identity.current")["arn"];
    assert!(deployer.as_str().is_some_and(|arn| arn.ends_with(":user/moto")), "{deployer}");
    assert_eq!(&documents["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], deployer);
    // The processor's role: its own account's logs by default, versioned reads, and a
    // ListBucket that does not depend on s3:prefix (GetObject requests carry none).
    let role_policy: Value = serde_json::from_str(
        resource(&resources, "module.processor.aws_iam_role_policy.function")["policy"].as_str().unwrap(),
    )
    .unwrap();
    let read = statement(&role_policy, "ReadLogs");
    assert_eq!(read["Resource"], format!("arn:aws:s3:::{CREATED_LOG_BUCKET}/AWSLogs/{ACCOUNT}/*").as_str());
    assert!(read["Action"].as_array().unwrap().contains(&"s3:GetObjectVersion".into()), "{read}");
    assert!(statement(&role_policy, "FindLogsAndMarkers").get("Condition").is_none());
    assert_eq!(notification["lambda_function"][0]["filter_prefix"], format!("AWSLogs/{ACCOUNT}/").as_str());

    // 2. The poller's real binary, in the environment Terraform gave it, scales its group.
    create_launch_template(&config, "tf-lt").await;
    let enabled = tags(&[("lambda-autoscaler:enabled", "true")]);
    create_group(&config, "tf-lt", GroupSpec { name: "tf-web", min: 1, max: 10, desired: 2, tags: enabled })
        .await;
    put_metric(&config, "CPUUtilization", "tf-web", 90.0, SystemTime::now() - Duration::from_secs(20)).await;
    let mut poller_env: Vec<(&str, String)> = moto.env();
    poller_env.extend(web.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let poller = LocalLambda::start(&workspace_binary("metric-poller"), &poller_env, 8);
    poller.invoke(&fixture("events/eventbridge-scheduled.json"));
    drop(poller);
    // 90 % against a 50 % target: 2 → 4, within the policy's 2 instances per minute.
    assert_eq!(desired_capacity(&config, "tf-web").await, 4);

    // 3. An existing log bucket with a notification of its own: EventBridge mode leaves it.
    let queue_arn =
        resource(&resources, "aws_sqs_queue.processor_failures")["arn"].as_str().unwrap().to_owned();
    s3.create_bucket().bucket(EXISTING_LOG_BUCKET).send().await.unwrap();
    let theirs = aws_sdk_s3::types::QueueConfiguration::builder()
        .id("theirs")
        .queue_arn(&queue_arn)
        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
        .build()
        .unwrap();
    s3.put_bucket_notification_configuration()
        .bucket(EXISTING_LOG_BUCKET)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder().queue_configurations(theirs).build(),
        )
        .send()
        .await
        .unwrap();
    let bucket_var = format!("-var=log_bucket_name={EXISTING_LOG_BUCKET}");
    // With the normalized output, in a bucket of its own (the processor writes it in 4.).
    s3.create_bucket().bucket(OUTPUT_BUCKET).send().await.unwrap();
    let output_var = format!("-var=output_uri=s3://{OUTPUT_BUCKET}/normalized/");
    let existing = [var_file.as_str(), "-var=create_log_bucket=false", &bucket_var, &output_var];
    stack.ok(&[&["apply", "-input=false", "-auto-approve"], &existing[..]].concat());
    stack.assert_clean_plan(&existing);
    let their_notification = || async {
        let config =
            s3.get_bucket_notification_configuration().bucket(EXISTING_LOG_BUCKET).send().await.unwrap();
        config
            .queue_configurations()
            .iter()
            .map(|q| q.id().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(their_notification().await, ["theirs"], "the existing bucket's notification was changed");
    let resources = stack.resources();
    let rule = resource(&resources, "aws_cloudwatch_event_rule.log_objects[0]");
    let pattern: Value = serde_json::from_str(rule["event_pattern"].as_str().unwrap()).unwrap();
    assert_eq!(pattern["detail"]["bucket"]["name"][0], EXISTING_LOG_BUCKET);
    assert_eq!(pattern["detail"]["object"]["key"][0]["wildcard"], format!("AWSLogs/{ACCOUNT}/*.gz").as_str());
    assert_eq!(resource(&resources, "aws_cloudwatch_event_target.log_objects[0]")["arn"], processor_arn);
    resource(&resources, "aws_lambda_permission.processor_events[0]");
    assert!(!resources.iter().any(|(a, _)| a.starts_with("aws_s3_bucket_notification")));

    // 4. The processor's real binary handles a log object's EventBridge event and keeps its
    // markers where its role allows.
    let key = format!("AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/11/30/tf_alb.log.gz");
    let log = gzip(&std::fs::read(fixture("logs/alb.log")).unwrap());
    s3.put_object().bucket(EXISTING_LOG_BUCKET).key(&key).body(log.into()).send().await.unwrap();
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/eventbridge-object-created.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["bucket"]["name"] = EXISTING_LOG_BUCKET.into();
    event["detail"]["object"]["key"] = key.clone().into();
    let event_file = stack.dir.join("event.json");
    std::fs::write(&event_file, event.to_string()).unwrap();
    let mut processor_env: Vec<(&str, String)> = moto.env();
    let processor_vars = environment(&resources, "module.processor");
    processor_env.extend(processor_vars.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let processor = LocalLambda::start(&workspace_binary("log-processor"), &processor_env, 30);
    let response = processor.invoke(&event_file);
    drop(processor);
    assert_eq!(response["objects"][0]["result"], "processed", "{response}");
    assert!(response["objects"][0]["records"].as_u64() > Some(0), "{response}");
    let role_policy: Value = serde_json::from_str(
        resource(&resources, "module.processor.aws_iam_role_policy.function")["policy"].as_str().unwrap(),
    )
    .unwrap();
    let granted = statement(&role_policy, "IdempotencyMarkers")["Resource"].as_str().unwrap().to_owned();
    let markers = s3.list_objects_v2().bucket(STATE_BUCKET).prefix("log-processor/").send().await.unwrap();
    assert!(!markers.contents().is_empty(), "no idempotency marker written");
    for marker in markers.contents() {
        let arn = format!("arn:aws:s3:::{STATE_BUCKET}/{}", marker.key().unwrap());
        assert!(iam_match(&granted, &arn), "{arn} is outside the role's grant {granted}");
    }
    // The output grant is exactly <prefix>/*, in this account only; what the processor
    // wrote lies inside it.
    let output = statement(&role_policy, "NormalizedOutput");
    let granted = output["Resource"].as_str().unwrap().to_owned();
    assert_eq!(granted, format!("arn:aws:s3:::{OUTPUT_BUCKET}/normalized/*"));
    assert_eq!(output["Condition"]["StringEquals"]["s3:ResourceAccount"], ACCOUNT);
    let written = s3.list_objects_v2().bucket(OUTPUT_BUCKET).send().await.unwrap();
    assert!(!written.contents().is_empty(), "no normalized output written");
    for object in written.contents() {
        let arn = format!("arn:aws:s3:::{OUTPUT_BUCKET}/{}", object.key().unwrap());
        assert!(iam_match(&granted, &arn), "{arn} is outside the role's grant {granted}");
    }

    // 5. Destroy needs no build, and deletes nothing without the opt-in.
    std::fs::remove_dir_all(&stack.zips).unwrap();
    let before = stack.resources().len();
    let refused = stack.destroy(&existing, &[]);
    assert!(!refused.status.success());
    assert!(both(&refused).contains("Nothing was destroyed"), "{}", both(&refused));
    assert_eq!(stack.resources().len(), before, "a refused destroy deleted something");
    let destroyed = stack.destroy(
        &[&existing[..], &["-var=force_destroy_buckets=true"]].concat(),
        &[("TF_CLI_ARGS_destroy", "-no-color -auto-approve")],
    );
    assert!(destroyed.status.success(), "{}", both(&destroyed));
    assert!(stack.resources().is_empty(), "resources left after destroy");
    // The existing log bucket is not the stack's: it stays, with its own notification.
    assert_eq!(their_notification().await, ["theirs"]);
}

/// Whitespace collapsed and the diagnostics' box drawing removed, for comparing messages.
fn normalized(text: &str) -> String {
    text.replace(['│', '╷', '╵'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every `error_message` of infra/variables.tf, as Terraform prints it (escapes resolved).
fn validation_messages() -> Vec<String> {
    let text = std::fs::read_to_string(workspace_root().join("infra/variables.tf")).unwrap();
    let body: hcl::Body = hcl::parse(&text).unwrap();
    body.blocks()
        .flat_map(|variable| variable.body().blocks().filter(|b| b.identifier() == "validation"))
        .map(|validation| {
            let message = validation.body().attributes().find(|a| a.key() == "error_message").unwrap();
            match message.expr() {
                hcl::Expression::String(s) => s.clone(),
                other => panic!("error_message is not a plain string: {other}"),
            }
        })
        .collect()
}

/// Each invalid value gets the message its validation gives, and every validation in
/// infra/variables.tf is shown by one of these cases (a new one needs its case here).
#[test]
fn every_variable_validation_shows_its_message() {
    let moto = Moto::start();
    let stack = Stack::new(&moto, "terraform-validations");
    stack.use_placeholder_zips();
    let valid_pollers = r#"pollers = { main = { policy = { groups = [{ name = "web", metrics = [] }] } } }"#;
    let cases = [
        // Every variable but pollers, each invalid at once. (A validation that names another
        // variable is skipped while that one is invalid: those get cases of their own.)
        format!(
            r#"name_prefix = "Bad_Prefix"
            state_bucket_name = "Bad_Bucket"
            log_bucket_name = "x"
            notification_mode = "sqs"
            log_formats = "cdn/=apache"
            metrics_namespace = "AWS/Mine"
            processor_timeout_seconds = 5
            processor_memory_mb = 64
            processor_reserved_concurrency = -2
            processor_max_retry_attempts = 3
            processor_max_event_age_seconds = 30
            log_retention_days = 2
            marker_retention_days = 0
            alarm_topic_arn = "arn:aws:sqs:us-east-1:123456789012:q"
            {valid_pollers}"#
        ),
        // Locations that would swallow logs.
        format!(
            r#"state_bucket_name = "shared-bucket"
            log_bucket_name = "shared-bucket"
            log_prefix = "log-processor/alb/"
            {valid_pollers}"#
        ),
        // Normalized output written where the policy documents are.
        format!(
            r#"state_bucket_name = "state-bucket"
            log_bucket_name = "log-bucket"
            output_uri = "s3://state-bucket/normalized"
            {valid_pollers}"#
        ),
        // A log prefix covering the stack's own objects in a shared bucket.
        format!(
            r#"state_bucket_name = "shared-bucket"
            log_bucket_name = "shared-bucket"
            log_prefix = "p"
            {valid_pollers}"#
        ),
        // Pollers: badly keyed, without groups; an output location that is a whole bucket.
        r#"state_bucket_name = "state-bucket"
        log_bucket_name = "log-bucket"
        output_uri = "s3://output-bucket"
        pollers = { "Main Poller" = { policy = { groups = [] } } }"#
            .to_owned(),
        // Pollers: unknown settings, a group by name and tags, settings out of range; an
        // output location that is no S3 URI.
        r#"state_bucket_name = "state-bucket"
        log_bucket_name = "log-bucket"
        output_uri = "https://output-bucket/x"
        pollers = { main = {
          policy = { groups = [{ name = "web", tags = { team = "web" }, metrics = [] }] }
          dryrun = true, tick_interval_seconds = 0, timeout_seconds = 5, memory_mb = 64
        } }"#
            .to_owned(),
    ];
    let mut shown = String::new();
    for (i, case) in cases.iter().enumerate() {
        let file = stack.dir.join(format!("invalid-{i}.tfvars"));
        std::fs::write(&file, case).unwrap();
        let output = stack.run(&["plan", "-input=false", &format!("-var-file={}", file.display())], &[]);
        assert!(!output.status.success(), "case {i} planned:\n{case}");
        shown.push_str(&normalized(&both(&output)));
        shown.push('\n');
    }
    let missing: Vec<String> =
        validation_messages().into_iter().filter(|m| !shown.contains(&normalized(m))).collect();
    assert!(missing.is_empty(), "validations no case shows:\n{}", missing.join("\n"));
}
