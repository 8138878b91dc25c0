// Standard base64 (RFC 4648, with padding), as the JSON protocol carries CRDT bytes.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "core/types.h"

namespace quire {

std::string Base64Encode(ByteView bytes);
// Appends the encoding of `bytes` to `out` (one resize, no temporary: for large messages).
void AppendBase64(std::string& out, ByteView bytes);
// Strict decoding: rejects characters outside the alphabet, bad padding and bad lengths.
Result<Bytes> Base64Decode(std::string_view text);

}  // namespace quire
