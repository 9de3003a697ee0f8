//! Bad input: a one-line error that names the problem, a non-zero exit, nothing on the target.
mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

/// Runs a bad command and checks the shape of the failure.
fn assert_refused(setup: &Setup, args: &[String], expect: &str) {
    let out = run(args, Duration::from_secs(60));
    let message = stderr(&out);
    assert!(!out.status.success(), "must fail: {args:?}");
    let error_lines: Vec<&str> =
        message.lines().filter(|l| l.starts_with("kmirror: error:") || l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "exactly one error line: {message}");
    assert!(error_lines[0].contains(expect), "the error names the problem ({expect}): {message}");
    // Nothing was created on the target: not the data topic, not kmirror's own.
    let shard_topic = format!("kmirror.shards.{}", setup.name);
    assert_eq!(setup.target.partition_count(&shard_topic).expect("metadata"), None, "{message}");
}

fn with_topic() -> (Setup, String) {
    let setup = Setup::new();
    let t = topic("input");
    setup.source.create_topic(&t, 1, &[]).expect("topic");
    setup.source.produce(&t, 0, &keyed("k", 0..10)).expect("produce");
    (setup, t)
}

#[test]
fn unreachable_bootstrap_is_named() {
    let (setup, t) = with_topic();
    let port = kmirror_testcontainers::free_loopback_port().expect("port");
    let mut args = setup.args(&t, &["--connect-timeout", "2", "--until-caught-up"]);
    let i = args.iter().position(|a| a == "--source").expect("flag") + 1;
    args[i] = format!("127.0.0.1:{port}");
    assert_refused(&setup, &args, &format!("source cluster at 127.0.0.1:{port} is unreachable"));
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None);
}

#[test]
fn invalid_regex_is_named() {
    let (setup, _) = with_topic();
    assert_refused(
        &setup,
        &setup.args("orders[", &["--until-caught-up"]),
        "invalid --topics regex 'orders['",
    );
}

#[test]
fn properties_syntax_error_names_the_line() {
    let (setup, t) = with_topic();
    let mut file = tempfile::NamedTempFile::new().expect("file");
    writeln!(file, "# consumer settings\nclient.id=mirror\nthis-line-has-no-value").expect("write");
    let path = file.path().display().to_string();
    let args = setup.args(&t, &["--consumer.config", &path, "--until-caught-up"]);
    assert_refused(&setup, &args, &format!("{path}: line 3:"));
}

#[test]
fn read_uncommitted_is_refused_with_the_reason() {
    let (setup, t) = with_topic();
    let args = setup.args(&t, &["--set", "source.isolation.level=read_uncommitted", "--until-caught-up"]);
    assert_refused(&setup, &args, "isolation.level=read_uncommitted is refused");
}

#[test]
fn unknown_flag_is_refused() {
    let (setup, t) = with_topic();
    assert_refused(&setup, &setup.args(&t, &["--no-such-flag"]), "--no-such-flag");
}

#[test]
fn state_dir_that_is_a_file_is_named() {
    let (setup, t) = with_topic();
    let file = tempfile::NamedTempFile::new().expect("file");
    let args = setup.args_with_state(&t, &["--until-caught-up"], file.path().to_path_buf());
    assert_refused(&setup, &args, "is a file, not a directory");
}

#[test]
fn too_small_target_topic_is_named_and_never_remapped() {
    let (setup, _) = with_topic();
    let t = topic("small");
    setup.source.create_topic(&t, 4, &[]).expect("source");
    setup.target.create_topic(&t, 1, &[]).expect("target");
    setup.source.produce(&t, 3, &keyed("k", 0..10)).expect("produce");
    let out = setup.mirror_until_caught_up(&t, &[]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains(&format!("target topic {t} has 1 partitions but source topic {t} has 4")),
        "{message}"
    );
    assert!(setup.target.audit_partition(&t, 0).expect("audit").visible.is_empty(), "nothing written");
}
