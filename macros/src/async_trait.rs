//! Methods as `#[async_trait]` leaves them, and functions that return a future by hand.
//!
//! `#[async_trait]` sits on the `impl` (or `trait`), so it always runs before the
//! `#[redis_lock]` on one of its methods, and rewrites
//!
//! ```text
//! async fn f(&self, id: u64) -> Result<T, E> { body }
//! =>
//! fn f<'life0, 'async_trait>(&'life0 self, id: u64)
//!     -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'async_trait>>
//! { Box::pin(async move { ...body... }) }
//! ```
//!
//! Wrapped as a sync function, that would hold the lock only while the future is made.
//! Like tracing-attributes, we recognise the shape and wrap the inner `async move` block
//! the way we wrap an `async fn`'s body: the lock is then taken when the future first
//! runs and held until it completes.

use syn::{
    Block, Expr, ExprAsync, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type,
    TypeParamBound,
};

/// A method rewritten by `#[async_trait]`: the future's output, the `Box::pin` it calls,
/// and its `async move` block.
pub(crate) struct Boxed {
    pub(crate) output: Type,
    pub(crate) pin: Expr,
    pub(crate) future: ExprAsync,
}

/// `Some` when `function` is a non-async fn returning `Pin<Box<dyn Future<Output = T>>>`
/// whose whole body is `Box::pin(async move { ... })`.
pub(crate) fn recognise(function: &ItemFn) -> Option<Boxed> {
    if function.sig.asyncness.is_some() {
        return None;
    }
    let output = match &function.sig.output {
        ReturnType::Type(_, ty) => boxed_future_output(ty)?,
        ReturnType::Default => return None,
    };
    let (pin, future) = box_pin_async_move(&function.block)?;
    Some(Boxed {
        output: output.clone(),
        pin: pin.clone(),
        future: future.clone(),
    })
}

/// Whether a non-async function returns a future it builds itself (`impl Future`, or a
/// `Pin<Box<dyn Future>>` whose body is not `#[async_trait]`'s): the lock cannot be held
/// across such a future, and the error says how to write the function instead.
pub(crate) fn returns_future(function: &ItemFn) -> bool {
    function.sig.asyncness.is_none()
        && match &function.sig.output {
            ReturnType::Type(_, ty) => match &**ty {
                Type::ImplTrait(impl_trait) => impl_trait.bounds.iter().any(is_future),
                ty => boxed_future_output(ty).is_some(),
            },
            ReturnType::Default => false,
        }
}

/// `T` in `Pin<Box<dyn Future<Output = T> + Send + 'a>>`, whatever paths name them.
fn boxed_future_output(ty: &Type) -> Option<&Type> {
    let pinned = single_type_argument(ty, "Pin")?;
    let boxed = single_type_argument(pinned, "Box")?;
    let Type::TraitObject(object) = boxed else {
        return None;
    };
    object.bounds.iter().find_map(future_output)
}

fn is_future(bound: &TypeParamBound) -> bool {
    matches!(bound, TypeParamBound::Trait(bound)
        if bound.path.segments.last().is_some_and(|last| last.ident == "Future"))
}

/// `T` in the bound `Future<Output = T>`.
fn future_output(bound: &TypeParamBound) -> Option<&Type> {
    let TypeParamBound::Trait(bound) = bound else {
        return None;
    };
    let last = bound.path.segments.last()?;
    if last.ident != "Future" {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
        _ => None,
    })
}

/// `X` in `...::Name<X>`.
fn single_type_argument<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &last.arguments else {
        return None;
    };
    match arguments.args.first()? {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    }
}

/// `Box::pin` and the `async move { ... }` of a body that is nothing but
/// `Box::pin(async move { ... })`.
fn box_pin_async_move(block: &Block) -> Option<(&Expr, &ExprAsync)> {
    let [Stmt::Expr(Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(function) = &*call.func else {
        return None;
    };
    let segments: Vec<_> = function.path.segments.iter().collect();
    let [.., boxed, pin] = segments.as_slice() else {
        return None;
    };
    if boxed.ident != "Box" || pin.ident != "pin" || call.args.len() != 1 {
        return None;
    }
    match &call.args[0] {
        Expr::Async(future) if future.capture.is_some() => Some((&call.func, future)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use syn::{ItemFn, parse_quote};

    use super::{recognise, returns_future};

    #[test]
    fn async_trait_output_is_recognised() {
        let function: ItemFn = parse_quote! {
            fn f<'life0, 'async_trait>(&'life0 self, id: u64) -> ::core::pin::Pin<
                Box<dyn ::core::future::Future<Output = Result<u64, E>> + ::core::marker::Send + 'async_trait>,
            >
            where 'life0: 'async_trait, Self: 'async_trait
            {
                Box::pin(async move {
                    let __self = self;
                    let __ret: Result<u64, E> = { Ok(id) };
                    __ret
                })
            }
        };
        let boxed = recognise(&function).expect("recognised");
        let output = &boxed.output;
        assert_eq!(
            quote::quote!(#output).to_string(),
            quote::quote!(Result<u64, E>).to_string()
        );
        assert_eq!(boxed.future.block.stmts.len(), 3);
    }

    #[test]
    fn other_shapes_are_not() {
        let plain: ItemFn = parse_quote!(
            fn f() -> Result<u64, E> {
                Box::pin(async move { 1 })
            }
        );
        let not_moved: ItemFn = parse_quote! {
            fn f() -> Pin<Box<dyn Future<Output = Result<u64, E>> + Send>> { Box::pin(async { Ok(1) }) }
        };
        let built: ItemFn = parse_quote! {
            fn f() -> Pin<Box<dyn Future<Output = Result<u64, E>> + Send>> {
                let future = async move { Ok(1) };
                Box::pin(future)
            }
        };
        let already_async: ItemFn = parse_quote! {
            async fn f() -> Pin<Box<dyn Future<Output = Result<u64, E>>>> { Box::pin(async move { Ok(1) }) }
        };
        for function in [&plain, &not_moved, &built, &already_async] {
            assert!(recognise(function).is_none());
        }
        assert!(!returns_future(&plain));
        assert!(returns_future(&not_moved) && returns_future(&built));
        let impl_future: ItemFn = parse_quote!(
            fn f() -> impl std::future::Future<Output = Result<u64, E>> {
                async { Ok(1) }
            }
        );
        assert!(returns_future(&impl_future));
    }
}
