// Checking a structured answer against the JSON schema of its call, and the message that
// re-asks the model after a mismatch (docs/schema-validation.md). Pure: the Client
// decides when to check and how to retry.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/llm/attempt.hpp"
#include "llmbridge/schema/validator.hpp"

namespace llmbridge::llm {

// At most this many errors are kept in Attempt::schema_errors and listed in a re-ask.
inline constexpr std::size_t kMaxSchemaErrors = 10;
inline constexpr std::string_view kSchemaMismatchPrefix = "schema_mismatch: ";

// True for an error string of this kind ("schema_mismatch: ...").
bool is_schema_mismatch(std::string_view error) noexcept;

// Checks a successful attempt's data_json against `schema`. When it does not match, the
// attempt fails: error "schema_mismatch: <pointer>: <message>" (the first error),
// retryable, schema_errors holding up to max_errors errors in document order; data_json
// and raw_response are kept so the caller can still look at the answer. An attempt that
// did not succeed, or has no data, is left alone. Returns true when the attempt failed
// the check.
bool check_schema(const schema::Schema& schema, Attempt& a, std::size_t max_errors = kMaxSchemaErrors);

// The user message of a re-ask: the errors as "<pointer>: <message>" lines ("(root)" for
// the whole answer) between a sentence that says the answer did not match the schema and
// one that asks for JSON that does.
std::string reask_message(const std::vector<schema::SchemaError>& errors);

}  // namespace llmbridge::llm
