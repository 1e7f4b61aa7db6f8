//! The values of the arguments, checked and converted at compile time, so that a typo or
//! an impossible lease fails the build with an error at the offending token instead of
//! failing the first call in production.
//!
//! Each value arrives as an expression: parsing any expression rather than a literal lets
//! `expire = -1` or `expire = LEASE` get a message about what is wrong with them instead
//! of a bare "expected literal".

use proc_macro2::{Ident, Span};
use syn::{Expr, Lit, LitStr, UnOp};

use crate::arguments::{Argument, Value};
use crate::attr::OnLost;
use crate::name::{NameTemplate, Names};
use crate::suggest;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MILLI: u64 = 1_000_000;

/// Looks through the invisible group a `macro_rules!` `$value:expr` arrives in.
fn ungroup(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

/// `name = "invoice:{order_id}"`, or `name = ["account:{from}", "account:{to}"]`: each
/// template's syntax; their placeholders are checked against the parameters once the
/// function is seen.
pub(crate) fn name(argument: &Argument, value: &Expr) -> syn::Result<Names> {
    let Expr::Array(list) = ungroup(value) else {
        return Ok(Names {
            templates: vec![string(argument, value).and_then(NameTemplate::parse)?],
            list: false,
        });
    };
    if list.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            value,
            "the list of lock names is empty: name at least one lock, like `name = [\"account:{from}\", \"account:{to}\"]`",
        ));
    }
    let mut templates = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for element in &list.elems {
        let name = match ungroup(element) {
            Expr::Lit(lit) if matches!(lit.lit, Lit::Str(_)) => string(argument, element),
            _ => Err(syn::Error::new_spanned(
                element,
                "each lock name in the list must be a string literal, like `name = [\"account:{from}\", \"account:{to}\"]`",
            )),
        };
        match name.and_then(NameTemplate::parse) {
            Ok(template) => templates.push(template),
            Err(error) => match &mut errors {
                Some(errors) => errors.combine(error),
                None => errors = Some(error),
            },
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(Names {
            templates,
            list: true,
        }),
    }
}

fn string(argument: &Argument, value: &Expr) -> syn::Result<LitStr> {
    let (key, example) = (argument.name, argument.example);
    match ungroup(value) {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(string) => Ok(string.clone()),
            _ => Err(syn::Error::new_spanned(
                value,
                format!("`{key}` must be a string literal, like `{example}`"),
            )),
        },
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` must be a string literal, like `{example}` (constants and expressions are not supported)"
            ),
        )),
    }
}

pub(crate) fn client(argument: &Argument, value: &Expr) -> syn::Result<LitStr> {
    let client = string(argument, value)?;
    if client.value().is_empty() {
        return Err(syn::Error::new(
            client.span(),
            format!(
                "`client` cannot be empty: name a client registered with `redis_locked::register`, like `{}`, or leave `client` out to use the default client",
                argument.example
            ),
        ));
    }
    Ok(client)
}

/// `on_lost = "continue"` or `on_lost = "abort"`, with the value's span: `abort` on a
/// sync function is reported there once the function is seen.
pub(crate) fn on_lost(argument: &Argument, value: &Expr) -> syn::Result<(OnLost, Span)> {
    let choices = "`on_lost = \"continue\"` (the default: the body runs to completion and a warning names the lock) or `on_lost = \"abort\"` (async functions: the body stops at its next `.await` and the function returns `LockError::Lost`)";
    let given = string(argument, value)?;
    match given.value().as_str() {
        "continue" => Ok((OnLost::Continue, given.span())),
        "abort" => Ok((OnLost::Abort, given.span())),
        other => {
            let known = match argument.value {
                Value::Choice(known) => known,
                _ => &[],
            };
            let hint = match suggest::closest(other, known.iter().copied()) {
                Some(known) => format!("did you mean `\"{known}\"`? "),
                None => String::new(),
            };
            Err(syn::Error::new(
                given.span(),
                format!("unknown `on_lost` value `\"{other}\"`; {hint}choose {choices}"),
            ))
        }
    }
}

/// `crate = "my_locks"` or `crate = "::app::locks"`: the path generated code uses for the
/// runtime crate instead of `::redis_locked`.
pub(crate) fn crate_path(argument: &Argument, value: &Expr) -> syn::Result<syn::Path> {
    let given = string(argument, value)?;
    given.parse_with(syn::Path::parse_mod_style).map_err(|_| {
        syn::Error::new(
            given.span(),
            format!(
                "`crate` takes the path of the `redis-locked` crate as your code names it, like `{}` after `my_locks = {{ package = \"redis-locked\", ... }}` in Cargo.toml",
                argument.example
            ),
        )
    })
}

/// A flag's value: `true` or `false` (a flag given alone arrives as `true`).
pub(crate) fn boolean(argument: &Argument, value: &Expr) -> syn::Result<bool> {
    if let Expr::Lit(lit) = ungroup(value)
        && let Lit::Bool(on) = &lit.lit
    {
        return Ok(on.value);
    }
    let key = argument.name;
    Err(syn::Error::new_spanned(
        value,
        format!(
            "`{key}` takes `true` or `false`: write `{key}` (same as `{key} = true`) or `{key} = false`"
        ),
    ))
}

/// `guard = lock`: a plain identifier for the binding.
pub(crate) fn binding(argument: &Argument, value: &Expr) -> syn::Result<Ident> {
    let example = format!(
        "like `{}`, then use `lock.fencing_token()` in the body",
        argument.example
    );
    if let Expr::Path(path) = ungroup(value)
        && path.qself.is_none()
        && path.attrs.is_empty()
        && let Some(ident) = path.path.get_ident()
    {
        if ident == "self" {
            return Err(syn::Error::new_spanned(
                ident,
                format!("`guard` cannot be `self`: name a new binding, {example}"),
            ));
        }
        return Ok(ident.clone());
    }
    Err(syn::Error::new_spanned(
        value,
        format!("`guard` takes the name the body sees the held lock under, {example}"),
    ))
}

/// `expire = 10`, in nanoseconds.
pub(crate) fn expire(argument: &Argument, value: &Expr) -> syn::Result<u64> {
    let what = "the lease, in seconds, like `expire = 10` or `expire = 0.5`";
    let why = "it is how long the lock is held before it expires on its own";
    positive_seconds(argument, value, what, why)
}

/// `max_hold = 3600` or `min_hold = 30`, in nanoseconds, with the value's span: how they
/// go with `expire` and each other is checked once every argument is read.
pub(crate) fn hold(argument: &Argument, value: &Expr) -> syn::Result<(u64, Span)> {
    let (what, why) = match argument.name {
        "max_hold" => (
            "the longest the lock is held, in seconds, like `max_hold = 3600`",
            "it is how long auto-renewal keeps the lock before letting it go",
        ),
        _ => (
            "the shortest the lock is held, in seconds, like `min_hold = 30`",
            "it is how long the lock stays taken after it was acquired, however soon the body ends",
        ),
    };
    let nanos = positive_seconds(argument, value, what, why)?;
    Ok((nanos, syn::spanned::Spanned::span(value)))
}

/// A number of seconds that Redis can count as a key's expiry: at least a millisecond.
fn positive_seconds(argument: &Argument, value: &Expr, what: &str, why: &str) -> syn::Result<u64> {
    let key = argument.name;
    let seconds = seconds(argument, value, what)?;
    if seconds.is_zero {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` must be greater than zero: {why}, like `{}`",
                argument.example
            ),
        ));
    }
    if seconds.nanos < NANOS_PER_MILLI {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` must be at least 1 millisecond (`{key} = 0.001`): Redis expires keys in whole milliseconds"
            ),
        ));
    }
    Ok(seconds.nanos)
}

/// `permits = 3`: how many may hold the lock at once, from 1 (the plain lock) up.
pub(crate) fn permits(argument: &Argument, value: &Expr) -> syn::Result<(u32, Span)> {
    let example = argument.example;
    let wrong = || {
        syn::Error::new_spanned(
            value,
            format!(
                "`permits` takes a whole number from 1 (the plain lock) to {}: how many may hold the lock at once, like `{example}`",
                u32::MAX
            ),
        )
    };
    let Expr::Lit(lit) = ungroup(value) else {
        return Err(wrong());
    };
    let Lit::Int(int) = &lit.lit else {
        return Err(wrong());
    };
    match int.base10_parse::<u32>() {
        Ok(0) => Err(syn::Error::new_spanned(
            value,
            format!(
                "`permits = 0` would let nobody hold the lock: give at least 1 (the plain lock), like `{example}`"
            ),
        )),
        Ok(n) => Ok((n, syn::spanned::Spanned::span(value))),
        Err(_) => Err(wrong()),
    }
}

/// `timeout = 5`, in nanoseconds.
pub(crate) fn timeout(argument: &Argument, value: &Expr) -> syn::Result<u64> {
    let what = "how long to wait for the lock, in seconds, like `timeout = 5`; `timeout = 0` makes a single attempt, and leaving it out waits until the lock is acquired";
    Ok(seconds(argument, value, what)?.nanos)
}

struct Seconds {
    nanos: u64,
    /// Kept apart from `nanos == 0` so that `expire = 0.0000001` is told it is too short,
    /// not that it is zero.
    is_zero: bool,
}

/// A non-negative number of seconds, written as an integer or float literal.
fn seconds(argument: &Argument, value: &Expr, what: &str) -> syn::Result<Seconds> {
    let key = argument.name;
    let lit = match ungroup(value) {
        Expr::Lit(lit) => &lit.lit,
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{key}` cannot be negative: it is {what}"),
            ));
        }
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                format!(
                    "`{key}` must be a number literal: it is {what} (constants and expressions are not supported)"
                ),
            ));
        }
    };
    let (digits, suffix) = match lit {
        Lit::Int(int) => (int.base10_digits(), int.suffix()),
        Lit::Float(float) => (float.base10_digits(), float.suffix()),
        Lit::Str(string) if string.value().trim().parse::<f64>().is_ok() => {
            let unquoted = string.value();
            return Err(syn::Error::new_spanned(
                value,
                format!(
                    "`{key}` takes a number, not a string: remove the quotes, like `{key} = {}`",
                    unquoted.trim()
                ),
            ));
        }
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{key}` must be a number: it is {what}"),
            ));
        }
    };
    const NUMERIC: &[&str] = &[
        "", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64",
    ];
    if !NUMERIC.contains(&suffix) {
        return Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` is in seconds and takes a plain number, not `{suffix}`: write `{key} = 10`, or a fraction for less than a second, like `{key} = 0.25`"
            ),
        ));
    }
    let too_large = || {
        syn::Error::new_spanned(
            value,
            format!(
                "`{key}` is too large: at most {} seconds",
                u64::MAX / NANOS_PER_SEC
            ),
        )
    };
    if let Lit::Int(_) = lit {
        let whole: u64 = digits.parse().map_err(|_| too_large())?;
        let nanos = whole.checked_mul(NANOS_PER_SEC).ok_or_else(too_large)?;
        return Ok(Seconds {
            nanos,
            is_zero: whole == 0,
        });
    }
    let fraction: f64 = digits.parse().map_err(|_| too_large())?;
    let nanos = (fraction * NANOS_PER_SEC as f64).round();
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err(too_large());
    }
    Ok(Seconds {
        // In range and rounded, checked just above.
        nanos: nanos as u64,
        is_zero: fraction == 0.0,
    })
}
