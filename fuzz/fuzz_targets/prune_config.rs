//! Fuzz target `prune_config`: see `harness::prune_config` for what one input is and which entry points it reaches.
#![no_main]

#[path = "../harness/mod.rs"]
#[allow(dead_code)]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = harness::prune_config(data);
});
