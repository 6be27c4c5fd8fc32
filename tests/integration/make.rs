//! `make deploy`, `make plan` and `make destroy` stop first, with one line saying what to
//! do, when a prerequisite is missing (README, Deploy): each case here removes one.

use std::path::Path;
use std::process::Command;

use integration_tests::{temp_dir, workspace_root};

/// Where `program` is on this process's PATH.
fn which(program: &str) -> std::path::PathBuf {
    let paths = std::env::var_os("PATH").expect("PATH");
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{program} not on PATH"))
}

/// `make deploy-prerequisites` with only the environment given, against the tfvars file
/// `tfvars`, and a PATH of only the tools the Makefile runs there (and a stand-in
/// `terraform` when `terraform` is set), wherever the real terraform is installed.
fn prerequisites(env: &[(&str, &str)], terraform: bool, tfvars: &Path) -> (bool, String) {
    let home = temp_dir("make-home");
    let bin = temp_dir("make-bin");
    for tool in ["grep", "cksum", "cut", "id"] {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    if terraform {
        // Only found, never run.
        std::os::unix::fs::symlink(which("true"), bin.join("terraform")).unwrap();
    }
    let output = Command::new(which("make"))
        .args(["--no-print-directory", "-s", "deploy-prerequisites"])
        .arg(format!("TFVARS={}", tfvars.display()))
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", &home)
        .envs(env.iter().copied())
        .output()
        .expect("run make");
    // The message is on stdout; make adds its own "*** Error 1" line on stderr.
    (output.status.success(), String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The environment, whether terraform is found, the tfvars file, and the message expected.
type Case<'a> = (&'a [(&'a str, &'a str)], bool, &'a Path, &'a str);

#[test]
fn deploy_stops_with_one_line_for_each_missing_prerequisite() {
    let dir = temp_dir("make-tfvars");
    let complete = dir.join("complete.tfvars");
    std::fs::write(&complete, "state_bucket_name = \"s\"\nlog_bucket_name = \"l\"\npollers = {}\n").unwrap();
    let partial = dir.join("partial.tfvars");
    std::fs::write(&partial, "state_bucket_name = \"s\"\npollers = {}\n").unwrap();
    let missing = dir.join("missing.tfvars");
    let keys = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")];
    let region = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_REGION", "us-east-1")];

    let cases: [Case; 5] = [
        (&region, false, &complete, "terraform not found: install Terraform >= 1.9"),
        (&[], true, &complete, "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID"),
        (&keys, true, &complete, "no AWS region: set AWS_REGION"),
        (&region, true, &missing, "missing.tfvars not found: cp infra/examples/terraform.tfvars.example"),
        (&region, true, &partial, "partial.tfvars does not set log_bucket_name"),
    ];
    for (env, terraform, tfvars, message) in cases {
        let (ok, text) = prerequisites(env, terraform, tfvars);
        assert!(!ok, "passed without a prerequisite: {message}");
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        assert!(text.contains(message), "expected {message:?}, got {text:?}");
    }
    let (ok, text) = prerequisites(&region, true, &complete);
    assert!(ok && text.is_empty(), "{text}");
    // A profile alone names both credentials and region.
    let (ok, text) = prerequisites(&[("AWS_PROFILE", "deploy")], true, &complete);
    assert!(ok, "{text}");
}
