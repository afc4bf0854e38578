// JSON repair: the catalogue of repairs, result invariants, depth limit, linear time.
//
// Every case checks what holds for any input (output is valid JSON for
// text::is_valid_json, positions lie in the input, `unchanged` only for valid input,
// idempotent) plus the expected output text. Bugs they found stay as "[regression]" cases.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "llmbridge/text/fences.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/repair.hpp"

namespace text = llmbridge::text;
using text::RepairKind;

namespace {

constexpr int kKindCount = int(RepairKind::kInvalidUtf8Replaced) + 1;

bool has_kind(const text::RepairResult& r, RepairKind k) {
  return std::any_of(r.repairs.begin(), r.repairs.end(),
                     [k](const text::Repair& x) { return x.kind == k; });
}

// Repairs `in` and checks the invariants every successful repair must satisfy.
std::string repaired(const std::string& in) {
  const text::RepairResult r = text::repair_json(in);
  INFO("input: " << in << "\nerror: " << r.error);
  REQUIRE(r.ok);
  const std::string out(r.text(in));
  INFO("output: " << out);
  CHECK(text::is_valid_json(out));
  if (r.unchanged) {
    CHECK(text::is_valid_json(in));
    CHECK(r.repairs.empty());
    CHECK_FALSE(r.truncated);
  }
  for (const auto& rep : r.repairs) CHECK(rep.position <= in.size());
  // Idempotent: the output is valid, so it comes back unchanged.
  const text::RepairResult again = text::repair_json(out);
  CHECK(again.ok);
  CHECK(again.unchanged);
  // The same text without the repair log.
  text::RepairOptions quiet;
  quiet.collect_repairs = false;
  const text::RepairResult q = text::repair_json(in, quiet);
  CHECK(std::string(q.text(in)) == out);
  return out;
}

struct Case {
  const char* in;
  const char* out;
  RepairKind kind;
  bool truncated;
};

// Each case: the invariants (repaired()), the expected output, its repair kind among
// those reported, and whether it counts as truncated.
void check_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    INFO("input: " << c.in);
    const std::string out = repaired(c.in);
    CHECK(out == c.out);
    const text::RepairResult r = text::repair_json(c.in);
    CHECK_FALSE(r.unchanged);
    CHECK(has_kind(r, c.kind));
    CHECK(r.truncated == c.truncated);
  }
}

}  // namespace

TEST_CASE("repair: every kind has a unique, non-empty name", "[repair]") {
  std::set<std::string> names;
  for (int k = 0; k < kKindCount; ++k) {
    const std::string name = text::to_string(RepairKind(k));
    CHECK_FALSE(name.empty());
    CHECK(name != "unknown");
    CHECK(name.find(' ') == std::string::npos);
    names.insert(name);
  }
  CHECK(names.size() == std::size_t(kKindCount));
  CHECK(std::string(text::to_string(RepairKind::kFenceStripped)) == "fence_stripped");
  CHECK(std::string(text::to_string(RepairKind::kInvalidUtf8Replaced)) == "invalid_utf8_replaced");
}

TEST_CASE("repair: the catalogue", "[repair]") {
  const std::vector<Case> cases = {
      {"```json\n{\"a\": 1}\n```", "{\"a\": 1}", RepairKind::kFenceStripped, false},
      {"Sure!\n```json\n{\"a\": 1,}\n```\nBye", "{\"a\":1}", RepairKind::kCommaRemoved, false},
      {"Here: {\"a\": 1} ok?", "{\"a\":1}", RepairKind::kProseSkipped, false},
      {"{\"a\": 1} ok?", "{\"a\":1}", RepairKind::kTrailingTextDropped, false},
      {"<think>{x} [1, 2]</think>{\"a\": 1}", "{\"a\":1}", RepairKind::kProseSkipped, false},
      {"{'a': 'b'}", "{\"a\":\"b\"}", RepairKind::kQuoteNormalised, false},
      {"{'a': 'it's ok'}", "{\"a\":\"it's ok\"}", RepairKind::kQuoteNormalised, false},
      {"{\xE2\x80\x9C" "a\xE2\x80\x9D: \xE2\x80\x9C" "b\xE2\x80\x9D}", "{\"a\":\"b\"}",
       RepairKind::kQuoteNormalised, false},
      {"{a: 1, b_c: 2}", "{\"a\":1,\"b_c\":2}", RepairKind::kKeyQuoted, false},
      {"[1, 2,]", "[1,2]", RepairKind::kCommaRemoved, false},
      {"[,1]", "[1]", RepairKind::kCommaRemoved, false},
      {"[1,,2]", "[1,2]", RepairKind::kCommaRemoved, false},
      {"{\"a\": 1,}", "{\"a\":1}", RepairKind::kCommaRemoved, false},
      {"[1 2]", "[1,2]", RepairKind::kCommaInserted, false},
      {"{\"a\": 1\n\"b\": 2}", "{\"a\":1,\"b\":2}", RepairKind::kCommaInserted, false},
      {"{\"a\" 1}", "{\"a\":1}", RepairKind::kColonInserted, false},
      {"{\"a\": 1 // c\n}", "{\"a\":1}", RepairKind::kCommentRemoved, false},
      {"{\"a\": /* c */ 1}", "{\"a\":1}", RepairKind::kCommentRemoved, false},
      {"{\"a\": 1, # c\n\"b\": 2}", "{\"a\":1,\"b\":2}", RepairKind::kCommentRemoved, false},
      {"{\"a\": True, \"b\": False, \"c\": None}", "{\"a\":true,\"b\":false,\"c\":null}",
       RepairKind::kLiteralMapped, false},
      {"{\"a\": undefined}", "{\"a\":null}", RepairKind::kLiteralMapped, false},
      {"['a', None]", "[\"a\",null]", RepairKind::kLiteralMapped, false},
      {"[NaN, Infinity, -Infinity]", "[null,null,null]", RepairKind::kNonFiniteNulled, false},
      {"[.5, 1., +1, 007, 1_000]", "[0.5,1.0,1,7,1000]", RepairKind::kNumberNormalised, false},
      {"[1/3, 2024-01-01, 0x1F]", "[\"1/3\",\"2024-01-01\",\"0x1F\"]", RepairKind::kStringQuoted,
       false},
      {"{\"p\": \"C:\\path\"}", "{\"p\":\"C:\\\\path\"}", RepairKind::kEscapeFixed, false},
      {"{\"a\": \"x\ny\"}", "{\"a\":\"x\\ny\"}", RepairKind::kStringEscaped, false},
      {"{\"a\": \"x\ty\x01\"}", "{\"a\":\"x\\ty\\u0001\"}", RepairKind::kStringEscaped, false},
      {"{\"a\": \"He said \"hi\" to me\"}", "{\"a\":\"He said \\\"hi\\\" to me\"}",
       RepairKind::kStringEscaped, false},
      {"{\"tv\": \"a 24\" screen\"}", "{\"tv\":\"a 24\\\" screen\"}", RepairKind::kStringEscaped,
       false},
      {"{\"a\": \"x\n\"b\": 1}", "{\"a\":\"x\",\"b\":1}", RepairKind::kStringClosed, false},
      {"{\"a\": [1, 2, \"b\": 3}", "{\"a\":[1,2],\"b\":3}", RepairKind::kBracketFixed, false},
      {"{\"a\": [1, 2}", "{\"a\":[1,2]}", RepairKind::kBracketFixed, false},
      {"[1, 2]]", "[1,2]", RepairKind::kBracketFixed, false},
      {"{\"a\": \"hel", "{\"a\":\"hel\"}", RepairKind::kStringClosed, true},
      {"{\"a\": [1, 2", "{\"a\":[1,2]}", RepairKind::kContainerClosed, true},
      {"{\"a\": 1, \"b\"", "{\"a\":1}", RepairKind::kKeyDropped, true},
      {"{\"a\": 1, \"b\":", "{\"a\":1}", RepairKind::kKeyDropped, true},
      {"{\"a\": tru", "{\"a\":true}", RepairKind::kLiteralCompleted, true},
      {"[1, 2.", "[1,2.0]", RepairKind::kContainerClosed, true},
      {"{\"a\": , \"b\": 2}", "{\"a\":null,\"b\":2}", RepairKind::kValueDefaulted, false},
      {"{\"a\":1}{\"b\":2}", "[{\"a\":1},{\"b\":2}]", RepairKind::kValuesConcatenated, false},
      {"{\"a\":1}\n{\"b\":2}\n", "[{\"a\":1},{\"b\":2}]", RepairKind::kValuesConcatenated, false},
      {"{\"_id\": ObjectId(\"x\"), \"n\": NumberLong(2)}", "{\"_id\":\"x\",\"n\":2}",
       RepairKind::kCallUnwrapped, false},
      {"[1, 2, ...]", "[1,2]", RepairKind::kEllipsisRemoved, false},
      {"(1, 2)", "[1,2]", RepairKind::kBracketFixed, false},
      {"{'k': '\xC3\xA9\xE6\x97\xA5'}", "{\"k\":\"\xC3\xA9\xE6\x97\xA5\"}",
       RepairKind::kQuoteNormalised, false},
      {"{\"a\": \"\xFF\"}", "{\"a\":\"\xEF\xBF\xBD\"}", RepairKind::kInvalidUtf8Replaced, false},
      {"{\"a\": 1}```", "{\"a\":1}", RepairKind::kFenceStripped, false},
      {"{\"a\": -}", "{\"a\":null}", RepairKind::kGarbageSkipped, false},
  };
  check_cases(cases);
}

// Damage that moves where a string, a value or a container seems to end (issue 12):
// the members must survive. One row per shape, grouped by class.
TEST_CASE("repair: boundary damage keeps the members", "[repair]") {
  const std::vector<Case> cases = {
      // 1. a quote missing or doubled around a string value
      {"{\"city\": \"Paris, \"zip\": \"75001\"}", "{\"city\":\"Paris\",\"zip\":\"75001\"}",
       RepairKind::kStringClosed, false},
      {"{\"a\": \"x\", 7: \"y\"}", "{\"a\":\"x\",\"7\":\"y\"}", RepairKind::kKeyQuoted, false},
      {"{\"note\": \"fine\"\"next\": 1}", "{\"note\":\"fine\",\"next\":1}",
       RepairKind::kCommaInserted, false},
      {"[\"one\" two\", \"three\"]", "[\"one\",\"two\",\"three\"]", RepairKind::kStringQuoted,
       false},
      {"[\"one\" two]", "[\"one\",\"two\"]", RepairKind::kStringQuoted, false},
      {"{\"n\": 1, NOTE \"m\": 2}", "{\"n\":1,\"m\":2}", RepairKind::kGarbageSkipped, false},
      {"{\"a\": \"x\", note \"m\": 2}", "{\"a\":\"x\",\"m\":2}", RepairKind::kGarbageSkipped, false},
      {"{\"k\": \"\"value\"}", "{\"k\":\"value\"}", RepairKind::kQuoteNormalised, false},
      {"{\"\"k\"\": \"\"v\"\"}", "{\"k\":\"v\"}", RepairKind::kQuoteNormalised, false},
      {"{\"n\": 12345\", \"m\": 1}", "{\"n\":12345,\"m\":1}", RepairKind::kGarbageSkipped, false},
      {"{\"b\": \"x\" true}", "{\"b\":\"x\"}", RepairKind::kGarbageSkipped, false},
      // 2. an unquoted value that runs over the following members
      {"{\"k\": value \"k2\": \"v2\"}", "{\"k\":\"value\",\"k2\":\"v2\"}",
       RepairKind::kStringQuoted, false},
      {"{\"t\": two words. \"u\": 1}", "{\"t\":\"two words.\",\"u\":1}",
       RepairKind::kStringQuoted, false},
      {"{t: a{b}c}", "{\"t\":\"a{b}c\"}", RepairKind::kStringQuoted, false},
      {"{\"l\": ipsum, sic, datum.\",}", "{\"l\":\"ipsum, sic, datum.\"}",
       RepairKind::kStringQuoted, false},
      // 3. a string left open before the final closers
      {"{\"k\": [\"v]}", "{\"k\":[\"v\"]}", RepairKind::kStringClosed, true},
      {"{\"a\": \"text}", "{\"a\":\"text\"}", RepairKind::kStringClosed, true},
      {"{\"a\": \"see [1]}", "{\"a\":\"see [1]\"}", RepairKind::kStringClosed, true},
      {"{\"a\": \"x}```", "{\"a\":\"x\"}", RepairKind::kFenceStripped, true},
      // 4. a stray closer in the middle
      {"{\"a\": 1}, \"b\": 2}", "{\"a\":1,\"b\":2}", RepairKind::kBracketFixed, false},
      {"{\"a\": 1}, \"b\" \"c\"}", "{\"a\":1,\"b\":\"c\"}", RepairKind::kBracketFixed, false},
      {"[{\"k\": 1}}, {\"k\": 2}]", "[{\"k\":1},{\"k\":2}]", RepairKind::kBracketFixed, false},
      {"[{\"k\": 1}}}, {\"k\": 2}]", "[{\"k\":1},{\"k\":2}]", RepairKind::kBracketFixed, false},
      {"{\"a\": 2], \"b\": 3}", "{\"a\":2,\"b\":3}", RepairKind::kBracketFixed, false},
      {"{\"k\": [\"a\"], [\"b\"], \"c\": 1}", "{\"k\":[\"a\",\"b\"],\"c\":1}",
       RepairKind::kBracketFixed, false},
      {"[\"key\": \"value\"]", "[{\"key\":\"value\"}]", RepairKind::kBracketFixed, false},
      // 5. keys with a missing quote
      {"{\"key:\"value\"}", "{\"key\":\"value\"}", RepairKind::kStringClosed, false},
      {"{\"key:value}", "{\"key\":\"value\"}", RepairKind::kStringClosed, false},
      {"{\"key: \"value\", \"b\": 1}", "{\"key\":\"value\",\"b\":1}", RepairKind::kStringClosed,
       false},
      // 6. prose before a value that starts with a comment
      {"Here it is: { /* note */ \"a\": 1}", "{\"a\":1}", RepairKind::kProseSkipped, false},
      {"Here it is: { // note\n \"a\": 1}", "{\"a\":1}", RepairKind::kCommentRemoved, false},
      // 7. truncation inside a surrogate pair
      {"{\"a\": \"hi \\ud83d", "{\"a\":\"hi \"}", RepairKind::kContainerClosed, true},
      {"{\"a\": \"hi \\ud83d\\ude0", "{\"a\":\"hi \"}", RepairKind::kContainerClosed, true},
      {"{\"a\": \"hi \\ud83d\\", "{\"a\":\"hi \"}", RepairKind::kContainerClosed, true},
      // neighbours: sets, comments on the last line, placeholders, `)` inside text
      {"{'a', 'b'}", "[\"a\",\"b\"]", RepairKind::kBracketFixed, false},
      {"{\"a\": {\"b\": 1 // c }, \"d\": 2}", "{\"a\":{\"b\":1},\"d\":2}",
       RepairKind::kCommentRemoved, false},
      {"[]\n{\"a\": 1}", "{\"a\":1}", RepairKind::kGarbageSkipped, false},
      {"{\"a\": 1}, {}", "{\"a\":1}", RepairKind::kGarbageSkipped, false},
      {"{\"c\": \"[L](\"https://x.io\")\" }", "{\"c\":\"[L](\\\"https://x.io\\\")\"}",
       RepairKind::kStringEscaped, false},
      {"{\"a\": 1e}", "{\"a\":1}", RepairKind::kNumberNormalised, false},
      {"[\"a\", \"", "[\"a\"]", RepairKind::kStringClosed, true},
      {"{\"a\": \"x\n", "{\"a\":\"x\"}", RepairKind::kStringClosed, true},
  };
  check_cases(cases);
  // A lone quote, or one cut off before its first character, is no JSON value.
  CHECK_FALSE(text::repair_json("\"").ok);
  // Regression (fuzz): nothing is reopened after a placeholder was dropped.
  CHECK(repaired("[]][`{][{[[\x1b]{{]]]{{") == "[[{}],[{}]]");
}

TEST_CASE("repair: valid JSON takes the fast path", "[repair]") {
  for (std::string in : {"{}", "[]", "0", "-0", "\"x\"", "true", "null", " {\"a\": [1, 2.5]} \n",
                         "{\"a\":\"\xE2\x80\x9Cq\xE2\x80\x9D\"}", "[18446744073709551615]"}) {
    INFO(in);
    const text::RepairResult r = text::repair_json(in);
    CHECK(r.ok);
    CHECK(r.unchanged);
    CHECK(r.json.empty());
    CHECK(r.repairs.empty());
    CHECK_FALSE(r.truncated);
    CHECK(r.text(in).data() == in.data());  // no copy
    CHECK(text::is_valid_json(in));
  }
  // Larger than simdjson's default capacity guess: still the fast path.
  std::string big = "[";
  for (int i = 0; i < 20000; ++i) big += "\"item\",";
  big += "1]";
  CHECK(text::repair_json(big).unchanged);
}

TEST_CASE("repair: no JSON is an error with a position and a reason", "[repair]") {
  for (std::string in : {"", " ", "\n\t", "hello", "The answer is yes.", "```json\n\n```"}) {
    INFO(in);
    const text::RepairResult r = text::repair_json(in);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(r.unchanged);
    CHECK_FALSE(r.error.empty());
    CHECK(r.error_position <= in.size());
    CHECK(r.json.empty());
  }
}

TEST_CASE("repair: nesting up to 10000 levels, then a clean error", "[repair]") {
  const std::string ok_valid = std::string(10000, '[') + std::string(10000, ']');
  CHECK(text::repair_json(ok_valid).unchanged);
  simdjson::dom::element root;
  CHECK(text::thread_parser().parse(ok_valid, root) == simdjson::SUCCESS);
  const std::string open = std::string(10000, '[');
  CHECK(repaired(open) == ok_valid);
  std::string objects;
  for (int i = 0; i < 10000; ++i) objects += "{\"a\":";
  CHECK(text::repair_json(objects + "1").ok);

  for (const std::string& deep : {std::string(10001, '['), std::string(100000, '['),
                                  std::string(10001, '[') + std::string(10000, ']'),
                                  objects + "{\"a\":1"}) {
    const text::RepairResult r = text::repair_json(deep);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("nesting") != std::string::npos);
    CHECK(r.error_position <= deep.size());
  }
  text::RepairOptions shallow;
  shallow.max_depth = 3;
  CHECK(text::repair_json("[[[1", shallow).ok);
  CHECK_FALSE(text::repair_json("[[[[1", shallow).ok);
}

TEST_CASE("repair: random bytes never crash and always give valid JSON", "[repair]") {
  std::mt19937 rng(42);
  const std::string alphabet = "{}[](),:\"'\\/ *#\n\tabcdefnrtuTFN0123456789.-+e_`~<>";
  for (int i = 0; i < 20000; ++i) {
    std::string in(std::size_t(rng() % 48) + 1, ' ');
    for (char& ch : in) ch = (i & 1) ? char(rng() & 0xFF) : alphabet[rng() % alphabet.size()];
    const text::RepairResult r = text::repair_json(in);
    if (!r.ok) {
      CHECK(r.error_position <= in.size() + 2 * in.size());
      continue;
    }
    const std::string out(r.text(in));
    INFO("input bytes: " << in);
    CHECK(text::is_valid_json(out));
    const text::RepairResult again = text::repair_json(out);
    CHECK(again.ok);
    CHECK(std::string(again.text(out)) == out);
  }
}

TEST_CASE("repair: NUL bytes and huge strings", "[repair]") {
  using namespace std::string_literals;
  const std::string nul_in = "{\"a\":\0 [1,\0 2], \"b\": \"x\0y\"}"s;
  CHECK(repaired(nul_in) == std::string("{\"a\":[1,2],\"b\":\"x\\u0000y\"}"));
  const std::string body(8 * 1024 * 1024, 'x');
  CHECK(repaired("{\"a\": \"" + body).size() == body.size() + 8);
}

// ---- known bugs ------------------------------------------------------------------------

TEST_CASE("regression: 10001 nested arrays pass the fast path", "[repair][regression]") {
  const std::string deep = std::string(10001, '[') + std::string(10001, ']');
  CHECK_FALSE(text::is_valid_json(deep));
  CHECK_FALSE(text::repair_json(deep).ok);
}

TEST_CASE("regression: positions after invalid UTF-8 point into the sanitised copy",
          "[repair][regression]") {
  const std::string in = "\xFF{a: 1}";  // the key is at byte 2
  const text::RepairResult r = text::repair_json(in);
  REQUIRE(r.ok);
  for (const auto& rep : r.repairs) {
    CHECK(rep.position <= in.size());
    if (rep.kind == RepairKind::kKeyQuoted) CHECK(rep.position == 2);
  }
}

TEST_CASE("regression: a double overflow (1e999) is emitted as invalid JSON", "[repair][regression]") {
  const std::string in = "{\"a\": 1e999,}";
  const text::RepairResult r = text::repair_json(in);
  REQUIRE(r.ok);
  CHECK(text::is_valid_json(r.text(in)));
}

TEST_CASE("regression: valid big integers are not 'unchanged'", "[repair][regression]") {
  const std::string in = "[123456789012345678901234567890]";
  CHECK(text::is_valid_json(in));
  CHECK(text::repair_json(in).unchanged);
}

TEST_CASE("regression: a mismatched final closer is reported as truncation", "[repair][regression]") {
  for (std::string in : {"{\"a\": 2]", "[1, 2}"}) {
    const text::RepairResult r = text::repair_json(in);
    REQUIRE(r.ok);
    CHECK_FALSE(r.truncated);
  }
}

TEST_CASE("regression: strings in arrays swallow a following NaN, .5, ... or call",
          "[repair][regression]") {
  CHECK(repaired("[\"a\", NaN]") == "[\"a\",null]");
  CHECK(repaired("[\"a\", .5]") == "[\"a\",0.5]");
  CHECK(repaired("[\"x\", ...]") == "[\"x\"]");
  CHECK(repaired("[\"x\" 1]") == "[\"x\",1]");
  CHECK(repaired("[\"a\", ObjectId(\"x\")]") == "[\"a\",\"x\"]");
  CHECK(repaired("{\"a\": \"x\" # c\n}") == "{\"a\":\"x\"}");
}

TEST_CASE("regression: collect_repairs=false still logs fence_stripped on the fenced fast path",
          "[repair][regression]") {
  text::RepairOptions quiet;
  quiet.collect_repairs = false;
  for (std::string in : {"```json\n{\"a\": 1}\n```", "```json\n{\"a\": \"\xFF\"}\n```",
                         "{'a': 1}"}) {
    INFO(in);
    const text::RepairResult r = text::repair_json(in, quiet);
    CHECK(r.ok);
    CHECK(r.repairs.empty());
  }
}

TEST_CASE("regression: fence followed by a final newline keeps a newline", "[fences][regression]") {
  CHECK(std::string(text::strip_markdown_fences("x\n```json\n[1]\n```\n")) == "[1]");
}

// ---- linear time -----------------------------------------------------------------------

namespace {

double best_of_3(const std::string& in) {
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const text::RepairResult r = text::repair_json(in);
    const auto t1 = std::chrono::steady_clock::now();
    REQUIRE((r.ok || !r.error.empty()));
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

std::string repeat(const std::string& s, std::size_t bytes) {
  std::string out;
  out.reserve(bytes + s.size());
  while (out.size() < bytes) out += s;
  return out;
}

// t(2N)/t(N): about 2 for linear work, 4 for quadratic. The machine is shared with
// compilers, so a ratio over the bound is measured again (up to 3 times): noise does
// not repeat, a quadratic path does.
double ratio(const std::function<std::string(std::size_t)>& make, std::size_t n) {
  const std::string a = make(n), b = make(2 * n);
  double best = 1e9;
  for (int attempt = 0; attempt < 3 && best >= 3.0; ++attempt) {
    const double ta = best_of_3(a), tb = best_of_3(b);
    best = std::min(best, tb / std::max(ta, 1e-6));
  }
  return best;
}

}  // namespace

// Timing checks are hidden from the default run ("[.]"): performance is measured in
// bench/ (bench_json.py prints the same doubling ratios), not asserted where a busy
// machine can fail it. Run them by hand: llmbridge_tests "[perf]".
TEST_CASE("repair: linear time on pathological inputs", "[.][perf]") {
  constexpr std::size_t kN = 1024 * 1024;
  struct Gen {
    const char* name;
    std::function<std::string(std::size_t)> make;
  };
  const std::vector<Gen> gens = {
      {"trailing comma before every closer",
       [](std::size_t n) { return "[" + repeat("[1,],", n) + "]"; }},
      {"unclosed string then comma fragments",
       [](std::size_t n) { return "{\"a\": \"x" + repeat(", y", n); }},
      {"missing commas", [](std::size_t n) { return "[" + repeat("1 \"s\" {} ", n) + "]"; }},
      {"missing commas between members",
       [](std::size_t n) { return "{" + repeat("\"k\": 1 ", n) + "}"; }},
      {"deep unclosed nesting",
       [](std::size_t n) { return repeat("[{\"a\":", 9000 * 3) + repeat("1,", n); }},
      {"many inner quotes",
       [](std::size_t n) { return "{\"a\": \"" + repeat("he said \"hi\" ", n) + "\"}"; }},
      {"inner quotes before commas",
       [](std::size_t n) { return "[\"" + repeat("a\", b", n) + "\"]"; }},
      {"mismatched closers", [](std::size_t n) { return "[" + repeat("{\"a\":[1,2},", n) + "]"; }},
      {"raw newlines in a string",
       [](std::size_t n) { return "{\"a\": \"" + repeat("x\n", n) + "\"}"; }},
      {"keys missing after colons in arrays",
       [](std::size_t n) { return "{\"a\": [" + repeat("\"b\": 3, ", n); }},
      // issue 12's look-aheads, each at its worst
      {"value quotes before commas",
       [](std::size_t n) { return "{\"a\": \"" + repeat("x, \"y", n) + "\"}"; }},
      {"a key full of colons and quotes",
       [](std::size_t n) { return "{\"" + repeat("k:\"", n) + "\": 1}"; }},
      {"unquoted values full of quotes",
       [](std::size_t n) { return "{\"a\": x" + repeat(" \"q", n) + "}"; }},
      {"stray words before members",
       [](std::size_t n) { return "{" + repeat("w \"k\": 1, ", n) + "}"; }},
      {"stray closers", [](std::size_t n) { return "[" + repeat("{\"k\": 1}}, ", n) + "]"; }},
      {"comments on one line", [](std::size_t n) { return "[" + repeat("1, // c ] ", n) + "]"; }},
      {"a string open before many closers",
       [](std::size_t n) { return "{\"a\": \"x" + repeat("}", n); }},
      {"a set of many keys", [](std::size_t n) { return "{" + repeat("\"k\", ", n) + "}"; }},
      {"many empty root values", [](std::size_t n) { return "[1]" + repeat("[]{}", n); }},
  };
  for (const Gen& g : gens) {
    INFO(g.name);
    CHECK(ratio(g.make, kN) < 3.0);
  }
}

TEST_CASE("regression: locating JSON after prose full of braces or brackets stays linear",
          "[.][perf][regression]") {
  // Each '{' that was not a plausible JSON start used to make locate() search the whole
  // rest of the text for '[' (and vice versa): O(n^2).
  constexpr std::size_t kN = 96 * 1024;
  CHECK(ratio([](std::size_t n) { return repeat("x {y} ", n) + "{\"a\": 1}"; }, kN) < 3.0);
  CHECK(ratio([](std::size_t n) { return repeat("a [", n); }, kN) < 3.0);
}

// ---- found by the fuzzers (tests_cpp/fuzz/regressions) ----

TEST_CASE("regression (fuzz): the error position maps back through invalid UTF-8 without collected repairs",
          "[repair][regression][fuzz]") {
  const std::string in = "```\xff";
  for (bool collect : {true, false}) {
    text::RepairOptions o;
    o.collect_repairs = collect;
    const text::RepairResult r = text::repair_json(in, o);
    REQUIRE_FALSE(r.ok);
    CHECK(r.error_position <= in.size());
  }
  text::RepairOptions quiet;
  quiet.collect_repairs = false;
  CHECK(text::repair_json(in, quiet).error_position == text::repair_json(in).error_position);
}

TEST_CASE("regression (fuzz): max_depth holds on valid JSON too", "[repair][regression][fuzz]") {
  const std::string deep = std::string(17, '[') + std::string(17, ']');
  text::RepairOptions o;
  o.max_depth = 16;
  CHECK_FALSE(text::repair_json(deep, o).ok);
  CHECK_FALSE(text::repair_json("```json\n" + deep + "\n```", o).ok);
  CHECK(text::repair_json(deep).unchanged);  // the default limit: the fast path
}

TEST_CASE("regression: valid JSON with a huge exponent passes unchanged", "[repair][regression]") {
  for (const char* in : {"[1e400]", "{\"a\":-1E+999}", "1e400"}) {
    const text::RepairResult r = text::repair_json(in);
    REQUIRE(r.ok);
    CHECK(r.unchanged);
    CHECK(text::is_valid_json(in));
  }
}

TEST_CASE("regression (fuzz): max_depth counts the array that wraps concatenated values",
          "[repair][regression][fuzz]") {
  text::RepairOptions o;
  o.max_depth = 16;
  const std::string in = std::string("\"s\" {\"k\":") + std::string(15, '[') + "8";  // 17 deep once wrapped
  CHECK_FALSE(text::repair_json(in, o).ok);
  const std::string first_deep = std::string(16, '[') + std::string(16, ']') + " {\"a\":1}";
  CHECK_FALSE(text::repair_json(first_deep, o).ok);
  const std::string fits = std::string(15, '[') + std::string(15, ']') + " {\"a\":1}";
  const text::RepairResult r = text::repair_json(fits, o);
  REQUIRE(r.ok);
  CHECK(r.json == "[" + std::string(15, '[') + std::string(15, ']') + ",{\"a\":1}]");
}
