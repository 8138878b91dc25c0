// The JSON protocol: parsing of every client message, its validation errors, and the exact
// shape of the server messages.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "io/json_protocol.h"

namespace quire::io::ws {
namespace {

using nlohmann::json;

constexpr int64_t kMax = 1024;

ParseResult Parse(const json& j) { return ParseClientMessage(j.dump(), kMax); }

TEST_CASE("UpdateIsParsedAndDecoded") {
  auto r = Parse({{"type", "update"},
                  {"opId", "op-1"},
                  {"baseVersion", 7},
                  {"actorId", "a1"},
                  {"deltaB64", "AQID"}});
  REQUIRE(r.ok());
  CHECK(r.message.type == ClientType::kUpdate);
  CHECK(r.message.op_id == "op-1");
  CHECK(r.message.base_version == 7);
  CHECK(r.message.actor_id == "a1");
  CHECK(r.message.delta == Bytes{1, 2, 3});
  CHECK(r.message.delta_b64 == "AQID");
}

TEST_CASE("MalformedJsonIsInvalidJson") {
  auto r = ParseClientMessage("{\"type\": \"ping\"", kMax);
  REQUIRE(!r.ok());
  CHECK(r.error->code == kErrInvalidJson);
  CHECK(ParseClientMessage("", kMax).error->code == kErrInvalidJson);
  CHECK(ParseClientMessage("[1,2]", kMax).error->code == kErrInvalidMessage);
  CHECK(ParseClientMessage("\"ping\"", kMax).error->code == kErrInvalidMessage);
}

TEST_CASE("UnknownTypeIsReported") {
  auto r = Parse({{"type", "subscribe"}});
  REQUIRE(!r.ok());
  CHECK(r.error->code == kErrUnknownType);
  CHECK(Parse({{"kind", "ping"}}).error->code == kErrInvalidMessage);
  CHECK(Parse({{"type", 3}}).error->code == kErrInvalidMessage);
}

TEST_CASE("UpdateFieldsAreValidated") {
  json base = {{"type", "update"}, {"opId", "op-1"}, {"deltaB64", "AQID"}};
  SECTION("missing opId") {
    base.erase("opId");
    CHECK(Parse(base).error->code == kErrInvalidMessage);
  }
  SECTION("opId with spaces") {
    base["opId"] = "a b";
    CHECK(Parse(base).error->code == kErrInvalidMessage);
  }
  SECTION("bad base64 keeps the opId for the error") {
    base["deltaB64"] = "A?ID";
    auto r = Parse(base);
    CHECK(r.error->code == kErrInvalidMessage);
    CHECK(r.error->op_id == "op-1");
  }
  SECTION("negative baseVersion") {
    base["baseVersion"] = -1;
    CHECK(Parse(base).error->code == kErrInvalidMessage);
  }
  SECTION("fractional baseVersion") {
    base["baseVersion"] = 1.5;
    CHECK(Parse(base).error->code == kErrInvalidMessage);
  }
  SECTION("actorId not a string") {
    base["actorId"] = 12;
    CHECK(Parse(base).error->code == kErrInvalidMessage);
  }
  SECTION("missing actorId is allowed") {
    CHECK(Parse(base).ok());
    CHECK(Parse(base).message.actor_id.empty());
  }
}

TEST_CASE("PayloadOverTheLimitIsTooLarge") {
  Bytes exact(kMax, 7), over(kMax + 1, 7);
  auto ok = Parse({{"type", "update"}, {"opId", "o"}, {"deltaB64", Base64Encode(exact)}});
  CHECK(ok.ok());
  auto big = Parse({{"type", "update"}, {"opId", "o"}, {"deltaB64", Base64Encode(over)}});
  REQUIRE(!big.ok());
  CHECK(big.error->code == kErrPayloadTooLarge);
  CHECK(big.error->op_id == "o");
  // Far over the limit is refused before decoding.
  auto huge =
      Parse({{"type", "snapshot"}, {"version", 1}, {"snapshotB64", std::string(8000, 'A')}});
  CHECK(huge.error->code == kErrPayloadTooLarge);
}

TEST_CASE("PresenceJoinPingSnapshotParse") {
  auto p = Parse({{"type", "presence"}, {"cursor", {{"from", 1}, {"to", 4}}}, {"color", "#fff"}});
  REQUIRE(p.ok());
  CHECK(p.message.cursor == Cursor{1, 4});
  CHECK(p.message.color == "#fff");
  CHECK(Parse({{"type", "presence"}, {"cursor", nullptr}}).message.cursor == std::nullopt);
  CHECK(Parse({{"type", "presence"}, {"cursor", {{"from", 1}}}}).error->code == kErrInvalidMessage);
  CHECK(Parse({{"type", "presence"}, {"cursor", {{"from", -1}, {"to", 2}}}}).error->code ==
        kErrInvalidMessage);

  auto j = Parse({{"type", "join"}, {"userId", "u1"}, {"displayName", "Ada"}});
  REQUIRE(j.ok());
  CHECK(j.message.user_id == "u1");
  CHECK(j.message.display_name == "Ada");
  CHECK(Parse({{"type", "join"}, {"userId", ""}}).error->code == kErrInvalidMessage);
  CHECK(Parse({{"type", "join"}, {"userId", std::string(129, 'u')}}).error->code ==
        kErrInvalidMessage);

  auto ping = Parse({{"type", "ping"}, {"ts", 1700000000123}});
  REQUIRE(ping.ok());
  CHECK(ping.message.ts_json == "1700000000123");
  CHECK(Parse({{"type", "ping"}, {"ts", "x"}}).error->code == kErrInvalidMessage);

  auto snap = Parse({{"type", "snapshot"}, {"version", 12}, {"snapshotB64", "AAE="}});
  REQUIRE(snap.ok());
  CHECK(snap.message.version == 12);
  CHECK(snap.message.snapshot == Bytes{0, 1});
  CHECK(Parse({{"type", "snapshot"}, {"snapshotB64", "AAE="}}).error->code == kErrInvalidMessage);
}

TEST_CASE("ServerMessagesHaveTheSpecifiedShape") {
  Bytes snap = {1, 2, 3, 4};
  auto state = json::parse(StateMessage(5, snap, 9));
  CHECK(state ==
        json{{"type", "state"}, {"version", 5}, {"snapshotB64", "AQIDBA=="}, {"headSeq", 9}});

  auto ru = json::parse(RemoteUpdateMessage(10, "AQID", "actor \"x\"", "op-1"));
  CHECK(ru == json{{"type", "remote_update"},
                   {"seq", 10},
                   {"deltaB64", "AQID"},
                   {"actorId", "actor \"x\""},
                   {"opId", "op-1"}});

  CHECK(json::parse(AckMessage("op-1", 10)) ==
        json{{"type", "ack"}, {"opId", "op-1"}, {"seq", 10}});

  PresenceInfo p{"u1", "Ada\n", "#123456", Cursor{3, 5}, "active"};
  CHECK(json::parse(PresenceMessage(p)) == json{{"type", "presence"},
                                                {"userId", "u1"},
                                                {"displayName", "Ada\n"},
                                                {"color", "#123456"},
                                                {"cursor", {{"from", 3}, {"to", 5}}},
                                                {"status", "active"}});
  p.cursor.reset();
  CHECK(json::parse(PresenceMessage(p))["cursor"].is_null());

  CHECK(json::parse(PongMessage("123", 999)) == json{{"type", "pong"}, {"ts", 123}});
  CHECK(json::parse(PongMessage("", 999)) == json{{"type", "pong"}, {"ts", 999}});

  CHECK(json::parse(ErrorMessage(kErrInvalidJson, "bad")) ==
        json{{"type", "error"}, {"code", "INVALID_JSON"}, {"message", "bad"}});
  CHECK(json::parse(ErrorMessage(kErrInvalidUpdate, "bad", "op-2"))["opId"] == "op-2");
}

}  // namespace
}  // namespace quire::io::ws
