// The compiled form of a schema: one Node per subschema, linked by index, with the
// keyword values prepared for the hot path (a hash table of property names, presence
// bits for required names, parsed numbers, compiled regular expressions).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json_doc.hpp"
#include "llmbridge/schema/regex.hpp"
#include "llmbridge/schema/validator.hpp"

namespace llmbridge::schema::detail {

enum TypeBit : std::uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kInteger = 32,
  kString = 64,
};

constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();

struct PropSlot {
  std::string_view name;  // into the schema's tape strings
  std::uint32_t hash = 0;
  std::int32_t schema = -1;  // properties[name]
  std::int32_t bit = -1;     // presence bit: a name that required / dependent* ask about
};

struct NamedBit {
  std::string_view name;
  std::uint32_t bit;
};

struct DependentRequired {
  NamedBit key;
  std::vector<NamedBit> names;
};

struct DependentSchema {
  NamedBit key;
  std::int32_t schema;
};

struct PatternSchema {
  std::uint32_t regex;  // index into CompiledSchema::regexes
  std::int32_t schema;
};

struct NumLimit {
  bool set = false;
  Num value;
};

struct Node {
  enum class Shape : std::uint8_t { keywords, always_true, always_false } shape = Shape::keywords;
  std::uint8_t types = 0;  // TypeBit mask; 0: any type
  // Which groups of keywords are present, so the evaluator skips absent ones quickly.
  bool number_checks = false, string_checks = false, array_checks = false, object_checks = false;
  bool applicators = false;

  std::int64_t const_value = -1;  // tape index into the schema's tape
  bool has_enum = false;
  std::vector<std::string_view> enum_strings;  // sorted
  std::vector<std::size_t> enum_others;        // tape indices of the other values
  std::size_t enum_at = 0;                     // the enum array (for messages)

  NumLimit minimum, maximum, exclusive_minimum, exclusive_maximum;
  bool has_multiple_of = false;
  Divisor multiple_of;

  std::uint64_t min_length = 0, max_length = kUnbounded;
  std::vector<std::uint32_t> patterns;

  std::uint64_t min_items = 0, max_items = kUnbounded;
  bool unique_items = false;
  std::vector<std::int32_t> prefix_items;
  std::int32_t items = -1;
  std::int32_t contains = -1;
  std::uint64_t min_contains = 1, max_contains = kUnbounded;

  std::vector<PropSlot> table;  // open addressing, size a power of two (or empty)
  std::uint32_t table_mask = 0;
  std::uint32_t bits = 0;  // number of presence bits
  std::vector<NamedBit> required;
  std::vector<DependentRequired> dependent_required;
  std::vector<DependentSchema> dependent_schemas;
  std::vector<PatternSchema> pattern_properties;
  std::int32_t additional_properties = -1;
  std::int32_t property_names = -1;
  std::uint64_t min_properties = 0, max_properties = kUnbounded;

  std::int32_t ref = -1;
  std::vector<std::int32_t> all_of, any_of, one_of;
  std::int32_t not_ = -1, if_ = -1, then_ = -1, else_ = -1;

  const PropSlot* lookup(std::string_view key, std::uint32_t hash) const noexcept {
    if (table.empty()) return nullptr;
    for (std::uint32_t k = hash & table_mask;; k = (k + 1) & table_mask) {
      const PropSlot& s = table[k];
      if (s.name.data() == nullptr) return nullptr;
      if (s.hash == hash && s.name == key) return &s;
    }
  }
};

inline std::uint32_t name_hash(std::string_view s) noexcept {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

struct CompiledRegex {
  std::string source;
  Regex regex;
};

}  // namespace llmbridge::schema::detail

namespace llmbridge::schema {

struct CompiledSchema {
  detail::OwnedTape tape;  // the schema itself: const/enum values and names point into it
  std::vector<detail::Node> nodes;
  std::vector<std::unique_ptr<detail::CompiledRegex>> regexes;
  std::int32_t root = 0;
  std::vector<std::string> unsupported;
  mutable std::atomic<bool> reported{false};
};

}  // namespace llmbridge::schema

namespace llmbridge::schema::detail {

// Compiles `schema_json` into `out` (throws std::invalid_argument).
void compile_schema(std::string_view schema_json, CompiledSchema& out);

// Validates a parsed instance.
std::vector<SchemaError> validate_tape(const CompiledSchema& s, const Tape& instance, std::size_t max_errors);

}  // namespace llmbridge::schema::detail
