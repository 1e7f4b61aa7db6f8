//! The lock name template, `name = "invoice:{order_id}"`.
//!
//! The template is checked twice: its syntax while the arguments are parsed (so a stray
//! brace is reported even when the item is not a function), and its placeholders against
//! the function's parameters once it is seen (`bind`, from the validation step). Every
//! mistake is reported at the string literal, because stable proc macros cannot point
//! inside it.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;
use syn::LitStr;

use crate::params::Params;
use crate::suggest;

pub(crate) struct NameTemplate {
    lit: LitStr,
    pieces: Vec<Piece>,
}

/// `name = "..."`, or `name = ["...", "..."]`: several locks taken together.
pub(crate) struct Names {
    pub(crate) templates: Vec<NameTemplate>,
    /// Written as a list (even of one): the call takes a set of locks and its guard is a
    /// set guard.
    pub(crate) list: bool,
}

impl Names {
    /// Every template bound to the parameters, or every error found.
    pub(crate) fn bind(
        &self,
        params: &Params,
        function: &Ident,
        async_trait: bool,
    ) -> syn::Result<BoundNames> {
        let mut names = Vec::new();
        let mut errors: Option<syn::Error> = None;
        for template in &self.templates {
            match template.bind(params, function, async_trait) {
                Ok(name) => names.push(name),
                Err(error) => match &mut errors {
                    Some(errors) => errors.combine(error),
                    None => errors = Some(error),
                },
            }
        }
        match errors {
            Some(errors) => Err(errors),
            None => Ok(BoundNames {
                names,
                list: self.list,
            }),
        }
    }
}

/// [`Names`] with their placeholders bound.
pub(crate) struct BoundNames {
    names: Vec<BoundName>,
    pub(crate) list: bool,
}

impl BoundNames {
    /// The templates as written, which label the lock's metrics and spans: several are
    /// joined with `, `, located at the first.
    pub(crate) fn literal(&self) -> LitStr {
        match self.names.as_slice() {
            [one] if !self.list => one.literal().clone(),
            names => {
                let joined: Vec<String> = names.iter().map(|n| n.literal().value()).collect();
                let span = names
                    .first()
                    .map_or_else(proc_macro2::Span::call_site, |n| n.literal().span());
                LitStr::new(&joined.join(", "), span)
            }
        }
    }

    /// The expression that builds the name, or for a list, the `Vec` of names.
    pub(crate) fn to_expr(&self) -> TokenStream {
        match self.names.as_slice() {
            [one] if !self.list => one.to_expr(),
            names => {
                let names = names.iter().map(BoundName::to_expr);
                quote!(::std::vec![#(#names),*])
            }
        }
    }
}

enum Piece {
    /// Text with `{{` and `}}` already unescaped.
    Text(String),
    /// `{param}`, `{param.field.0}` or either with `:spec`; `spec` keeps its leading `:`
    /// so it can be forwarded verbatim to `format!`.
    Param {
        name: String,
        fields: Vec<Field>,
        spec: String,
    },
}

/// One step of `.field` or `.0` after a placeholder's parameter.
#[derive(Clone)]
enum Field {
    Named(Ident),
    Index(u32),
}

impl NameTemplate {
    pub(crate) fn parse(lit: LitStr) -> syn::Result<NameTemplate> {
        if !lit.suffix().is_empty() {
            return Err(syn::Error::new(
                lit.span(),
                "the lock name must be a plain string literal without a suffix",
            ));
        }
        let value = lit.value();
        if value.is_empty() {
            return Err(syn::Error::new(
                lit.span(),
                "the lock name cannot be empty: name what the lock protects, like `name = \"invoice:{order_id}\"`",
            ));
        }
        let pieces =
            parse_pieces(&value).map_err(|message| syn::Error::new(lit.span(), message))?;
        Ok(NameTemplate { lit, pieces })
    }

    /// The template with each placeholder bound to the parameter it names, or an error at
    /// the literal for one that names none.
    ///
    /// `async_trait`: the function is a method as `#[async_trait]` rewrote it, which moved
    /// each destructuring parameter's pattern into the future, naming the parameter
    /// `__argN`; the error then says so instead of offering `{__arg1}`.
    pub(crate) fn bind(
        &self,
        params: &Params,
        function: &Ident,
        async_trait: bool,
    ) -> syn::Result<BoundName> {
        let span = self.lit.span();
        let mut pieces = Vec::new();
        for piece in &self.pieces {
            pieces.push(match piece {
                Piece::Text(text) => BoundPiece::Text(text.clone()),
                Piece::Param { name, fields, spec } => {
                    let Some(ident) = params.find(name) else {
                        let listed: Vec<&str> = params
                            .names()
                            .filter(|key| !(async_trait && key.starts_with("__arg")))
                            .collect();
                        let mut message = unknown_placeholder(name, function, &listed);
                        if listed.len() < params.names().count() {
                            message.push_str("; `#[async_trait]` moves the patterns of destructuring parameters into the method's future, out of the lock name's reach: take the parameter whole, like `pair: (u64, u64)`, and name its fields, like `{pair.0}`");
                        }
                        return Err(syn::Error::new(span, message));
                    };
                    BoundPiece::Param {
                        param: ident.clone(),
                        fields: fields.clone(),
                        spec: spec.clone(),
                    }
                }
            });
        }
        Ok(BoundName {
            lit: self.lit.clone(),
            pieces,
        })
    }
}

/// A name template whose placeholders all name parameters of the function.
pub(crate) struct BoundName {
    lit: LitStr,
    pieces: Vec<BoundPiece>,
}

enum BoundPiece {
    Text(String),
    Param {
        param: Ident,
        fields: Vec<Field>,
        spec: String,
    },
}

impl BoundName {
    /// The template as written, which labels the lock's metrics and spans.
    pub(crate) fn literal(&self) -> &LitStr {
        &self.lit
    }

    /// The expression that builds the name when the function is called:
    ///
    /// ```text
    /// "invoice:{order_id}:{{v2}}"  =>  ::std::format!("invoice:{}:{{v2}}", order_id)
    /// "jobs"                       =>  ::std::string::String::from("jobs")
    /// ```
    ///
    /// Each argument is located at the literal (so "`Foo` doesn't implement `Display`"
    /// points at the name) but resolved like the parameter it names, which keeps it
    /// referring to that parameter whatever hygiene context the function comes from.
    pub(crate) fn to_expr(&self) -> TokenStream {
        let span = self.lit.span();
        let mut format = String::new();
        let mut text = String::new();
        let mut args = Vec::new();
        for piece in &self.pieces {
            match piece {
                BoundPiece::Text(piece) => {
                    text.push_str(piece);
                    format.push_str(&piece.replace('{', "{{").replace('}', "}}"));
                }
                BoundPiece::Param {
                    param,
                    fields,
                    spec,
                } => {
                    let mut root = param.clone();
                    root.set_span(span.resolved_at(param.span()));
                    let fields = fields.iter().map(|field| match field {
                        Field::Named(field) => {
                            let mut field = field.clone();
                            field.set_span(span);
                            quote!(.#field)
                        }
                        Field::Index(index) => {
                            let mut index = Literal::u32_unsuffixed(*index);
                            index.set_span(span);
                            quote!(.#index)
                        }
                    });
                    args.push(quote!(#root #(#fields)*));
                    format.push('{');
                    format.push_str(spec);
                    format.push('}');
                }
            }
        }
        if args.is_empty() {
            // Nothing to format: skip `format!` so that `clippy::useless_format` has no reason
            // to look at generated code.
            let mut text = Literal::string(&text);
            text.set_span(span);
            return quote!(::std::string::String::from(#text));
        }
        let mut format = Literal::string(&format);
        format.set_span(span);
        quote!(::std::format!(#format, #(#args),*))
    }
}

/// Splits `invoice:{order_id}` into text and placeholders, following `format!`'s escaping
/// rules so that users need to learn nothing new.
fn parse_pieces(value: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = value.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            '{' if chars.next_if(|&(_, next)| next == '{').is_some() => text.push('{'),
            '}' if chars.next_if(|&(_, next)| next == '}').is_some() => text.push('}'),
            '}' => {
                return Err(
                    "unmatched `}` in the lock name: write `}}` for a literal brace".to_owned(),
                );
            }
            '{' => {
                let rest = &value[start + 1..];
                let Some(end) = rest
                    .find(['{', '}'])
                    .filter(|&end| rest[end..].starts_with('}'))
                else {
                    return Err("unclosed `{` in the lock name: close the placeholder, like `{order_id}`, or write `{{` for a literal brace".to_owned());
                };
                let placeholder = &rest[..end];
                for _ in 0..placeholder.chars().count() + 1 {
                    chars.next();
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(parse_placeholder(placeholder)?);
            }
            _ => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// What a placeholder may hold, for the errors that find something else there.
const ALLOWED: &str = "a placeholder is a parameter of the function, like `{order_id}`, or a field of one, like `{req.id}`, `{order.customer.id}` or `{pair.0}`, optionally with a format spec, like `{order_id:08}`";

fn parse_placeholder(placeholder: &str) -> Result<Piece, String> {
    let (path, spec) = match placeholder.find(':') {
        Some(colon) => placeholder.split_at(colon),
        None => (placeholder, ""),
    };
    if path.is_empty() {
        return Err(format!(
            "empty placeholder `{{{placeholder}}}` in the lock name: name a parameter of the function, like `{{order_id}}`"
        ));
    }
    if path.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "positional placeholder `{{{placeholder}}}` in the lock name: name a parameter of the function instead, like `{{order_id}}`"
        ));
    }
    let invalid = || {
        let mut message =
            format!("invalid placeholder `{{{placeholder}}}` in the lock name: {ALLOWED}");
        if path.contains(['(', '['])
            || !path
                .chars()
                .all(|c| c == '.' || c == '_' || c.is_alphanumeric())
        {
            // Someone reached for an expression: say where to compute it instead.
            message.push_str("; method calls, indexing and operators are not allowed: compute the value before the call and pass it as a parameter");
        }
        message
    };
    let mut segments = path.split('.');
    let name = segments.next().and_then(identifier).ok_or_else(invalid)?;
    let fields = segments
        .map(|segment| field(segment).ok_or_else(invalid))
        .collect::<Result<_, _>>()?;
    Ok(Piece::Param {
        name: name.to_owned(),
        fields,
        spec: spec.to_owned(),
    })
}

/// `id` or `r#type`, as the unraw name; `format!`'s own rules, so `{type}` names the
/// parameter `r#type` too.
fn identifier(text: &str) -> Option<&str> {
    let name = text.strip_prefix("r#").unwrap_or(text);
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && name != "_";
    valid.then_some(name)
}

/// `id` or `0` after a dot: a named field or a tuple index written without leading zeros.
fn field(text: &str) -> Option<Field> {
    if text.chars().all(|c| c.is_ascii_digit()) {
        if text.len() > 1 && text.starts_with('0') {
            return None;
        }
        return text.parse().ok().map(Field::Index);
    }
    let name = identifier(text)?;
    // Parsed rather than built with `Ident::new`, which panics on characters that are
    // alphabetic but not allowed in identifiers. A keyword field (`r#type`) is written raw
    // after the dot; `self`, `crate` and the like are no field at all.
    syn::parse_str::<Ident>(name)
        .or_else(|_| syn::parse_str::<Ident>(&format!("r#{name}")))
        .ok()
        .map(Field::Named)
}

/// `params`: the names a placeholder of this function can use.
fn unknown_placeholder(name: &str, function: &Ident, params: &[&str]) -> String {
    let usable = match params {
        [] => format!("`{function}` has no parameters a placeholder can name"),
        [only] => {
            format!("the only parameter of `{function}` a placeholder can name is `{{{only}}}`")
        }
        _ => {
            let list: Vec<String> = params.iter().map(|key| format!("`{{{key}}}`")).collect();
            format!(
                "the parameters of `{function}` a placeholder can name are {}",
                list.join(", ")
            )
        }
    };
    if name == "self" {
        return format!("`{{self}}` can only be used in a method that takes `self`; {usable}");
    }
    let mut message = format!("unknown placeholder `{{{name}}}` in the lock name; {usable}");
    if let Some(close) = suggest::closest(name, params.iter().copied()) {
        message.push_str(&format!(" (did you mean `{{{close}}}`?)"));
    }
    message
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;
    use syn::{LitStr, Signature, parse_quote};

    use super::NameTemplate;
    use crate::params::Params;

    fn expand(name: &str, sig: Signature) -> Result<String, String> {
        let template = NameTemplate::parse(LitStr::new(name, Span::call_site()))
            .map_err(|error| error.to_string())?;
        let bound = template
            .bind(&Params::of(&sig), &sig.ident, false)
            .map_err(|error| error.to_string())?;
        Ok(bound.to_expr().to_string())
    }

    #[test]
    fn placeholders_become_format_arguments() {
        let sig: Signature = parse_quote!(fn f(&self, mut id: u64, r#type: &str));
        assert_eq!(
            expand("a:{id}:{self}:{type:>4}:{{v2}}", sig).unwrap(),
            r#":: std :: format ! ("a:{}:{}:{:>4}:{{v2}}" , id , self , r#type)"#,
        );
    }

    #[test]
    fn text_only_names_skip_format() {
        let sig: Signature = parse_quote!(fn f());
        assert_eq!(
            expand("jobs:{{all}}", sig).unwrap(),
            r#":: std :: string :: String :: from ("jobs:{all}")"#,
        );
    }

    #[test]
    fn fields_and_tuple_indexes_follow_the_parameter() {
        let sig: Signature = parse_quote!(fn f(&self, req: &Request, pair: (u8, (u8, u8))));
        assert_eq!(
            expand(
                "{req.id}:{req.customer.r#type}:{pair.0}:{pair.1.0:02}:{self.id}",
                sig
            )
            .unwrap(),
            r#":: std :: format ! ("{}:{}:{}:{:02}:{}" , req . id , req . customer . r#type , pair . 0 , pair . 1 . 0 , self . id)"#,
        );
    }

    #[test]
    fn names_bound_by_destructuring_can_be_used() {
        let sig: Signature = parse_quote!(fn f(
            Path(id): Path<u64>,
            (a, b): (u64, u64),
            Order { customer, .. }: Order,
            &(ref x, _): &(u8, u8),
            (Either::Left(v) | Either::Right(v)): Either<u8, u8>,
        ));
        assert_eq!(
            expand("{id}:{a}:{b}:{customer.id}:{x}:{v}", sig).unwrap(),
            r#":: std :: format ! ("{}:{}:{}:{}:{}:{}" , id , a , b , customer . id , x , v)"#,
        );
    }

    #[test]
    fn expressions_are_rejected_with_what_is_allowed() {
        let sig: Signature = parse_quote!(fn f(req: Request, items: Vec<u8>, n: u8));
        for bad in [
            "{req.id()}",
            "{items[0]}",
            "{n + 1}",
            "{n+1}",
            "{-n}",
            "{*req}",
            "{&req}",
            "{req.}",
            "{.id}",
            "{req..id}",
            "{req.01}",
            "{req.0x1}",
            "{req.self}",
            "{req.id.len()}",
            // Alphabetic but not an identifier: rejected, not a panic in `Ident::new`.
            "{req.\u{24b6}}",
        ] {
            let error = expand(bad, sig.clone()).expect_err(bad);
            assert!(
                error.contains("a placeholder is a parameter of the function, like `{order_id}`, or a field of one, like `{req.id}`"),
                "{bad:?}: {error}"
            );
        }
        let error = expand("{req.id()}", sig).unwrap_err();
        assert!(
            error.contains("method calls, indexing and operators are not allowed"),
            "{error}"
        );
    }

    #[test]
    fn a_field_of_an_unknown_parameter_names_the_parameter() {
        let sig: Signature = parse_quote!(fn f(request: Request));
        let error = expand("{reqest.id}", sig).unwrap_err();
        assert!(error.contains("unknown placeholder `{reqest}`"), "{error}");
        assert!(error.contains("did you mean `{request}`?"), "{error}");
    }

    #[test]
    fn malformed_templates_are_rejected() {
        let sig: Signature = parse_quote!(fn f(id: u64, (a, b): (u8, u8)));
        for bad in [
            "", "{", "a{id", "}", "a}b", "{}", "{0}", "{ id }", "{c}", "{self}", "{id{}",
        ] {
            assert!(expand(bad, sig.clone()).is_err(), "{bad:?} was accepted");
        }
    }
}
