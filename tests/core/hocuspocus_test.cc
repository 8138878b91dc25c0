// The Hocuspocus frame codec (core/yjs/hocuspocus.h) against frames made by the real npm
// packages (tests/data/hocuspocus/vectors.json from gen.cjs: @hocuspocus/provider 4.8.0 as it
// sends, @hocuspocus/server 4.7.0's own encoders), plus malformed input.
#include "core/yjs/hocuspocus.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/yjs/update.h"
#include "tests/core/yjs_support.h"

namespace quire::yjs::hocuspocus {
namespace {

using nlohmann::json;
using testing::Hex;
using testing::ToHex;

const json& Vectors() {
  static const json v = [] {
    std::ifstream in(std::string(QUIRE_SOURCE_DIR) + "/tests/data/hocuspocus/vectors.json");
    if (!in) throw std::runtime_error("cannot open tests/data/hocuspocus/vectors.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  }();
  return v;
}

const json& Vector(std::string_view list, std::string_view name) {
  for (const json& v : Vectors()[std::string(list)]) {
    if (v["name"] == name) return v;
  }
  throw std::runtime_error("no vector " + std::string(name));
}

Bytes FrameOf(const json& v) { return Hex(v["hex"].get<std::string>()); }

std::string Str(std::string_view s) { return std::string(s); }

// Every field the generator decoded with lib0 must come out of Decode the same.
void CheckFields(const json& v, const Message& m) {
  INFO(v["name"].get<std::string>());
  CHECK(static_cast<int>(m.raw_type) == v["type"].get<int>());
  if (!v.contains("address")) {
    CHECK(m.address.empty());
    return;
  }
  CHECK(Str(m.address) == v["address"].get<std::string>());
  CHECK(Str(m.document) == v["document"].get<std::string>());
  CHECK(Str(m.session) == v["session"].get<std::string>());
  if (v.contains("sync_type")) CHECK(static_cast<int>(m.sync_type) == v["sync_type"].get<int>());
  if (v.contains("payload_hex")) CHECK(ToHex(m.payload) == v["payload_hex"].get<std::string>());
  if (v.contains("auth_type")) CHECK(static_cast<int>(m.auth_type) == v["auth_type"].get<int>());
  if (v.contains("token")) CHECK(Str(m.token) == v["token"].get<std::string>());
  CHECK(m.has_version == v.contains("provider_version"));
  if (v.contains("provider_version")) {
    CHECK(Str(m.version) == v["provider_version"].get<std::string>());
  }
  if (v.contains("text")) {
    CHECK(Str(m.text) == v["text"].get<std::string>());
  } else {
    CHECK(m.text.empty());
  }
  if (v.contains("applied")) CHECK(m.applied == v["applied"].get<bool>());
}

TEST_CASE("EveryProviderFrameDecodesAsLib0ReadsItAndReencodesIdentically") {
  const json& list = Vectors()["client_to_server"];
  REQUIRE(list.size() >= 12);
  for (const json& v : list) {
    Bytes frame = FrameOf(v);
    auto m = Decode(frame, Direction::kToServer);
    INFO(v["name"].get<std::string>() << ": " << m.status().ToString());
    REQUIRE(m.ok());
    CHECK(m->type != Type::kUnknown);
    CheckFields(v, *m);
    CHECK(ToHex(Encode(*m, Direction::kToServer)) == v["hex"].get<std::string>());
  }
}

TEST_CASE("EveryServerFrameOfHocuspocusIsWhatOurEncodersMake") {
  const json& list = Vectors()["server_to_client"];
  REQUIRE(list.size() >= 19);
  for (const json& v : list) {
    Bytes frame = FrameOf(v);
    auto m = Decode(frame, Direction::kToClient);
    INFO(v["name"].get<std::string>() << ": " << m.status().ToString());
    REQUIRE(m.ok());
    CheckFields(v, *m);
    CHECK(ToHex(Encode(*m, Direction::kToClient)) == v["hex"].get<std::string>());
  }
}

TEST_CASE("NamedEncodersMatchTheServerFrames") {
  auto hex = [](std::string_view name) {
    return Vector("server_to_client", name)["hex"].get<std::string>();
  };
  auto payload = [](std::string_view name) {
    return Hex(Vector("server_to_client", name)["payload_hex"].get<std::string>());
  };
  CHECK(ToHex(EncodeAuthenticated("doc-1", kScopeReadWrite)) == hex("authenticated_read_write"));
  CHECK(ToHex(EncodeAuthenticated("doc-1", kScopeReadOnly)) == hex("authenticated_readonly"));
  CHECK(ToHex(EncodePermissionDenied("doc-1", "permission-denied")) == hex("permission_denied"));
  CHECK(ToHex(EncodePermissionDenied("secret", "document not found")) ==
        hex("permission_denied_reason"));
  CHECK(ToHex(EncodeTokenRequest("doc-1")) == hex("token_sync_request"));
  CHECK(ToHex(EncodeQueryAwareness("doc-1")) == hex("query_awareness"));
  CHECK(ToHex(EncodeStateless("doc-1", R"({"kind":"note"})")) == hex("stateless"));
  CHECK(ToHex(EncodeBroadcastStateless("doc-1", "all")) == hex("broadcast_stateless"));
  CHECK(ToHex(EncodeClose("doc-1", "provider_initiated")) == hex("close_provider_initiated"));
  CHECK(ToHex(EncodeSyncStatus("doc-1", true)) == hex("sync_status_applied"));
  CHECK(ToHex(EncodeSyncStatus("doc-1", false)) == hex("sync_status_refused"));
  CHECK(ToHex(EncodePing()) == hex("ping"));
  CHECK(ToHex(EncodeSyncStep1("doc-1", payload("answer_sync_step1"))) == hex("answer_sync_step1"));
  CHECK(ToHex(EncodeSyncStep2("doc-1", payload("answer_sync_step2"))) == hex("answer_sync_step2"));
  CHECK(ToHex(EncodeSyncUpdate("doc-1", payload("sync_update"))) == hex("sync_update"));
  CHECK(ToHex(EncodeSyncReplyStep1(std::string_view("doc-1\0sess42", 12),
                                   payload("sync_reply_step1_session"))) ==
        hex("sync_reply_step1_session"));
  CHECK(ToHex(EncodeAwareness("doc-1", payload("awareness_update"))) == hex("awareness_update"));
}

TEST_CASE("NamedClientEncodersMatchTheProviderFrames") {
  auto hex = [](std::string_view name) {
    return Vector("client_to_server", name)["hex"].get<std::string>();
  };
  CHECK(ToHex(EncodeAuthToken("doc-1", "secret-token", "4.8.0")) == hex("auth_token"));
  CHECK(ToHex(EncodeCloseRequest("doc-1")) == hex("close"));
  CHECK(ToHex(EncodePong()) == hex("pong"));
  const json& long_name = Vector("client_to_server", "long_name_auth");
  CHECK(ToHex(EncodeAuthToken(long_name["address"].get<std::string>(), "secret-token", "4.8.0")) ==
        long_name["hex"].get<std::string>());
}

TEST_CASE("ProviderSyncPayloadsAreValidYjs") {
  // What the endpoint does next with them: the update validates, the state vector decodes.
  // (Decoded views borrow the frame: each frame is kept in a variable.)
  for (std::string_view name : {"sync_step2_reply", "sync_update"}) {
    Bytes frame = FrameOf(Vector("client_to_server", name));
    auto m = Decode(frame);
    REQUIRE(m.ok());
    CHECK(ValidateUpdate(m->payload).ok());
  }
  Bytes step1_frame = FrameOf(Vector("client_to_server", "sync_step1_empty"));
  auto step1 = Decode(step1_frame);
  REQUIRE(step1.ok());
  CHECK(DecodeStateVector(step1->payload).ok());
  Bytes aw_frame = FrameOf(Vector("client_to_server", "awareness_local_state"));
  auto aw = Decode(aw_frame);
  REQUIRE(aw.ok());
  auto entries = DecodeAwarenessUpdate(aw->payload);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].client == 1001);
  CHECK(Str((*entries)[0].state_json) == R"({"user":{"name":"ada","color":"#ff0000"}})");
}

TEST_CASE("AuthTokenWithoutVersionIsTheOlderProvidersForm") {
  Bytes v2 = EncodeAuthToken("doc", "tok");
  auto m = Decode(v2);
  REQUIRE(m.ok());
  CHECK(m->type == Type::kAuth);
  CHECK(Str(m->token) == "tok");
  CHECK_FALSE(m->has_version);
  CHECK(Encode(*m, Direction::kToServer) == v2);
}

TEST_CASE("SessionAddressSplitsAtTheFirstNul") {
  Bytes frame = FrameOf(Vector("client_to_server", "session_sync_step1"));
  auto m = Decode(frame);
  REQUIRE(m.ok());
  CHECK(Str(m->document) == "dóc-ü.1");
  CHECK(Str(m->session) == "sess42");
  Bytes plain = EncodeQueryAwareness("a");
  auto p = Decode(plain);
  REQUIRE(p.ok());
  CHECK(Str(p->document) == "a");
  CHECK(p->session.empty());
}

TEST_CASE("UnknownTypesDecodeWithTheirAddressSoTheyCanBeIgnored") {
  Bytes frame = {3, 'd', 'o', 'c', 42, 1, 2, 3};
  auto m = Decode(frame);
  REQUIRE(m.ok());
  CHECK(m->type == Type::kUnknown);
  CHECK(m->raw_type == 42);
  CHECK(Str(m->document) == "doc");
  CHECK(ToHex(m->payload) == "010203");
  CHECK(Encode(*m, Direction::kToServer) == frame);
  // Ping and Pong are one byte; with an address they are unknown too.
  auto addressed_pong = Decode(Bytes{1, 'd', 10});
  REQUIRE(addressed_pong.ok());
  CHECK(addressed_pong->type == Type::kUnknown);
}

std::string ErrorOf(const Bytes& frame, Direction direction = Direction::kToServer) {
  auto m = Decode(frame, direction);
  if (m.ok()) return "ok";
  CHECK(m.status().code() == StatusCode::kInvalidArgument);
  return m.status().message();
}

TEST_CASE("MalformedFramesAreRejectedWithTheFailingPartAndOffset") {
  CHECK(ErrorOf({}) == "hocuspocus: address: empty frame at byte 0");
  CHECK(ErrorOf({5, 'a'}) == "hocuspocus: address: length past the end of the buffer at byte 1");
  CHECK(ErrorOf({0x80}) == "hocuspocus: address: truncated at byte 1");
  CHECK(ErrorOf({2, 0xc3, 0x28, 0}) == "hocuspocus: address: invalid UTF-8 at byte 3");
  CHECK(ErrorOf({1, 'a'}) == "hocuspocus: message type: truncated at byte 2");
  CHECK(ErrorOf({1, 'a', 0}) == "hocuspocus: sync type: truncated at byte 3");
  CHECK(ErrorOf({1, 'a', 0, 3, 0}) == "hocuspocus: sync type: unknown sync type at byte 4");
  CHECK(ErrorOf({1, 'a', 0, 2, 5, 1}) ==
        "hocuspocus: sync payload: length past the end of the buffer at byte 5");
  CHECK(ErrorOf({1, 'a', 0, 2, 1, 0, 9}) ==
        "hocuspocus: sync message: unexpected bytes after the message at byte 6");
  CHECK(ErrorOf({1, 'a', 1}) == "hocuspocus: awareness update: truncated at byte 3");
  CHECK(ErrorOf({1, 'a', 2, 3}) == "hocuspocus: auth type: unknown auth type at byte 4");
  CHECK(ErrorOf({1, 'a', 2, 0}) == "hocuspocus: auth token: truncated at byte 4");
  CHECK(ErrorOf({1, 'a', 2, 0, 0, 9}) ==
        "hocuspocus: provider version: length past the end of the buffer at byte 6");
  CHECK(ErrorOf({1, 'a', 2, 0, 0, 0, 7}) ==
        "hocuspocus: auth message: unexpected bytes after the message at byte 6");
  CHECK(ErrorOf({1, 'a', 3, 0}) ==
        "hocuspocus: query-awareness message: unexpected bytes after the message at byte 3");
  CHECK(ErrorOf({1, 'a', 5, 1, 0xff}) == "hocuspocus: stateless payload: invalid UTF-8 at byte 5");
  CHECK(ErrorOf({1, 'a', 7, 0}) ==
        "hocuspocus: close message: unexpected bytes after the message at byte 3");
  CHECK(ErrorOf({1, 'a', 7}, Direction::kToClient) ==
        "hocuspocus: close reason: truncated at byte 3");
  CHECK(ErrorOf({1, 'a', 8, 2}) ==
        "hocuspocus: sync status: sync status is neither 0 nor 1 at byte 4");
  CHECK(ErrorOf({1, 'a', 0x80, 0x00}) == "hocuspocus: message type: overlong varUint at byte 4");
  CHECK(ErrorOf({9, 9}) == "hocuspocus: address: length past the end of the buffer at byte 1");
}

TEST_CASE("EveryTruncationOfEveryVectorFailsCleanlyOrDecodesAPrefixMessage") {
  // A cut frame must never read past its end; where a prefix is itself a whole message (an
  // auth token without the optional version) it decodes as that.
  for (const char* list : {"client_to_server", "server_to_client"}) {
    Direction direction =
        std::string(list) == "client_to_server" ? Direction::kToServer : Direction::kToClient;
    for (const json& v : Vectors()[list]) {
      Bytes frame = FrameOf(v);
      for (size_t n = 0; n < frame.size(); ++n) {
        Bytes cut(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
        auto m = Decode(cut, direction);
        if (m.ok()) CHECK(Encode(*m, direction) == cut);
      }
    }
  }
}

}  // namespace
}  // namespace quire::yjs::hocuspocus
