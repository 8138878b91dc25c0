// The struct-level inspector behind `quire yjs inspect`.
#include <string>

#include "core/base64.h"
#include "core/yjs/lib0_internal.h"
#include "core/yjs/update.h"

namespace quire::yjs {
namespace {

using internal::AppendJsonString;
using internal::Reader;

constexpr const char* kTypeNames[] = {"YArray",       "YMap",     "YText",   "YXmlElement",
                                      "YXmlFragment", "YXmlHook", "YXmlText"};

void AppendId(std::string* out, const Id& id) {
  *out += '[' + std::to_string(id.client) + ',' + std::to_string(id.clock) + ']';
}

// The content as a JSON object. The content was validated when the update was decoded.
std::string ContentJson(const Struct& s) {
  Reader r(s.content);
  std::string out = "{\"ref\":" + std::to_string(static_cast<int>(s.content_kind)) +
                    ",\"kind\":\"" + std::string(ContentKindName(s.content_kind)) + "\"";
  switch (s.content_kind) {
    case ContentKind::kDeleted:
      out += ",\"len\":" + std::to_string(s.length);
      break;
    case ContentKind::kJson: {
      uint64_t n = 0;
      (void)r.ReadVarUint(&n);
      out += ",\"arr\":[";
      for (uint64_t i = 0; i < n; ++i) {
        std::string_view text;
        (void)r.ReadVarString(&text);
        if (i > 0) out += ',';
        out += text == "undefined" ? R"({"$undefined":true})" : std::string(text);
      }
      out += ']';
      break;
    }
    case ContentKind::kBinary: {
      ByteView b;
      (void)r.ReadVarBytes(&b);
      out += ",\"bytes_b64\":\"" + Base64Encode(b) + "\"";
      break;
    }
    case ContentKind::kString: {
      std::string_view str;
      (void)r.ReadVarString(&str);
      out += ",\"str\":";
      AppendJsonString(&out, str);
      out += ",\"utf16_len\":" + std::to_string(s.length) +
             ",\"utf8_bytes\":" + std::to_string(str.size());
      break;
    }
    case ContentKind::kEmbed: {
      std::string_view text;
      (void)r.ReadVarString(&text);
      out += ",\"embed\":" + std::string(text);
      break;
    }
    case ContentKind::kFormat: {
      std::string_view key, value;
      (void)r.ReadVarString(&key);
      (void)r.ReadVarString(&value);
      out += ",\"key\":";
      AppendJsonString(&out, key);
      out += ",\"value\":" + std::string(value);
      break;
    }
    case ContentKind::kType: {
      uint64_t type_ref = 0;
      (void)r.ReadVarUint(&type_ref);
      out += ",\"typeRef\":" + std::to_string(type_ref) + ",\"type\":\"" +
             kTypeNames[type_ref <= 6 ? type_ref : 0] + "\"";
      if (type_ref == 3 || type_ref == 5) {
        std::string_view name;
        (void)r.ReadVarString(&name);
        out += type_ref == 3 ? ",\"nodeName\":" : ",\"hookName\":";
        AppendJsonString(&out, name);
      }
      break;
    }
    case ContentKind::kAny: {
      uint64_t n = 0;
      (void)r.ReadVarUint(&n);
      out += ",\"arr\":[";
      (void)internal::ReadAnys(r, n, &out);
      out += ']';
      break;
    }
    case ContentKind::kDoc: {
      std::string_view guid;
      (void)r.ReadVarString(&guid);
      out += ",\"guid\":";
      AppendJsonString(&out, guid);
      out += ",\"opts\":";
      (void)internal::ReadAnys(r, 1, &out);
      break;
    }
    case ContentKind::kNone:
      break;
  }
  out += '}';
  return out;
}

const char* StructName(StructKind kind) {
  switch (kind) {
    case StructKind::kGc:
      return "GC";
    case StructKind::kSkip:
      return "Skip";
    case StructKind::kItem:
      return "Item";
  }
  return "?";
}

std::string StructJson(const Struct& s) {
  std::string out = "{\"struct\":\"" + std::string(StructName(s.kind)) + "\",\"id\":";
  AppendId(&out, s.id);
  out += ",\"length\":" + std::to_string(s.length);
  if (s.kind == StructKind::kItem) {
    out += ",\"origin\":";
    if (s.has_origin)
      AppendId(&out, s.origin);
    else
      out += "null";
    out += ",\"rightOrigin\":";
    if (s.has_right_origin)
      AppendId(&out, s.right_origin);
    else
      out += "null";
    out += ",\"parent\":";
    if (s.parent_kind == ParentKind::kRoot) {
      out += "{\"root\":";
      AppendJsonString(&out, s.parent_root);
      out += '}';
    } else if (s.parent_kind == ParentKind::kItem) {
      out += "{\"item\":";
      AppendId(&out, s.parent_item);
      out += '}';
    } else {
      out += "null";
    }
    out += ",\"parentSub\":";
    if (s.has_parent_sub)
      AppendJsonString(&out, s.parent_sub);
    else
      out += "null";
    out += ",\"content\":" + ContentJson(s);
  }
  out += '}';
  return out;
}

std::string StructText(const Struct& s) {
  std::string out = std::string(StructName(s.kind)) + " (" + std::to_string(s.id.client) + "," +
                    std::to_string(s.id.clock) + ") len " + std::to_string(s.length);
  if (s.kind != StructKind::kItem) return out;
  // Appends rather than concatenating a literal with std::to_string: GCC 12 at -O3 reports a
  // false -Wrestrict on `"(" + std::to_string(...)`.
  const auto id = [](const Id& i) {
    std::string text;
    text += '(';
    text += std::to_string(i.client);
    text += ',';
    text += std::to_string(i.clock);
    text += ')';
    return text;
  };
  if (s.has_origin) (out += " origin ") += id(s.origin);
  if (s.has_right_origin) (out += " right ") += id(s.right_origin);
  if (s.parent_kind == ParentKind::kRoot) {
    out += " parent root ";
    AppendJsonString(&out, s.parent_root);
  } else if (s.parent_kind == ParentKind::kItem) {
    (out += " parent item ") += id(s.parent_item);
  }
  if (s.has_parent_sub) {
    out += " key ";
    AppendJsonString(&out, s.parent_sub);
  }
  (out += ' ') += ContentJson(s);
  return out;
}

}  // namespace

Result<std::string> InspectUpdate(ByteView update, InspectFormat format) {
  auto decoded = DecodeUpdate(update);
  if (!decoded.ok()) return decoded.status();
  std::string out;
  if (format == InspectFormat::kJson) {
    out = "{\"structs\":[";
    for (size_t i = 0; i < decoded->structs.size(); ++i) {
      if (i > 0) out += ',';
      out += StructJson(decoded->structs[i]);
    }
    out += "],\"ds\":[";
    for (size_t i = 0; i < decoded->delete_set.size(); ++i) {
      const DeleteSetClient& c = decoded->delete_set[i];
      if (i > 0) out += ',';
      out += '[' + std::to_string(c.client) + ",[";
      for (size_t k = 0; k < c.ranges.size(); ++k) {
        if (k > 0) out += ',';
        out +=
            '[' + std::to_string(c.ranges[k].clock) + ',' + std::to_string(c.ranges[k].len) + ']';
      }
      out += "]]";
    }
    out += "]}";
    return out;
  }
  out = std::to_string(update.size()) + " bytes, " + std::to_string(decoded->structs.size()) +
        " structs, delete set of " + std::to_string(decoded->delete_set.size()) + " clients\n";
  for (const Struct& s : decoded->structs) out += StructText(s) + '\n';
  for (const DeleteSetClient& c : decoded->delete_set) {
    out += "delete client " + std::to_string(c.client) + ":";
    for (const DeleteRange& r : c.ranges) {
      out += " [" + std::to_string(r.clock) + "," + std::to_string(r.clock + r.len) + ")";
    }
    out += '\n';
  }
  return out;
}

}  // namespace quire::yjs
