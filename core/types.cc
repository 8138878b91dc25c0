#include "core/types.h"

namespace quire {

std::string_view CrdtKindName(CrdtKind kind) {
  switch (kind) {
    case CrdtKind::kYjs: return "yjs";
    case CrdtKind::kAutomerge: return "automerge";
    case CrdtKind::kOpaque: return "opaque";
  }
  return "yjs";
}

std::optional<CrdtKind> ParseCrdtKind(std::string_view name) {
  if (name == "yjs") return CrdtKind::kYjs;
  if (name == "automerge") return CrdtKind::kAutomerge;
  if (name == "opaque") return CrdtKind::kOpaque;
  return std::nullopt;
}

bool IsValidDocumentId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool IsValidOpId(std::string_view op_id) {
  if (op_id.empty() || op_id.size() > 128) return false;
  for (char c : op_id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace quire
