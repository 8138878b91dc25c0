// Token minting for access-control tests: real JWTs signed with OpenSSL (HS256 with a secret,
// RS256 with a generated 2048-bit RSA key, ES256 with a generated P-256 key), plus the broken
// tokens tests need (unsigned `alg: none`, arbitrary headers). Independent of io/jwt.cc, which
// only verifies.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace quire::test {

std::string Base64UrlEncodeForTest(std::string_view bytes);

// header.claims.signature with HMAC-SHA256 over `secret`; `header` defaults to HS256/JWT.
std::string MintHs256(std::string_view secret, const nlohmann::json& claims,
                      const nlohmann::json& header = {{"alg", "HS256"}, {"typ", "JWT"}});
// An unsigned token: {"alg":"none"} header, empty signature.
std::string MintUnsigned(const nlohmann::json& claims);

// A freshly generated asymmetric key pair.
class JwtKeyPair {
 public:
  enum class Kind { kRsa, kEcP256 };
  explicit JwtKeyPair(Kind kind);
  ~JwtKeyPair();
  JwtKeyPair(const JwtKeyPair&) = delete;
  JwtKeyPair& operator=(const JwtKeyPair&) = delete;

  Kind kind() const { return kind_; }
  const char* alg() const { return kind_ == Kind::kRsa ? "RS256" : "ES256"; }
  // SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----").
  std::string PublicKeyPem() const;
  // A token signed with the private key (RS256: PKCS#1 v1.5; ES256: JOSE r||s); `header`
  // defaults to {"alg": alg(), "typ": "JWT"}.
  std::string Mint(const nlohmann::json& claims, nlohmann::json header = nullptr) const;

 private:
  struct Key;
  Kind kind_;
  std::unique_ptr<Key> key_;
};

}  // namespace quire::test
