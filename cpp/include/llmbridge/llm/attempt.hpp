// The outcome of one logical LLM call (all HTTP tries), mirroring Python's
// ExtractionAttempt. Transport and model problems are values here, never exceptions.
#pragma once

#include <string>
#include <vector>

#include "llmbridge/schema/validator.hpp"

namespace llmbridge::llm {

// One HTTP try of a logical call, as the client saw it. A libcurl re-send of the same
// request on a dead keep-alive connection counts in Attempt::attempts but shares its
// try's record.
struct TryRecord {
  int attempt = 0;      // 1 for the first try, then 2, 3 ... (the call's try count after it)
  int status = 0;       // HTTP status, 0 when none was received
  std::string error;    // "" when the try succeeded, else a contract string (errors.hpp)
  std::string replica;  // the base URL it went to, as config::display_url shows it (no userinfo)
  double start_ms = 0;  // when it was sent: milliseconds since the Unix epoch (system clock)
  double elapsed_ms = 0;  // how long it took until its outcome was known
};

struct Attempt {
  bool success = false;
  std::string data_json;     // the (repaired) JSON text of the data; empty if none
  std::string raw_response;  // the model's text; for HTTP errors the server's error body
  std::string error;         // "" when success, else a contract string (see errors.hpp)
  bool retryable = false;
  int status_code = 0;  // last HTTP status, 0 when none was received
  int attempts = 0;     // HTTP tries made
  double latency_ms = 0;
  std::string provider;  // "vllm", "openai", "ollama"
  std::string model;
  std::string finish_reason;
  bool truncated = false;  // the answer was cut off (finish_reason "length" or cut JSON)
  bool repaired = false;   // data_json differs from the raw answer beyond surrounding whitespace
  int prompt_tokens = -1;  // -1 = unknown
  int completion_tokens = -1;
  std::string request_id;
  double retry_after_s = -1;  // server-directed delay in seconds; -1 = none
  bool auth_refused = false;  // 401/403: the key was refused; never retried
  std::vector<TryRecord> tries;  // every HTTP try, in order (empty when none was sent)
  // "schema_mismatch": how the data broke the call's JSON schema, at most
  // llm::kMaxSchemaErrors (schema_check.hpp), in document order; empty otherwise.
  std::vector<schema::SchemaError> schema_errors;
};

}  // namespace llmbridge::llm
