//! The expansion shown in the attribute's documentation ("What it expands to"), kept in
//! `runtime/doc/expansion.rs` and compared here with what the macro generates now, so the
//! documentation cannot describe code the macro no longer writes.
//!
//! After changing the expansion, rewrite the file with
//! `SNAPSHOTS=overwrite cargo test -p redis-locked-macros` and review the diff.

use std::path::Path;

use quote::quote;

/// The example at the top of the documentation, async and sync.
fn expansion() -> String {
    let args = quote!(name = "invoice:{order_id}", expire = 10, auto_renew);
    let functions = [
        quote! {
            async fn bill(order_id: u64) -> Result<u64, AppError> {
                charge(order_id).await
            }
        },
        quote! {
            fn bill_blocking(order_id: u64) -> Result<u64, AppError> {
                charge_blocking(order_id)
            }
        },
    ];
    let printed: Vec<String> = functions
        .into_iter()
        .map(|function| {
            let expanded = crate::attribute(args.clone(), function);
            let file = syn::parse2(expanded).expect("the expansion parses as an item");
            prettyplease::unparse(&file)
        })
        .collect();
    printed.join("\n")
}

#[test]
fn documented_expansion_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/doc/expansion.rs");
    let expected = expansion();
    if std::env::var_os("SNAPSHOTS").is_some_and(|value| value == "overwrite") {
        std::fs::write(&path, &expected).expect("writing the snapshot");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is not what the macro generates; rewrite it with \
         `SNAPSHOTS=overwrite cargo test -p redis-locked-macros` and review the diff.\n\
         Generated now:\n{expected}",
        path.display()
    );
}
