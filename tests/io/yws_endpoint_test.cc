// The y-websocket endpoint (/yjs/{id}) over real sockets against the real server: the sync
// handshake, relays between y-websocket and JSON clients of one document, awareness removal on
// close, --no-auto-create, and malformed frames (closed with 1007, the server keeps serving).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/base64.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "tests/support/ws_harness.h"

namespace quire::test {
namespace {

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}

std::unique_ptr<WsClient> ConnectYws(WsHarness& h, const std::string& doc) {
  auto c = WsClient::Connect(h.port(), "/yjs/" + doc);
  REQUIRE(c.ok());
  return std::move(*c);
}

Bytes NextBinary(WsClient& c) {
  auto m = c.Next();
  REQUIRE(m.ok());
  REQUIRE(m->kind == WsMessage::Kind::kBinary);
  return Bytes(m->data.begin(), m->data.end());
}

// The next sync message, skipping awareness (a JSON member's presence arrives as awareness).
Bytes NextSync(WsClient& c) {
  for (;;) {
    Bytes b = NextBinary(c);
    auto m = yjs::DecodeMessage(b);
    REQUIRE(m.ok());
    if (m->type != yjs::MessageType::kAwareness) return b;
  }
}

// The one-character insertion "x" by client 1 at clock 0 into the root text "t".
const Bytes kInsertX = B({1, 1, 1, 0, 4, 1, 1, 't', 1, 'x', 0});

}  // namespace

TEST_CASE("FirstConnectCreatesTheDocumentAndSendsSyncStep1") {
  WsHarness h;
  auto c = ConnectYws(h, "fresh-doc");
  CHECK(NextBinary(*c) == yjs::EncodeSyncStep1(B({0})));
  // A client's step 1 is answered with step 2 (the empty document: an empty update).
  REQUIRE(c->SendBinary(yjs::EncodeSyncStep1(B({0}))).ok());
  CHECK(NextBinary(*c) == yjs::EncodeSyncStep2(B({0, 0})));
}

TEST_CASE("YwsUpdatesReachJsonClientsAndJsonUpdatesReachYwsClients") {
  WsHarness h;
  auto y = ConnectYws(h, "mixed");
  NextBinary(*y);  // step 1
  auto j = h.JoinWithState("mixed", "json-user");
  REQUIRE(y->SendBinary(yjs::EncodeSyncUpdate(kInsertX)).ok());
  auto relay = j->NextOfType("remote_update");
  REQUIRE(relay.ok());
  CHECK((*relay)["deltaB64"] == Base64Encode(kInsertX));
  // The insertion of "y" after "x" by client 2.
  const Bytes insert_y = B({1, 1, 2, 0, 0x84, 1, 0, 1, 'y', 0});
  REQUIRE(
      j->SendJson({{"type", "update"}, {"opId", "j1"}, {"deltaB64", Base64Encode(insert_y)}}).ok());
  CHECK(NextSync(*y) == yjs::EncodeSyncUpdate(insert_y));
  // A newcomer's step 2 holds both.
  auto late = ConnectYws(h, "mixed");
  NextSync(*late);
  REQUIRE(late->SendBinary(yjs::EncodeSyncStep1(B({0}))).ok());
  Bytes step2 = NextSync(*late);
  auto m = yjs::DecodeMessage(step2);
  REQUIRE(m.ok());
  CHECK(m->sync_type == yjs::SyncType::kStep2);
  auto sv = yjs::StateVectorFromUpdate(m->payload);
  REQUIRE(sv.ok());
  CHECK(*sv == B({2, 2, 1, 1, 1}));  // client 2 clock 1, client 1 clock 1
}

TEST_CASE("AwarenessOfAClosedConnectionIsRemovedForTheOthers") {
  WsHarness h;
  auto a = ConnectYws(h, "aw");
  auto b = ConnectYws(h, "aw");
  NextBinary(*a);
  NextBinary(*b);
  yjs::AwarenessEntry e{77, 3, R"({"user":"alice"})"};
  Bytes msg = yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate({&e, 1}));
  REQUIRE(a->SendBinary(msg).ok());
  CHECK(NextBinary(*b) == msg);
  CHECK(NextBinary(*a) == msg);  // echoed to the sender too, as y-websocket's server does
  REQUIRE(a->Close().ok());
  yjs::AwarenessEntry gone{77, 4, "null"};
  CHECK(NextBinary(*b) == yjs::EncodeAwarenessMessage(yjs::EncodeAwarenessUpdate({&gone, 1})));
}

TEST_CASE("NoAutoCreateDeniesUnknownDocumentsAndCloses") {
  WsHarness h(StorageMode::kMemory, [](Config& c) { c.auto_create_documents = false; });
  auto c = ConnectYws(h, "missing");
  CHECK(NextBinary(*c) == yjs::EncodeAuthPermissionDenied("no such document"));
  auto closed = c->WaitClosed();
  REQUIRE(closed.ok());
  CHECK(*closed == 1008);
}

TEST_CASE("MalformedFramesCloseWith1007AndTheServerKeepsServing") {
  WsHarness h;
  struct Case {
    const char* name;
    Bytes frame;
  };
  const std::vector<Case> cases = {
      {"empty", B({})},
      {"unknown message type", B({9})},
      {"sync without a payload", B({0, 0})},
      {"length past the end", B({0, 0, 5, 0})},
      {"trailing byte", B({0, 0, 1, 0, 7})},
      {"unknown sync type", B({0, 7, 1, 0})},
      {"truncated varint", B({0, 0x80})},
      {"update that is not Yjs", B({0, 2, 3, 1, 2, 3})},
      {"bad state vector", B({0, 0, 2, 5, 0x80})},
      {"awareness state not JSON", B({1, 5, 1, 5, 0, 1, '{'})},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    auto client = ConnectYws(h, "bad");
    NextBinary(*client);
    REQUIRE(client->SendBinary(c.frame).ok());
    auto closed = client->WaitClosed();
    REQUIRE(closed.ok());
    CHECK(*closed == 1007);
  }
  auto text = ConnectYws(h, "bad");
  NextBinary(*text);
  REQUIRE(text->SendText("hello").ok());
  auto closed = text->WaitClosed();
  REQUIRE(closed.ok());
  CHECK(*closed == 1007);
  auto good = ConnectYws(h, "bad");
  CHECK(NextBinary(*good) == yjs::EncodeSyncStep1(B({0})));
}

}  // namespace quire::test
