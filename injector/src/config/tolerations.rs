//! `IGNORE_ENTRYPOINT_TOLERATIONS`: a JSON array of Kubernetes tolerations, decoded the way Go's
//! `encoding/json` decodes `[]corev1.Toleration` (object keys match case-insensitively, unknown
//! keys are skipped, `null` leaves a field unset).

use std::fmt;

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{IgnoredAny, MapAccess, Visitor},
};

/// One Kubernetes toleration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operator: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub effect: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

/// Parses the variable's value: a JSON array (or `null`) of tolerations.
pub fn parse(raw: &str) -> Result<Vec<Toleration>, serde_json::Error> {
    Ok(serde_json::from_str::<Option<Vec<Toleration>>>(raw)?.unwrap_or_default())
}

/// Field names as Kubernetes spells them; keys are matched to them ignoring ASCII case.
const FIELDS: [&str; 5] = ["key", "operator", "value", "effect", "tolerationSeconds"];

impl<'de> Deserialize<'de> for Toleration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TolerationVisitor)
    }
}

struct TolerationVisitor;

impl<'de> Visitor<'de> for TolerationVisitor {
    type Value = Toleration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a toleration object")
    }

    /// A `null` element decodes to an empty toleration, as in Go.
    fn visit_unit<E>(self) -> Result<Toleration, E> {
        Ok(Toleration::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Toleration, A::Error> {
        let mut t = Toleration::default();
        while let Some(key) = map.next_key::<String>()? {
            let field = FIELDS
                .iter()
                .find(|f| f.eq_ignore_ascii_case(&key))
                .copied();
            let target = match field {
                Some("key") => &mut t.key,
                Some("operator") => &mut t.operator,
                Some("value") => &mut t.value,
                Some("effect") => &mut t.effect,
                Some(_) => {
                    t.toleration_seconds = map.next_value::<Option<i64>>()?;
                    continue;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if let Some(value) = map.next_value::<Option<String>>()? {
                *target = value;
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_case_insensitively_and_unknown_keys_are_skipped() {
        let ts = parse(
            r#"[{"Effect":"NoSchedule","KEY":"alibabacloud.com/eci","Operator":"Exists","extra":[1]},
                {"key":"aws","value":"x","tolerationSeconds":30}, null]"#,
        )
        .unwrap();
        assert_eq!(
            ts,
            [
                Toleration {
                    key: "alibabacloud.com/eci".into(),
                    operator: "Exists".into(),
                    effect: "NoSchedule".into(),
                    ..Toleration::default()
                },
                Toleration {
                    key: "aws".into(),
                    value: "x".into(),
                    toleration_seconds: Some(30),
                    ..Toleration::default()
                },
                Toleration::default(),
            ]
        );
    }

    #[test]
    fn null_keeps_an_earlier_value_and_null_means_no_tolerations() {
        let ts = parse(r#"[{"key":"a","Key":null}]"#).unwrap();
        assert_eq!(ts[0].key, "a");
        assert_eq!(parse("null").unwrap(), []);
    }

    #[test]
    fn the_charts_backslash_escaped_default_does_not_parse() {
        let chart_default = r#"[{\"effect\":\"NoSchedule\",\"key\":\"alibabacloud.com/eci\"}]"#;
        assert!(parse(chart_default).is_err());
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad in [
            r#"{"key":"a"}"#,
            r#"[{"key":1}]"#,
            r#"[{"tolerationSeconds":1.5}]"#,
            r#"["a"]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tolerations_serialise_with_kubernetes_field_names() {
        let t = Toleration {
            key: "k".into(),
            toleration_seconds: Some(5),
            ..Toleration::default()
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"key":"k","tolerationSeconds":5}"#
        );
    }
}
