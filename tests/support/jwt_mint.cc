#include "tests/support/jwt_mint.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <stdexcept>

namespace quire::test {

using nlohmann::json;

std::string Base64UrlEncodeForTest(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

namespace {

std::string SigningInput(const json& header, const json& claims) {
  return Base64UrlEncodeForTest(header.dump()) + "." + Base64UrlEncodeForTest(claims.dump());
}

}  // namespace

std::string MintHs256(std::string_view secret, const json& claims, const json& header) {
  std::string input = SigningInput(header, claims);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + Base64UrlEncodeForTest(std::string_view(reinterpret_cast<char*>(mac), len));
}

std::string MintUnsigned(const json& claims) {
  return SigningInput({{"alg", "none"}, {"typ", "JWT"}}, claims) + ".";
}

struct JwtKeyPair::Key {
  EVP_PKEY* pkey = nullptr;
  ~Key() { EVP_PKEY_free(pkey); }
};

JwtKeyPair::JwtKeyPair(Kind kind) : kind_(kind), key_(std::make_unique<Key>()) {
  key_->pkey = kind == Kind::kRsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key_->pkey == nullptr) throw std::runtime_error("key generation failed");
}

JwtKeyPair::~JwtKeyPair() = default;

std::string JwtKeyPair::PublicKeyPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key_->pkey);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

std::string JwtKeyPair::Mint(const json& claims, json header) const {
  if (header.is_null()) header = {{"alg", alg()}, {"typ", "JWT"}};
  std::string input = SigningInput(header, claims);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey);
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                 input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (kind_ == Kind::kEcP256) {
    // DER ECDSA-Sig-Value -> JOSE r || s (32 bytes each).
    const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string jose(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(jose.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(jose.data()) + 32, 32);
    ECDSA_SIG_free(es);
    sig = jose;
  }
  return input + "." + Base64UrlEncodeForTest(sig);
}

}  // namespace quire::test
