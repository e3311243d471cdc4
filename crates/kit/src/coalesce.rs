//! Write coalescing for server connections: many responses that become ready together leave in
//! one `write` instead of one each.
//!
//! hyper's HTTP/2 server runs each request in its own task and the connection in another. When a
//! group of requests completes at once (a group-committed batch of etcd writes, a placement
//! dissemination round) every handler wakes the connection task as it finishes, and tokio runs
//! that task right after the handler that woke it, so h2 flushes each response by itself: one
//! syscall and one TCP segment per response, on the server and again on the client. grpc-go
//! avoids this with its loopy writer, which flushes only when no more frames are queued.
//!
//! [`Coalescing`] gets the same effect under h2 without touching it: writes go into a buffer, and
//! the first `poll_flush` after new data only re-schedules the connection task (a self-wake
//! puts it behind the tasks already queued on its worker) instead of writing. By the time it runs
//! again the other handlers have queued their responses too, and the second flush writes them
//! all. An idle connection pays one extra trip through the run queue per flush.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Buffered bytes above which a write waits for the buffer to drain first (back-pressure, so a
/// slow reader cannot grow it without bound).
const HIGH_WATER: usize = 256 * 1024;
/// Buffer capacity kept between bursts; a larger one is released once drained (placement and
/// the scheduler hold thousands of mostly idle streams, which should not keep a burst's worth of
/// memory each; allocating per burst costs far less than the write it saves).
const RETAINED: usize = 1024;

/// An I/O stream whose flushes are deferred by one scheduling round (see the module docs).
#[derive(Debug)]
pub struct Coalescing<T> {
    inner: T,
    buf: Vec<u8>,
    /// Bytes of `buf` already written to `inner`.
    written: usize,
    /// Whether this flush already gave way once; the next poll writes.
    yielded: bool,
}

impl<T> Coalescing<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            written: 0,
            yielded: false,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Bytes accepted but not yet written to the inner stream.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }
}

impl<T: AsyncWrite + Unpin> Coalescing<T> {
    /// Writes the whole buffer to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        if self.buf.capacity() > RETAINED {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalescing<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalescing<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending() >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        let mut n = 0;
        for b in bufs {
            this.buf.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending() > 0 {
            if !this.yielded {
                this.yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(this.poll_drain(cx))?;
        }
        this.yielded = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.yielded = false;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected for Coalescing<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        task::Wake,
    };

    use super::*;

    /// Counts wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A sink that records each write call and accepts at most `limit` bytes per call.
    #[derive(Default)]
    struct Sink {
        writes: Vec<Vec<u8>>,
        limit: usize,
        flushes: usize,
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = data.len().min(self.limit);
            self.writes.push(data[..n].to_vec());
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn context() -> (Arc<Counter>, std::task::Waker) {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        (Arc::clone(&counter), Arc::clone(&counter).into())
    }

    /// A coalescing writer over a sink taking at most `limit` bytes per write call.
    fn over_sink(limit: usize) -> Coalescing<Sink> {
        Coalescing::new(Sink {
            limit,
            ..Sink::default()
        })
    }

    #[test]
    fn first_flush_yields_then_writes_everything_in_one_call() {
        let (wakes, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut io = over_sink(usize::MAX);
        let mut io = Pin::new(&mut io);
        assert!(matches!(
            io.as_mut().poll_write(&mut cx, b"one "),
            Poll::Ready(Ok(4))
        ));
        assert!(io.as_mut().poll_flush(&mut cx).is_pending());
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "the flush re-schedules its task"
        );
        assert!(io.get_ref().writes.is_empty());
        let parts = [IoSlice::new(b"two "), IoSlice::new(b"three")];
        assert!(matches!(
            io.as_mut().poll_write_vectored(&mut cx, &parts),
            Poll::Ready(Ok(9))
        ));
        assert!(matches!(
            io.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(io.get_ref().writes, vec![b"one two three".to_vec()]);
        assert_eq!(io.get_ref().flushes, 1);
        assert_eq!(io.pending(), 0);
        // Nothing buffered: a flush goes straight through, without a yield.
        assert!(matches!(
            io.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(io.get_ref().flushes, 2);
    }

    #[test]
    fn short_writes_are_resumed_until_the_buffer_is_out() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut io = over_sink(3);
        let mut io = Pin::new(&mut io);
        assert!(io.as_mut().poll_write(&mut cx, b"abcdefgh").is_ready());
        assert!(io.as_mut().poll_flush(&mut cx).is_pending());
        assert!(matches!(
            io.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(io.get_ref().writes.concat(), b"abcdefgh".to_vec());
        assert_eq!(io.get_ref().writes.len(), 3);
    }

    #[test]
    fn shutdown_writes_what_is_buffered() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut io = over_sink(usize::MAX);
        let mut io = Pin::new(&mut io);
        assert!(io.as_mut().poll_write(&mut cx, b"bye").is_ready());
        assert!(matches!(
            io.as_mut().poll_shutdown(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(io.get_ref().writes, vec![b"bye".to_vec()]);
    }

    #[test]
    fn a_full_buffer_drains_before_taking_more() {
        let (_, waker) = context();
        let mut cx = Context::from_waker(&waker);
        let mut io = over_sink(usize::MAX);
        let mut io = Pin::new(&mut io);
        let big = vec![7u8; HIGH_WATER];
        assert!(io.as_mut().poll_write(&mut cx, &big).is_ready());
        assert!(io.get_ref().writes.is_empty());
        assert!(io.as_mut().poll_write(&mut cx, b"x").is_ready());
        assert_eq!(
            io.get_ref().writes.len(),
            1,
            "the full buffer went out first"
        );
        assert_eq!(io.pending(), 1);
    }
}
