// y-protocols framing against tests/data/yjs/protocol_vectors.json (made by y-protocols 1.0.7):
// every frame decodes to what y-websocket meant and encodes back to the same bytes.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "tests/core/yjs_support.h"

namespace quire::yjs {
namespace {

using nlohmann::json;
using testing::B64;
using testing::LoadVectors;
using testing::ToHex;

const json& Case(const std::string& name) {
  static const json v = LoadVectors("protocol_vectors.json");
  for (const auto& c : v["cases"]) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no protocol vector " + name);
}

// Decodes a frame and re-encodes it from the decoded fields.
Bytes RoundTrip(ByteView frame) {
  auto m = DecodeMessage(frame);
  INFO(m.status().ToString());
  REQUIRE(m.ok());
  switch (m->type) {
    case MessageType::kSync:
      switch (m->sync_type) {
        case SyncType::kStep1:
          return EncodeSyncStep1(m->payload);
        case SyncType::kStep2:
          return EncodeSyncStep2(m->payload);
        case SyncType::kUpdate:
          return EncodeSyncUpdate(m->payload);
      }
      break;
    case MessageType::kAwareness:
      return EncodeAwarenessMessage(m->payload);
    case MessageType::kAuth:
      return EncodeAuthPermissionDenied(m->auth_reason);
    case MessageType::kQueryAwareness:
      return EncodeQueryAwareness();
  }
  FAIL("unreachable");
  return {};
}

TEST_CASE("EveryFramedProtocolVectorRoundTrips", "[yjs][protocol]") {
  static const json v = LoadVectors("protocol_vectors.json");
  int framed = 0;
  for (const auto& c : v["cases"]) {
    const std::string name = c["name"];
    if (name.size() < 7 || name.substr(name.size() - 7) != "_framed") continue;
    INFO(name);
    Bytes frame = B64(c["b64"]);
    CHECK(ToHex(frame) == c["hex"]);
    CHECK(ToHex(RoundTrip(frame)) == ToHex(frame));
    ++framed;
  }
  CHECK(framed == 10);
}

TEST_CASE("SyncStep1CarriesTheStateVector", "[yjs][protocol]") {
  // Decoded messages borrow their frame: keep the frames alive.
  const Bytes empty_frame = B64(Case("sync_step1_empty_doc_framed")["b64"]);
  auto empty = DecodeMessage(empty_frame);
  REQUIRE(empty.ok());
  CHECK(empty->type == MessageType::kSync);
  CHECK(empty->sync_type == SyncType::kStep1);
  CHECK(DecodeStateVector(empty->payload)->empty());

  const json& c = Case("sync_step1_framed");
  const Bytes frame = B64(c["b64"]);
  auto m = DecodeMessage(frame);
  REQUIRE(m.ok());
  CHECK(ToHex(m->payload) == ToHex(B64(c["state_vector_b64"])));
  CHECK(*DecodeStateVector(m->payload) == StateVector{{1, 2}});
  Bytes inner = B64(c["inner_sync_message_b64"]);
  CHECK(ToHex(Bytes(frame.begin() + 1, frame.end())) == ToHex(inner));

  const Bytes b_frame = B64(Case("sync_step1_from_b_framed")["b64"]);
  auto b = DecodeMessage(b_frame);
  REQUIRE(b.ok());
  CHECK(*DecodeStateVector(b->payload) == StateVector{{300, 2}});
}

TEST_CASE("SyncStep2AndUpdateCarryValidUpdates", "[yjs][protocol]") {
  for (const char* name : {"sync_step2_framed", "update_framed"}) {
    INFO(name);
    const json& c = Case(name);
    const Bytes frame = B64(c["b64"]);
    auto m = DecodeMessage(frame);
    REQUIRE(m.ok());
    CHECK(m->sync_type ==
          (std::string(name) == "update_framed" ? SyncType::kUpdate : SyncType::kStep2));
    CHECK(ToHex(m->payload) == ToHex(B64(c["update_b64"])));
    auto inspected = InspectUpdate(m->payload, InspectFormat::kJson);
    REQUIRE(inspected.ok());
    CHECK(json::parse(*inspected) == c["update_decoded"]);
  }
  for (const char* name : {"sync_step2_from_a_framed", "sync_step2_large_framed"}) {
    INFO(name);
    const Bytes frame = B64(Case(name)["b64"]);
    auto m = DecodeMessage(frame);
    REQUIRE(m.ok());
    CHECK(m->sync_type == SyncType::kStep2);
    CHECK(ValidateUpdate(m->payload).ok());
  }
  // The example of SPEC.md section 9.
  Bytes update = {0x01, 0x01, 0x01, 0x02, 0x44, 0x01, 0x00, 0x01, 0x21, 0x00};
  CHECK(ToHex(EncodeSyncUpdate(update)) == "00020a01010102440100012100");
}

TEST_CASE("AwarenessUpdatesDecodeAndEncodeInCallerOrder", "[yjs][protocol]") {
  const json& one = Case("awareness_update");
  Bytes raw = B64(one["b64"]);
  auto entries = DecodeAwarenessUpdate(raw);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].client == 1);
  CHECK((*entries)[0].clock == 1);
  CHECK((*entries)[0].state_json == one["json_state"].get<std::string>());
  CHECK(ToHex(EncodeAwarenessUpdate(*entries)) == ToHex(raw));

  const Bytes frame = B64(Case("awareness_update_framed")["b64"]);
  auto framed = DecodeMessage(frame);
  REQUIRE(framed.ok());
  CHECK(framed->type == MessageType::kAwareness);
  CHECK(ToHex(framed->payload) == ToHex(raw));

  Bytes two = B64(Case("awareness_update_two_clients")["b64"]);
  auto both = DecodeAwarenessUpdate(two);
  REQUIRE(both.ok());
  REQUIRE(both->size() == 2);
  CHECK((*both)[0].client == 300);
  CHECK((*both)[1].client == 1);
  CHECK(json::parse((*both)[0].state_json)["user"]["name"] == "Bob \xe6\x97\xa5\xe6\x9c\xac");
  CHECK(ToHex(EncodeAwarenessUpdate(*both)) == ToHex(two));

  Bytes removal = B64(Case("awareness_update_removal")["b64"]);
  auto removed = DecodeAwarenessUpdate(removal);
  REQUIRE(removed.ok());
  REQUIRE(removed->size() == 1);
  CHECK((*removed)[0].clock == 2);
  CHECK((*removed)[0].state_json == "null");
  CHECK(ToHex(EncodeAwarenessUpdate(*removed)) == ToHex(removal));
}

TEST_CASE("QueryAwarenessAndAuthFrames", "[yjs][protocol]") {
  const Bytes q_frame = B64(Case("query_awareness_framed")["b64"]);
  auto q = DecodeMessage(q_frame);
  REQUIRE(q.ok());
  CHECK(q->type == MessageType::kQueryAwareness);
  const Bytes a_frame = B64(Case("auth_permission_denied_framed")["b64"]);
  auto a = DecodeMessage(a_frame);
  REQUIRE(a.ok());
  CHECK(a->type == MessageType::kAuth);
  CHECK(a->auth_reason == "no access");
}

TEST_CASE("MalformedFramesAreRejected", "[yjs][protocol]") {
  const std::vector<Bytes> bad = {
      {},                              // empty
      {0x04},                          // unknown message type
      {0x00},                          // sync without its type
      {0x00, 0x03, 0x00},              // unknown sync type
      {0x00, 0x00, 0x05, 0x00},        // payload past the end
      {0x00, 0x00, 0x01, 0x00, 0x00},  // trailing byte
      {0x03, 0x00},                    // query-awareness with a payload
      {0x02, 0x01, 0x00},              // unknown auth type
      {0x02, 0x00, 0x02, 0xc3},        // reason past the end
      {0x02, 0x00, 0x01, 0xff},        // reason not UTF-8
      {0x01, 0x80},                    // truncated varUint
      {0x80, 0x00},                    // overlong varUint
  };
  for (const Bytes& b : bad) {
    INFO(ToHex(b));
    CHECK_FALSE(DecodeMessage(b).ok());
  }
  // Every strict prefix of every framed vector is rejected.
  static const json v = LoadVectors("protocol_vectors.json");
  for (const auto& c : v["cases"]) {
    const std::string name = c["name"];
    Bytes frame = B64(c["b64"]);
    bool framed = name.size() >= 7 && name.substr(name.size() - 7) == "_framed";
    for (size_t n = 0; n < frame.size(); ++n) {
      ByteView prefix(frame.data(), n);
      INFO(name << " prefix " << n);
      if (framed)
        CHECK_FALSE(DecodeMessage(prefix).ok());
      else
        CHECK_FALSE(DecodeAwarenessUpdate(prefix).ok());
    }
  }
  // Awareness states must be JSON; counts must fit the bytes.
  Bytes not_json = {0x01, 0x01, 0x01, 0x01, '{'};
  CHECK_FALSE(DecodeAwarenessUpdate(not_json).ok());
  Bytes absurd = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x01};
  CHECK_FALSE(DecodeAwarenessUpdate(absurd).ok());
}

}  // namespace
}  // namespace quire::yjs
