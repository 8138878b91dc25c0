#include "tests/support/yjs_test_updates.h"

#include <catch2/catch.hpp>
#include <string>

#include "core/yjs/update.h"

namespace quire::test {
namespace {

void VarUint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(0x80 | (v & 0x7f)));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

void VarString(Bytes& out, std::string_view s) {
  VarUint(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// One client block of one struct: client, clock, then the struct from its info byte.
Bytes OneStruct(uint64_t client, uint64_t clock) {
  Bytes out;
  VarUint(out, 1);  // clients
  VarUint(out, 1);  // structs of this client
  VarUint(out, client);
  VarUint(out, clock);
  return out;
}

}  // namespace

Bytes YjsRootInsert(uint64_t client, uint64_t clock, std::string_view text, std::string_view root) {
  Bytes out = OneStruct(client, clock);
  out.push_back(4);  // ContentString, no origin, no right origin, no parentSub
  VarUint(out, 1);   // parent: a root type by name
  VarString(out, root);
  VarString(out, text);
  VarUint(out, 0);  // empty delete set
  return out;
}

Bytes YjsInsertAfter(uint64_t client, uint64_t clock, uint64_t origin_client, uint64_t origin_clock,
                     std::string_view text) {
  Bytes out = OneStruct(client, clock);
  out.push_back(0x84);  // ContentString with an origin
  VarUint(out, origin_client);
  VarUint(out, origin_clock);
  VarString(out, text);
  VarUint(out, 0);
  return out;
}

void CheckDiffCompletesTheClient(ByteView diff, ByteView client_state, ByteView head,
                                 const std::set<uint64_t>& clients, uint64_t known_client,
                                 uint64_t known_clock) {
  auto decoded = yjs::DecodeUpdate(diff);
  REQUIRE(decoded.ok());
  std::set<uint64_t> seen;
  for (const yjs::Struct& st : decoded->structs) {
    INFO("struct " << st.id.client << ":" << st.id.clock);
    CHECK(st.kind == yjs::StructKind::kItem);
    seen.insert(st.id.client);
    if (st.id.client == known_client) CHECK(st.id.clock >= known_clock);
  }
  CHECK(seen == clients);
  ByteView parts[] = {client_state, diff};
  auto merged = yjs::MergeUpdates(parts);
  REQUIRE(merged.ok());
  std::string difference;
  auto same = yjs::SameDocument(*merged, head, &difference);
  REQUIRE(same.ok());
  INFO(difference);
  CHECK(*same);
}

}  // namespace quire::test
