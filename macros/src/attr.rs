//! The attribute's arguments, `#[redis_lock(name = "...", expire = 10, ...)]`.
//!
//! Everything is checked and converted here, at compile time, so that a typo or an
//! impossible lease fails the build with an error at the offending token instead of
//! failing the first call in production.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, Lit, LitStr, Token, UnOp};

use crate::name::NameTemplate;
use crate::suggest;

/// Appended to every argument error: whoever got one argument wrong may not know the others.
const VALID: &str = "valid arguments are `name = \"...\"` (required), `expire = <seconds>`, `auto_renew`, `timeout = <seconds>`, `client = \"...\"`, `on_lost = \"continue\" | \"abort\"`, `guard = <name>`, `reentrant` and `crate = \"path\"`";

const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MILLI: u64 = 1_000_000;

/// The checked arguments; durations are in nanoseconds, ready for `Duration::from_nanos`.
pub(crate) struct Args {
    pub(crate) name: NameTemplate,
    pub(crate) client: Option<LitStr>,
    pub(crate) expire: Option<u64>,
    pub(crate) auto_renew: Option<bool>,
    pub(crate) timeout: Option<u64>,
    pub(crate) on_lost: Option<(OnLost, Span)>,
    /// `guard = <ident>`: the name the body sees the held lock under.
    pub(crate) guard: Option<Ident>,
    pub(crate) reentrant: bool,
    /// `crate = "path"`: where the runtime crate is, for a dependency renamed in
    /// `Cargo.toml` or re-exported by another crate.
    pub(crate) krate: Option<syn::Path>,
}

/// What happens to a running body whose lock is lost (`on_lost = "..."`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OnLost {
    /// The body runs to completion; a warning names the lock (the default).
    Continue,
    /// The body is stopped at its next `.await`; the function returns `LockError::Lost`.
    Abort,
}

impl Args {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let mut builder = Builder::default();
        syn::meta::parser(|meta| builder.parse_one(meta)).parse2(tokens)?;
        builder.build()
    }
}

/// Collects arguments as they come. Errors about a value are accumulated rather than
/// returned, so that one build reports every bad value; only malformed syntax stops parsing.
#[derive(Default)]
struct Builder {
    name: Option<NameTemplate>,
    client: Option<LitStr>,
    expire: Option<u64>,
    auto_renew: Option<bool>,
    timeout: Option<u64>,
    on_lost: Option<(OnLost, Span)>,
    guard: Option<Ident>,
    reentrant: Option<bool>,
    krate: Option<syn::Path>,
    /// A `name` with a bad value must not also be reported as missing.
    name_given: bool,
    errors: Option<syn::Error>,
}

impl Builder {
    fn parse_one(&mut self, meta: ParseNestedMeta) -> syn::Result<()> {
        let Some(key) = meta.path.get_ident().cloned() else {
            self.error(syn::Error::new_spanned(
                &meta.path,
                format!("unknown argument; {VALID}"),
            ));
            return skip_value(&meta);
        };
        let span = key.span();
        let result = match key.to_string().as_str() {
            "name" => {
                self.name_given = true;
                let value = value(&meta, "name", "name = \"invoice:{order_id}\"")?;
                string(&value, "name", "name = \"invoice:{order_id}\"")
                    .and_then(NameTemplate::parse)
                    .and_then(|name| self.set_name(name, span))
            }
            "expire" => {
                let value = value(&meta, "expire", "expire = 10")?;
                expire(&value).and_then(|nanos| self.set_expire(nanos, span))
            }
            "auto_renew" => flag(&meta, "auto_renew").and_then(|on| self.set_auto_renew(on, span)),
            "reentrant" => flag(&meta, "reentrant").and_then(|on| self.set_reentrant(on, span)),
            "guard" => {
                let value = value(&meta, "guard", "guard = lock")?;
                binding(&value).and_then(|ident| self.set_guard(ident, span))
            }
            "timeout" => {
                let value = value(&meta, "timeout", "timeout = 5")?;
                timeout(&value).and_then(|nanos| self.set_timeout(nanos, span))
            }
            "client" => {
                let value = value(&meta, "client", "client = \"billing\"")?;
                client(&value).and_then(|client| self.set_client(client, span))
            }
            "on_lost" => {
                let value = value(&meta, "on_lost", "on_lost = \"abort\"")?;
                on_lost(&value).and_then(|on_lost| self.set_on_lost(on_lost, span))
            }
            "crate" => {
                let value = value(&meta, "crate", "crate = \"my_locks\"")?;
                crate_path(&value).and_then(|path| self.set_crate(path, span))
            }
            unknown => {
                self.error(unknown_argument(&key, unknown));
                return skip_value(&meta);
            }
        };
        if let Err(error) = result {
            self.error(error);
        }
        Ok(())
    }

    fn set_name(&mut self, name: NameTemplate, span: Span) -> syn::Result<()> {
        if self.name.is_some() {
            return Err(repeated("name", span));
        }
        self.name = Some(name);
        Ok(())
    }

    fn set_expire(&mut self, nanos: u64, span: Span) -> syn::Result<()> {
        if self.expire.is_some() {
            return Err(repeated("expire", span));
        }
        self.expire = Some(nanos);
        Ok(())
    }

    fn set_auto_renew(&mut self, on: bool, span: Span) -> syn::Result<()> {
        if self.auto_renew.is_some() {
            return Err(repeated("auto_renew", span));
        }
        self.auto_renew = Some(on);
        Ok(())
    }

    fn set_timeout(&mut self, nanos: u64, span: Span) -> syn::Result<()> {
        if self.timeout.is_some() {
            return Err(repeated("timeout", span));
        }
        self.timeout = Some(nanos);
        Ok(())
    }

    fn set_client(&mut self, client: LitStr, span: Span) -> syn::Result<()> {
        if self.client.is_some() {
            return Err(repeated("client", span));
        }
        self.client = Some(client);
        Ok(())
    }

    fn set_on_lost(&mut self, on_lost: (OnLost, Span), span: Span) -> syn::Result<()> {
        if self.on_lost.is_some() {
            return Err(repeated("on_lost", span));
        }
        self.on_lost = Some(on_lost);
        Ok(())
    }

    fn set_guard(&mut self, ident: Ident, span: Span) -> syn::Result<()> {
        if self.guard.is_some() {
            return Err(repeated("guard", span));
        }
        self.guard = Some(ident);
        Ok(())
    }

    fn set_reentrant(&mut self, on: bool, span: Span) -> syn::Result<()> {
        if self.reentrant.is_some() {
            return Err(repeated("reentrant", span));
        }
        self.reentrant = Some(on);
        Ok(())
    }

    fn set_crate(&mut self, path: syn::Path, span: Span) -> syn::Result<()> {
        if self.krate.is_some() {
            return Err(repeated("crate", span));
        }
        self.krate = Some(path);
        Ok(())
    }

    fn error(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    /// The cross-argument rules. There is one: a lock needs a name.
    fn build(mut self) -> syn::Result<Args> {
        if self.name.is_none() && !self.name_given {
            // The attribute's own span is the only one there is for something absent.
            self.error(syn::Error::new(
                Span::call_site(),
                "missing `name = \"...\"`: #[redis_lock] needs the name of the lock, like `#[redis_lock(name = \"invoice:{order_id}\")]`",
            ));
        }
        if let Some(errors) = self.errors {
            return Err(errors);
        }
        Ok(Args {
            name: self.name.expect("a missing name is reported above"),
            client: self.client,
            expire: self.expire,
            auto_renew: self.auto_renew,
            timeout: self.timeout,
            on_lost: self.on_lost,
            guard: self.guard,
            reentrant: self.reentrant.unwrap_or(false),
            krate: self.krate,
        })
    }
}

fn repeated(key: &str, span: Span) -> syn::Error {
    syn::Error::new(
        span,
        format!("`{key}` is given more than once; keep one of them"),
    )
}

fn unknown_argument(key: &syn::Ident, name: &str) -> syn::Error {
    // Words people reach for from other lock libraries, which edit distance would not find.
    let alias = match name {
        "key" | "lock" | "lock_name" => Some("name"),
        "ttl" | "lease" | "expiry" | "expires" | "expiration" => Some("expire"),
        "renew" | "autorenew" | "auto_extend" | "keep_alive" => Some("auto_renew"),
        "wait" | "wait_timeout" | "acquire_timeout" => Some("timeout"),
        "connection" | "redis" | "server" => Some("client"),
        "on_lose" | "if_lost" | "when_lost" | "lost" | "on_expire" => Some("on_lost"),
        "bind" | "binding" | "handle" | "lock_ref" | "as" => Some("guard"),
        "reentrancy" | "recursive" | "reentry" | "allow_reentry" => Some("reentrant"),
        "krate" | "crate_path" | "path" | "runtime" => Some("crate"),
        _ => None,
    };
    let arguments = [
        "name",
        "expire",
        "auto_renew",
        "timeout",
        "client",
        "on_lost",
        "guard",
        "reentrant",
        "crate",
    ];
    let hint = match alias.or_else(|| suggest::closest(name, arguments)) {
        Some(known) => format!("did you mean `{known}`? "),
        None => String::new(),
    };
    syn::Error::new(
        key.span(),
        format!("unknown argument `{name}`; {hint}{VALID}"),
    )
}

/// Steps over the value of an argument already reported as unknown, so that parsing can
/// go on and report the arguments after it too.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// The `= value` of a `key = value` argument, as an expression: parsing any expression
/// rather than a literal lets `expire = -1` or `expire = LEASE` get a message about what
/// is wrong with them instead of a bare "expected literal".
fn value(meta: &ParseNestedMeta, key: &str, example: &str) -> syn::Result<Expr> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!("`{key}` needs a value, like `{example}`")));
    }
    meta.value()?.parse()
}

/// Looks through the invisible group a `macro_rules!` `$value:expr` arrives in.
fn ungroup(mut expr: &Expr) -> &Expr {
    while let Expr::Group(group) = expr {
        expr = &group.expr;
    }
    expr
}

fn string(value: &Expr, key: &str, example: &str) -> syn::Result<LitStr> {
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

fn client(value: &Expr) -> syn::Result<LitStr> {
    let example = "client = \"billing\"";
    let client = string(value, "client", example)?;
    if client.value().is_empty() {
        return Err(syn::Error::new(
            client.span(),
            format!(
                "`client` cannot be empty: name a client registered with `redis_locked::register`, like `{example}`, or leave `client` out to use the default client"
            ),
        ));
    }
    Ok(client)
}

/// `on_lost = "continue"` or `on_lost = "abort"`, with the value's span: `abort` on a
/// sync function is reported there once the function is seen.
fn on_lost(value: &Expr) -> syn::Result<(OnLost, Span)> {
    let choices = "`on_lost = \"continue\"` (the default: the body runs to completion and a warning names the lock) or `on_lost = \"abort\"` (async functions: the body stops at its next `.await` and the function returns `LockError::Lost`)";
    let given = string(value, "on_lost", "on_lost = \"abort\"")?;
    match given.value().as_str() {
        "continue" => Ok((OnLost::Continue, given.span())),
        "abort" => Ok((OnLost::Abort, given.span())),
        other => {
            let hint = match suggest::closest(other, ["continue", "abort"]) {
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
fn crate_path(value: &Expr) -> syn::Result<syn::Path> {
    let example = "crate = \"my_locks\"";
    let given = string(value, "crate", example)?;
    given.parse_with(syn::Path::parse_mod_style).map_err(|_| {
        syn::Error::new(
            given.span(),
            format!(
                "`crate` takes the path of the `redis-locked` crate as your code names it, like `{example}` after `my_locks = {{ package = \"redis-locked\", ... }}` in Cargo.toml"
            ),
        )
    })
}

/// A flag argument: `key` alone, or `key = true` / `key = false`.
fn flag(meta: &ParseNestedMeta, key: &str) -> syn::Result<bool> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(true)
    } else if meta.input.peek(Token![=]) {
        boolean(&meta.value()?.parse()?, key)
    } else {
        Err(syn::Error::new(
            meta.input.span(),
            format!("expected `,` after `{key}`; write `{key}` or `{key} = false`"),
        ))
    }
}

fn boolean(value: &Expr, key: &str) -> syn::Result<bool> {
    if let Expr::Lit(lit) = ungroup(value)
        && let Lit::Bool(on) = &lit.lit
    {
        return Ok(on.value);
    }
    Err(syn::Error::new_spanned(
        value,
        format!(
            "`{key}` takes `true` or `false`: write `{key}` (same as `{key} = true`) or `{key} = false`"
        ),
    ))
}

/// `guard = lock`: a plain identifier for the binding.
fn binding(value: &Expr) -> syn::Result<Ident> {
    let example = "like `guard = lock`, then use `lock.fencing_token()` in the body";
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

fn expire(value: &Expr) -> syn::Result<u64> {
    let seconds = seconds(
        value,
        "expire",
        "the lease, in seconds, like `expire = 10` or `expire = 0.5`",
    )?;
    if seconds.is_zero {
        return Err(syn::Error::new_spanned(
            value,
            "`expire` must be greater than zero: it is how long the lock is held before it expires on its own, like `expire = 10`",
        ));
    }
    if seconds.nanos < NANOS_PER_MILLI {
        return Err(syn::Error::new_spanned(
            value,
            "`expire` must be at least 1 millisecond (`expire = 0.001`): Redis expires keys in whole milliseconds",
        ));
    }
    Ok(seconds.nanos)
}

fn timeout(value: &Expr) -> syn::Result<u64> {
    let what = "how long to wait for the lock, in seconds, like `timeout = 5`; `timeout = 0` makes a single attempt, and leaving it out waits until the lock is acquired";
    Ok(seconds(value, "timeout", what)?.nanos)
}

struct Seconds {
    nanos: u64,
    /// Kept apart from `nanos == 0` so that `expire = 0.0000001` is told it is too short,
    /// not that it is zero.
    is_zero: bool,
}

/// A non-negative number of seconds, written as an integer or float literal.
fn seconds(value: &Expr, key: &str, what: &str) -> syn::Result<Seconds> {
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

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::{Args, NANOS_PER_SEC};

    fn parse(tokens: proc_macro2::TokenStream) -> Args {
        Args::parse(tokens).unwrap_or_else(|error| panic!("{error}"))
    }

    fn errors(tokens: proc_macro2::TokenStream) -> Vec<String> {
        match Args::parse(tokens) {
            Ok(_) => panic!("expected errors"),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    #[test]
    fn seconds_become_exact_nanoseconds() {
        let args = parse(quote!(name = "a", expire = 0.25, timeout = 10));
        assert_eq!(args.expire, Some(250_000_000));
        assert_eq!(args.timeout, Some(10 * NANOS_PER_SEC));
        assert_eq!(
            parse(quote!(name = "a", expire = 0.1)).expire,
            Some(100_000_000)
        );
        assert_eq!(
            parse(quote!(name = "a", expire = 1e-3)).expire,
            Some(1_000_000)
        );
        assert_eq!(parse(quote!(name = "a", timeout = 0)).timeout, Some(0));
        assert_eq!(parse(quote!(name = "a", timeout = 0.0)).timeout, Some(0));
    }

    #[test]
    fn absent_arguments_stay_absent() {
        let args = parse(quote!(name = "a"));
        assert!(args.client.is_none() && args.expire.is_none());
        assert!(args.auto_renew.is_none() && args.timeout.is_none());
    }

    #[test]
    fn auto_renew_is_a_flag_or_a_bool() {
        assert_eq!(parse(quote!(name = "a", auto_renew)).auto_renew, Some(true));
        assert_eq!(parse(quote!(auto_renew, name = "a")).auto_renew, Some(true));
        assert_eq!(
            parse(quote!(name = "a", auto_renew = false)).auto_renew,
            Some(false)
        );
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let errors = errors(quote!(
            name = "a",
            expire = 0,
            timeout = -1,
            ttl = 3,
            client = ""
        ));
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn out_of_range_numbers_are_rejected() {
        assert_eq!(
            errors(quote!(name = "a", expire = 99999999999999999999)).len(),
            1
        );
        assert_eq!(errors(quote!(name = "a", expire = 1e300)).len(), 1);
        assert_eq!(errors(quote!(name = "a", expire = 10s)).len(), 1);
        assert_eq!(errors(quote!(name = "a", expire = LEASE)).len(), 1);
    }

    #[test]
    fn a_bad_name_is_not_also_missing() {
        assert_eq!(errors(quote!(name = 1)).len(), 1);
        assert_eq!(errors(quote!(expire = 1)).len(), 1);
    }
}
