// Limits, malformed input and refused upgrades on /ws/documents/{id}, end to end.
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "core/base64.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

using nlohmann::json;

// A client frame built by hand: FIN set, `opcode`, masked unless told otherwise.
std::string RawFrame(uint8_t opcode, std::string_view payload, bool masked = true) {
  std::vector<uint8_t> f;
  f.push_back(static_cast<uint8_t>(0x80 | opcode));
  uint8_t mask_bit = masked ? 0x80 : 0;
  uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<uint8_t>(mask_bit | n));
  } else if (n < 65536) {
    f.push_back(static_cast<uint8_t>(mask_bit | 126));
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n & 0xff));
  } else {
    f.push_back(static_cast<uint8_t>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>((n >> (8 * i)) & 0xff));
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) f.insert(f.end(), key, key + 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    auto c = static_cast<uint8_t>(payload[i]);
    f.push_back(masked ? static_cast<uint8_t>(c ^ key[i % 4]) : c);
  }
  return std::string(f.begin(), f.end());
}

TEST_CASE("PayloadTooLargeIsAnErrorAndTheConnectionStaysOpen") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_payload_bytes = 1024; });
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto b = h.JoinWithState(doc, "bob");
  REQUIRE(a->SendJson(UpdateMessage("big", std::string(1025, 'x'))).ok());
  auto err = a->NextOfType("error");
  REQUIRE(err.ok());
  CHECK((*err)["code"] == "PAYLOAD_TOO_LARGE");
  CHECK((*err)["opId"] == "big");
  REQUIRE(a->SendJson(UpdateMessage("fits", std::string(1024, 'x'))).ok());
  auto ack = a->NextOfType("ack");
  REQUIRE(ack.ok());
  CHECK((*ack)["opId"] == "fits");
  auto relay = b->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["opId"] == "fits");
  CHECK(h.Metric("quire_updates_rejected_total") == 1);
}

TEST_CASE("MessageBeyondTheFrameLimitClosesWith1009") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.max_payload_bytes = 1024; });
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  // Limit: max_payload * 4/3 + 64 KiB of JSON overhead.
  REQUIRE(a->SendText(std::string(200 << 10, ' ')).ok());
  auto code = a->WaitClosed();
  REQUIRE(code.ok());
  CHECK(*code == 1009);
}

TEST_CASE("MalformedJsonAndUnknownTypesGetErrorsWithoutClosing") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  struct Case {
    std::string text;
    std::string code;
  };
  for (const Case& c : {Case{"{not json", "INVALID_JSON"}, Case{"[]", "INVALID_MESSAGE"},
                        Case{R"({"type":"teleport"})", "UNKNOWN_TYPE"},
                        Case{R"({"type":"update","opId":"o1"})", "INVALID_MESSAGE"},
                        Case{R"({"type":"update","opId":"o2","deltaB64":"!!"})", "INVALID_MESSAGE"},
                        Case{R"({"type":"presence","cursor":"here"})", "INVALID_MESSAGE"},
                        Case{R"({"type":"join"})", "INVALID_MESSAGE"}}) {
    INFO(c.text);
    REQUIRE(a->SendText(c.text).ok());
    auto err = a->NextOfType("error");
    REQUIRE(err.ok());
    CHECK((*err)["code"] == c.code);
  }
  REQUIRE(a->SendBinary(AsBytes("\x01\x02")).ok());
  auto bin = a->NextOfType("error");
  REQUIRE(bin.ok());
  CHECK((*bin)["code"] == "BINARY_NOT_SUPPORTED");
  // Still open and serving.
  REQUIRE(a->SendJson({{"type", "ping"}, {"ts", 5}}).ok());
  auto pong = a->NextOfType("pong");
  REQUIRE(pong.ok());
  CHECK((*pong)["ts"] == 5);
}

TEST_CASE("InvalidUpdateBytesAreRejectedAndNotRelayed") {
  WsHarness h;
  std::string yjs = h.CreateDocument("yjs");
  auto a = h.JoinWithState(yjs, "alice");
  auto b = h.JoinWithState(yjs, "bob");
  REQUIRE(a->SendJson(UpdateMessage("junk", "\xff\xff\xff\xff\xff")).ok());
  auto err = a->NextOfType("error");
  REQUIRE(err.ok());
  CHECK((*err)["code"] == "INVALID_UPDATE");
  CHECK((*err)["opId"] == "junk");
  std::string opaque = h.CreateDocument("opaque");
  auto c = h.JoinWithState(opaque, "carol");
  REQUIRE(c->SendJson({{"type", "update"}, {"opId", "empty"}, {"deltaB64", ""}}).ok());
  auto empty = c->NextOfType("error");
  REQUIRE(empty.ok());
  CHECK((*empty)["code"] == "INVALID_UPDATE");
  for (int i = 0; i < 3; ++i) {
    auto m = b->NextJson(100);
    if (!m.ok()) break;
    CHECK((*m)["type"] != "remote_update");
  }
  CHECK(h.Metric("quire_updates_rejected_total") == 2);
}

TEST_CASE("UpdateToADocumentDeletedMeanwhileIsRefused") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  REQUIRE(h.DeleteDocument(doc));
  REQUIRE(a->SendJson(UpdateMessage("late", "x")).ok());
  auto err = a->NextOfType("error");
  REQUIRE(err.ok());
  CHECK((*err)["code"] == "DOCUMENT_DELETED");
}

TEST_CASE("UpgradesAreRefusedForUnknownDeletedAndOtherPaths") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  std::string gone = h.CreateDocument();
  REQUIRE(h.DeleteDocument(gone));
  struct Case {
    std::string target;
    int status;
    std::string code;
  };
  for (const Case& c :
       {Case{"/ws/documents/nope?userId=a", 404, "NOT_FOUND"},
        Case{"/ws/documents/" + gone + "?userId=a", 410, "DOCUMENT_DELETED"},
        Case{"/ws/elsewhere", 404, "NOT_FOUND"},
        Case{"/ws/documents/" + doc + "?userId=a&sinceSeq=-3", 400, "INVALID_QUERY"}}) {
    INFO(c.target);
    WsHandshake hs;
    auto client = WsClient::Connect(h.port(), c.target, {}, &hs);
    CHECK(!client.ok());
    CHECK(hs.status == c.status);
    auto body = json::parse(hs.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body["error"]["code"] == c.code);
  }
  WsConnectOptions old;
  old.version = std::string(1, '8');  // (a literal trips GCC 12's -Wrestrict false positive)
  WsHandshake hs;
  CHECK(!WsClient::Connect(h.port(), "/ws/documents/" + doc, old, &hs).ok());
  CHECK(hs.status == 426);
  CHECK(h.Metric("quire_websocket_connections") == 0);
}

TEST_CASE("ProtocolViolationsCloseWithTheRightCode") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  SECTION("invalid UTF-8 in a text frame: 1007") {
    auto a = h.JoinWithState(doc, "alice");
    REQUIRE(a->SendRaw(RawFrame(0x1, "{\"type\":\"\xc3\x28\"}")).ok());
    auto code = a->WaitClosed();
    REQUIRE(code.ok());
    CHECK(*code == 1007);
  }
  SECTION("unmasked client frame: 1002") {
    auto a = h.JoinWithState(doc, "alice");
    REQUIRE(a->SendRaw(RawFrame(0x1, R"({"type":"ping"})", /*masked=*/false)).ok());
    auto code = a->WaitClosed();
    REQUIRE(code.ok());
    CHECK(*code == 1002);
  }
  SECTION("reserved opcode: 1002") {
    auto a = h.JoinWithState(doc, "alice");
    REQUIRE(a->SendRaw(RawFrame(0x3, "x")).ok());
    auto code = a->WaitClosed();
    REQUIRE(code.ok());
    CHECK(*code == 1002);
  }
  SECTION("frames split at every byte still parse") {
    auto a = h.JoinWithState(doc, "alice");
    std::string frame = RawFrame(0x1, R"({"type":"ping","ts":77})");
    for (char ch : frame) REQUIRE(a->SendRaw(std::string(1, ch)).ok());
    auto pong = a->NextOfType("pong");
    REQUIRE(pong.ok());
    CHECK((*pong)["ts"] == 77);
  }
}

TEST_CASE("SilentConnectionIsClosedAfterTheIdleTimeout") {
  WsHarness h(StorageMode::kMemory, [](Config& c) {
    c.idle_timeout_s = 1;
    c.ping_interval_s = 30;
  });
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  auto start = std::chrono::steady_clock::now();
  auto code = a->WaitClosed(4000);
  REQUIRE(code.ok());
  CHECK(*code == 1000);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(900));
}

TEST_CASE("ServerShutdownClosesWith1001") {
  WsHarness h;
  std::string doc = h.CreateDocument();
  auto a = h.JoinWithState(doc, "alice");
  REQUIRE(a->SendJson(UpdateMessage("op", "x")).ok());
  REQUIRE(a->NextOfType("ack").ok());
  std::thread stopper([&] { CHECK(h.server().Stop().ok()); });
  auto code = a->WaitClosed();
  stopper.join();
  REQUIRE(code.ok());
  CHECK(*code == 1001);
}

}  // namespace
}  // namespace quire::test
