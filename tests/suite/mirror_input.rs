//! Bad input: a one-line error that names the problem, a non-zero exit, nothing on the target.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::*;

/// Runs a bad command and checks the shape of the failure.
fn assert_refused(setup: &Setup, args: &[String], expect: &str) {
    let out = run(args, Duration::from_secs(60));
    let message = stderr(&out);
    assert!(!out.status.success(), "must fail: {args:?}");
    let error_lines: Vec<&str> =
        message.lines().filter(|l| l.starts_with("kmirror: error:") || l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "exactly one error line: {message}");
    assert!(error_lines[0].contains(expect), "the error names the problem ({expect}): {message}");
    // Nor is it buried under librdkafka's own lines on the same failure.
    assert!(!message.lines().any(|l| l.contains(" ERROR ")), "no other error line: {message}");
    // Nothing was created on the target: not the data topic, not kmirror's own.
    let shard_topic = format!("kmirror.shards.{}", setup.name);
    assert_eq!(setup.target.partition_count(&shard_topic).expect("metadata"), None, "{message}");
}

/// The last line kmirror wrote to stderr that is not blank: its error line.
fn last_line(said: &str) -> &str {
    said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default()
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

/// Each subcommand that cannot reach the target says so in one line, exit non-zero, and
/// librdkafka's own lines on the refused connections do not bury it.
#[test]
fn every_command_names_an_unreachable_target_in_one_line() {
    let (setup, t) = with_topic();
    let port = kmirror_testcontainers::free_loopback_port().expect("port");
    let target = format!("127.0.0.1:{port}");
    let state = setup.state_dir.path().display().to_string();
    let common = ["--source", setup.source.bootstrap(), "--target", &target, "--name", &setup.name];
    let commands: [&[&str]; 5] = [
        &["translate-offsets", "--groups", "g.*", "--state-dir", &state],
        &["verify", "--topics", &t, "--state-dir", &state],
        &["status"],
        &["failover", "--groups", "g.*", "--state-dir", &state],
        &["failback", "--state-dir", &state],
    ];
    for command in commands {
        let mut args: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        args.extend(common.iter().map(|a| a.to_string()));
        args.extend(["--connect-timeout".to_string(), "2".to_string()]);
        let out = run(&args, Duration::from_secs(60));
        let message = stderr(&out);
        assert!(!out.status.success(), "must fail: {args:?}: {message}");
        let error_lines: Vec<&str> = message.lines().filter(|l| l.starts_with("kmirror: error:")).collect();
        assert_eq!(error_lines.len(), 1, "exactly one error line for {}: {message}", command[0]);
        assert!(
            error_lines[0].contains(&format!("target cluster at {target} is unreachable")),
            "{}: {message}",
            command[0]
        );
        assert!(
            !message.lines().any(|l| l.contains(" ERROR ")),
            "{}: no other error line: {message}",
            command[0]
        );
    }
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

/// A pattern that matches no source topic is the flag's mistake, said as a bad pattern is (exit
/// 2; it exited 1, as a cluster's failure does).
#[test]
fn a_pattern_that_matches_no_topic_is_a_usage_error() {
    let (setup, t) = with_topic();
    let args = setup.args(&format!("{t}-typo"), &["--until-caught-up"]);
    assert_refused(&setup, &args, &format!("no source topic matches --topics '{t}-typo'"));
    let out = run(&args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// More replicas than the target has brokers: the broker says only "invalid replication
/// factor"; kmirror names the flag and the number that fits (exit 2, nothing made).
#[test]
fn a_replication_factor_above_the_targets_brokers_names_the_fit() {
    let (setup, t) = with_topic();
    let args = setup.args(&t, &["--replication-factor", "9", "--until-caught-up"]);
    assert_refused(
        &setup,
        &args,
        "with 9 replicas (--replication-factor 9), more replicas than it has brokers: it has",
    );
    let out = run(&args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("or less"), "{}", stderr(&out));
    assert_eq!(setup.target.partition_count(&t).expect("metadata"), None, "no copy was made");
}

/// The same on a later run, where kmirror's own topics exist and only a new data topic is to be
/// made: the topic is left out with the same words and exit 2 (it was folded into "errors in
/// topics" with exit 1), and the topic copied before is untouched.
#[test]
fn a_replication_factor_above_the_targets_brokers_names_the_fit_on_a_later_run_too() {
    let (setup, copied) = with_topic();
    assert_success(&setup.mirror_until_caught_up(&copied, &[]));
    let new = topic("input-new");
    setup.source.create_topic(&new, 1, &[]).expect("topic");
    setup.source.produce(&new, 0, &keyed("n", 0..5)).expect("produce");
    let both = format!("^({copied}|{new})$");
    let out = setup.mirror_until_caught_up(&both, &["--replication-factor", "9"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let last = last_line(&said);
    assert!(
        last.starts_with("kmirror: error:")
            && last.contains(&format!("errors in topics {new}"))
            && last.contains("with 9 replicas (--replication-factor 9), more replicas than it has brokers")
            && last.contains("or less"),
        "{said}"
    );
    assert_eq!(setup.target.partition_count(&new).expect("metadata"), None, "no copy was made");
    setup.assert_exactly_once(&copied, 1, Some(10));
}

/// Kafka takes '.' and '_' in topic names as one: a mirror whose --name differs from another's
/// only there cannot make its own topics on their target. The refusal names the topic named
/// alike and the fix, with exit 2 (it said "Broker: Invalid topic", exit 1), and nothing is
/// copied.
#[test]
fn a_name_differing_from_another_mirrors_only_in_dot_and_underscore_is_refused_by_name() {
    let (setup, t) = with_topic();
    let named = |name: &str, state: &std::path::Path| {
        let mut args = setup.args_with_state(&t, &["--until-caught-up"], state.to_path_buf());
        let at = args.iter().position(|a| a == "--name").expect("--name") + 1;
        args[at] = name.to_string();
        args
    };
    let dotted = format!("{}.x", setup.name);
    let first = run(&named(&dotted, &setup.state_dir.path().join("dotted")), Duration::from_secs(60));
    assert_success(&first);
    let underscored = format!("{}_x", setup.name);
    let out = run(&named(&underscored, &setup.state_dir.path().join("underscored")), Duration::from_secs(60));
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let last = last_line(&said);
    assert!(
        last.starts_with("kmirror: error: target cluster refused to create topic kmirror.")
            && last.contains(&format!("{underscored}: topic kmirror."))
            && last
                .contains(&format!("{dotted} is there, and Kafka takes '.' and '_' in topic names as one"))
            && last.ends_with("give this mirror another --name"),
        "{said}"
    );
    let shards = format!("kmirror.shards.{underscored}");
    assert_eq!(setup.target.partition_count(&shards).expect("metadata"), None, "{said}");
    setup.assert_exactly_once(&t, 1, Some(10));
}

/// A transaction timeout above the target brokers' `transaction.max.timeout.ms` (15 min by
/// default): the brokers refuse every producer's first call in words that name neither the
/// value nor the setting; kmirror names both and the fix (exit 2), and copies nothing.
#[test]
fn a_transaction_timeout_above_the_brokers_maximum_names_the_setting() {
    let (setup, t) = with_topic();
    let args = setup.args(&t, &["--set", "target.transaction.timeout.ms=2000000", "--until-caught-up"]);
    let out = run(&args, Duration::from_secs(60));
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let last = last_line(&said);
    assert!(
        last.starts_with("kmirror: error: target config: target.transaction.timeout.ms 2000000 is more than the target's brokers allow")
            && last.contains("give a smaller target.transaction.timeout.ms"),
        "{said}"
    );
    if setup.target.partition_count(&t).expect("metadata").is_some() {
        let copied = setup.target.read_uncommitted(&t, 0).expect("read");
        assert!(copied.is_empty(), "nothing copied: {copied:?}");
    }
}

/// translate-offsets and verify name a bad pattern before they ask any cluster (they said the
/// unreachable cluster first, exit 1, where a typo is a usage error).
#[test]
fn a_bad_pattern_is_named_before_any_cluster_is_asked() {
    let nowhere = "127.0.0.1:1";
    for (command, flag) in [
        (vec!["translate-offsets", "--target", nowhere, "--name", "dr", "--groups", "("], "--groups"),
        (
            vec!["verify", "--source", nowhere, "--target", nowhere, "--name", "dr", "--topics", "("],
            "--topics",
        ),
    ] {
        let out = run(&command.iter().map(|a| a.to_string()).collect::<Vec<_>>(), Duration::from_secs(60));
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {said}");
        assert!(said.contains(&format!("invalid {flag} regex '('")), "{command:?}: {said}");
    }
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

/// A batch that finds every mirrorable partition copied still fails on a topic it cannot mirror
/// (it exited 0 with "nothing to do", the failing topic unnamed), and touches neither topic.
#[test]
fn a_batch_with_nothing_left_to_copy_still_fails_on_a_topic_it_cannot_mirror() {
    let (setup, copied) = with_topic();
    let first = setup.mirror_until_caught_up(&copied, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let small = topic("small");
    setup.source.create_topic(&small, 4, &[]).expect("source");
    setup.target.create_topic(&small, 1, &[]).expect("target");
    setup.source.produce(&small, 3, &keyed("k", 0..10)).expect("produce");
    let out = setup.mirror_until_caught_up(&format!("^({copied}|{small})$"), &[]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{message}");
    let errors: Vec<&str> = message.lines().filter(|l| l.starts_with("kmirror: error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {message}");
    assert!(
        errors[0].contains(&format!("target topic {small} has 1 partitions but source topic {small} has 4")),
        "{message}"
    );
    assert!(setup.target.audit_partition(&small, 0).expect("audit").visible.is_empty(), "nothing written");
    let audit = setup.audit(&copied, 1);
    assert_eq!(audit[0].target_records, 10, "the copied topic as before: {audit:?}");
    assert!(audit[0].identical && audit[0].duplicates == 0 && audit[0].missing == 0, "{audit:?}");
}

/// `--print-config` shows every setting, and what it prints is a config file that gives the
/// same effective configuration back.
#[test]
fn print_config_shows_every_setting_and_reads_back_as_the_same_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let flags: Vec<String> = [
        "mirror",
        "--source",
        "src.example:9092",
        "--target",
        "dst.example:9092",
        "--name",
        "roundtrip",
        "--topics",
        "orders.*",
        "--transform",
        "filter:drop:key=^test-",
        "--transform",
        "headers:add:mirrored-by=kmirror",
        "--on-transform-error",
        "skip",
        "--source-alias",
        "east",
        "--target-alias",
        "west",
        "--coordinate",
        "--session-timeout",
        "7",
        "--progress",
        "off",
        "--exclude-configs",
        "retention\\..*",
        "--state-dir",
        &state.display().to_string(),
        "--set",
        "target.linger.ms=20",
        "--print-config",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let first = run(&flags, Duration::from_secs(30));
    assert_success(&first);
    let printed = String::from_utf8_lossy(&first.stdout).into_owned();
    let config: toml::Value = toml::from_str(&printed).expect("TOML");
    let transforms: Vec<&str> =
        config["transforms"].as_array().expect("transforms").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(transforms, ["filter:drop:key=^test-", "headers:add:mirrored-by=kmirror"]);
    assert_eq!(config["on_transform_error"].as_str(), Some("skip"));
    assert_eq!(
        (config["source_alias"].as_str(), config["target_alias"].as_str()),
        (Some("east"), Some("west"))
    );
    assert_eq!(config["coordinate"].as_bool(), Some(true));
    assert_eq!(config["session_timeout"].as_integer(), Some(7));
    assert_eq!(config["progress"].as_str(), Some("off"));
    assert_eq!(config["exclude_configs"].as_str(), Some("retention\\..*"));
    assert_eq!(config["target"]["properties"]["linger.ms"].as_str(), Some("20"));

    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &printed).expect("write");
    let again: Vec<String> = ["mirror", "--config", &file.display().to_string(), "--print-config"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let second = run(&again, Duration::from_secs(30));
    assert_success(&second);
    assert_eq!(String::from_utf8_lossy(&second.stdout), printed, "the printed config reads back the same");

    // A time far beyond any use is a typo: refused by name.
    let mut huge = flags.clone();
    huge.extend(["--refresh-interval".to_string(), u64::MAX.to_string()]);
    let out = run(&huge, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--refresh-interval 18446744073709551615 is out of range"),
        "{}",
        stderr(&out)
    );

    // A value that cannot mean what it says is refused, not quietly raised to one that can.
    let cases: [(&[&str], &str); 8] = [
        (&["--transaction-max-ms", "0"], "--transaction-max-ms 0 is out of range: at least 1"),
        (&["--transaction-max-bytes", "0"], "--transaction-max-bytes 0 is out of range: at least 1"),
        (&["--checkpoint-interval", "0"], "--checkpoint-interval 0 is out of range: at least 1"),
        (&["--connect-timeout", "0"], "--connect-timeout 0 is out of range: at least 1"),
        (&["--replication-factor", "0"], "--replication-factor must be at least 1"),
        (&["--sync-group-offsets"], "--sync-group-offsets needs --groups"),
        // The target's transaction timeout is at most 15 min by default: no room for a commit.
        (
            &["--transaction-max-ms", "900000"],
            "--transaction-max-ms 900000 leaves no room under the target's transaction timeout (900000 ms",
        ),
        (
            &["--transaction-max-ms", "5000", "--set", "target.transaction.timeout.ms=6000"],
            "give at most 3000 ms, or a larger target.transaction.timeout.ms",
        ),
    ];
    for (extra, expect) in cases {
        let mut bad = flags.clone();
        bad.extend(extra.iter().map(|a| a.to_string()));
        let out = run(&bad, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{extra:?}: {}", stderr(&out));
    }
    // A setting given without its '=' is named by its key alone: it may be a password.
    let mut secret = flags.clone();
    secret.extend(["--set".to_string(), "source.sasl.password s3cret".to_string()]);
    let out = run(&secret, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--set source.sasl.password ...") && !stderr(&out).contains("s3cret"),
        "{}",
        stderr(&out)
    );
    let at = flags.iter().position(|f| f == "--session-timeout").expect("flag") + 1;
    for seconds in ["0", "3601"] {
        let mut bad = flags.clone();
        bad[at] = seconds.to_string();
        let out = run(&bad, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("--session-timeout {seconds} is out of range")),
            "{}",
            stderr(&out)
        );
    }

    // One setting, two ways: refused rather than one silently winning.
    let mut both = flags.clone();
    both.extend(["--set".to_string(), "target.session.timeout.ms=9000".to_string()]);
    let out = run(&both, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--session-timeout and target.session.timeout.ms"), "{}", stderr(&out));

    // A mirror without --coordinate reads back too (its printed session timeout was refused).
    let mut local = flags.clone();
    let at = local.iter().position(|f| f == "--coordinate").expect("flag");
    local.drain(at..at + 3);
    let out = run(&local, Duration::from_secs(30));
    assert_success(&out);
    let local_file = dir.path().join("local.toml");
    std::fs::write(&local_file, &out.stdout).expect("write");
    let again: Vec<String> = ["mirror", "--config", &local_file.display().to_string(), "--print-config"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let back = run(&again, Duration::from_secs(30));
    assert_success(&back);
    assert_eq!(back.stdout, out.stdout, "the printed config of a local mirror reads back the same");

    // -1 is the default replication factor, as the help says (clap took it for a flag).
    let mut default_rf = flags.clone();
    default_rf.extend(["--replication-factor".to_string(), "-1".to_string()]);
    assert_success(&run(&default_rf, Duration::from_secs(30)));
    // --session-timeout with coordinate = true from the file (flags add to it), and without
    // any --coordinate at all: refused by name, not taken and unused.
    let coordinated = dir.path().join("coordinated.toml");
    std::fs::write(&coordinated, printed.replace("session_timeout = 7\n", "")).expect("write");
    let from_file: Vec<String> = [
        "mirror",
        "--config",
        &coordinated.display().to_string(),
        "--session-timeout",
        "9",
        "--print-config",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(&from_file, Duration::from_secs(30));
    assert_success(&out);
    let config: toml::Value = toml::from_str(&String::from_utf8_lossy(&out.stdout)).expect("TOML");
    assert_eq!(config["session_timeout"].as_integer(), Some(9));
    let mut alone = flags.clone();
    alone.retain(|f| f != "--coordinate");
    let out = run(&alone, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--session-timeout is the group's of --coordinate"), "{}", stderr(&out));
    // An address that names nothing is found before any cluster is asked.
    let mut bad_addr = flags.clone();
    bad_addr.extend(["--metrics-addr".to_string(), "nonsense".to_string()]);
    let out = run(&bad_addr, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--metrics-addr nonsense:"), "{}", stderr(&out));
}

/// Each side's settings serve all of that side's clients, each client taking the ones of its
/// kind: a producer setting for the target (linger.ms) never reaches the target consumers, a
/// consumer setting never reaches the producers or admin clients, so librdkafka has no setting
/// to warn that a client ignores; an unknown setting is still refused.
#[test]
fn side_settings_for_one_kind_of_client_do_not_warn_on_the_others() {
    let (setup, t) = with_topic();
    let out = setup.mirror_until_caught_up(
        &t,
        &[
            "--set",
            "target.linger.ms=5",
            "--set",
            "source.fetch.wait.max.ms=100",
            "--set",
            "target.fetch.min.bytes=1",
            "--set",
            "target.no.such.setting=1",
        ],
    );
    let log = stderr(&out);
    assert!(!log.contains("will be ignored by this"), "{log}");
    // An unknown setting is still refused, by name.
    assert!(!out.status.success() && log.contains("no.such.setting"), "{log}");
    let out = setup.mirror_until_caught_up(
        &t,
        &[
            "--set",
            "target.linger.ms=5",
            "--set",
            "target.fetch.min.bytes=1",
            "--set",
            "source.fetch.wait.max.ms=100",
        ],
    );
    assert_success(&out);
    assert!(!stderr(&out).contains("will be ignored by this"), "{}", stderr(&out));
    setup.assert_exactly_once(&t, 1, Some(10));
}

#[test]
fn a_misspelt_client_setting_is_named_on_one_line_without_its_value() {
    let (setup, t) = with_topic();
    let args = setup.args(&t, &["--set", "source.sasl.password2=hunter2", "--until-caught-up"]);
    assert_refused(&setup, &args, "source config: sasl.password2: No such configuration property");
    let out = run(&args, Duration::from_secs(60));
    assert!(!stderr(&out).contains("hunter2"), "the value may be a secret: {}", stderr(&out));
    let args = setup.args(&t, &["--set", "target.message.max.bytes=5", "--until-caught-up"]);
    assert_refused(&setup, &args, "target config: message.max.bytes: Configuration property");
}

#[test]
fn a_shard_count_past_the_limit_is_refused() {
    let (setup, t) = with_topic();
    let args = setup.args(&t, &["--shards", "4294967295", "--until-caught-up"]);
    assert_refused(&setup, &args, "--shards must be between 1 and 1024");
}

/// `failover --execute` checks what it is given before it fences anything: a bad --topics regex,
/// or a --source it cannot use as given (a wrong setting is a mistake to fix, not a source to do
/// without: failing over from the older checkpoints would move the groups back).
#[test]
fn failover_refuses_bad_input_before_it_fences() {
    let setup = Setup::new();
    let out = setup.failover(&["--execute", "--topics", "orders["]);
    let line = stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        !out.status.success()
            && line.as_ref().is_some_and(|l| l.contains("invalid --topics regex 'orders['")),
        "{}",
        stderr(&out)
    );
    let out =
        setup.failover(&["--execute", "--source", setup.source.bootstrap(), "--set", "source.no.such=1"]);
    let line = stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        !out.status.success()
            && line
                .as_ref()
                .is_some_and(|l| l.contains("source config: no.such: No such configuration property")),
        "{}",
        stderr(&out)
    );
    let shards = format!("kmirror.shards.{}", setup.name);
    assert_eq!(setup.target.partition_count(&shards).expect("metadata"), None, "nothing written");
}

#[test]
fn a_connect_timeout_past_a_day_is_refused_by_every_subcommand() {
    for command in ["status", "verify", "translate-offsets", "failover", "failback"] {
        let args: Vec<String> =
            [command, "--target", "127.0.0.1:1", "--name", "x", "--connect-timeout", "99999999999"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let out = run(&args, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{command}: {}", stderr(&out));
        assert!(stderr(&out).contains("99999999999 is not in 1..=86400"), "{command}: {}", stderr(&out));
    }
}

/// One cluster as both sides and a topic kept under its name: the copies would be written into
/// the topic they are read from, without end. Refused in one line, nothing written; under
/// another name (--rename) the same cluster is a fine target.
#[test]
fn a_topic_copied_onto_itself_in_one_cluster_is_refused() {
    let (setup, t) = with_topic();
    let mut args = setup.args(&t, &["--until-caught-up"]);
    let i = args.iter().position(|a| a == "--target").expect("flag") + 1;
    args[i] = setup.source.bootstrap().to_string();
    let out = run(&args, Duration::from_secs(60));
    let line = stderr(&out).lines().find(|l| l.starts_with("kmirror: error:")).map(String::from);
    assert!(
        out.status.code() == Some(2)
            && line.as_ref().is_some_and(|l| l.contains("are the same cluster") && l.contains(&t)),
        "{}",
        stderr(&out)
    );
    assert_eq!(setup.source.read_committed_audited(&t, 0).expect("read").len(), 10, "nothing written");
    args.extend(["--rename".to_string(), "prefix:copy".to_string()]);
    assert_success(&run(&args, Duration::from_secs(60)));
    assert_eq!(
        setup.source.read_committed_audited(&format!("copy.{t}"), 0).expect("read the copy").len(),
        10
    );
}

/// The same for a topic a running mirror finds after its start: left out by name (the mirror
/// goes on copying the others), never copied onto itself.
#[test]
fn a_topic_found_later_that_would_be_copied_onto_itself_is_left_out() {
    let setup = Setup::new();
    let prefix = topic("self");
    let (first, second) = (format!("{prefix}-first"), format!("{prefix}-second"));
    setup.source.create_topic(&first, 1, &[]).expect("topic");
    setup.source.produce(&first, 0, &keyed("a", 0..10)).expect("produce");
    let rename = format!("regex:{}-first=>copy-{}", regex::escape(&prefix), prefix);
    let mut args = setup
        .args(&format!("{}-.*", regex::escape(&prefix)), &["--rename", &rename, "--refresh-interval", "1"]);
    let i = args.iter().position(|a| a == "--target").expect("flag") + 1;
    args[i] = setup.source.bootstrap().to_string();
    let mut mirror = spawn(&args);
    let copy = format!("copy-{prefix}");
    let started = Instant::now();
    while setup.source.read_committed_audited(&copy, 0).map(|r| r.len()).unwrap_or(0) < 10 {
        assert!(started.elapsed() < Duration::from_secs(60), "the first topic copied");
        assert!(wait_exit(&mut mirror, Duration::from_millis(200)).is_none(), "the mirror runs");
    }
    // Not renamed by --rename: it would be copied into itself.
    setup.source.create_topic(&second, 1, &[]).expect("topic");
    setup.source.produce(&second, 0, &keyed("b", 0..10)).expect("produce");
    std::thread::sleep(Duration::from_secs(5));
    setup.source.produce(&first, 0, &keyed("c", 0..5)).expect("produce");
    let started = Instant::now();
    while setup.source.read_committed_audited(&copy, 0).map(|r| r.len()).unwrap_or(0) < 15 {
        assert!(started.elapsed() < Duration::from_secs(60), "the first topic still copied");
        assert!(wait_exit(&mut mirror, Duration::from_millis(200)).is_none(), "the mirror runs on");
    }
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    let said = stderr(&out);
    assert_eq!(
        setup.source.read_committed_audited(&second, 0).expect("read").len(),
        10,
        "nothing copied into it: {said}"
    );
    assert!(said.contains("topic stopped") && said.contains("would be copied onto itself"), "{said}");
}

/// A topic made on the source while the mirror runs whose renamed name is a mirrored topic's
/// target is left out by name; the mirrored topic and the other new topics are copied on (the
/// refresh failed whole on it, so that no new topic or partition was picked up after it).
#[test]
fn a_topic_found_later_whose_target_a_mirrored_topic_has_is_left_out() {
    let setup = Setup::new();
    let prefix = topic("clash");
    let (first, clashing, other) = (format!("{prefix}-a"), format!("{prefix}-b"), format!("{prefix}-c"));
    setup.source.create_topic(&first, 1, &[]).expect("topic");
    setup.source.produce(&first, 0, &keyed("a", 0..10)).expect("produce");
    let copy = format!("{prefix}-copy");
    let rename = format!("regex:{}-[ab]=>{copy}", regex::escape(&prefix));
    let args = setup
        .args(&format!("{}-.*", regex::escape(&prefix)), &["--rename", &rename, "--refresh-interval", "1"]);
    let mut mirror = spawn(&args);
    let started = Instant::now();
    while setup.target.read_committed_audited(&copy, 0).map(|r| r.len()).unwrap_or(0) < 10 {
        assert!(started.elapsed() < Duration::from_secs(60), "the first topic copied");
        assert!(wait_exit(&mut mirror, Duration::from_millis(200)).is_none(), "the mirror runs");
    }
    setup.source.create_topic(&clashing, 1, &[]).expect("topic");
    setup.source.produce(&clashing, 0, &keyed("b", 0..10)).expect("produce");
    std::thread::sleep(Duration::from_secs(3));
    setup.source.create_topic(&other, 2, &[]).expect("topic");
    setup.source.produce(&other, 1, &keyed("c", 0..7)).expect("produce");
    setup.source.produce(&first, 0, &keyed("d", 0..5)).expect("produce");
    let started = Instant::now();
    while setup.target.read_committed_audited(&other, 1).map(|r| r.len()).unwrap_or(0) < 7
        || setup.target.read_committed_audited(&copy, 0).map(|r| r.len()).unwrap_or(0) < 15
    {
        assert!(started.elapsed() < Duration::from_secs(60), "the new topic and the first copied on");
        assert!(wait_exit(&mut mirror, Duration::from_millis(200)).is_none(), "the mirror runs on");
    }
    terminate(&mirror);
    let out = mirror.wait_with_output().expect("output");
    let said = stderr(&out);
    let copied = setup.target.read_committed_audited(&copy, 0).expect("read");
    let got: Vec<_> = copied.iter().map(|r| (r.data.key.clone(), r.data.value.clone())).collect();
    let expected: Vec<_> =
        keyed("a", 0..10).into_iter().chain(keyed("d", 0..5)).map(|r| (r.key, r.value)).collect();
    assert_eq!(got, expected, "the copy holds the first topic's records only, in order: {said}");
    assert!(
        said.contains(&format!("source topics {first} and {clashing} would both be mirrored to {copy}"))
            && said.contains("left out"),
        "{said}"
    );
    assert_eq!(said.matches("would both be mirrored").count(), 1, "said once: {said}");
}

/// A config file that cannot be read is a configuration error (exit code 2) named once, with
/// its cause once (the line printed the cause twice, and exited 1).
#[test]
fn an_unreadable_config_file_is_a_usage_error_named_once() {
    for flag in ["--config", "--source-config"] {
        let args: Vec<String> =
            ["mirror", "--source", "127.0.0.1:1", "--target", "127.0.0.1:1", "--name", "x"]
                .iter()
                .map(|s| s.to_string())
                .chain(["--topics".into(), "t".into(), flag.into(), "/nonexistent/kmirror.conf".into()])
                .collect();
        let out = run(&args, Duration::from_secs(30));
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {said}");
        assert!(
            said.contains("config file /nonexistent/kmirror.conf: cannot be read (No such file or directory"),
            "{flag}: {said}"
        );
        assert_eq!(said.matches("No such file or directory").count(), 1, "the cause once: {said}");
    }
}
