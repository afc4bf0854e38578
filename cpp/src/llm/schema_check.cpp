// The schema check of a structured answer and the re-ask message (schema_check.hpp).
#include "llmbridge/llm/schema_check.hpp"

#include <stdexcept>

#include "llmbridge/text/utf8.hpp"

namespace llmbridge::llm {

bool is_schema_mismatch(std::string_view error) noexcept {
  return error.substr(0, kSchemaMismatchPrefix.size()) == kSchemaMismatchPrefix;
}

bool check_schema(const schema::Schema& schema, Attempt& a, std::size_t max_errors) {
  if (!a.success || a.data_json.empty()) return false;
  std::vector<schema::SchemaError> errors;
  try {
    errors = schema.validate(a.data_json, max_errors == 0 ? 1 : max_errors);
  } catch (const std::exception& e) {
    // data_json is JSON the repairer wrote, so this is the validator refusing something
    // it cannot hold; an answer that could not be checked never passes as checked.
    errors.push_back({"", "the answer could not be checked against the schema (" +
                              text::utf8_excerpt(e.what(), 120) + ")"});
  }
  if (errors.empty()) return false;
  a.success = false;
  a.retryable = true;
  a.error = schema::mismatch_error(errors);
  a.schema_errors = std::move(errors);
  return true;
}

std::string reask_message(const std::vector<schema::SchemaError>& errors) {
  std::string out = "Your answer did not match the JSON schema:\n";
  for (const auto& e : errors) {
    out += e.pointer.empty() ? std::string("(root)") : e.pointer;
    out += ": ";
    out += e.message;
    out += '\n';
  }
  out += "Reply again with only JSON that matches the schema.";
  return out;
}

}  // namespace llmbridge::llm
