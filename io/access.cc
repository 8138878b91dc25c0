#include "io/access.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "io/http_message.h"
#include "io/jwt.h"
#include "projection/document_service.h"

namespace quire::io {
namespace {

class OpenAccessControl final : public AccessControl {
 public:
  explicit OpenAccessControl(std::function<bool(const DocumentId&)> document_exists)
      : document_exists_(std::move(document_exists)) {}

  bool enabled() const override { return false; }

  std::optional<Principal> Authenticate(std::string_view /*token*/,
                                        std::string* /*why*/) const override {
    return Principal{};
  }

  Role RoleFor(const Principal& /*principal*/, const DocumentId& id) const override {
    return document_exists_(id) ? Role::kEditor : Role::kNone;
  }

 private:
  std::function<bool(const DocumentId&)> document_exists_;
};

class TokenAccessControl final : public AccessControl {
 public:
  TokenAccessControl(std::unique_ptr<JwtVerifier> verifier, const projection::DocumentService& docs,
                     const Clock& clock, int64_t clock_skew_s)
      : verifier_(std::move(verifier)),
        docs_(docs),
        clock_(clock),
        clock_skew_ms_(clock_skew_s * 1000) {}

  bool enabled() const override { return true; }

  std::optional<Principal> Authenticate(std::string_view token, std::string* why) const override {
    auto principal = verifier_->Verify(token, clock_.NowMs());
    if (!principal.ok()) {
      if (why != nullptr) *why = principal.status().message();
      return std::nullopt;
    }
    return std::move(principal).value();
  }

  Role RoleFor(const Principal& principal, const DocumentId& id) const override {
    const projection::DocumentRecord* record = docs_.Find(id);
    if (record == nullptr || principal.user_id.empty()) return Role::kNone;
    if (record->owner_id == principal.user_id) return Role::kOwner;
    Role role = Role::kNone;
    if (auto it = record->grants.find(principal.user_id); it != record->grants.end()) {
      role = ParseRole(it->second).value_or(Role::kNone);
    }
    if (auto it = principal.document_grants.find(id); it != principal.document_grants.end()) {
      role = std::max(role, it->second);
    }
    return role;
  }

  // JwtVerifier refuses a token once now >= exp + skew (whole seconds): the same instant.
  TimestampMs ExpiresAt(const Principal& principal) const override {
    return principal.expires_at == 0 ? 0 : principal.expires_at + clock_skew_ms_;
  }

 private:
  std::unique_ptr<JwtVerifier> verifier_;
  const projection::DocumentService& docs_;
  const Clock& clock_;
  int64_t clock_skew_ms_;
};

}  // namespace

Result<std::unique_ptr<AccessControl>> MakeAccessControl(const Config& config,
                                                         const projection::DocumentService& docs,
                                                         const Clock& clock) {
  if (!config.auth_enabled()) {
    const projection::DocumentService* d = &docs;
    return MakeOpenAccessControl([d](const DocumentId& id) { return d->Find(id) != nullptr; });
  }
  auto verifier = JwtVerifier::FromConfig(config);
  if (!verifier.ok()) return verifier.status();
  return std::unique_ptr<AccessControl>(std::make_unique<TokenAccessControl>(
      std::move(verifier).value(), docs, clock, config.auth_clock_skew_s));
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kViewer:
      return "viewer";
    case Role::kEditor:
      return "editor";
    case Role::kOwner:
      return "owner";
  }
  return "none";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kNone, Role::kViewer, Role::kEditor, Role::kOwner}) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

std::unique_ptr<AccessControl> MakeOpenAccessControl(
    std::function<bool(const DocumentId&)> document_exists) {
  return std::make_unique<OpenAccessControl>(std::move(document_exists));
}

std::string TokenFromRequest(const HttpRequest& request) {
  if (auto header = request.Header("authorization")) {
    constexpr std::string_view kBearer = "bearer";
    std::string_view value = *header;
    bool bearer = value.size() > kBearer.size() && (value[kBearer.size()] == ' ') &&
                  std::equal(kBearer.begin(), kBearer.end(), value.begin(), [](char k, char c) {
                    return k == std::tolower(static_cast<unsigned char>(c));
                  });
    if (bearer) {
      value.remove_prefix(kBearer.size());
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (!value.empty()) return std::string(value);
    }
  }
  if (auto token = request.Query("token")) return std::string(*token);
  return {};
}

}  // namespace quire::io
