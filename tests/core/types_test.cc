#include <catch2/catch.hpp>

#include <set>

#include "core/codec.h"
#include "core/ids.h"
#include "core/status.h"
#include "core/types.h"

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
