// libFuzzer target: the Hocuspocus frame decoder the /hocuspocus endpoint runs on every binary
// message (core/yjs/hocuspocus.h: Decode, in both directions), and what the endpoint runs next
// on the decoded payloads (ValidateUpdate, DecodeStateVector, DecodeAwarenessUpdate).
// Invariants: no crash or sanitizer report on any input; every frame that decodes re-encodes
// (Encode) to exactly the same bytes — the decoder accepts only minimal varUints, strict UTF-8
// and no trailing bytes, so a decoded frame has one encoding — and decodes again to the same
// type.
//   build: clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
//            -fno-sanitize-recover=all -I. \
//            tests/fuzz/hocuspocus_fuzzer.cc core/yjs/*.cc core/status.cc core/types.cc \
//            core/base64.cc core/codec.cc -o build-fuzz-io/hocuspocus_fuzzer
//   (or tests/fuzz/build.sh 30 hocuspocus)
//   run:   build-fuzz-io/hocuspocus_fuzzer -max_total_time=30 tests/fuzz/corpus/hocuspocus
// Seeds: tests/fuzz/corpus/hocuspocus, every frame of tests/data/hocuspocus/vectors.json (the
// real provider's and server's frames).
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "core/yjs/hocuspocus.h"
#include "core/yjs/update.h"

using namespace quire;
namespace hp = quire::yjs::hocuspocus;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void RoundTrip(ByteView frame, hp::Direction direction) {
  auto m = hp::Decode(frame, direction);
  if (!m.ok()) return;
  Bytes again = hp::Encode(*m, direction);
  Check(again.size() == frame.size() && std::equal(again.begin(), again.end(), frame.begin()));
  auto m2 = hp::Decode(again, direction);
  Check(m2.ok() && m2->type == m->type && m2->raw_type == m->raw_type);
  switch (m->type) {
    case hp::Type::kSync:
    case hp::Type::kSyncReply:
      if (m->sync_type == yjs::SyncType::kStep1) {
        (void)yjs::DecodeStateVector(m->payload);
      } else {
        (void)yjs::ValidateUpdate(m->payload);
      }
      break;
    case hp::Type::kAwareness: {
      auto entries = yjs::DecodeAwarenessUpdate(m->payload);
      if (entries.ok()) {
        Bytes encoded = yjs::EncodeAwarenessUpdate(*entries);
        Check(yjs::DecodeAwarenessUpdate(encoded).ok());
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView frame(data, size);
  RoundTrip(frame, hp::Direction::kToServer);
  RoundTrip(frame, hp::Direction::kToClient);
  return 0;
}
