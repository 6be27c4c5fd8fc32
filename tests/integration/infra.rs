//! infra/'s wiring read from its HCL (every `.tf` file parsed with hcl-rs), beside the real
//! apply in terraform.rs: what an apply against the emulator cannot show (which resource
//! feeds which, no wildcard grants), and the example tfvars' HCL policy run through the
//! poller's own validator.

use std::collections::BTreeMap;

use hcl::{Block, Body, Expression};
use integration_tests::workspace_root;

/// Every block of every .tf file in infra/ and its modules, by path relative to infra/.
pub fn terraform() -> BTreeMap<String, Body> {
    let root = workspace_root().join("infra");
    let mut dirs = vec![root.clone()];
    let mut files = BTreeMap::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "tf") {
                let text = std::fs::read_to_string(&path).unwrap();
                let body = hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                files.insert(path.strip_prefix(&root).unwrap().to_string_lossy().into_owned(), body);
            }
        }
    }
    files
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels().iter().map(|l| l.as_str()).collect()
}

fn blocks<'a>(files: &'a BTreeMap<String, Body>, kind: &str, resource_type: &str) -> Vec<&'a Block> {
    files
        .values()
        .flat_map(|b| b.blocks())
        .filter(|b| b.identifier() == kind && labels(b).first() == Some(&resource_type))
        .collect()
}

fn attribute<'a>(block: &'a Block, key: &str) -> Option<&'a Expression> {
    block.body().attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// The string literals of an array expression.
fn strings(expr: Option<&Expression>) -> Vec<String> {
    match expr {
        Some(Expression::Array(items)) => items
            .iter()
            .map(|e| match e {
                Expression::String(s) => s.clone(),
                other => panic!("not a string literal: {other}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// An expression as Terraform source text (for references and templates).
fn text(expr: &Expression) -> String {
    expr.to_string()
}

fn all_blocks<'a>(body: &'a Body, out: &mut Vec<&'a Block>) {
    for block in body.blocks() {
        out.push(block);
        all_blocks(block.body(), out);
    }
}

fn module<'a>(files: &'a BTreeMap<String, Body>, name: &str) -> &'a Block {
    blocks(files, "module", name).first().copied().unwrap_or_else(|| panic!("module {name} missing"))
}

#[test]
fn every_file_parses_and_both_functions_are_arm64_al2023_bootstrap_zips() {
    let files = terraform();
    for name in ["versions.tf", "variables.tf", "main.tf", "iam.tf", "outputs.tf", "modules/function/main.tf"]
    {
        assert!(files.contains_key(name), "infra/{name} missing");
    }
    // One function resource, in the module both functions use.
    let functions = blocks(&files, "resource", "aws_lambda_function");
    assert_eq!(functions.len(), 1);
    let function = functions[0];
    assert_eq!(attribute(function, "runtime").map(text).as_deref(), Some("\"provided.al2023\""));
    assert_eq!(strings(attribute(function, "architectures")), ["arm64"]);
    assert_eq!(attribute(function, "handler").map(text).as_deref(), Some("\"bootstrap\""));
    assert!(attribute(function, "source_code_hash").is_some_and(|e| text(e).contains("filebase64sha256")));
    let logging = function.body().blocks().find(|b| b.identifier() == "logging_config").unwrap();
    assert_eq!(attribute(logging, "log_format").map(text).as_deref(), Some("\"JSON\""));
    let group = blocks(&files, "resource", "aws_cloudwatch_log_group")[0];
    assert!(attribute(group, "retention_in_days").is_some());

    let (poller, processor) = (module(&files, "poller"), module(&files, "processor"));
    for (block, zip, variables) in [
        (
            poller,
            "metric-poller/bootstrap.zip",
            &["POLICY_URI", "STATE_URI", "TICK_INTERVAL_SECONDS", "DRY_RUN"][..],
        ),
        (processor, "log-processor/bootstrap.zip", &["METRICS_NAMESPACE", "STATE_URI"][..]),
    ] {
        assert_eq!(attribute(block, "source").map(text).as_deref(), Some("\"./modules/function\""));
        assert!(text(attribute(block, "zip_path").unwrap()).contains(zip));
        let environment = text(attribute(block, "environment").unwrap());
        for variable in variables {
            assert!(environment.contains(variable), "{variable} not set: {environment}");
        }
    }
    // N pollers from one map (of any shape, with defaults filled in); reserved concurrency
    // 1 by default.
    assert_eq!(attribute(poller, "for_each").map(text).as_deref(), Some("local.pollers"));
    let locals = files["pollers.tf"].blocks().find(|b| b.identifier() == "locals").unwrap();
    assert!(text(attribute(locals, "pollers").unwrap()).contains("try(poller.reserved_concurrency, 1)"));
}

#[test]
fn triggers_are_wired_and_scoped() {
    let files = terraform();
    let permissions = blocks(&files, "resource", "aws_lambda_permission");
    assert_eq!(permissions.len(), 3, "the schedule's, the bucket notification's, the EventBridge rule's");
    for permission in &permissions {
        assert!(attribute(permission, "source_arn").is_some(), "{:?} lacks source_arn", labels(permission));
    }
    let bucket_permission = permissions.iter().find(|p| labels(p)[1] == "processor_bucket").unwrap();
    assert!(attribute(bucket_permission, "source_account").is_some());
    let rules = blocks(&files, "resource", "aws_cloudwatch_event_rule");
    let schedule = rules.iter().find(|r| labels(r)[1] == "poller_schedule").unwrap();
    assert_eq!(attribute(schedule, "schedule_expression").map(text).as_deref(), Some("\"rate(1 minute)\""));
    let targets = blocks(&files, "resource", "aws_cloudwatch_event_target");
    let target = targets.iter().find(|t| labels(t)[1] == "poller").unwrap();
    assert!(text(attribute(target, "arn").unwrap()).starts_with("module.poller["));
    let log_objects = targets.iter().find(|t| labels(t)[1] == "log_objects").unwrap();
    assert_eq!(text(attribute(log_objects, "arn").unwrap()), "module.processor.function_arn");
    let notification = blocks(&files, "resource", "aws_s3_bucket_notification")[0];
    let dynamic = notification.body().blocks().find(|b| b.identifier() == "dynamic").unwrap();
    assert_eq!(labels(dynamic), ["lambda_function"]);
    let lambda = dynamic.body().blocks().find(|b| b.identifier() == "content").unwrap();
    assert_eq!(text(attribute(lambda, "lambda_function_arn").unwrap()), "lambda_function.value");
    assert!(text(attribute(dynamic, "for_each").unwrap()).contains("module.processor.function_arn"));
    assert_eq!(strings(attribute(lambda, "events")), ["s3:ObjectCreated:*"]);
    assert!(attribute(notification, "depends_on").is_some_and(|d| text(d).contains("aws_lambda_permission")));
}

#[test]
fn failed_log_events_land_in_an_encrypted_queue_and_every_alarm_notifies() {
    let files = terraform();
    let invoke = blocks(&files, "resource", "aws_lambda_function_event_invoke_config")[0];
    for key in ["maximum_retry_attempts", "maximum_event_age_in_seconds"] {
        assert!(attribute(invoke, key).is_some(), "{key}");
    }
    let destination = invoke.body().blocks().next().unwrap().body().blocks().next().unwrap();
    assert_eq!(destination.identifier(), "on_failure");
    assert!(
        text(attribute(destination, "destination").unwrap()).contains("aws_sqs_queue.processor_failures.arn")
    );
    let queue = blocks(&files, "resource", "aws_sqs_queue")[0];
    assert_eq!(attribute(queue, "sqs_managed_sse_enabled").map(text).as_deref(), Some("true"));

    let alarms = blocks(&files, "resource", "aws_cloudwatch_metric_alarm");
    let names: Vec<&str> = alarms.iter().map(|a| labels(a)[1]).collect();
    for expected in ["errors", "throttles", "poller_missed_ticks", "poller_not_running", "processor_failures"]
    {
        assert!(names.contains(&expected), "alarm {expected} missing: {names:?}");
    }
    for alarm in alarms {
        assert!(attribute(alarm, "alarm_actions").is_some(), "{:?} notifies no one", labels(alarm));
    }
}

#[test]
fn every_variable_and_output_is_described_and_typed() {
    let files = terraform();
    for (file, body) in &files {
        for block in body.blocks() {
            match block.identifier() {
                "variable" => {
                    assert!(
                        attribute(block, "description").is_some(),
                        "{file}: variable {:?}",
                        labels(block)
                    );
                    assert!(
                        attribute(block, "type").is_some(),
                        "{file}: variable {:?} untyped",
                        labels(block)
                    );
                }
                "output" => {
                    assert!(attribute(block, "description").is_some(), "{file}: output {:?}", labels(block));
                }
                _ => {}
            }
        }
    }
}

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let files = terraform();
    let mut every = Vec::new();
    for body in files.values() {
        all_blocks(body, &mut every);
    }
    let statements: Vec<&&Block> = every.iter().filter(|b| b.identifier() == "statement").collect();
    assert!(statements.len() >= 6, "{} statements", statements.len());
    for statement in statements {
        let Some(Expression::Array(actions)) = attribute(statement, "actions") else {
            panic!("statement without actions")
        };
        // A Deny may cover every action (the buckets' TLS-only statements); a grant may not.
        if attribute(statement, "effect").map(text).as_deref() == Some("\"Deny\"") {
            continue;
        }
        for action in actions {
            let Expression::String(action) = action else { panic!("non-literal action {action}") };
            assert!(action != "*" && !action.ends_with(":*"), "wildcard action {action}");
        }
    }
    // A poller may scale only groups tagged enabled.
    let iam = &files["iam.tf"];
    let mut blocks_in_iam = Vec::new();
    all_blocks(iam, &mut blocks_in_iam);
    let scale = blocks_in_iam
        .iter()
        .find(|b| {
            b.identifier() == "statement"
                && attribute(b, "sid").map(text).as_deref() == Some("\"ScaleOnlyEnabledGroups\"")
        })
        .unwrap();
    let condition = scale.body().blocks().find(|b| b.identifier() == "condition").unwrap();
    assert_eq!(
        attribute(condition, "variable").map(text).as_deref(),
        Some("\"autoscaling:ResourceTag/lambda-autoscaler:enabled\"")
    );
}

#[test]
fn the_example_tfvars_policy_is_valid_for_the_poller() {
    let path = workspace_root().join("infra/examples/terraform.tfvars.example");
    let tfvars: serde_json::Value = hcl::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // What jsonencode(each.value.policy) writes.
    let policy = &tfvars["pollers"]["main"]["policy"];
    let document = metric_poller::policy::parse_policy(policy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(document.groups[0].metrics.len(), 2);
    assert_eq!(document.groups[0].behavior.scale_down.stabilization_seconds, 300);
}
