//! Zeroizing, observed without `unsafe`: the freed buffer is read back through
//! `/proc/self/mem` (plain file I/O on this process's memory), right after it is
//! freed.
//!
//! Why not a recording `#[global_allocator]`: `GlobalAlloc` is an unsafe trait, and
//! the workspace lint `unsafe_code = "forbid"` applies to every target of a package
//! (Cargo's `[lints]` are per package, and `forbid` cannot be lowered by an
//! `#![allow]` in one test file); it would need a package of its own outside the
//! workspace lints. Reading `/proc/self/mem` needs no exception.
//!
//! The allocator reuses the start of a freed chunk (glibc writes its free-list
//! pointers there) and the end (the next chunk's `prev_size`), so only the middle is
//! compared. A control case shows that a buffer freed *without* zeroing still holds
//! its bytes when read this way, so a missing zeroize is visible: if the control ever
//! stops seeing them (another allocator), the test fails and says so instead of
//! passing vacuously. nextest runs each test in its own process, so no other test
//! allocates meanwhile.

use std::fs::File;
use std::os::unix::fs::FileExt;

use botmaker_secrets::SecretValue;

/// Big enough to skip glibc's tcache and fastbins, small enough not to be an
/// `mmap` of its own (which `free` unmaps).
const LEN: usize = 4000;
/// Bytes at the start and the end of a freed chunk that the allocator may reuse.
const HEAD: usize = 64;
const TAIL: usize = 32;

/// A byte pattern no zeroed or allocator-written byte is likely to match.
fn pattern() -> Vec<u8> {
    (0..LEN)
        .map(|i| u8::try_from(i * 7 % 113).unwrap() | 0x80)
        .collect()
}

/// Reads memory of this process at `addr` into `buf` (allocated by the caller
/// before anything is freed, so it cannot reuse the freed chunk).
fn read_freed(mem: &File, addr: usize, buf: &mut [u8]) {
    mem.read_exact_at(buf, addr as u64)
        .expect("/proc/self/mem is not readable: this test needs procfs mounted");
}

/// How many bytes of the compared middle still hold the pattern.
fn still_there(freed: &[u8], pattern: &[u8]) -> usize {
    freed[HEAD..LEN - TAIL]
        .iter()
        .zip(&pattern[HEAD..LEN - TAIL])
        .filter(|(a, b)| a == b)
        .count()
}

/// Frees a `Vec` of the pattern with `free` and returns how many pattern bytes are
/// still in its memory afterwards.
fn after_free(free: impl FnOnce(Vec<u8>)) -> usize {
    let pattern = pattern();
    let mem = File::open("/proc/self/mem").expect("this test needs /proc/self/mem");
    let mut freed = vec![0u8; LEN];
    let mut v = Vec::with_capacity(LEN);
    v.extend_from_slice(&pattern);
    let addr = v.as_ptr() as usize;
    free(v);
    read_freed(&mem, addr, &mut freed);
    still_there(&freed, &pattern)
}

#[test]
fn a_plain_vec_freed_keeps_its_bytes_so_the_method_sees_them() {
    let kept = after_free(drop);
    assert!(
        kept > (LEN - HEAD - TAIL) / 2,
        "a freed, not zeroed buffer shows only {kept} of its bytes through /proc/self/mem: \
         the allocator overwrites freed memory, so the zeroize tests here cannot tell a \
         zeroed buffer from a reused one"
    );
}

#[test]
fn secret_value_from_a_vec_zeroes_the_vec_before_freeing_it() {
    let mut value = None;
    let kept = after_free(|v| value = Some(SecretValue::from(v)));
    assert_eq!(
        kept, 0,
        "SecretValue::from(Vec<u8>) freed the vector with {kept} of its bytes still in it"
    );
    assert_eq!(value.unwrap().expose(), pattern().as_slice());
}

#[test]
fn a_dropped_secret_value_zeroes_its_buffer() {
    let pattern = pattern();
    let mem = File::open("/proc/self/mem").expect("this test needs /proc/self/mem");
    let mut freed = vec![0u8; LEN];
    let value = SecretValue::from_bytes(&pattern);
    let addr = value.expose().as_ptr() as usize;
    drop(value);
    read_freed(&mem, addr, &mut freed);
    let kept = still_there(&freed, &pattern);
    assert_eq!(
        kept, 0,
        "a dropped SecretValue left {kept} of its bytes in freed memory"
    );
}
