//! Deterministic v2 ids (`spec/v2.md`, "Deterministic ids").

use uuid::Uuid;

/// The fixed namespace of every UUID v5 the migration derives:
/// `6a1f3c52-8e0b-5d47-9b3e-74687977696c` (it ends in the bytes of "thywil"). Changing it changes
/// every derived id and breaks idempotence against earlier runs: never change it.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c52_8e0b_5d47_9b3e_7468_7977_696c);

/// UUID v5 of `name` in [`ID_NAMESPACE`], as a 128-bit number.
pub fn v5(name: &str) -> u128 {
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).as_u128()
}

/// A v2 id as 32 lower-case hex characters (`hex::encode_to_slice`, not `format!`: pass 2 formats three ids per
/// mark, and the formatting machinery was a visible part of it).
pub fn hex_id(id: u128) -> String {
    let mut out = [0u8; 32];
    // 16 bytes always fit 32 hex digits, and hex digits are ASCII: neither step can fail.
    match hex::encode_to_slice(id.to_be_bytes(), &mut out) {
        Ok(()) => std::str::from_utf8(&out).map_or_else(|_| String::new(), str::to_owned),
        Err(_) => String::new(),
    }
}

/// The v2 id of a name-keyed user: UUID v5 of `user:<display name>`.
pub fn user_id_for_name(display_name: &str) -> u128 {
    v5(&format!("user:{display_name}"))
}

/// The v2 id of a G0/G1 user whose key is valid text but not a hex id: UUID v5 of
/// `user-id:<key>` (the key as stored, after the `R-USER-UNRETRIEVABLE` clean-up of a damaged one).
pub fn user_id_for_text_key(key: &str) -> u128 {
    v5(&format!("user-id:{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable() {
        assert_eq!(
            hex_id(ID_NAMESPACE.as_u128()),
            "6a1f3c528e0b5d479b3e74687977696c"
        );
        assert_eq!(user_id_for_name("Mary"), user_id_for_name("Mary"));
        assert_ne!(user_id_for_name("Mary"), user_id_for_name("mary"));
        assert_eq!(hex_id(1).len(), 32);
        for id in [0, 1, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210] {
            assert_eq!(hex_id(id), format!("{id:032x}"));
        }
    }
}
