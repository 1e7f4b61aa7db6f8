//! Property test: the attribute never panics, whatever tokens it is given.
//!
//! A small deterministic generator (splitmix64, fixed seed) produces argument lists, both
//! random token soup and mutations of valid ones, and a few items, some of them mutated too.
//! Its vocabulary of arguments (names, aliases, typos, examples and choices) comes from
//! `arguments::ARGUMENTS`, so a new argument is fuzzed as soon as it is in the table.
//! Each pair goes through the attribute on `proc_macro2` tokens, and the result must be
//! either a well-formed item without `compile_error!`, or the user's item, unchanged,
//! followed by `compile_error!` invocations.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

use crate::arguments::{ARGUMENTS, Value};

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

/// Identifiers other than the arguments' names, aliases and typos.
const OTHER_IDENTS: &[&str] = &[
    "self", "true", "false", "fn", "async", "id", "order_id", "x", "_", "é", "LEASE", "lock",
    "super",
];

/// Every argument's name and aliases, each name with a letter dropped and with two letters
/// swapped, and `OTHER_IDENTS`.
static IDENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut idents: Vec<String> = OTHER_IDENTS.iter().map(|s| s.to_string()).collect();
    for argument in ARGUMENTS {
        let name = argument.name;
        idents.push(name.to_owned());
        idents.extend(argument.aliases.iter().map(|alias| alias.to_string()));
        idents.push(name[1..].to_owned());
        let mut swapped: Vec<char> = name.chars().collect();
        swapped.swap(0, 1);
        idents.push(swapped.into_iter().collect());
    }
    idents
});

/// Strings an argument with a choice takes, and near misses.
static CHOICES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut choices = Vec::new();
    for argument in ARGUMENTS {
        if let Value::Choice(known) = argument.value {
            for choice in known {
                choices.push(choice.to_string());
                choices.push(choice.to_uppercase());
                choices.push(choice[1..].to_owned());
            }
        }
    }
    choices
});

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
    match rng.below(13) {
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
        11 => Literal::string(rng.pick(&CHOICES).as_str()),
        _ => Literal::string(&text(rng)),
    }
}

fn random_token(rng: &mut Rng, depth: usize) -> TokenTree {
    match rng.below(if depth < 3 { 10 } else { 9 }) {
        0..=2 => {
            let ident = rng.pick(&IDENTS);
            // `r#expire` is an identifier, but not the argument `expire`.
            if rng.one_in(8)
                && ARGUMENTS
                    .iter()
                    .any(|a| a.name == ident.as_str() && a.name != "crate")
            {
                Ident::new_raw(ident, Span::call_site()).into()
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

/// Valid argument lists written out, for the forms of values the table's examples do not
/// show.
const VALID_ARGS: &[&str] = &[
    r#"name = "invoice:{order_id}", expire = 10, auto_renew, timeout = 5, client = "billing""#,
    r#"name = "job:{id}""#,
    r#"name = "{id}", expire = 0.25, timeout = 0"#,
    r#"name = "a:{self}:{id:>08}:{{x}}", auto_renew = false"#,
    r#"name = "x", expire = 1.5e3, timeout = 1_000"#,
    r#"client = "c", timeout = 0.0, name = r"raw{{""#,
    r#"name = "k", expire = 0x10, auto_renew = true,"#,
    r#"reentrant = false, on_lost = "continue", name = "k", guard = r#lock, crate = "::a::b""#,
];

/// A valid argument list made from the table: the required arguments and a random few
/// others, each as its example (a flag sometimes as `= true` or `= false`, a choice as
/// any of its values), in random order.
fn table_args(rng: &mut Rng) -> TokenStream {
    let mut chosen: Vec<String> = Vec::new();
    for argument in ARGUMENTS {
        if !argument.required && rng.one_in(2) {
            continue;
        }
        chosen.push(match argument.value {
            Value::Flag if rng.one_in(3) => {
                format!("{} = {}", argument.name, rng.one_in(2))
            }
            Value::Choice(choices) => format!("{} = \"{}\"", argument.name, rng.pick(choices)),
            _ => argument.example.to_owned(),
        });
    }
    // `shared` goes with no `permits`.
    if chosen
        .iter()
        .any(|arg| arg.starts_with("shared") && !arg.ends_with("false"))
    {
        chosen.retain(|arg| !arg.starts_with("permits"));
    }
    // A hold bound needs a renewed lease (with `expire = 10`, `min_hold = 30` could not
    // be met, and `max_hold` would cap nothing): such a list is made valid by renewal.
    if chosen
        .iter()
        .any(|arg| arg.ends_with("_hold = 30") || arg.ends_with("_hold = 3600"))
    {
        chosen.retain(|arg| !arg.starts_with("auto_renew"));
        chosen.push("auto_renew".to_owned());
    }
    for i in (1..chosen.len()).rev() {
        chosen.swap(i, rng.below(i + 1));
    }
    let mut args = chosen.join(", ");
    if rng.one_in(4) {
        args.push(',');
    }
    args.parse().expect("the table's examples are tokens")
}

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
    "async fn held(lock: u64, order_id: u64) -> Result<u64, E> { Ok(lock + order_id) }",
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

/// Random and mutated cases each; with the fixed ones, about 11,000 expansions, two
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
        let mut args = if rng.one_in(2) {
            rng.pick(&valid).clone()
        } else {
            table_args(&mut rng)
        };
        for _ in 0..1 + rng.below(3) {
            args = mutate(&mut rng, args);
        }
        let mut item = rng.pick(&items).clone();
        if rng.one_in(4) {
            item = mutate(&mut rng, item);
        }
        run(args, item, "mutated", case);
    }
    // Every edge number as the value of every argument, against every item.
    for (i, number) in NUMBERS.iter().enumerate() {
        let number = literal(number);
        for argument in ARGUMENTS {
            let key = Ident::new(argument.name, Span::call_site());
            let args = if argument.required {
                quote::quote!(#key = #number)
            } else {
                quote::quote!(name = "a", #key = #number)
            };
            for item in &items {
                run(args.clone(), item.clone(), "edge number", i);
            }
        }
    }
    // Every 64 KiB string as every string argument, against a function with an `id`.
    for which in 0..4 {
        let text = Literal::string(&huge_text(which));
        for argument in ARGUMENTS {
            if let Value::String(_) = argument.value {
                let key = Ident::new(argument.name, Span::call_site());
                let args = if argument.required {
                    quote::quote!(#key = #text, expire = 1)
                } else {
                    quote::quote!(name = "a:{id}", #key = #text)
                };
                run(args, items[1].clone(), "huge string", which);
            }
        }
    }
    // Every valid argument list, and as many made from the table, against every item,
    // unmutated.
    for (i, args) in valid.iter().enumerate() {
        for item in &items {
            run(args.clone(), item.clone(), "valid", i);
        }
    }
    for case in 0..valid.len() * 4 {
        let args = table_args(&mut rng);
        for item in &items {
            run(args.clone(), item.clone(), "table", case);
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
        let args = if rng.one_in(2) {
            rng.pick(&valid).clone()
        } else {
            table_args(&mut rng)
        };
        let args = mutate(&mut rng, args);
        let item = rng.pick(&items).clone();
        if contains_compile_error(crate::attribute(args, item)) {
            errors += 1;
        } else {
            ok += 1;
        }
    }
    // A mutation of a long list is rarely still valid (the table has 14 arguments, some of
    // which exclude others), so a few percent valid is the expected share.
    assert!(ok > 10 && errors > 100, "{ok} valid, {errors} errors");
}

#[test]
fn lists_made_from_the_table_are_valid() {
    // `async fn bill(order_id: u64, ..)` takes every example: the name's placeholder, and
    // `on_lost = "abort"`, which needs an `async fn`.
    let item: TokenStream = ITEMS[1].parse().unwrap();
    let mut rng = Rng(11);
    for _ in 0..200 {
        let args = table_args(&mut rng);
        let output = crate::attribute(args.clone(), item.clone());
        assert!(!contains_compile_error(output), "{args}");
    }
}
