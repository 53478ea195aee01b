//! `sora2api`: the standalone gateway binary.
//!
//! **Not yet built.** Issue 4 fills it (configuration, redb task store, `--demo`, `sim`).
//! Until then it lists the models the core serves and exits with status 2, so nobody mistakes
//! it for a working gateway.

use std::io::Write;

fn main() {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "sora2api: the gateway binary is not built yet (issue 4). Models the core serves:"
    );
    for m in sora2api_tower::core::catalog::models() {
        let _ = writeln!(err, "  {:<28} {}", m.id, m.description());
    }
    std::process::exit(2);
}
