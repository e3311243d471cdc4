use prost_types::FileDescriptorProto;
use protox::file::{File, FileResolver};

use super::compare;

const FILE: &str = "t/v1/t.proto";

/// A small file exercising every kind of element the comparison looks at.
const BASE: &str = r#"
syntax = "proto3";
package t.v1;
option go_package = "example.com/t/v1;t";

service Svc {
  rpc Unary(Req) returns (Resp) {}
  rpc Watch(Req) returns (stream Resp) {}
}

message Req {
  string id = 1;
  optional uint64 version = 2;
  oneof kind {
    string a = 3;
    int32 b = 4;
  }
  message Inner {
    repeated string items = 1;
  }
  Inner inner = 5;
  map<string, int64> counts = 6;
  reserved 7;
  reserved "old";
  int32 legacy = 8 [deprecated = true];
}

message Resp {
  Status status = 1;
}

enum Status {
  UNKNOWN = 0;
  OK = 1;
}
"#;

/// Serves exactly one in-memory file.
struct Inline(&'static str, String);

impl FileResolver for Inline {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == self.0 {
            File::from_source(name, &self.1)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

fn compile(name: &'static str, source: &str) -> Vec<FileDescriptorProto> {
    let mut compiler = protox::Compiler::with_file_resolver(Inline(name, source.to_owned()));
    compiler.open_file(name).expect("test proto compiles");
    compiler.file_descriptor_set().file
}

/// Differences (as printed) when ours is `BASE` with `from` replaced by `to`.
fn differences_after(from: &str, to: &str) -> Vec<String> {
    assert!(BASE.contains(from), "test edit {from:?} does not apply");
    let ours = compile(FILE, &BASE.replacen(from, to, 1));
    let upstream = compile(FILE, BASE);
    compare(&ours, &upstream)
        .differences
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[track_caller]
fn assert_single(differences: Vec<String>, expected: &str) {
    assert_eq!(differences, [expected.to_owned()]);
}

#[test]
fn identical_files_have_no_differences_and_are_counted() {
    let files = compile(FILE, BASE);
    let c = compare(&files, &files);
    assert!(c.differences.is_empty(), "{:?}", c.differences);
    assert_eq!((c.files, c.services, c.messages), (1, 1, 4)); // Req, Inner, CountsEntry, Resp
}

#[test]
fn a_changed_field_number_is_reported() {
    assert_single(
        differences_after("string id = 1;", "string id = 9;"),
        "t/v1/t.proto: field t.v1.Req.id: number: ours 9, upstream 1",
    );
}

#[test]
fn a_missing_rpc_is_reported() {
    assert_single(
        differences_after("rpc Watch(Req) returns (stream Resp) {}", ""),
        "t/v1/t.proto: service t.v1.Svc: missing rpc Watch (upstream has it)",
    );
}

#[test]
fn an_extra_rpc_is_reported() {
    assert_single(
        differences_after(
            "service Svc {",
            "service Svc {\n  rpc More(Req) returns (Resp) {}",
        ),
        "t/v1/t.proto: service t.v1.Svc: extra rpc More (not in upstream)",
    );
}

#[test]
fn a_changed_streaming_kind_is_reported() {
    assert_single(
        differences_after("rpc Watch(Req)", "rpc Watch(stream Req)"),
        "t/v1/t.proto: rpc /t.v1.Svc/Watch: client streaming: ours true, upstream false",
    );
}

#[test]
fn a_changed_method_type_is_reported() {
    assert_single(
        differences_after(
            "rpc Unary(Req) returns (Resp)",
            "rpc Unary(Req) returns (Req)",
        ),
        "t/v1/t.proto: rpc /t.v1.Svc/Unary: output type: ours \".t.v1.Req\", upstream \".t.v1.Resp\"",
    );
}

#[test]
fn a_missing_service_is_reported() {
    let differences = differences_after("service Svc {", "service Other {");
    assert!(differences.contains(&"t/v1/t.proto: missing service Svc (upstream has it)".into()));
    assert!(differences.contains(&"t/v1/t.proto: extra service Other (not in upstream)".into()));
}

#[test]
fn a_missing_field_is_reported() {
    assert_single(
        differences_after("Inner inner = 5;", ""),
        "t/v1/t.proto: message t.v1.Req: missing field inner (upstream has it)",
    );
}

#[test]
fn a_changed_field_type_is_reported() {
    assert_single(
        differences_after("string id = 1;", "bytes id = 1;"),
        "t/v1/t.proto: field t.v1.Req.id: type: ours Some(\"TYPE_BYTES\"), upstream Some(\"TYPE_STRING\")",
    );
}

#[test]
fn a_changed_label_in_a_nested_message_is_reported() {
    assert_single(
        differences_after("repeated string items = 1;", "string items = 1;"),
        "t/v1/t.proto: field t.v1.Req.Inner.items: label: ours Some(\"LABEL_OPTIONAL\"), upstream Some(\"LABEL_REPEATED\")",
    );
}

#[test]
fn dropping_proto3_optional_is_reported() {
    let differences = differences_after("optional uint64 version = 2;", "uint64 version = 2;");
    assert!(
        differences.contains(
            &"t/v1/t.proto: field t.v1.Req.version: proto3 optional: ours false, upstream true"
                .into()
        ),
        "{differences:?}"
    );
}

#[test]
fn moving_a_field_out_of_its_oneof_is_reported() {
    let differences = differences_after("    int32 b = 4;\n  }", "  }\n  int32 b = 4;");
    assert!(
        differences.contains(
            &"t/v1/t.proto: field t.v1.Req.b: oneof: ours None, upstream Some(\"kind\")".into()
        ),
        "{differences:?}"
    );
}

#[test]
fn a_changed_map_value_type_is_reported() {
    assert_single(
        differences_after("map<string, int64>", "map<string, int32>"),
        "t/v1/t.proto: field t.v1.Req.CountsEntry.value: type: ours Some(\"TYPE_INT32\"), upstream Some(\"TYPE_INT64\")",
    );
}

#[test]
fn changed_reservations_are_reported() {
    assert_single(
        differences_after("reserved \"old\";", "reserved \"older\";"),
        "t/v1/t.proto: message t.v1.Req: reserved names: ours [\"older\"], upstream [\"old\"]",
    );
    assert_single(
        differences_after("reserved 7;", "reserved 9;"),
        "t/v1/t.proto: message t.v1.Req: reserved numbers: ours [(9, 10)], upstream [(7, 8)]",
    );
}

#[test]
fn a_dropped_deprecation_is_reported() {
    let differences =
        differences_after("int32 legacy = 8 [deprecated = true];", "int32 legacy = 8;");
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(differences[0].starts_with("t/v1/t.proto: field t.v1.Req.legacy: options: ours None"));
}

#[test]
fn enum_value_changes_are_reported() {
    assert_single(
        differences_after("OK = 1;", "OK = 2;"),
        "t/v1/t.proto: enum value t.v1.Status.OK: number: ours 2, upstream 1",
    );
    assert_single(
        differences_after("OK = 1;", ""),
        "t/v1/t.proto: enum t.v1.Status: missing value OK (upstream has it)",
    );
}

#[test]
fn a_changed_go_package_is_reported() {
    assert_single(
        differences_after("t/v1;t\"", "t/v2;t\""),
        "t/v1/t.proto: go_package: ours Some(\"example.com/t/v2;t\"), upstream Some(\"example.com/t/v1;t\")",
    );
}

#[test]
fn a_changed_package_is_reported() {
    let differences = differences_after("package t.v1;", "package t.v2;");
    assert!(
        differences.contains(&"t/v1/t.proto: package: ours \"t.v2\", upstream \"t.v1\"".into()),
        "{differences:?}"
    );
}

#[test]
fn missing_and_extra_files_are_reported() {
    let ours = compile("t/v1/other.proto", BASE);
    let upstream = compile(FILE, BASE);
    let differences: Vec<_> = compare(&ours, &upstream)
        .differences
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        differences,
        [
            "descriptor set: missing file t/v1/t.proto (upstream has it)",
            "descriptor set: extra file t/v1/other.proto (not in upstream)",
        ]
    );
}

#[test]
fn a_reordered_declaration_is_still_reported() {
    // Messages are matched by name, so only the backstop notices a change of order.
    let resp = "message Resp {\n  Status status = 1;\n}\n";
    let reordered =
        BASE.replacen(resp, "", 1)
            .replacen("message Req {", &format!("{resp}\nmessage Req {{"), 1);
    let ours = compile(FILE, &reordered);
    let upstream = compile(FILE, BASE);
    let differences: Vec<_> = compare(&ours, &upstream)
        .differences
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        differences,
        [
            "t/v1/t.proto: descriptor differs from upstream in something not itemised (e.g. declaration order)"
        ]
    );
}

#[test]
fn comments_alone_are_not_a_difference() {
    let differences = differences_after("message Resp {", "// Our own words.\nmessage Resp {");
    assert!(differences.is_empty(), "{differences:?}");
}
