// The Codec for Yjs documents, backed by the native Yjs update engine.
#pragma once

#include "core/codec.h"

namespace quire::yjs {

// Validates updates with the Yjs v1 decoder and folds by merging updates.
const Codec& YjsCodec();

}  // namespace quire::yjs
