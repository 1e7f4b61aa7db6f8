//! The attribute's arguments, in one table.
//!
//! Parsing looks each argument up here and reads its value as the row says; the list of
//! valid arguments in errors, the "did you mean" hints and the fuzzer's vocabulary come
//! from the same rows. Adding an argument is adding a row and the field its `set` fills.

use syn::Expr;

use crate::attr::Given;
use crate::suggest;
use crate::values;

/// One argument of `#[redis_lock(...)]`.
pub(crate) struct Argument {
    /// What is written before the `=`.
    pub(crate) name: &'static str,
    /// What it takes: decides whether it may stand alone, and how the list of valid
    /// arguments shows it.
    pub(crate) value: Value,
    /// Whether every attribute must give it.
    pub(crate) required: bool,
    /// A valid use, quoted by errors ("like `expire = 10`") and given to the fuzzer.
    pub(crate) example: &'static str,
    /// Words people reach for from other lock libraries, which edit distance would not find.
    pub(crate) aliases: &'static [&'static str],
    /// What it sets, as a phrase that fits "did you mean `expire` (...)".
    pub(crate) description: &'static str,
    /// Checks and converts the value (`true` for a flag given alone) into its field.
    pub(crate) set: fn(&Argument, &Expr, &mut Given) -> syn::Result<()>,
}

/// The kind of value an argument takes.
pub(crate) enum Value {
    /// A string literal; what the list of valid arguments shows between the quotes.
    String(&'static str),
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// A number of seconds.
    Seconds,
    /// A whole number.
    Count,
    /// `key` alone, or `key = true` / `key = false`.
    Flag,
    /// An identifier; what the list of valid arguments shows between `<` and `>`.
    Ident(&'static str),
}

pub(crate) const ARGUMENTS: &[Argument] = &[
    Argument {
        name: "name",
        value: Value::String("..."),
        required: true,
        example: "name = \"invoice:{order_id}\"",
        aliases: &["key", "lock", "lock_name"],
        description: "the name of the lock",
        set: |argument, value, given| {
            given.name = Some(values::name(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "expire",
        value: Value::Seconds,
        required: false,
        example: "expire = 10",
        aliases: &["ttl", "lease", "expiry", "expires", "expiration"],
        description: "the lease, in seconds",
        set: |argument, value, given| {
            given.expire = Some(values::expire(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "auto_renew",
        value: Value::Flag,
        required: false,
        example: "auto_renew",
        aliases: &["renew", "autorenew", "auto_extend", "keep_alive"],
        description: "renew the lease while the body runs",
        set: |argument, value, given| {
            given.auto_renew = Some(values::boolean(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "max_hold",
        value: Value::Seconds,
        required: false,
        example: "max_hold = 3600",
        aliases: &[
            "lock_at_most_for",
            "max_duration",
            "max_lease",
            "renew_limit",
        ],
        description: "the longest the lock is held, in seconds, renewal included",
        set: |argument, value, given| {
            given.max_hold = Some(values::hold(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "min_hold",
        value: Value::Seconds,
        required: false,
        example: "min_hold = 30",
        aliases: &["lock_at_least_for", "min_duration", "hold_at_least"],
        description: "the shortest the lock is held, in seconds, however soon the body ends",
        set: |argument, value, given| {
            given.min_hold = Some(values::hold(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "timeout",
        value: Value::Seconds,
        required: false,
        example: "timeout = 5",
        aliases: &["wait", "wait_timeout", "acquire_timeout"],
        description: "how long to wait for the lock, in seconds",
        set: |argument, value, given| {
            given.timeout = Some(values::timeout(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "client",
        value: Value::String("..."),
        required: false,
        example: "client = \"billing\"",
        aliases: &["connection", "redis", "server"],
        description: "the registered client to lock on",
        set: |argument, value, given| {
            given.client = Some(values::client(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "on_lost",
        value: Value::Choice(&["continue", "abort"]),
        required: false,
        example: "on_lost = \"abort\"",
        aliases: &["on_lose", "if_lost", "when_lost", "lost", "on_expire"],
        description: "what a running body does when its lock is lost",
        set: |argument, value, given| {
            given.on_lost = Some(values::on_lost(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "guard",
        value: Value::Ident("name"),
        required: false,
        example: "guard = lock",
        aliases: &["bind", "binding", "handle", "lock_ref", "as"],
        description: "the name the body sees the held lock under",
        set: |argument, value, given| {
            given.guard = Some(values::binding(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "reentrant",
        value: Value::Flag,
        required: false,
        example: "reentrant",
        aliases: &["reentrancy", "recursive", "reentry", "allow_reentry"],
        description: "let a nested call pass through a lock its caller holds",
        set: |argument, value, given| {
            given.reentrant = Some(values::boolean(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "permits",
        value: Value::Count,
        required: false,
        example: "permits = 3",
        aliases: &["semaphore", "max_holders", "concurrency", "limit"],
        description: "how many may hold the lock at once (a semaphore)",
        set: |argument, value, given| {
            given.permits = Some(values::permits(argument, value)?);
            Ok(())
        },
    },
    Argument {
        name: "shared",
        value: Value::Flag,
        required: false,
        example: "shared",
        aliases: &["read", "read_lock", "readonly", "reader"],
        description: "a shared (read) lock, excluded only by plain holders",
        set: |argument, value, given| {
            let span = syn::spanned::Spanned::span(value);
            given.shared = Some((values::boolean(argument, value)?, span));
            Ok(())
        },
    },
    Argument {
        name: "crate",
        value: Value::String("path"),
        required: false,
        example: "crate = \"my_locks\"",
        aliases: &["krate", "crate_path", "path", "runtime"],
        description: "the path of the runtime crate",
        set: |argument, value, given| {
            given.krate = Some(values::crate_path(argument, value)?);
            Ok(())
        },
    },
];

/// The argument written `name`.
pub(crate) fn find(name: &str) -> Option<&'static Argument> {
    ARGUMENTS.iter().find(|argument| argument.name == name)
}

/// The argument someone who wrote `word` probably meant: one it is an alias of, or one
/// it is a plausible typo of.
pub(crate) fn suggestion(word: &str) -> Option<&'static Argument> {
    ARGUMENTS
        .iter()
        .find(|argument| argument.aliases.contains(&word))
        .or_else(|| {
            suggest::closest(word, ARGUMENTS.iter().map(|argument| argument.name)).and_then(find)
        })
}

impl Argument {
    /// How the list of valid arguments shows it: `expire = <seconds>`, `auto_renew`, ...
    pub(crate) fn form(&self) -> String {
        let name = self.name;
        match self.value {
            Value::String(shown) => format!("`{name} = \"{shown}\"`"),
            Value::Choice(choices) => {
                let choices: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
                format!("`{name} = {}`", choices.join(" | "))
            }
            Value::Seconds => format!("`{name} = <seconds>`"),
            Value::Count => format!("`{name} = <number>`"),
            Value::Flag => format!("`{name}`"),
            Value::Ident(shown) => format!("`{name} = <{shown}>`"),
        }
    }
}

/// "valid arguments are `name = \"...\"` (required), `expire = <seconds>`, ... and
/// `crate = \"path\"`", appended to every argument error: whoever got one argument wrong
/// may not know the others.
pub(crate) fn valid_list() -> String {
    let forms: Vec<String> = ARGUMENTS
        .iter()
        .map(|argument| {
            if argument.required {
                format!("{} (required)", argument.form())
            } else {
                argument.form()
            }
        })
        .collect();
    match forms.split_last() {
        Some((last, [])) => format!("the valid argument is {last}"),
        Some((last, rest)) => format!("valid arguments are {} and {last}", rest.join(", ")),
        None => "no arguments are valid".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::{ARGUMENTS, Value, suggestion, valid_list};
    use crate::attr::Args;

    #[test]
    fn names_and_aliases_are_distinct() {
        let mut seen = HashSet::new();
        for argument in ARGUMENTS {
            assert!(seen.insert(argument.name), "{} twice", argument.name);
            for alias in argument.aliases {
                assert!(seen.insert(alias), "{alias} twice");
            }
        }
    }

    #[test]
    fn every_example_is_accepted() {
        for argument in ARGUMENTS {
            let tokens = if argument.required {
                argument.example.to_owned()
            } else {
                format!("name = \"a\", {}", argument.example)
            };
            let example = argument.example;
            assert!(
                example.starts_with(argument.name),
                "{example} shows another argument"
            );
            if let Err(error) = Args::parse(tokens.parse().unwrap()) {
                panic!("{example}: {error}");
            }
        }
    }

    #[test]
    fn every_choice_is_accepted() {
        for argument in ARGUMENTS {
            if let Value::Choice(choices) = argument.value {
                for choice in choices {
                    let tokens = format!("name = \"a\", {} = \"{choice}\"", argument.name);
                    if let Err(error) = Args::parse(tokens.parse().unwrap()) {
                        panic!("{tokens}: {error}");
                    }
                }
            }
        }
    }

    #[test]
    fn aliases_and_typos_suggest_their_argument() {
        for argument in ARGUMENTS {
            for alias in argument.aliases {
                assert_eq!(suggestion(alias).map(|a| a.name), Some(argument.name));
            }
            // One letter dropped from a name of five letters or more.
            if argument.name.len() >= 5 {
                let typo = &argument.name[..argument.name.len() - 1];
                assert_eq!(suggestion(typo).map(|a| a.name), Some(argument.name));
            }
        }
        assert!(suggestion("colour").is_none());
    }

    #[test]
    fn the_valid_list_shows_every_argument() {
        let list = valid_list();
        for argument in ARGUMENTS {
            assert!(list.contains(&format!("`{}", argument.name)), "{list}");
        }
        assert!(list.contains("`name = \"...\"` (required)"), "{list}");
        assert!(
            list.contains("`on_lost = \"continue\" | \"abort\"`"),
            "{list}"
        );
    }

    /// The attribute's documentation has a row for each argument, so a new one is not
    /// left undocumented.
    #[test]
    fn the_documentation_has_a_row_for_every_argument() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/doc/attribute.md");
        let doc = std::fs::read_to_string(&path).expect("reading the attribute's documentation");
        for argument in ARGUMENTS {
            assert!(
                doc.lines()
                    .any(|line| line.starts_with(&format!("| `{}", argument.name))),
                "{} has no row for `{}`",
                path.display(),
                argument.name
            );
        }
    }
}
