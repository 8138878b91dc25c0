// io/jwt: tokens minted with OpenSSL (tests/support/jwt_mint.h) against the verifier, with an
// injected time: every algorithm, every claim check and the algorithm-confusion attacks.
#include <catch2/catch.hpp>
#include <fstream>

#include "io/jwt.h"
#include "tests/support/jwt_mint.h"
#include "tests/support/test_server.h"

namespace quire::io {
namespace {

using nlohmann::json;
using test::JwtKeyPair;
using test::MintHs256;

constexpr TimestampMs kNowMs = 1'800'000'000'000;  // 2027-01-15
constexpr int64_t kNow = kNowMs / 1000;
constexpr const char* kSecret = "test-secret-with-enough-entropy-0123456789";

std::unique_ptr<JwtVerifier> HsVerifier(JwtOptions options = {}) {
  auto v = JwtVerifier::FromSecret(kSecret, std::move(options));
  REQUIRE(v.ok());
  return std::move(v).value();
}

std::unique_ptr<JwtVerifier> PemVerifier(const JwtKeyPair& key, JwtOptions options = {}) {
  auto v = JwtVerifier::FromPublicKeyPem(key.PublicKeyPem(), std::move(options));
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return std::move(v).value();
}

std::string Why(const Result<Principal>& r) { return r.ok() ? "ok" : r.status().message(); }

// Flips one character of part `part` (0 header, 1 claims, 2 signature) of a compact token.
std::string Tamper(std::string token, int part) {
  size_t start = 0;
  for (int i = 0; i < part; ++i) start = token.find('.', start) + 1;
  char& c = token[start + 2];
  c = c == 'A' ? 'B' : 'A';
  return token;
}

TEST_CASE("EachAlgorithmAcceptsItsOwnValidTokenAndReadsTheClaims", "[jwt]") {
  json claims = {{"sub", "alice"},
                 {"name", "Alice"},
                 {"exp", kNow + 60},
                 {"docs", {{"d1", "viewer"}, {"d2", "editor"}}}};
  JwtKeyPair rsa(JwtKeyPair::Kind::kRsa);
  JwtKeyPair ec(JwtKeyPair::Kind::kEcP256);
  auto hs = HsVerifier();
  auto rs = PemVerifier(rsa);
  auto es = PemVerifier(ec);
  CHECK(hs->algorithm() == JwtAlgorithm::kHs256);
  CHECK(rs->algorithm() == JwtAlgorithm::kRs256);
  CHECK(es->algorithm() == JwtAlgorithm::kEs256);
  for (auto [verifier, token] :
       {std::pair{hs.get(), MintHs256(kSecret, claims)}, std::pair{rs.get(), rsa.Mint(claims)},
        std::pair{es.get(), ec.Mint(claims)}}) {
    auto p = verifier->Verify(token, kNowMs);
    INFO(JwtAlgorithmName(verifier->algorithm()) << ": " << Why(p));
    REQUIRE(p.ok());
    CHECK(p->user_id == "alice");
    CHECK(p->name == "Alice");
    CHECK(p->expires_at == (kNow + 60) * 1000);
    CHECK(p->document_grants ==
          std::map<DocumentId, Role>{{"d1", Role::kViewer}, {"d2", Role::kEditor}});
  }
}

TEST_CASE("TamperedPayloadOrSignatureIsRejected", "[jwt]") {
  json claims = {{"sub", "alice"}, {"exp", kNow + 60}};
  JwtKeyPair rsa(JwtKeyPair::Kind::kRsa);
  JwtKeyPair ec(JwtKeyPair::Kind::kEcP256);
  auto hs = HsVerifier();
  auto rs = PemVerifier(rsa);
  auto es = PemVerifier(ec);
  for (auto [verifier, token] :
       {std::pair{hs.get(), MintHs256(kSecret, claims)}, std::pair{rs.get(), rsa.Mint(claims)},
        std::pair{es.get(), ec.Mint(claims)}}) {
    INFO(JwtAlgorithmName(verifier->algorithm()));
    REQUIRE(verifier->Verify(token, kNowMs).ok());
    for (int part : {1, 2}) {
      auto r = verifier->Verify(Tamper(token, part), kNowMs);
      CHECK_FALSE(r.ok());
      CHECK(Why(r) != "ok");
    }
    // A payload swapped for another user's keeps a now-wrong signature.
    std::string forged = token;
    size_t d1 = forged.find('.'), d2 = forged.find('.', d1 + 1);
    forged.replace(d1 + 1, d2 - d1 - 1, test::Base64UrlEncodeForTest(R"({"sub":"mallory"})"));
    CHECK(Why(verifier->Verify(forged, kNowMs)) == "bad signature");
  }
  // Signed with another secret / another key.
  CHECK(Why(hs->Verify(MintHs256("other-secret", claims), kNowMs)) == "bad signature");
  JwtKeyPair other(JwtKeyPair::Kind::kRsa);
  CHECK(Why(rs->Verify(other.Mint(claims), kNowMs)) == "bad signature");
}

TEST_CASE("ExpiryAndNotBeforeAreCheckedWithTheClockSkew", "[jwt]") {
  auto v = HsVerifier(JwtOptions{"", "", 30});
  auto at = [&](json claims, TimestampMs now) {
    claims["sub"] = "alice";
    return Why(v->Verify(MintHs256(kSecret, claims), now));
  };
  CHECK(at({{"exp", kNow - 31}}, kNowMs) == "token expired");
  CHECK(at({{"exp", kNow - 29}}, kNowMs) == "ok");  // within the skew
  CHECK(at({{"exp", kNow}}, kNowMs + 30'000) == "token expired");
  CHECK(at({{"nbf", kNow + 31}}, kNowMs) == "token not yet valid");
  CHECK(at({{"nbf", kNow + 29}}, kNowMs) == "ok");
  CHECK(at({{"exp", "tomorrow"}}, kNowMs) == "bad exp claim");
  // Integers too large to become milliseconds are refused, not overflowed.
  CHECK(at({{"exp", int64_t{9'000'000'000'000'000}}}, kNowMs) == "bad exp claim");
  CHECK(at({{"exp", uint64_t{18'000'000'000'000'000'000u}}}, kNowMs) == "bad exp claim");
  CHECK(at({{"exp", int64_t{8'000'000'000'000'000}}}, kNowMs) == "ok");
  CHECK(at(json::object(), kNowMs) == "ok");  // exp is optional
  auto strict = HsVerifier(JwtOptions{"", "", 0});
  CHECK(Why(strict->Verify(MintHs256(kSecret, {{"sub", "a"}, {"exp", kNow}}), kNowMs)) ==
        "token expired");
}

TEST_CASE("AudienceAndIssuerMustMatchWhenConfigured", "[jwt]") {
  auto v = HsVerifier(JwtOptions{"quire", "https://id.example", 30});
  auto check = [&](json claims) {
    claims["sub"] = "alice";
    return Why(v->Verify(MintHs256(kSecret, claims), kNowMs));
  };
  CHECK(check({{"aud", "quire"}, {"iss", "https://id.example"}}) == "ok");
  CHECK(check({{"aud", {"other", "quire"}}, {"iss", "https://id.example"}}) == "ok");
  CHECK(check({{"aud", "other"}, {"iss", "https://id.example"}}) == "wrong audience");
  CHECK(check({{"aud", {"other"}}, {"iss", "https://id.example"}}) == "wrong audience");
  CHECK(check({{"iss", "https://id.example"}}) == "wrong audience");
  CHECK(check({{"aud", "quire"}, {"iss", "https://evil.example"}}) == "wrong issuer");
  CHECK(check({{"aud", "quire"}}) == "wrong issuer");
}

TEST_CASE("AlgorithmComesFromTheConfigurationNeverFromTheToken", "[jwt]") {
  json claims = {{"sub", "alice"}, {"exp", kNow + 60}};
  JwtKeyPair rsa(JwtKeyPair::Kind::kRsa);
  JwtKeyPair ec(JwtKeyPair::Kind::kEcP256);
  auto hs = HsVerifier();
  auto rs = PemVerifier(rsa);
  auto es = PemVerifier(ec);
  // alg none, on every verifier.
  for (auto* v : {hs.get(), rs.get(), es.get()}) {
    CHECK(Why(v->Verify(test::MintUnsigned(claims), kNowMs)) == "algorithm none is not accepted");
  }
  // HS/RS confusion: an HS256 token whose HMAC key is the server's public key PEM.
  std::string confused = MintHs256(rsa.PublicKeyPem(), claims);
  CHECK(Why(rs->Verify(confused, kNowMs)) == "algorithm HS256 is not accepted");
  CHECK(Why(es->Verify(MintHs256(ec.PublicKeyPem(), claims), kNowMs)) ==
        "algorithm HS256 is not accepted");
  // RS/ES tokens when only a secret is configured; RS on an ES key and back.
  CHECK(Why(hs->Verify(rsa.Mint(claims), kNowMs)) == "algorithm RS256 is not accepted");
  CHECK(Why(hs->Verify(ec.Mint(claims), kNowMs)) == "algorithm ES256 is not accepted");
  CHECK(Why(es->Verify(rsa.Mint(claims), kNowMs)) == "algorithm RS256 is not accepted");
  CHECK(Why(rs->Verify(ec.Mint(claims), kNowMs)) == "algorithm ES256 is not accepted");
  // A header that lies about its algorithm does not change how the signature is checked.
  std::string lying = MintHs256(kSecret, claims, {{"alg", "RS256"}});
  CHECK(Why(rs->Verify(lying, kNowMs)) == "bad signature");
}

TEST_CASE("MalformedTokensAndClaimsAreRejected", "[jwt]") {
  auto v = HsVerifier();
  for (std::string bad : {"", "abc", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.", "bm90IGpzb24.e30."}) {
    INFO(bad);
    CHECK_FALSE(v->Verify(bad, kNowMs).ok());
  }
  CHECK(Why(v->Verify(MintHs256(kSecret, {{"name", "x"}}), kNowMs)) == "missing sub");
  CHECK(Why(v->Verify(MintHs256(kSecret, {{"sub", 42}}), kNowMs)) == "missing sub");
  CHECK(Why(v->Verify(MintHs256(kSecret, {{"sub", std::string(129, 'u')}}), kNowMs)) ==
        "missing sub");
  CHECK(Why(v->Verify(MintHs256(kSecret, {{"sub", "a"}, {"docs", {{"d", "owner"}}}}), kNowMs)) ==
        "bad docs claim");
  CHECK(Why(v->Verify(MintHs256(kSecret, {{"sub", "a"}, {"docs", {"d"}}}), kNowMs)) ==
        "bad docs claim");
  CHECK(Why(v->Verify(MintHs256(kSecret, {{"sub", "a"}}, {{"alg", "HS256"}, {"crit", {"x"}}}),
                      kNowMs)) == "unsupported critical header");
  // Reasons never echo the token.
  std::string token = MintHs256("wrong", {{"sub", "a"}});
  CHECK(Why(v->Verify(token, kNowMs)).find(token.substr(0, 10)) == std::string::npos);
}

TEST_CASE("Base64UrlRoundTripsAndRejectsPaddingAndForeignCharacters", "[jwt]") {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                std::string("\xff\xfe\0", 3)}) {
    CHECK(Base64UrlDecode(Base64UrlEncode(s)) == s);
    CHECK(Base64UrlEncode(s) == test::Base64UrlEncodeForTest(s));
  }
  CHECK_FALSE(Base64UrlDecode("Zg==").has_value());
  CHECK_FALSE(Base64UrlDecode("Z+8").has_value());
  CHECK_FALSE(Base64UrlDecode("Z").has_value());
  CHECK_FALSE(Base64UrlDecode("Zh").has_value());  // non-zero leftover bits
}

TEST_CASE("BadKeySettingsAreClearStartupErrors", "[jwt][config]") {
  test::TempDir dir;
  Config config;
  config.auth_public_key_file = dir.File("missing.pem");
  auto missing = JwtVerifier::FromConfig(config);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("missing.pem") != std::string::npos);

  std::ofstream(dir.File("garbage.pem")) << "not a key\n";
  config.auth_public_key_file = dir.File("garbage.pem");
  auto garbage = JwtVerifier::FromConfig(config);
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.status().message().find("garbage.pem") != std::string::npos);
  CHECK(garbage.status().message().find("PEM public key") != std::string::npos);

  JwtKeyPair ec(JwtKeyPair::Kind::kEcP256);
  std::ofstream(dir.File("ec.pem")) << ec.PublicKeyPem();
  config.auth_public_key_file = dir.File("ec.pem");
  auto good = JwtVerifier::FromConfig(config);
  REQUIRE(good.ok());
  CHECK((*good)->algorithm() == JwtAlgorithm::kEs256);

  config.auth_secret = "s";
  CHECK_FALSE(JwtVerifier::FromConfig(config).ok());  // both set

  // The server refuses to start with a bad key file, naming it.
  Config server_config = test::TestServer::MemoryConfig();
  server_config.auth_public_key_file = dir.File("garbage.pem");
  test::TestServer server(server_config);
  Status s = server.Start();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("garbage.pem") != std::string::npos);
}

}  // namespace
}  // namespace quire::io
