// libFuzzer target for the JSON Schema validator and its regex engine. The input is
// "pattern\ntext": the regex must compile or refuse without crashing, and on valid
// UTF-8 text its DFA and its Pike VM must agree. The whole input is then tried as a
// schema (compiled or refused with std::invalid_argument, never a crash) checked
// against a few instances, and as an instance checked against a schema that uses every
// keyword: at most max_errors errors, each with a well-formed pointer and a valid UTF-8
// message; a valid verdict is the same for the text and for max_errors 1.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llmbridge/schema/regex.hpp"
#include "llmbridge/schema/validator.hpp"
#include "llmbridge/text/utf8.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using llmbridge::schema::Regex;
using llmbridge::schema::Schema;
using llmbridge::schema::SchemaError;

namespace {

const char* const kRichSchema = R"({
  "$defs": {"node": {"type": "object", "properties": {"v": {"type": ["integer", "null"]},
    "next": {"$ref": "#/$defs/node"}}}},
  "type": ["object", "array", "string", "number", "null", "boolean"],
  "properties": {
    "id": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3,8}$", "maxLength": 20},
    "n": {"type": "number", "minimum": -1e6, "exclusiveMaximum": 1e6, "multipleOf": 0.01},
    "i": {"type": "integer", "multipleOf": 3},
    "kind": {"enum": ["a", "b", 1, null, {"x": [1]}]},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": true,
             "contains": {"const": "t"}, "maxContains": 2},
    "tuple": {"prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false},
    "list": {"$ref": "#/$defs/node"},
    "alt": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 5}]},
    "one": {"oneOf": [{"type": "integer"}, {"minimum": 2}]},
    "cond": {"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"not": {"required": ["c"]}}}
  },
  "patternProperties": {"^x-": {"type": "string"}, "\\bw\\b": true},
  "propertyNames": {"maxLength": 12},
  "dependentRequired": {"id": ["n"]},
  "dependentSchemas": {"tags": {"minProperties": 2}},
  "minItems": 0, "maxItems": 50, "maxProperties": 30
})";

const Schema& rich() {
  static const std::shared_ptr<const Schema> s = Schema::compile(kRichSchema);
  return *s;
}

bool good_pointer(const std::string& p) {
  if (p.empty()) return true;
  if (p[0] != '/') return false;
  for (std::size_t i = 0; i < p.size(); ++i)
    if (p[i] == '~' && (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))) return false;
  return true;
}

void check_errors(const std::vector<SchemaError>& errors, std::size_t max, std::string_view input) {
  check(errors.size() <= max, "at_most_max_errors", [&] { return "input: " + show(input); });
  for (const SchemaError& e : errors) {
    check(good_pointer(e.pointer), "pointer_well_formed", [&] { return "pointer: " + show(e.pointer); });
    check(!e.message.empty() && llmbridge::text::is_valid_utf8(e.message) && e.message.size() < 600,
          "message_short_valid_utf8", [&] { return "message: " + show(e.message); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The regex engine.
  const std::size_t nl = input.find('\n');
  const std::string_view pattern = input.substr(0, nl);
  const std::string_view text = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  if (llmbridge::text::is_valid_utf8(pattern)) {
    Regex r(pattern);
    check(r.ok() || !r.reason().empty(), "refusal_says_why", [&] { return "pattern: " + show(pattern); });
    if (r.ok() && llmbridge::text::is_valid_utf8(text)) {
      const bool fast = r.search(text);
      check(fast == r.search_vm(text), "dfa_agrees_with_vm",
            [&] { return "pattern: " + show(pattern) + "\ntext: " + show(text); });
    }
  }

  // The input as a schema.
  std::shared_ptr<const Schema> s;
  try {
    s = Schema::compile(input);
  } catch (const std::invalid_argument&) {
  }
  if (s) {
    for (const char* inst : {"null", "1", "\"ab\"", R"({"a":[1,2,{"b":null}],"c":1.5})", "[[],{},true]"}) {
      check_errors(s->validate(inst, 3), 3, input);
    }
  }

  // The input as an instance.
  try {
    const auto errors = rich().validate(input, 5);
    check_errors(errors, 5, input);
    check(errors.empty() == rich().validate(input, 1).empty(), "verdict_independent_of_max_errors",
          [&] { return "input: " + show(input); });
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
