//! The names a function's parameters bind, for `guard = <name>`, which must not hide one.

use proc_macro2::Ident;
use syn::ext::IdentExt;
use syn::{FnArg, Pat, Signature};

/// Every identifier the parameters bind, destructuring patterns included, and `self`.
pub(crate) fn bound_names(sig: &Signature) -> Vec<Ident> {
    let mut names = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                names.push(Ident::new("self", receiver.self_token.span));
            }
            FnArg::Typed(typed) => collect(&typed.pat, &mut names),
        }
    }
    names
}

fn collect(pat: &Pat, names: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(pat) => {
            names.push(pat.ident.clone());
            if let Some((_, sub)) = &pat.subpat {
                collect(sub, names);
            }
        }
        Pat::Or(or) => or.cases.iter().for_each(|case| collect(case, names)),
        Pat::Paren(paren) => collect(&paren.pat, names),
        Pat::Reference(reference) => collect(&reference.pat, names),
        Pat::Slice(slice) => slice.elems.iter().for_each(|elem| collect(elem, names)),
        Pat::Struct(strukt) => strukt
            .fields
            .iter()
            .for_each(|field| collect(&field.pat, names)),
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|elem| collect(elem, names)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|elem| collect(elem, names)),
        Pat::Type(typed) => collect(&typed.pat, names),
        _ => {}
    }
}

/// Whether `a` and `b` name the same binding (`r#type` and `type` do).
pub(crate) fn same_name(a: &Ident, b: &Ident) -> bool {
    a.unraw() == b.unraw()
}
