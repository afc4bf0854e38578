// The JSON Schema validator: keywords, error pointers and messages, hostile input.
#include <catch2/catch.hpp>

#include "llmbridge/schema/validator.hpp"

using llmbridge::schema::Schema;

TEST_CASE("schema: type, properties, required, enum", "[schema]") {
  auto s = Schema::compile(R"({"type":"object","required":["name"],
    "properties":{"name":{"type":"string"},"kind":{"enum":["a","b"]}}})");
  CHECK(s->validate(R"({"name":"x","kind":"a"})").empty());
  auto errs = s->validate(R"({"kind":"c"})");
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].pointer == "");
  CHECK(errs[0].message == "missing required property \"name\"");
  CHECK(errs[1].pointer == "/kind");
  CHECK(llmbridge::schema::mismatch_error(errs) == "schema_mismatch: (root): missing required property \"name\"");
}

TEST_CASE("schema: contentSchema is an annotation", "[schema]") {
  auto s = Schema::compile(R"({"contentMediaType":"application/json","contentSchema":{"type":"object","required":["foo"]}})");
  CHECK(s->validate(R"("x")").empty());
}
