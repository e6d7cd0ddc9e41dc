//! libFuzzer entry of the `fcm_reply` target (see `cqrs_fuzz::targets`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (cqrs_fuzz::TARGETS
        .iter()
        .find(|t| t.name == "fcm_reply")
        .expect("the target")
        .run)(data)
});
