//! The names a function's parameters bind: what the lock name's placeholders can use, and
//! what `guard = <name>` must not hide. The parameters are walked once per function.

use proc_macro2::Ident;
use syn::ext::IdentExt;
use syn::{FnArg, Pat, Signature};

/// Every identifier the parameters bind, destructuring patterns included, and `self`,
/// each once, in order.
pub(crate) struct Params {
    /// Keyed by the unraw name: `{type}` and `guard = r#type` both find `r#type`.
    bound: Vec<(String, Ident)>,
}

impl Params {
    pub(crate) fn of(sig: &Signature) -> Params {
        let mut params = Params { bound: Vec::new() };
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(receiver) => {
                    params.add(Ident::new("self", receiver.self_token.span));
                }
                FnArg::Typed(typed) => params.collect(&typed.pat),
            }
        }
        params
    }

    /// The parameter bound as `name` (unraw).
    pub(crate) fn find(&self, name: &str) -> Option<&Ident> {
        self.bound
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, ident)| ident)
    }

    /// The unraw names, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.bound.iter().map(|(key, _)| key.as_str())
    }

    fn add(&mut self, ident: Ident) {
        let key = ident.unraw().to_string();
        // An or-pattern binds the same name in each case.
        if self.find(&key).is_none() {
            self.bound.push((key, ident));
        }
    }

    fn collect(&mut self, pat: &Pat) {
        match pat {
            Pat::Ident(pat) => {
                self.add(pat.ident.clone());
                if let Some((_, sub)) = &pat.subpat {
                    self.collect(sub);
                }
            }
            Pat::Or(or) => or.cases.iter().for_each(|case| self.collect(case)),
            Pat::Paren(paren) => self.collect(&paren.pat),
            Pat::Reference(reference) => self.collect(&reference.pat),
            Pat::Slice(slice) => slice.elems.iter().for_each(|elem| self.collect(elem)),
            Pat::Struct(strukt) => strukt
                .fields
                .iter()
                .for_each(|field| self.collect(&field.pat)),
            Pat::Tuple(tuple) => tuple.elems.iter().for_each(|elem| self.collect(elem)),
            Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|elem| self.collect(elem)),
            Pat::Type(typed) => self.collect(&typed.pat),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::{Signature, parse_quote};

    use super::Params;

    #[test]
    fn every_bound_name_once_in_order() {
        let sig: Signature = parse_quote!(fn f(
            &self,
            r#type: &str,
            Path(id): Path<u64>,
            (a, b @ 1..=3): (u64, u64),
            Order { customer, .. }: Order,
            (Either::Left(v) | Either::Right(v)): Either<u8, u8>,
            _: u8,
        ));
        let params = Params::of(&sig);
        let names: Vec<&str> = params.names().collect();
        assert_eq!(names, ["self", "type", "id", "a", "b", "customer", "v"]);
        assert_eq!(params.find("type").unwrap().to_string(), "r#type");
        assert!(params.find("r#type").is_none() && params.find("_").is_none());
    }
}
