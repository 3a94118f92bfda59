//! E-mail addresses are never printed (rules.md "E-mail addresses"): a report page, a relayed
//! log line, a finding or a log event shows each as its first letter, `•••` and its domain
//! (`alice@example.org` → `a•••@example.org`). Here, in the crate every other one depends on, so
//! the detector, the validator, the reports and the hooks share the one masking.

/// What replaces the rest of an address's local part.
pub const MASK: &str = "•••";

/// One address masked (`alice@example.org` → `a•••@example.org`); a text with no `@` shows only
/// its first character. Never returns the local part beyond its first character.
pub fn mask_address(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first: String = local.chars().take(1).collect();
    if domain.is_empty() {
        format!("{first}{MASK}")
    } else {
        format!("{first}{MASK}@{domain}")
    }
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._%+-'".contains(&b)
}

fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// `text` with every e-mail address (`local@domain.tld`) masked as `l•••@domain.tld`. Works on
/// bytes: the characters of an address are ASCII, which never occurs inside a multi-byte UTF-8
/// sequence, so the cuts always fall on character boundaries.
pub fn mask_emails(text: &str) -> String {
    let b = text.as_bytes();
    if !b.contains(&b'@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for at in memchr_all(b) {
        if at < copied {
            continue;
        }
        let mut start = at;
        while start > copied && is_local(b[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < b.len() && is_domain(b[end]) {
            end += 1;
        }
        // A domain ends on a letter or digit and has a dot inside it.
        while end > at + 1 && !b[end - 1].is_ascii_alphanumeric() {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let has_dot = domain.trim_start_matches(['.', '-']).contains('.');
        if start == at || !has_dot {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(&text[start..start + 1]);
        out.push_str(MASK);
        out.push('@');
        out.push_str(domain);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

fn memchr_all(b: &[u8]) -> impl Iterator<Item = usize> + '_ {
    b.iter()
        .enumerate()
        .filter(|(_, &c)| c == b'@')
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::mask_emails;

    #[test]
    fn addresses_are_masked_and_the_rest_kept() {
        assert_eq!(mask_emails("alice@example.org"), "a•••@example.org");
        assert_eq!(
            mask_emails("mail: Bob.Smith+x@mail.example.co.uk, and ünïcode é"),
            "mail: B•••@mail.example.co.uk, and ünïcode é"
        );
        assert_eq!(
            mask_emails("a@b.cd then z.z@y.org."),
            "a•••@b.cd then z•••@y.org."
        );
        assert_eq!(
            mask_emails("é<x@evil.com>"),
            "é<x•••@evil.com>",
            "the address next to non-ASCII and markup"
        );
    }

    #[test]
    fn one_address_keeps_its_first_letter_and_domain() {
        assert_eq!(super::mask_address("mary@example.org"), "m•••@example.org");
        assert_eq!(super::mask_address("no-at"), "n•••");
        assert_eq!(super::mask_address(""), "•••");
    }

    #[test]
    fn things_that_are_not_addresses_stay() {
        for s in [
            "no at here",
            "@",
            "@@",
            "user@",
            "@example.org",
            "name@localhost",
            "two @ signs @ here",
            "Prayer for @everyone",
            "",
        ] {
            assert_eq!(mask_emails(s), s);
        }
    }
}
