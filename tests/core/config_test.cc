#include <catch2/catch.hpp>

#include <map>

#include "core/config.h"

namespace quire {
namespace {

TEST_CASE("FlagsOverrideEnvironment", "[core][config]") {
  Config c;
  std::map<std::string, std::string> env = {{"DATABASE_URL", "memory://"}, {"QUIRE_PORT", "9000"}};
  REQUIRE(ApplyEnvironment(c, [&](const char* n) -> const char* {
            auto it = env.find(n);
            return it == env.end() ? nullptr : it->second.c_str();
          }).ok());
  CHECK(c.database_url == "memory://");
  CHECK(c.port == 9000);
  REQUIRE(ApplyServeFlags(c, {"--port=9100", "--sync", "normal", "--allowed-origins=http://a, http://b"}).ok());
  CHECK(c.port == 9100);
  CHECK(c.sync_mode == SyncMode::kNormal);
  CHECK(c.allowed_origins == std::vector<std::string>{"http://a", "http://b"});
}

TEST_CASE("BadFlagsAreRejectedWithTheirName", "[core][config]") {
  Config c;
  Status s = ApplyServeFlags(c, {"--port=70000"});
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("port") != std::string::npos);
  CHECK_FALSE(ApplyServeFlags(c, {"--nope=1"}).ok());
  CHECK_FALSE(ApplyServeFlags(c, {"--database-url=postgres://x"}).ok());
  CHECK_FALSE(ApplyServeFlags(c, {"--port"}).ok());
}

}  // namespace
}  // namespace quire
