// Base64 (base64.hpp).
#include "llmbridge/text/base64.hpp"

#include <array>
#include <cstdint>

namespace llmbridge::text {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kTable = make_table();

// The payload without its padding, or false when the padding is malformed.
bool strip_padding(std::string_view& text) noexcept {
  std::size_t pad = 0;
  while (!text.empty() && text.back() == '=' && pad < 2) {
    text.remove_suffix(1);
    ++pad;
  }
  if (pad > 0 && (text.size() + pad) % 4 != 0) return false;  // padding only completes a quad
  return text.size() % 4 != 1;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t(p[i]) << 16) | (std::uint32_t(p[i + 1]) << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t(p[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t(p[i]) << 16) | (std::uint32_t(p[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::size_t base64_decoded_size(std::string_view text) noexcept {
  if (!strip_padding(text)) return std::string_view::npos;
  for (char c : text)
    if (kTable[static_cast<unsigned char>(c)] < 0) return std::string_view::npos;
  return text.size() / 4 * 3 + (text.size() % 4 == 0 ? 0 : text.size() % 4 - 1);
}

bool base64_decode(std::string_view text, std::string& out) {
  const std::size_t size = base64_decoded_size(text);
  if (size == std::string_view::npos) return false;
  strip_padding(text);
  const std::size_t start = out.size();
  out.resize(start + size);
  char* dst = out.data() + start;
  std::size_t i = 0;
  for (; i + 4 <= text.size(); i += 4) {
    const std::uint32_t v = (std::uint32_t(kTable[static_cast<unsigned char>(text[i])]) << 18) |
                            (std::uint32_t(kTable[static_cast<unsigned char>(text[i + 1])]) << 12) |
                            (std::uint32_t(kTable[static_cast<unsigned char>(text[i + 2])]) << 6) |
                            std::uint32_t(kTable[static_cast<unsigned char>(text[i + 3])]);
    *dst++ = static_cast<char>(v >> 16);
    *dst++ = static_cast<char>(v >> 8);
    *dst++ = static_cast<char>(v);
  }
  const std::size_t rest = text.size() - i;
  if (rest >= 2) {
    std::uint32_t v = (std::uint32_t(kTable[static_cast<unsigned char>(text[i])]) << 18) |
                      (std::uint32_t(kTable[static_cast<unsigned char>(text[i + 1])]) << 12);
    if (rest == 3) v |= std::uint32_t(kTable[static_cast<unsigned char>(text[i + 2])]) << 6;
    *dst++ = static_cast<char>(v >> 16);
    if (rest == 3) *dst++ = static_cast<char>(v >> 8);
  }
  return true;
}

}  // namespace llmbridge::text
