// Placeholder until the Yjs engine lands (issue 4): accepts any non-empty update and does not
// fold on the server. The engine replaces this file's body with real validation and merging.
#include "core/yjs/yjs_codec.h"

namespace quire::yjs {
namespace {

class YjsCodecImpl final : public Codec {
 public:
  CrdtKind kind() const override { return CrdtKind::kYjs; }
  Status ValidateUpdate(ByteView update) const override {
    if (update.empty()) return Status::InvalidArgument("empty update");
    return Status::Ok();
  }
  bool CanFold() const override { return false; }
  Result<Bytes> Fold(ByteView, std::span<const ByteView>) const override {
    return Status::FailedPrecondition("yjs folding is not available yet");
  }
};

}  // namespace

const Codec& YjsCodec() {
  static const YjsCodecImpl codec;
  return codec;
}

}  // namespace quire::yjs
