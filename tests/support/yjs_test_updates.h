// Hand-built Yjs v1 updates for tests: one String item, no delete set. Valid for the server's
// validation (core/yjs/update.h) and for yjs itself, of any size.
#pragma once

#include <cstdint>
#include <set>
#include <string_view>

#include "core/types.h"

namespace quire::test {

// Client `client` inserts ASCII `text` at clock `clock` at the start of the root text `root`
// (no origin: with clock 0 it is the client's first edit).
Bytes YjsRootInsert(uint64_t client, uint64_t clock, std::string_view text,
                    std::string_view root = "t");
// Client `client` inserts ASCII `text` at clock `clock` right after the item id
// (`origin_client`, `origin_clock`) (the parent is implied by the origin).
Bytes YjsInsertAfter(uint64_t client, uint64_t clock, uint64_t origin_client, uint64_t origin_clock,
                     std::string_view text);

// Catch2 checks that `diff`, a sync step 2 answered to a client holding `client_state`, holds
// items only, of exactly the clients `clients`, none of client `known_client` below clock
// `known_clock` (what the client had), and that `client_state` plus `diff` is the document
// `head`.
void CheckDiffCompletesTheClient(ByteView diff, ByteView client_state, ByteView head,
                                 const std::set<uint64_t>& clients, uint64_t known_client,
                                 uint64_t known_clock);

}  // namespace quire::test
