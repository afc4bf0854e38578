// UTF-8 validation and replacement, and what providers do with invalid UTF-8 replies.
#include <catch2/catch.hpp>

#include <climits>
#include <string>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/content.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/text/utf8.hpp"

using namespace llmbridge;

namespace {
const std::string kFFFD = "\xEF\xBF\xBD";
}

TEST_CASE("utf8: validity per RFC 3629", "[utf8]") {
  using text::is_valid_utf8;
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii"));
  CHECK(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xFF"));
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // encoded surrogate U+D800
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE2\x82"));          // cut short
}

TEST_CASE("utf8: maximal invalid subparts become one U+FFFD each", "[utf8]") {
  using text::replace_invalid_utf8;
  CHECK(replace_invalid_utf8("a\xFF" "b") == "a" + kFFFD + "b");
  CHECK(replace_invalid_utf8("\xE2\x82") == kFFFD);              // truncated sequence: one
  CHECK(replace_invalid_utf8("\xE2\x82x") == kFFFD + "x");
  CHECK(replace_invalid_utf8("\xED\xA0\x80") == kFFFD + kFFFD + kFFFD);  // as Python does
  CHECK(replace_invalid_utf8("\xC0\xAF") == kFFFD + kFFFD);
  CHECK(replace_invalid_utf8("ok \xC3\xA9") == "ok \xC3\xA9");
  std::vector<text::Utf8Replacement> map;
  CHECK(replace_invalid_utf8("ab\xFF\xFE" "c", &map) == "ab" + kFFFD + kFFFD + "c");
  REQUIRE(map.size() == 2);
  CHECK(map[0].input == 2);
  CHECK(map[0].output == 2);
  CHECK(map[1].input == 3);
  CHECK(map[1].output == 5);
  // Every byte string comes out valid.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  CHECK(text::is_valid_utf8(replace_invalid_utf8(all + all)));
}

TEST_CASE("utf8: make_valid_utf8 and excerpts never split a code point", "[utf8]") {
  std::string s = "x\x80y";
  CHECK(text::make_valid_utf8(s));
  CHECK(s == "x" + kFFFD + "y");
  CHECK_FALSE(text::make_valid_utf8(s));
  CHECK(text::utf8_excerpt("short", 10) == "short");
  CHECK(text::utf8_excerpt("\xC3\xA9\xC3\xA9\xC3\xA9", 3) == "\xC3\xA9...");
  CHECK(text::is_valid_utf8(text::utf8_excerpt(std::string(50, 'a') + "\xF0\x9F\x98\x80", 52)));
}

TEST_CASE("config: display_url drops userinfo and keeps the rest", "[config][secrets]") {
  using config::display_url;
  CHECK(display_url("http://user:secret@h:8000/v1") == "http://h:8000/v1");
  CHECK(display_url("https://tok@h") == "https://h");
  CHECK(display_url("  http://a:b@c@h:1/p?q=@x  ") == "http://h:1/p?q=@x");
  CHECK(display_url("http://h:8000/path@x") == "http://h:8000/path@x");  // '@' after the authority
  CHECK(display_url("http://h:8000") == "http://h:8000");
  CHECK(display_url("user:pw@h:11434") == "h:11434");
  CHECK(display_url("") == "");
}

TEST_CASE("config: a bad base_url with a password is reported without it", "[config][secrets]") {
  config::VLLMConfig c;
  c.base_url = "ftp://user:hunter2@h";
  auto problems = config::validate(c);
  REQUIRE_FALSE(problems.empty());
  for (const auto& p : problems) CHECK(p.message().find("hunter2") == std::string::npos);
  c.base_url = "ftp://" + std::string(100000, 'x');
  problems = config::validate(c);
  REQUIRE_FALSE(problems.empty());
  CHECK(problems.front().message().size() < 400);  // a short excerpt, not the value
}

TEST_CASE("providers: invalid UTF-8 in a reply becomes U+FFFD and counts as repaired",
          "[providers][hostile]") {
  http::Response r;
  r.status = 200;
  r.body = "{\"choices\":[{\"message\":{\"content\":\"{\\\"a\\\": \\\"x\xFFy\\\"}\"},"
           "\"finish_reason\":\"stop\"}]}";
  const llm::Attempt a = llm::parse_openai_response(r, llm::kProviderVLLM, "m");
  CHECK(a.success);
  CHECK(a.repaired);
  CHECK(a.data_json == "{\"a\": \"x" + kFFFD + "y\"}");
  CHECK(text::is_valid_utf8(a.raw_response));

  http::Response ollama;
  ollama.status = 200;
  ollama.body = "{\"message\":{\"content\":\"[\\\"\xC3\\\"]\"},\"done\":true}";
  const llm::Attempt o = llm::parse_ollama_response(ollama, "m");
  CHECK(o.success);
  CHECK(o.repaired);
  CHECK(o.data_json == "[\"" + kFFFD + "\"]");

  http::Response binary;  // not JSON at all (e.g. gzip bytes without Content-Encoding)
  binary.status = 200;
  binary.body = std::string("\x1f\x8b\x08\x00\xff\xfe", 6);
  const llm::Attempt b = llm::parse_openai_response(binary, llm::kProviderVLLM, "m");
  CHECK_FALSE(b.success);
  CHECK(b.retryable);
  CHECK(b.error.rfind("invalid_json: response body is not JSON", 0) == 0);
}

TEST_CASE("content: error positions point into the answer (fuzz regression)",
          "[providers][regression][fuzz]") {
  const std::string content = "-/*\xbd";  // 4 bytes, one of them invalid UTF-8
  const llm::ContentResult c = llm::process_content(content);
  REQUIRE_FALSE(c.ok);
  const auto at = c.error.rfind("at position ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoul(c.error.substr(at + 12)) <= content.size());
}

TEST_CASE("providers: a huge float token count is clamped, not cast (fuzz regression: UB)",
          "[providers][regression][fuzz]") {
  http::Response r;
  r.status = 200;
  r.body = "{\"choices\":[{\"message\":{\"content\":\"{}\"},\"finish_reason\":\"stop\"}],"
           "\"usage\":{\"prompt_tokens\":1e19,\"completion_tokens\":-1e19}}";
  const llm::Attempt a = llm::parse_openai_response(r, llm::kProviderVLLM, "m");
  CHECK(a.prompt_tokens == INT_MAX);
  CHECK(a.completion_tokens == -1);
  http::Response o;
  o.status = 200;
  o.body = "{\"message\":{\"content\":\"{}\"},\"done\":true,\"eval_count\":-1e19,\"prompt_eval_count\":3e300}";
  const llm::Attempt b = llm::parse_ollama_response(o, "m");
  CHECK(b.completion_tokens == -1);
  CHECK(b.prompt_tokens == INT_MAX);
}

TEST_CASE("quoted: repr-like, escapes control and invalid bytes, cuts at a code point", "[utf8][quoted]") {
  using llmbridge::text::quoted;
  CHECK(quoted("abc") == "'abc'");
  CHECK(quoted("it's \\ ok") == "'it\\'s \\\\ ok'");
  CHECK(quoted(" tab\there\n") == "' tab\\x09here\\x0a'");
  CHECK(quoted(std::string("a\xff" "b", 3)) == "'a\\xffb'");
  CHECK(quoted("caf\xc3\xa9") == "'caf\xc3\xa9'");
  CHECK(quoted("\xc3\xa9\xc3\xa9\xc3\xa9", 3) == "'\xc3\xa9'...");  // never half an é
  CHECK(quoted(std::string(500, 'x')).size() == 120 + 2 + 3);
  CHECK(llmbridge::text::is_valid_utf8(quoted("\xed\xa0\x80 lone surrogate bytes")));
}
