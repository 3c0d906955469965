use super::*;

fn one(line: &str) -> Envelope<'_> {
    match server_line(line.as_bytes()) {
        Ok(Peeked::One(env)) => env,
        Ok(Peeked::Batch(_)) => panic!("batch: {line}"),
        Err(r) => panic!("{line}: refused: {}", r.error),
    }
}

fn refused(line: &[u8]) -> Refused<'_> {
    match server_line(line) {
        Ok(_) => panic!("accepted: {}", String::from_utf8_lossy(line)),
        Err(r) => r,
    }
}

#[test]
fn reads_the_envelope_like_the_strict_reader() {
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}],"isError":true}}"#,
        r#"{"jsonrpc":"2.0","id":"a b","result":{"tools":[{"name":"x","inputSchema":{}}],"nextCursor":"c"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"roots/list"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":18446744073709551617,"progress":2}}"#,
        r#" { "id" : 4 , "result" : { "resultType" : "input_required" , "requestState" : "s" } } "#,
        r#"{"result":{},"id":5,"jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","id":6,"result":[1,{"a":[]}]}"#,
        r#"{"jsonrpc":"2.0","id":6,"result":null}"#,
        r#"{}"#,
    ];
    for line in lines {
        let fast = one(line);
        let Ok(Line::One(strict)) = envelope::parse(line.as_bytes()) else { panic!("{line}") };
        assert_eq!(fast.id.map(RawValue::get), strict.id.map(RawValue::get), "{line}");
        assert_eq!(fast.method(), strict.method(), "{line}");
        assert_eq!(fast.is_response(), strict.is_response(), "{line}");
        assert_eq!(fast.has_error, strict.has_error, "{line}");
        let token = |e: &Envelope<'_>| e.params.as_ref().and_then(|p| p.progress_token).map(|t| t.get().to_owned());
        assert_eq!(token(&fast), token(&strict), "{line}");
        let (f, s) = (fast.result.unwrap_or_default(), strict.result.unwrap_or_default());
        assert_eq!(f.is_error, s.is_error, "{line}");
        assert_eq!(f.tools.map(RawValue::get), s.tools.map(RawValue::get), "{line}");
        assert_eq!(f.result_type.map(RawValue::get), s.result_type.map(RawValue::get), "{line}");
        assert_eq!(f.request_state.map(RawValue::get), s.request_state.map(RawValue::get), "{line}");
    }
}

#[test]
fn text_inside_strings_never_moves_the_envelope() {
    // Quotes, brackets and keys inside strings (escaped quotes and
    // backslashes included) are content.
    let line =
        r#"{"jsonrpc":"2.0","result":{"content":[{"type":"text","text":"\"}],\"id\":9,\"result\":{\\"}]},"id":2}"#;
    let env = one(line);
    assert_eq!(env.id.unwrap().get(), "2");
    let tail = r#"{"jsonrpc":"2.0","id":1,"result":{"text":"ends with a backslash \\"}}"#;
    assert_eq!(one(tail).id.unwrap().get(), "1");
}

#[test]
fn an_envelope_that_cannot_be_read_safely_is_refused() {
    for bad in [
        &br#"{"jsonrpc":"2.0","id":1,"id":2,"result":{}}"#[..],
        br#"{"jsonrpc":"2.0","id":1,"\u0069d":2,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"ID":2,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{},"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{},"Result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","resultType":"input_required"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"requestState":"a","requestState":"b"}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"rm"}]}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"isError":true,"isError":false}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{}}{"jsonrpc":"2.0","id":2,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{}} x"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"text":"open}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"a":[}]}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"a":[1,2}"#,
        br#"{"jsonrpc":"2.0","id":01,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":,"result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":}"#,
        br#"{"jsonrpc":"2.0","id":1 "result":{}}"#,
        br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"x"},]}}"#,
        b"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"result\":{}}",
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"t\":\"ends in a backslash\\",
        br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progressToken":2}"#,
        b"",
        b"   ",
        b"hello from the server",
        b"42",
    ] {
        refused(bad);
    }
}

#[test]
fn a_refused_result_names_its_id_only_when_it_was_read_once() {
    let r = refused(br#"{"jsonrpc":"2.0","id":5,"result":{},"result":{}}"#);
    assert_eq!(r.id.unwrap().get(), "5");
    assert!(refused(br#"{"jsonrpc":"2.0","result":{},"result":{},"id":5}"#).id.is_none());
    assert!(refused(br#"{"jsonrpc":"2.0","id":5,"id":6,"result":{}}"#).id.unwrap().get() == "5");
}

#[test]
fn content_the_shim_does_not_read_is_the_clients_business() {
    // Invalid UTF-8 and odd scalars inside a result's content: not
    // validated here (the client parses the result), the envelope is read.
    let line = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"\xff\xfe\"}],\"n\":tru}}";
    match server_line(line) {
        Ok(Peeked::One(env)) => assert_eq!(env.id.unwrap().get(), "1"),
        _ => panic!("refused"),
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |n: usize| format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"a":{}{}}}}}"#, "[".repeat(n), "]".repeat(n));
    assert!(server_line(deep(1000).as_bytes()).is_ok());
    assert!(server_line(deep(5000).as_bytes()).is_err());
}

#[test]
fn batches_go_to_the_strict_reader() {
    match server_line(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#) {
        Ok(Peeked::Batch(items)) => assert_eq!(items.len(), 1),
        _ => panic!("not a batch"),
    }
    assert!(server_line(br#"[{"jsonrpc":"2.0","id":1,"result":{}}"#).is_err());
}

/// `cargo test -p latch-shim --release -- --ignored --nocapture peek_cost`:
/// the shim's reading of a 1 MiB result, strict against envelope only.
#[test]
#[ignore = "a measurement, not a check"]
fn peek_cost() {
    let text = "x".repeat(1 << 20);
    // JSON inside the text, as many tools return it: a quote in 7 bytes.
    let json = r#"{\"name\":\"file-0001.txt\",\"size\":1234,\"dir\":false},"#.repeat(1 << 20 >> 6);
    // The worst case: an escaped quote in every 5 bytes.
    let escaped = "a\\\"b ".repeat(1 << 18);
    for (what, body) in
        [("1 MiB of plain text", &text), ("1 MiB of JSON as text", &json), ("1 MiB of escaped quotes", &escaped)]
    {
        let line = format!(r#"{{"jsonrpc":"2.0","id":7,"result":{{"content":[{{"type":"text","text":"{body}"}}]}}}}"#);
        let time = |f: &dyn Fn() -> bool| {
            let t = std::time::Instant::now();
            for _ in 0..50 {
                assert!(f());
            }
            t.elapsed().as_secs_f64() * 1e6 / 50.0
        };
        let strict = time(&|| envelope::parse(line.as_bytes()).is_ok());
        let peek = time(&|| server_line(line.as_bytes()).is_ok());
        println!("{what}: strict {strict:.0} µs, envelope only {peek:.0} µs");
    }
}

/// `cargo test -p latch-shim --release -- --ignored --nocapture arguments_cost`:
/// what the shim spends on a call with a 1 MiB argument: the strict
/// reading of the line, then the walk for keys that fold together.
#[test]
#[ignore = "a measurement, not a check"]
fn arguments_cost() {
    let line = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(1 << 20)
    );
    let time = |f: &dyn Fn() -> bool| {
        let t = std::time::Instant::now();
        for _ in 0..50 {
            assert!(f());
        }
        t.elapsed().as_secs_f64() * 1e6 / 50.0
    };
    let Ok(Line::One(env)) = envelope::parse(line.as_bytes()) else { panic!("not one") };
    let args = env.params.as_ref().and_then(|p| p.arguments).expect("arguments").get();
    let parse = time(&|| envelope::parse(line.as_bytes()).is_ok());
    let walk = time(&|| crate::fold::check_arguments(args).is_ok());
    println!("1 MiB argument: envelope {parse:.0} µs, folded-key walk {walk:.0} µs");
}
