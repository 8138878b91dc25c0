// libFuzzer target: the y-websocket frame decoders the /yjs endpoint runs on every binary
// message (core/yjs/protocol.h: DecodeMessage, DecodeAwarenessUpdate; DecodeStateVector and
// ValidateUpdate on sync payloads). Invariants: no crash or sanitizer report on any input; a
// decoded sync message re-encodes to a frame that decodes to the same message; decoded
// awareness entries survive an encode/decode round trip unchanged.
//   build: clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
//            -fno-sanitize-recover=all -I. \
//            tests/fuzz/yws_frames_fuzzer.cc core/yjs/*.cc core/status.cc core/types.cc \
//            core/base64.cc core/codec.cc -o build-fuzz-io/yws_frames_fuzzer
//   run:   build-fuzz-io/yws_frames_fuzzer -max_total_time=30 tests/fuzz/corpus/yws_frames
#include <cstdint>
#include <cstdlib>

#include "core/yjs/protocol.h"
#include "core/yjs/update.h"

using namespace quire;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView frame(data, size);
  auto m = yjs::DecodeMessage(frame);
  if (!m.ok()) return 0;
  switch (m->type) {
    case yjs::MessageType::kSync: {
      Bytes again;
      if (m->sync_type == yjs::SyncType::kStep1) {
        (void)yjs::DecodeStateVector(m->payload);
        again = yjs::EncodeSyncStep1(m->payload);
      } else {
        (void)yjs::ValidateUpdate(m->payload);
        again = m->sync_type == yjs::SyncType::kStep2 ? yjs::EncodeSyncStep2(m->payload)
                                                      : yjs::EncodeSyncUpdate(m->payload);
      }
      auto m2 = yjs::DecodeMessage(again);
      Check(m2.ok() && m2->sync_type == m->sync_type &&
            Bytes(m2->payload.begin(), m2->payload.end()) ==
                Bytes(m->payload.begin(), m->payload.end()));
      break;
    }
    case yjs::MessageType::kAwareness: {
      auto entries = yjs::DecodeAwarenessUpdate(m->payload);
      if (!entries.ok()) break;
      Bytes encoded = yjs::EncodeAwarenessUpdate(*entries);
      auto again = yjs::DecodeAwarenessUpdate(encoded);
      Check(again.ok() && again->size() == entries->size());
      for (size_t i = 0; i < entries->size(); ++i) {
        Check((*again)[i].client == (*entries)[i].client &&
              (*again)[i].clock == (*entries)[i].clock &&
              (*again)[i].state_json == (*entries)[i].state_json);
      }
      break;
    }
    case yjs::MessageType::kAuth:
    case yjs::MessageType::kQueryAwareness:
      break;
  }
  return 0;
}
