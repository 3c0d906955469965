//! The line reader on scripted reads: where lines are cut, what is kept,
//! what is skipped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::ReadBuf;

use super::*;

/// Gives its chunks one read at a time (a pipe's reads are cut anywhere).
struct Chunks(VecDeque<Vec<u8>>);

impl AsyncRead for Chunks {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(first) = self.0.front_mut() {
            let n = first.len().min(buf.remaining());
            buf.put_slice(&first[..n]);
            first.drain(..n);
            if first.is_empty() {
                self.0.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// What the reader makes of `chunks`: lines as they came (`Err(n)`: a
/// line of `n` bytes skipped), up to the end.
async fn read(chunks: Vec<Vec<u8>>, max: usize, spare: Spare) -> Vec<Result<Vec<u8>, usize>> {
    let (tx, mut rx) = mpsc::channel(1 << 16);
    read_lines(Chunks(chunks.into()), max, spare, tx).await;
    let mut out = Vec::new();
    while let Some(input) = rx.recv().await {
        match input {
            Input::Line(l) => out.push(Ok(l)),
            Input::Oversized(n) => out.push(Err(n)),
            Input::Eof => break,
        }
    }
    out
}

fn text(n: usize, tag: u8) -> Vec<u8> {
    let mut v = vec![tag; n - 1];
    v.push(b'\n');
    v
}

#[tokio::test]
async fn lines_are_cut_at_newlines_wherever_the_reads_end() {
    let big = text(3 * READ_LONG + 17, b'b');
    let mut all = Vec::new();
    for part in [text(10, b'a'), big.clone(), text(5, b'c'), text(2 * READ, b'd'), b"last".to_vec()] {
        all.extend(part);
    }
    let want: Vec<Result<Vec<u8>, usize>> =
        vec![Ok(text(10, b'a')), Ok(big), Ok(text(5, b'c')), Ok(text(2 * READ, b'd')), Ok(b"last".to_vec())];
    for size in [997, 4096, READ - 1, READ + 1, 300_000, all.len()] {
        let chunks = all.chunks(size).map(<[u8]>::to_vec).collect();
        assert_eq!(read(chunks, 1 << 30, Spare::default()).await, want, "reads of {size}");
    }
}

#[tokio::test]
async fn many_short_lines_in_one_read() {
    let all: Vec<u8> = (0..10_000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    let got = read(vec![all.clone()], 1 << 20, Spare::default()).await;
    assert_eq!(got.len(), 10_000);
    // One byte per read: the same lines, and the cut-off last one.
    let head = &all[..2000];
    let bytes = head.iter().map(|b| vec![*b]).collect();
    let want: Vec<Result<Vec<u8>, usize>> = head.split_inclusive(|b| *b == b'\n').map(|l| Ok(l.to_vec())).collect();
    assert_eq!(read(bytes, 1 << 20, Spare::default()).await, want);
    assert_eq!(got[9_999], Ok(b"9999\n".to_vec()));
}

#[tokio::test]
async fn a_line_over_the_limit_is_skipped_and_the_next_one_read() {
    for max in [100, READ, READ + 5, 3 * READ_LONG] {
        let long = text(max + 1, b'x');
        let mut all = text(max, b'a');
        all.extend(&long);
        all.extend(text(3, b'z'));
        all.extend(vec![b'y'; max + 2]);
        for size in [max / 3 + 1, READ, all.len()] {
            let chunks = all.chunks(size).map(<[u8]>::to_vec).collect();
            let got = read(chunks, max, Spare::default()).await;
            assert_eq!(got, vec![Ok(text(max, b'a')), Err(max + 1), Ok(text(3, b'z')), Err(max + 2)], "max {max}");
        }
    }
}

#[tokio::test]
async fn a_long_lines_buffer_is_reused_once_written() {
    let spare = Spare::default();
    let big = text(READ_LONG, b'b');
    let got = read(vec![big.clone()], 1 << 30, spare.clone()).await;
    let Ok(line) = got.into_iter().next().unwrap() else { panic!("a line") };
    let at = line.as_ptr();
    let mut sink = Vec::new();
    let (tx, rx) = mpsc::channel(1);
    tx.send(line.into()).await.unwrap();
    drop(tx);
    write_frames(&mut sink, spare.clone(), rx).await;
    assert_eq!(sink, big);
    let got = read(vec![big.clone()], 1 << 30, spare.clone()).await;
    assert_eq!(got[0].as_ref().map(|l| l.as_ptr()), Ok(at), "the written buffer was read into again");
    // Short lines' buffers are not kept.
    spare.give(b"short\n".to_vec());
    assert!(spare.take().is_none());
}
