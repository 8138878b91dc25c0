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

auto EnvOf(const std::map<std::string, std::string>& env) {
  return [&env](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

TEST_CASE("QuireAutoCreateEnvironmentTurnsAutoCreateOff", "[core][config]") {
  for (const char* off : {"0", "false", "no"}) {
    Config c;
    std::map<std::string, std::string> env = {{"QUIRE_AUTO_CREATE", off}};
    REQUIRE(ApplyEnvironment(c, EnvOf(env)).ok());
    CHECK_FALSE(c.auto_create_documents);
  }
  Config c;
  c.auto_create_documents = false;
  std::map<std::string, std::string> on = {{"QUIRE_AUTO_CREATE", "true"}};
  REQUIRE(ApplyEnvironment(c, EnvOf(on)).ok());
  CHECK(c.auto_create_documents);
  std::map<std::string, std::string> bad = {{"QUIRE_AUTO_CREATE", "maybe"}};
  Status s = ApplyEnvironment(c, EnvOf(bad));
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("QUIRE_AUTO_CREATE") != std::string::npos);
  // The flag still wins over the environment.
  REQUIRE(ApplyServeFlags(c, {"--no-auto-create"}).ok());
  CHECK_FALSE(c.auto_create_documents);
}

TEST_CASE("IoUringIsOnByDefaultAndTurnsOffByEnvironmentOrFlag", "[core][config]") {
  Config c;
  CHECK(c.io_uring);
  std::map<std::string, std::string> env = {{"QUIRE_IO_URING", "off"}};
  REQUIRE(ApplyEnvironment(c, EnvOf(env)).ok());
  CHECK_FALSE(c.io_uring);
  REQUIRE(ApplyServeFlags(c, {"--io-uring=on"}).ok());
  CHECK(c.io_uring);
  Status s = ApplyServeFlags(c, {"--io-uring=maybe"});
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "io-uring: expected on or off");
  std::map<std::string, std::string> bad = {{"QUIRE_IO_URING", "1"}};
  s = ApplyEnvironment(c, EnvOf(bad));
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("QUIRE_IO_URING") != std::string::npos);
}

TEST_CASE("AuthSettingsComeFromEnvironmentAndFlags", "[core][config]") {
  Config c;
  CHECK_FALSE(c.auth_enabled());
  CHECK(c.auth_clock_skew_s == 30);
  std::map<std::string, std::string> env = {{"QUIRE_AUTH_SECRET", "s3cret"},
                                            {"QUIRE_AUTH_AUDIENCE", "quire"},
                                            {"QUIRE_AUTH_ISSUER", "https://issuer"},
                                            {"QUIRE_AUTH_CLOCK_SKEW", "5"}};
  REQUIRE(ApplyEnvironment(c, EnvOf(env)).ok());
  CHECK(c.auth_enabled());
  CHECK(c.auth_secret == "s3cret");
  CHECK(c.auth_audience == "quire");
  CHECK(c.auth_issuer == "https://issuer");
  CHECK(c.auth_clock_skew_s == 5);

  Config k;
  REQUIRE(ApplyServeFlags(k, {"--auth-public-key=/etc/quire/key.pem", "--auth-clock-skew", "0"}).ok());
  CHECK(k.auth_enabled());
  CHECK(k.auth_public_key_file == "/etc/quire/key.pem");
  CHECK(k.auth_clock_skew_s == 0);
  CHECK_FALSE(ApplyServeFlags(k, {"--auth-clock-skew=-1"}).ok());
  CHECK(ServeFlagsHelp().find("--auth-secret") != std::string::npos);
  CHECK(ServeFlagsHelp().find("QUIRE_AUTH_PUBLIC_KEY") != std::string::npos);
}

}  // namespace
}  // namespace quire
