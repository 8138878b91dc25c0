// Joins into a Yjs document share the folded head state while the head stays where it is, on
// every endpoint, and an update moves the head so the next join folds again and sees it
// (quire_join_state_cache_{hits,misses}_total count them). What each joiner receives is the
// document's whole current state whether it came from the cache or not.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/base64.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"
#include "tests/support/ws_harness.h"
#include "tests/support/yjs_test_updates.h"

namespace quire::test {
namespace {

// The state vector of the Yjs state a JSON `state` message carries.
Bytes StateVectorOf(const nlohmann::json& state) {
  auto bytes = Base64Decode(state["snapshotB64"].get<std::string>());
  REQUIRE(bytes.ok());
  auto sv = yjs::StateVectorFromUpdate(*bytes);
  REQUIRE(sv.ok());
  return *sv;
}

// A state vector of one client: {1 entry, client, clock}.
Bytes OneClient(uint8_t client, uint8_t clock) { return Bytes{1, client, clock}; }

TEST_CASE("JoinsAtTheSameHeadShareOneFoldAndAnUpdateMovesIt", "[io][join]") {
  WsHarness h;
  std::string doc = h.CreateDocument("yjs");
  auto editor = h.JoinWithState(doc, "editor");  // the empty document (a miss)
  // Client 1 types "abc".
  Bytes abc = YjsRootInsert(1, 0, "abc");
  REQUIRE(
      editor->SendJson({{"type", "update"}, {"opId", "u1"}, {"deltaB64", Base64Encode(abc)}}).ok());
  REQUIRE(editor->NextOfType("ack").ok());
  int64_t misses = h.Metric("quire_join_state_cache_misses_total");
  int64_t hits = h.Metric("quire_join_state_cache_hits_total");

  nlohmann::json first, second;
  auto a = h.JoinWithState(doc, "a", &first);
  auto b = h.JoinWithState(doc, "b", &second);
  CHECK(first == second);
  CHECK(StateVectorOf(first) == OneClient(1, 3));
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 1);
  CHECK(h.Metric("quire_join_state_cache_hits_total") == hits + 1);

  // A y-websocket joiner at the same head: its step 1 comes from the same fold.
  auto y = WsClient::Connect(h.port(), "/yjs/" + doc);
  REQUIRE(y.ok());
  auto step1 = (*y)->Next();
  REQUIRE(step1.ok());
  CHECK(Bytes(step1->data.begin(), step1->data.end()) == yjs::EncodeSyncStep1(OneClient(1, 3)));
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 1);
  CHECK(h.Metric("quire_join_state_cache_hits_total") == hits + 2);

  // Client 2 appends "d" after "c": the head moved, the next join folds again and has it.
  Bytes d = YjsInsertAfter(2, 0, 1, 2, "d");
  REQUIRE(a->SendJson({{"type", "update"}, {"opId", "u2"}, {"deltaB64", Base64Encode(d)}}).ok());
  REQUIRE(a->NextOfType("ack").ok());
  nlohmann::json third;
  auto c = h.JoinWithState(doc, "c", &third);
  CHECK(third["headSeq"].get<int64_t>() > first["headSeq"].get<int64_t>());
  CHECK(StateVectorOf(third) == Bytes{2, 2, 1, 1, 3});
  CHECK(h.Metric("quire_join_state_cache_misses_total") == misses + 2);
}

}  // namespace
}  // namespace quire::test
