//! `application/x-www-form-urlencoded`, the encoding of OAuth's query strings and form bodies,
//! read as `form_urlencoded::parse` reads it (the tests hold the two together). By hand because
//! of its cost: the ≈ 15 pairs of an authorize + token pair took ≈ 18,700 instructions to read
//! with the crate's decoder (≈ 3,000 for each %-encoded URL), and take ≈ 9,200 here, where one
//! pass over a pair's bytes finds its end, its `=` and whether anything needs decoding
//! (docs/performance.md).

use std::borrow::Cow;

/// The name-value pairs of `raw` in their order; a name or value without `%` or `+` needs no
/// decoding and, being part of a `str`, no UTF-8 check: it is borrowed as it is.
pub fn parse(raw: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    Pairs { rest: raw }
}

/// The pairs still to read, each found in one pass over its bytes: its end (`&`), where its name
/// ends (the first `=`), and whether name or value holds a `%` or `+`.
struct Pairs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let mut end = self.rest.len();
            let mut name_end = None;
            let (mut escaped_name, mut escaped_value) = (false, false);
            for (at, byte) in self.rest.bytes().enumerate() {
                match byte {
                    b'&' => {
                        end = at;
                        break;
                    }
                    b'=' if name_end.is_none() => name_end = Some(at),
                    b'%' | b'+' if name_end.is_none() => escaped_name = true,
                    b'%' | b'+' => escaped_value = true,
                    _ => {}
                }
            }
            // `&` and `=` are ASCII: the cuts fall between chars
            let (sequence, rest) = self.rest.split_at(end);
            self.rest = rest.get(1..).unwrap_or_default();
            if sequence.is_empty() {
                continue;
            }
            let (name, value) = match name_end {
                Some(at) => (&sequence[..at], &sequence[at + 1..]),
                None => (sequence, ""),
            };
            let decoded = |text, escaped| {
                if escaped {
                    decode_escaped(text)
                } else {
                    Cow::Borrowed(text)
                }
            };
            return Some((decoded(name, escaped_name), decoded(value, escaped_value)));
        }
        None
    }
}

/// One name or value: `+` is a space, `%XX` a byte, anything else (a `%` without two hex digits
/// too) itself, and bytes that are not UTF-8 U+FFFD.
pub fn decode(raw: &str) -> Cow<'_, str> {
    if raw.bytes().any(|b| matches!(b, b'%' | b'+')) {
        decode_escaped(raw)
    } else {
        Cow::Borrowed(raw)
    }
}

fn decode_escaped(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        decoded.push(match byte {
            b'+' => b' ',
            b'%' => match (bytes.get(at).and_then(hex), bytes.get(at + 1).and_then(hex)) {
                (Some(high), Some(low)) => {
                    at += 2;
                    high << 4 | low
                }
                _ => b'%',
            },
            other => other,
        });
    }
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
    }
}

fn hex(digit: &u8) -> Option<u8> {
    let digit = char::from(*digit).to_digit(16)?;
    u8::try_from(digit).ok()
}

#[cfg(test)]
mod tests {
    use url::form_urlencoded;

    use super::*;

    fn same_as_the_crate(raw: &str) {
        let ours: Vec<_> = parse(raw).collect();
        let reference: Vec<_> = form_urlencoded::parse(raw.as_bytes()).collect();
        assert_eq!(ours, reference, "{raw:?}");
    }

    #[test]
    fn reads_pairs_as_form_urlencoded_does() {
        for raw in [
            "",
            "&&",
            "a=1&&b=2&",
            "a",
            "=x",
            "a=b=c",
            "a+b=c+d",
            "x=%20%2B%3D%26",
            "bad=%zz%2",
            "%=%4&%4g=a%2&%%41=+%2B+&%e9=%C3%A9%C3",
            "lossy=%FF%C3",
            "utf8=\u{e9}t\u{e9}&%C3%A9=1",
            "redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback&scope=epoch_time",
        ] {
            same_as_the_crate(raw);
        }
    }

    #[test]
    fn borrows_what_needs_no_decoding() {
        let pairs: Vec<_> = parse("a=b&c%20=d+").collect();
        assert!(matches!(pairs[0], (Cow::Borrowed("a"), Cow::Borrowed("b"))));
        assert!(
            matches!(&pairs[1], (Cow::Owned(name), Cow::Owned(value)) if name == "c " && value == "d ")
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn reads_any_text_as_form_urlencoded_does(
                raw in "\\PC{0,64}|[a-z=&%+0-9A-F]{0,64}"
            ) {
                let ours: Vec<_> = parse(&raw).collect();
                let reference: Vec<_> = form_urlencoded::parse(raw.as_bytes()).collect();
                prop_assert_eq!(ours, reference);
            }

            #[test]
            fn decodes_what_the_crate_encodes(
                pairs in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..6)
            ) {
                let raw = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&pairs)
                    .finish();
                let ours: Vec<(String, String)> = parse(&raw)
                    .map(|(name, value)| (name.into_owned(), value.into_owned()))
                    .collect();
                prop_assert_eq!(ours, pairs);
            }
        }
    }
}
