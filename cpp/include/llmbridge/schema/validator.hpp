// JSON Schema (draft 2020-12) validation of parsed model answers: a schema is compiled
// once into an internal tree, then checks JSON texts without allocating on the hot path.
// docs/schema-validation.md lists what is checked.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/schema/instance.hpp"

namespace llmbridge::schema {

struct SchemaError {
  std::string pointer;  // RFC 6901 JSON Pointer into the INSTANCE ("" = the root), e.g. "/items/3/name"
  std::string message;  // short, e.g. "missing required property \"name\"", "expected integer, got string";
                        // quotes instance data only as a short excerpt (<= 60 bytes, valid UTF-8)
};

struct CompiledSchema;  // the internal tree (validator_impl.hpp)

class Schema {
 public:
  // Compiles a JSON Schema (draft 2020-12 semantics) from its JSON text. Throws
  // std::invalid_argument, naming what is wrong (with the schema location as a JSON
  // pointer into the schema), when the text is not JSON, is not an object or boolean,
  // a keyword's value has the wrong type, a local $ref does not resolve, or a pattern
  // does not compile.
  static std::shared_ptr<const Schema> compile(std::string_view schema_json);

  // Keywords present in the schema that the validator cannot check, each once, sorted,
  // as "<keyword> at <schema pointer>" (e.g. "$ref to a remote document at /properties/a").
  // Those subschemas are not checked; the caller logs them once per schema (WARNING).
  const std::vector<std::string>& unsupported() const noexcept;

  // Validates a JSON text. Returns at most max_errors errors, in document order; empty
  // means valid. Throws std::invalid_argument when instance_json is not JSON.
  std::vector<SchemaError> validate(std::string_view instance_json, std::size_t max_errors = 10) const;
  // The same for a value built with Instance. Throws std::invalid_argument when it is
  // not one complete value.
  std::vector<SchemaError> validate(const Instance& instance, std::size_t max_errors = 10) const;

  // True exactly once per Schema object (thread-safe): whoever gets true reports
  // unsupported() (a cached schema is one object, so its text is reported once).
  bool claim_unsupported_report() const noexcept;

  ~Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

 private:
  Schema();
  std::unique_ptr<CompiledSchema> impl_;
};

// Thread-safe, bounded cache keyed by the schema text: each distinct text compiles once.
// Throws like Schema::compile.
std::shared_ptr<const Schema> compile_cached(std::string_view schema_json);

// "schema_mismatch: <pointer or '(root)'>: <message>" for the first error: the error string
// a call reports.
std::string mismatch_error(const std::vector<SchemaError>& errors);

}  // namespace llmbridge::schema
