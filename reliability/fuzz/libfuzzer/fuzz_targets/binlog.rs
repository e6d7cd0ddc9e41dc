//! libFuzzer entry of the `binlog` target (see `cqrs_fuzz::targets`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (cqrs_fuzz::TARGETS
        .iter()
        .find(|t| t.name == "binlog")
        .expect("the target")
        .run)(data)
});
