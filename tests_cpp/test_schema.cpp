// The JSON Schema validator: every keyword, error pointers and messages, hostile input,
// the compile cache, and the regex engine (cases, limits, the DFA against the Pike VM
// and against std::regex on random patterns).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "llmbridge/schema/instance.hpp"
#include "llmbridge/schema/regex.hpp"
#include "llmbridge/schema/validator.hpp"
#include "llmbridge/text/utf8.hpp"

using llmbridge::schema::compile_cached;
using llmbridge::schema::Instance;
using llmbridge::schema::mismatch_error;
using llmbridge::schema::Regex;
using llmbridge::schema::Schema;
using llmbridge::schema::SchemaError;

namespace {

bool valid(const std::string& schema, const std::string& instance) {
  return Schema::compile(schema)->validate(instance).empty();
}

std::vector<SchemaError> errors(const std::string& schema, const std::string& instance, std::size_t max = 10) {
  return Schema::compile(schema)->validate(instance, max);
}

// The first error as "pointer: message".
std::string first(const std::string& schema, const std::string& instance) {
  auto e = errors(schema, instance);
  REQUIRE_FALSE(e.empty());
  return e[0].pointer + ": " + e[0].message;
}

// The message of the std::invalid_argument that compiling `schema` throws.
std::string compile_error(const std::string& schema) {
  try {
    Schema::compile(schema);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("compiled: " << schema);
  return "";
}

bool matches(const std::string& pattern, const std::string& text) {
  Regex r(pattern);
  REQUIRE(r.ok());
  const bool dfa = r.search(text);
  CHECK(dfa == r.search_vm(text));  // both engines agree on every case here
  return dfa;
}

std::string nested(const char* open, const char* close, int depth, const char* inner) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

}  // namespace

TEST_CASE("schema: type, including integer as a number with zero fraction", "[schema]") {
  CHECK(valid(R"({"type":"integer"})", "1"));
  CHECK(valid(R"({"type":"integer"})", "1.0"));
  CHECK(valid(R"({"type":"integer"})", "-1e3"));
  CHECK(valid(R"({"type":"integer"})", "123456789012345678901234567890"));
  CHECK_FALSE(valid(R"({"type":"integer"})", "1.5"));
  CHECK_FALSE(valid(R"({"type":"integer"})", "\"1\""));
  CHECK(valid(R"({"type":"number"})", "1"));
  CHECK(valid(R"({"type":"number"})", "1e400"));
  CHECK(valid(R"({"type":["string","null"]})", "null"));
  CHECK_FALSE(valid(R"({"type":["string","null"]})", "0"));
  CHECK(valid(R"({"type":"boolean"})", "false"));
  CHECK_FALSE(valid(R"({"type":"boolean"})", "0"));
  CHECK(valid(R"({"type":"array"})", "[]"));
  CHECK(valid(R"({"type":"object"})", "{}"));
  CHECK_FALSE(valid(R"({"type":"object"})", "[]"));
  CHECK_FALSE(valid(R"({"type":[]})", "null"));
  CHECK(first(R"({"type":"integer"})", "\"x\"") == ": expected integer, got string");
  CHECK(first(R"({"type":["string","null"]})", "1.5") == ": expected string or null, got number");
  CHECK(first(R"({"type":["string","number","null"]})", "{}") == ": expected one of string, number, null, got object");
}

TEST_CASE("schema: properties, required, additionalProperties, patternProperties", "[schema]") {
  const std::string s = R"({"type":"object","required":["name","age"],
    "properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0}},
    "patternProperties":{"^x-":{"type":"string"}},"additionalProperties":false})";
  CHECK(valid(s, R"({"name":"a","age":3,"x-note":"n"})"));
  auto e = errors(s, R"({"age":-1,"x-note":5,"extra":1})");
  REQUIRE(e.size() == 4);
  CHECK(e[0].pointer == "");
  CHECK(e[0].message == "missing required property \"name\"");
  CHECK(e[1].pointer == "/age");
  CHECK(e[1].message == "-1 is less than the minimum 0");
  CHECK(e[2].pointer == "/x-note");
  CHECK(e[2].message == "expected string, got integer");
  CHECK(e[3].pointer == "");
  CHECK(e[3].message == "property \"extra\" is not allowed (additionalProperties)");
  // additionalProperties as a schema applies to the unmatched members only.
  CHECK(valid(R"({"properties":{"a":{}},"additionalProperties":{"type":"integer"}})", R"({"a":"s","b":1})"));
  CHECK(first(R"({"properties":{"a":{}},"additionalProperties":{"type":"integer"}})", R"({"a":"s","b":"t"})") ==
        "/b: expected integer, got string");
  // Non-objects are not checked by object keywords.
  CHECK(valid(R"({"required":["a"],"properties":{"a":false},"additionalProperties":false})", "[1]"));
}

TEST_CASE("schema: propertyNames, min/maxProperties, dependentRequired, dependentSchemas", "[schema]") {
  CHECK(valid(R"({"propertyNames":{"pattern":"^[a-z]+$"}})", R"({"ab":1})"));
  CHECK(first(R"({"propertyNames":{"maxLength":2}})", R"({"abc":1})") ==
        ": property name \"abc\" is invalid: string has 3 characters, more than maxLength 2");
  CHECK(first(R"({"minProperties":2})", R"({"a":1})") == ": object has 1 properties, fewer than minProperties 2");
  CHECK(first(R"({"maxProperties":1})", R"({"a":1,"b":2})") == ": object has 2 properties, more than maxProperties 1");
  CHECK(valid(R"({"dependentRequired":{"a":["b"]}})", R"({"c":1})"));
  CHECK(valid(R"({"dependentRequired":{"a":["b"]}})", R"({"a":1,"b":2})"));
  CHECK(first(R"({"dependentRequired":{"a":["b"]}})", R"({"a":1})") ==
        ": missing property \"b\", required when \"a\" is present (dependentRequired)");
  CHECK(valid(R"({"dependentSchemas":{"a":{"required":["b"]}}})", R"({"c":1})"));
  CHECK_FALSE(valid(R"({"dependentSchemas":{"a":{"required":["b"]}}})", R"({"a":1})"));
  // draft 7's "dependencies" in both forms.
  CHECK_FALSE(valid(R"({"dependencies":{"a":["b"]}})", R"({"a":1})"));
  CHECK_FALSE(valid(R"({"dependencies":{"a":{"required":["b"]}}})", R"({"a":1})"));
  // Many required names (beyond one 64-bit word of presence bits, and beyond 512).
  std::string names, object;
  for (int i = 0; i < 600; ++i) {
    names += (i ? ",\"p" : "\"p") + std::to_string(i) + "\"";
    object += (i ? ",\"p" : "\"p") + std::to_string(i) + "\":1";
  }
  CHECK(valid("{\"required\":[" + names + "]}", "{" + object + "}"));
  CHECK(first("{\"required\":[" + names + "]}", "{" + object.substr(object.find(',') + 1) + "}") ==
        ": missing required property \"p0\"");
}

TEST_CASE("schema: enum and const use JSON equality", "[schema]") {
  CHECK(valid(R"({"enum":["a","b",1,null,{"k":[1,2]}]})", "\"b\""));
  CHECK(valid(R"({"enum":["a","b",1,null,{"k":[1,2]}]})", "1.0"));
  CHECK(valid(R"({"enum":["a","b",1,null,{"k":[1,2]}]})", R"({"k":[1.0,2]})"));
  CHECK_FALSE(valid(R"({"enum":["a","b",1,null,{"k":[1,2]}]})", "true"));
  CHECK_FALSE(valid(R"({"enum":[1]})", "true"));
  CHECK_FALSE(valid(R"({"enum":[false]})", "0"));
  CHECK(valid(R"({"const":{"a":1,"b":[true,null]}})", R"({"b":[true,null],"a":1.0})"));
  CHECK_FALSE(valid(R"({"const":{"a":1}})", R"({"a":1,"b":2})"));
  CHECK(valid(R"({"const":18446744073709551615})", "18446744073709551615"));
  CHECK(valid(R"({"const":100000000000000000000000})", "1e23"));
  CHECK(first(R"({"enum":["red","green"]})", "\"blue\"") == ": \"blue\" is not one of \"red\", \"green\"");
  CHECK(first(R"({"const":3})", "4") == ": 4 is not the const value 3");
}

TEST_CASE("schema: items, prefixItems, contains, minItems, maxItems, uniqueItems", "[schema]") {
  const std::string tuple = R"({"prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})";
  CHECK(valid(tuple, R"(["a",1])"));
  CHECK(valid(tuple, R"(["a"])"));
  CHECK(first(tuple, R"(["a",1,2])") == "/2: no value is allowed here (false schema)");
  CHECK(first(R"({"items":{"type":"integer"}})", R"([1,2,"x"])") == "/2: expected integer, got string");
  // draft 7's array form of items, with additionalItems.
  CHECK_FALSE(valid(R"({"items":[{"type":"string"}],"additionalItems":false})", R"(["a",1])"));
  CHECK(valid(R"({"contains":{"type":"string"}})", R"([1,"a"])"));
  CHECK(first(R"({"contains":{"type":"string"}})", "[1,2]") == ": no item matches \"contains\"");
  CHECK(valid(R"({"contains":{"type":"string"},"minContains":0})", "[1]"));
  CHECK_FALSE(valid(R"({"contains":{"type":"string"},"minContains":2})", R"(["a",1])"));
  CHECK_FALSE(valid(R"({"contains":{"type":"string"},"maxContains":1})", R"(["a","b"])"));
  CHECK(first(R"({"minItems":2})", "[1]") == ": array has 1 items, fewer than minItems 2");
  CHECK(first(R"({"maxItems":1})", "[1,2]") == ": array has 2 items, more than maxItems 1");
  CHECK(valid(R"({"uniqueItems":true})", R"([1,"1",[1],{"a":1},true])"));
  CHECK(first(R"({"uniqueItems":true})", R"([{"a":1,"b":2},3,{"b":2,"a":1.0}])") ==
        ": items 0 and 2 are equal (uniqueItems)");
  CHECK_FALSE(valid(R"({"uniqueItems":true})", "[1, 1.0]"));
  CHECK(valid(R"({"uniqueItems":true})", "[1, true]"));
  // Many items: the hashed path finds the pair.
  std::string many = "[";
  for (int i = 0; i < 5000; ++i) many += std::to_string(i) + ",";
  CHECK(valid(R"({"uniqueItems":true})", many + "5000]"));
  CHECK(first(R"({"uniqueItems":true})", many + "4321.0]") == ": items 4321 and 5000 are equal (uniqueItems)");
}

TEST_CASE("schema: string lengths count code points", "[schema]") {
  CHECK(valid(R"({"minLength":2,"maxLength":2})", "\"\xC3\xA9\xF0\x9F\x90\xB2\""));  // é and 🐲
  CHECK_FALSE(valid(R"({"maxLength":1})", "\"\xC3\xA9\xC3\xA9\""));
  CHECK(first(R"({"minLength":3})", "\"ab\"") == ": string has 2 characters, fewer than minLength 3");
  CHECK(valid(R"({"minLength":3})", "3"));  // not a string: not checked
}

TEST_CASE("schema: numeric bounds and multipleOf, including floats and big numbers", "[schema]") {
  CHECK(valid(R"({"minimum":1.5})", "1.5"));
  CHECK_FALSE(valid(R"({"exclusiveMinimum":1.5})", "1.5"));
  CHECK(valid(R"({"maximum":3})", "3.0"));
  CHECK_FALSE(valid(R"({"exclusiveMaximum":3})", "3"));
  CHECK(first(R"({"exclusiveMaximum":3})", "3") == ": 3 is not less than 3 (exclusiveMaximum)");
  CHECK(first(R"({"maximum":3})", "3.5") == ": 3.5 is greater than the maximum 3");
  CHECK(valid(R"({"maximum":18446744073709551615})", "18446744073709551614"));
  CHECK_FALSE(valid(R"({"maximum":18446744073709551615})", "18446744073709551616"));
  CHECK(valid(R"({"minimum":-9223372036854775808})", "-9223372036854775808"));
  CHECK_FALSE(valid(R"({"minimum":-9223372036854775808})", "-9223372036854775809"));
  CHECK_FALSE(valid(R"({"maximum":9007199254740992})", "9007199254740993"));  // beyond double precision
  CHECK_FALSE(valid(R"({"exclusiveMaximum":972783798187987123879878123.18878137})",
                    "972783798187987123879878123.188781371e0"));
  CHECK(valid(R"({"minimum":0})", "1e400"));
  CHECK_FALSE(valid(R"({"maximum":0})", "1e400"));
  CHECK(valid(R"({"multipleOf":0.0001})", "0.0075"));
  CHECK_FALSE(valid(R"({"multipleOf":0.0001})", "0.00751"));
  CHECK(valid(R"({"multipleOf":0.1})", "0.3"));  // exact decimals: 0.3 / 0.1 is 3
  CHECK(valid(R"({"multipleOf":0.01})", "19.99"));
  CHECK(valid(R"({"multipleOf":3})", "-9"));
  CHECK(valid(R"({"multipleOf":3})", "-9.0"));
  CHECK(first(R"({"multipleOf":3})", "10") == ": 10 is not a multiple of 3");
  CHECK(valid(R"({"multipleOf":0.5})", "1e308"));
  CHECK_FALSE(valid(R"({"multipleOf":0.123456789})", "1e308"));
  CHECK(valid(R"({"multipleOf":1e-8})", "12391239123"));
  CHECK(valid(R"({"multipleOf":7})", "700000000000000000000000000000007"));
  CHECK_FALSE(valid(R"({"multipleOf":7})", "700000000000000000000000000000008"));
  CHECK(valid(R"({"multipleOf":123456789012345678901234567890})", "246913578024691357802469135780"));
  CHECK_FALSE(valid(R"({"multipleOf":123456789012345678901234567890})", "246913578024691357802469135781"));
  CHECK(valid(R"({"minimum":5})", "\"a\""));  // not a number: not checked
}

TEST_CASE("schema: anyOf, oneOf, allOf, not, if/then/else, boolean schemas", "[schema]") {
  const std::string any = R"({"anyOf":[{"type":"string","maxLength":2},{"type":"null"}]})";
  CHECK(valid(any, "null"));
  CHECK(valid(any, "\"ab\""));
  auto e = errors(any, "\"abc\"");
  REQUIRE(e.size() == 1);  // one summary, not one error per branch
  CHECK(e[0].message ==
        "matches none of the 2 anyOf alternatives; anyOf/0: string has 3 characters, more than maxLength 2");
  CHECK(first(any, "1") == ": matches none of the 2 anyOf alternatives");
  const std::string one = R"({"oneOf":[{"type":"integer"},{"minimum":2}]})";
  CHECK(valid(one, "1"));
  CHECK(valid(one, "2.5"));
  CHECK(first(one, "3") == ": matches more than one oneOf alternative (oneOf/0 and oneOf/1)");
  // The one alternative whose type fits gives the detail.
  CHECK(first(one, "1.5") == ": matches none of the 2 oneOf alternatives; oneOf/1: 1.5 is less than the minimum 2");
  CHECK(first(R"({"oneOf":[{"type":"integer"},{"type":"string"}]})", "1.5") ==
        ": matches none of the 2 oneOf alternatives");
  CHECK_FALSE(valid(R"({"allOf":[{"type":"integer"},{"minimum":2}]})", "1"));
  CHECK(first(R"({"not":{"type":"string"}})", "\"a\"") == ": must not match the \"not\" schema");
  const std::string cond = R"({"if":{"properties":{"kind":{"const":"a"}}},"then":{"required":["x"]},"else":{"required":["y"]}})";
  CHECK(valid(cond, R"({"kind":"a","x":1})"));
  CHECK(first(cond, R"({"kind":"a","y":1})") == ": missing required property \"x\"");
  CHECK(first(cond, R"({"kind":"b","x":1})") == ": missing required property \"y\"");
  CHECK(valid("true", "[1]"));
  CHECK(first("false", "1") == ": no value is allowed here (false schema)");
  CHECK(first(R"({"properties":{"a":false}})", R"({"a":1})") == "/a: no value is allowed here (false schema)");
}

TEST_CASE("schema: local $ref, $defs, escaped pointers, $id and $anchor, recursion", "[schema]") {
  CHECK_FALSE(valid(R"({"$defs":{"pos":{"minimum":0}},"properties":{"a":{"$ref":"#/$defs/pos"}}})", R"({"a":-1})"));
  CHECK_FALSE(valid(R"({"definitions":{"pos":{"minimum":0}},"$ref":"#/definitions/pos"})", "-1"));
  CHECK_FALSE(valid(R"({"$defs":{"a/b":{"type":"string"}},"$ref":"#/$defs/a~1b"})", "1"));
  CHECK_FALSE(valid(R"({"$defs":{"a~b":{"type":"string"}},"$ref":"#/$defs/a~0b"})", "1"));
  CHECK_FALSE(valid(R"({"$defs":{"a%b":{"type":"string"}},"$ref":"#/$defs/a%25b"})", "1"));
  CHECK_FALSE(valid(R"({"prefixItems":[{"type":"string"}],"properties":{"x":{"$ref":"#/prefixItems/0"}}})", R"({"x":1})"));
  CHECK_FALSE(valid(R"({"$defs":{"s":{"$anchor":"str","type":"string"}},"$ref":"#str"})", "1"));
  CHECK_FALSE(valid(R"({"$id":"https://example.com/root.json","$defs":{"s":{"$id":"item.json","type":"string"}},
                       "$ref":"item.json"})", "1"));
  CHECK_FALSE(valid(R"({"$id":"https://example.com/a/root.json","$defs":{"s":{"$id":"/b/item.json","type":"string"}},
                       "$ref":"https://example.com/b/item.json"})", "1"));
  // A tree: recursion through "#" compiles once and validates at any depth.
  const std::string tree = R"({"type":"object","properties":{"value":{"type":"integer"},
    "children":{"type":"array","items":{"$ref":"#"}}},"required":["value"]})";
  CHECK(valid(tree, R"({"value":1,"children":[{"value":2,"children":[{"value":3}]}]})"));
  CHECK(first(tree, R"({"value":1,"children":[{"value":2,"children":[{"value":"x"}]}]})") ==
        "/children/0/children/0/value: expected integer, got string");
  // Mutual recursion of definitions.
  CHECK(valid(R"({"$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/b"}},"b":{"anyOf":[{"type":"integer"},{"$ref":"#/$defs/a"}]}},
                 "$ref":"#/$defs/a"})", "[1,[2,[3]]]"));
  // A $ref into an unknown keyword still resolves (as a JSON pointer).
  CHECK_FALSE(valid(R"({"components":{"s":{"type":"string"}},"$ref":"#/components/s"})", "1"));
}

TEST_CASE("schema: annotations and unknown keywords never fail; unsupported keywords are listed", "[schema]") {
  CHECK(valid(R"({"format":"email","title":"t","description":"d","default":1,"examples":[1],"$comment":"c",
                 "deprecated":true,"readOnly":true,"writeOnly":false,"contentMediaType":"text/plain",
                 "contentEncoding":"base64","x-custom":{"type":"integer"},"$schema":"https://json-schema.org/draft/2020-12/schema"})",
              "\"not an email\""));
  auto s = Schema::compile(R"({"properties":{"a":{"$ref":"https://example.com/other.json"},
    "b":{"unevaluatedProperties":false,"pattern":"(a)\\1"},"c":{"$dynamicRef":"#meta"}},
    "$schema":"https://example.com/my-meta"})");
  const std::vector<std::string> want{
      "$dynamicRef at /properties/c",
      "$ref to a remote document at /properties/a",
      "$schema \"https://example.com/my-meta\" (a custom meta-schema) at (root)",
      "pattern \"(a)\\\\1\" (backreference at offset 4) at /properties/b",
      "unevaluatedProperties at /properties/b",
  };
  CHECK(s->unsupported() == want);
  // Their subschemas are not checked.
  CHECK(s->validate(R"({"a":1,"b":"zzz","c":null})").empty());
  CHECK(Schema::compile(R"({"type":"string"})")->unsupported().empty());
  // The report is claimed once per compiled schema.
  CHECK(s->claim_unsupported_report());
  CHECK_FALSE(s->claim_unsupported_report());
}

TEST_CASE("schema: error pointers escape ~ and /, errors stop at max_errors, in document order", "[schema]") {
  auto e = errors(R"({"additionalProperties":{"type":"integer"}})", R"({"a/b":"x","c~d":"y"})");
  REQUIRE(e.size() == 2);
  CHECK(e[0].pointer == "/a~1b");
  CHECK(e[1].pointer == "/c~0d");
  const std::string ints = R"({"items":{"type":"integer"}})";
  CHECK(errors(ints, R"(["a","b","c","d"])", 3).size() == 3);
  CHECK(errors(ints, R"(["a","b","c","d"])", 1)[0].pointer == "/0");
  auto all = errors(ints, R"(["a",1,"b",[]])");
  REQUIRE(all.size() == 3);
  CHECK((all[0].pointer == "/0" && all[1].pointer == "/2" && all[2].pointer == "/3"));
  CHECK_THROWS_AS(Schema::compile("true")->validate("1", 0), std::invalid_argument);
  CHECK(mismatch_error({{"/a/0", "expected integer, got string"}}) ==
        "schema_mismatch: /a/0: expected integer, got string");
  CHECK(mismatch_error({{"", "missing required property \"x\""}}) ==
        "schema_mismatch: (root): missing required property \"x\"");
}

TEST_CASE("schema: messages quote instance data as a short valid UTF-8 excerpt", "[schema]") {
  std::string longtext;
  for (int i = 0; i < 100; ++i) longtext += "\xC3\xA9";  // 200 bytes of é
  const std::string msg = errors(R"({"enum":["a"]})", "\"" + longtext + "\"")[0].message;
  const std::string quoted = msg.substr(0, msg.find(" is not one of"));
  CHECK(quoted.size() <= 60);
  CHECK(quoted.substr(quoted.size() - 4) == "...\"");
  CHECK(llmbridge::text::is_valid_utf8(msg));
  const std::string ctl = errors(R"({"pattern":"^a$"})", "\"b\\n\\u0001\"")[0].message;
  CHECK(ctl == "\"b\\n\\u0001\" does not match pattern \"^a$\"");
  const std::string key = errors(R"({"additionalProperties":false})", "{\"" + longtext + "\":1}")[0].message;
  CHECK(key.size() < 120);
  CHECK(llmbridge::text::is_valid_utf8(key));
}

TEST_CASE("schema: bad schemas are invalid_argument naming the location", "[schema]") {
  CHECK(compile_error("{") .find("schema is not valid JSON") == 0);
  CHECK(compile_error("[1]") == "invalid schema at (root): a schema must be an object or a boolean, got an array");
  CHECK(compile_error(R"({"properties":{"a":{"type":"text"}}})") ==
        "invalid schema at /properties/a/type: unknown type \"text\" (expected null, boolean, object, array, number, "
        "integer or string)");
  CHECK(compile_error(R"({"properties":{"a":3}})") ==
        "invalid schema at /properties/a: a schema must be an object or a boolean, got a number");
  CHECK(compile_error(R"({"minLength":-1})") == "invalid schema at /minLength: must be a non-negative integer");
  CHECK(compile_error(R"({"minLength":1.5})") == "invalid schema at /minLength: must be a non-negative integer");
  CHECK(valid(R"({"minLength":1.0})", "\"a\""));
  CHECK(compile_error(R"({"required":"a"})") == "invalid schema at /required: must be an array of strings, got a string");
  CHECK(compile_error(R"({"required":["a",1]})") == "invalid schema at /required/1: must be a string, got a number");
  CHECK(compile_error(R"({"multipleOf":0})") == "invalid schema at /multipleOf: must be greater than 0");
  CHECK(compile_error(R"({"anyOf":[]})") == "invalid schema at /anyOf: must be a non-empty array of schemas");
  CHECK(compile_error(R"({"exclusiveMinimum":true})").find("draft-04 boolean form") != std::string::npos);
  CHECK(compile_error(R"({"$ref":"#/$defs/missing"})") ==
        "invalid schema at /$ref: $ref \"#/$defs/missing\" does not resolve (no \"$defs\")");
  CHECK(compile_error(R"({"$ref":"#nowhere"})") ==
        "invalid schema at /$ref: $ref \"#nowhere\" names an anchor that does not exist");
  CHECK(compile_error(R"({"$defs":{"a":1},"$ref":"#/$defs/a"})") ==
        "invalid schema at /$defs/a: a schema must be an object or a boolean, got a number");
  CHECK(compile_error(R"({"properties":{"p":{"pattern":"(ab"}}})") ==
        "invalid schema at /properties/p/pattern: pattern \"(ab\" does not compile: missing ')' at offset 3");
  CHECK(compile_error(R"({"patternProperties":{"[z-a]":{}}})").find("/patternProperties/[z-a]") != std::string::npos);
  CHECK(compile_error(R"({"pattern":"(a{1000}){1000}"})").find("pattern too large") != std::string::npos);
  CHECK(compile_error(nested("{\"not\":", "}", 1200, "true")).find("nested deeper than 1000 levels") !=
        std::string::npos);
}

TEST_CASE("schema: hostile instances get a clear error, never a crash or a hang", "[schema]") {
  auto any = Schema::compile("{}");
  CHECK_THROWS_WITH(any->validate("{\"a\":"), Catch::Contains("instance is not valid JSON"));
  CHECK_THROWS_WITH(any->validate("\"\xFF\""), Catch::Contains("instance is not valid JSON"));
  CHECK_THROWS_WITH(any->validate("1 2"), Catch::Contains("instance is not valid JSON"));
  CHECK_THROWS_WITH(any->validate("[1e99999999999999999999, 1"), Catch::Contains("instance is not valid JSON"));
  CHECK_THROWS_AS(any->validate(nested("[", "]", 10001, "")), std::invalid_argument);
  // Deep but legal nesting against a recursive schema: a bounded error, not a stack overflow.
  const std::string deep = nested("[", "]", 5000, "1");
  auto rec = Schema::compile(R"({"anyOf":[{"type":"integer"},{"type":"array","items":{"$ref":"#"}}]})");
  auto e = rec->validate(deep);
  REQUIRE(e.size() == 1);
  CHECK(e[0].message.find("matches none") != std::string::npos);
  auto items = Schema::compile(R"({"type":"array","items":{"$ref":"#"}})");
  auto deep_errors = items->validate(deep);
  REQUIRE(deep_errors.size() == 1);
  CHECK(deep_errors[0].message == "nested deeper than 1500 levels: not validated");
  CHECK(Schema::compile(R"({"$ref":"#"})")->validate(nested("[", "]", 3000, "1")).size() == 1);  // a loop in the schema
  CHECK(items->validate(nested("[", "]", 700, "")).empty());  // two evaluation levels per array
  CHECK(Schema::compile(R"({"type":"integer"})")->validate(deep).size() == 1);  // no recursion: no limit
  // Huge numbers.
  auto nums = Schema::compile(R"({"items":{"type":"integer","maximum":1e300}})");
  CHECK(nums->validate("[1e400, 123456789012345678901234567890123456789e-10]").size() == 1);
  CHECK(Schema::compile(R"({"multipleOf":3})")->validate("1e99999999999999").size() == 1);
}

TEST_CASE("schema: Instance built value by value validates like the text", "[schema]") {
  auto s = Schema::compile(R"({"type":"object","required":["a"],"properties":{"a":{"type":"array",
    "items":{"type":"integer","maximum":18446744073709551615}},"b":{"type":"string","minLength":2}}})");
  Instance in;
  in.start_object();
  in.key("a");
  in.start_array();
  in.integer(-3);
  in.unsigned_integer(18446744073709551615ull);
  in.big_number("18446744073709551616");
  in.number(1.0);
  in.end_array();
  in.key("b");
  in.string("x");
  in.end_object();
  auto e = s->validate(in);
  REQUIRE(e.size() == 2);
  CHECK(e[0].pointer == "/a/2");
  CHECK(e[0].message == "18446744073709551616 is greater than the maximum 18446744073709551615");
  CHECK(e[1].pointer == "/b");
  in.clear();
  CHECK_THROWS_AS(s->validate(in), std::invalid_argument);
  in.start_array();
  CHECK_THROWS_AS(s->validate(in), std::invalid_argument);
}

TEST_CASE("schema: compile_cached returns one compiled schema per text, from any thread", "[schema]") {
  auto a = compile_cached(R"({"type":"string"})");
  CHECK(a == compile_cached(R"({"type":"string"})"));
  CHECK(a != compile_cached(R"({"type": "string"})"));
  CHECK_THROWS_AS(compile_cached("{"), std::invalid_argument);
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &bad] {
      for (int i = 0; i < 600; ++i) {  // more distinct texts than the cache holds
        auto s = compile_cached("{\"maxLength\":" + std::to_string((i * 7 + t) % 300) + "}");
        if (!s->validate("\"abc\"").empty() != ((i * 7 + t) % 300 < 3)) ++bad[std::size_t(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

TEST_CASE("regex: the ECMA-262 subset", "[schema][regex]") {
  CHECK(matches("abc", "xxabcxx"));
  CHECK_FALSE(matches("^abc", "xabc"));
  CHECK_FALSE(matches("abc$", "abcx"));
  CHECK_FALSE(matches("^a$", "a\n"));  // $ is the end of the text, not of a line
  CHECK(matches("^a.c$", "a\xC3\xA9" "c"));  // . is one code point
  CHECK_FALSE(matches("^a.c$", "a\nc"));
  CHECK(matches("^[a-c]+$", "abcabc"));
  CHECK_FALSE(matches("^[^a-c]+$", "xyzb"));
  CHECK(matches("^[\\d\\-x]+$", "12-x"));
  CHECK(matches("^[\\w.]+@[\\w.]+$", "a.b@c_d.e"));
  CHECK_FALSE(matches("^\\w+$", "\xC3\xA9t\xC3\xA9"));  // \w is ASCII
  CHECK_FALSE(matches("^\\d$", "\xD9\xA3"));           // \d is ASCII (not Arabic-Indic digits)
  CHECK(matches("^\\s$", "\xC2\xA0"));                  // \s is Unicode white space
  CHECK(matches("^\\S+$", "ab"));
  CHECK(matches("^\\D\\W$", "a!"));
  CHECK(matches("\\bfoo\\b", "a foo."));
  CHECK_FALSE(matches("\\bfoo\\b", "afoo"));
  CHECK(matches("\\Boo", "foo"));
  CHECK(matches("^(?:ab|cd){2}$", "abcd"));
  CHECK_FALSE(matches("^(?:ab|cd){2}$", "abc"));
  CHECK(matches("^(a|b)*?c$", "ababc"));
  CHECK(matches("^a{2,3}$", "aaa"));
  CHECK_FALSE(matches("^a{2,3}$", "aaaa"));
  CHECK(matches("^a{2,}$", "aaaaa"));
  CHECK(matches("^a{0}$", ""));
  CHECK(matches("^x{,3}$", "x{,3}"));  // not a quantifier: literal braces
  CHECK(matches("^\\u0041\\u{1F432}\\x42$", "A\xF0\x9F\x90\xB2" "B"));
  CHECK(matches("^\\uD83D\\uDC32$", "\xF0\x9F\x90\xB2"));  // a surrogate pair is one code point
  CHECK(matches("^\xF0\x9F\x90\xB2{2}$", "\xF0\x9F\x90\xB2\xF0\x9F\x90\xB2"));
  CHECK(matches("^\\cC$", "\x03"));
  CHECK(matches("^\\t\\.\\/\\*\\\\$", "\t./*\\"));
  CHECK(matches("^[\\b]$", "\b"));
  CHECK(matches("^(?<year>\\d{4})-\\d{2}$", "2024-05"));
  CHECK(matches("", "anything"));
  CHECK(matches("^$", ""));
  CHECK(matches("a|", "zzz"));
  CHECK(matches("^(a*)*$", "aaaa"));
  CHECK(matches("^(a?){3}a{3}$", "aaa"));
  CHECK_FALSE(matches("[]", "a"));
  CHECK(matches("^[^]$", "\n"));
}

TEST_CASE("regex: unsupported and invalid patterns say why", "[schema][regex]") {
  for (const char* p : {"(a)\\1", "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b", "\\p{L}", "\\P{Lu}", "\\k<n>"}) {
    Regex r(p);
    CHECK(r.status() == Regex::Status::unsupported);
    CHECK_FALSE(r.reason().empty());
    CHECK_FALSE(r.search("anything"));
  }
  for (const char* p : {"(a", "a)", "[a", "*a", "a**", "a{2,1}", "[z-a]", "\\", "\\Z", "(?x)", "\\u{110000}"}) {
    Regex r(p);
    INFO(p);
    CHECK(r.status() == Regex::Status::invalid);
    CHECK_FALSE(r.reason().empty());
  }
  Regex big("(((a{100}){100}){100})");
  CHECK(big.status() == Regex::Status::invalid);
  CHECK(big.reason().find("more than 10000 instructions") != std::string::npos);
  CHECK(Regex(std::string(250, '(') + std::string(250, ')')).reason().find("nested deeper") != std::string::npos);
}

TEST_CASE("regex: pathological patterns finish (no backtracking)", "[schema][regex]") {
  const std::string text = std::string(20000, 'a') + "b";
  for (const char* p : {"^(a+)+$", "^(a|a)*$", "^(a*)*b?c$", "(x+x+)+y", "^(a|aa)+$"}) {
    Regex r(p);
    REQUIRE(r.ok());
    CHECK_FALSE(r.search(text));
    CHECK_FALSE(r.search_vm(text));
  }
  // Counted repetition stays a DFA; an automaton with too many states falls back to the VM.
  Regex counted("^[a-z]{1,3000}$");
  CHECK(counted.has_dfa());
  CHECK(counted.search(std::string(3000, 'q')));
  CHECK_FALSE(counted.search(std::string(3001, 'q')));
  Regex blowup("(a|b)*a(a|b){14}");  // 2^15 DFA states
  REQUIRE(blowup.ok());
  CHECK_FALSE(blowup.has_dfa());
  CHECK(blowup.search("a" + std::string(14, 'b')));
  CHECK_FALSE(blowup.search("b" + std::string(14, 'a')));
  Regex wb("^(\\ba+\\b)+$");  // \b: the Pike VM's case
  CHECK_FALSE(wb.has_dfa());
  CHECK_FALSE(wb.search(text));
  CHECK(Schema::compile(R"({"pattern":"^(a+)+$"})")->validate("\"" + text + "\"").size() == 1);
}

TEST_CASE("regex: the DFA and the Pike VM agree with std::regex on random patterns", "[schema][regex]") {
  std::mt19937 rng(1234);
  auto pick = [&](int n) { return int(rng() % unsigned(n)); };
  // Random ASCII patterns over {a, b} from the shared subset of both dialects. Inside a
  // group every quantifier is non-nullable, so no group can loop on the empty string
  // (std::regex does not always finish on those).
  std::function<std::string(int)> gen = [&](int depth) -> std::string {
    std::string out;
    const int terms = 1 + pick(3);
    for (int t = 0; t < terms; ++t) {
      std::string atom;
      switch (depth > 1 ? pick(4) : pick(7)) {
        case 0: atom = "a"; break;
        case 1: atom = "b"; break;
        case 2: atom = "."; break;
        case 3: atom = pick(2) ? "[ab]" : "[^a]"; break;
        case 4: atom = "(" + gen(depth + 1) + "|" + gen(depth + 1) + ")"; break;
        case 5: atom = "(?:" + gen(depth + 1) + ")"; break;
        default: atom = "(" + gen(depth + 1) + ")"; break;
      }
      static const char* any_quantifier[] = {"", "", "*", "+", "?", "{2}", "{1,2}", "{0,}", "*?"};
      static const char* non_nullable[] = {"", "", "+", "{2}", "{1,2}", "+?"};
      out += atom + (depth == 0 ? any_quantifier[pick(9)] : non_nullable[pick(6)]);
    }
    return out;
  };
  int checked = 0;
  for (int i = 0; i < 400; ++i) {
    std::string p = gen(0);
    if (pick(3) == 0) p = "^" + p;
    if (pick(3) == 0) p += "$";
    Regex ours(p);
    REQUIRE(ours.ok());
    const std::regex theirs(p, std::regex::ECMAScript);
    for (int k = 0; k < 12; ++k) {
      std::string text;
      const int len = pick(7);
      for (int c = 0; c < len; ++c) text += "ab\n"[pick(3)];
      INFO("pattern " << p << " text " << text);
      const bool want = std::regex_search(text, theirs);
      CHECK(ours.search(text) == want);
      CHECK(ours.search_vm(text) == want);
      ++checked;
    }
  }
  CHECK(checked == 4800);
}

// Timing is hidden from the default run ("[.]"): run by hand, llmbridge_tests "[schema-perf]".
TEST_CASE("regex: search time grows linearly on a pathological pattern", "[.][perf][schema-perf]") {
  Regex r("^(a+)+$");
  double previous = 0;
  for (std::size_t n : {10000u, 20000u, 40000u, 80000u}) {
    const std::string text = std::string(n, 'a') + "b";
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < 20; ++k) REQUIRE_FALSE(r.search_vm(text));
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / 20;
    std::printf("^(a+)+$ on %zu bytes: %.1f us (Pike VM), %.2f ns/byte\n", n, us, us * 1000 / double(n));
    if (previous > 0) CHECK(us < previous * 3);  // doubling the input roughly doubles the time
    previous = us;
  }
}

TEST_CASE("schema: validation cost per answer", "[.][perf][schema-perf]") {
  auto s = Schema::compile(R"({"type":"object","required":["id","items"],"additionalProperties":false,
    "properties":{"id":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{4,8}$"},"kind":{"enum":["a","b","c"]},
    "total":{"type":"number","minimum":0},"items":{"type":"array","items":{"type":"object",
    "required":["name","qty"],"properties":{"name":{"type":"string","maxLength":100},"qty":{"type":"integer"},
    "sku":{"type":"string","pattern":"^[A-Z0-9-]{3,20}$"}}}}}})");
  std::string doc = R"({"id":"IN-12345","kind":"b","total":12.5,"items":[)";
  for (int i = 0; i < 40; ++i) doc += std::string(i ? "," : "") + R"({"name":"widget number )" + std::to_string(i) + R"(","qty":3,"sku":"SKU-)" + std::to_string(1000 + i) + "\"}";
  doc += "]}";
  REQUIRE(s->validate(doc).empty());
  const int rounds = 20000;
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < rounds; ++k) REQUIRE(s->validate(doc).empty());
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / rounds;
  std::printf("validate (parse + check) of a %zu-byte answer: %.2f us\n", doc.size(), us);
}
