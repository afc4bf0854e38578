// Names of transport errors.
#include "llmbridge/http/message.hpp"

namespace llmbridge::http {

const char* to_string(TransportError e) noexcept {
  switch (e) {
    case TransportError::kNone: return "none";
    case TransportError::kTimeout: return "timeout";
    case TransportError::kConnect: return "connect";
    case TransportError::kTooLarge: return "too_large";
    case TransportError::kCancelled: return "cancelled";
    case TransportError::kTls: return "tls";
    case TransportError::kOther: return "other";
  }
  return "other";
}

}  // namespace llmbridge::http
