//! Decode + translate throughput, and how many bytes a request with a large image allocates.
//!
//! ```text
//! cargo run --release -p sora2api-core --example translate_bench
//! ```
//!
//! A counting global allocator reports the bytes allocated while one request is translated:
//! for the 10 MB image request this shows the media is copied once (base64 text in the body ->
//! decoded bytes) and not again.
#![expect(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]
#![expect(clippy::unwrap_used, reason = "a benchmark with broken inputs should stop")]
#![allow(unsafe_code, reason = "a counting global allocator must implement the unsafe GlobalAlloc")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sora2api_core::translate::{self, Limits};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; this only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn typical_chat() -> Vec<u8> {
    let prompt = "{anime} A kitten running across a sunlit meadow, slow motion, the camera follows \
                  at ground level, petals drift through the frame, warm evening light, shallow depth \
                  of field, 35mm film grain. The kitten leaps over a small stream and lands softly.";
    let body = serde_json::json!({
        "model": "sora2-landscape-10s",
        "stream": true,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that generates videos."},
            {"role": "assistant", "content": "Sure. Describe the scene, the camera and the mood, and I will render it."},
            {"role": "user", "content": [{"type": "text", "text": prompt}, {"type": "text", "text": prompt}]}
        ],
        "temperature": 0.7,
        "max_tokens": 1024,
        "user": "bench-user-0001"
    });
    body.to_string().into_bytes()
}

fn large_image_chat(decoded_len: usize) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(decoded_len, 0x5a);
    let body = serde_json::json!({
        "model": "gpt-image",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Make the sky purple"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", B64.encode(&png))}}
        ]}]
    });
    body.to_string().into_bytes()
}

fn bench(name: &str, body: &[u8], limits: &Limits, iterations: u32) {
    // Warm up and check the request translates.
    translate::chat(body, limits).unwrap();
    let before = ALLOCATED.load(Ordering::Relaxed);
    let call = translate::chat(body, limits).unwrap();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    drop(call);

    let start = Instant::now();
    for _ in 0..iterations {
        black_box(translate::chat(black_box(body), limits).unwrap());
    }
    let per = start.elapsed() / iterations;
    let mb_s = body.len() as f64 / per.as_secs_f64() / 1e6;
    println!(
        "| {name:<28} | {:>10} | {:>12.2?} | {:>10.0} | {:>12.0} | {:>14} |",
        body.len(),
        per,
        1.0 / per.as_secs_f64(),
        mb_s,
        allocated,
    );
}

fn main() {
    let limits = Limits::default();
    println!("| request                      | body bytes | per request  | requests/s | body MB/s    | bytes allocated |");
    println!("|------------------------------|-----------:|-------------:|-----------:|-------------:|----------------:|");
    let typical = typical_chat();
    bench("typical chat (~1 KB)", &typical, &limits, 200_000);
    // 7.5 MB of image bytes are 10 MB of base64.
    let decoded = 7_500_000;
    let large = large_image_chat(decoded);
    bench("chat with 10 MB base64 image", &large, &limits, 50);
    println!();
    println!("decoded image: {decoded} bytes; base64 in body: {} bytes", large.len());
}
