//! Structural comparison of two sets of file descriptors (ours against upstream).
//!
//! Everything that affects the wire or the descriptors is compared: packages and file options,
//! imports, services and methods (types, streaming), messages (recursively), fields (number,
//! label, type, type name, proto3 `optional`, oneof membership, json name, options), oneofs,
//! reserved ranges and names, enums and values. Elements are matched by name, so something
//! upstream has that we lack is reported as missing, and the reverse as extra.

use std::fmt::{self, Debug, Display};

use prost_types::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorProto,
    ServiceDescriptorProto, field_descriptor_proto::Label, field_descriptor_proto::Type,
};

/// One difference between our descriptors and upstream's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// What differs, e.g. `dapr/proto/sentry/v1/sentry.proto: field dapr.proto.sentry.v1.X.id`.
    pub at: String,
    /// How it differs, e.g. `number: ours 2, upstream 1`.
    pub what: String,
}

impl Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

/// The outcome of [`compare`]: every difference plus how much was compared.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Empty when ours matches upstream.
    pub differences: Vec<Difference>,
    /// Files present on both sides.
    pub files: usize,
    /// Services present on both sides.
    pub services: usize,
    /// Messages present on both sides, nested ones (including map entries) included.
    pub messages: usize,
}

/// Compares `ours` against `upstream`, file by file (matched by file name).
pub fn compare(ours: &[FileDescriptorProto], upstream: &[FileDescriptorProto]) -> Comparison {
    let mut c = Comparison::default();
    for (o, u) in pair(&mut c, "descriptor set", "file", ours, upstream, |f| {
        f.name()
    }) {
        c.files += 1;
        let before = c.differences.len();
        compare_file(&mut c, o, u);
        // Backstop: whatever the itemised checks miss (declaration order, an option nobody
        // thought of) still fails the comparison.
        if c.differences.len() == before && without_source_info(o) != without_source_info(u) {
            push(
                &mut c,
                o.name(),
                "descriptor differs from upstream in something not itemised (e.g. declaration order)"
                    .to_owned(),
            );
        }
    }
    c
}

fn compare_file(c: &mut Comparison, o: &FileDescriptorProto, u: &FileDescriptorProto) {
    let at = o.name().to_owned();
    check(c, &at, "package", o.package(), u.package());
    check(c, &at, "syntax", o.syntax(), u.syntax());
    let go_package =
        |f: &FileDescriptorProto| f.options.as_ref().map(|o| o.go_package().to_owned());
    check(c, &at, "go_package", go_package(o), go_package(u));
    let other_options = |f: &FileDescriptorProto| {
        f.options.clone().map(|mut options| {
            options.go_package = None;
            options
        })
    };
    check(c, &at, "file options", other_options(o), other_options(u));

    let mut deps_o = o.dependency.clone();
    let mut deps_u = u.dependency.clone();
    deps_o.sort();
    deps_u.sort();
    check(c, &at, "imports", deps_o, deps_u);
    check(
        c,
        &at,
        "public imports",
        &o.public_dependency,
        &u.public_dependency,
    );
    check(c, &at, "extensions", o.extension.len(), u.extension.len());

    let package = o.package();
    for (so, su) in pair(c, &at, "service", &o.service, &u.service, |s| s.name()) {
        c.services += 1;
        compare_service(c, &at, package, so, su);
    }
    for (mo, mu) in pair(c, &at, "message", &o.message_type, &u.message_type, |m| {
        m.name()
    }) {
        compare_message(c, &at, &format!("{package}.{}", mo.name()), mo, mu);
    }
    for (eo, eu) in pair(c, &at, "enum", &o.enum_type, &u.enum_type, |e| e.name()) {
        compare_enum(c, &at, &format!("{package}.{}", eo.name()), eo, eu);
    }
}

fn compare_service(
    c: &mut Comparison,
    file: &str,
    package: &str,
    o: &ServiceDescriptorProto,
    u: &ServiceDescriptorProto,
) {
    let service = format!("{package}.{}", o.name());
    let at = format!("{file}: service {service}");
    check(c, &at, "options", &o.options, &u.options);
    for (mo, mu) in pair(c, &at, "rpc", &o.method, &u.method, |m| m.name()) {
        let at = format!("{file}: rpc /{service}/{}", mo.name());
        check(c, &at, "input type", mo.input_type(), mu.input_type());
        check(c, &at, "output type", mo.output_type(), mu.output_type());
        check(
            c,
            &at,
            "client streaming",
            mo.client_streaming(),
            mu.client_streaming(),
        );
        check(
            c,
            &at,
            "server streaming",
            mo.server_streaming(),
            mu.server_streaming(),
        );
        check(c, &at, "options", &mo.options, &mu.options);
    }
}

fn compare_message(
    c: &mut Comparison,
    file: &str,
    full_name: &str,
    o: &DescriptorProto,
    u: &DescriptorProto,
) {
    c.messages += 1;
    let at = format!("{file}: message {full_name}");
    check(c, &at, "options", &o.options, &u.options);
    check(c, &at, "oneofs", oneof_names(o), oneof_names(u));
    let ranges = |m: &DescriptorProto| {
        m.reserved_range
            .iter()
            .map(|r| (r.start(), r.end()))
            .collect::<Vec<_>>()
    };
    check(c, &at, "reserved numbers", ranges(o), ranges(u));
    check(c, &at, "reserved names", &o.reserved_name, &u.reserved_name);
    let ext_ranges = |m: &DescriptorProto| {
        m.extension_range
            .iter()
            .map(|r| (r.start(), r.end()))
            .collect::<Vec<_>>()
    };
    check(c, &at, "extension ranges", ext_ranges(o), ext_ranges(u));

    for (fo, fu) in pair(c, &at, "field", &o.field, &u.field, |f| f.name()) {
        let at = format!("{file}: field {full_name}.{}", fo.name());
        compare_field(c, &at, (o, fo), (u, fu));
    }
    for (no, nu) in pair(
        c,
        &at,
        "nested message",
        &o.nested_type,
        &u.nested_type,
        |m| m.name(),
    ) {
        compare_message(c, file, &format!("{full_name}.{}", no.name()), no, nu);
    }
    for (eo, eu) in pair(c, &at, "nested enum", &o.enum_type, &u.enum_type, |e| {
        e.name()
    }) {
        compare_enum(c, file, &format!("{full_name}.{}", eo.name()), eo, eu);
    }
}

fn compare_field(
    c: &mut Comparison,
    at: &str,
    (om, o): (&DescriptorProto, &FieldDescriptorProto),
    (um, u): (&DescriptorProto, &FieldDescriptorProto),
) {
    check(c, at, "number", o.number(), u.number());
    check(c, at, "label", label(o), label(u));
    check(c, at, "type", field_type(o), field_type(u));
    check(c, at, "type name", o.type_name(), u.type_name());
    check(
        c,
        at,
        "proto3 optional",
        o.proto3_optional(),
        u.proto3_optional(),
    );
    check(c, at, "oneof", oneof_of(om, o), oneof_of(um, u));
    check(c, at, "json name", o.json_name(), u.json_name());
    check(c, at, "default value", o.default_value(), u.default_value());
    check(c, at, "options", &o.options, &u.options);
}

fn compare_enum(
    c: &mut Comparison,
    file: &str,
    full_name: &str,
    o: &EnumDescriptorProto,
    u: &EnumDescriptorProto,
) {
    let at = format!("{file}: enum {full_name}");
    check(c, &at, "options", &o.options, &u.options);
    check(c, &at, "reserved names", &o.reserved_name, &u.reserved_name);
    let ranges = |e: &EnumDescriptorProto| {
        e.reserved_range
            .iter()
            .map(|r| (r.start(), r.end()))
            .collect::<Vec<_>>()
    };
    check(c, &at, "reserved numbers", ranges(o), ranges(u));
    for (vo, vu) in pair(c, &at, "value", &o.value, &u.value, |v| v.name()) {
        let at = format!("{file}: enum value {full_name}.{}", vo.name());
        check(c, &at, "number", vo.number(), vu.number());
        check(c, &at, "options", &vo.options, &vu.options);
    }
}

/// Matches elements by name. Upstream elements we lack are reported as missing, ours that
/// upstream lacks as extra; the matched pairs come back in upstream's order.
fn pair<'a, T>(
    c: &mut Comparison,
    at: &str,
    kind: &str,
    ours: &'a [T],
    upstream: &'a [T],
    name: impl Fn(&T) -> &str,
) -> Vec<(&'a T, &'a T)> {
    let mut pairs = Vec::new();
    for u in upstream {
        match ours.iter().find(|o| name(o) == name(u)) {
            Some(o) => pairs.push((o, u)),
            None => push(
                c,
                at,
                format!("missing {kind} {} (upstream has it)", name(u)),
            ),
        }
    }
    for o in ours {
        if !upstream.iter().any(|u| name(u) == name(o)) {
            push(c, at, format!("extra {kind} {} (not in upstream)", name(o)));
        }
    }
    pairs
}

fn check<T: PartialEq + Debug>(c: &mut Comparison, at: &str, what: &str, ours: T, upstream: T) {
    if ours != upstream {
        push(
            c,
            at,
            format!("{what}: ours {ours:?}, upstream {upstream:?}"),
        );
    }
}

fn push(c: &mut Comparison, at: &str, what: String) {
    c.differences.push(Difference {
        at: at.to_owned(),
        what,
    });
}

fn without_source_info(f: &FileDescriptorProto) -> FileDescriptorProto {
    FileDescriptorProto {
        source_code_info: None,
        ..f.clone()
    }
}

fn label(f: &FieldDescriptorProto) -> Option<&'static str> {
    f.label
        .map(|l| Label::try_from(l).map_or("INVALID", |l| l.as_str_name()))
}

fn field_type(f: &FieldDescriptorProto) -> Option<&'static str> {
    f.r#type
        .map(|t| Type::try_from(t).map_or("INVALID", |t| t.as_str_name()))
}

fn oneof_names(m: &DescriptorProto) -> Vec<&str> {
    m.oneof_decl.iter().map(|o| o.name()).collect()
}

/// The name (not the index) of the oneof a field belongs to, so reordering is not a difference.
fn oneof_of<'a>(m: &'a DescriptorProto, f: &FieldDescriptorProto) -> Option<&'a str> {
    let index = usize::try_from(f.oneof_index?).ok()?;
    Some(
        m.oneof_decl
            .get(index)
            .map_or("<out of range>", |o| o.name()),
    )
}

#[cfg(test)]
mod tests;
