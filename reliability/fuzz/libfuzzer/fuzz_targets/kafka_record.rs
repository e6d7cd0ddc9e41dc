//! libFuzzer entry of the `kafka_record` target (see `cqrs_fuzz::targets`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    (cqrs_fuzz::TARGETS
        .iter()
        .find(|t| t.name == "kafka_record")
        .expect("the target")
        .run)(data)
});
