//! The `text/event-stream` format (the WHATWG "server-sent events"
//! parsing rules), incrementally: bytes in as they arrive, whole events out.
//! Pure; the transports own the IO.

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; empty means the default type, `message`.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field of this event, if it carried one.
    pub id: Option<String>,
    /// A `retry:` field: the reconnection delay in milliseconds.
    pub retry: Option<u64>,
}

impl Event {
    /// A JSON-RPC message event (the default type or `message`).
    pub fn is_message(&self) -> bool {
        self.event.is_empty() || self.event == "message"
    }
}

/// Why a stream cannot be parsed further.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("an event-stream line or event is longer than {0} bytes")]
    TooLong(usize),
    #[error("an event-stream line is not UTF-8")]
    NotUtf8,
}

/// Incremental parser. `feed` returns the events completed by the bytes
/// given; a partial line or event waits for more.
#[derive(Debug)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one
    /// belongs to that line break.
    after_cr: bool,
    started: bool,
    current: Event,
    has_data: bool,
    /// The last event ID seen (it persists across events, per the spec).
    last_id: Option<String>,
    max_line: usize,
}

impl Parser {
    /// A parser that refuses lines longer than MAX_LINE bytes.
    pub fn new(max_line: usize) -> Parser {
        Parser {
            line: Vec::new(),
            after_cr: false,
            started: false,
            current: Event::default(),
            has_data: false,
            last_id: None,
            max_line,
        }
    }

    /// The last event ID the stream set (for `Last-Event-ID`).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Forgets a half-received line or event (the connection dropped) but
    /// keeps the last event ID, for the resumed stream.
    pub fn resume(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.started = false;
        self.current = Event::default();
        self.has_data = false;
    }

    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<Vec<Event>, ParseError> {
        let mut out = Vec::new();
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n' || *b == b'\r') {
                None => {
                    self.push(bytes)?;
                    break;
                }
                Some(i) => {
                    self.push(&bytes[..i])?;
                    let cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    if cr {
                        match bytes.first() {
                            Some(b'\n') => bytes = &bytes[1..],
                            None => self.after_cr = true,
                            _ => {}
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, &mut out)?;
                }
            }
        }
        Ok(out)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(ParseError::TooLong(self.max_line));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), ParseError> {
        let mut line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            let ev = std::mem::take(&mut self.current);
            if self.has_data {
                out.push(ev);
            } else if ev.id.is_some() || ev.retry.is_some() {
                // An event without data is not dispatched, but its id and
                // retry still count (servers prime resumption this way).
                out.push(Event { event: ev.event, data: String::new(), id: ev.id, retry: ev.retry });
            }
            self.has_data = false;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => self.current.event = value.to_owned(),
            "data" => {
                if self.current.data.len() + value.len() + 1 > self.max_line {
                    return Err(ParseError::TooLong(self.max_line));
                }
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.current.id = Some(value.to_owned());
                self.last_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.current.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
