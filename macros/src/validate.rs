//! Everything checked before code is generated, beyond each argument's own value: the
//! item is a function the lock can wrap, the name's placeholders name its parameters,
//! `on_lost = "abort"` has an async body to stop, and `guard = <name>` hides no
//! parameter. What comes out is all `expand` needs, and it cannot fail.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::{Attribute, Block, Item, ItemFn, ReturnType, Signature, TraitItemFn, Visibility};

use crate::async_trait::{self, Boxed};
use crate::attr::{Args, OnLost};
use crate::name::BoundNames;
use crate::params::Params;

/// The arguments and the function they lock, checked together.
pub(crate) struct Validated {
    pub(crate) args: Args,
    /// The lock names with each placeholder bound to its parameter.
    pub(crate) name: BoundNames,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Body,
}

/// Where the lock goes.
pub(crate) enum Body {
    /// Around an `async fn`'s block, in the function's future.
    Async(Block),
    /// Around a plain `fn`'s block.
    Sync(Block),
    /// Inside the future of a method as `#[async_trait]` left it.
    AsyncTrait(Box<Boxed>),
}

/// The arguments and the item, with every error found in either: the argument errors
/// and those about the item's shape together, then those of the two combined.
pub(crate) fn validate(args: TokenStream, item: &TokenStream) -> syn::Result<Validated> {
    let (args, function) = match (Args::parse(args), function(item)) {
        (Ok(args), Ok(function)) => (args, function),
        (Err(mut error), Err(item_error)) => {
            error.combine(item_error);
            return Err(error);
        }
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => return Err(error),
    };
    let boxed = async_trait::recognise(&function);
    if boxed.is_none() && async_trait::returns_future(&function) {
        return Err(returns_future(&function.sig));
    }
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = function;
    let body = match boxed {
        Some(boxed) => Body::AsyncTrait(Box::new(boxed)),
        None if sig.asyncness.is_some() => Body::Async(*block),
        None => Body::Sync(*block),
    };
    let params = Params::of(&sig);
    let name = args
        .name
        .bind(&params, &sig.ident, matches!(body, Body::AsyncTrait(_)));
    // The name's error first, then every other: one build reports every mistake.
    let mut errors = name.as_ref().err().cloned();
    for error in [
        abort_without_async(&args, &body),
        guard_hiding_a_parameter(&args, &params),
    ]
    .into_iter()
    .flatten()
    {
        match &mut errors {
            Some(errors) => errors.combine(error),
            None => errors = Some(error),
        }
    }
    match (name, errors) {
        (Ok(name), None) => Ok(Validated {
            args,
            name,
            attrs,
            vis,
            sig,
            body,
        }),
        (_, Some(errors)) => Err(errors),
        (Err(error), None) => Err(error),
    }
}

/// `on_lost = "abort"` on a body nothing can stop.
fn abort_without_async(args: &Args, body: &Body) -> Option<syn::Error> {
    match (args.on_lost, body) {
        (Some((OnLost::Abort, span)), Body::Sync(_)) => Some(syn::Error::new(
            span,
            "`on_lost = \"abort\"` needs an `async fn`: a sync body cannot be stopped from outside. Use `on_lost = \"continue\"` (the default), or make the function async",
        )),
        _ => None,
    }
}

/// `guard = id` where a parameter is `id`: the body could no longer reach it.
fn guard_hiding_a_parameter(args: &Args, params: &Params) -> Option<syn::Error> {
    let binding = args.guard.as_ref()?;
    let param = params.find(&binding.unraw().to_string())?;
    let mut error = syn::Error::new(
        binding.span(),
        format!(
            "`guard = {binding}` would hide the parameter `{param}` in the body; choose another name, like `guard = lock`"
        ),
    );
    error.combine(syn::Error::new(
        param.span(),
        format!("the parameter `{param}` is here"),
    ));
    Some(error)
}

fn function(item: &TokenStream) -> syn::Result<ItemFn> {
    let function = match syn::parse2::<Item>(item.clone())? {
        Item::Fn(function) => function,
        Item::Verbatim(tokens)
            if syn::parse2::<TraitItemFn>(tokens.clone()).is_ok_and(|f| f.default.is_none()) =>
        {
            return Err(syn::Error::new(
                keyword_span(item),
                "#[redis_lock] needs a function with a body: it wraps the body in the lock",
            ));
        }
        _ => {
            return Err(syn::Error::new(
                keyword_span(item),
                "#[redis_lock] can only be applied to functions",
            ));
        }
    };
    if let Some(constness) = &function.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            "#[redis_lock] cannot be applied to a `const fn`: taking a lock talks to Redis at run time; remove `const`",
        ));
    }
    if let Some(variadic) = &function.sig.variadic {
        return Err(syn::Error::new(
            variadic.dots.spans[0],
            "#[redis_lock] does not support variadic functions",
        ));
    }
    Ok(function)
}

/// The first token after the item's attributes and visibility (`struct`, `impl`, ...),
/// which is where "this is not a function" is best shown.
fn keyword_span(item: &TokenStream) -> Span {
    let mut tokens = item.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == '#' => {
                tokens.next();
            }
            TokenTree::Ident(ident) if ident == "pub" => {
                tokens.next_if(
                    |next| matches!(next, TokenTree::Group(group) if group.delimiter() == Delimiter::Parenthesis),
                );
            }
            _ => return token.span(),
        }
    }
    Span::call_site()
}

/// A plain `fn` returning a future it builds: the lock would be released as soon as the
/// future is made, long before it runs.
fn returns_future(sig: &Signature) -> syn::Error {
    let message = "#[redis_lock] cannot hold a lock across a future that a plain `fn` returns: it would be released as soon as the future is made, before it runs. Write an `async fn` returning `Result<T, E>` instead; in a trait, keep the method an `async fn` and put `#[async_trait]` on the trait and the impl (then `#[redis_lock]` wraps the future it makes)";
    match &sig.output {
        ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
        ReturnType::Default => syn::Error::new(sig.ident.span(), message),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::{Body, validate};

    fn errors(args: proc_macro2::TokenStream, item: proc_macro2::TokenStream) -> Vec<String> {
        match validate(args, &item) {
            Ok(_) => panic!("expected errors"),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    #[test]
    fn each_shape_of_function_has_its_body() {
        let args = quote!(name = "a:{id}");
        let async_fn = validate(
            args.clone(),
            &quote!(
                async fn f(id: u64) {}
            ),
        )
        .unwrap();
        assert!(matches!(async_fn.body, Body::Async(_)));
        let sync_fn = validate(
            args,
            &quote!(
                fn f(id: u64) {}
            ),
        )
        .unwrap();
        assert!(matches!(sync_fn.body, Body::Sync(_)));
    }

    #[test]
    fn every_check_against_the_function_is_reported() {
        let errors = errors(
            quote!(name = "a:{job}", on_lost = "abort", guard = r#id),
            quote!(
                fn job(id: u64) {}
            ),
        );
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("unknown placeholder `{job}`"));
        assert!(errors[1].starts_with("`on_lost = \"abort\"` needs an `async fn`"));
        assert!(errors[2].starts_with("`guard = r#id` would hide the parameter `id`"));
        assert_eq!(errors[3], "the parameter `id` is here");
    }

    #[test]
    fn argument_and_item_errors_come_together() {
        let errors = errors(
            quote!(expire = 0),
            quote!(
                struct S;
            ),
        );
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].contains("greater than zero"));
        assert!(errors[1].starts_with("missing `name"));
        assert_eq!(errors[2], "#[redis_lock] can only be applied to functions");
    }
}
