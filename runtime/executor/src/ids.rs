//! Ids as Kestra makes them: 22 base62 characters for 128 bits. They come from seeds and the
//! content they name, never from a global random generator, so replaying an execution gives the
//! same ids.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 22-character base62 form of 128 bits.
pub fn base62(mut n: u128) -> String {
    let mut out = [b'0'; 22];
    for slot in out.iter_mut().rev() {
        // n % 62 < 62, so the index is in range
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// splitmix64's finaliser.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 128-bit hash of parts (each part delimited, so `["ab","c"] != ["a","bc"]`).
pub(crate) fn hash128(parts: &[&[u8]]) -> u128 {
    let mut a: u64 = 0x243f_6a88_85a3_08d3;
    let mut b: u64 = 0x1319_8a2e_0370_7344;
    for part in parts {
        for &byte in *part {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = mix(b ^ u64::from(byte)).rotate_left(5);
        }
        a = mix(a ^ 0xff ^ (part.len() as u64));
        b = mix(b.wrapping_add(0x9e37_79b9_7f4a_7c15));
    }
    (u128::from(mix(a ^ b.rotate_left(17))) << 64) | u128::from(mix(b ^ a))
}

/// A 64-bit hash of parts.
pub fn hash64(parts: &[&[u8]]) -> u64 {
    // the high half of the 128-bit hash
    (hash128(parts) >> 64) as u64
}

/// The id of an execution made from `seed` (the caller's source of uniqueness).
pub fn execution_id(seed: u64) -> String {
    base62(hash128(&[b"execution", &seed.to_le_bytes()]))
}

/// The id of the execution that `retried` retries in as attempt `attempt_number` (retry
/// behavior CREATE_NEW_EXECUTION): the same for every driver that creates it.
pub fn retry_execution_id(retried: &str, attempt_number: u32) -> String {
    execution_id(hash64(&[
        retried.as_bytes(),
        b"retry",
        &attempt_number.to_le_bytes(),
    ]))
}

/// The id of a task run: from the execution id and what the run is (its task, parent, loop value,
/// iteration and position in the list), so it is the same every time the execution is replayed.
pub(crate) fn task_run_id(
    execution_id: &str,
    parent: Option<&str>,
    task_id: &str,
    value: Option<&str>,
    iteration: Option<u32>,
    ordinal: usize,
) -> String {
    base62(hash128(&[
        execution_id.as_bytes(),
        parent.unwrap_or("").as_bytes(),
        task_id.as_bytes(),
        value.unwrap_or("\u{0}").as_bytes(),
        &iteration.map_or(u64::MAX, u64::from).to_le_bytes(),
        &(ordinal as u64).to_le_bytes(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_base62_chars_and_deterministic() {
        let a = execution_id(1);
        assert_eq!(a.len(), 22);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a, execution_id(1));
        assert_ne!(a, execution_id(2));
        assert_eq!(base62(0), "0000000000000000000000");
        assert_eq!(base62(u128::MAX).len(), 22);
        let t1 = task_run_id(&a, None, "t", None, None, 0);
        let t2 = task_run_id(&a, None, "t", None, None, 1);
        assert_ne!(t1, t2);
    }
}
