#![doc = include_str!("../README.md")]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::quote;
use syn::{Data, DeriveInput, Fields, Ident, LitInt, LitStr, Path, parse_macro_input};

/// Implements `cqrs_core::Event` for a serde enum, with namespaced stored names.
///
/// See the crate docs for the attributes; `cqrs_core::Event` for what it implements.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// One variant: its ident, how it is matched, its serde name, stored name, version.
struct Variant {
    pattern: Tokens,
    serde_name: String,
    stored_name: String,
    version: Option<u32>,
}

fn expand(input: &DeriveInput) -> syn::Result<Tokens> {
    let Data::Enum(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Event)] works on enums: one variant per event type",
        ));
    };
    refuse_other_layouts(input)?;
    let mut namespace = None;
    let mut upcast: Option<Path> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("namespace") {
                namespace = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else if meta.path.is_ident("upcast") {
                upcast = Some(meta.value()?.parse::<Path>()?);
                Ok(())
            } else {
                Err(meta.error("expected `namespace = \"...\"` or `upcast = path`"))
            }
        })?;
    }
    let namespace = namespace.unwrap_or_else(|| default_namespace(&input.ident));
    let mut variants = Vec::with_capacity(data.variants.len());
    for variant in &data.variants {
        let ident = &variant.ident;
        let pattern = match &variant.fields {
            Fields::Named(_) => quote!(Self::#ident { .. }),
            Fields::Unnamed(_) => quote!(Self::#ident(..)),
            Fields::Unit => quote!(Self::#ident),
        };
        let serde_name = serde_rename(&variant.attrs)?.unwrap_or_else(|| ident.to_string());
        let mut stored_name = None;
        let mut version = None;
        for attr in variant.attrs.iter().filter(|a| a.path().is_ident("event")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("name") {
                    stored_name = Some(meta.value()?.parse::<LitStr>()?.value());
                    Ok(())
                } else if meta.path.is_ident("version") {
                    version = Some(meta.value()?.parse::<LitInt>()?.base10_parse::<u32>()?);
                    Ok(())
                } else {
                    Err(meta.error("expected `name = \"...\"` or `version = N`"))
                }
            })?;
        }
        let stored_name = stored_name.unwrap_or_else(|| {
            if namespace.is_empty() {
                serde_name.clone()
            } else {
                format!("{namespace}.{serde_name}")
            }
        });
        variants.push(Variant {
            pattern,
            serde_name,
            stored_name,
            version,
        });
    }
    for (i, a) in variants.iter().enumerate() {
        if variants[..i].iter().any(|b| b.stored_name == a.stored_name) {
            return Err(syn::Error::new(
                Span::call_site(),
                format!("two variants are stored as `{}`", a.stored_name),
            ));
        }
    }

    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    let types = variants.iter().map(|v| &v.stored_name);
    let serde_names = variants.iter().map(|v| &v.serde_name);
    let arms = variants.iter().map(|v| {
        let (pattern, stored) = (&v.pattern, &v.stored_name);
        quote!(#pattern => #stored,)
    });
    let schema_version = variants.iter().any(|v| v.version.is_some()).then(|| {
        let arms = variants.iter().map(|v| {
            let (pattern, version) = (&v.pattern, v.version.unwrap_or(1));
            quote!(#pattern => #version,)
        });
        quote! {
            fn schema_version(&self) -> u32 {
                match self { #(#arms)* }
            }
        }
    });
    // With an upcaster, `decode_ref` keeps its default (copy, upcast, decode); without
    // one, stored events are read in place.
    let upcast = match upcast {
        Some(path) => quote! {
            fn upcast(raw: ::cqrs_core::RawEvent) -> ::core::result::Result<::cqrs_core::RawEvent, ::cqrs_core::Error> {
                #path(raw)
            }
        },
        None => quote! {
            fn decode_ref(raw: &::cqrs_core::RawEvent) -> ::core::result::Result<Self, ::cqrs_core::Error> {
                raw.deserialize_variant::<Self>()
            }
        },
    };
    let event_type = if variants.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#arms)* })
    };
    Ok(quote! {
        impl #impl_generics ::cqrs_core::Event for #name #type_generics #where_clause {
            const TYPES: &'static [&'static str] = &[#(#types),*];
            const VARIANTS: &'static [&'static str] = &[#(#serde_names),*];

            fn event_type(&self) -> &'static str {
                #event_type
            }

            #schema_version
            #upcast
        }
    })
}

/// `GoalEvent` → `goal`, `BankAccountEvents` → `bank_account_events`.
fn default_namespace(ident: &Ident) -> String {
    let name = ident.to_string();
    let base = name
        .strip_suffix("Event")
        .filter(|rest| !rest.is_empty())
        .unwrap_or(&name);
    let mut snake = String::with_capacity(base.len() + 4);
    for (i, c) in base.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.extend(c.to_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// A variant's `#[serde(rename = "...")]`, if any.
fn serde_rename(attrs: &[syn::Attribute]) -> syn::Result<Option<String>> {
    let mut rename = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                rename = Some(meta.value()?.parse::<LitStr>()?.value());
                Ok(())
            } else {
                // Another serde attribute (`alias = ...`, `with = ...`, `skip`): skip it.
                skip(&meta)
            }
        })?;
    }
    Ok(rename)
}

/// Refuses serde container attributes that leave the externally tagged layout.
fn refuse_other_layouts(input: &DeriveInput) -> syn::Result<()> {
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            for refused in ["tag", "content", "untagged", "rename_all"] {
                if meta.path.is_ident(refused) {
                    return Err(meta.error(format!(
                        "#[derive(Event)] stores serde's default (externally tagged) layout; \
                         `#[serde({refused})]` changes it. Implement `Event` by hand instead"
                    )));
                }
            }
            skip(&meta)
        })?;
    }
    Ok(())
}

/// Reads past an attribute item this derive has no use for: `key`, `key = value` or
/// `key(...)`.
fn skip(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip(&inner))?;
    }
    Ok(())
}
