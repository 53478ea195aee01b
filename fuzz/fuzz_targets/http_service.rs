#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sora2api_tower::fuzzing::http_request(data));
