//! The attribute's arguments, `#[redis_lock(name = "...", expire = 10, ...)]`: which are
//! given, each at most once, and the required ones present. What each argument is and how
//! its value is checked is its row of `arguments::ARGUMENTS`.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprLit, Lit, LitBool, LitStr, Token};

use crate::arguments::{self, ARGUMENTS, Argument, Value};
use crate::name::Names;

/// The checked arguments; durations are in nanoseconds, ready for `Duration::from_nanos`.
pub(crate) struct Args {
    pub(crate) name: Names,
    pub(crate) client: Option<LitStr>,
    pub(crate) expire: Option<u64>,
    pub(crate) auto_renew: Option<bool>,
    pub(crate) timeout: Option<u64>,
    pub(crate) max_hold: Option<u64>,
    pub(crate) min_hold: Option<u64>,
    /// `permits = N`; 1 (the plain lock) when absent.
    pub(crate) permits: u32,
    /// `shared`: a shared (read) lock.
    pub(crate) shared: bool,
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

/// The values given so far, each filled in by its argument's `set`.
#[derive(Default)]
pub(crate) struct Given {
    pub(crate) name: Option<Names>,
    pub(crate) client: Option<LitStr>,
    pub(crate) expire: Option<u64>,
    pub(crate) auto_renew: Option<bool>,
    pub(crate) timeout: Option<u64>,
    /// With the span of its value, where a clash with `expire` or each other is shown.
    pub(crate) max_hold: Option<(u64, Span)>,
    pub(crate) min_hold: Option<(u64, Span)>,
    pub(crate) permits: Option<(u32, Span)>,
    pub(crate) shared: Option<(bool, Span)>,
    pub(crate) on_lost: Option<(OnLost, Span)>,
    pub(crate) guard: Option<Ident>,
    pub(crate) reentrant: Option<bool>,
    pub(crate) krate: Option<syn::Path>,
}

impl Args {
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let mut builder = Builder::default();
        if let Err(error) = syn::meta::parser(|meta| builder.parse_one(meta)).parse2(tokens) {
            // Malformed syntax: what follows cannot be read, so nothing is reported missing.
            return Err(match builder.errors {
                Some(mut errors) => {
                    errors.combine(error);
                    errors
                }
                None => error,
            });
        }
        builder.build()
    }
}

/// Collects arguments as they come. Errors about a value are accumulated rather than
/// returned, so that one build reports every bad value; only malformed syntax stops parsing.
#[derive(Default)]
struct Builder {
    given: Given,
    /// The arguments met, with good values or bad: a repeat is reported whatever the first
    /// one held, and a required argument with a bad value is not also reported missing.
    seen: Vec<&'static str>,
    errors: Option<syn::Error>,
}

impl Builder {
    fn parse_one(&mut self, meta: ParseNestedMeta) -> syn::Result<()> {
        let Some(key) = meta.path.get_ident().cloned() else {
            self.error(syn::Error::new_spanned(
                &meta.path,
                format!("unknown argument; {}", arguments::valid_list()),
            ));
            return skip_value(&meta);
        };
        let Some(argument) = arguments::find(&key.to_string()) else {
            self.error(unknown_argument(&key));
            return skip_value(&meta);
        };
        if self.seen.contains(&argument.name) {
            self.error(syn::Error::new(
                key.span(),
                format!(
                    "`{}` is given more than once; keep one of them",
                    argument.name
                ),
            ));
        } else {
            self.seen.push(argument.name);
        }
        if let Some(value) = self.value(&meta, argument, &key)?
            && let Err(error) = (argument.set)(argument, &value, &mut self.given)
        {
            self.error(error);
        }
        Ok(())
    }

    /// What follows the argument's `=`, or `true` for a flag given alone; `None` for a
    /// value left out before a `,`, which is reported and skipped.
    fn value(
        &mut self,
        meta: &ParseNestedMeta,
        argument: &Argument,
        key: &Ident,
    ) -> syn::Result<Option<Expr>> {
        if meta.input.peek(Token![=]) {
            return meta.value()?.parse().map(Some);
        }
        let (name, example) = (argument.name, argument.example);
        let alone = meta.input.is_empty() || meta.input.peek(Token![,]);
        match argument.value {
            Value::Flag if alone => Ok(Some(Expr::Lit(ExprLit {
                attrs: Vec::new(),
                lit: Lit::Bool(LitBool::new(true, key.span())),
            }))),
            Value::Flag => Err(syn::Error::new(
                meta.input.span(),
                format!("expected `,` after `{name}`; write `{name}` or `{name} = false`"),
            )),
            _ => {
                let error = meta.error(format!("`{name}` needs a value, like `{example}`"));
                if !alone {
                    return Err(error);
                }
                self.error(error);
                Ok(None)
            }
        }
    }

    fn error(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    fn build(mut self) -> syn::Result<Args> {
        for argument in ARGUMENTS {
            if argument.required && !self.seen.contains(&argument.name) {
                // The attribute's own span is the only one there is for something absent.
                self.error(syn::Error::new(
                    Span::call_site(),
                    format!(
                        "missing {}: #[redis_lock] needs {}, like `#[redis_lock({})]`",
                        argument.form(),
                        argument.description,
                        argument.example
                    ),
                ));
            }
        }
        for error in hold_clashes(&self.given)
            .into_iter()
            .chain(kind_clashes(&self.given))
        {
            self.error(error);
        }
        let given = self.given;
        match (self.errors, given.name) {
            (Some(errors), _) => Err(errors),
            (None, Some(name)) => Ok(Args {
                name,
                client: given.client,
                expire: given.expire,
                auto_renew: given.auto_renew,
                timeout: given.timeout,
                max_hold: given.max_hold.map(|(nanos, _)| nanos),
                min_hold: given.min_hold.map(|(nanos, _)| nanos),
                permits: given.permits.map_or(1, |(n, _)| n),
                shared: given.shared.is_some_and(|(on, _)| on),
                on_lost: given.on_lost,
                guard: given.guard,
                reentrant: given.reentrant.unwrap_or(false),
                krate: given.krate,
            }),
            // Reported above while the table marks `name` required, as a test checks.
            (None, None) => Err(syn::Error::new(
                Span::call_site(),
                "missing `name = \"...\"`",
            )),
        }
    }
}

/// `max_hold` and `min_hold` that cannot hold together with the lease or each other.
fn hold_clashes(given: &Given) -> Vec<syn::Error> {
    // As the runtime decides it: renewed when asked, or by default when no lease is given.
    let renewed = given.auto_renew.unwrap_or(given.expire.is_none());
    let mut clashes = Vec::new();
    if let Some((_, span)) = given.max_hold
        && !renewed
    {
        clashes.push(syn::Error::new(
            span,
            "`max_hold` caps auto-renewal, and this lock is not renewed (`expire` without `auto_renew`): its lease already ends it. Add `auto_renew`, or leave `max_hold` out",
        ));
    }
    if let (Some((min, span)), Some((max, _))) = (given.min_hold, given.max_hold)
        && min > max
    {
        clashes.push(syn::Error::new(
            span,
            "`min_hold` is longer than `max_hold`: no hold can last at least the one and at most the other. Make `min_hold` at most `max_hold`",
        ));
    }
    if let (Some((min, span)), Some(expire)) = (given.min_hold, given.expire)
        && !renewed
        && min > expire
    {
        clashes.push(syn::Error::new(
            span,
            "`min_hold` is longer than `expire`, and the lease is not renewed: the lock could expire before the minimum hold is over. Make `expire` at least `min_hold`, or add `auto_renew`",
        ));
    }
    clashes
}

/// `shared` and `permits` together.
fn kind_clashes(given: &Given) -> Vec<syn::Error> {
    let shared = given.shared.filter(|(on, _)| *on).map(|(_, span)| span);
    let mut clashes = Vec::new();
    if let (Some(span), Some(_)) = (shared, given.permits) {
        clashes.push(syn::Error::new(
            span,
            "`shared` and `permits` do not go together: a shared lock admits any number of shared holders, and a semaphore at most `permits` holders of one kind. Keep one of them",
        ));
    }
    clashes
}

fn unknown_argument(key: &Ident) -> syn::Error {
    let name = key.to_string();
    let hint = match arguments::suggestion(&name) {
        Some(known) => format!("did you mean `{}` ({})? ", known.name, known.description),
        None => String::new(),
    };
    syn::Error::new(
        key.span(),
        format!(
            "unknown argument `{name}`; {hint}{}",
            arguments::valid_list()
        ),
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

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::Args;

    const NANOS_PER_SEC: u64 = 1_000_000_000;

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
        assert_eq!(errors(quote!(name, expire = 1)).len(), 1);
        let missing = errors(quote!(expire = 1));
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0]
                .starts_with("missing `name = \"...\"`: #[redis_lock] needs the name of the lock"),
            "{missing:#?}"
        );
    }

    #[test]
    fn a_repeat_is_reported_whatever_the_first_value() {
        let errors = errors(quote!(name = "a", expire = 0, expire = 10));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("greater than zero"), "{errors:#?}");
        assert!(
            errors[1].contains("`expire` is given more than once"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_missing_value_does_not_hide_the_arguments_after_it() {
        let errors = errors(quote!(name = "a", timeout, client = ""));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("`timeout` needs a value, like `timeout = 5`"));
        assert!(errors[1].contains("`client` cannot be empty"));
    }

    #[test]
    fn malformed_syntax_keeps_the_errors_before_it() {
        let errors = errors(quote!(name = "a", expire = 0, timeout 5));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("greater than zero"), "{errors:#?}");
        assert!(errors[1].contains("`timeout` needs a value"), "{errors:#?}");
    }

    #[test]
    fn unknown_arguments_name_what_was_meant() {
        let errors = errors(quote!(name = "a", ttl = 3, auto_renw, colour = 1));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0].starts_with(
                "unknown argument `ttl`; did you mean `expire` (the lease, in seconds)? valid arguments are `name = \"...\"` (required), `expire = <seconds>`"
            ),
            "{errors:#?}"
        );
        assert!(
            errors[1].contains("did you mean `auto_renew`"),
            "{errors:#?}"
        );
        assert!(errors[2].starts_with("unknown argument `colour`; valid arguments are"));
    }
}
