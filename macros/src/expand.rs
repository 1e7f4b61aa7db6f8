//! Code generation, from what `validate` checked: nothing here can fail.
//!
//! The user's function keeps its attributes, visibility and signature token for token;
//! only its body is wrapped. Generated code names everything by absolute path so that a
//! local `mod core`, `struct Result` or `enum Option` cannot change its meaning, and its
//! locals are `__redis_lock_*` idents with mixed-site hygiene so the user's body can
//! neither see nor shadow them.

use proc_macro2::{Delimiter, Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt, quote, quote_spanned};
use syn::{
    AttrStyle, Block, GenericArgument, LitStr, PathArguments, ReturnType, Signature, Token, Type,
    TypeInfer,
};

use crate::attr::{Args, OnLost};
use crate::validate::{Body, Validated};

/// ```text
/// #[doc] #[redis_lock(name = "a:{id}")] pub async fn f(id: u64) -> R { body }
/// =>
/// #[doc] pub async fn f(id: u64) -> R { <async_body or sync_body> }
/// ```
///
/// `runtime/doc/expansion.rs` shows the whole expansion of one example, kept current by
/// `snapshot_tests.rs`.
pub(crate) fn expand(validated: Validated) -> TokenStream {
    let Validated {
        args,
        name,
        attrs,
        vis,
        sig,
        body,
    } = validated;
    let (outer, inner): (Vec<_>, Vec<_>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));
    let root = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::redis_locked),
    };
    // What the body returns: the declared type, or the output of `#[async_trait]`'s future.
    let output = match (&body, &sig.output) {
        (Body::AsyncTrait(boxed), _) => Some(&boxed.output),
        (_, ReturnType::Type(_, ty)) => Some(&**ty),
        (_, ReturnType::Default) => None,
    };
    let lock = Lock {
        options: options(&args, &name.literal(), &root),
        name: name.to_expr(),
        set: name.list,
        lock_failed: lock_failed(output, &sig, &root),
        root,
        binding: args.guard.clone(),
    };
    let body = match &body {
        // `Box::pin(async move { <the lock around async_trait's block> })`
        Body::AsyncTrait(boxed) => {
            let future = &boxed.future;
            let inner = async_body(&lock, output, user_block(&future.block));
            let (pin, attrs, async_token, capture) = (
                &boxed.pin,
                &future.attrs,
                &future.async_token,
                &future.capture,
            );
            quote!(#pin(#(#attrs)* #async_token #capture { #inner }))
        }
        Body::Async(block) => async_body(&lock, output, user_block(block)),
        Body::Sync(block) => sync_body(&lock, user_block(block)),
    };
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #body
        }
    }
}

/// What both bodies need, already generated.
struct Lock {
    options: TokenStream,
    name: TokenStream,
    lock_failed: TokenStream,
    /// The runtime crate: `::redis_locked`, or the path given by `crate = "..."`.
    root: TokenStream,
    /// `guard = <ident>`.
    binding: Option<Ident>,
    /// `name = [...]`: the call takes a set of locks, through the `*_set` steps of `Call`.
    set: bool,
}

impl Lock {
    /// The name of `Call`'s method for step `step`: its `_set` twin for a set of locks
    /// (`acquire_blocking` becomes `acquire_set_blocking`).
    fn step(&self, step: &str) -> Ident {
        let name = match (self.set, step.strip_suffix("_blocking")) {
            (false, _) => step.to_owned(),
            (true, Some(base)) => format!("{base}_set_blocking"),
            (true, None) => format!("{step}_set"),
        };
        Ident::new(&name, Span::call_site())
    }

    /// ```text
    /// let __redis_lock_call = Call::new(options, name);
    /// let __redis_lock_guard = match <acquire> {
    ///     Ok(guard) => guard,
    ///     Err(error) => return lock_failed(error),
    /// };
    /// ```
    ///
    /// `acquire` is the call's method to run (`.acquire().await` or `.acquire_blocking()`).
    fn take_guard(&self, acquire: TokenStream) -> TokenStream {
        let call = local("call");
        let guard = local("guard");
        let error = local("error");
        let (options, name) = (&self.options, &self.name);
        let (lock_failed, root) = (&self.lock_failed, &self.root);
        let new = self.step("new");
        quote! {
            let #call = #root::__private::Call::#new(#options, #name);
            let #guard = match #call #acquire {
                ::core::result::Result::Ok(#guard) => #guard,
                ::core::result::Result::Err(#error) => #lock_failed,
            };
        }
    }
}

/// ```text
/// name = "a:{id}", expire = 0.25, auto_renew
/// =>
/// ::redis_locked::__private::Options {
///     template: "a:{id}", client: None, expire: Some(Duration::from_nanos(250000000)),
///     auto_renew: Some(true), timeout: None, max_hold: None, min_hold: None, permits: 1,
///     shared: false, abort_on_lost: false, reentrant: false, fenced: false,
/// }
/// ```
fn options(args: &Args, template: &LitStr, root: &TokenStream) -> TokenStream {
    fn some(value: Option<TokenStream>) -> TokenStream {
        match value {
            Some(value) => quote!(::core::option::Option::Some(#value)),
            None => quote!(::core::option::Option::None),
        }
    }
    let duration = |nanos: Option<u64>| {
        some(nanos.map(|nanos| {
            let nanos = Literal::u64_unsuffixed(nanos);
            quote!(::core::time::Duration::from_nanos(#nanos))
        }))
    };
    let client = some(args.client.as_ref().map(ToTokens::to_token_stream));
    let expire = duration(args.expire);
    let auto_renew = some(args.auto_renew.map(|on| quote!(#on)));
    let timeout = duration(args.timeout);
    let max_hold = duration(args.max_hold);
    let min_hold = duration(args.min_hold);
    let permits = Literal::u32_unsuffixed(args.permits);
    let shared = args.shared;
    let abort_on_lost = matches!(args.on_lost, Some((OnLost::Abort, _)));
    let reentrant = args.reentrant;
    // Only a bound guard lets the body read the fencing token: without one, none is taken.
    let fenced = args.guard.is_some();
    quote! {
        #root::__private::Options {
            template: #template,
            client: #client,
            expire: #expire,
            auto_renew: #auto_renew,
            timeout: #timeout,
            max_hold: #max_hold,
            min_hold: #min_hold,
            permits: #permits,
            shared: #shared,
            abort_on_lost: #abort_on_lost,
            reentrant: #reentrant,
            fenced: #fenced,
        }
    }
}

/// ```text
/// -> Result<T, E>   =>   return ::redis_locked::__private::lock_failed(__redis_lock_error)
/// ```
///
/// Spanned at the return type (at the name when there is none): this is where
/// `LockResult`'s "must return `Result<T, E>` where `E: From<LockError>`" lands when the
/// return type cannot carry a `LockError`.
fn lock_failed(output: Option<&Type>, sig: &Signature, root: &TokenStream) -> TokenStream {
    let (first, last) = match output {
        Some(ty) => first_and_last_span(ty),
        None => (sig.ident.span(), sig.ident.span()),
    };
    let error = local("error");
    // `Span::join` is unstable; a path whose first and last segments carry the spans of
    // the type's first and last tokens makes rustc underline the whole type instead.
    let path = respan(root, first);
    let path = quote_spanned!(first=> #path::__private::);
    let function = quote_spanned!(last=> lock_failed);
    let mut call = quote_spanned!(first=> return #path #function);
    call.extend(quote_spanned!(last=> (#error)));
    call
}

/// `tokens` with every token located at `span`.
fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}

fn first_and_last_span(ty: &Type) -> (Span, Span) {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    (first, last)
}

/// ```text
/// {
///     let __redis_lock_call = Call::new(options, name);
///     let __redis_lock_guard = match __redis_lock_call.acquire_blocking() {
///         Ok(guard) => guard,
///         Err(error) => return lock_failed(error),
///     };
///     let __redis_lock_entered = __redis_lock_call.enter(&__redis_lock_guard);
///     let lock = &__redis_lock_guard; // with `guard = lock`
///     { body }
/// }
/// ```
///
/// The guard is a local of the outer block, so it is dropped, releasing the lock, after
/// the body's value is computed and on every early `return` or `?` out of the body; the
/// call's record of the lock held by this thread (`entered`) goes just before it.
fn sync_body(lock: &Lock, block: TokenStream) -> TokenStream {
    let call = local("call");
    let guard = local("guard");
    let entered = local("entered");
    let acquire = lock.step("acquire_blocking");
    let enter = lock.step("enter");
    let take_guard = lock.take_guard(quote!(.#acquire()));
    let binding = lock
        .binding
        .as_ref()
        .map(|binding| quote!(let #binding = &#guard;));
    quote! {
        #take_guard
        let #entered = #call.#enter(&#guard);
        #binding
        #block
    }
}

/// ```text
/// {
///     let __redis_lock_call = Call::new(options, name);
///     let __redis_lock_guard = match __redis_lock_call.acquire().await {
///         Ok(guard) => guard,
///         Err(error) => return lock_failed(error),
///     };
///     let __redis_lock_guard_ref = &__redis_lock_guard; // with `guard = lock`
///     let __redis_lock_result = match __redis_lock_call.run(&__redis_lock_guard, async move {
///         let lock = __redis_lock_guard_ref; // with `guard = lock`
///         if false { return None::<R>.unwrap(); }
///         { body }
///     }).await {
///         Ok(result) => result,
///         // Only with `on_lost = "abort"`: the lock was lost and the body stopped.
///         Err(error) => { __redis_lock_call.abandon(__redis_lock_guard).await; return lock_failed(error) }
///     };
///     __redis_lock_call.finish(__redis_lock_guard).await;
///     __redis_lock_result
/// }
/// ```
///
/// The body runs in its own `async move` block so that a `return` or `?` in it leaves
/// the block, not the function, and the release still runs. Unlike the function body, a
/// bare async block has no declared output type: a `?` could not tell which `From` to
/// call, and `return Box::new(x)` would not coerce to `Box<dyn Trait>`. The dead
/// `return` fixes the block's output to the declared return type before the body is
/// checked (tracing-attributes' "fake return edge"), with any `impl Trait` left to
/// inference as `_`, since it is not allowed in that position. Being generated code it
/// trips no lint, and `if false` reaches nothing, so the user's body needs no `allow`.
fn async_body(lock: &Lock, output: Option<&Type>, block: TokenStream) -> TokenStream {
    let call = local("call");
    let guard = local("guard");
    let guard_ref = local("guard_ref");
    let result = local("result");
    let error = local("error");
    let declared = match output {
        Some(ty) => {
            let mut ty = ty.clone();
            erase_impl_trait(&mut ty);
            ty.into_token_stream()
        }
        None => quote!(()),
    };
    let (acquire, run) = (lock.step("acquire"), lock.step("run"));
    let (abandon, finish) = (lock.step("abandon"), lock.step("finish"));
    let take_guard = lock.take_guard(quote!(.#acquire().await));
    let (guard_ref_def, binding) = match &lock.binding {
        Some(binding) => (
            quote!(let #guard_ref = &#guard;),
            quote!(let #binding = #guard_ref;),
        ),
        None => (TokenStream::new(), TokenStream::new()),
    };
    let lock_failed = &lock.lock_failed;
    quote! {
        #take_guard
        #guard_ref_def
        let #result = match #call.#run(&#guard, async move {
            #binding
            if false {
                return ::core::option::Option::<#declared>::None.unwrap();
            }
            #block
        })
        .await
        {
            ::core::result::Result::Ok(#result) => #result,
            ::core::result::Result::Err(#error) => {
                #call.#abandon(#guard).await;
                #lock_failed
            }
        };
        #call.#finish(#guard).await;
        #result
    }
}

/// The user's block, its statements untouched, in braces that belong to the expansion.
///
/// Placed as the last expression of a generated block, a one-line `{ Ok(x) }` would
/// otherwise trip `unused_braces` on the user's code, with a fix (removing the braces)
/// that does not compile. The lint skips blocks made by a macro; the braces stay located
/// at the user's, so errors about the block still point there, and everything inside keeps
/// its own spans and lints.
fn user_block(block: &Block) -> TokenStream {
    let mut stmts = TokenStream::new();
    stmts.append_all(&block.stmts);
    let mut braces = Group::new(Delimiter::Brace, stmts);
    braces.set_span(Span::mixed_site().located_at(block.brace_token.span.join()));
    TokenTree::Group(braces).into()
}

/// `__redis_lock_<what>`, invisible to the user's code.
fn local(what: &str) -> Ident {
    Ident::new(&format!("__redis_lock_{what}"), Span::mixed_site())
}

/// Replaces every `impl Trait` in a type with `_`.
///
/// ```text
/// Result<impl Display, E>   =>   Result<_, E>
/// ```
fn erase_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(impl_trait) => {
            *ty = Type::Infer(TypeInfer {
                attrs: Vec::new(),
                underscore_token: Token![_](impl_trait.impl_token.span),
            });
        }
        Type::Array(array) => erase_impl_trait(&mut array.elem),
        Type::Group(group) => erase_impl_trait(&mut group.elem),
        Type::Paren(paren) => erase_impl_trait(&mut paren.elem),
        Type::Ptr(ptr) => erase_impl_trait(&mut ptr.elem),
        Type::Reference(reference) => erase_impl_trait(&mut reference.elem),
        Type::Slice(slice) => erase_impl_trait(&mut slice.elem),
        Type::Tuple(tuple) => tuple.elems.iter_mut().for_each(erase_impl_trait),
        Type::Path(path) => {
            if let Some(qself) = &mut path.qself {
                erase_impl_trait(&mut qself.ty);
            }
            for segment in &mut path.path.segments {
                if let PathArguments::AngleBracketed(generics) = &mut segment.arguments {
                    for arg in &mut generics.args {
                        match arg {
                            GenericArgument::Type(ty) => erase_impl_trait(ty),
                            GenericArgument::AssocType(assoc) => erase_impl_trait(&mut assoc.ty),
                            _ => {}
                        }
                    }
                }
            }
        }
        _ => {}
    }
}
