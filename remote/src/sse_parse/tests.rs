use super::*;

fn all(p: &mut Parser, chunks: &[&[u8]]) -> Vec<Event> {
    chunks.iter().flat_map(|c| p.feed(c).unwrap()).collect()
}

fn msg(data: &str, id: Option<&str>) -> Event {
    Event { event: String::new(), data: data.into(), id: id.map(Into::into), retry: None }
}

#[test]
fn one_event_per_blank_line_with_id_and_type() {
    let mut p = Parser::new(1 << 20);
    let evs = all(&mut p, &[b"event: message\nid: 7\ndata: {\"a\":1}\n\n"]);
    assert_eq!(
        evs,
        vec![Event { event: "message".into(), data: "{\"a\":1}".into(), id: Some("7".into()), retry: None }]
    );
    assert_eq!(p.last_id(), Some("7"));
}

#[test]
fn data_is_kept_byte_for_byte_across_any_chunking() {
    let stream = "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"t\":\"é  x\"}}\r\n\r\ndata:a\ndata: b\n\n";
    for split in 0..stream.len() {
        let (a, b) = stream.as_bytes().split_at(split);
        let mut p = Parser::new(1 << 20);
        let evs = all(&mut p, &[a, b]);
        assert_eq!(
            evs,
            vec![msg("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"t\":\"é  x\"}}", None), msg("a\nb", None)],
            "split at {split}"
        );
    }
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    let mut p = Parser::new(1 << 20);
    let evs = all(&mut p, &[b": ping\nfoo: bar\ndata: x\n\n: keepalive\n\n"]);
    assert_eq!(evs, vec![msg("x", None)]);
}

#[test]
fn an_id_without_data_still_counts_for_resumption() {
    let mut p = Parser::new(1 << 20);
    let evs = all(&mut p, &[b"id: prime-1\nretry: 1500\ndata\n\n"]);
    // `data` with no colon is an empty data line: dispatched, empty.
    assert_eq!(evs[0].data, "");
    assert_eq!(evs[0].retry, Some(1500));
    let evs = all(&mut p, &[b"id: prime-2\n\n"]);
    assert_eq!(evs, vec![Event { id: Some("prime-2".into()), ..Event::default() }]);
    assert_eq!(p.last_id(), Some("prime-2"));
}

#[test]
fn an_unfinished_event_is_not_dispatched() {
    let mut p = Parser::new(1 << 20);
    assert!(all(&mut p, &[b"data: half"]).is_empty());
    assert!(all(&mut p, &[b"\n"]).is_empty());
    assert_eq!(all(&mut p, &[b"\n"]), vec![msg("half", None)]);
}

#[test]
fn long_lines_and_bad_utf8_are_refused() {
    let mut p = Parser::new(8);
    assert_eq!(p.feed(b"data: 0123456789"), Err(ParseError::TooLong(8)));
    let mut p = Parser::new(64);
    assert_eq!(p.feed(b"data: \xff\n"), Err(ParseError::NotUtf8));
}

#[test]
fn a_leading_bom_is_dropped() {
    let mut p = Parser::new(64);
    assert_eq!(all(&mut p, &["\u{feff}data: x\n\n".as_bytes()]), vec![msg("x", None)]);
}

#[test]
fn a_resumed_stream_forgets_the_half_event_but_not_the_id() {
    let mut p = Parser::new(64);
    assert_eq!(all(&mut p, &[b"id: 3\ndata: x\n\ndata: half"]), vec![msg("x", Some("3"))]);
    p.resume();
    assert_eq!(p.last_id(), Some("3"));
    assert_eq!(all(&mut p, &[b"data: whole\n\n"]), vec![msg("whole", None)]);
}

#[test]
fn many_short_data_lines_cannot_grow_one_event_past_the_limit() {
    let mut p = Parser::new(16);
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = p.feed(b"data: 0123\n") {
            err = Some(e);
            break;
        }
    }
    assert_eq!(err, Some(ParseError::TooLong(16)));
}
