// Non-cryptographic 64-bit hashing shared by the core: FNV-1a over bytes, and a
// finaliser that spreads its bits. Used for routing keys (llm/replicas.cpp) and for
// bucketing JSON values before an exact comparison (schema/json_doc.cpp, uniqueItems).
#pragma once

#include <cstdint>
#include <string_view>

namespace llmbridge::text {

// FNV-1a, 64 bit.
inline std::uint64_t fnv1a(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// splitmix64's finaliser: every input bit affects every output bit.
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace llmbridge::text
