//! OTLP logs: the `ExportLogsServiceRequest` of opentelemetry-proto
//! (`collector/logs/v1`, `logs/v1`, `common/v1`, `resource/v1`) encoded
//! with [`super::pb`]. Field numbers are the official ones; the tests
//! compare with bytes the official Python definitions wrote.

use super::pb::Pb;

/// An attribute value (`AnyValue`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Value>),
}

/// `SeverityNumber`s Latch uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn number(self) -> u64 {
        match self {
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }
}

/// One `LogRecord`.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity: Severity,
    pub body: String,
    pub attributes: Vec<(String, Value)>,
    pub event_name: String,
}

/// Who sends: the resource attributes and the instrumentation scope.
#[derive(Clone, Debug)]
pub struct Source {
    pub resource: Vec<(String, Value)>,
    pub scope_name: String,
    pub scope_version: String,
}

/// `ExportLogsServiceRequest { resource_logs: [ResourceLogs { resource,
/// scope_logs: [ScopeLogs { scope, log_records }] }] }`.
pub fn request(source: &Source, records: &[Record]) -> Vec<u8> {
    let mut req = Pb::new();
    req.message(1, |rl| {
        rl.message(1, |res| attributes(res, 1, &source.resource));
        rl.message(2, |sl| {
            sl.message(1, |scope| {
                scope.string(1, &source.scope_name);
                scope.string(2, &source.scope_version);
            });
            for r in records {
                sl.message(2, |m| record(m, r));
            }
        });
    });
    req.into_bytes()
}

/// A `LogRecord`, fields in number order.
fn record(m: &mut Pb, r: &Record) {
    m.fixed64(1, r.time_unix_nano);
    m.uint(2, r.severity.number());
    m.string(3, r.severity.text());
    m.message(5, |body| any(body, &Value::Str(r.body.clone())));
    attributes(m, 6, &r.attributes);
    m.fixed64(11, r.observed_time_unix_nano);
    m.string(12, &r.event_name);
}

/// Repeated `KeyValue`s as field `field`.
fn attributes(m: &mut Pb, field: u32, attrs: &[(String, Value)]) {
    for (k, v) in attrs {
        m.message(field, |kv| {
            kv.string(1, k);
            kv.message(2, |a| any(a, v));
        });
    }
}

/// The fields of an `AnyValue`.
fn any(m: &mut Pb, v: &Value) {
    match v {
        Value::Str(s) => m.string(1, s),
        Value::Bool(b) => m.bool(2, *b),
        Value::Int(i) => m.int64(3, *i),
        Value::Array(items) => m.message(5, |arr| {
            for item in items {
                arr.message(1, |a| any(a, item));
            }
        }),
    }
}

/// `ExportLogsServiceResponse.partial_success.rejected_log_records`: how
/// many records the collector refused in a request it otherwise accepted.
pub fn rejected_in(response: &[u8]) -> u64 {
    super::pb::find_bytes(response, 1).and_then(|p| super::pb::find_varint(p, 1)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The same request written by opentelemetry-proto 1.45.2 (Python,
    /// `SerializeToString`).
    const OFFICIAL: &str = "0ab1010a190a170a0c736572766963652e6e616d6512070a056c617463681293010a0e0a056c61746368120530\
                            2e312e3012800109c0d47e3dfe9c9717100d1a045741524e2a060a0464656e7932140a0e6c617463682e617564\
                            69742e69641202182a321d0a0d6c617463682e726561736f6e73120c2a0a0a030a01780a030a017932120a036e\
                            6567120b18ffffffffffffffffff0132070a0162120210015900025851fe9c9717620a6c617463682e63616c6c";

    #[test]
    fn a_request_is_byte_for_byte_what_the_official_definitions_write() {
        let source = Source {
            resource: vec![("service.name".into(), Value::Str("latch".into()))],
            scope_name: "latch".into(),
            scope_version: "0.1.0".into(),
        };
        let r = Record {
            time_unix_nano: 1_700_000_000_123_000_000,
            observed_time_unix_nano: 1_700_000_000_456_000_000,
            severity: Severity::Warn,
            body: "deny".into(),
            attributes: vec![
                ("latch.audit.id".into(), Value::Int(42)),
                ("latch.reasons".into(), Value::Array(vec![Value::Str("x".into()), Value::Str("y".into())])),
                ("neg".into(), Value::Int(-1)),
                ("b".into(), Value::Bool(true)),
            ],
            event_name: "latch.call".into(),
        };
        assert_eq!(hex(&request(&source, &[r])), OFFICIAL);
    }

    #[test]
    fn partial_success_is_read() {
        // partial_success { rejected_log_records: 3, error_message: "x" }
        assert_eq!(rejected_in(&[0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, b'x']), 3);
        assert_eq!(rejected_in(&[]), 0);
        assert_eq!(rejected_in(b"{\"not\":\"protobuf\"}"), 0);
    }
}
