//! The `locks` tool against a real redis-server, run in-process through `locks_cli::run`.

use std::time::Duration;

use redis_locked::Lock;
use redis_locked_examples::locks_cli::{EXIT_ERROR, EXIT_OK, EXIT_USAGE, run};
use redis_locked_tests::{RedisServer, wait_for_subscribers};

/// Runs the tool; returns its exit code, standard output and standard error.
fn locks(args: &[&str]) -> (u8, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, None, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_release() {
    let server = RedisServer::start();
    let url = server.url();
    redis_locked::register("cli-holder", &url).unwrap();
    // Another client stands for another process waiting for a lock.
    redis_locked::register("cli-waiter", &url).unwrap();
    let lock = |client: &str, name: &str| {
        Lock::with_client(client, name)
            .unwrap()
            .expire(Duration::from_secs(60))
    };

    let (code, out, _) = locks(&["--url", &url, "list"]);
    assert_eq!(
        (code, out.as_str()),
        (EXIT_OK, "no locks held under prefix `lock:`\n")
    );

    let invoice = lock("cli-holder", "invoice:42")
        .acquire(None)
        .await
        .unwrap();
    let first_report = lock("cli-holder", "report").acquire(None).await.unwrap();
    let first_fence = first_report.fencing_token();
    first_report.release().await.unwrap();
    let report = lock("cli-holder", "report").acquire(None).await.unwrap();
    let waiter = tokio::spawn(async move {
        let guard = lock("cli-waiter", "invoice:42")
            .acquire(Some(Duration::from_secs(10)))
            .await
            .unwrap();
        // The guard comes back too: dropping it here would release the lock before the
        // test looks at who holds it.
        (guard.token().to_string(), guard.fencing_token(), guard)
    });
    wait_for_subscribers(&server, "lock:{invoice:42}", 1).await;

    let (code, out, err) = locks(&["--url", &url, "list"]);
    assert_eq!((code, err.as_str()), (EXIT_OK, ""), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let columns = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        columns(lines[0]),
        [
            "NAME", "LEASE", "FENCE", "OWNER", "WAITING", "HELD", "HOLDER"
        ]
    );
    // name, lease in ms, "ms", fencing token, owner prefix, waiting processes, time held
    // in ms, "ms", then the holder: `host:pid, programmatic`.
    let holder = format!(":{}, programmatic", std::process::id());
    for (line, guard, name, waiting) in [
        (lines[1], &invoice, "invoice:42", "1"),
        (lines[2], &report, "report", "0"),
    ] {
        let cells = columns(line);
        assert_eq!(cells.len(), 10, "{line}");
        assert_eq!(cells[0], name);
        let lease: u64 = cells[1].parse().unwrap();
        assert!(lease > 55_000 && lease <= 60_000, "{line}");
        assert_eq!(cells[2], "ms");
        assert_eq!(cells[3], guard.fencing_token().to_string());
        assert_eq!(cells[4], format!("{}…", &guard.token()[..8]));
        assert_eq!(cells[5], waiting);
        let held: u64 = cells[6].parse().unwrap();
        assert!(held < 5_000, "{line}");
        assert_eq!(cells[7], "ms");
        assert!(line.ends_with(&holder), "{line}");
    }
    assert!(report.fencing_token() > first_fence);
    // Aligned: every row's columns start where the header's do.
    let fence_column = lines[0].find("FENCE").unwrap() + "FENCE".len();
    for line in &lines[1..] {
        let end = line
            .char_indices()
            .nth(fence_column)
            .map(|(i, _)| i)
            .unwrap();
        assert!(line[..end].ends_with(|c: char| c.is_ascii_digit()), "{out}");
    }

    let (code, out, _) = locks(&["--url", &url, "show", "invoice:42"]);
    assert_eq!(code, EXIT_OK);
    assert!(
        out.contains("key:               lock:{invoice:42}\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("owner token:       {}\n", invoice.token())),
        "{out}"
    );
    assert!(
        out.contains(&format!("fencing token:     {}\n", invoice.fencing_token())),
        "{out}"
    );
    assert!(out.contains("waiting processes: 1\n"), "{out}");
    assert!(out.contains(" ms\n"), "{out}");
    assert!(
        out.contains(&format!("holder pid:        {}\n", std::process::id())),
        "{out}"
    );
    assert!(
        out.contains("taken by:          the programmatic API\n"),
        "{out}"
    );
    assert!(out.contains("held for:          "), "{out}");
    let (code, out, _) = locks(&["--url", &url, "show", "nothing"]);
    assert_eq!((code, out.as_str()), (EXIT_OK, "nothing: not held\n"));

    // Another prefix sees none of them.
    let (code, out, _) = locks(&["--url", &url, "--prefix", "other:", "list"]);
    assert_eq!(
        (code, out.as_str()),
        (EXIT_OK, "no locks held under prefix `other:`\n")
    );

    // Force-release wakes the other process's waiter, which takes the next fencing token.
    let (code, out, _) = locks(&["--url", &url, "release", "invoice:42"]);
    assert_eq!(
        (code, out.as_str()),
        (EXIT_OK, "invoice:42: released; its waiters were woken\n")
    );
    let (token, fence, woken) = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the release woke the waiter")
        .unwrap();
    assert!(fence > invoice.fencing_token());
    let (_, out, _) = locks(&["--url", &url, "show", "invoice:42"]);
    assert!(
        out.contains(&format!("owner token:       {token}\n")),
        "{out}"
    );
    woken.release().await.unwrap();

    let (code, out, _) = locks(&["--url", &url, "release", "nothing"]);
    assert_eq!((code, out.as_str()), (EXIT_OK, "nothing: was not held\n"));
    assert!(invoice.release().await.is_err(), "the release took it away");
    report.release().await.unwrap();
}

#[test]
fn usage_errors_exit_with_2() {
    for (args, message) in [
        (&[][..], "no command given"),
        (&["frobnicate"][..], "unknown command `frobnicate`"),
        (&["show"][..], "`show` needs a lock name"),
        (
            &["release", "a", "b"][..],
            "too many arguments for `release`",
        ),
        (&["--prefix"][..], "--prefix needs a value"),
        (&["--bogus", "list"][..], "unknown option `--bogus`"),
    ] {
        let (code, out, err) = locks(args);
        assert_eq!(code, EXIT_USAGE, "{args:?}");
        assert_eq!(out, "");
        assert!(err.starts_with(&format!("locks: {message}\n")), "{err}");
        assert!(err.contains("usage: locks"), "{err}");
    }
    let (code, out, err) = locks(&["--help"]);
    assert_eq!((code, err.as_str()), (EXIT_OK, ""));
    assert!(out.starts_with("usage: locks"), "{out}");
}

#[test]
fn redis_errors_exit_with_1() {
    // A port nobody listens on any more.
    let url = RedisServer::start().url();
    let (code, out, err) = locks(&["--url", &url, "list"]);
    assert_eq!((code, out.as_str()), (EXIT_ERROR, ""));
    // The message and its cause.
    assert!(
        err.starts_with("locks: could not connect to Redis at 127.0.0.1")
            && err.contains("refused"),
        "{err}"
    );

    let (code, _, err) = locks(&["--url", "http://nope", "list"]);
    assert_eq!(code, EXIT_ERROR);
    assert!(err.starts_with("locks: invalid configuration"), "{err}");
}
