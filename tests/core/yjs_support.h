// Helpers shared by the Yjs engine tests: loading the test vectors of tests/data/yjs/ (made by
// the real yjs 13.6 package, see tests/data/yjs/README.md) and byte conversions.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/base64.h"
#include "core/types.h"

namespace quire::yjs::testing {

inline nlohmann::json LoadVectors(const std::string& name) {
  std::ifstream in(std::string(QUIRE_SOURCE_DIR) + "/tests/data/yjs/" + name);
  if (!in) throw std::runtime_error("cannot open tests/data/yjs/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline Bytes B64(const std::string& text) {
  auto b = Base64Decode(text);
  if (!b.ok()) throw std::runtime_error("bad base64 in vectors: " + text);
  return *b;
}

inline Bytes Hex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

inline std::string ToHex(ByteView b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t x : b) {
    out.push_back(kHex[x >> 4]);
    out.push_back(kHex[x & 15]);
  }
  return out;
}

}  // namespace quire::yjs::testing
