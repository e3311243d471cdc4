//! `GET /placement/state`: Go `encoding/json` of `StatePlacementTables` (spec §11.2), byte for
//! byte — field order, `omitempty`, sorted map keys, HTML-safe escaping, no trailing newline.

use std::{collections::BTreeMap, fmt::Write as _};

use dapr_proto::placement::v1::{Host, StatePlacementTable};

/// Renders the state of every live namespace.
pub fn render(tables: &BTreeMap<String, StatePlacementTable>) -> String {
    let mut out = String::from("{");
    if !tables.is_empty() {
        out.push_str("\"tables\":{");
        for (i, (namespace, table)) in tables.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_string(&mut out, namespace);
            out.push(':');
            push_table(&mut out, table);
        }
        out.push('}');
    }
    out.push('}');
    out
}

fn push_table(out: &mut String, table: &StatePlacementTable) {
    let mut fields = Fields::new(out);
    if !table.hosts.is_empty() {
        let out = fields.key("hosts");
        out.push('[');
        for (i, host) in table.hosts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_host(out, host);
        }
        out.push(']');
    }
    if table.version != 0 {
        let _ = write!(fields.key("version"), "{}", table.version);
    }
    fields.finish();
}

#[allow(deprecated)]
fn push_host(out: &mut String, host: &Host) {
    let mut fields = Fields::new(out);
    if !host.name.is_empty() {
        push_string(fields.key("name"), &host.name);
    }
    if host.port != 0 {
        let _ = write!(fields.key("port"), "{}", host.port);
    }
    if host.load != 0 {
        let _ = write!(fields.key("load"), "{}", host.load);
    }
    if !host.entities.is_empty() {
        let out = fields.key("entities");
        out.push('[');
        for (i, entity) in host.entities.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_string(out, entity);
        }
        out.push(']');
    }
    if !host.id.is_empty() {
        push_string(fields.key("id"), &host.id);
    }
    if !host.pod.is_empty() {
        push_string(fields.key("pod"), &host.pod);
    }
    if host.api_level != 0 {
        let _ = write!(fields.key("api_level"), "{}", host.api_level);
    }
    if !host.namespace.is_empty() {
        push_string(fields.key("namespace"), &host.namespace);
    }
    if host.operation != 0 {
        let _ = write!(fields.key("operation"), "{}", host.operation);
    }
    // A proto3 `optional` field is a pointer in Go: present means emitted, even when 0.
    if let Some(version) = host.version {
        let _ = write!(fields.key("version"), "{version}");
    }
    fields.finish();
}

/// Writes `{"k":v,...}` with commas in the right places.
struct Fields<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, name: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(name);
        self.out.push_str("\":");
        self.out
    }

    fn finish(self) {
        self.out.push('}');
    }
}

/// A JSON string as Go's encoder writes it (HTML-safe).
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use super::*;

    fn daprd_host() -> Host {
        Host {
            name: "127.0.0.1:5001".into(),
            entities: vec!["mytype".into()],
            id: "app".into(),
            api_level: 20,
            namespace: "default".into(),
            operation: 1,
            ..Host::default()
        }
    }

    #[test]
    fn no_namespaces_render_as_an_empty_object() {
        assert_eq!(render(&BTreeMap::new()), "{}");
    }

    #[test]
    fn a_namespace_without_hosts_or_version_is_an_empty_object() {
        let tables = BTreeMap::from([("default".to_owned(), StatePlacementTable::default())]);
        assert_eq!(render(&tables), r#"{"tables":{"default":{}}}"#);
    }

    #[test]
    fn hosts_render_with_go_field_order_and_omitempty() {
        let tables = BTreeMap::from([(
            "default".to_owned(),
            StatePlacementTable {
                hosts: vec![daprd_host()],
                version: 1,
            },
        )]);
        assert_eq!(
            render(&tables),
            r#"{"tables":{"default":{"hosts":[{"name":"127.0.0.1:5001","entities":["mytype"],"id":"app","api_level":20,"namespace":"default","operation":1}],"version":1}}}"#
        );
    }

    #[test]
    fn a_present_zero_version_is_emitted_and_namespaces_are_sorted() {
        let mut host = daprd_host();
        host.version = Some(0);
        host.operation = 0;
        let tables = BTreeMap::from([
            (
                "zz".to_owned(),
                StatePlacementTable {
                    hosts: vec![host],
                    version: 0,
                },
            ),
            (
                "aa".to_owned(),
                StatePlacementTable {
                    hosts: vec![],
                    version: 3,
                },
            ),
        ]);
        let json = render(&tables);
        assert!(json.starts_with(r#"{"tables":{"aa":{"version":3},"zz":{"hosts":[{"#));
        assert!(json.ends_with(r#""namespace":"default","version":0}]}}}"#));
    }

    #[test]
    fn strings_are_escaped_as_go_does() {
        let mut out = String::new();
        push_string(&mut out, "a<b>&\"\\\n\u{1}é");
        assert_eq!(out, r#""a\u003cb\u003e\u0026\"\\\n\u0001é""#);
    }
}
