// WebSocketSession: RFC 6455 framing on wslay's event API (server context), driven sans-I/O over
// an io::Transport. Received bytes are fed in with Feed(); wslay reads them from that buffer
// and writes through a send callback that appends to Transport::Send. wslay answers pings and
// close frames itself and closes on protocol errors (1002), invalid UTF-8 in text (1007) and
// messages over the limit (1009).
//
// The session never closes the transport: after a close frame was sent (by us, or by wslay in
// answer to the peer or to a protocol error), close_sent() is true and the owner closes the
// transport. Loop thread only.
//
// Memory: a wslay event context costs ~8.8 KB, more than everything else an idle connection
// holds. The session creates it when bytes arrive and frees it again once they formed complete
// frames (no frame or fragmented message half-read, nothing queued, no close under way): a
// fresh context then behaves exactly like the old one. While there is none, outgoing data
// frames are framed here (a server frame is a header and the unmasked payload).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/types.h"
#include "io/transport.h"

struct wslay_event_context;

namespace quire::io {

class WebSocketSession {
 public:
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // A complete text message (valid UTF-8; borrowed for the call).
    virtual void OnTextMessage(std::string_view text) = 0;
    // A complete binary message (borrowed for the call).
    virtual void OnBinaryMessage(ByteView data) = 0;
  };

  // `transport` and `delegate` must outlive the session. `max_message_bytes` bounds a received
  // message (wslay closes with 1009 above it).
  WebSocketSession(Transport& transport, Delegate& delegate, uint64_t max_message_bytes);
  ~WebSocketSession();
  WebSocketSession(const WebSocketSession&) = delete;
  WebSocketSession& operator=(const WebSocketSession&) = delete;

  // Consumes `data` (borrowed): delivers complete messages to the delegate, then writes what
  // wslay queued (pongs, close frames, messages queued by the delegate meanwhile).
  void Feed(ByteView data);

  // Queues a text message (copied). Written at once unless called from inside Feed(), in
  // which case it is written when Feed() returns. No-op once a close frame was queued.
  void SendText(std::string_view text);
  // Queues a binary message (copied); otherwise as SendText.
  void SendBinary(ByteView data);
  void SendPing();
  // Queues a close frame with `code` and `reason` and writes it. Idempotent.
  void StartClose(uint16_t code, std::string_view reason);

  // A close frame was queued (by StartClose, by wslay answering a close, or on a protocol
  // error); nothing more will be sent and the owner should close the transport.
  bool close_sent() const;
  bool close_received() const;
  // The code of the close frame we sent (0 before).
  uint16_t close_code_sent() const;
  // Bytes written to the transport and not yet on the wire, plus anything still in wslay.
  size_t queued_bytes() const;
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }
  // Whether the wslay context is allocated now (see Memory above; for tests).
  bool holds_wslay_context() const { return ctx_ != nullptr; }

 private:
  friend struct WebSocketSessionCallbacks;
  void Flush();
  bool EnsureContext();
  void ReleaseContextIfIdle();
  // Follows the client's frame headers over the fed bytes (see at_frame_boundary()).
  void TrackFrames(ByteView data);
  bool at_frame_boundary() const { return header_len_ == 0 && payload_left_ == 0; }
  // Queues a complete unfragmented frame without wslay (only while there is no context).
  void SendFrame(uint8_t opcode, ByteView payload);

  Transport& transport_;
  Delegate& delegate_;
  wslay_event_context* ctx_ = nullptr;
  uint64_t max_message_bytes_;
  bool failed_ = false;  // out of memory: the session behaves as closed
  // Frame tracking: header bytes of the frame being read, payload bytes still to come, and
  // whether a fragmented data message is open.
  uint8_t header_[14] = {};
  size_t header_len_ = 0;
  uint64_t payload_left_ = 0;
  bool in_fragmented_message_ = false;
  ByteView input_;      // the bytes being fed; wslay's recv callback reads from here
  std::string output_;  // frames wslay produced since the last Transport::Send
  bool in_feed_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
};

}  // namespace quire::io
