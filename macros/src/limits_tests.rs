//! The edges of what `expire` and `timeout` accept: each extreme value is either converted
//! exactly or rejected with one error at the value.

use proc_macro2::TokenStream;
use quote::quote;

use crate::attr::Args;

const SECOND: u64 = 1_000_000_000;

fn nanos(tokens: TokenStream) -> (Option<u64>, Option<u64>) {
    let args = Args::parse(tokens).unwrap_or_else(|error| panic!("{error}"));
    (args.expire, args.timeout)
}

/// The single error the arguments give.
fn error(tokens: TokenStream) -> String {
    match Args::parse(tokens) {
        Ok(_) => panic!("expected an error"),
        Err(error) => {
            let errors: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
            assert_eq!(errors.len(), 1, "{errors:#?}");
            errors.into_iter().next().unwrap()
        }
    }
}

#[test]
fn valid_extremes_convert_exactly() {
    assert_eq!(
        nanos(quote!(name = "a", expire = 31536000)).0,
        Some(31_536_000 * SECOND)
    );
    assert_eq!(
        nanos(quote!(name = "a", expire = 1_000)).0,
        Some(1_000 * SECOND)
    );
    assert_eq!(
        nanos(quote!(name = "a", expire = 0x10)).0,
        Some(16 * SECOND)
    );
    assert_eq!(nanos(quote!(name = "a", expire = 0b11)).0, Some(3 * SECOND));
    assert_eq!(
        nanos(quote!(name = "a", expire = 1.5e3)).0,
        Some(1_500 * SECOND)
    );
    assert_eq!(nanos(quote!(name = "a", expire = 0.001)).0, Some(1_000_000));
    assert_eq!(nanos(quote!(name = "a", timeout = 0.0)).1, Some(0));
    assert_eq!(nanos(quote!(name = "a", timeout = 0)).1, Some(0));
    // The largest whole number of seconds that fits in `u64` nanoseconds: about 584 years.
    assert_eq!(
        nanos(quote!(
            name = "a",
            expire = 18446744073,
            timeout = 18446744073
        )),
        (Some(18_446_744_073 * SECOND), Some(18_446_744_073 * SECOND))
    );
}

#[test]
fn out_of_range_values_are_one_error_each() {
    let too_large = "is too large: at most 18446744073 seconds";
    for (args, message) in [
        (quote!(name = "a", expire = 1e400), too_large),
        (quote!(name = "a", expire = 18446744073709551616), too_large),
        (quote!(name = "a", expire = 18446744074), too_large),
        (quote!(name = "a", expire = 18446744073.8), too_large),
        (quote!(name = "a", timeout = 1e30), too_large),
        (quote!(name = "a", timeout = 1e400), too_large),
        (
            quote!(name = "a", expire = 1e-320),
            "at least 1 millisecond",
        ),
        (
            quote!(name = "a", expire = 0.0005),
            "at least 1 millisecond",
        ),
        (
            quote!(name = "a", expire = 0.0000000001),
            "at least 1 millisecond",
        ),
        (quote!(name = "a", expire = 0.0), "greater than zero"),
        (quote!(name = "a", expire = 0x0), "greater than zero"),
        (quote!(name = "a", expire = -0.0), "cannot be negative"),
        (quote!(name = "a", timeout = -0.0), "cannot be negative"),
        (quote!(name = "a", expire = 10ms), "not `ms`"),
    ] {
        let error = error(args.clone());
        assert!(error.contains(message), "{args}: {error}");
    }
}

#[test]
fn a_subnormal_timeout_is_a_single_attempt() {
    // Far below a nanosecond: rounds to zero, which for a timeout means one attempt.
    assert_eq!(nanos(quote!(name = "a", timeout = 1e-320)).1, Some(0));
}
