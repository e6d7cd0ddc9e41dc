//! libFuzzer entry of the `graphql` target (see `cqrs_fuzz::targets`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (cqrs_fuzz::TARGETS
        .iter()
        .find(|t| t.name == "graphql")
        .expect("the target")
        .run)(data)
});
