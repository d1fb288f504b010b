// PeerState: where a connection's three coroutines on one context stand
// (the reader, the writer, the watchdog), and whether the connection may
// still move to an ingest context. Each coroutine changes it by named
// transitions and reads it by named questions. Pure; not thread-safe (a
// peer is touched only on its context's thread).
#pragma once

namespace gradientd::server {

class PeerState {
 public:
  // --- Questions. ---
  // The reader reads on (and waits out back-pressure) while this holds.
  bool reading() const { return !write_failed_ && !abandoned_; }
  // The writer ends once the queue is empty and this holds.
  bool reader_ended() const { return reader_ended_; }
  // The watchdog watches while this holds.
  bool watching() const { return !writer_ended_ && !abandoned_; }
  // The shutdown grace period is over: the reader drops what it has not
  // handled, the writer what it has not sent.
  bool abandoned() const { return abandoned_; }
  // Whether the reader may still stop for a move (once per connection).
  bool may_move() const { return may_move_; }
  // Once all three have ended: whether Serve should move the connection.
  bool wants_move() const { return parked_for_move_ && !write_failed_; }
  // Whether the connection ends cleanly (over TLS: with close_notify).
  bool closes_cleanly() const { return !write_failed_ && !abandoned_; }

  // --- Transitions. ---
  // The reader stopped so that the peer can move to an ingest context.
  void ReaderParkedForMove() { parked_for_move_ = true; }
  void ReaderEnded() { reader_ended_ = true; }
  // A write failed or timed out: the client is given up on.
  void WriteFailed() { write_failed_ = true; }
  // The writer has ended (the reader before it): so does the watchdog.
  void WriterEnded() { writer_ended_ = true; }
  void Abandon() { abandoned_ = true; }
  // Serve starts the three again, on an ingest context or (if the move
  // failed) here; either way the connection never moves again.
  void Moved() { parked_for_move_ = reader_ended_ = writer_ended_ = may_move_ = false; }

 private:
  bool reader_ended_ = false;
  bool write_failed_ = false;
  bool writer_ended_ = false;
  bool parked_for_move_ = false;
  bool abandoned_ = false;
  bool may_move_ = true;
};

}  // namespace gradientd::server
