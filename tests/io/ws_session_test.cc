// WebSocketSession (wslay server context, sans-I/O) against scripted client frames fed at
// every chunk boundary, over an in-memory Transport.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "io/websocket_session.h"

namespace quire::io {
namespace {

class FakeTransport final : public Transport {
 public:
  void Send(std::string bytes) override { out += bytes; }
  size_t queued_bytes() const override { return queued; }
  void Close() override { ++closes; }
  void Abort() override { ++aborts; }
  void PauseReading() override {}
  void ResumeReading() override {}
  std::string peer() const override { return "test"; }
  std::string out;
  size_t queued = 0;
  int closes = 0, aborts = 0;
};

class Recorder final : public WebSocketSession::Delegate {
 public:
  void OnTextMessage(std::string_view text) override { texts.emplace_back(text); }
  void OnBinaryMessage(ByteView data) override { binaries.emplace_back(AsString(data)); }
  std::vector<std::string> texts, binaries;
};

std::string ClientFrame(uint8_t opcode, std::string_view payload, bool fin = true) {
  std::vector<uint8_t> f;
  f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | opcode));
  uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<uint8_t>(0x80 | n));
  } else {
    f.push_back(0x80 | 126);
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n & 0xff));
  }
  const uint8_t key[4] = {0xa1, 0xb2, 0xc3, 0xd4};
  f.insert(f.end(), key, key + 4);
  for (size_t i = 0; i < n; ++i) f.push_back(static_cast<uint8_t>(payload[i]) ^ key[i % 4]);
  return std::string(f.begin(), f.end());
}

struct ServerFrame {
  uint8_t opcode;
  std::string payload;
};

// Parses unmasked server frames.
std::vector<ServerFrame> ParseServerFrames(const std::string& s) {
  std::vector<ServerFrame> out;
  size_t i = 0;
  while (i + 2 <= s.size()) {
    uint8_t op = static_cast<uint8_t>(s[i]) & 0x0f;
    uint64_t n = static_cast<uint8_t>(s[i + 1]) & 0x7f;
    i += 2;
    if (n == 126) {
      n = (uint64_t{static_cast<uint8_t>(s[i])} << 8) | static_cast<uint8_t>(s[i + 1]);
      i += 2;
    }
    out.push_back({op, s.substr(i, n)});
    i += n;
  }
  return out;
}

TEST_CASE("MessagesSurviveEveryChunkBoundary") {
  std::string stream = ClientFrame(0x1, R"({"type":"ping"})") + ClientFrame(0x2, "\x01\x02") +
                       ClientFrame(0x1, "frag", /*fin=*/false) + ClientFrame(0x0, "mented") +
                       ClientFrame(0x9, "hb") + ClientFrame(0x1, std::string(300, 'x'));
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}, stream.size()}) {
    INFO("chunk " << chunk);
    FakeTransport t;
    Recorder r;
    WebSocketSession s(t, r, 1 << 20);
    for (size_t i = 0; i < stream.size(); i += chunk) {
      s.Feed(AsBytes(std::string_view(stream).substr(i, chunk)));
    }
    REQUIRE(r.texts.size() == 3);
    CHECK(r.texts[0] == R"({"type":"ping"})");
    CHECK(r.texts[1] == "fragmented");
    CHECK(r.texts[2] == std::string(300, 'x'));
    REQUIRE(r.binaries.size() == 1);
    CHECK(r.binaries[0] == "\x01\x02");
    auto frames = ParseServerFrames(t.out);
    REQUIRE(frames.size() == 1);  // the pong, echoing the ping's payload
    CHECK(frames[0].opcode == 0xA);
    CHECK(frames[0].payload == "hb");
    CHECK(!s.close_sent());
    CHECK(s.bytes_in() == stream.size());
  }
}

TEST_CASE("SentTextIsOneUnmaskedFrame") {
  FakeTransport t;
  Recorder r;
  WebSocketSession s(t, r, 1 << 20);
  s.SendText(R"({"type":"pong","ts":1})");
  auto frames = ParseServerFrames(t.out);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].opcode == 0x1);
  CHECK(frames[0].payload == R"({"type":"pong","ts":1})");
  CHECK(s.bytes_out() == t.out.size());
}

TEST_CASE("PeerCloseIsAnsweredAndNothingIsSentAfter") {
  FakeTransport t;
  Recorder r;
  WebSocketSession s(t, r, 1 << 20);
  s.Feed(AsBytes(ClientFrame(0x8, std::string("\x03\xe8", 2) + "bye")));
  CHECK(s.close_received());
  CHECK(s.close_sent());
  auto frames = ParseServerFrames(t.out);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].opcode == 0x8);
  CHECK(frames[0].payload.substr(0, 2) == std::string("\x03\xe8", 2));
  s.SendText("late");
  CHECK(ParseServerFrames(t.out).size() == 1);
  CHECK(t.closes == 0);  // closing the transport is the owner's decision
}

uint16_t CloseCodeOf(const std::string& out) {
  auto frames = ParseServerFrames(out);
  REQUIRE(!frames.empty());
  REQUIRE(frames.back().opcode == 0x8);
  const std::string& p = frames.back().payload;
  REQUIRE(p.size() >= 2);
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

TEST_CASE("ProtocolErrorsQueueTheRightCloseCode") {
  FakeTransport t;
  Recorder r;
  WebSocketSession s(t, r, 100);
  SECTION("invalid UTF-8: 1007") {
    s.Feed(AsBytes(ClientFrame(0x1, "\xc3\x28")));
    CHECK(CloseCodeOf(t.out) == 1007);
  }
  SECTION("too big: 1009") {
    s.Feed(AsBytes(ClientFrame(0x1, std::string(101, 'a'))));
    CHECK(CloseCodeOf(t.out) == 1009);
  }
  SECTION("unmasked: 1002") {
    std::string frame = "\x81\x02hi";
    s.Feed(AsBytes(frame));
    CHECK(CloseCodeOf(t.out) == 1002);
  }
  SECTION("continuation without a start: 1002") {
    s.Feed(AsBytes(ClientFrame(0x0, "x")));
    CHECK(CloseCodeOf(t.out) == 1002);
  }
  CHECK(s.close_sent());
  CHECK(r.texts.empty());
}

TEST_CASE("StartCloseSendsTheCodeOnce") {
  FakeTransport t;
  Recorder r;
  WebSocketSession s(t, r, 1 << 20);
  s.StartClose(1013, "slow consumer");
  s.StartClose(1001, "again");
  CHECK(CloseCodeOf(t.out) == 1013);
  CHECK(ParseServerFrames(t.out).size() == 1);
  CHECK(s.close_code_sent() == 1013);
}

TEST_CASE("QueuedBytesIncludeTheTransport") {
  FakeTransport t;
  Recorder r;
  WebSocketSession s(t, r, 1 << 20);
  t.queued = 1234;
  CHECK(s.queued_bytes() == 1234);
}

}  // namespace
}  // namespace quire::io
