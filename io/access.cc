#include "io/access.h"

#include <utility>

#include "io/http_message.h"

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

}  // namespace

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
    constexpr std::string_view kBearer = "Bearer ";
    if (header->size() > kBearer.size() && header->substr(0, kBearer.size()) == kBearer) {
      return std::string(header->substr(kBearer.size()));
    }
  }
  if (auto token = request.Query("token")) return std::string(*token);
  return {};
}

}  // namespace quire::io
