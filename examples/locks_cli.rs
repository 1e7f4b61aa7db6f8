//! The `locks` tool: lists, shows and force-releases the locks of one Redis server, for
//! operators. `examples/examples/locks.rs` is its `main`; everything else is here, writing
//! to any `Write`, so the tests run it in-process.
//!
//! ```text
//! cargo run -p redis-locked-examples --example locks -- [--url URL] [--prefix PREFIX] list | show NAME | release NAME
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use redis_locked::{ClientBuilder, Lock, LockError, LockInfo};

/// The usage text, printed for `--help` and after a usage error.
pub const USAGE: &str = "\
usage: locks [--url URL] [--prefix PREFIX] <command>

commands:
  list            every held lock: name, remaining lease, fencing token, owner, waiting
                  processes, how long it has been held, and by whom (host:pid, function)
  show NAME       one lock's fields, or \"not held\"
  release NAME    force the lock free, whoever holds it, and wake its waiters

options:
  --url URL       the Redis server (default: $REDIS_URL, else redis://127.0.0.1:6379)
  --prefix PREFIX the key prefix of the locks (default: lock:)
";

/// Exit code of a successful run.
pub const EXIT_OK: u8 = 0;
/// Exit code when Redis or the lock library reported an error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error.
pub const EXIT_USAGE: u8 = 2;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `list`
    List,
    /// `show NAME`
    Show(String),
    /// `release NAME`
    Release(String),
    /// `--help`
    Help,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The Redis URL.
    pub url: String,
    /// The key prefix.
    pub prefix: String,
    /// The command.
    pub command: Command,
}

/// Parses the arguments (without the program name). `redis_url` is the value of
/// `REDIS_URL`, if set: the default for `--url`.
pub fn parse(args: &[String], redis_url: Option<&str>) -> Result<Invocation, String> {
    let mut url = redis_url.unwrap_or("redis://127.0.0.1:6379").to_string();
    let mut prefix = "lock:".to_string();
    let mut words = Vec::new();
    let mut args = args.iter();
    let mut options_done = false;
    while let Some(arg) = args.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            words.push(arg.as_str());
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = |flag: &str| {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--" => options_done = true,
            "-h" | "--help" => {
                return Ok(Invocation {
                    url,
                    prefix,
                    command: Command::Help,
                });
            }
            "--url" => url = value(flag)?,
            "--prefix" => prefix = value(flag)?,
            _ => return Err(format!("unknown option `{arg}`")),
        }
    }
    let command = match words.as_slice() {
        [] => return Err("no command given".into()),
        ["list"] => Command::List,
        ["show", name] => Command::Show(name.to_string()),
        ["release", name] => Command::Release(name.to_string()),
        ["show" | "release"] => return Err(format!("`{}` needs a lock name", words[0])),
        ["list" | "show" | "release", ..] => {
            return Err(format!("too many arguments for `{}`", words[0]));
        }
        [other, ..] => return Err(format!("unknown command `{other}`")),
    };
    if matches!(&command, Command::Show(name) | Command::Release(name) if name.is_empty()) {
        return Err("a lock name must not be empty".into());
    }
    Ok(Invocation {
        url,
        prefix,
        command,
    })
}

/// Runs the tool: parses `args` (without the program name), talks to Redis with the
/// blocking API, writes results to `out` and messages to `err`, and returns the exit code
/// ([`EXIT_OK`], [`EXIT_ERROR`] or [`EXIT_USAGE`]). `redis_url` is `REDIS_URL`, if set.
pub fn run(
    args: &[String],
    redis_url: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let invocation = match parse(args, redis_url) {
        Ok(invocation) => invocation,
        Err(message) => {
            let _ = write!(err, "locks: {message}\n\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    if invocation.command == Command::Help {
        let _ = write!(out, "{USAGE}");
        return EXIT_OK;
    }
    match execute(&invocation, out) {
        Ok(()) => EXIT_OK,
        Err(Failure::Lock(e)) => {
            // The message, then its causes (the refused connection, the server's reply).
            let mut message = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            let _ = writeln!(err, "locks: {message}");
            EXIT_ERROR
        }
        Err(Failure::Output(e)) => {
            let _ = writeln!(err, "locks: cannot write the output: {e}");
            EXIT_ERROR
        }
    }
}

enum Failure {
    Lock(LockError),
    Output(std::io::Error),
}

impl From<LockError> for Failure {
    fn from(e: LockError) -> Failure {
        Failure::Lock(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Output(e)
    }
}

fn execute(invocation: &Invocation, out: &mut dyn Write) -> Result<(), Failure> {
    let client = client(&invocation.url, &invocation.prefix)?;
    match &invocation.command {
        Command::List => {
            let locks = redis_locked::list_locks_blocking(Some(&client))?;
            if locks.is_empty() {
                writeln!(out, "no locks held under prefix `{}`", invocation.prefix)?;
            } else {
                write_table(out, &locks)?;
            }
        }
        Command::Show(name) => match Lock::with_client(&client, name)?.info_blocking()? {
            Some(info) => write_info(out, &info)?,
            None => writeln!(out, "{name}: not held")?,
        },
        Command::Release(name) => {
            if Lock::with_client(&client, name)?.reset_blocking()? {
                writeln!(out, "{name}: released; its waiters were woken")?;
            } else {
                writeln!(out, "{name}: was not held")?;
            }
        }
        Command::Help => write!(out, "{USAGE}")?,
    }
    Ok(())
}

/// Registers (once per process) a client for this URL and prefix and returns its name.
/// Clients are process-global; a second run with the same URL and prefix reuses it. The
/// name is a number, not the URL: it shows in logs and in the connections' names on the
/// server (`CLIENT LIST`), where a password in the URL must not.
fn client(url: &str, prefix: &str) -> Result<String, LockError> {
    static CLIENTS: Mutex<Option<HashMap<(String, String), String>>> = Mutex::new(None);
    let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
    let clients = clients.get_or_insert_with(HashMap::new);
    let next = format!("locks-cli#{}", clients.len() + 1);
    let name = clients
        .entry((url.to_string(), prefix.to_string()))
        .or_insert(next)
        .clone();
    match ClientBuilder::new(url)
        .key_prefix(prefix)
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(5))
        .register(&name)
    {
        Ok(()) | Err(LockError::AlreadyRegistered { .. }) => Ok(name),
        Err(e) => Err(e),
    }
}

/// `9873 ms`, or `no expiry`.
fn lease(info: &LockInfo) -> String {
    match info.remaining_lease {
        Some(left) => format!("{} ms", left.as_millis()),
        None => "no expiry".into(),
    }
}

/// How long the lock has been held, by the holder's clock and ours: `1234 ms`, or `-`
/// when the key does not say.
fn held_for(info: &LockInfo) -> String {
    match &info.holder {
        Some(holder) => {
            let held = SystemTime::now()
                .duration_since(holder.since)
                .unwrap_or_default();
            format!("{} ms", held.as_millis())
        }
        None => "-".into(),
    }
}

/// `host:pid, fn template` or `host:pid, programmatic`; `-` when the key does not say.
fn holder(info: &LockInfo) -> String {
    info.holder
        .as_ref()
        .map_or_else(|| "-".into(), ToString::to_string)
}

/// The first 8 characters of an owner token, and `…` if there are more.
fn short_owner(owner: &str) -> String {
    let mut chars = owner.chars();
    let head: String = chars.by_ref().take(8).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

fn write_table(out: &mut dyn Write, locks: &[LockInfo]) -> std::io::Result<()> {
    let header = [
        "NAME", "LEASE", "FENCE", "OWNER", "WAITING", "HELD", "HOLDER",
    ];
    let rows: Vec<[String; 7]> = locks
        .iter()
        .map(|info| {
            [
                info.name.clone(),
                lease(info),
                info.fencing_token.to_string(),
                short_owner(&info.owner),
                info.waiting_processes.to_string(),
                held_for(info),
                holder(info),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: [&str; 7]| {
        // Names and owners to the left, numbers to the right; the holder, which may hold
        // spaces, last.
        let [name, lease, fence, owner, waiting, held, holder] = cells;
        let pad = |s: &str, w: usize| " ".repeat(w.saturating_sub(s.chars().count()));
        writeln!(
            out,
            "{name}{}  {}{lease}  {}{fence}  {owner}{}  {}{waiting}  {}{held}  {holder}",
            pad(name, widths[0]),
            pad(lease, widths[1]),
            pad(fence, widths[2]),
            pad(owner, widths[3]),
            pad(waiting, widths[4]),
            pad(held, widths[5]),
        )
    };
    line(out, header)?;
    for row in &rows {
        line(out, row.each_ref().map(String::as_str))?;
    }
    Ok(())
}

fn write_info(out: &mut dyn Write, info: &LockInfo) -> std::io::Result<()> {
    writeln!(out, "name:              {}", info.name)?;
    writeln!(out, "key:               {}", info.key)?;
    writeln!(out, "remaining lease:   {}", lease(info))?;
    writeln!(out, "fencing token:     {}", info.fencing_token)?;
    writeln!(out, "owner token:       {}", info.owner)?;
    writeln!(out, "waiting processes: {}", info.waiting_processes)?;
    match &info.holder {
        Some(holder) => {
            writeln!(out, "holder host:       {}", holder.host)?;
            writeln!(out, "holder pid:        {}", holder.pid)?;
            match &holder.template {
                Some(template) => writeln!(
                    out,
                    "taken by:          #[redis_lock(name = \"{template}\")]"
                )?,
                None => writeln!(out, "taken by:          the programmatic API")?,
            }
            writeln!(out, "held for:          {}", held_for(info))
        }
        None => writeln!(out, "holder:            not described in the key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_commands_and_options() {
        let i = parse(&args("list"), None).unwrap();
        assert_eq!(
            (i.url.as_str(), i.prefix.as_str(), i.command),
            ("redis://127.0.0.1:6379", "lock:", Command::List)
        );
        let i = parse(
            &args("--url redis://h:1 show a:b --prefix=app:"),
            Some("redis://env"),
        )
        .unwrap();
        assert_eq!(
            (i.url.as_str(), i.prefix.as_str(), i.command),
            ("redis://h:1", "app:", Command::Show("a:b".into()))
        );
        let i = parse(&args("release -- --odd"), Some("redis://env")).unwrap();
        assert_eq!(i.url, "redis://env");
        assert_eq!(i.command, Command::Release("--odd".into()));
        assert_eq!(parse(&args("-h"), None).unwrap().command, Command::Help);
    }

    #[test]
    fn rejects_bad_command_lines() {
        for (line, message) in [
            ("", "no command given"),
            ("lsit", "unknown command `lsit`"),
            ("show", "`show` needs a lock name"),
            ("list extra", "too many arguments for `list`"),
            ("--url", "--url needs a value"),
            ("--verbose list", "unknown option `--verbose`"),
        ] {
            assert_eq!(parse(&args(line), None).unwrap_err(), message, "{line:?}");
        }
    }

    #[test]
    fn shortens_owner_tokens() {
        assert_eq!(short_owner("0123456789abcdef"), "01234567…");
        assert_eq!(short_owner("01234567"), "01234567");
    }
}
