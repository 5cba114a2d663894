//! Strict parsing of `application/x-www-form-urlencoded` parameters (a query string or a form
//! body): RFC 6749 §3.1 forbids repeating a parameter, which a map-based extractor would hide.

use std::borrow::Cow;

/// The pairs in the order given, borrowed from the raw text unless decoding changed them, and
/// looked up by a scan: a request has about ten (a map of owned strings cost ≈ 20,000
/// instructions an authorize + token pair, docs/performance.md).
#[derive(Debug, Default)]
pub struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// A parameter appeared more than once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter {0} is repeated")]
pub struct Repeated(pub String);

impl<'a> Params<'a> {
    /// The pairs of `raw` ([`oauth::form::parse`]).
    pub fn parse(raw: &'a str) -> Self {
        Self {
            pairs: oauth::form::parse(raw).collect(),
        }
    }

    /// The parameter's one value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self.values(name);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(one), None) => Ok(Some(one).filter(|v| !v.is_empty())),
            (Some(_), Some(_)) => Err(Repeated(name.to_owned())),
        }
    }

    /// Every value given for the parameter (for those a standard allows to repeat).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.values(name).collect()
    }

    fn values<'p, 'n>(&'p self, name: &'n str) -> impl Iterator<Item = &'p str> + use<'p, 'n, 'a> {
        self.pairs
            .iter()
            .filter(move |(given, _)| given == name)
            .map(|(_, value)| value.as_ref())
    }

    /// The first repeated parameter in name order, if any, ignoring those listed in `may_repeat`.
    /// Sorted rather than compared pairwise: a 16 KiB body holds thousands of pairs.
    pub fn first_repeated(&self, may_repeat: &[&str]) -> Option<Repeated> {
        let mut names: Vec<&str> = self
            .pairs
            .iter()
            .map(|(name, _)| name.as_ref())
            .filter(|name| !may_repeat.contains(name))
            .collect();
        names.sort_unstable();
        names
            .windows(2)
            .find(|pair| pair[0] == pair[1])
            .map(|pair| Repeated(pair[0].to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_finds_single_values() {
        let params = Params::parse("a=1&b=x%20y&c=");
        assert_eq!(params.single("a"), Ok(Some("1")));
        assert_eq!(params.single("b"), Ok(Some("x y")));
        assert_eq!(params.single("c"), Ok(None));
        assert_eq!(params.single("missing"), Ok(None));
    }

    #[test]
    fn a_repeated_parameter_is_reported() {
        let params = Params::parse("a=1&a=1&r=1&r=2");
        assert_eq!(params.single("a"), Err(Repeated("a".into())));
        assert_eq!(params.first_repeated(&["r"]), Some(Repeated("a".into())));
        assert_eq!(params.first_repeated(&["a", "r"]), None);
        assert_eq!(params.all("r"), ["1", "2"]);
    }

    #[test]
    fn thousands_of_pairs_are_read_and_the_repeat_found() {
        let raw = format!("{}b=1&a=2", "c=&".repeat(8_000));
        let params = Params::parse(&raw);
        assert_eq!(params.all("c").len(), 8_000);
        assert_eq!(params.first_repeated(&[]), Some(Repeated("c".into())));
        assert_eq!(params.first_repeated(&["c"]), None);
        assert_eq!(params.single("a"), Ok(Some("2")));
    }

    mod properties {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;

        fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
            // few short names so that repeats are common; any text as names and values
            let name = prop_oneof!["[a-c]{1,2}", "\\PC{0,6}"];
            proptest::collection::vec((name, "\\PC{0,8}"), 0..10)
        }

        proptest! {
            #[test]
            fn round_trips_form_urlencoded_pairs_and_reports_repeats(pairs in pairs()) {
                let mut serializer = form_urlencoded::Serializer::new(String::new());
                serializer.extend_pairs(&pairs);
                let raw = serializer.finish();
                let params = Params::parse(&raw);

                let mut expected: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for (name, value) in &pairs {
                    expected.entry(name).or_default().push(value);
                }
                for (name, values) in &expected {
                    prop_assert_eq!(params.all(name), values.clone());
                    let single = match values.as_slice() {
                        [one] => Ok(Some(*one).filter(|v| !v.is_empty())),
                        _ => Err(Repeated((*name).to_owned())),
                    };
                    prop_assert_eq!(params.single(name), single);
                }
                let first_repeated = expected
                    .iter()
                    .find(|(_, values)| values.len() > 1)
                    .map(|(name, _)| Repeated((*name).to_owned()));
                prop_assert_eq!(params.first_repeated(&[]), first_repeated);
                let all_may_repeat: Vec<&str> = expected.keys().copied().collect();
                prop_assert_eq!(params.first_repeated(&all_may_repeat), None);
                prop_assert_eq!(params.single("absent\u{0}name"), Ok(None));
            }

            #[test]
            fn parses_any_text(raw in "\\PC{0,64}|[a-z=&%+0-9]{0,64}") {
                let params = Params::parse(&raw);
                let reference: Vec<_> = form_urlencoded::parse(raw.as_bytes()).collect();
                prop_assert_eq!(&params.pairs, &reference);
                for (name, _) in &reference {
                    let count = reference.iter().filter(|(n, _)| n == name).count();
                    prop_assert_eq!(params.all(name).len(), count);
                }
            }
        }
    }
}
