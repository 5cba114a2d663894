#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oauth_time_fuzz::token_validation::run(data));
