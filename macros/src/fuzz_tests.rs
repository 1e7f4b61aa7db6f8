//! Property test: the attribute never panics, whatever tokens it is given.
//!
//! A small deterministic generator (splitmix64, fixed seed) produces argument lists, both
//! random token soup and mutations of valid ones, and a few items, some of them mutated too.
//! Each pair goes through the attribute on `proc_macro2` tokens, and the result must be
//! either a well-formed item without `compile_error!`, or the user's item, unchanged,
//! followed by `compile_error!` invocations.

use std::panic::{AssertUnwindSafe, catch_unwind};

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

/// splitmix64: tiny, fast and good enough to drive a fuzzer; no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const IDENTS: &[&str] = &[
    "name",
    "expire",
    "auto_renew",
    "timeout",
    "client",
    "ttl",
    "nmae",
    "self",
    "true",
    "false",
    "fn",
    "async",
    "id",
    "order_id",
    "x",
    "_",
    "é",
    "LEASE",
    "crate",
    "super",
];

/// Literal sources, each a valid token; the interesting ones are at the edges of what
/// `seconds` converts.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "10",
    "-1",
    "-0.0",
    "0.0",
    "1e400",
    "1e-320",
    "0.0005",
    "0.001",
    "0.0000000001",
    "18446744073",
    "18446744074",
    "18446744073.709551615",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "99999999999999999999999999999999999999999999999999",
    "31536000",
    "1e30",
    "1e19",
    "1_000",
    "0x10",
    "0xFFFF_FFFF_FFFF_FFFF",
    "0b1",
    "0o777",
    "1.5e3",
    "1E3",
    "1e+3",
    "10s",
    "10ms",
    "1f32",
    "1.0f64",
    "1u8",
    "256u8",
    "1i128",
    "1.5e3_f32",
    "1usize",
    "0.25",
];

const OTHER_LITERALS: &[&str] = &[
    "'a'",
    "'\\u{10FFFF}'",
    "'\\0'",
    "b'a'",
    "b\"bytes\"",
    "br\"raw bytes\"",
    "br#\"raw \"bytes\"\"#",
    "c\"c string\"",
    "r\"raw {id}\"",
    "r#\"raw \"{id}\"\"#",
    "\"suffixed\"x",
    "\"\\u{1F600}\\n\\t\\0\"",
];

/// Pieces that random name strings are built from.
const TEXT: &[&str] = &[
    "",
    "a",
    ":",
    " ",
    "\n",
    "\t",
    "\0",
    "{",
    "}",
    "{{",
    "}}",
    "{}",
    "}{",
    "{x",
    "x}",
    "{id}",
    "{order_id}",
    "{self}",
    "{type}",
    "{r#type}",
    "{id:08}",
    "{id:?}",
    "{id:}",
    "{id:>width$}",
    "{id:{w}}",
    "{0}",
    "{ id }",
    "{unknown}",
    "{é}",
    "{id\0}",
    "😀",
    "\u{202E}",
    "e\u{301}",
    "\\",
    "\"",
    "invoice:",
];

fn pick_str(rng: &mut Rng, items: &[&'static str]) -> &'static str {
    items[rng.below(items.len())]
}

fn literal(source: &str) -> Literal {
    source
        .parse()
        .unwrap_or_else(|error| panic!("{source:?} is not a literal: {error}"))
}

/// A name: mostly a few pieces of `TEXT`, rarely 64 KiB (those are slow to expand).
fn text(rng: &mut Rng) -> String {
    if rng.one_in(200) {
        return huge_text(rng.below(4));
    }
    (0..rng.below(6)).map(|_| *rng.pick(TEXT)).collect()
}

fn huge_text(which: usize) -> String {
    match which {
        0 => "x".repeat(64 * 1024),
        1 => "{id}".repeat(16 * 1024),
        2 => "{".repeat(64 * 1024),
        _ => format!("{{{}}}", "a".repeat(64 * 1024)),
    }
}

fn random_literal(rng: &mut Rng) -> Literal {
    match rng.below(12) {
        0..=3 => literal(pick_str(rng, NUMBERS)),
        4 => literal(pick_str(rng, OTHER_LITERALS)),
        5 => Literal::u64_unsuffixed(rng.next()),
        6 => Literal::i64_suffixed(rng.next() as i64),
        7 => Literal::u128_unsuffixed(u128::from(rng.next()) << 64 | u128::from(rng.next())),
        8 => {
            let float = f64::from_bits(rng.next());
            if float.is_finite() {
                Literal::f64_unsuffixed(float)
            } else {
                Literal::f64_suffixed(-0.0)
            }
        }
        9 => Literal::byte_string(text(rng).as_bytes()),
        10 => Literal::character(char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('{')),
        _ => Literal::string(&text(rng)),
    }
}

fn random_token(rng: &mut Rng, depth: usize) -> TokenTree {
    match rng.below(if depth < 3 { 10 } else { 9 }) {
        0..=2 => {
            let ident = rng.pick(IDENTS);
            if *ident == "name" && rng.one_in(4) {
                Ident::new_raw("name", Span::call_site()).into()
            } else {
                Ident::new(ident, Span::call_site()).into()
            }
        }
        3..=5 => random_literal(rng).into(),
        6..=8 => {
            let spacing = if rng.one_in(3) {
                Spacing::Joint
            } else {
                Spacing::Alone
            };
            Punct::new(
                *rng.pick(&['=', ',', ':', ';', '-', '.', '#', '!', '&', '<']),
                spacing,
            )
            .into()
        }
        _ => {
            let delimiter = *rng.pick(&[
                Delimiter::Parenthesis,
                Delimiter::Brace,
                Delimiter::Bracket,
                Delimiter::None,
            ]);
            let len = rng.below(5);
            Group::new(delimiter, random_tokens(rng, len, depth + 1)).into()
        }
    }
}

fn random_tokens(rng: &mut Rng, len: usize, depth: usize) -> TokenStream {
    (0..len).map(|_| random_token(rng, depth)).collect()
}

const VALID_ARGS: &[&str] = &[
    r#"name = "invoice:{order_id}", expire = 10, auto_renew, timeout = 5, client = "billing""#,
    r#"name = "job:{id}""#,
    r#"name = "{id}", expire = 0.25, timeout = 0"#,
    r#"name = "a:{self}:{id:>08}:{{x}}", auto_renew = false"#,
    r#"name = "x", expire = 1.5e3, timeout = 1_000"#,
    r#"client = "c", timeout = 0.0, name = r"raw{{""#,
    r#"name = "k", expire = 0x10, auto_renew = true,"#,
];

/// One change to a token list, possibly inside one of its groups.
fn mutate(rng: &mut Rng, tokens: TokenStream) -> TokenStream {
    let mut tokens: Vec<TokenTree> = tokens.into_iter().collect();
    if tokens.is_empty() {
        return random_tokens(rng, 1, 0);
    }
    let at = rng.below(tokens.len());
    match rng.below(8) {
        0 => {
            tokens.remove(at);
        }
        1 => tokens.insert(at, tokens[at].clone()),
        2 => {
            let other = rng.below(tokens.len());
            tokens.swap(at, other);
        }
        3 => tokens[at] = random_token(rng, 1),
        4 => tokens.insert(at, random_token(rng, 1)),
        // Literals are where the values are: replace them often.
        5 | 6 => {
            let literals: Vec<usize> = (0..tokens.len())
                .filter(|&i| matches!(tokens[i], TokenTree::Literal(_)))
                .collect();
            let at = if literals.is_empty() {
                at
            } else {
                *rng.pick(&literals)
            };
            tokens[at] = if rng.one_in(2) {
                Literal::string(&text(rng)).into()
            } else {
                literal(pick_str(rng, NUMBERS)).into()
            };
        }
        _ => {
            if let TokenTree::Group(group) = &tokens[at] {
                let mut inner = Group::new(group.delimiter(), mutate(rng, group.stream()));
                inner.set_span(group.span());
                tokens[at] = inner.into();
            } else {
                tokens.remove(at);
            }
        }
    }
    tokens.into_iter().collect()
}

const ITEMS: &[&str] = &[
    "fn f() -> Result<(), LockError> { Ok(()) }",
    "async fn bill(order_id: u64, id: &str) -> Result<u64, LockError> { Ok(order_id) }",
    "pub(crate) fn m(&self, mut id: u64, r#type: &str) -> Result<(), E> { let _ = r#type; Ok(()) }",
    "async fn g<T: Display + Send>(id: T, (a, b): (u8, u8)) -> Result<impl Display, E> where T: Sync { Ok(id) }",
    "#[inline] #[doc = \"x\"] pub unsafe fn u(self: Box<Self>, id: u8) -> Result<u8, E> { #![allow(unused)] return Ok(id); }",
    "async fn r(self, order_id: u64) -> Result<Box<dyn Fn() -> u8>, E> { Ok(Box::new(|| 1)) }",
    "fn no_return(id: u64) { }",
    "const fn c(id: u64) -> Result<(), E> { Ok(()) }",
    "fn no_body(id: u64) -> Result<(), E>;",
    "extern \"C\" fn v(id: i32, ...) -> Result<(), E> { Ok(()) }",
    "struct S { id: u64 }",
    "",
];

fn contains_compile_error(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "compile_error",
        TokenTree::Group(group) => contains_compile_error(group.stream()),
        _ => false,
    })
}

/// Runs one case and checks the shape of its output; `Err` describes what went wrong.
fn check(args: &TokenStream, item: &TokenStream) -> Result<(), String> {
    let output = catch_unwind(AssertUnwindSafe(|| {
        crate::attribute(args.clone(), item.clone())
    }))
    .map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("panicked: {message}")
    })?;
    if !contains_compile_error(output.clone()) {
        let file = syn::parse2::<syn::File>(output.clone())
            .map_err(|error| format!("output without errors does not parse: {error}"))?;
        return match file.items.as_slice() {
            [syn::Item::Fn(_)] => Ok(()),
            _ => Err("output without errors is not one function".to_owned()),
        };
    }
    let output: Vec<TokenTree> = output.into_iter().collect();
    let item: Vec<TokenTree> = item.clone().into_iter().collect();
    let kept = output.len() >= item.len()
        && output
            .iter()
            .zip(&item)
            .all(|(a, b)| a.to_string() == b.to_string());
    if !kept {
        return Err("the item is not kept unchanged before the errors".to_owned());
    }
    let errors: TokenStream = output[item.len()..].iter().cloned().collect();
    let file = syn::parse2::<syn::File>(errors)
        .map_err(|error| format!("the errors do not parse: {error}"))?;
    if file.items.is_empty() {
        return Err("compile_error! inside the item, but no error after it".to_owned());
    }
    for error in &file.items {
        let syn::Item::Macro(mac) = error else {
            return Err("something other than compile_error! after the item".to_owned());
        };
        let message: syn::LitStr = mac
            .mac
            .parse_body()
            .map_err(|error| format!("compile_error! without a message: {error}"))?;
        if mac.mac.path.segments.last().unwrap().ident != "compile_error"
            || message.value().is_empty()
        {
            return Err("an empty or foreign macro after the item".to_owned());
        }
    }
    Ok(())
}

fn short(tokens: &TokenStream) -> String {
    let text = tokens.to_string();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &text[..end], text.len())
    } else {
        text
    }
}

/// Random and mutated cases each; with the fixed ones, about 7,500 expansions, two to three
/// seconds in a debug build.
const CASES: usize = 3000;

#[test]
fn expansion_never_panics() {
    let items: Vec<TokenStream> = ITEMS.iter().map(|item| item.parse().unwrap()).collect();
    let valid: Vec<TokenStream> = VALID_ARGS
        .iter()
        .map(|args| args.parse().unwrap())
        .collect();
    let mut rng = Rng(0x5EED_F10C);
    let mut failures = Vec::new();
    let mut cases = 0;
    let start = std::time::Instant::now();
    let mut run = |args: TokenStream, item: TokenStream, kind: &str, case: usize| {
        cases += 1;
        if let Err(failure) = check(&args, &item) {
            failures.push(format!(
                "{kind} case {case}: {failure}\n  args: {}\n  item: {}",
                short(&args),
                short(&item)
            ));
        }
    };
    for case in 0..CASES {
        // Token soup against every kind of item.
        let len = rng.below(8);
        let args = random_tokens(&mut rng, len, 0);
        let item = rng.pick(&items).clone();
        run(args, item, "random", case);

        // A valid argument list with one to three changes.
        let mut args = rng.pick(&valid).clone();
        for _ in 0..1 + rng.below(3) {
            args = mutate(&mut rng, args);
        }
        let mut item = rng.pick(&items).clone();
        if rng.one_in(4) {
            item = mutate(&mut rng, item);
        }
        run(args, item, "mutated", case);
    }
    // Every edge number as each duration, and as a name, against every item.
    for (i, number) in NUMBERS.iter().enumerate() {
        let number = literal(number);
        for args in [
            quote::quote!(name = "a", expire = #number),
            quote::quote!(name = "a", timeout = #number),
            quote::quote!(name = #number),
        ] {
            for item in &items {
                run(args.clone(), item.clone(), "edge number", i);
            }
        }
    }
    // Every 64 KiB name, as `name` and as `client`, against a function with an `id`.
    for which in 0..4 {
        let text = Literal::string(&huge_text(which));
        let args = quote::quote!(name = #text, expire = 1);
        run(args, items[1].clone(), "huge name", which);
        let args = quote::quote!(name = "a:{id}", client = #text);
        run(args, items[1].clone(), "huge client", which);
    }
    // Every valid argument list against every item, unmutated.
    for (i, args) in valid.iter().enumerate() {
        for item in &items {
            run(args.clone(), item.clone(), "valid", i);
        }
    }
    eprintln!("{cases} expansions in {:?}", start.elapsed());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn generator_covers_successes_and_errors() {
    // Guards against a generator that only ever produces errors (or never does).
    let items: Vec<TokenStream> = ITEMS[..2].iter().map(|i| i.parse().unwrap()).collect();
    let valid: Vec<TokenStream> = VALID_ARGS
        .iter()
        .map(|args| args.parse().unwrap())
        .collect();
    let mut rng = Rng(7);
    let (mut ok, mut errors) = (0, 0);
    for _ in 0..500 {
        let args = rng.pick(&valid).clone();
        let args = mutate(&mut rng, args);
        let item = rng.pick(&items).clone();
        if contains_compile_error(crate::attribute(args, item)) {
            errors += 1;
        } else {
            ok += 1;
        }
    }
    assert!(ok > 20 && errors > 100, "{ok} valid, {errors} errors");
}
