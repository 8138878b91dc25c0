#include "io/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace quire::io {
namespace {

using nlohmann::json;

constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr size_t kMaxSubBytes = 128;

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

Status Fail(std::string_view why) { return Status::InvalidArgument(std::string(why)); }

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct EcdsaSigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

// JOSE's ES256 signature is r || s, 32 bytes each; OpenSSL verifies DER (RFC 7518 3.4).
std::optional<std::string> JoseToDer(const std::string& jose) {
  if (jose.size() != 64) return std::nullopt;
  std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
  if (!sig) return std::nullopt;
  const auto* bytes = reinterpret_cast<const unsigned char*>(jose.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  if (r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return std::nullopt;
  std::string der(static_cast<size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != len) return std::nullopt;
  return der;
}

// A NumericDate claim in seconds; nullopt when absent, error when not a number.
Result<std::optional<int64_t>> NumericDate(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<int64_t>();
  // Bounded so that seconds * 1000 plus any clock skew stays far inside int64_t (9e15 s is
  // 285 million years): larger values are refused rather than overflowing.
  constexpr int64_t kMaxSeconds = 9'000'000'000'000'000;
  if (it->is_number_integer()) {
    // Unsigned beyond INT64_MAX reads as negative through get<int64_t>; check it as unsigned.
    if (it->is_number_unsigned() && it->get<uint64_t>() >= static_cast<uint64_t>(kMaxSeconds)) {
      return Fail(std::string("bad ") + name + " claim");
    }
    int64_t v = it->get<int64_t>();
    if (v > -kMaxSeconds && v < kMaxSeconds) return std::optional<int64_t>(v);
    return Fail(std::string("bad ") + name + " claim");
  }
  if (it->is_number_float()) {
    double v = it->get<double>();
    if (v > -9.0e15 && v < 9.0e15) return std::optional<int64_t>(static_cast<int64_t>(v));
  }
  return Fail(std::string("bad ") + name + " claim");
}

}  // namespace

struct JwtVerifier::Key {
  std::string secret;                           // HS256
  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey;  // RS256 / ES256
};

std::string_view JwtAlgorithmName(JwtAlgorithm alg) {
  switch (alg) {
    case JwtAlgorithm::kHs256:
      return "HS256";
    case JwtAlgorithm::kRs256:
      return "RS256";
    case JwtAlgorithm::kEs256:
      return "ES256";
  }
  return "HS256";
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Base64UrlValue(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero (one canonical encoding per byte string).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

JwtVerifier::JwtVerifier(JwtAlgorithm algorithm, std::unique_ptr<Key> key, JwtOptions options)
    : algorithm_(algorithm), key_(std::move(key)), options_(std::move(options)) {}

JwtVerifier::~JwtVerifier() = default;

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::FromSecret(std::string secret,
                                                             JwtOptions options) {
  if (secret.empty()) return Status::InvalidArgument("auth secret: must not be empty");
  auto key = std::make_unique<Key>();
  key->secret = std::move(secret);
  return std::unique_ptr<JwtVerifier>(
      new JwtVerifier(JwtAlgorithm::kHs256, std::move(key), std::move(options)));
}

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::FromPublicKeyPem(std::string_view pem,
                                                                   JwtOptions options) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("BIO_new_mem_buf failed");
  auto key = std::make_unique<Key>();
  key->pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key->pkey) {
    return Status::InvalidArgument("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
  }
  JwtAlgorithm alg;
  switch (EVP_PKEY_get_base_id(key->pkey.get())) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key->pkey.get()) < 2048) {
        return Status::InvalidArgument("RSA public key: at least 2048 bits are required");
      }
      alg = JwtAlgorithm::kRs256;
      break;
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key->pkey.get(), group, sizeof group, &len) != 1 ||
          std::string_view(group, len) != "prime256v1") {
        return Status::InvalidArgument("EC public key: only P-256 (ES256) is supported");
      }
      alg = JwtAlgorithm::kEs256;
      break;
    }
    default:
      return Status::InvalidArgument("public key: only RSA (RS256) and EC P-256 (ES256) keys");
  }
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(alg, std::move(key), std::move(options)));
}

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::FromConfig(const Config& config) {
  JwtOptions options{config.auth_audience, config.auth_issuer, config.auth_clock_skew_s};
  if (!config.auth_secret.empty() && !config.auth_public_key_file.empty()) {
    return Status::InvalidArgument(
        "auth: set either --auth-secret (HS256) or --auth-public-key (RS256/ES256), not both");
  }
  if (!config.auth_secret.empty()) return FromSecret(config.auth_secret, std::move(options));
  if (config.auth_public_key_file.empty()) {
    return Status::InvalidArgument("auth: no secret and no public key configured");
  }
  std::ifstream in(config.auth_public_key_file, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("auth-public-key: cannot read '" + config.auth_public_key_file +
                                   "'");
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto verifier = FromPublicKeyPem(text.str(), std::move(options));
  if (!verifier.ok()) {
    return Status::InvalidArgument("auth-public-key '" + config.auth_public_key_file +
                                   "': " + verifier.status().message());
  }
  return verifier;
}

bool JwtVerifier::CheckSignature(std::string_view signing_input,
                                 const std::string& signature) const {
  if (algorithm_ == JwtAlgorithm::kHs256) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key_->secret.data(), static_cast<int>(key_->secret.size()),
             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
             mac.data(), &mac_len) == nullptr) {
      return false;
    }
    return signature.size() == mac_len && CRYPTO_memcmp(mac.data(), signature.data(), mac_len) == 0;
  }
  std::string der;
  const std::string* sig = &signature;
  if (algorithm_ == JwtAlgorithm::kEs256) {
    auto converted = JoseToDer(signature);
    if (!converted.has_value()) return false;
    der = std::move(*converted);
    sig = &der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) != 1) {
    return false;
  }
  // RSA keys default to PKCS#1 v1.5 padding, which is RS256.
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                          sig->size(), reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

Result<Principal> JwtVerifier::Verify(std::string_view token, TimestampMs now_ms) const {
  if (token.empty()) return Fail("missing token");
  if (token.size() > kMaxTokenBytes) return Fail("malformed token");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Fail("malformed token");
  }
  auto header_text = Base64UrlDecode(token.substr(0, dot1));
  auto claims_text = Base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!header_text || !claims_text || !signature) return Fail("malformed token");
  json header = json::parse(*header_text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return Fail("malformed token");

  // The algorithm is the verifier's; the header may only agree with it.
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) return Fail("malformed token");
  if (alg->get_ref<const std::string&>() != JwtAlgorithmName(algorithm_)) {
    return Fail("algorithm " + alg->get<std::string>().substr(0, 16) + " is not accepted");
  }
  if (header.contains("crit")) return Fail("unsupported critical header");
  if (!CheckSignature(token.substr(0, dot2), *signature)) return Fail("bad signature");

  json claims = json::parse(*claims_text, nullptr, /*allow_exceptions=*/false);
  if (claims.is_discarded() || !claims.is_object()) return Fail("malformed token");
  int64_t now_s = now_ms / 1000;
  auto exp = NumericDate(claims, "exp");
  if (!exp.ok()) return exp.status();
  if (exp->has_value() && now_s >= **exp + options_.clock_skew_s) return Fail("token expired");
  auto nbf = NumericDate(claims, "nbf");
  if (!nbf.ok()) return nbf.status();
  if (nbf->has_value() && now_s + options_.clock_skew_s < **nbf) {
    return Fail("token not yet valid");
  }
  if (!options_.audience.empty()) {
    bool match = false;
    if (auto aud = claims.find("aud"); aud != claims.end()) {
      if (aud->is_string()) {
        match = aud->get_ref<const std::string&>() == options_.audience;
      } else if (aud->is_array()) {
        for (const json& a : *aud) match = match || (a.is_string() && a == options_.audience);
      }
    }
    if (!match) return Fail("wrong audience");
  }
  if (!options_.issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || *iss != options_.issuer) {
      return Fail("wrong issuer");
    }
  }
  Principal principal;
  auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty() ||
      sub->get_ref<const std::string&>().size() > kMaxSubBytes) {
    return Fail("missing sub");
  }
  principal.user_id = sub->get<std::string>();
  if (auto name = claims.find("name"); name != claims.end() && name->is_string()) {
    principal.name = name->get<std::string>();
  }
  if (exp->has_value()) principal.expires_at = **exp * 1000;
  if (auto docs = claims.find("docs"); docs != claims.end()) {
    if (!docs->is_object()) return Fail("bad docs claim");
    for (auto it = docs->begin(); it != docs->end(); ++it) {
      std::optional<Role> role;
      if (it->is_string()) role = ParseRole(it->get_ref<const std::string&>());
      // A token may share a document for reading or writing, never hand out ownership.
      if (!role.has_value() || (*role != Role::kViewer && *role != Role::kEditor)) {
        return Fail("bad docs claim");
      }
      principal.document_grants[it.key()] = *role;
    }
  }
  return principal;
}

}  // namespace quire::io
