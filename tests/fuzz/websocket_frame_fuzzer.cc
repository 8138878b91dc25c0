// libFuzzer target: WebSocket frame handling. Bytes from a client are fed to the server's
// io::WebSocketSession (wslay, server context) over an in-memory Transport, split at
// input-chosen boundaries. Invariants: every delivered text message is valid UTF-8 and within
// the message limit; after a close frame is sent nothing more is delivered.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "io/transport.h"
#include "io/websocket_session.h"

namespace {

constexpr uint64_t kMaxMessage = 64 << 10;

// Structural UTF-8 check (lead byte and continuation bytes); wslay checks more (overlongs,
// surrogates), so anything it delivers passes this.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    if (c < 0x80) n = 0;
    else if ((c >> 5) == 0x6) n = 1;
    else if ((c >> 4) == 0xe) n = 2;
    else if ((c >> 3) == 0x1e) n = 3;
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n + 1;
  }
  return true;
}

class MemoryTransport final : public quire::io::Transport {
 public:
  void Send(std::string bytes) override { sent += bytes.size(); }
  size_t queued_bytes() const override { return 0; }
  void Close() override { closed = true; }
  void Abort() override { closed = true; }
  void PauseReading() override {}
  void ResumeReading() override {}
  std::string peer() const override { return "fuzz"; }
  size_t sent = 0;
  bool closed = false;
};

class Delegate final : public quire::io::WebSocketSession::Delegate {
 public:
  explicit Delegate(quire::io::WebSocketSession** session) : session_(session) {}
  void OnTextMessage(std::string_view text) override {
    if (text.size() > kMaxMessage || !ValidUtf8(text)) std::abort();
    Check();
    if (text.size() % 3 == 0) (*session_)->SendText(text);  // echo some, as the server answers
  }
  void OnBinaryMessage(quire::ByteView data) override {
    if (data.size() > kMaxMessage) std::abort();
    Check();
  }

 private:
  void Check() {
    if (*session_ != nullptr && (*session_)->close_sent()) std::abort();
  }
  quire::io::WebSocketSession** session_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryTransport transport;
  quire::io::WebSocketSession* ptr = nullptr;
  Delegate delegate(&ptr);
  quire::io::WebSocketSession session(transport, delegate, kMaxMessage);
  ptr = &session;
  // The first byte picks the chunk size (1..256): wslay must cope with any split.
  size_t chunk = size > 0 ? static_cast<size_t>(data[0]) + 1 : 1;
  size_t off = size > 0 ? 1 : 0;
  while (off < size && !session.close_sent()) {
    size_t n = std::min(chunk, size - off);
    session.Feed(quire::ByteView(data + off, n));
    off += n;
  }
  if (!session.close_sent()) session.StartClose(1000, "bye");
  return 0;
}
