// JsonParser's tape: what loads() reads to build Python objects.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include "llmbridge/text/json_parse.hpp"

using namespace llmbridge;
using Type = text::JsonTape::Type;

TEST_CASE("json tape: every value in document order", "[json_parse]") {
  auto& parser = text::thread_parser();
  simdjson::dom::element root;
  REQUIRE(parser.parse(R"({"a":[1,-2,18446744073709551615,2.5,true,false,null,"x\u00e9"],"b":{}})",
                       root) == simdjson::SUCCESS);
  const text::JsonTape tape = parser.tape();
  std::size_t i = text::JsonTape::kRoot;
  REQUIRE(tape.type(i) == Type::START_OBJECT);
  CHECK(tape.count(i) == 2);
  const std::size_t end = tape.end_of(i);
  CHECK(tape.type(end - 1) == Type::END_OBJECT);
  CHECK(tape.string(++i) == "a");
  REQUIRE(tape.type(++i) == Type::START_ARRAY);
  CHECK(tape.count(i) == 8);
  const std::size_t array_end = tape.end_of(i);
  ++i;
  CHECK((tape.type(i) == Type::INT64 && tape.int64(i) == 1));
  i = tape.next(i);
  CHECK((tape.type(i) == Type::INT64 && tape.int64(i) == -2));
  i = tape.next(i);
  CHECK((tape.type(i) == Type::UINT64 && tape.uint64(i) == std::numeric_limits<std::uint64_t>::max()));
  i = tape.next(i);
  CHECK((tape.type(i) == Type::DOUBLE && tape.number(i) == 2.5));
  i = tape.next(i);
  CHECK(tape.type(i) == Type::TRUE_VALUE);
  i = tape.next(i);
  CHECK(tape.type(i) == Type::FALSE_VALUE);
  i = tape.next(i);
  CHECK(tape.type(i) == Type::NULL_VALUE);
  i = tape.next(i);
  CHECK((tape.type(i) == Type::STRING && tape.string(i) == "x\xC3\xA9"));
  i = tape.next(i);
  CHECK(tape.type(i) == Type::END_ARRAY);
  CHECK(i + 1 == array_end);
  CHECK(tape.string(++i) == "b");
  ++i;
  CHECK((tape.type(i) == Type::START_OBJECT && tape.count(i) == 0));
  CHECK(tape.next(i) == end - 1);  // past "b"'s {}: the outer object's end
}

TEST_CASE("json tape: a scalar root, and the deep parser's document", "[json_parse]") {
  auto& parser = text::thread_parser();
  simdjson::dom::element root;
  REQUIRE(parser.parse("\"only\"", root) == simdjson::SUCCESS);
  CHECK(parser.tape().string(text::JsonTape::kRoot) == "only");
  // A scalar in the innermost of kMaxDepth objects is one level too deep for the first
  // parser; the second answers, and tape() must follow it.
  std::string deep;
  for (std::size_t d = 0; d < text::kMaxDepth; ++d) deep += "{\"k\":";
  deep += "1" + std::string(text::kMaxDepth, '}');
  REQUIRE(parser.parse(deep, root) == simdjson::SUCCESS);
  const text::JsonTape tape = parser.tape();
  std::size_t i = text::JsonTape::kRoot;
  for (std::size_t d = 0; d < text::kMaxDepth; ++d) {
    REQUIRE(tape.type(i) == Type::START_OBJECT);
    REQUIRE(tape.string(i + 1) == "k");
    i += 2;
  }
  CHECK(tape.int64(i) == 1);
  REQUIRE(parser.parse("[7]", root) == simdjson::SUCCESS);
  CHECK(parser.tape().int64(text::JsonTape::kRoot + 1) == 7);
}
