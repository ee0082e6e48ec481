//! Self-describing secret values: a header naming the bot, the secret and the
//! generation, then a pattern that depends on all three, so a value that mixes two
//! writes, or is cut short, is recognised.

/// The value generation `generation` of secret `name` (index) of bot `bot` (index).
/// Lengths vary from a few bytes to about 40 KiB, so writes span many pages.
pub fn make(bot: usize, name: usize, generation: u64) -> Vec<u8> {
    let mix = generation
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(17)
        ^ (bot as u64) << 8
        ^ name as u64;
    let len = usize::try_from(mix % 40_000).unwrap_or(0) + 1;
    let header = format!("BMSTRESS b={bot} n={name} g={generation} len={len}\n");
    let mut v = header.into_bytes();
    v.reserve(len);
    let step = (mix >> 32) | 1;
    let mut x = mix;
    for _ in 0..len {
        x = x.wrapping_add(step);
        v.push(b'!' + u8::try_from((x >> 24) % 90).unwrap_or(0));
    }
    v
}

/// Which `(bot, name, generation)` a stored value is, if it is exactly one of
/// [`make`]'s values; `None` for anything torn, cut, or foreign.
pub fn identify(bytes: &[u8]) -> Option<(usize, usize, u64)> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut parts = header.split(' ');
    if parts.next()? != "BMSTRESS" {
        return None;
    }
    let mut field = |key: &str| {
        parts
            .next()
            .and_then(|p| p.strip_prefix(key))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let bot = usize::try_from(field("b=")?).ok()?;
    let name = usize::try_from(field("n=")?).ok()?;
    let generation = field("g=")?;
    (make(bot, name, generation) == bytes).then_some((bot, name, generation))
}
