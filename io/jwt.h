// JWT (compact JWS) verification for access control (io/access.h).
//
// The algorithm is fixed by the verifier's key, never taken from the token: a verifier made
// from a shared secret accepts only HS256; one made from a PEM public key accepts only RS256
// (RSA key) or only ES256 (EC P-256 key). A token whose header names another `alg` (including
// `none`) is rejected, which closes the HS/RS confusion (an HS256 token "signed" with the
// public key) and unsigned tokens.
//
// Claims: `sub` (required, the user id), `exp` / `nbf` (NumericDate seconds, checked with the
// configured skew), `aud` (string or array; must contain the configured audience when one is
// set), `iss` (must equal the configured issuer when one is set), `name` (optional display
// name) and `docs` (optional object {"<document id>": "viewer" | "editor"}: share-link grants).
//
// Signatures are checked with OpenSSL's EVP (HMAC compared with CRYPTO_memcmp; RSA PKCS#1 v1.5
// with SHA-256; ECDSA P-256 with SHA-256, JOSE's r||s signature converted to DER).
//
// Thread-safe after construction (Verify is const and keeps no state between calls).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/status.h"
#include "io/access.h"

namespace quire::io {

enum class JwtAlgorithm { kHs256, kRs256, kEs256 };
std::string_view JwtAlgorithmName(JwtAlgorithm alg);  // "HS256", "RS256", "ES256"

struct JwtOptions {
  std::string audience;       // empty: `aud` is not checked
  std::string issuer;         // empty: `iss` is not checked
  int64_t clock_skew_s = 30;  // tolerance on exp and nbf
};

class JwtVerifier {
 public:
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // HS256 with `secret` (InvalidArgument when empty).
  static Result<std::unique_ptr<JwtVerifier>> FromSecret(std::string secret, JwtOptions options);
  // RS256 or ES256, by the type of the PEM public key (SubjectPublicKeyInfo, "BEGIN PUBLIC
  // KEY"). InvalidArgument for unreadable PEM, other key types and EC curves other than P-256.
  static Result<std::unique_ptr<JwtVerifier>> FromPublicKeyPem(std::string_view pem,
                                                               JwtOptions options);
  // From the config's auth settings: the secret, else the key file (read here; a missing or
  // bad file is an error naming it). InvalidArgument when both or neither are set.
  static Result<std::unique_ptr<JwtVerifier>> FromConfig(const Config& config);

  JwtAlgorithm algorithm() const { return algorithm_; }

  // The principal of `token` at `now_ms` (ms since the epoch). Unauthenticated-style
  // failures are InvalidArgument with a short reason that never contains the token:
  // "malformed token", "algorithm RS256 is not accepted", "bad signature", "token expired",
  // "token not yet valid", "wrong audience", "wrong issuer", "missing sub", "bad docs claim".
  Result<Principal> Verify(std::string_view token, TimestampMs now_ms) const;

 private:
  struct Key;
  JwtVerifier(JwtAlgorithm algorithm, std::unique_ptr<Key> key, JwtOptions options);
  bool CheckSignature(std::string_view signing_input, const std::string& signature) const;

  JwtAlgorithm algorithm_;
  std::unique_ptr<Key> key_;
  JwtOptions options_;
};

// base64url without padding (RFC 7515 section 2); nullopt for characters outside the alphabet
// or an impossible length. Padding '=' is not accepted (JWS forbids it).
std::optional<std::string> Base64UrlDecode(std::string_view text);
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace quire::io
