// WebSocketSession holds its wslay context (~8.8 KB) only while a frame, a fragmented message
// or a close is under way (io/websocket_session.h, "Memory"): idle connections must not pay
// for it, and releasing it between messages must change nothing on the wire.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "io/websocket_session.h"

namespace quire::io {
namespace {

class FakeTransport final : public Transport {
 public:
  void Send(std::string bytes) override { out += bytes; }
  size_t queued_bytes() const override { return 0; }
  void Close() override {}
  void Abort() override {}
  void PauseReading() override {}
  void ResumeReading() override {}
  std::string peer() const override { return "test"; }
  std::string out;
};

class Recorder final : public WebSocketSession::Delegate {
 public:
  void OnTextMessage(std::string_view text) override { texts.emplace_back(text); }
  void OnBinaryMessage(ByteView data) override { binaries.emplace_back(AsString(data)); }
  std::vector<std::string> texts, binaries;
};

// A masked client frame (7-, 16- or 64-bit length).
std::string ClientFrame(uint8_t opcode, std::string_view payload, bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>(n >> shift));
  }
  const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  for (uint8_t k : key) f.push_back(static_cast<char>(k));
  for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return f;
}

struct ServerFrame {
  uint8_t first_byte;
  std::string payload;
};

std::vector<ServerFrame> ParseServerFrames(const std::string& s) {
  std::vector<ServerFrame> out;
  size_t i = 0;
  while (i + 2 <= s.size()) {
    uint8_t b0 = static_cast<uint8_t>(s[i]);
    uint64_t n = static_cast<uint8_t>(s[i + 1]) & 0x7f;
    REQUIRE((static_cast<uint8_t>(s[i + 1]) & 0x80) == 0);  // server frames are unmasked
    i += 2;
    if (n == 126) {
      n = (uint64_t{static_cast<uint8_t>(s[i])} << 8) | static_cast<uint8_t>(s[i + 1]);
      i += 2;
    } else if (n == 127) {
      n = 0;
      for (int k = 0; k < 8; ++k) n = (n << 8) | static_cast<uint8_t>(s[i + k]);
      i += 8;
    }
    REQUIRE(i + n <= s.size());
    out.push_back({b0, s.substr(i, n)});
    i += n;
  }
  REQUIRE(i == s.size());
  return out;
}

TEST_CASE("IdleSessionHoldsNoWslayContextBetweenMessages") {
  FakeTransport t;
  Recorder r;
  WebSocketSession s(t, r, 1 << 20);
  CHECK_FALSE(s.holds_wslay_context());  // nothing received yet
  s.Feed(AsBytes(ClientFrame(0x1, "hello")));
  REQUIRE(r.texts == std::vector<std::string>{"hello"});
  CHECK_FALSE(s.holds_wslay_context());

  std::string big = ClientFrame(0x2, std::string(70'000, 'b'));  // 64-bit length
  SECTION("a frame read in part keeps it until the frame is complete") {
    s.Feed(AsBytes(std::string_view(big).substr(0, 5)));  // inside the extended length
    CHECK(s.holds_wslay_context());
    s.Feed(AsBytes(std::string_view(big).substr(5, 40'000)));
    CHECK(s.holds_wslay_context());
    s.Feed(AsBytes(std::string_view(big).substr(40'005)));
    CHECK_FALSE(s.holds_wslay_context());
    REQUIRE(r.binaries.size() == 1);
    CHECK(r.binaries[0] == std::string(70'000, 'b'));
  }
  SECTION("a fragmented message keeps it until its last fragment") {
    s.Feed(AsBytes(ClientFrame(0x1, "frag", /*fin=*/false)));
    CHECK(s.holds_wslay_context());
    s.Feed(AsBytes(ClientFrame(0x9, "p")));  // a control frame between fragments
    CHECK(s.holds_wslay_context());
    s.Feed(AsBytes(ClientFrame(0x0, "mented")));
    CHECK_FALSE(s.holds_wslay_context());
    CHECK(r.texts.back() == "fragmented");
  }
  SECTION("a close keeps it: the close state must survive") {
    s.Feed(AsBytes(ClientFrame(0x8, std::string("\x03\xe8", 2))));
    CHECK(s.holds_wslay_context());
    CHECK(s.close_received());
    CHECK(s.close_sent());
    size_t before = t.out.size();
    s.SendText("late");
    CHECK(t.out.size() == before);
  }
}

TEST_CASE("FramesSentWithoutAContextMatchWhatWslayWrites") {
  // The same messages sent by a session holding its context (inside Feed, through wslay) and
  // by an idle one (framed by the session): identical bytes, every length encoding.
  std::vector<std::string> payloads = {"",
                                       "x",
                                       std::string(125, 'a'),
                                       std::string(126, 'b'),
                                       std::string(65'535, 'c'),
                                       std::string(65'536, 'd')};
  FakeTransport idle_t;
  Recorder idle_r;
  WebSocketSession idle(idle_t, idle_r, 1 << 20);
  for (const std::string& p : payloads) idle.SendText(p);
  idle.SendBinary(AsBytes(std::string("\x00\x01", 2)));
  idle.SendPing();
  CHECK_FALSE(idle.holds_wslay_context());

  FakeTransport busy_t;
  class Echo final : public WebSocketSession::Delegate {
   public:
    explicit Echo(const std::vector<std::string>& p) : payloads_(p) {}
    void OnTextMessage(std::string_view) override {
      for (const std::string& p : payloads_) session->SendText(p);
      session->SendBinary(AsBytes(std::string("\x00\x01", 2)));
    }
    void OnBinaryMessage(ByteView) override {}
    WebSocketSession* session = nullptr;

   private:
    const std::vector<std::string>& payloads_;
  } echo(payloads);
  WebSocketSession busy(busy_t, echo, 1 << 20);
  echo.session = &busy;
  busy.Feed(AsBytes(ClientFrame(0x1, "go")));
  // wslay sends control frames ahead of queued data, so the ping is compared on its own.
  CHECK(idle_t.out == busy_t.out + std::string("\x89\x00", 2));
  CHECK(idle.bytes_out() == idle_t.out.size());
  auto frames = ParseServerFrames(idle_t.out);
  REQUIRE(frames.size() == payloads.size() + 2);
  for (size_t i = 0; i < payloads.size(); ++i) {
    CHECK(frames[i].first_byte == 0x81);
    CHECK(frames[i].payload == payloads[i]);
  }
  CHECK(frames[payloads.size()].first_byte == 0x82);
  CHECK(frames.back().first_byte == 0x89);
}

TEST_CASE("MessagesSplitAtEveryBoundaryAcrossReleasesArriveIntact") {
  std::string stream = ClientFrame(0x1, "one") + ClientFrame(0x2, std::string(200, 'z')) +
                       ClientFrame(0x1, "fr", false) + ClientFrame(0x9, "") +
                       ClientFrame(0x0, "ag") + ClientFrame(0x1, std::string(70'000, 'y'));
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{7}, size_t{4096}, stream.size()}) {
    INFO("chunk " << chunk);
    FakeTransport t;
    Recorder r;
    WebSocketSession s(t, r, 1 << 20);
    for (size_t i = 0; i < stream.size(); i += chunk) {
      s.Feed(AsBytes(std::string_view(stream).substr(i, chunk)));
    }
    CHECK(r.texts == std::vector<std::string>{"one", "frag", std::string(70'000, 'y')});
    CHECK(r.binaries == std::vector<std::string>{std::string(200, 'z')});
    auto frames = ParseServerFrames(t.out);
    REQUIRE(frames.size() == 1);  // the pong
    CHECK(frames[0].first_byte == 0x8A);
    CHECK_FALSE(s.holds_wslay_context());
    CHECK_FALSE(s.close_sent());
  }
}

}  // namespace
}  // namespace quire::io
