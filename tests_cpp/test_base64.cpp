// Base64 (text/base64.hpp): the RFC 4648 §10 vectors, round trips of random buffers of
// every length at every alignment, input without padding, and every refusal (bad
// characters, misplaced '=', a length that cannot be base64), with `out` untouched.
#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

#include "llmbridge/text/base64.hpp"

using namespace llmbridge::text;

namespace {

constexpr std::size_t kNpos = std::string_view::npos;

// Decodes `text` into a fresh string; "<refused>" when base64_decode says no.
std::string decoded(std::string_view text) {
  std::string out;
  return base64_decode(text, out) ? out : std::string("<refused>");
}

// True when `text` is refused, `out` keeps its prior content, and the size agrees.
bool refused(std::string_view text) {
  std::string out = "keep";
  const bool ok = base64_decode(text, out);
  return !ok && out == "keep" && base64_decoded_size(text) == kNpos;
}

std::string random_bytes(std::mt19937& gen, std::size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(byte(gen));
  return s;
}

}  // namespace

TEST_CASE("base64: RFC 4648 test vectors", "[base64]") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    INFO(plain);
    CHECK(base64_encode(plain) == encoded);
    CHECK(decoded(encoded) == plain);
    CHECK(base64_decoded_size(encoded) == std::string_view(plain).size());
  }
}

TEST_CASE("base64: the whole alphabet, and every byte value", "[base64]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  const std::string enc = base64_encode(all);
  CHECK(enc.size() == (256 + 2) / 3 * 4);
  CHECK(decoded(enc) == all);
  // 0xFB 0xEF 0xBE -> the last two letters of the alphabet.
  CHECK(base64_encode("\xfb\xef\xbe") == "++++");
  CHECK(base64_encode("\xff\xff\xff") == "////");
  CHECK(decoded("+/+/") == "\xfb\xff\xbf");
}

TEST_CASE("base64: round trip of random buffers of every length 0..300", "[base64]") {
  std::mt19937 gen(4648);
  for (std::size_t n = 0; n <= 300; ++n) {
    const std::string bytes = random_bytes(gen, n);
    const std::string enc = base64_encode(bytes);
    INFO("length " << n);
    REQUIRE(enc.size() == (n + 2) / 3 * 4);
    REQUIRE(enc.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
            std::string::npos);
    REQUIRE(base64_decoded_size(enc) == n);
    REQUIRE(decoded(enc) == bytes);
  }
}

TEST_CASE("base64: decoding at every alignment inside a larger buffer", "[base64]") {
  // The text is read from an offset inside a bigger string (no NUL after it, odd
  // addresses), and the output appended after a prefix of every length.
  std::mt19937 gen(1);
  for (std::size_t n = 0; n <= 300; n += (n < 40 ? 1 : 7)) {
    const std::string bytes = random_bytes(gen, n);
    const std::string enc = base64_encode(bytes);
    for (std::size_t offset = 0; offset < 16; ++offset) {
      std::string big(offset, '#');
      big += enc;
      big += "!!garbage after!!";  // not part of the view: must never be read
      const std::string_view view(big.data() + offset, enc.size());
      std::string out(offset, 'p');
      INFO("length " << n << ", offset " << offset);
      REQUIRE(base64_decoded_size(view) == n);
      REQUIRE(base64_decode(view, out));
      REQUIRE(out.size() == offset + n);
      REQUIRE(out.substr(0, offset) == std::string(offset, 'p'));
      REQUIRE(out.substr(offset) == bytes);
    }
  }
}

TEST_CASE("base64: decode appends to out", "[base64]") {
  std::string out = "abc";
  REQUIRE(base64_decode("Zm9v", out));
  CHECK(out == "abcfoo");
  REQUIRE(base64_decode("YmFy", out));
  CHECK(out == "abcfoobar");
  REQUIRE(base64_decode("", out));
  CHECK(out == "abcfoobar");
}

TEST_CASE("base64: input without padding is accepted", "[base64]") {
  CHECK(decoded("Zg") == "f");
  CHECK(decoded("Zm8") == "fo");
  CHECK(decoded("Zm9vYg") == "foob");
  CHECK(decoded("Zm9vYmE") == "fooba");
  CHECK(base64_decoded_size("Zg") == 1);
  CHECK(base64_decoded_size("Zm8") == 2);
  CHECK(base64_decoded_size("Zm9vYmE") == 5);
  std::mt19937 gen(7);
  for (std::size_t n = 0; n <= 64; ++n) {
    const std::string bytes = random_bytes(gen, n);
    std::string enc = base64_encode(bytes);
    while (!enc.empty() && enc.back() == '=') enc.pop_back();
    INFO("length " << n);
    REQUIRE(base64_decoded_size(enc) == n);
    REQUIRE(decoded(enc) == bytes);
  }
}

TEST_CASE("base64: characters outside the alphabet are refused", "[base64]") {
  CHECK(refused("Zm9v!"));
  CHECK(refused("Zm9v Yg=="));   // whitespace
  CHECK(refused("Zm9v\nYmFy"));  // line breaks
  CHECK(refused("Zm9vYmFy\r\n"));
  CHECK(refused("Zm-v"));        // the URL-safe alphabet is not this one
  CHECK(refused("Zm_v"));
  CHECK(refused(std::string_view("Zm\0v", 4)));
  CHECK(refused("Zm9\xc3\xa9"));  // non-ASCII
  // Every byte that is not in the alphabet (nor '='), in every position of a quad.
  const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int c = 0; c < 256; ++c) {
    if (alphabet.find(static_cast<char>(c)) != std::string_view::npos || c == '=') continue;
    for (int pos = 0; pos < 4; ++pos) {
      std::string text = "QUJD";
      text[pos] = static_cast<char>(c);
      INFO("byte " << c << " at " << pos);
      REQUIRE(refused(text));
    }
  }
}

TEST_CASE("base64: misplaced padding is refused", "[base64]") {
  CHECK(refused("="));
  CHECK(refused("=="));
  CHECK(refused("==="));
  CHECK(refused("===="));
  CHECK(refused("Zg="));       // padding that does not complete the quad
  CHECK(refused("Zm9vYg="));
  CHECK(refused("Zg==="));     // three '='
  CHECK(refused("Z==="));
  CHECK(refused("Zm9v===="));  // a whole quad of padding
  CHECK(refused("Zg==Zm9v"));  // padding in the middle
  CHECK(refused("Z=9v"));
  CHECK(refused("Zm=v"));
  CHECK(refused("=m9v"));
  CHECK(refused("Zm8=Zg=="));
}

TEST_CASE("base64: a length that cannot be base64 is refused", "[base64]") {
  // n % 4 == 1 payload characters can never come from whole bytes.
  CHECK(refused("Z"));
  CHECK(refused("Zm9vY"));
  CHECK(refused("Zm9vYmFyZ"));
  CHECK(refused("Zm9vY==="));
  std::mt19937 gen(3);
  for (std::size_t n = 1; n <= 40; ++n) {
    std::string enc = base64_encode(random_bytes(gen, n));
    while (!enc.empty() && enc.back() == '=') enc.pop_back();
    enc += 'A';
    if (enc.size() % 4 != 1) continue;
    INFO(enc);
    REQUIRE(refused(enc));
  }
}

TEST_CASE("base64: decoded_size agrees with decode on every input of up to 5 characters", "[base64]") {
  // An exhaustive walk over a small alphabet that mixes valid letters, '=' and junk.
  const std::string_view letters = "A/=!";
  std::size_t accepted = 0;
  for (std::size_t len = 0; len <= 5; ++len) {
    std::size_t combos = 1;
    for (std::size_t i = 0; i < len; ++i) combos *= letters.size();
    for (std::size_t k = 0; k < combos; ++k) {
      std::string text;
      for (std::size_t i = 0, v = k; i < len; ++i, v /= letters.size()) text += letters[v % letters.size()];
      std::string out = "x";
      const bool ok = base64_decode(text, out);
      const std::size_t size = base64_decoded_size(text);
      INFO("'" << text << "'");
      if (ok) {
        ++accepted;
        REQUIRE(size != kNpos);
        REQUIRE(out.size() == 1 + size);
        REQUIRE(text.find('!') == std::string::npos);
      } else {
        REQUIRE(size == kNpos);
        REQUIRE(out == "x");
      }
    }
  }
  CHECK(accepted > 0);
}
