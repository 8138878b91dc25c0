// The body of the Yjs fuzz target (tests/core/yjs_fuzzer.cc, built by tests/core/yjs_fuzz.sh
// with libFuzzer) and of its corpus replay in yjs_fuzz_test.cc (run by ctest, under ASan and
// UBSan in the sanitizer build).
//
// Input layout: u16le len_a, u16le len_b, a, b, c (lengths are clamped to what is there; inputs
// shorter than 4 bytes are `a` alone). Every entry point of the update engine and the protocol
// decoder runs on the parts; their results must agree with each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/types.h"
#include "core/yjs/protocol.h"
#include "core/yjs/update.h"

namespace quire::yjs::fuzz {

// nullptr when every check held, else what failed.
inline const char* RunOne(const uint8_t* data, size_t size) {
  ByteView in(data, size), a = in, b, c;
  if (size >= 4) {
    size_t la = data[0] | (data[1] << 8), lb = data[2] | (data[3] << 8);
    ByteView rest = in.subspan(4);
    a = rest.subspan(0, std::min(la, rest.size()));
    rest = rest.subspan(a.size());
    b = rest.subspan(0, std::min(lb, rest.size()));
    c = rest.subspan(b.size());
  }
  const Bytes empty_sv = {0};

  bool valid[3];
  const ByteView parts[3] = {a, b, c};
  for (int i = 0; i < 3; ++i) {
    ByteView u = parts[i];
    valid[i] = ValidateUpdate(u).ok();
    if (DecodeUpdate(u).ok() != valid[i]) return "DecodeUpdate disagrees with ValidateUpdate";
    auto sv = StateVectorFromUpdate(u);
    if (sv.ok() != valid[i]) return "StateVectorFromUpdate disagrees with ValidateUpdate";
    if (InspectUpdate(u, InspectFormat::kJson).ok() != valid[i]) return "InspectUpdate(json)";
    if (InspectUpdate(u, InspectFormat::kText).ok() != valid[i]) return "InspectUpdate(text)";
    auto whole = DiffUpdate(u, empty_sv);
    if (whole.ok() != valid[i]) return "DiffUpdate disagrees with ValidateUpdate";
    if (valid[i]) {
      if (!ValidateUpdate(*whole).ok()) return "DiffUpdate(u, {}) is invalid";
      if (!DecodeStateVector(*sv).ok()) return "StateVectorFromUpdate gave an invalid state vector";
      auto own = DiffUpdate(u, *sv);
      if (!own.ok() || !ValidateUpdate(*own).ok()) return "diff against own state vector failed";
      ByteView one[] = {u};
      auto same = MergeUpdates(one);
      if (!same.ok() || *same != Bytes(u.begin(), u.end())) return "merge([u]) != u";
    }
    auto self = SameDocument(u, u);
    if (self.ok() != valid[i] || (self.ok() && !*self)) return "SameDocument(u, u)";
    (void)DecodeMessage(u);
    (void)DecodeAwarenessUpdate(u);
  }

  ByteView ab[] = {a, b};
  auto merged = MergeUpdates(ab);
  if (merged.ok() != (valid[0] && valid[1])) return "MergeUpdates([a, b]) validity";
  if (merged.ok()) {
    if (!ValidateUpdate(*merged).ok()) return "merge output is invalid";
    auto sv_a = StateVectorFromUpdate(a);
    auto rest = DiffUpdate(*merged, *sv_a);
    if (!rest.ok() || !ValidateUpdate(*rest).ok()) return "diff of the merge is invalid";
    ByteView again[] = {*merged, a, b};
    auto remerged = MergeUpdates(again);
    if (!remerged.ok() || !ValidateUpdate(*remerged).ok()) return "re-merge failed";
  }
  ByteView abc[] = {a, b, c};
  auto merged3 = MergeUpdates(abc);
  if (merged3.ok() != (valid[0] && valid[1] && valid[2])) return "MergeUpdates([a, b, c])";
  if (merged3.ok() && !ValidateUpdate(*merged3).ok()) return "merge of three is invalid";

  // b as a state vector.
  if (DecodeStateVector(b).ok()) {
    auto diff = DiffUpdate(a, b);
    if (diff.ok() != valid[0]) return "DiffUpdate(a, sv) validity";
    if (diff.ok() && !ValidateUpdate(*diff).ok()) return "DiffUpdate(a, sv) is invalid";
  }
  return nullptr;
}

}  // namespace quire::yjs::fuzz
