#include "core/types.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "core/codec.h"
#include "core/ids.h"
#include "core/status.h"

namespace quire {
namespace {

TEST_CASE("DocumentIdsFollowThePattern", "[core][types]") {
  CHECK(IsValidDocumentId("abc-DEF_09.x"));
  CHECK(IsValidDocumentId(std::string(128, 'a')));
  CHECK_FALSE(IsValidDocumentId(""));
  CHECK_FALSE(IsValidDocumentId(std::string(129, 'a')));
  CHECK_FALSE(IsValidDocumentId("a/b"));
  CHECK_FALSE(IsValidDocumentId("a%2Fb"));
  CHECK_FALSE(IsValidDocumentId("caf\xc3\xa9"));
}

TEST_CASE("UuidsAreVersion4AndDistinct", "[core][ids]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewUuid();
    REQUIRE(id.size() == 36);
    CHECK(id[14] == '4');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    CHECK(IsValidDocumentId(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("TimeOrderedUuidsAreVersion7AndIncreaseAsText", "[core][ids]") {
  const auto unix_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t before = unix_ms();
  // Many ids per millisecond: the counter, not only the clock, orders them.
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) ids.push_back(NewTimeOrderedUuid());
  const int64_t after = unix_ms();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    INFO(id);
    REQUIRE(id.size() == 36);
    CHECK(id[14] == '7');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    CHECK(IsValidDocumentId(id));
    const int64_t ms = TimeOrderedUuidMillis(id);
    CHECK(ms >= before);
    // Borrowing: at most one millisecond ahead per 4,096 ids.
    CHECK(ms <= after + static_cast<int64_t>(ids.size() / 4096) + 1);
    if (i > 0) REQUIRE(ids[i - 1] < id);
  }
  CHECK(TimeOrderedUuidMillis(NewUuid()) == -1);
  CHECK(TimeOrderedUuidMillis("0189d2a4-5b6c-7def-8abc-0123456789ab") == 0x0189d2a45b6c);
  CHECK(TimeOrderedUuidMillis("0189d2a4-5b6c-7def-8abc-0123456789aB") == -1);
  CHECK(TimeOrderedUuidMillis("0189d2a4+5b6c-7def-8abc-0123456789ab") == -1);
  CHECK(TimeOrderedUuidMillis("0189d2a4-5b6c-7def-cabc-0123456789ab") == -1);
}

TEST_CASE("CrdtKindNamesRoundTrip", "[core][types]") {
  for (CrdtKind k : {CrdtKind::kYjs, CrdtKind::kAutomerge, CrdtKind::kOpaque}) {
    auto parsed = ParseCrdtKind(CrdtKindName(k));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == k);
  }
  CHECK_FALSE(ParseCrdtKind("YJS").has_value());
}

TEST_CASE("AutomergeFoldsByConcatenation", "[core][codec]") {
  const Codec& codec = CodecFor(CrdtKind::kAutomerge);
  REQUIRE(codec.CanFold());
  Bytes snapshot = {1, 2};
  Bytes a = {3}, b = {4, 5};
  ByteView parts[] = {a, b};
  auto folded = codec.Fold(snapshot, parts);
  REQUIRE(folded.ok());
  CHECK(*folded == Bytes{1, 2, 3, 4, 5});
  CHECK_FALSE(codec.ValidateUpdate({}).ok());
}

TEST_CASE("OpaqueDocumentsAreNotFoldedByTheServer", "[core][codec]") {
  const Codec& codec = CodecFor(CrdtKind::kOpaque);
  CHECK_FALSE(codec.CanFold());
  Bytes snapshot;
  auto folded = codec.Fold(snapshot, {});
  CHECK(folded.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("ResultCarriesValueOrStatus", "[core][status]") {
  Result<int> ok = 7;
  REQUIRE(ok.ok());
  CHECK(*ok == 7);
  Result<int> bad = Status::NotFound("doc x");
  CHECK_FALSE(bad.ok());
  CHECK(bad.status().ToString() == "NotFound: doc x");
}

}  // namespace
}  // namespace quire
